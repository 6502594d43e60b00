// Parameters of the reference protocol (bench/spin/gmem.pml's -D options; docs/checker.md §3.6) with their
// ranges and defaults, and the one validation routine every caller uses.
// It must never construct a model or know about the state layout.

export type HolderKind = 'ST' | 'IOU' | 'VFIO';
export const HOLDER_KINDS: readonly HolderKind[] = ['ST', 'IOU', 'VFIO'];

export interface ReferenceParams {
  /** N: pages in the file, 1..6. */
  readonly pages: number;
  /** H: pin holders, 1..3. */
  readonly holders: number;
  /** C: conversion requests the guest may make, 0..255. */
  readonly requests: number;
  /** BUG: 0 = the protocol; 1 NOPINCHECK, 2 TOCTOU, 3 NOROLLBACK, 4 FAULTPRIV. */
  readonly bug: number;
  /** COOP: no new pin inside the range of an outstanding to-private request. */
  readonly coop: boolean;
  /** K0, K1, K2: kind of each holder (default ST, IOU, VFIO). */
  readonly kinds: readonly HolderKind[];
  /** SEMANTIC: check only S4, S5 and WF (not S1, S2). */
  readonly semantic: boolean;
  /** Symmetry reduction over interchangeable holders (changes the counts). */
  readonly symmetry: boolean;
}

export const RANGES = {
  pages: [1, 6], holders: [1, 3], requests: [0, 255], bug: [0, 4],
} as const;

export const BUG_NAMES = ['none', 'NOPINCHECK', 'TOCTOU', 'NOROLLBACK', 'FAULTPRIV'] as const;

/** gmem.pml's defaults: N=3, H=2, C=2, BUG=0, COOP=0, kinds ST, IOU, VFIO. */
export function referenceParams(p: Partial<ReferenceParams> = {}): ReferenceParams {
  const holders = p.holders ?? 2;
  return {
    pages: p.pages ?? 3,
    holders,
    requests: p.requests ?? 2,
    bug: p.bug ?? 0,
    coop: p.coop ?? false,
    kinds: p.kinds ?? HOLDER_KINDS.slice(0, holders),
    semantic: p.semantic ?? false,
    symmetry: p.symmetry ?? false,
  };
}

/** null if valid, else a message naming the parameter and its allowed values. */
export function validateReferenceParams(p: ReferenceParams): string | null {
  for (const k of ['pages', 'holders', 'requests', 'bug'] as const) {
    const [lo, hi] = RANGES[k];
    const v = p[k];
    if (!Number.isInteger(v) || v < lo || v > hi) return `${k} must be an integer in ${lo}..${hi} (got ${v})`;
  }
  if (p.kinds.length !== p.holders) {
    return `kinds must name one kind per holder (${p.holders}), got ${p.kinds.length}`;
  }
  for (const k of p.kinds) {
    if (!HOLDER_KINDS.includes(k)) return `kinds must be ST, IOU or VFIO (got ${String(k)})`;
  }
  return null;
}
