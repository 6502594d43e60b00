// ExtentMap: a map from half-open integer ranges [lo, hi) to values that may *progress* along
// the range. A run stores the value of its first index; `codec.at(v, d)` derives the value d
// indices further on (folio id + d, page index + d, or v itself for constant values), and
// neighbouring runs merge when the left one, carried to the boundary, equals the right one.
// Kept in a B+ tree keyed by run start, every operation costs O(log n + runs touched), never
// O(indices in the range): the page cache, host PTEs, guest SPTEs and the folio table of a
// 1 TiB guest are a handful of runs. Values must be immutable (clone() shares them).
import { newTree, type Tree as BTree } from './btree.js';
import { withGaps } from './interval-map.js';

export interface ExtentCodec<V> {
  /** The value `delta` indices after an index holding `v` (delta >= 0). */
  at(v: V, delta: number): V;
  /** Whether two values are the same (decides merging; a codec may refuse by returning false). */
  eq(a: V, b: V): boolean;
}

/** Values that progress by one per index: folio ids. */
export const ID_CODEC: ExtentCodec<number> = { at: (v, d) => v + d, eq: (a, b) => a === b };

interface Run<V> { readonly end: number; readonly value: V }

export interface Extent<V> { lo: number; hi: number; value: V }

export class ExtentMap<V> {
  private tree: BTree<number, Run<V>>;
  /** Incremented on every change; lets invariant checks tell "unchanged" in O(1). */
  version = 0;

  constructor(private readonly codec: ExtentCodec<V>, tree?: BTree<number, Run<V>>) {
    this.tree = tree ?? newTree<number, Run<V>>();
  }

  /** O(1) copy-on-write clone. */
  clone(): ExtentMap<V> {
    const copy = new ExtentMap<V>(this.codec, this.tree.clone());
    copy.version = this.version;
    return copy;
  }

  /** Number of maximal runs stored. */
  get runs(): number { return this.tree.size; }

  /** Number of indices covered (O(runs)). */
  count(lo = Number.MIN_SAFE_INTEGER, hi = Number.MAX_SAFE_INTEGER): number {
    let n = 0;
    for (const e of this.segments(lo, hi)) n += e.hi - e.lo;
    return n;
  }

  get(i: number): V | undefined {
    const pair = this.tree.getPairOrNextLower(i);
    return pair && i < pair[1].end ? this.codec.at(pair[1].value, i - pair[0]) : undefined;
  }

  /** Assigns [lo, hi) the values starting with `value` at lo, merging with neighbours. */
  set(lo: number, hi: number, value: V): void {
    if (hi <= lo) return;
    this.cut(lo, hi);
    let start = lo;
    let end = hi;
    let first = value;
    const before = this.tree.nextLowerPair(lo);
    if (before && before[1].end === lo && this.codec.eq(this.codec.at(before[1].value, lo - before[0]), value)) {
      start = before[0];
      first = before[1].value;
      this.tree.delete(before[0]);
    }
    const after = this.tree.get(hi);
    if (after && this.codec.eq(this.codec.at(value, hi - lo), after.value)) {
      end = after.end;
      this.tree.delete(hi);
    }
    this.tree.set(start, { end, value: first });
    this.version++;
  }

  /** Removes every index of [lo, hi) from the map. */
  delete(lo: number, hi: number): void {
    if (hi <= lo) return;
    this.cut(lo, hi);
    this.version++;
  }

  /** Segments intersecting [lo, hi), clipped to it (values carried to the clipped start). */
  segments(lo = Number.MIN_SAFE_INTEGER, hi = Number.MAX_SAFE_INTEGER): Extent<V>[] {
    const out: Extent<V>[] = [];
    if (hi <= lo) return out;
    const at = this.codec.at;
    const first = this.tree.getPairOrNextLower(lo);
    if (first && first[1].end > lo) {
      const a = Math.max(first[0], lo);
      out.push({ lo: a, hi: Math.min(first[1].end, hi), value: at(first[1].value, a - first[0]) });
    }
    for (let next = this.tree.nextHigherPair(lo); next && next[0] < hi; next = this.tree.nextHigherPair(next[0])) {
      out.push({ lo: next[0], hi: Math.min(next[1].end, hi), value: next[1].value });
    }
    return out;
  }

  /** Segments and the gaps between them covering exactly [lo, hi); gaps carry `undefined`. */
  cover(lo: number, hi: number): Extent<V | undefined>[] {
    return withGaps(this.segments(lo, hi), lo, hi);
  }

  /**
   * Replaces the value of every stored run within [lo, hi) by `f(value, lo, hi)` (gaps stay
   * gaps), merging the results with equal neighbours. `f` may return undefined to delete.
   */
  update(lo: number, hi: number, f: (v: V, lo: number, hi: number) => V | undefined): void {
    for (const seg of this.segments(lo, hi)) {
      const v = f(seg.value, seg.lo, seg.hi);
      if (v === undefined) this.delete(seg.lo, seg.hi);
      else if (v !== seg.value) this.set(seg.lo, seg.hi, v);
    }
  }

  /** The first segment in [lo, hi) whose value satisfies `pred`, if any. */
  find(lo: number, hi: number, pred: (v: V, lo: number, hi: number) => boolean): Extent<V> | undefined {
    for (const seg of this.segments(lo, hi)) if (pred(seg.value, seg.lo, seg.hi)) return seg;
    return undefined;
  }

  /** Splits runs at lo and hi, then removes everything in between. */
  private cut(lo: number, hi: number): void {
    const at = this.codec.at;
    const left = this.tree.getPairOrNextLower(lo);
    if (left && left[1].end > lo) {
      const [start, run] = left;
      if (start < lo) this.tree.set(start, { end: lo, value: run.value });
      else this.tree.delete(start);
      if (run.end >= hi) {
        if (run.end > hi) this.tree.set(hi, { end: run.end, value: at(run.value, hi - start) });
        return;
      }
    }
    for (let next = this.tree.nextHigherPair(lo); next && next[0] < hi; next = this.tree.nextHigherPair(next[0])) {
      const [start, run] = next;
      this.tree.delete(start);
      if (run.end > hi) {
        this.tree.set(hi, { end: run.end, value: at(run.value, hi - start) });
        return;
      }
    }
  }
}
