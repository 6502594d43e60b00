// The page map of each guest_memfd of a model run, by range: which runs of pages are private,
// pinned (a live pin_user_pages), mapped (covered by a host VMA) and in huge folios (hugetlb),
// merged into maximal runs of equal flags. Costs O(attribute runs + pins + VMAs + folio runs),
// never O(pages), so a 1 TiB file with few runs stays small. Reads model state only; never changes it.
import { PAGE_SIZE } from '../model/abi.js';
import type { Kernel } from '../model/kernel.js';
import type { GmemInode } from '../model/state.js';

export const FLAG = { PRIVATE: 1, PINNED: 2, MAPPED: 4, HUGE: 8, PENDING: 16 } as const;

/** One guest_memfd: its label, its size in pages, and [lo, hi, flags] runs that cover it. */
export interface PageMap { readonly name: string; readonly pages: number; readonly runs: [number, number, number][] }

export function modelPageMaps(kernel: Kernel): PageMap[] {
  const out: PageMap[] = [];
  const fdOf = new Map<GmemInode, number>();
  for (const [fd, e] of kernel.state.fds) if (e.kind === 'gmem' && !fdOf.has(e.file.inode)) fdOf.set(e.file.inode, fd);
  for (const inode of kernel.state.inodes) {
    const pages = inode.size / PAGE_SIZE;
    const marks: [number, number, number][] = [];
    for (const s of inode.attributes.segments(0, pages)) {
      if (s.value !== 'shared') marks.push([s.lo, s.hi, s.value === 'private' ? FLAG.PRIVATE : FLAG.PENDING]);
    }
    for (const vma of inode.vmas) marks.push([vma.pgoff, vma.pgoff + (vma.end - vma.start) / PAGE_SIZE, FLAG.MAPPED]);
    for (const pin of kernel.state.pins.values()) {
      if (pin.released) continue;
      const vma = kernel.vmaAt(pin.address);
      if (!vma || vma.file?.inode !== inode) continue;
      const lo = vma.pgoff + Math.floor((pin.address - vma.start) / PAGE_SIZE);
      marks.push([lo, lo + Math.ceil(pin.length / PAGE_SIZE), FLAG.PINNED]);
    }
    if (inode.hugeOrder) { // huge folios (hugetlb): the runs of the folio table of order > 0
      for (const p of inode.pages.segments(0, pages)) {
        for (const f of kernel.state.folios.segments(p.value, p.value + (p.hi - p.lo))) {
          if (f.value.order > 0) marks.push([p.lo + (f.lo - p.value), p.lo + (f.hi - p.value), FLAG.HUGE]);
        }
      }
    }
    const fd = fdOf.get(inode);
    out.push({ name: `guest_memfd ino ${inode.ino}${fd === undefined ? '' : ` (fd ${fd})`}`, pages, runs: sweep(marks, pages) });
  }
  return out;
}

/** Overlapping [lo, hi, flag] marks to disjoint runs covering [0, pages), equal neighbours merged. */
export function sweep(marks: readonly [number, number, number][], pages: number): [number, number, number][] {
  const points: [number, number, number][] = []; // position, flag, +1/-1
  for (const [lo, hi, f] of marks) {
    const a = Math.max(0, lo);
    const b = Math.min(pages, hi);
    if (a < b) { points.push([a, f, 1], [b, f, -1]); }
  }
  points.sort((x, y) => x[0] - y[0]);
  const count = new Map<number, number>();
  const runs: [number, number, number][] = [];
  let at = 0;
  let flags = 0;
  const flush = (to: number) => {
    if (to <= at) return;
    const last = runs[runs.length - 1];
    if (last && last[2] === flags && last[1] === at) last[1] = to;
    else runs.push([at, to, flags]);
    at = to;
  };
  for (let i = 0; i < points.length;) {
    const pos = points[i]![0];
    flush(pos);
    for (; i < points.length && points[i]![0] === pos; i++) {
      const [, f, d] = points[i]!;
      count.set(f, (count.get(f) ?? 0) + d);
    }
    flags = 0;
    for (const [f, n] of count) if (n > 0) flags |= f;
  }
  flush(pages);
  return runs;
}

/** The counters of a model run: private and pinned pages over every guest_memfd, O(runs). */
export function modelCounters(kernel: Kernel): { 'private pages': number; 'pinned pages': number } {
  let priv = 0;
  let pinned = 0;
  for (const m of modelPageMaps(kernel)) {
    for (const [lo, hi, f] of m.runs) {
      if (f & FLAG.PRIVATE) priv += hi - lo;
      if (f & FLAG.PINNED) pinned += hi - lo;
    }
  }
  return { 'private pages': priv, 'pinned pages': pinned };
}
