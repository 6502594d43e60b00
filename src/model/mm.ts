// Host mm: the process's VMAs, their PTEs, the guest_memfd fault handler, host loads and
// stores through a mapping, madvise, munmap and GUP. A gmem VMA keys its PTEs by file page
// index (so unmap_mapping_range is a range delete); an anonymous VMA keys them by virtual page.
// Callers have validated alignment and ranges; faults return signals, GUP returns errnos.
import { MADV, PAGE_SIZE, PROT } from './abi.js';
import { gmemAttr, gmemGetFolio, gmemNrPages, gmemPrepareFolio, gmemPunchHole } from './gmem.js';
import { kvmMmuNotifierInvalidate } from './kvm.js';
import { fail, signal, type ErrnoFailure, type SignalFailure } from './result.js';
import { newFolio, newTree, type Folio, type GmemFile, type GmemInode, type KernelState, type Vma } from './state.js';

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
  vma.ptes.forRange(lo, hi, false, (_k, folio) => { folio.mapCount--; });
  vma.ptes.deleteRange(lo, hi, false);
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
  ptes.deleteRange(Number.MIN_SAFE_INTEGER, plo, false);
  ptes.deleteRange(phi, Number.MAX_SAFE_INTEGER, false);
  ptes.deleteRange(klo, khi, false);
  const pgoff = vma.file ? pteKey(vma, start) : 0;
  return { start, end, prot: vma.prot, shared: vma.shared, file: vma.file, pgoff, ptes };
}

export type FaultResult = { folio: Folio } | SignalFailure;

/**
 * The page fault handler for one page at `addr` (kernel-semantics §1.3): SIGSEGV without a VMA
 * or permission; for guest_memfd SIGBUS past EOF or on a private page, otherwise the folio is
 * allocated if absent, zeroed on first use and mapped.
 */
export function handleFault(s: KernelState, addr: number, write: boolean): FaultResult {
  const vma = findVma(s, addr);
  if (!vma) return signal('SIGSEGV', addr, 'no mapping at this address');
  const need = write ? PROT.WRITE : PROT.READ;
  if ((vma.prot & need) === 0n) {
    return signal('SIGSEGV', addr, `mapping is not ${write ? 'writable' : 'readable'}`);
  }
  const key = pteKey(vma, addr);
  const present = vma.ptes.get(key);
  if (present) return { folio: present };
  let folio: Folio;
  if (vma.file) {
    const inode = vma.file.inode;
    if (key >= gmemNrPages(inode)) return signal('SIGBUS', addr, `file page ${key} is past EOF`);
    const attr = gmemAttr(inode, key);
    if (attr !== 'shared' && !s.faultAcceptsPrivate) {
      return signal('SIGBUS', addr, `file offset ${key * PAGE_SIZE} is ${attr === 'pending' ? 'on its way to private (deferred)' : 'private'}`);
    }
    folio = gmemGetFolio(s, inode, key);
    gmemPrepareFolio(folio);
  } else {
    folio = newFolio(s, 0, key);
    folio.inCache = false;
    folio.uptodate = true;
  }
  vma.ptes.set(key, folio);
  folio.mapCount++;
  return { folio };
}

/**
 * Copy [start, start+length) of a page-indexed space to or from `store` (a load when it is
 * undefined), one page at a time: `folioAt(at)` yields the folio behind the page of byte `at`,
 * or a failure that ends the access there (the pages before it are already copied).
 */
export function copyThroughPages<F extends { ok: false }>(
  start: number, length: number, store: Uint8Array | undefined, folioAt: (at: number) => Folio | F,
): Uint8Array | F {
  const out = store ?? new Uint8Array(length);
  for (let done = 0; done < length;) {
    const at = start + done;
    const folio = folioAt(at);
    if ('ok' in folio) return folio;
    const inPage = at % PAGE_SIZE;
    const n = Math.min(PAGE_SIZE - inPage, length - done);
    if (store) writeFolio(folio, inPage, store.subarray(done, done + n));
    else readFolio(folio, inPage, out.subarray(done, done + n));
    done += n;
  }
  return out;
}

/** A host load or store of [addr, addr+length) through the process's mappings. */
export function hostAccess(s: KernelState, addr: number, length: number, store?: Uint8Array): Uint8Array | SignalFailure {
  return copyThroughPages(addr, length, store, (at) => {
    const r = handleFault(s, at, store !== undefined);
    return 'signal' in r ? r : r.folio;
  });
}

export function readFolio(folio: Folio, offset: number, into: Uint8Array): void {
  if (folio.data) into.set(folio.data.subarray(offset, offset + into.length));
  else into.fill(0);
}

export function writeFolio(folio: Folio, offset: number, bytes: Uint8Array): void {
  if (!folio.data) folio.data = new Uint8Array(PAGE_SIZE);
  folio.data.set(bytes, offset);
}

/**
 * get_user_pages / pin_user_pages over [addr, addr+length): each page through its PTE or by
 * faulting it in. Any page the fault handler refuses makes the call fail with EFAULT (callers
 * such as io_uring and VFIO release what they got, so the model is all-or-nothing).
 */
export function gupPages(s: KernelState, addr: number, length: number, write: boolean): Folio[] | ErrnoFailure {
  const folios: Folio[] = [];
  for (let at = addr; at < addr + length; at += PAGE_SIZE) {
    const vma = findVma(s, at);
    if (!vma) return fail('EFAULT', `no mapping at ${hex(at)}`);
    if (write && (vma.prot & PROT.WRITE) === 0n) return fail('EFAULT', `mapping at ${hex(at)} is not writable`);
    const r = handleFault(s, at, write);
    if ('signal' in r) return fail('EFAULT', `GUP fault: ${r.why}`);
    folios.push(r.folio);
  }
  return folios;
}

/** madvise() on a validated, fully mapped range. */
export function madviseRange(s: KernelState, lo: number, hi: number, advice: number): ErrnoFailure | undefined {
  switch (advice) {
    case MADV.DONTNEED:
      zapAddressRange(s, lo, hi);
      return undefined;
    case MADV.REMOVE:
      for (const vma of vmasIn(s, lo, hi)) {
        if (!vma.shared || (vma.prot & PROT.WRITE) === 0n) return fail('EACCES', 'MADV_REMOVE needs a shared writable mapping');
        if (!vma.file) return fail('EOPNOTSUPP', 'MADV_REMOVE of anonymous memory is not modelled');
        const [klo, khi] = keyRange(vma, lo, hi);
        gmemPunchHole(s, vma.file.inode, klo, khi); // acts as PUNCH_HOLE (kernel-probe §3)
      }
      return undefined;
    case MADV.POPULATE_READ:
    case MADV.POPULATE_WRITE: {
      const write = advice === MADV.POPULATE_WRITE;
      for (let at = lo; at < hi; at += PAGE_SIZE) {
        const vma = findVma(s, at)!;
        if ((vma.prot & (write ? PROT.WRITE : PROT.READ)) === 0n) return fail('EINVAL', 'mapping lacks the permission to populate');
        const r = handleFault(s, at, write);
        if ('signal' in r) return fail('EFAULT', `populate would fault: ${r.why}`);
      }
      return undefined;
    }
    case MADV.COLLAPSE: case MADV.FREE: case MADV.WIPEONFORK:
      return fail('EINVAL', 'advice not supported on a guest_memfd mapping (kernel-probe §3)');
    default:
      return undefined; // accepted hints with no effect on the model (kernel-probe §3)
  }
}

/** Place a new mapping of `length` bytes below the previous ones. */
export function placeMapping(s: KernelState, length: number): number {
  s.mmapBase -= length + PAGE_SIZE; // one guard page between mappings
  return s.mmapBase;
}

export function newVma(start: number, length: number, prot: bigint, shared: boolean, file: GmemFile | null, pgoff: number): Vma {
  return { start, end: start + length, prot, shared, file, pgoff, ptes: newTree() };
}

export function hex(n: number | bigint): string {
  return `0x${n.toString(16)}`;
}
