// The pin registry: which holder pins which guest_memfd page range, as an interval index per
// guest_memfd (runs of equal holder sets), so that the error_offset of an EAGAIN becomes the
// list of holders to act on in O(log n). Userspace bookkeeping only: it never calls the kernel.
import { IntervalMap } from '../model/interval-map.js';

/** Holder ids at a page, kept sorted so equal sets compare equal and runs merge. */
type Ids = readonly number[];
const sameIds = (a: Ids, b: Ids): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

export class PinRegistry {
  private readonly byFd = new Map<number, IntervalMap<Ids>>();

  private index(fd: number): IntervalMap<Ids> {
    let m = this.byFd.get(fd);
    if (!m) this.byFd.set(fd, (m = new IntervalMap<Ids>(sameIds)));
    return m;
  }

  /** Record that `holder` pins pages [lo, hi) of guest_memfd `fd`. */
  add(fd: number, lo: number, hi: number, holder: number): void {
    const m = this.index(fd);
    for (const seg of [...m.cover(lo, hi)]) {
      const ids = seg.value ?? [];
      if (!ids.includes(holder)) m.set(seg.lo, seg.hi, [...ids, holder].sort((a, b) => a - b));
    }
  }

  /** Forget `holder` on pages [lo, hi) of `fd`. */
  remove(fd: number, lo: number, hi: number, holder: number): void {
    const m = this.byFd.get(fd);
    if (!m) return;
    for (const seg of [...m.segments(lo, hi)]) {
      const rest = seg.value.filter((x) => x !== holder);
      if (rest.length) m.set(seg.lo, seg.hi, rest);
      else m.delete(seg.lo, seg.hi);
    }
  }

  /** Holders pinning page `index` of `fd`. */
  at(fd: number, index: number): Ids {
    return this.byFd.get(fd)?.get(index) ?? [];
  }

  /** Holders pinning any page of [lo, hi) of `fd`, each once, ascending. */
  overlapping(fd: number, lo: number, hi: number): number[] {
    const out = new Set<number>();
    for (const seg of this.byFd.get(fd)?.segments(lo, hi) ?? []) seg.value.forEach((x) => out.add(x));
    return [...out].sort((a, b) => a - b);
  }
}
