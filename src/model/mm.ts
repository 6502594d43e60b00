// Host mm: the process's VMAs, their PTEs, the guest_memfd fault handler, host loads and
// stores through a mapping, madvise, munmap and GUP. A gmem VMA keys its PTEs by file page
// index (so unmap_mapping_range is a range delete); an anonymous VMA keys them by virtual page.
// PTEs are an ExtentMap to folio ids and faults are handled a range at a time (faultRange):
// populating 1 TiB costs the runs it creates, with exactly the page-by-page outcome (the pages
// before the first refused one are faulted in, the failure names that page's address).
// Callers have validated alignment and ranges; faults return signals, GUP returns errnos.
import { GMEM_FLAGS, MADV, PAGE_SIZE, PROT } from './abi.js';
import { folioAddRefs, folioAlloc, folioRead, folioWrite, pushIds } from './folio.js';
import { gmemAllocate, gmemNrPages, gmemPrepareRange, gmemPunchHole } from './gmem.js';
import { kvmMmuNotifierInvalidate } from './kvm.js';
import type { HugetlbPolicy } from './profile.js';
import { fail, signal, type ErrnoFailure, type SignalFailure } from './result.js';
import { ExtentMap, ID_CODEC, type FolioIds, type GmemFile, type GmemInode, type KernelState, type Vma } from './state.js';

export function findVma(s: KernelState, addr: number): Vma | undefined {
  const pair = s.vmas.getPairOrNextLower(addr);
  return pair && addr < pair[1].end ? pair[1] : undefined;
}

/** VMAs overlapping [lo, hi), ascending. */
export function vmasIn(s: KernelState, lo: number, hi: number): Vma[] {
  const out: Vma[] = [];
  const first = s.vmas.getPairOrNextLower(lo);
  for (const [start, vma] of s.vmas.entries(first ? first[0] : lo)) {
    if (start >= hi) break;
    if (vma.end > lo) out.push(vma);
  }
  return out;
}

/** The PTE key of the page at `addr` (file page index for gmem, virtual page otherwise). */
export function pteKey(vma: Vma, addr: number): number {
  const vpn = Math.floor(addr / PAGE_SIZE);
  return vma.file ? vma.pgoff + (vpn - vma.start / PAGE_SIZE) : vpn;
}

/** The PTE key range of [lo, hi) within a VMA. */
function keyRange(vma: Vma, lo: number, hi: number): [number, number] {
  const a = Math.max(lo, vma.start);
  const b = Math.min(hi, vma.end);
  return [pteKey(vma, a), pteKey(vma, b - 1) + 1];
}

export function insertVma(s: KernelState, vma: Vma): void {
  s.vmas.set(vma.start, vma);
  if (vma.file) {
    vma.file.inode.vmas.add(vma);
    vma.file.vmaRefs++;
  }
}

/**
 * Drop the PTEs with keys in [klo, khi) of one VMA, then run the mmu notifier for the addresses
 * they covered: KVM zaps the guest mappings it built from those PTEs (kvm.ts).
 */
function zapKeys(s: KernelState, vma: Vma, klo: number, khi: number): void {
  const first = pteKey(vma, vma.start);
  const lo = Math.max(klo, first);
  const hi = Math.min(khi, first + (vma.end - vma.start) / PAGE_SIZE);
  if (hi <= lo) return;
  const present = [...vma.ptes.segments(lo, hi)];
  vma.ptes.delete(lo, hi);
  for (const seg of present) folioAddRefs(s, seg.value, seg.value + (seg.hi - seg.lo), 'mapCount', -1);
  kvmMmuNotifierInvalidate(s, vma.start + (lo - first) * PAGE_SIZE, vma.start + (hi - first) * PAGE_SIZE);
}

/** unmap_mapping_range(): zap every host PTE of file pages [lo, hi) of the inode, in every VMA. */
export function unmapMappingRange(s: KernelState, inode: GmemInode, lo: number, hi: number): void {
  for (const vma of inode.vmas) zapKeys(s, vma, lo, hi);
}

/** zap_page_range(): drop PTEs of the addresses [lo, hi). */
export function zapAddressRange(s: KernelState, lo: number, hi: number): void {
  for (const vma of vmasIn(s, lo, hi)) {
    const [klo, khi] = keyRange(vma, lo, hi);
    zapKeys(s, vma, klo, khi);
  }
}

/**
 * munmap(): remove [lo, hi) from the address space, splitting VMAs at the edges. Returns the
 * files that lost a VMA reference so the caller can release them.
 */
export function unmapRange(s: KernelState, lo: number, hi: number): GmemFile[] {
  const dropped: GmemFile[] = [];
  for (const vma of vmasIn(s, lo, hi)) {
    const [klo, khi] = keyRange(vma, lo, hi);
    zapKeys(s, vma, klo, khi);
    s.vmas.delete(vma.start);
    if (vma.file) {
      vma.file.inode.vmas.delete(vma);
      vma.file.vmaRefs--;
    }
    if (vma.start < lo) insertVma(s, splitPiece(vma, vma.start, lo, klo, khi));
    if (vma.end > hi) insertVma(s, splitPiece(vma, hi, vma.end, klo, khi));
    if (vma.file) dropped.push(vma.file);
  }
  return dropped;
}

function splitPiece(vma: Vma, start: number, end: number, klo: number, khi: number): Vma {
  const ptes = vma.ptes.clone();
  const [plo, phi] = [pteKey(vma, start), pteKey(vma, end - 1) + 1];
  ptes.delete(Number.MIN_SAFE_INTEGER, plo);
  ptes.delete(phi, Number.MAX_SAFE_INTEGER);
  ptes.delete(klo, khi);
  const pgoff = vma.file ? pteKey(vma, start) : 0;
  return { start, end, prot: vma.prot, shared: vma.shared, file: vma.file, pgoff, ptes };
}

/**
 * The page fault handler over [addr, addr+length), page by page in address order
 * (kernel-semantics §1.3): SIGSEGV without a VMA or permission; for guest_memfd SIGBUS past EOF
 * or on a private page, otherwise the folios are allocated if absent, zeroed on first use and
 * mapped. Pages with a present PTE are left as they are. Returns the failure at the first page
 * refused (every page before it is faulted in), addressed at the access's first byte in it.
 */
export function faultRange(s: KernelState, addr: number, length: number, write: boolean): SignalFailure | undefined {
  const end = addr + length;
  for (let at = addr; at < end;) {
    const vma = findVma(s, at);
    if (!vma) return signal('SIGSEGV', at, 'no mapping at this address');
    if ((vma.prot & (write ? PROT.WRITE : PROT.READ)) === 0n) {
      return signal('SIGSEGV', at, `mapping is not ${write ? 'writable' : 'readable'}`);
    }
    const stop = Math.min(end, vma.end);
    const failed = faultVma(s, vma, at, stop);
    if (failed) return failed;
    at = stop;
  }
  return undefined;
}

/** faultRange within one VMA whose permissions allow the access: [a, b) are user addresses. */
function faultVma(s: KernelState, vma: Vma, a: number, b: number): SignalFailure | undefined {
  const first = pteKey(vma, vma.start);
  const address = (key: number) => Math.max(a, vma.start + (key - first) * PAGE_SIZE);
  for (const gap of [...vma.ptes.cover(pteKey(vma, a), pteKey(vma, b - 1) + 1)]) {
    if (gap.value !== undefined) continue;
    if (!vma.file) { // anonymous memory: a fresh zero page per fault, owned by the PTE
      vma.ptes.set(gap.lo, gap.hi, folioAlloc(s, 0, gap.lo, gap.hi - gap.lo, { inCache: false, uptodate: true, mapCount: 1 }));
      continue;
    }
    const inode = vma.file.inode;
    const nr = gmemNrPages(inode);
    let stop = gap.hi;
    let why = '';
    if (gap.lo >= nr) [stop, why] = [gap.lo, `file page ${gap.lo} is past EOF`];
    else {
      const refused = s.faultAcceptsPrivate ? undefined : [...inode.attributes.cover(gap.lo, Math.min(gap.hi, nr))].find((x) => x.value !== 'shared');
      if (refused) {
        if (refused.value === undefined) throw new Error(`gmem inode ${inode.ino}: no attribute at page ${refused.lo}`);
        const attr = refused.value === 'pending' ? 'on its way to private (deferred)' : 'private';
        [stop, why] = [refused.lo, `file offset ${refused.lo * PAGE_SIZE} is ${attr}`];
      } else if (gap.hi > nr) [stop, why] = [nr, `file page ${nr} is past EOF`];
    }
    mapFilePages(s, vma, inode, gap.lo, stop);
    if (stop < gap.hi) return signal('SIGBUS', address(stop), why);
  }
  return undefined;
}

/** Allocate, zero on first use and map file pages [lo, hi) (none of them has a PTE). */
function mapFilePages(s: KernelState, vma: Vma, inode: GmemInode, lo: number, hi: number): void {
  if (hi <= lo) return;
  gmemAllocate(s, inode, lo, hi);
  gmemPrepareRange(s, inode, lo, hi);
  for (const seg of [...inode.pages.segments(lo, hi)]) {
    vma.ptes.set(seg.lo, seg.hi, seg.value);
    folioAddRefs(s, seg.value, seg.value + (seg.hi - seg.lo), 'mapCount', 1);
  }
}

/** The folio id behind the present PTE of `addr`, if any. */
export function pteAt(s: KernelState, addr: number): number | undefined {
  const vma = findVma(s, addr);
  return vma ? vma.ptes.get(pteKey(vma, addr)) : undefined;
}

/** The folio ids behind the present PTEs of [lo, hi) in address order, as blocks (gaps skipped). */
export function pteIds(s: KernelState, lo: number, hi: number): FolioIds[] {
  const out: FolioIds[] = [];
  for (const vma of vmasIn(s, lo, hi)) {
    const [klo, khi] = keyRange(vma, lo, hi);
    for (const seg of vma.ptes.segments(klo, khi)) pushIds(out, seg.value, seg.hi - seg.lo);
  }
  return out;
}

/**
 * Copy [start, start+length) of a page-indexed space to or from `store` (a load when it is
 * undefined), one page at a time: `folioAt(at)` yields the id of the folio behind the page of
 * byte `at`, or a failure that ends the access there (the pages before it are already copied).
 */
export function copyThroughPages<F extends { ok: false }>(
  s: KernelState, start: number, length: number, store: Uint8Array | undefined, folioAt: (at: number) => number | F,
): Uint8Array | F {
  const out = store ?? new Uint8Array(length);
  for (let done = 0; done < length;) {
    const at = start + done;
    const id = folioAt(at);
    if (typeof id !== 'number') return id;
    const inPage = at % PAGE_SIZE;
    const n = Math.min(PAGE_SIZE - inPage, length - done);
    if (store) folioWrite(s, id, inPage, store.subarray(done, done + n));
    else folioRead(s, id, inPage, out.subarray(done, done + n));
    done += n;
  }
  return out;
}

/**
 * A host load or store of [addr, addr+length) through the process's mappings: the pages are
 * faulted in, then copied; a store writes the bytes before the first refused page.
 */
export function hostAccess(s: KernelState, addr: number, length: number, store?: Uint8Array): Uint8Array | SignalFailure {
  const failed = faultRange(s, addr, length, store !== undefined);
  if (failed && !store) return failed;
  const n = failed ? failed.address - addr : length;
  const r = copyThroughPages<never>(s, addr, n, store?.subarray(0, n), (at) => pteAt(s, at)!);
  return failed ?? (store ?? r);
}

/**
 * get_user_pages / pin_user_pages over [addr, addr+length): each page through its PTE or by
 * faulting it in. Any page the fault handler refuses makes the call fail with EFAULT (callers
 * such as io_uring and VFIO release what they got, so the model is all-or-nothing).
 */
export function gupPages(s: KernelState, addr: number, length: number, write: boolean): FolioIds[] | ErrnoFailure {
  const end = addr + length;
  for (let at = addr; at < end;) {
    const vma = findVma(s, at);
    if (!vma) return fail('EFAULT', `no mapping at ${hex(at)}`);
    if (vmaNoDirectMap(vma)) return fail('EFAULT', NO_DIRECT_MAP_GUP(at));
    if (write && (vma.prot & PROT.WRITE) === 0n) return fail('EFAULT', `mapping at ${hex(at)} is not writable`);
    const stop = Math.min(end, vma.end);
    const r = faultRange(s, at, stop - at, write);
    if (r) return fail('EFAULT', `GUP fault: ${r.why}`);
    at = stop;
  }
  return pteIds(s, addr, end);
}

/**
 * DMR: the VMA maps a guest_memfd created with NO_DIRECT_MAP (AS_NO_DIRECT_MAP on its mapping).
 * GUP refuses it in check_vma_flags (EFAULT) and GUP-fast never takes it; host loads and
 * stores through the mapping still work (kernel-semantics §1.11).
 */
export function vmaNoDirectMap(vma: Vma): boolean {
  return vma.file !== null && (vma.file.inode.flags & GMEM_FLAGS.NO_DIRECT_MAP) !== 0n;
}

const NO_DIRECT_MAP_GUP = (at: number) => `GUP refused: the mapping at ${hex(at)} is NO_DIRECT_MAP guest_memfd (check_vma_flags, kernel-semantics §1.11 [DMR])`;

/** madvise() on a validated, fully mapped range. */
export function madviseRange(s: KernelState, lo: number, hi: number, advice: number, huge?: HugetlbPolicy): ErrnoFailure | undefined {
  switch (advice) {
    case MADV.DONTNEED:
      zapAddressRange(s, lo, hi);
      return undefined;
    case MADV.REMOVE:
      // madvise_remove(): no file (private anonymous memory) is EINVAL; EACCES needs a mapping
      // without VM_MAYWRITE, which a shared mapping here always has (guest_memfd is O_RDWR,
      // shared anonymous memory is shmem), whatever its PROT (measured: edges-found-by-hand).
      for (const vma of vmasIn(s, lo, hi)) {
        if (!vma.file && !vma.shared) return fail('EINVAL', 'MADV_REMOVE of private anonymous memory (no file behind it)');
        const [klo, khi] = keyRange(vma, lo, hi);
        if (!vma.file) { zapKeys(s, vma, klo, khi); continue; } // shared anonymous = shmem: the punched pages read back zero
        const failed = gmemPunchHole(s, vma.file.inode, klo, khi, huge); // acts as PUNCH_HOLE (kernel-probe §3)
        if (failed) return failed;
      }
      return undefined;
    case MADV.POPULATE_READ:
    case MADV.POPULATE_WRITE: {
      const write = advice === MADV.POPULATE_WRITE;
      for (const vma of vmasIn(s, lo, hi)) {
        if ((vma.prot & (write ? PROT.WRITE : PROT.READ)) === 0n) return fail('EINVAL', 'mapping lacks the permission to populate');
        // MADV_POPULATE_* is GUP (faultin_page_range), so check_vma_flags refuses it too.
        if (vmaNoDirectMap(vma)) return fail('EFAULT', NO_DIRECT_MAP_GUP(Math.max(lo, vma.start)));
        const a = Math.max(lo, vma.start);
        const r = faultRange(s, a, Math.min(hi, vma.end) - a, write);
        if (r) return fail('EFAULT', `populate would fault: ${r.why}`);
      }
      return undefined;
    }
    case MADV.COLLAPSE: case MADV.FREE: case MADV.WIPEONFORK:
      return fail('EINVAL', 'advice not supported on a guest_memfd mapping (kernel-probe §3)');
    default:
      return undefined; // accepted hints with no effect on the model (kernel-probe §3)
  }
}

/**
 * Where a new mapping of `length` bytes goes, as the kernel's top-down get_unmapped_area: the
 * highest free range below mmap_base that fits, so an unmapped range is reused by the next
 * mapping that fits there (conformance/edges-found-by-hand.yaml). The model keeps one guard
 * page on each side (so running off a mapping is SIGSEGV); undefined when nothing fits above
 * `floor`. Pure: the caller inserts the VMA.
 */
export function placeMapping(s: KernelState, length: number, floor: number): number | undefined {
  let ceiling = s.mmapBase;
  for (const [start, vma] of s.vmas.entriesReversed()) {
    if (start >= ceiling) continue;
    const at = ceiling - PAGE_SIZE - length;
    if (at - PAGE_SIZE >= vma.end) return at;
    ceiling = start;
  }
  const at = ceiling - PAGE_SIZE - length;
  return at >= floor ? at : undefined;
}

export function newVma(start: number, length: number, prot: bigint, shared: boolean, file: GmemFile | null, pgoff: number): Vma {
  return { start, end: start + length, prot, shared, file, pgoff, ptes: new ExtentMap(ID_CODEC) };
}

export function hex(n: number | bigint): string {
  return `0x${n.toString(16)}`;
}
