// Scenario values as C source: sizes as KiB/MiB/GiB multiples or shifts, flag words as the
// uapi names OR-ed together, bytes as string literals, and identifiers that cannot collide with
// C keywords or the exported program's own functions. Pure formatting.
import { FALLOC_FLAGS, GMEM_FLAGS, HUGETLB_SIZE_MASK, HUGETLB_SIZE_SHIFT, MADV, MAP_FLAGS, MEMORY_ATTRIBUTES, MEMSLOT_FLAGS, PROT, VM_TYPES, hugetlbShift } from '../model/abi.js';

const UNITS: readonly [bigint, string][] = [[1n << 40n, 'TiB'], [1n << 30n, 'GiB'], [1n << 20n, 'MiB'], [1n << 10n, 'KiB']];

function positive(v: bigint): string {
  if (v < 1024n) return v.toString();
  if (v >= 1n << 44n && (v & (v - 1n)) === 0n) return `(1ULL << ${v.toString(2).length - 1})`;
  for (const [unit, name] of UNITS) if (v % unit === 0n && v / unit < 1024n) return `${v / unit} * ${name}`;
  if (v > 1n << 32n) {
    const bits = BigInt(v.toString(2).length);
    if (bits >= 64n) return `0x${v.toString(16)}ULL`;
    const below = (1n << bits) - v;
    if (below > 0n && below < 1n << 30n && below % 1024n === 0n) return `(1ULL << ${bits}) - ${positive(below)}`;
    return `0x${v.toString(16)}ULL`;
  }
  return v % 4096n === 0n ? `0x${v.toString(16)}` : v.toString();
}

/** An integer (u64 or s64 argument) as readable C. */
export function cNum(v: bigint): string {
  if (v < 0n) return v === -1n ? '-1' : `-(${positive(-v)})`;
  if (v >= 1n << 64n) return `0x${BigInt.asUintN(64, v).toString(16)}ULL`;
  return positive(v);
}

/** A flag word as uapi names (`A | B`), unknown bits in hex; 0 when empty. */
function flagNames(v: bigint, table: Readonly<Record<string, bigint>>, prefix: string): string {
  const parts: string[] = [];
  let rest = BigInt.asUintN(64, v);
  for (const [name, bit] of Object.entries(table)) {
    if (bit !== 0n && (rest & bit) === bit) {
      parts.push(`${prefix}${name}`);
      rest &= ~bit;
    }
  }
  if (rest) parts.push(`0x${rest.toString(16)}${rest > 0xffffffffn ? 'ULL' : ''}`);
  return parts.length ? parts.join(' | ') : '0';
}

export const C_FLAGS = {
  /** With HUGETLB's size encoding (RFC25: log2 of the huge page size in bits 58..63) written as a shift. */
  gmem: (v: bigint) => {
    const shift = hugetlbShift(BigInt.asUintN(64, v));
    const names = flagNames(v & ~HUGETLB_SIZE_MASK, GMEM_FLAGS, 'GUEST_MEMFD_FLAG_');
    if (!shift) return names;
    const size = `(${shift}ULL << ${HUGETLB_SIZE_SHIFT}) /* ${cNum(1n << BigInt(shift))} huge pages */`;
    return names === '0' ? size : `${names} | ${size}`;
  },
  memslot: (v: bigint) => flagNames(v, MEMSLOT_FLAGS, 'KVM_MEM_'),
  attributes: (v: bigint) => flagNames(v, MEMORY_ATTRIBUTES, 'KVM_MEMORY_ATTRIBUTE_'),
  falloc: (v: bigint) => flagNames(v, FALLOC_FLAGS, 'FALLOC_FL_'),
  prot: (v: bigint) => (v === 0n ? 'PROT_NONE' : flagNames(v, PROT, 'PROT_')),
  mapFlags: (v: bigint) => flagNames(v, MAP_FLAGS, 'MAP_'),
};

const named = (v: bigint, table: Readonly<Record<string, number | bigint>>, name: (k: string) => string): string => {
  const hit = Object.entries(table).find(([, n]) => BigInt(n) === v);
  return hit ? name(hit[0]) : cNum(v);
};
const VM_TYPE_C: Readonly<Record<string, string>> = {
  default: 'KVM_X86_DEFAULT_VM', sw_protected: 'KVM_X86_SW_PROTECTED_VM', sev: 'KVM_X86_SEV_VM', sev_es: 'KVM_X86_SEV_ES_VM', snp: 'KVM_X86_SNP_VM', tdx: 'KVM_X86_TDX_VM',
};
export const cVmType = (v: bigint): string => named(v, VM_TYPES, (k) => VM_TYPE_C[k]!);
export const cAdvice = (v: bigint): string => named(v, MADV, (k) => `MADV_${k}`);
export const cWhence = (v: bigint): string => named(v, { SET: 0, CUR: 1, END: 2, DATA: 3, HOLE: 4 }, (k) => `SEEK_${k}`);

/** Bytes as a C string literal (octal escapes, so no following character can extend one). */
export function cBytes(b: Uint8Array): string {
  let s = '"';
  for (const x of b) {
    if (x === 0x22 || x === 0x5c) s += `\\${String.fromCharCode(x)}`;
    else if (x >= 0x20 && x < 0x7f && x !== 0x3f) s += String.fromCharCode(x); // '?' avoids trigraphs
    else s += `\\${x.toString(8).padStart(3, '0')}`;
  }
  return `${s}"`;
}

/** Text as a C string literal. */
export function cString(text: string): string {
  return cBytes(new TextEncoder().encode(text));
}

/** Text inside a C block comment. */
export function cComment(text: string): string {
  return text.replace(/\*\//g, '* /');
}

const C_KEYWORDS = new Set(('auto break case char const continue default do double else enum extern float for goto if inline int long register '
  + 'restrict return short signed sizeof static struct switch typedef union unsigned void volatile while bool true false NULL main errno').split(' '));

/** A C identifier for `name`, distinct from keywords and from every identifier in `taken`. */
export function cIdent(name: string, taken: ReadonlySet<string>): string {
  let id = name.replace(/[^A-Za-z0-9_]+/g, '_').replace(/^_+|_+$/g, '') || 'h';
  if (/^[0-9]/.test(id)) id = `h_${id}`;
  while (C_KEYWORDS.has(id) || taken.has(id)) id = `${id}_`;
  return id;
}

/** The file-scope names some C text defines (macros, functions, globals), to keep handle names clear of them. */
export function identifiersIn(text: string): Set<string> {
  const names = new Set(['printf', 'abi', 'free', 'lacking']);
  for (const m of text.matchAll(/^#define\s+([A-Za-z_]\w*)/gm)) names.add(m[1]!);
  for (const m of text.matchAll(/^(?:static|int|void|struct|enum)\b[^(=;[{]*?\(\*([A-Za-z_]\w*)\)/gm)) names.add(m[1]!);
  for (const m of text.matchAll(/^(?:static|int|void|struct|enum)\b[^(=;[{]*\b([A-Za-z_]\w*)\s*[([=;]/gm)) names.add(m[1]!);
  for (const m of text.matchAll(/^\}\s*([A-Za-z_]\w*)\s*[[;]/gm)) names.add(m[1]!);
  for (const m of text.matchAll(/^struct\s+([A-Za-z_]\w*)\s*;/gm)) names.delete(m[1]!); // a tag, not a name
  for (const m of text.matchAll(/\b(?:OUT|WANT)_[A-Z_]+\b/g)) names.add(m[0]);
  return names;
}
