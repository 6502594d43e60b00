// guest_memfd work functions: folio lookup and allocation, fallocate, hole punching, release and
// eviction, and the attribute update at the heart of a conversion. Everything works on ranges
// of page indices: the page cache is an ExtentMap from page index to folio id (state.ts), so
// fallocate, punch and conversion of a 1 TiB file touch a few runs, not 2^28 pages. Callers (kernel.ts) have
// validated every argument; these functions assume valid input and never return an errno
// except where the kernel's work itself can fail (a blocked conversion).
//
// Locking as in the kernel: faults and allocation run under the inode's invalidate lock held
// shared; punch, conversion, bind/unbind and release hold it exclusive. The model is
// sequential, so every function here runs as one atomic step under that lock.
import { PAGE_SIZE, type VmType } from './abi.js';
import { folioAlloc, folioDetach, folioFind, folioGet, folioPrepare, folioZero } from './folio.js';
import { IntervalMap } from './interval-map.js';
import { unmapMappingRange } from './mm.js';
import { VM_TYPE_FACTS } from './platform.js';
import type { ToPrivatePolicy } from './profile.js';
import { fail, type ErrnoFailure } from './result.js';
import {
  ExtentMap, extraRefs, ID_CODEC, type Attr, type Folio, type FolioRun, type GmemFile, type GmemInode,
  type KernelState, type Memslot, type Vm,
} from './state.js';

export function gmemCreateInode(s: KernelState, ino: number, vmType: VmType, size: number, flags: bigint, initShared: boolean): GmemInode {
  const inode: GmemInode = {
    ino, vmType, size, flags, attributes: new IntervalMap<Attr>(), pages: new ExtentMap(ID_CODEC), files: new Set(),
    vmas: new Set(), imports: new Set(), evicted: false,
  };
  inode.attributes.set(0, size / PAGE_SIZE, initShared ? 'shared' : 'private');
  s.inodes.add(inode);
  return inode;
}

export function gmemCreateFile(s: KernelState, inode: GmemInode, vm: Vm): GmemFile {
  const file: GmemFile = {
    id: s.nextId++, inode, vm, bindings: new IntervalMap<Memslot>(), fdRefs: 1, vmaRefs: 0, released: false,
  };
  inode.files.add(file);
  vm.files.add(file);
  return file;
}

export function gmemNrPages(inode: GmemInode): number {
  return inode.size / PAGE_SIZE;
}

export function gmemAttr(inode: GmemInode, index: number): Attr {
  // Every index always has an entry (kernel-semantics §2.1); a hole would be a model bug.
  const a = inode.attributes.get(index);
  if (a === undefined) throw new Error(`gmem inode ${inode.ino}: no attribute at page ${index}`);
  return a;
}

/** kvm_gmem_get_folio(): the id of the folio at `index`, allocated if absent (not zeroed). */
export function gmemGetFolio(s: KernelState, inode: GmemInode, index: number): number {
  const id = inode.pages.get(index);
  if (id !== undefined) return id;
  gmemAllocate(s, inode, index, index + 1);
  return inode.pages.get(index)!;
}

/** The folio at `index` as a snapshot (tools, tests, the checker's state encoding). */
export function gmemFolio(s: KernelState, inode: GmemInode, index: number): Folio | undefined {
  const id = inode.pages.get(index);
  return id === undefined ? undefined : folioGet(s, id);
}

/** The folios in the page cache as [index, snapshot] pairs (small files: tools and tests). */
export function* gmemFolios(s: KernelState, inode: GmemInode, lo = 0, hi = Number.MAX_SAFE_INTEGER): IterableIterator<[number, Folio]> {
  for (const seg of inode.pages.segments(lo, hi)) {
    for (let i = seg.lo; i < seg.hi; i++) yield [i, folioGet(s, seg.value + (i - seg.lo))!];
  }
}

/** Zero the folios of [lo, hi) before their first exposure to the host or the guest (I6). */
export function gmemPrepareRange(s: KernelState, inode: GmemInode, lo: number, hi: number): void {
  for (const seg of inode.pages.segments(lo, hi)) folioPrepare(s, seg.value, seg.value + (seg.hi - seg.lo));
}

/** fallocate(KEEP_SIZE): allocate every missing folio in [lo, hi); does not zero them. */
export function gmemAllocate(s: KernelState, inode: GmemInode, lo: number, hi: number): void {
  for (const gap of inode.pages.cover(lo, hi)) {
    if (gap.value !== undefined) continue;
    inode.pages.set(gap.lo, gap.hi, folioAlloc(s, inode.ino, gap.lo, gap.hi - gap.lo));
  }
}

/** KVM invalidate: zap guest mappings of [lo, hi) in every VM bound through any file. */
export function gmemInvalidateGuest(inode: GmemInode, lo: number, hi: number): void {
  for (const file of inode.files) {
    for (const seg of file.bindings.segments(lo, hi)) {
      const slot = seg.value;
      const pgoff = slot.gmem!.pgoff;
      const gfnLo = slot.baseGfn + (seg.lo - pgoff);
      const gfnHi = slot.baseGfn + (seg.hi - pgoff);
      slot.vm.sptes.delete(gfnLo, gfnHi);
    }
  }
}

/** Take the folios of [lo, hi) out of the page cache. Referenced ones live on, detached. */
function removeFolios(s: KernelState, inode: GmemInode, lo: number, hi: number): void {
  for (const seg of [...inode.pages.segments(lo, hi)]) folioDetach(s, seg.value, seg.value + (seg.hi - seg.lo));
  inode.pages.delete(lo, hi);
}

/**
 * fallocate(PUNCH_HOLE|KEEP_SIZE): zap guest and host mappings, then remove the folios.
 * Pins do not block it; attributes are unchanged (kernel-semantics §1.7, kernel-probe §6).
 */
export function gmemPunchHole(s: KernelState, inode: GmemInode, lo: number, hi: number): void {
  const end = Math.min(hi, gmemNrPages(inode));
  if (end <= lo) return;
  gmemInvalidateGuest(inode, lo, end);
  unmapMappingRange(s, inode, lo, end);
  removeFolios(s, inode, lo, end);
}

/** A page whose folio blocks a conversion: its index and the folio's state. */
export interface Blocker { readonly index: number; readonly folio: FolioRun }

/** What a to-private conversion finds in its way: the first blocking page, if any. */
export function gmemFirstBlocker(s: KernelState, inode: GmemInode, lo: number, hi: number, policy: ToPrivatePolicy, ignoreMappings = false): Blocker | undefined {
  if (policy.blockers === 'none') return undefined; // mutant: no refcount check
  const blocks = policy.blockers === 'extra-refs'
    ? (f: FolioRun) => extraRefs(f) - (ignoreMappings ? f.mapCount : 0) > 0
    : (f: FolioRun) => f.mapCount > 0 || f.pinsShort + f.pinsLong > 0;
  for (const seg of inode.pages.segments(lo, hi)) {
    const found = folioFind(s, seg.value, seg.value + (seg.hi - seg.lo), blocks);
    if (found) return { index: seg.lo + (found.id - seg.value), folio: found.run };
  }
  return undefined;
}

/**
 * The conversion of [lo, hi) to `target` on one inode, as in KVM_SET_MEMORY_ATTRIBUTES2 (v8,
 * kernel-semantics §1.10(b)): no-op if nothing changes; to private, zap host mappings (even
 * if the call then fails) and fail with the profile's errno at the first folio holding extra
 * references; past the point of no return, zap guest mappings, apply the platform's content
 * rule and store the attribute.
 */
export function gmemSetAttributes(
  s: KernelState, inode: GmemInode, vmType: VmType, lo: number, hi: number, target: Attr, policy: ToPrivatePolicy,
): ErrnoFailure | undefined {
  if (inode.attributes.every(lo, hi, (a) => a === target)) return undefined;
  if (target === 'private' && !policy.rollback) { // mutant: page by page, keeping what it did
    for (let i = lo; i < hi; i++) {
      const blocked = gmemCheckToPrivate(s, inode, i, i + 1, policy);
      if (blocked) return blocked;
      gmemCommitAttributes(s, inode, vmType, i, i + 1, target);
    }
    return undefined;
  }
  if (target === 'private') {
    if (policy.revokeImporters) gmemRevokeImports(inode, lo, hi);
    const blocked = gmemCheckToPrivate(s, inode, lo, hi, policy);
    if (blocked && policy.onBlocked === 'defer') {
      gmemInvalidateGuest(inode, lo, hi);
      inode.attributes.set(lo, hi, 'pending');
      return undefined;
    }
    if (blocked) return blocked;
  }
  gmemCommitAttributes(s, inode, vmType, lo, hi, target);
  return undefined;
}

/** Revoke every import overlapping [lo, hi): the importer's device mapping is torn down. */
export function gmemRevokeImports(inode: GmemInode, lo: number, hi: number): void {
  for (const imp of inode.imports) if (imp.lo < hi && lo < imp.hi) imp.revoked = true;
}

/**
 * Deferred variant: a pending range whose pages no longer carry references becomes private.
 * Called after anything that drops a reference. Returns whether something completed.
 */
export function gmemSettlePending(s: KernelState, inode: GmemInode, policy: ToPrivatePolicy): boolean {
  let settled = false;
  for (const seg of [...inode.attributes.segments()]) {
    if (seg.value !== 'pending' || gmemFirstBlocker(s, inode, seg.lo, seg.hi, policy)) continue;
    gmemCommitAttributes(s, inode, inode.vmType, seg.lo, seg.hi, 'private');
    settled = true;
  }
  return settled;
}

/** The checking half of a to-private conversion: zaps per the policy, returns the failure. */
export function gmemCheckToPrivate(s: KernelState, inode: GmemInode, lo: number, hi: number, policy: ToPrivatePolicy): ErrnoFailure | undefined {
  if (policy.zapGuestBeforeCheck) gmemInvalidateGuest(inode, lo, hi);
  let blocker: Blocker | undefined;
  if (policy.checkBeforeZap) { // mutant: the window between check and zap is open to GUP-fast
    blocker = gmemFirstBlocker(s, inode, lo, hi, policy, true); // mapping refs are about to go
    s.preemptionPoint?.();
    if (policy.zapHostMappings) unmapMappingRange(s, inode, lo, hi);
  } else {
    if (policy.zapHostMappings) unmapMappingRange(s, inode, lo, hi);
    s.preemptionPoint?.(); // what races here finds no PTE and cannot fault (lock held)
    blocker = gmemFirstBlocker(s, inode, lo, hi, policy);
  }
  if (!blocker) return undefined;
  const at = BigInt(blocker.index * PAGE_SIZE);
  const why = `page at offset ${at} has ${describeRefs(blocker.folio)}`;
  return policy.reportsErrorOffset
    ? fail(policy.blockedErrno, why, { error_offset: at })
    : fail(policy.blockedErrno, why);
}

/** The committing half: point of no return. */
export function gmemCommitAttributes(s: KernelState, inode: GmemInode, vmType: VmType, lo: number, hi: number, target: Attr): void {
  gmemInvalidateGuest(inode, lo, hi);
  if (VM_TYPE_FACTS[vmType].conversionContent === 'zero') {
    for (const attr of [...inode.attributes.cover(lo, hi)]) {
      if (attr.value === target) continue;
      for (const seg of inode.pages.segments(attr.lo, attr.hi)) folioZero(s, seg.value, seg.value + (seg.hi - seg.lo));
    }
  }
  inode.attributes.set(lo, hi, target);
}

export function describeRefs(f: FolioRun): string {
  const parts: string[] = [];
  if (f.mapCount) parts.push(`${f.mapCount} host mapping(s)`);
  if (f.pinsLong) parts.push(`${f.pinsLong} long-term pin(s)`);
  if (f.pinsShort) parts.push(`${f.pinsShort} short-term pin(s)`);
  if (f.gets) parts.push(`${f.gets} page reference(s)`);
  return parts.length ? parts.join(', ') : 'no extra references';
}

/** The file's last reference (fd or VMA) is gone: unbind, zap guest mappings, drop the VM. */
export function gmemRelease(s: KernelState, file: GmemFile, vmPut: (vm: Vm) => void): void {
  if (file.released || file.fdRefs > 0 || file.vmaRefs > 0) return;
  file.released = true;
  for (const seg of file.bindings.segments()) {
    if (seg.value.gmem) seg.value.gmem.file = null;
  }
  gmemInvalidateGuest(file.inode, 0, gmemNrPages(file.inode));
  file.bindings.delete(0, Number.MAX_SAFE_INTEGER);
  file.inode.files.delete(file);
  file.vm.files.delete(file);
  if (file.inode.files.size === 0) gmemEvict(s, file.inode);
  vmPut(file.vm);
}

/** The inode's last file is gone: its memory and attributes are freed (pinned folios live on). */
function gmemEvict(s: KernelState, inode: GmemInode): void {
  removeFolios(s, inode, 0, Number.MAX_SAFE_INTEGER);
  inode.evicted = true;
  s.inodes.delete(inode);
}
