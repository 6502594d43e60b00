// Expectations of a step (scenario-language.md §5): parsing them, and matching an
// outcome against them. An outcome is what a backend call produced, normalised for display,
// comparison across backends, and JSON.
import type { BResult, FileStat, Violation } from '../backend/backend.js';
import type { ConversionSummary, HolderSummary } from './exec.js';
import { findProfile } from '../model/profile.js';
import { ERRNOS, parseBytes, parseSize, show, type Parsed } from './values.js';

/**
 * `guarded`: the backend decided this answer itself, without asking the kernel, and why
 * (backend.ts). `number`: an errno abi.ts has no name for (`errno` is then `errno N`), compared
 * by number. `error`: the backend tried and got no answer (a KVM_RUN timeout, an unexpected vCPU
 * exit): an error of the case, never "unsupported". `cause` of an unsupported step: the root
 * reason when it is unsupported because an earlier step was; `capability`: the capability the
 * kernel does not advertise, when that is why (set by the capability gate).
 */
export type Outcome =
  /** `out`: out-values of a successful call (fstat's size and blksize). */
  | { kind: 'ok'; value?: bigint; data?: Uint8Array; out?: Record<string, bigint>; handle?: string; conversion?: ConversionSummary; holder?: HolderSummary; guarded?: string }
  | { kind: 'errno'; errno: string; number?: number; out?: Record<string, bigint>; why: string; conversion?: ConversionSummary; holder?: HolderSummary; guarded?: string }
  | { kind: 'signal'; signal: string; why: string; guarded?: string }
  | { kind: 'exit'; exit: string; gpa: bigint; size: bigint; private: boolean; why: string; guarded?: string }
  | { kind: 'unsupported'; why: string; cause?: string; capability?: string }
  | { kind: 'error'; why: string }
  /** The step could not run (e.g. a handle it names was never created). */
  | { kind: 'skipped'; why: string };

export function toOutcome(r: BResult<unknown>, conversion?: ConversionSummary, holder?: HolderSummary): Outcome {
  const conv = { ...(conversion ? { conversion } : {}), ...(holder ? { holder } : {}) };
  if ('unsupported' in r) {
    if (r.error) return { kind: 'error', why: r.unsupported };
    if (r.errnoNumber !== undefined) return { kind: 'errno', errno: `errno ${r.errnoNumber}`, number: r.errnoNumber, why: r.unsupported, ...conv };
    return { kind: 'unsupported', why: r.unsupported, ...(r.capability !== undefined ? { capability: r.capability } : {}) };
  }
  const g = r.guarded !== undefined ? { guarded: r.guarded } : {};
  if (r.ok) {
    const v = r.value;
    if (v instanceof Uint8Array) return { kind: 'ok', data: v, ...conv, ...g };
    if (typeof v === 'bigint') return { kind: 'ok', value: v, ...conv, ...g };
    if (isFileStat(v)) return { kind: 'ok', out: { size: v.size, blksize: v.blksize }, ...conv, ...g };
    return { kind: 'ok', ...conv, ...g };
  }
  if ('errno' in r) return { kind: 'errno', errno: r.errno, ...(r.out ? { out: { ...r.out } } : {}), why: r.why, ...conv, ...g };
  if ('signal' in r) return { kind: 'signal', signal: r.signal, why: r.why, ...g };
  return { kind: 'exit', exit: r.exit, gpa: r.gpa, size: r.size, private: r.private, why: r.why, ...g };
}

const isFileStat = (v: unknown): v is FileStat =>
  typeof v === 'object' && v !== null && typeof (v as FileStat).size === 'bigint' && typeof (v as FileStat).blksize === 'bigint';

/** What `expect` may say of a conversion request (convert, map_gpa_range, on_fault). */
export interface ConversionExpect {
  retries?: bigint;
  eagains?: bigint;
  released?: readonly string[];
  waited?: readonly string[];
}

/** What `expect` may say of a pin holder's bounce buffer (the step's holder, after the step). */
export interface HolderExpect {
  bounced?: boolean;
  copies?: bigint;
  bytes_copied?: bigint;
}

export type Expect = (
  | { kind: 'ok' }
  | { kind: 'any' }
  | { kind: 'errno'; errno: string; out: Record<string, bigint> }
  | { kind: 'signal'; signal: string }
  | { kind: 'data'; bytes: Uint8Array }
  | { kind: 'fill'; fill: number }
  | { kind: 'value'; value: bigint }
  /** The call fails with some errno (`expect: fails`). */
  | { kind: 'fails' }
  /** The return value has every bit of `bits` set. */
  | { kind: 'bits'; bits: bigint }
  /** Out-values of a successful call (fstat: size, blksize). */
  | { kind: 'out'; out: Record<string, bigint> }
  | { kind: 'exit'; exit: string; gpa?: bigint; size?: bigint; private?: boolean }
) & { conv?: ConversionExpect; hold?: HolderExpect };

export interface StepExpect {
  /** The expectation, or one per profile when the outcome differs between profiles. */
  readonly base: Expect;
  readonly byProfile?: Readonly<Record<string, Expect>>;
  /** Invariants this step is expected to break (a gmemkit extension; e.g. [I2]). */
  readonly violations: readonly string[];
}

const OUT_FIELDS = ['error_offset'];
/** Out-values of a successful call, and the C type each is compared as (struct stat: off_t st_size, blksize_t). */
const OK_OUT_FIELDS = ['size', 'blksize'];
const SIGNALS = ['SIGBUS', 'SIGSEGV'];
const EXITS = ['MEMORY_FAULT', 'MMIO'];

function parseOne(v: unknown): Parsed<{ expect: Expect; violations: string[] }> {
  const done = (expect: Expect, violations: string[] = []) => ({ ok: true as const, value: { expect, violations } });
  if (v === undefined || v === 'ok') return done({ kind: 'ok' });
  if (v === 'any') return done({ kind: 'any' });
  if (v === 'fails') return done({ kind: 'fails' });
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    return { ok: false, message: `expected ok, any, fails, or a mapping such as { errno: EINVAL }, got ${show(v)}` };
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
  const hold: HolderExpect = {};
  if ('bounced' in o) {
    if (typeof o.bounced !== 'boolean') return { ok: false, message: `bounced: expected true or false, got ${show(o.bounced)}` };
    hold.bounced = o.bounced;
    delete o.bounced;
  }
  for (const [f, type] of [['copies', 'u32'], ['bytes_copied', 'u64']] as const) {
    if (!(f in o)) continue;
    const n = parseSize(o[f], type);
    if (!n.ok) return { ok: false, message: `${f}: ${n.message}` };
    hold[f] = n.value;
    delete o[f];
  }
  const extra = { ...(Object.keys(conv).length ? { conv } : {}), ...(Object.keys(hold).length ? { hold } : {}) };
  const withConv = (r: Parsed<{ expect: Expect; violations: string[] }>) => (r.ok && Object.keys(extra).length ? { ok: true as const, value: { expect: { ...r.value.expect, ...extra }, violations: r.value.violations } } : r);
  return withConv(parseRest(o, violations));
}

function parseRest(o: Record<string, unknown>, violations: string[]): Parsed<{ expect: Expect; violations: string[] }> {
  const done = (expect: Expect) => ({ ok: true as const, value: { expect, violations } });
  if (o.any === true && Object.keys(o).length === 1) return done({ kind: 'any' }); // { any: true, violations: [...] }
  const keys = Object.keys(o);
  if (keys.length === 0) return done({ kind: 'ok' });
  const only = (allowed: string[]) => {
    const extra = keys.filter((k) => !allowed.includes(k));
    return extra.length ? `unexpected field(s) ${extra.join(', ')} with ${allowed[0]}; allowed: ${allowed.join(', ')}` : undefined;
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
  if ('bits' in o) {
    const err = only(['bits']);
    if (err) return { ok: false, message: err };
    const n = parseSize(o.bits, 'u64'); // a bit mask of the return value
    if (!n.ok) return { ok: false, message: `bits: ${n.message}` };
    return done({ kind: 'bits', bits: n.value });
  }
  if ('value' in o) {
    const err = only(['value']);
    if (err) return { ok: false, message: err };
    const n = parseSize(o.value, 's64'); // return values: int, long, off_t, ssize_t
    if (!n.ok) return { ok: false, message: `value: ${n.message}` };
    return done({ kind: 'value', value: n.value });
  }
  if (keys.every((k) => OK_OUT_FIELDS.includes(k))) {
    const out: Record<string, bigint> = {};
    for (const f of keys) {
      const n = parseSize(o[f], 's64'); // struct stat: off_t st_size, blksize_t st_blksize (long)
      if (!n.ok) return { ok: false, message: `${f}: ${n.message}` };
      out[f] = n.value;
    }
    return done({ kind: 'out', out });
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
  return { ok: false, message: `unknown expectation field(s) ${keys.join(', ')}; allowed: errno, error_offset, signal, data, bytes, fill, value, bits, size, blksize, exit, gpa, private, retries, eagains, released, waited, bounced, copies, bytes_copied, violations` };
}

/** Parse `expect:`; a mapping keyed by profile names gives one expectation per profile. */
const PLAIN_OK: Parsed<StepExpect> = { ok: true, value: { base: { kind: 'ok' }, violations: [] } };

/** `{ errno: X }` parsed, by X: the next most common case (a sweep of invalid arguments). */
const ERRNO_ONLY = new Map<string, Parsed<StepExpect>>();

export function parseExpect(v: unknown): Parsed<StepExpect> {
  if (v === undefined || v === 'ok') return PLAIN_OK; // the common case; results are never mutated
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    let n = 0;
    for (const k in v) if (Object.hasOwn(v, k)) n++;
    const errno = (v as Record<string, unknown>).errno;
    if (n === 1 && typeof errno === 'string' && Object.hasOwn(v, 'errno')) {
      let r = ERRNO_ONLY.get(errno);
      if (!r) ERRNO_ONLY.set(errno, (r = parseExpectOf(v)));
      return r;
    }
  }
  return parseExpectOf(v);
}

function parseExpectOf(v: unknown): Parsed<StepExpect> {
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const keys = Object.keys(v);
    if (keys.length > 0 && keys.every((k) => findProfile(k) !== undefined)) { // mutant profiles too
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
  if (got.kind === 'error') return `error: ${got.why}`;
  if (expect.kind === 'any' || got.kind === 'unsupported') return undefined;
  return baseMismatch(expect, got) ?? convMismatch(expect.conv, got) ?? holderMismatch(expect.hold, got);
}

function holderMismatch(want: HolderExpect | undefined, got: Outcome): string | undefined {
  if (!want) return undefined;
  const h = got.kind === 'ok' || got.kind === 'errno' ? got.holder : undefined;
  if (!h) return 'expected a pin holder report (bounced, copies, bytes_copied), but the step names no pin holder';
  if (want.bounced !== undefined && h.bounced !== want.bounced) return `expected bounced ${want.bounced}, got ${h.bounced}`;
  if (want.copies !== undefined && BigInt(h.copies) !== want.copies) return `expected copies ${want.copies}, got ${h.copies}`;
  if (want.bytes_copied !== undefined && BigInt(h.bytesCopied) !== want.bytes_copied) return `expected bytes_copied ${want.bytes_copied}, got ${h.bytesCopied}`;
  return undefined;
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
    case 'fails': return got.kind === 'errno' ? undefined : differ();
    case 'bits': {
      if (got.kind !== 'ok' || got.value === undefined) return differ();
      return (BigInt.asUintN(64, got.value) & expect.bits) === expect.bits ? undefined
        : `expected value ${got.value} to have every bit of 0x${expect.bits.toString(16)} set; missing 0x${(expect.bits & ~BigInt.asUintN(64, got.value)).toString(16)}`;
    }
    case 'out': {
      if (got.kind !== 'ok' || !got.out) return differ();
      for (const [k, v] of Object.entries(expect.out)) if (got.out[k] !== v) return `expected ${k} ${v}, got ${got.out[k] ?? 'none'}`;
      return undefined;
    }
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
    case 'fails': return 'a failure (any errno)';
    case 'bits': return `a value with every bit of 0x${e.bits.toString(16)} set`;
    case 'out': return Object.entries(e.out).map(([k, v]) => `${k}=${v}`).join(' ');
    case 'exit': return `exit ${e.exit}${e.gpa !== undefined ? ` gpa=${e.gpa}` : ''}${e.private !== undefined ? ` private=${e.private}` : ''}`;
  }
}

export function describeOutcome(o: Outcome): string {
  switch (o.kind) {
    case 'ok': return (o.data ? `data ${showData(o.data)}` : o.value !== undefined ? `value ${o.value}`
      : o.out ? Object.entries(o.out).map(([k, v]) => `${k}=${v}`).join(' ') : 'success') + convText(o.conversion) + bounceText(o.holder);
    case 'errno': return [o.errno, ...Object.entries(o.out ?? {}).map(([k, v]) => `${k}=${v}`)].join(' ') + convText(o.conversion) + bounceText(o.holder);
    case 'signal': return o.signal;
    case 'exit': return `exit ${o.exit} gpa=${o.gpa} size=${o.size} private=${o.private}`;
    case 'unsupported': return `unsupported (${o.why})`;
    case 'error': return `error (${o.why})`;
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

/** A holder on a bounce buffer says so, with its copies so far; a pinning holder says nothing. */
export function bounceText(h: HolderSummary | undefined): string {
  return h?.bounced ? ` (bounced: ${h.copies} cop${h.copies === 1 ? 'y' : 'ies'}, ${h.bytesCopied} bytes)` : '';
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
