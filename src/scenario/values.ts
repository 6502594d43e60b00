// Scenario value syntax (scenario-language.md §4): sizes with K/M/G/T suffixes, flag lists of uapi
// names without prefix or raw numbers, data as a string or a byte list. Each parser returns
// the value or a message naming what is allowed; none of them throws.
import {
  CAPS, ERRNO_NAMES, FALLOC_FLAGS, GMEM_FLAGS, MADV, MAP_FLAGS, MEMORY_ATTRIBUTES, MEMSLOT_FLAGS,
  PROT, VM_TYPES, type FlagTable,
} from '../model/abi.js';

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };
const good = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = (message: string): Parsed<never> => ({ ok: false, message });

const SUFFIX: Record<string, bigint> = { '': 1n, K: 1n << 10n, M: 1n << 20n, G: 1n << 30n, T: 1n << 40n, P: 1n << 50n, E: 1n << 60n };

export function show(v: unknown): string {
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'string') return JSON.stringify(v);
  try { return JSON.stringify(v) ?? String(v); } catch { return String(v); }
}

/**
 * A byte count or integer: a YAML integer, or a string "16K", "2M", "0x1000", "-4K", "2^63",
 * "2^64-4K". Suffixes are powers of two.
 */
export function parseSize(v: unknown): Parsed<bigint> {
  if (typeof v === 'bigint') return good(v);
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) return bad(`expected an integer, got ${show(v)} (write large values as strings, e.g. "2^63")`);
    return good(BigInt(v));
  }
  if (typeof v !== 'string') return bad(`expected a size (an integer, or a string like "16K"), got ${show(v)}`);
  const terms = v.replace(/\s+/g, '').split(/(?=[+-])/);
  let total = 0n;
  for (const term of terms) {
    const m = /^([+-]?)(?:(0x[0-9a-f]+|\d+)([KMGTPE]?)|2\^(\d+))$/i.exec(term);
    if (!m) return bad(`expected a size like "16K", "0x1000" or "2^63", got ${show(v)}`);
    const [, sign, num, suffix, pow] = m;
    const magnitude = pow !== undefined ? 1n << BigInt(pow) : BigInt(num!) * SUFFIX[suffix!.toUpperCase()]!;
    total += sign === '-' ? -magnitude : magnitude;
  }
  return good(total);
}

/** A flag list: names from `table` (OR-ed) and raw numbers (OR-ed in as bits). */
export function parseFlags(v: unknown, table: FlagTable, what: string): Parsed<bigint> {
  const items = Array.isArray(v) ? v : [v];
  let bits = 0n;
  for (const item of items) {
    if (typeof item === 'string' && item in table) { bits |= table[item]!; continue; }
    if (typeof item === 'string' && !/^(0x)?[0-9]/i.test(item)) {
      return bad(`unknown ${what} ${show(item)}; allowed: ${Object.keys(table).join(', ')} or a number`);
    }
    const n = parseSize(item);
    if (!n.ok) return bad(`unknown ${what} ${show(item)}; allowed: ${Object.keys(table).join(', ')} or a number`);
    bits |= n.value;
  }
  return good(bits);
}

/** Named values that are not bit flags (one name, or a raw number). */
export function parseNamed(v: unknown, table: Readonly<Record<string, number | bigint>>, what: string): Parsed<bigint> {
  if (typeof v === 'string' && v in table) return good(BigInt(table[v]!));
  if (typeof v === 'number' || typeof v === 'bigint') return parseSize(v);
  return bad(`unknown ${what} ${show(v)}; allowed: ${Object.keys(table).join(', ')} or a number`);
}

/** Bytes to write: a string (its UTF-8 bytes) or a list of byte values. */
export function parseBytes(v: unknown): Parsed<Uint8Array> {
  if (typeof v === 'string') return good(new TextEncoder().encode(v));
  if (Array.isArray(v) && v.every((b) => (typeof b === 'number' || typeof b === 'bigint') && Number(b) >= 0 && Number(b) <= 255 && Number.isInteger(Number(b)))) {
    return good(Uint8Array.from(v.map(Number)));
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
