// Expectations of a step (scenario-language.md §5): parsing them, and matching an
// outcome against them. An outcome is what a backend call produced, normalised for display,
// comparison across backends, and JSON.
import type { BResult, Violation } from '../backend/backend.js';
import type { ConversionSummary } from './exec.js';
import { PROFILES } from '../model/profile.js';
import { ERRNOS, parseBytes, parseSize, show, type Parsed } from './values.js';

export type Outcome =
  | { kind: 'ok'; value?: bigint; data?: Uint8Array; handle?: string; conversion?: ConversionSummary }
  | { kind: 'errno'; errno: string; out?: Record<string, bigint>; why: string; conversion?: ConversionSummary }
  | { kind: 'signal'; signal: string; why: string }
  | { kind: 'exit'; exit: string; gpa: bigint; size: bigint; private: boolean; why: string }
  | { kind: 'unsupported'; why: string }
  /** The step could not run (e.g. a handle it names was never created). */
  | { kind: 'skipped'; why: string };

export function toOutcome(r: BResult<unknown>, conversion?: ConversionSummary): Outcome {
  const conv = conversion ? { conversion } : {};
  if (r.ok) {
    const v = r.value;
    if (v instanceof Uint8Array) return { kind: 'ok', data: v, ...conv };
    if (typeof v === 'bigint') return { kind: 'ok', value: v, ...conv };
    return { kind: 'ok', ...conv };
  }
  if ('unsupported' in r) return { kind: 'unsupported', why: r.unsupported };
  if ('errno' in r) return { kind: 'errno', errno: r.errno, ...(r.out ? { out: { ...r.out } } : {}), why: r.why, ...conv };
  if ('signal' in r) return { kind: 'signal', signal: r.signal, why: r.why };
  return { kind: 'exit', exit: r.exit, gpa: r.gpa, size: r.size, private: r.private, why: r.why };
}

/** What `expect` may say of a conversion request (convert, map_gpa_range, on_fault). */
export interface ConversionExpect {
  retries?: bigint;
  eagains?: bigint;
  released?: readonly string[];
  waited?: readonly string[];
}

export type Expect = (
  | { kind: 'ok' }
  | { kind: 'any' }
  | { kind: 'errno'; errno: string; out: Record<string, bigint> }
  | { kind: 'signal'; signal: string }
  | { kind: 'data'; bytes: Uint8Array }
  | { kind: 'fill'; fill: number }
  | { kind: 'value'; value: bigint }
  | { kind: 'exit'; exit: string; gpa?: bigint; size?: bigint; private?: boolean }
) & { conv?: ConversionExpect };

export interface StepExpect {
  /** The expectation, or one per profile when the outcome differs between profiles. */
  readonly base: Expect;
  readonly byProfile?: Readonly<Record<string, Expect>>;
  /** Invariants this step is expected to break (a gmemkit extension; e.g. [I2]). */
  readonly violations: readonly string[];
}

const OUT_FIELDS = ['error_offset'];
const SIGNALS = ['SIGBUS', 'SIGSEGV'];
const EXITS = ['MEMORY_FAULT', 'MMIO'];

function parseOne(v: unknown): Parsed<{ expect: Expect; violations: string[] }> {
  const done = (expect: Expect, violations: string[] = []) => ({ ok: true as const, value: { expect, violations } });
  if (v === undefined || v === 'ok') return done({ kind: 'ok' });
  if (v === 'any') return done({ kind: 'any' });
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    return { ok: false, message: `expected ok, any, or a mapping such as { errno: EINVAL }, got ${show(v)}` };
  }
  const o = { ...(v as Record<string, unknown>) };
  let violations: string[] = [];
  if ('violations' in o) {
    const list = o.violations;
    if (!Array.isArray(list) || !list.every((x) => typeof x === 'string' && /^I\d+$/.test(x))) {
      return { ok: false, message: `violations: expected a list of invariant names like [I2], got ${show(list)}` };
    }
    violations = list as string[];
    delete o.violations;
  }
  const conv: ConversionExpect = {};
  for (const f of ['retries', 'eagains'] as const) {
    if (!(f in o)) continue;
    const n = parseSize(o[f], 'u32');
    if (!n.ok) return { ok: false, message: `${f}: ${n.message}` };
    conv[f] = n.value;
    delete o[f];
  }
  for (const f of ['released', 'waited'] as const) {
    if (!(f in o)) continue;
    const list = o[f];
    if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) return { ok: false, message: `${f}: expected a list of handle names, got ${show(list)}` };
    conv[f] = list as string[];
    delete o[f];
  }
  const hasConv = Object.keys(conv).length > 0;
  const withConv = (r: Parsed<{ expect: Expect; violations: string[] }>) => (r.ok && hasConv ? { ok: true as const, value: { expect: { ...r.value.expect, conv }, violations: r.value.violations } } : r);
  return withConv(parseRest(o, violations));
}

function parseRest(o: Record<string, unknown>, violations: string[]): Parsed<{ expect: Expect; violations: string[] }> {
  const done = (expect: Expect) => ({ ok: true as const, value: { expect, violations } });
  if (o.any === true && Object.keys(o).length === 1) return done({ kind: 'any' }); // { any: true, violations: [...] }
  const keys = Object.keys(o);
  if (keys.length === 0) return done({ kind: 'ok' });
  const only = (allowed: string[]) => {
    const extra = keys.filter((k) => !allowed.includes(k));
    return extra.length ? `unexpected field(s) ${extra.join(', ')} with ${keys[0]}; allowed: ${allowed.join(', ')}` : undefined;
  };
  if ('errno' in o) {
    const err = only(['errno', ...OUT_FIELDS]);
    if (err) return { ok: false, message: err };
    if (typeof o.errno !== 'string' || !ERRNOS.includes(o.errno)) return { ok: false, message: `errno: expected one of ${ERRNOS.join(', ')}, got ${show(o.errno)}` };
    const out: Record<string, bigint> = {};
    for (const f of OUT_FIELDS) {
      if (!(f in o)) continue;
      const n = parseSize(o[f], 'u64'); // struct kvm_memory_attributes2.error_offset: __u64
      if (!n.ok) return { ok: false, message: `${f}: ${n.message}` };
      out[f] = n.value;
    }
    return done({ kind: 'errno', errno: o.errno, out });
  }
  if ('signal' in o) {
    const err = only(['signal']);
    if (err) return { ok: false, message: err };
    if (typeof o.signal !== 'string' || !SIGNALS.includes(o.signal)) return { ok: false, message: `signal: expected one of ${SIGNALS.join(', ')}, got ${show(o.signal)}` };
    return done({ kind: 'signal', signal: o.signal });
  }
  if ('data' in o || 'bytes' in o) {
    const key = 'data' in o ? 'data' : 'bytes';
    const err = only([key]);
    if (err) return { ok: false, message: err };
    if (key === 'data' && typeof o.data !== 'string') return { ok: false, message: `data: expected a string, got ${show(o.data)}` };
    const b = parseBytes(o[key]);
    if (!b.ok) return { ok: false, message: `${key}: ${b.message}` };
    return done({ kind: 'data', bytes: b.value });
  }
  if ('fill' in o) {
    const err = only(['fill']);
    if (err) return { ok: false, message: err };
    const f = typeof o.fill === 'bigint' || typeof o.fill === 'number' || typeof o.fill === 'string' ? parseSize(o.fill, 'u8') : undefined;
    if (!f?.ok) return { ok: false, message: `fill: expected a byte value 0..255${f ? `: ${f.message}` : `, got ${show(o.fill)}`}` };
    return done({ kind: 'fill', fill: Number(f.value) });
  }
  if ('value' in o) {
    const err = only(['value']);
    if (err) return { ok: false, message: err };
    const n = parseSize(o.value, 's64'); // return values: int, long, off_t, ssize_t
    if (!n.ok) return { ok: false, message: `value: ${n.message}` };
    return done({ kind: 'value', value: n.value });
  }
  if ('exit' in o) {
    const err = only(['exit', 'gpa', 'size', 'private']);
    if (err) return { ok: false, message: err };
    if (typeof o.exit !== 'string' || !EXITS.includes(o.exit)) return { ok: false, message: `exit: expected one of ${EXITS.join(', ')}, got ${show(o.exit)}` };
    const e: Expect = { kind: 'exit', exit: o.exit };
    for (const f of ['gpa', 'size'] as const) {
      if (!(f in o)) continue;
      const n = parseSize(o[f], 'u64'); // kvm_run.memory_fault.gpa / .size: u64
      if (!n.ok) return { ok: false, message: `${f}: ${n.message}` };
      e[f] = n.value;
    }
    if ('private' in o) {
      if (typeof o.private !== 'boolean') return { ok: false, message: `private: expected true or false, got ${show(o.private)}` };
      e.private = o.private;
    }
    return done(e);
  }
  return { ok: false, message: `unknown expectation field(s) ${keys.join(', ')}; allowed: errno, error_offset, signal, data, bytes, fill, value, exit, gpa, size, private, retries, eagains, released, waited, violations` };
}

/** Parse `expect:`; a mapping keyed by profile names gives one expectation per profile. */
const PLAIN_OK: Parsed<StepExpect> = { ok: true, value: { base: { kind: 'ok' }, violations: [] } };

export function parseExpect(v: unknown): Parsed<StepExpect> {
  if (v === undefined || v === 'ok') return PLAIN_OK; // the common case; results are never mutated
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const keys = Object.keys(v);
    if (keys.length > 0 && keys.every((k) => PROFILES.some((p) => p.name === k))) {
      const byProfile: Record<string, Expect> = {};
      const violations = new Set<string>();
      for (const k of keys) {
        const r = parseOne((v as Record<string, unknown>)[k]);
        if (!r.ok) return { ok: false, message: `${k}: ${r.message}` };
        byProfile[k] = r.value.expect;
        r.value.violations.forEach((x) => violations.add(x));
      }
      return { ok: true, value: { base: { kind: 'ok' }, byProfile, violations: [...violations] } };
    }
  }
  const r = parseOne(v);
  return r.ok ? { ok: true, value: { base: r.value.expect, violations: r.value.violations } } : r;
}

export function expectFor(e: StepExpect, profile: string): Expect {
  return e.byProfile?.[profile] ?? e.base;
}

/** Why the outcome does not meet the expectation, or undefined when it does. */
export function mismatch(expect: Expect, got: Outcome): string | undefined {
  if (expect.kind === 'any' || got.kind === 'unsupported') return undefined;
  return baseMismatch(expect, got) ?? convMismatch(expect.conv, got);
}

function convMismatch(want: ConversionExpect | undefined, got: Outcome): string | undefined {
  if (!want) return undefined;
  const c = got.kind === 'ok' || got.kind === 'errno' ? got.conversion : undefined;
  if (!c) return 'expected a conversion report, but the step made no conversion request';
  if (want.retries !== undefined && BigInt(c.retries) !== want.retries) return `expected retries ${want.retries}, got ${c.retries}`;
  if (want.eagains !== undefined && BigInt(c.eagains) !== want.eagains) return `expected eagains ${want.eagains}, got ${c.eagains}`;
  const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x) => b.includes(x));
  if (want.released && !sameSet(want.released, c.released)) return `expected released [${want.released.join(', ')}], got [${c.released.join(', ')}]`;
  if (want.waited && !sameSet(want.waited, c.waited)) return `expected waited [${want.waited.join(', ')}], got [${c.waited.join(', ')}]`;
  return undefined;
}

function baseMismatch(expect: Expect, got: Outcome): string | undefined {
  // Described only on a mismatch: matching is per step, describing is per failure.
  const differ = () => `expected ${describeExpect(expect)}, got ${describeOutcome(got)}`;
  switch (expect.kind) {
    case 'ok': return got.kind === 'ok' ? undefined : differ();
    case 'errno': {
      if (got.kind !== 'errno' || got.errno !== expect.errno) return differ();
      for (const [k, v] of Object.entries(expect.out)) {
        if (got.out?.[k] !== v) return `expected ${k} ${v}, got ${got.out?.[k] ?? 'none'}`;
      }
      return undefined;
    }
    case 'signal': return got.kind === 'signal' && got.signal === expect.signal ? undefined : differ();
    case 'data':
      return got.kind === 'ok' && got.data && sameBytes(got.data, expect.bytes) ? undefined : differ();
    case 'fill':
      return got.kind === 'ok' && got.data && got.data.every((b) => b === expect.fill) ? undefined : differ();
    case 'value': return got.kind === 'ok' && got.value === expect.value ? undefined : differ();
    case 'exit': {
      if (got.kind !== 'exit' || got.exit !== expect.exit) return differ();
      if (expect.gpa !== undefined && got.gpa !== expect.gpa) return `expected exit gpa ${expect.gpa}, got ${got.gpa}`;
      if (expect.size !== undefined && got.size !== expect.size) return `expected exit size ${expect.size}, got ${got.size}`;
      if (expect.private !== undefined && got.private !== expect.private) return `expected private ${expect.private}, got ${got.private}`;
      return undefined;
    }
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export function describeExpect(e: Expect): string {
  switch (e.kind) {
    case 'ok': return 'success';
    case 'any': return 'anything';
    case 'errno': return [e.errno, ...Object.entries(e.out).map(([k, v]) => `${k}=${v}`)].join(' ');
    case 'signal': return e.signal;
    case 'data': return `data ${showData(e.bytes)}`;
    case 'fill': return `every byte ${e.fill}`;
    case 'value': return `value ${e.value}`;
    case 'exit': return `exit ${e.exit}${e.gpa !== undefined ? ` gpa=${e.gpa}` : ''}${e.private !== undefined ? ` private=${e.private}` : ''}`;
  }
}

export function describeOutcome(o: Outcome): string {
  switch (o.kind) {
    case 'ok': return (o.data ? `data ${showData(o.data)}` : o.value !== undefined ? `value ${o.value}` : 'success') + convText(o.conversion);
    case 'errno': return [o.errno, ...Object.entries(o.out ?? {}).map(([k, v]) => `${k}=${v}`)].join(' ') + convText(o.conversion);
    case 'signal': return o.signal;
    case 'exit': return `exit ${o.exit} gpa=${o.gpa} size=${o.size} private=${o.private}`;
    case 'unsupported': return `unsupported (${o.why})`;
    case 'skipped': return `not run (${o.why})`;
  }
}

function convText(c: ConversionSummary | undefined): string {
  if (!c) return '';
  const parts = [`retries=${c.retries}`, `eagains=${c.eagains}`];
  if (c.released.length) parts.push(`released=[${c.released.join(',')}]`);
  if (c.waited.length) parts.push(`waited=[${c.waited.join(',')}]`);
  if (c.vmStopped) parts.push('VM stopped');
  return ` (${parts.join(' ')})`;
}

/** Bytes for humans: printable text as a string, else hex; long runs summarised. */
export function showData(b: Uint8Array): string {
  if (b.length > 0 && b.every((x) => x === b[0]) && b.length > 8) return `${b.length}×0x${b[0]!.toString(16).padStart(2, '0')}`;
  const head = b.subarray(0, 32);
  const printable = head.every((x) => x >= 0x20 && x < 0x7f);
  const text = printable ? JSON.stringify(new TextDecoder().decode(head)) : `[${[...head].map((x) => `0x${x.toString(16).padStart(2, '0')}`).join(' ')}]`;
  return b.length > 32 ? `${text}… (${b.length} bytes)` : text;
}

/** Violations reported vs. expected at a step: the unexpected ones, and expected ones missing. */
export function violationMismatch(expected: readonly string[], got: readonly Violation[]): { unexpected: Violation[]; missing: string[] } {
  const names = new Set(got.map((v) => v.invariant));
  return { unexpected: got.filter((v) => !expected.includes(v.invariant)), missing: expected.filter((x) => !names.has(x)) };
}
