// Bit layout of a reference-protocol state: each variable of gmem.pml (per-page arrays as one
// contiguous group) is a bit field inside one 31-bit word; fields are packed first-fit,
// widest first, so (N,H,C) = (4,3,2) fits in two words.
// It must never know what a field means; model.ts does.

export const F = {
  PRIV: 0, ALLOC: 1, MAPPED: 2, GSNAP: 3, CONTENT: 4, GV: 5, HPG: 6,
  LEFT: 7, PH: 8, LO: 9, HI: 10, DIR: 11, BLK: 12, CUR: 13,
} as const;
const NFIELDS = 14;

export interface Layout {
  readonly words: number;
  readonly bits: number;
  /** Per field: word index, shift, and unshifted mask ((1 << width) - 1). */
  readonly word: Int32Array;
  readonly shift: Int32Array;
  readonly mask: Int32Array;
  /** Bits per holder in the HPG group (holds 0..N). */
  readonly holderBits: number;
}

export function bitsFor(maxValue: number): number {
  let b = 1;
  while ((1 << b) <= maxValue) b++;
  return b;
}

/**
 * @param wordBits bits used per 32-bit word (at most 31: bit 31 belongs to the visited set);
 *   smaller values spread a state over more words (tests use this for the multi-word paths).
 */
export function makeLayout(n: number, h: number, c: number, withCur: boolean, wordBits = 31): Layout {
  const pb = bitsFor(n - 1);
  const hb = bitsFor(n);
  const width = [n, n, n, n, 2 * n, 2 * n, h * hb, bitsFor(c), 2, pb, pb, 1, pb, withCur ? pb : 0];
  const word = new Int32Array(NFIELDS);
  const shift = new Int32Array(NFIELDS);
  const mask = new Int32Array(NFIELDS);
  const used: number[] = [];
  const order = [...width.keys()].sort((a, b) => width[b] - width[a] || a - b);
  for (const f of order) {
    const w = width[f];
    mask[f] = w === 0 ? 0 : (1 << w) - 1;
    if (w === 0) continue;
    let i = used.findIndex((u) => u + w <= wordBits);
    if (i < 0) {
      i = used.length;
      used.push(0);
    }
    word[f] = i;
    shift[f] = used[i];
    used[i] += w;
  }
  return { words: used.length, bits: width.reduce((a, b) => a + b, 0), word, shift, mask, holderBits: hb };
}

/** Reads field f of the state at st[off..] (for reports; the model inlines its own). */
export function field(layout: Layout, st: Uint32Array, off: number, f: number): number {
  return (st[off + layout.word[f]] >>> layout.shift[f]) & layout.mask[f];
}
