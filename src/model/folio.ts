// The folio table (KernelState.folios, folioData): allocation of blocks of folio ids, reference
// counting over ranges of ids, freeing with the last reference, zeroing before first exposure
// and page contents. Every operation takes a range of ids and costs what its runs cost.
import { PAGE_SIZE } from './abi.js';
import { extraRefs, withRun, type Folio, type FolioIds, type FolioRun, type KernelState } from './state.js';

export type RefKind = 'mapCount' | 'gets' | 'pinsShort' | 'pinsLong';

/** Allocate `nr` order-0 folios for pages [index, index + nr) of inode `ino`; returns the first id. */
export function folioAlloc(s: KernelState, ino: number, index: number, nr: number, init: Partial<FolioRun> = {}): number {
  const id = s.nextId;
  s.nextId += nr;
  s.folios.set(id, id + nr, {
    ino, index, order: 0, uptodate: false, inCache: true, mapCount: 0, gets: 0, pinsShort: 0, pinsLong: 0, ...init,
  });
  return id;
}

/** One folio as a snapshot (undefined once freed). */
export function folioGet(s: KernelState, id: number): Folio | undefined {
  const r = s.folios.get(id);
  return r && {
    id, ino: r.ino, index: r.index, order: r.order, uptodate: r.uptodate, inCache: r.inCache,
    mapCount: r.mapCount, gets: r.gets, pinsShort: r.pinsShort, pinsLong: r.pinsLong, data: s.folioData.get(id) ?? null,
  };
}

/** Add `delta` references of `kind` to every folio of [lo, hi); frees folios left unreferenced. */
export function folioAddRefs(s: KernelState, lo: number, hi: number, kind: RefKind, delta: number): void {
  s.folios.update(lo, hi, (r) => withRun(r, r.index, r.inCache, r.uptodate,
    r.mapCount + (kind === 'mapCount' ? delta : 0), r.gets + (kind === 'gets' ? delta : 0),
    r.pinsShort + (kind === 'pinsShort' ? delta : 0), r.pinsLong + (kind === 'pinsLong' ? delta : 0)));
  if (delta < 0) folioFreeUnused(s, lo, hi);
}

/** The page cache dropped its reference to [lo, hi) (punch, eviction): detached, maybe freed. */
export function folioDetach(s: KernelState, lo: number, hi: number): void {
  s.folios.update(lo, hi, (r) => (r.inCache ? withRun(r, r.index, false, r.uptodate, r.mapCount, r.gets, r.pinsShort, r.pinsLong) : r));
  folioFreeUnused(s, lo, hi);
}

/** Free the folios of [lo, hi) that hold no reference at all (not even the page cache's). */
export function folioFreeUnused(s: KernelState, lo: number, hi: number): void {
  for (const seg of s.folios.segments(lo, hi)) {
    if (seg.value.inCache || extraRefs(seg.value) > 0) continue;
    s.folios.delete(seg.lo, seg.hi);
    s.folioData.deleteRange(seg.lo, seg.hi, false);
  }
}

/** Zero the folios of [lo, hi) that were never exposed (I6). */
export function folioPrepare(s: KernelState, lo: number, hi: number): void {
  for (const seg of s.folios.segments(lo, hi)) {
    if (seg.value.uptodate) continue;
    const r = seg.value;
    s.folioData.deleteRange(seg.lo, seg.hi, false);
    s.folios.set(seg.lo, seg.hi, withRun(r, r.index, r.inCache, true, r.mapCount, r.gets, r.pinsShort, r.pinsLong));
  }
}

/** Drop the contents of [lo, hi): they read zero afterwards. */
export function folioZero(s: KernelState, lo: number, hi: number): void {
  s.folioData.deleteRange(lo, hi, false);
}

/** The first run of [lo, hi) satisfying `pred`, as [first id, its state]. */
export function folioFind(s: KernelState, lo: number, hi: number, pred: (r: FolioRun) => boolean): { id: number; run: FolioRun } | undefined {
  const seg = s.folios.find(lo, hi, pred);
  return seg && { id: seg.lo, run: seg.value };
}

export function folioRead(s: KernelState, id: number, offset: number, into: Uint8Array): void {
  const data = s.folioData.get(id);
  if (data) into.set(data.subarray(offset, offset + into.length));
  else into.fill(0);
}

/**
 * Copy-on-write: a page is replaced, never written in place, so pages are immutable and a copy
 * of the state (the full checker's world clone) shares them instead of copying them.
 */
export function folioWrite(s: KernelState, id: number, offset: number, bytes: Uint8Array): void {
  const old = s.folioData.get(id);
  const data = old ? old.slice() : new Uint8Array(PAGE_SIZE);
  data.set(bytes, offset);
  s.folioData.set(id, data);
}

/** Append the ids [id, id + nr) to a list of blocks, merging with the last block when contiguous. */
export function pushIds(list: FolioIds[], id: number, nr: number): void {
  const last = list[list.length - 1];
  if (last && last.id + last.nr === id) list[list.length - 1] = { id: last.id, nr: last.nr + nr };
  else list.push({ id, nr });
}

/** The id of the `page`-th folio of a list of blocks. */
export function idAt(list: readonly FolioIds[], page: number): number | undefined {
  for (const b of list) {
    if (page < b.nr) return b.id + page;
    page -= b.nr;
  }
  return undefined;
}

/** The folios of a list of blocks as snapshots, one per page (for small lists: tools, tests). */
export function foliosOf(s: KernelState, list: readonly FolioIds[]): Folio[] {
  const out: Folio[] = [];
  for (const b of list) for (let i = 0; i < b.nr; i++) { const f = folioGet(s, b.id + i); if (f) out.push(f); }
  return out;
}
