// IntervalMap: a map from half-open integer ranges [lo, hi) to values, kept as maximal runs of
// equal values in a B+ tree keyed by run start (the model's stand-in for the kernel's maple
// tree). Every operation costs O(log n + runs touched), never O(indices in the range).
// Values must be immutable: clone() shares them between copies.
import { newTree, type Tree as BTree } from './btree.js';

type Tree<V> = BTree<number, Run<V>>;

interface Run<V> { readonly end: number; readonly value: V }

export interface Segment<V> { lo: number; hi: number; value: V }

/** Sorted, disjoint segments inside [lo, hi) and the gaps between them; gaps carry `undefined`. */
export function withGaps<V>(segs: readonly Segment<V>[], lo: number, hi: number): Segment<V | undefined>[] {
  const out: Segment<V | undefined>[] = [];
  let at = lo;
  for (const seg of segs) {
    if (seg.lo > at) out.push({ lo: at, hi: seg.lo, value: undefined });
    out.push(seg);
    at = seg.hi;
  }
  if (at < hi) out.push({ lo: at, hi, value: undefined });
  return out;
}

export class IntervalMap<V> {
  private tree: Tree<V>;
  /** Incremented on every change; lets invariant checks tell "unchanged" in O(1). */
  version = 0;

  constructor(private readonly eq: (a: V, b: V) => boolean = Object.is, tree?: Tree<V>) {
    this.tree = tree ?? newTree<number, Run<V>>();
  }

  /** O(1) copy-on-write clone. */
  clone(): IntervalMap<V> {
    const copy = new IntervalMap<V>(this.eq, this.tree.clone());
    copy.version = this.version;
    return copy;
  }

  /** Number of maximal runs stored. */
  get runs(): number { return this.tree.size; }

  get(i: number): V | undefined {
    const pair = this.tree.getPairOrNextLower(i);
    return pair && i < pair[1].end ? pair[1].value : undefined;
  }

  /** Assigns `value` to every index of [lo, hi), merging with equal neighbours. */
  set(lo: number, hi: number, value: V): void {
    if (hi <= lo) return;
    this.cut(lo, hi);
    let start = lo;
    let end = hi;
    const before = this.tree.nextLowerPair(lo);
    if (before && before[1].end === lo && this.eq(before[1].value, value)) {
      start = before[0];
      this.tree.delete(before[0]);
    }
    const after = this.tree.get(hi);
    if (after && this.eq(after.value, value)) {
      end = after.end;
      this.tree.delete(hi);
    }
    this.tree.set(start, { end, value });
    this.version++;
  }

  /** Removes every index of [lo, hi) from the map. */
  delete(lo: number, hi: number): void {
    if (hi <= lo) return;
    this.cut(lo, hi);
    this.version++;
  }

  /** Segments intersecting [lo, hi), clipped to it, in ascending order. Gaps are skipped. */
  segments(lo = 0, hi = Number.MAX_SAFE_INTEGER): Segment<V>[] {
    const out: Segment<V>[] = [];
    if (hi <= lo) return out;
    const first = this.tree.getPairOrNextLower(lo);
    if (first && first[1].end > lo) out.push({ lo, hi: Math.min(first[1].end, hi), value: first[1].value });
    for (let next = this.tree.nextHigherPair(lo); next && next[0] < hi; next = this.tree.nextHigherPair(next[0])) {
      out.push({ lo: next[0], hi: Math.min(next[1].end, hi), value: next[1].value });
    }
    return out;
  }

  /** Segments and the gaps between them covering exactly [lo, hi); gaps carry `undefined`. */
  cover(lo: number, hi: number): Segment<V | undefined>[] {
    return withGaps(this.segments(lo, hi), lo, hi);
  }

  /** True when every index of [lo, hi) satisfies `pred` (gaps are passed `undefined`). */
  every(lo: number, hi: number, pred: (v: V | undefined) => boolean): boolean {
    for (const seg of this.cover(lo, hi)) if (!pred(seg.value)) return false;
    return true;
  }

  /** The first segment in [lo, hi) whose value satisfies `pred`, if any. */
  find(lo: number, hi: number, pred: (v: V) => boolean): Segment<V> | undefined {
    for (const seg of this.segments(lo, hi)) if (pred(seg.value)) return seg;
    return undefined;
  }

  /** True when the two maps hold the same values at every index. */
  equals(other: IntervalMap<V>): boolean {
    if (this.tree.size !== other.tree.size) return false;
    const a = [...this.segments()];
    const b = [...other.segments()];
    return a.every((s, k) => s.lo === b[k]!.lo && s.hi === b[k]!.hi && this.eq(s.value, b[k]!.value));
  }

  /** Splits runs at lo and hi, then removes everything in between. */
  private cut(lo: number, hi: number): void {
    const left = this.tree.getPairOrNextLower(lo);
    if (left && left[0] < lo && left[1].end > lo) {
      this.tree.set(left[0], { end: lo, value: left[1].value });
      if (left[1].end > hi) this.tree.set(hi, { end: left[1].end, value: left[1].value });
    }
    const right = this.tree.getPairOrNextLower(hi - 1);
    if (right && right[0] >= lo && right[0] < hi && right[1].end > hi) {
      this.tree.set(hi, { end: right[1].end, value: right[1].value });
    }
    this.tree.deleteRange(lo, hi, false);
  }
}
