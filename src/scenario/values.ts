// Scenario value syntax (scenario-language.md §4): sizes with K/M/G/T suffixes, flag lists of uapi
// names without prefix or raw numbers, data as a string or a byte list. Every number is checked
// against the C type of the field it goes to (scenario-language.md §4): a value that does not
// fit is refused, never wrapped or truncated. Each parser returns the value or a message naming
// what is allowed; none of them throws.
import {
  CAPS, ERRNO_NAMES, FALLOC_FLAGS, GMEM_FLAGS, MADV, MAP_FLAGS, MEMORY_ATTRIBUTES, MEMSLOT_FLAGS,
  PROT, VM_TYPES, type FlagTable,
} from '../model/abi.js';

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };
const good = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = (message: string): Parsed<never> => ({ ok: false, message });

/**
 * The C types of the kernel ABI a scenario number may go to (kernel-semantics.md §5.5 struct
 * layouts, and the syscall prototypes: off_t and int are signed, size_t and the uapi __u64 /
 * __u32 fields unsigned).
 */
export const CTYPES = {
  u8: { min: 0n, max: 0xffn, range: '0 .. 255' },
  u32: { min: 0n, max: (1n << 32n) - 1n, range: '0 .. 2^32-1' },
  u64: { min: 0n, max: (1n << 64n) - 1n, range: '0 .. 2^64-1' },
  int: { min: -(1n << 31n), max: (1n << 31n) - 1n, range: '-2^31 .. 2^31-1' },
  s64: { min: -(1n << 63n), max: (1n << 63n) - 1n, range: '-2^63 .. 2^63-1' },
} as const;
export type CType = keyof typeof CTYPES;

const SUFFIX: Record<string, bigint> = { '': 1n, K: 1n << 10n, M: 1n << 20n, G: 1n << 30n, T: 1n << 40n, P: 1n << 50n, E: 1n << 60n };
/** Exponents and digit strings beyond these cannot fit any C type; refusing them early keeps parsing cheap. */
const MAX_POWER = 128;
const MAX_DIGITS = 40;

/** A value for a message, at most about 80 characters (never walks more of a shared or huge structure). */
export function show(v: unknown): string {
  const LIMIT = 80;
  let out = '';
  const put = (x: string): boolean => { out += x; return out.length <= LIMIT; };
  const walk = (x: unknown): boolean => {
    if (typeof x === 'bigint' || typeof x === 'number' || typeof x === 'boolean') return put(String(x));
    if (typeof x === 'string') return put(JSON.stringify(x.length > LIMIT ? x.slice(0, LIMIT) : x));
    if (x === null) return put('null');
    if (x === undefined) return put('nothing');
    if (Array.isArray(x)) {
      if (!put('[')) return false;
      for (let i = 0; i < x.length; i++) if (!(i === 0 || put(',')) || !walk(x[i])) return false;
      return put(']');
    }
    if (typeof x === 'object') {
      if (!put('{')) return false;
      let first = true;
      for (const k in x) {
        if (!(first || put(',')) || !put(`${JSON.stringify(k)}:`) || !walk((x as Record<string, unknown>)[k])) return false;
        first = false;
      }
      return put('}');
    }
    return put(String(x));
  };
  return walk(v) ? out : `${out.slice(0, LIMIT - 3)}...`;
}

/** Whether `n` fits `type`; the message says what was written, its value and the type's range. */
export function fit(n: bigint, type: CType, written: unknown): Parsed<bigint> {
  const t = CTYPES[type];
  if (n >= t.min && n <= t.max) return good(n);
  const value = typeof written === 'string' ? `${show(written)} (= ${n})` : show(written);
  const why = n < 0n && t.min === 0n ? 'is negative and ' : '';
  return bad(`${value} ${why}does not fit ${type} (${t.range})`);
}

/** An integer written as a YAML number: exact integers only (a float is never rounded). */
function numberValue(v: number): Parsed<bigint> {
  if (Number.isNaN(v)) return bad('expected an integer, got NaN');
  if (!Number.isFinite(v)) return bad(`expected an integer, got ${v > 0 ? 'infinity' : '-infinity'}`);
  if (!Number.isInteger(v)) return bad(`expected an integer, got the fraction ${v}`);
  if (!Number.isSafeInteger(v)) return bad(`expected an integer, got the float ${v}, which is not exact; write it without a decimal point or exponent, or as a string like "2^63"`);
  return good(BigInt(v));
}

/** A size expression without a type check: "16K", "0x1000", "-4K", "2^63", "2^64-4K". */
function sizeExpression(v: string): Parsed<bigint> {
  const simple = /^(\d{1,18})([KMGTPE]?)$/i.exec(v); // the common case, one term
  if (simple) return good(BigInt(simple[1]!) * SUFFIX[simple[2]!.toUpperCase()]!);
  const example = `expected a size like "16K", "0x1000" or "2^63", got ${show(v)}`;
  if (v.length > 200) return bad(`expected a size like "16K", "0x1000" or "2^63", got a string of ${v.length} characters`);
  const terms = v.replace(/\s+/g, '').split(/(?=[+-])/);
  let total = 0n;
  for (const term of terms) {
    const m = /^([+-]?)(?:(0x[0-9a-f]+|\d+)([KMGTPE]?)|2\^(\d+))$/i.exec(term);
    if (!m) return bad(example);
    const [, sign, num, suffix, pow] = m;
    if ((pow !== undefined && (pow.length > 3 || Number(pow) > MAX_POWER)) || (num !== undefined && num.length > MAX_DIGITS)) {
      return bad(`${show(v)} is far beyond any C type (at most 2^64-1)`);
    }
    const magnitude = pow !== undefined ? 1n << BigInt(pow) : BigInt(num!) * SUFFIX[suffix!.toUpperCase()]!;
    total += sign === '-' ? -magnitude : magnitude;
  }
  return good(total);
}

/** Any integer as written (YAML integer, exact float, or size string), before the type check. */
function integer(v: unknown): Parsed<bigint> {
  if (typeof v === 'bigint') return good(v);
  if (typeof v === 'number') return numberValue(v);
  if (typeof v === 'string') return sizeExpression(v);
  return bad(`expected a size (an integer, or a string like "16K"), got ${show(v)}`);
}

/**
 * A byte count or integer of C type `type`: a YAML integer, or a string "16K", "2M", "0x1000",
 * "-4K", "2^63", "2^64-4K". Suffixes are powers of two.
 */
export function parseSize(v: unknown, type: CType = 'u64'): Parsed<bigint> {
  const n = integer(v);
  return n.ok ? fit(n.value, type, v) : n;
}

/** Whether a list item looks like a number rather than a misspelt name. */
const looksNumeric = (item: unknown): boolean =>
  typeof item === 'bigint' || typeof item === 'number' || (typeof item === 'string' && /^[+-]?(0x)?[0-9]|^2\^/i.test(item.trim()));

/**
 * A flag list: names from `table` (OR-ed) and raw numbers (OR-ed in as bits), for a field of
 * C type `type`; raw bits must be non-negative and fit the type. A single name or number
 * stands for a one-item list.
 */
export function parseFlags(v: unknown, table: FlagTable, what: string, type: CType = 'u64'): Parsed<bigint> {
  const items = Array.isArray(v) ? v : [v];
  const allowed = () => `${Object.keys(table).length ? `${Object.keys(table).join(', ')} or ` : ''}a number`;
  const bitsType: CType = type === 'int' ? 'u32' : type === 's64' ? 'u64' : type;
  let bits = 0n;
  for (const item of items) {
    if (typeof item === 'string' && Object.hasOwn(table, item)) { bits |= table[item]!; continue; }
    if (!looksNumeric(item)) return bad(`unknown ${what} ${show(item)}; allowed: ${allowed()}`);
    const n = parseSize(item, bitsType);
    if (!n.ok) return bad(`${what} ${n.message}; allowed: ${allowed()}`);
    bits |= n.value;
  }
  return good(bits);
}

/** Named values that are not bit flags (one name, or a raw number of C type `type`). */
export function parseNamed(v: unknown, table: Readonly<Record<string, number | bigint>>, what: string, type: CType): Parsed<bigint> {
  if (typeof v === 'string' && Object.hasOwn(table, v)) return good(BigInt(table[v]!));
  if (looksNumeric(v)) return parseSize(v, type);
  return bad(`unknown ${what} ${show(v)}; allowed: ${Object.keys(table).join(', ')} or a number`);
}

/** Bytes to write: a string (its UTF-8 bytes) or a list of byte values. */
export function parseBytes(v: unknown): Parsed<Uint8Array> {
  if (typeof v === 'string') return good(new TextEncoder().encode(v));
  if (Array.isArray(v)) {
    const out = new Uint8Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const n = typeof v[i] === 'bigint' || typeof v[i] === 'number' || typeof v[i] === 'string' ? parseSize(v[i], 'u8') : undefined;
      if (!n?.ok) return bad(`expected a string or a list of byte values 0..255; item ${i + 1}: ${n ? n.message : `got ${show(v[i])}`}`);
      out[i] = Number(n.value);
    }
    return good(out);
  }
  return bad(`expected a string or a list of byte values 0..255, got ${show(v)}`);
}

export const TABLES = {
  gmemFlags: GMEM_FLAGS as FlagTable,
  memslotFlags: MEMSLOT_FLAGS as FlagTable,
  attributes: MEMORY_ATTRIBUTES as FlagTable,
  falloc: FALLOC_FLAGS as FlagTable,
  prot: PROT as FlagTable,
  mapFlags: MAP_FLAGS as FlagTable,
  madvise: MADV,
  vmTypes: VM_TYPES,
  whence: { SET: 0, CUR: 1, END: 2, DATA: 3, HOLE: 4 },
  caps: CAPS as Readonly<Record<string, number>>,
} as const;

export const ERRNOS: readonly string[] = ERRNO_NAMES;
