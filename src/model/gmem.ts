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
import { GUP_PIN_COUNTING_BIAS, PAGE_SIZE, type VmType } from './abi.js';
import { folioAlloc, folioDetach, folioFind, folioGet, folioPrepare, folioZero } from './folio.js';
import { IntervalMap } from './interval-map.js';
import { unmapMappingRange } from './mm.js';
import { VM_TYPE_FACTS } from './platform.js';
import type { HugetlbPolicy, ToPrivatePolicy } from './profile.js';
import { fail, type ErrnoFailure } from './result.js';
import {
  ExtentMap, extraRefs, ID_CODEC, refcount, withOrder, type Attr, type Folio, type FolioRun, type GmemFile, type GmemInode,
  type KernelState, type Memslot, type Vm,
} from './state.js';

export function gmemCreateInode(s: KernelState, ino: number, vmType: VmType, size: number, flags: bigint, initShared: boolean, hugeOrder = 0): GmemInode {
  const inode: GmemInode = {
    ino, vmType, size, flags, hugeOrder, attributes: new IntervalMap<Attr>(), pages: new ExtentMap(ID_CODEC), files: new Set(),
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

/**
 * fallocate(KEEP_SIZE): allocate every missing folio in [lo, hi); does not zero them. A HugeTLB
 * inode allocates whole huge pages (the range rounded out to its blocks): one huge folio per
 * block whose pages are all private, 4 KiB folios for a block with a shared page (so no huge
 * folio is ever host-mapped: kernel-semantics §2.3, the model's choice of when to split).
 */
export function gmemAllocate(s: KernelState, inode: GmemInode, lo: number, hi: number): void {
  const [a, b] = hugeBlocksAround(inode, lo, hi);
  for (const gap of inode.pages.cover(a, b)) {
    if (gap.value !== undefined) continue;
    if (!inode.hugeOrder) { inode.pages.set(gap.lo, gap.hi, folioAlloc(s, inode.ino, gap.lo, gap.hi - gap.lo)); continue; }
    for (const piece of hugePieces(inode, gap.lo, gap.hi)) {
      inode.pages.set(piece.lo, piece.hi, folioAlloc(s, inode.ino, piece.lo, piece.hi - piece.lo, { order: piece.order }));
    }
  }
}

/** Pages per huge page of a HugeTLB inode (1 otherwise). */
export function gmemHugePages(inode: GmemInode): number {
  return 2 ** inode.hugeOrder;
}

/** [lo, hi) rounded out to the inode's huge-page boundaries (unchanged without huge pages). */
export function hugeBlocksAround(inode: GmemInode, lo: number, hi: number): [number, number] {
  const nr = gmemHugePages(inode);
  return [Math.floor(lo / nr) * nr, Math.ceil(hi / nr) * nr];
}

/**
 * The block-aligned range [lo, hi) cut into pieces by folio order: the blocks whose pages are
 * all private (order hugeOrder) and the others (order 0). O(attribute runs), not O(blocks).
 */
function hugePieces(inode: GmemInode, lo: number, hi: number): { lo: number; hi: number; order: number }[] {
  const nr = gmemHugePages(inode);
  const out: { lo: number; hi: number; order: number }[] = [];
  const push = (a: number, b: number, order: number) => {
    if (b <= a) return;
    const last = out[out.length - 1];
    if (last && last.hi === a && last.order === order) last.hi = b;
    else out.push({ lo: a, hi: b, order });
  };
  for (const seg of inode.attributes.cover(lo, hi)) {
    let [x, y] = [seg.hi, seg.hi];
    if (seg.value === 'private' && Math.ceil(seg.lo / nr) < Math.floor(seg.hi / nr)) [x, y] = [Math.ceil(seg.lo / nr) * nr, Math.floor(seg.hi / nr) * nr];
    push(seg.lo, x, 0);
    push(x, y, inode.hugeOrder);
    push(y, seg.hi, 0);
  }
  return out;
}

/**
 * Split every huge folio of the block-aligned pages [lo, hi) into 4 KiB folios (RFC25 rule 1):
 * one update of the folio runs' order, whatever the size. Ids, contents and counts stay.
 */
export function gmemSplit(s: KernelState, inode: GmemInode, lo: number, hi: number): void {
  for (const seg of inode.pages.segments(lo, hi)) {
    s.folios.update(seg.value, seg.value + (seg.hi - seg.lo), (r) => (r.order === 0 ? r : withOrder(r, 0)));
  }
}

/** Merge the blocks of the block-aligned pages [lo, hi) each into one huge folio (RFC25 rule 2: the caller chose them). */
function mergeBlocks(s: KernelState, inode: GmemInode, lo: number, hi: number): void {
  if (hi <= lo) return;
  let merged = false;
  for (const seg of inode.pages.segments(lo, hi)) {
    s.folios.update(seg.value, seg.value + (seg.hi - seg.lo), (r) => {
      if (r.order === inode.hugeOrder) return r;
      merged = true;
      return withOrder(r, inode.hugeOrder);
    });
  }
  if (merged) gmemInvalidateGuest(inode, lo, hi); // the guest maps the merged blocks again, at the huge level
}

/**
 * To-private of [lo, hi) on a HugeTLB inode: merge back each block the range overlaps (rounded
 * out) whose pages are all private now (`no-shared-page`, rule 2), or every such block (`always`,
 * a mutant). `assumePrivate` counts [lo, hi) as private already (a merge before the update).
 */
export function gmemMerge(s: KernelState, inode: GmemInode, lo: number, hi: number, policy: HugetlbPolicy, assumePrivate = false): void {
  const [a, b] = hugeBlocksAround(inode, lo, hi);
  if (policy.merge === 'always') { mergeBlocks(s, inode, a, b); return; }
  const nr = gmemHugePages(inode);
  // Runs of pages that are (or will be) private, each cut to the whole blocks inside it.
  const pieces = assumePrivate
    ? [...inode.attributes.cover(a, lo), { lo, hi, value: 'private' as Attr }, ...inode.attributes.cover(hi, b)]
    : inode.attributes.cover(a, b);
  let runLo = -1;
  let runHi = -1;
  const flush = () => { if (runLo >= 0) mergeBlocks(s, inode, Math.ceil(runLo / nr) * nr, Math.floor(runHi / nr) * nr); runLo = runHi = -1; };
  for (const seg of pieces) {
    if (seg.value !== 'private' || seg.hi <= seg.lo) { flush(); continue; }
    if (runHi !== seg.lo) { flush(); runLo = seg.lo; }
    runHi = seg.hi;
  }
  flush();
}

/** KVM invalidate: zap guest mappings of [lo, hi) in every VM bound through any file. */
export function gmemInvalidateGuest(inode: GmemInode, lo: number, hi: number): void {
  for (const file of inode.files) {
    for (const seg of file.bindings.segments(lo, hi)) {
      const slot = seg.value;
      const pgoff = slot.gmem!.pgoff;
      let gfnLo = slot.baseGfn + (seg.lo - pgoff);
      let gfnHi = slot.baseGfn + (seg.hi - pgoff);
      // A huge SPTE is zapped as a whole (it maps an aligned block of gfns).
      const first = slot.vm.sptes.get(gfnLo);
      if (first?.order) gfnLo = Math.floor(gfnLo / 2 ** first.order) * 2 ** first.order;
      const last = slot.vm.sptes.get(gfnHi - 1);
      if (last?.order) gfnHi = Math.ceil(gfnHi / 2 ** last.order) * 2 ** last.order;
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
 * On a HugeTLB inode (§1.7 RFC25, §2.3 rule 5) only whole huge pages are removed, and only when
 * no page of theirs carries a reference once unmapped (else EAGAIN, the unmapping stays); the
 * rest of the range, part of a huge page, is zeroed in place.
 */
export function gmemPunchHole(s: KernelState, inode: GmemInode, lo: number, hi: number, huge?: HugetlbPolicy): ErrnoFailure | undefined {
  const end = Math.min(hi, gmemNrPages(inode));
  if (end <= lo) return undefined;
  gmemInvalidateGuest(inode, lo, end);
  unmapMappingRange(s, inode, lo, end);
  if (!inode.hugeOrder || !huge) {
    removeFolios(s, inode, lo, end);
    return undefined;
  }
  const nr = gmemHugePages(inode);
  const wholeLo = Math.ceil(lo / nr) * nr;
  const wholeHi = Math.max(wholeLo, Math.floor(end / nr) * nr);
  if (wholeLo < wholeHi) {
    if (huge.reshape === 'before-check') mergeBlocks(s, inode, wholeLo, wholeHi); // mutant: merged, then checked
    const blocker = gmemFirstBlocker(s, inode, wholeLo, wholeHi, SAFE_REFCOUNT);
    if (blocker) {
      return fail('EAGAIN', `page at offset ${blocker.index * PAGE_SIZE} of a whole huge page being punched has ${describeRefs(blocker.folio)} (RFC25: the huge page must have a safe refcount before it is merged and freed)`);
    }
    mergeBlocks(s, inode, wholeLo, wholeHi);
    removeFolios(s, inode, wholeLo, wholeHi);
  }
  zeroPages(s, inode, lo, Math.min(end, wholeLo));
  zeroPages(s, inode, Math.max(lo, wholeHi), end);
  return undefined;
}

/** The "safe refcount" of a merge: nothing but the page cache's reference (RFC25 rule 3). */
const SAFE_REFCOUNT: ToPrivatePolicy = {
  zapHostMappings: true, zapGuestBeforeCheck: false, blockers: 'extra-refs', blockedErrno: 'EAGAIN',
  reportsErrorOffset: false, onBlocked: 'fail', revokeImporters: false, checkBeforeZap: false, rollback: true,
};

/** Zero the contents of the allocated pages of [lo, hi) in place (part of a huge page punched). */
function zeroPages(s: KernelState, inode: GmemInode, lo: number, hi: number): void {
  for (const seg of inode.pages.segments(lo, hi)) folioZero(s, seg.value, seg.value + (seg.hi - seg.lo));
}

/** A page whose folio blocks a conversion: its index and the folio's state. */
export interface Blocker { readonly index: number; readonly folio: FolioRun }

/** What a to-private conversion finds in its way: the first blocking page, if any. */
export function gmemFirstBlocker(s: KernelState, inode: GmemInode, lo: number, hi: number, policy: ToPrivatePolicy, ignoreMappings = false): Blocker | undefined {
  if (policy.blockers === 'none') return undefined; // mutant: no refcount check
  const blocks = policy.blockers === 'extra-refs'
    ? (f: FolioRun) => extraRefs(f) - (ignoreMappings ? f.mapCount : 0) > 0
    : policy.blockers === 'in-use'
      ? (f: FolioRun) => inUseTest({ ...f, mapCount: ignoreMappings ? 0 : f.mapCount }) !== undefined
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
  s: KernelState, inode: GmemInode, vmType: VmType, lo: number, hi: number, target: Attr, policy: ToPrivatePolicy, huge?: HugetlbPolicy,
): ErrnoFailure | undefined {
  if (inode.attributes.every(lo, hi, (a) => a === target)) return undefined;
  if (inode.hugeOrder && huge) return hugeSetAttributes(s, inode, vmType, lo, hi, target, policy, huge);
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

/**
 * The conversion on a HugeTLB inode (kernel-semantics §2.3 [RFC25] rules 1-4): to shared,
 * commit, then split every huge folio the range overlaps (rounded out to huge pages); to private,
 * the check of the applied series (§0.4) first, then commit and merge each overlapped block whose
 * pages are all private. Both are all-or-nothing with the attribute update; with the mutant
 * `reshape: before-check` the folios are re-shaped first and stay so when the check fails.
 */
function hugeSetAttributes(
  s: KernelState, inode: GmemInode, vmType: VmType, lo: number, hi: number, target: Attr, policy: ToPrivatePolicy, huge: HugetlbPolicy,
): ErrnoFailure | undefined {
  const [a, b] = hugeBlocksAround(inode, lo, hi);
  const early = huge.reshape === 'before-check';
  if (target === 'shared') {
    gmemSplit(s, inode, a, b);
    gmemCommitAttributes(s, inode, vmType, lo, hi, target);
    return undefined;
  }
  if (early) gmemMerge(s, inode, lo, hi, huge, true);
  const blocked = gmemCheckToPrivate(s, inode, lo, hi, policy);
  if (blocked) return blocked;
  gmemCommitAttributes(s, inode, vmType, lo, hi, target);
  if (!early) gmemMerge(s, inode, lo, hi, huge);
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
  const why = policy.blockers === 'in-use'
    ? `page at offset ${at} ${inUseTest(blocker.folio) ?? 'is in use'}`
    : `page at offset ${at} has ${describeRefs(blocker.folio)}`;
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

/**
 * The applied series' "in use" test of one page-cache folio (kernel-semantics §0.4), in its
 * order: DMA-pinned, still mapped, then the refcount against the page cache's references + 1
 * (the caller's lookup). Returns which test failed, or undefined when the folio is free. The
 * kernel re-tests a failed folio once after draining the per-CPU LRU-add batches; the model has
 * no transient LRU references, so the drain changes nothing and is not modelled.
 */
export function inUseTest(f: FolioRun): string | undefined {
  const pins = f.pinsShort + f.pinsLong;
  // folio_maybe_dma_pinned() on an order-0 folio: refcount >= GUP_PIN_COUNTING_BIAS.
  if (pins > 0 || refcount(f) >= GUP_PIN_COUNTING_BIAS) return `is DMA-pinned (folio_maybe_dma_pinned: ${describeRefs(f)})`;
  if (f.mapCount > 0) return `is still mapped (folio_mapped: ${describeRefs(f)})`;
  const expected = (f.inCache ? 1 : 0) + 1;
  const got = refcount(f) + 1;
  if (got !== expected) return `has refcount ${got}, not page cache ${expected - 1} + 1 (${describeRefs(f)})`;
  return undefined;
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
