// KVM work functions: VM lifetime, memslots and their guest_memfd bindings, the per-VM
// attribute xarray, guest (vCPU) accesses through the secondary MMU, and the memory-fault exit.
// Guest faults are handled a range of gfns at a time (kvmGuestFaultRange), in pieces uniform in
// memslot, attribute and SPTE presence, so prefaulting a 1 TiB guest costs its runs; SPTEs are
// an ExtentMap of gfn -> folio id. Callers (kernel.ts) validate arguments; these functions
// assume valid input.
import { MEMORY_EXIT_FLAG_PRIVATE, PAGE_SIZE, type VmType } from './abi.js';
import { gmemAllocate, gmemAttr, gmemCheckToPrivate, gmemCommitAttributes, gmemPrepareRange } from './gmem.js';
import { type ExtentCodec } from './extent-map.js';
import { IntervalMap } from './interval-map.js';
import { copyThroughPages, faultRange, hex, vmasIn, pteKey } from './mm.js';
import { VM_TYPE_FACTS } from './platform.js';
import type { Profile } from './profile.js';
import type { ErrnoFailure, ExitFailure } from './result.js';
import { fail } from './result.js';
import {
  ExtentMap, type Attr, type GmemInode, type KernelState, type Memslot, type Spte, type Vm,
} from './state.js';

/** SPTE runs: consecutive gfns map consecutive folio ids with the same kind. */
const SPTE_CODEC: ExtentCodec<Spte> = {
  at: (v, d) => (d === 0 ? v : { ...v, id: v.id + d }),
  eq: (a, b) => a.id === b.id && a.order === b.order && a.private === b.private && a.backing === b.backing,
};

export function kvmCreateVm(s: KernelState, type: VmType): Vm {
  const vm: Vm = {
    id: s.nextId++, type, fdOpen: true, destroyed: false, files: new Set(), memslots: new Map(),
    gfnIndex: [new IntervalMap<Memslot>(), new IntervalMap<Memslot>()],
    attributes: new IntervalMap<Attr>(), sptes: new ExtentMap(SPTE_CODEC),
  };
  s.vms.push(vm);
  return vm;
}

/** Drop a reference to the VM; it is destroyed once its fd and every gmem file are gone. */
export function kvmVmPut(s: KernelState, vm: Vm): void {
  if (vm.destroyed || vm.fdOpen || vm.files.size > 0) return;
  for (const slot of [...vm.memslots.values()]) kvmDeleteMemslot(vm, slot);
  vm.destroyed = true;
  s.vms.splice(s.vms.indexOf(vm), 1);
}

export function slotKey(asId: number, id: number): number {
  return asId * 65536 + id;
}

export function kvmCreateMemslot(vm: Vm, slot: Memslot): void {
  vm.memslots.set(slotKey(slot.asId, slot.id), slot);
  vm.gfnIndex[slot.asId]!.set(slot.baseGfn, slot.baseGfn + slot.npages, slot);
  const g = slot.gmem;
  if (g?.file) g.file.bindings.set(g.pgoff, g.pgoff + slot.npages, slot);
}

/** KVM_MR_DELETE: unbind from the gmem file and zap the slot's guest mappings. */
export function kvmDeleteMemslot(vm: Vm, slot: Memslot): void {
  vm.memslots.delete(slotKey(slot.asId, slot.id));
  vm.gfnIndex[slot.asId]!.delete(slot.baseGfn, slot.baseGfn + slot.npages);
  const g = slot.gmem;
  if (g?.file) g.file.bindings.delete(g.pgoff, g.pgoff + slot.npages);
  vm.sptes.delete(slot.baseGfn, slot.baseGfn + slot.npages);
}

/** Per-VM KVM_SET_MEMORY_ATTRIBUTES effect: store, and zap guest mappings of the range. */
export function kvmSetVmAttributes(vm: Vm, gfnLo: number, gfnHi: number, attr: Attr): void {
  if (attr === 'private') vm.attributes.set(gfnLo, gfnHi, 'private');
  else vm.attributes.delete(gfnLo, gfnHi);
  vm.sptes.delete(gfnLo, gfnHi);
}

export interface GmemRange { inode: GmemInode; lo: number; hi: number }

/** The guest_memfd page ranges bound to gfns [gfnLo, gfnHi) of address space 0. */
export function kvmGmemRanges(vm: Vm, gfnLo: number, gfnHi: number): GmemRange[] {
  const out: GmemRange[] = [];
  for (const seg of vm.gfnIndex[0].segments(gfnLo, gfnHi)) {
    const g = seg.value.gmem;
    if (!g?.file) continue;
    const base = g.pgoff - seg.value.baseGfn;
    out.push({ inode: g.file.inode, lo: seg.lo + base, hi: seg.hi + base });
  }
  return out;
}

/**
 * RFC24's conversion through the VM ioctl: flip host faultability of every bound gmem range
 * (all or nothing: a mapped or DMA-pinned folio fails the call), then the per-VM attribute.
 */
export function kvmConvertVmRange(s: KernelState, vm: Vm, profile: Profile, gfnLo: number, gfnHi: number, attr: Attr): ErrnoFailure | undefined {
  const ranges = kvmGmemRanges(vm, gfnLo, gfnHi);
  if (attr === 'private') {
    for (const r of ranges) {
      const blocked = gmemCheckToPrivate(s, r.inode, r.lo, r.hi, profile.toPrivate);
      if (blocked) return blocked;
    }
  }
  for (const r of ranges) gmemCommitAttributes(s, r.inode, vm.type, r.lo, r.hi, attr);
  kvmSetVmAttributes(vm, gfnLo, gfnHi, attr);
  return undefined;
}

/**
 * The mmu notifier: host PTEs of user addresses [lo, hi) were zapped (munmap, MADV_DONTNEED, a
 * punch or a conversion of the guest_memfd they map). Every guest mapping KVM built from those
 * PTEs through a memslot's userspace_addr is zapped too, so the next guest access re-faults
 * through the host page tables (and fails if the host can no longer fault the page). Mappings
 * served from guest_memfd are invalidated by guest_memfd itself (gmemInvalidateGuest).
 */
export function kvmMmuNotifierInvalidate(s: KernelState, lo: number, hi: number): void {
  for (const vm of s.vms) {
    for (const slot of vm.memslots.values()) {
      if (slot.asId !== 0) continue;
      const ua = Number(slot.userspaceAddr);
      const a = Math.max(lo, ua);
      const b = Math.min(hi, ua + slot.npages * PAGE_SIZE);
      if (b <= a) continue;
      const gfnLo = slot.baseGfn + Math.floor((a - ua) / PAGE_SIZE);
      const gfnHi = slot.baseGfn + Math.ceil((b - ua) / PAGE_SIZE);
      for (const seg of [...vm.sptes.segments(gfnLo, gfnHi)]) if (seg.value.backing === 'host') vm.sptes.delete(seg.lo, seg.hi);
    }
  }
}

/** The attribute KVM consults for a gfn: the gmem inode's (in-place) or the VM's own. */
export function kvmGfnAttr(vm: Vm, profile: Profile, slot: Memslot | undefined, gfn: number): Attr {
  if (profile.privateTracking === 'gmem') {
    const g = slot?.gmem;
    if (!g?.file) return 'shared'; // no memslot or no gmem: shared (v8 46/46)
    return gmemAttr(g.file.inode, gfn - slot!.baseGfn + g.pgoff);
  }
  return vm.attributes.get(gfn) ?? 'shared';
}

function memoryFault(gfn: number, isPrivate: boolean, why: string): ExitFailure {
  return {
    ok: false, exit: 'MEMORY_FAULT', gpa: BigInt(gfn * PAGE_SIZE), size: BigInt(PAGE_SIZE),
    flags: isPrivate ? MEMORY_EXIT_FLAG_PRIVATE : 0n, private: isPrivate, why,
  };
}

/** Where a guest access stopped: the first gfn refused and why. */
export interface GuestFaultStop { readonly gfn: number; readonly failure: ExitFailure | ErrnoFailure }

/** A run of gfns uniform in memslot and in the attribute KVM consults. */
interface GuestPiece { lo: number; hi: number; slot: Memslot | undefined; attr: Attr }

function* guestPieces(vm: Vm, profile: Profile, lo: number, hi: number): IterableIterator<GuestPiece> {
  for (const seg of [...vm.gfnIndex[0].cover(lo, hi)]) {
    const slot = seg.value;
    if (profile.privateTracking !== 'gmem') {
      for (const a of [...vm.attributes.cover(seg.lo, seg.hi)]) yield { lo: a.lo, hi: a.hi, slot, attr: a.value ?? 'shared' };
      continue;
    }
    const g = slot?.gmem;
    if (!g?.file) { yield { lo: seg.lo, hi: seg.hi, slot, attr: 'shared' }; continue; } // v8 46/46
    const base = g.pgoff - slot!.baseGfn;
    for (const a of [...g.file.inode.attributes.cover(seg.lo + base, seg.hi + base)]) {
      if (a.value === undefined) gmemAttr(g.file.inode, a.lo); // throws: every index has an attribute
      yield { lo: a.lo - base, hi: a.hi - base, slot, attr: a.value! };
    }
  }
}

/**
 * The guest page fault over gfns [lo, hi), gfn by gfn in order (kernel-semantics §1.4,
 * kernel-probe §8): access-type mismatch exits to userspace; private accesses and gmem-only
 * slots are served from guest_memfd; other shared accesses go through the slot's
 * userspace_addr. Installs the SPTEs of every gfn before the first one refused, and returns
 * that one with its failure.
 */
export function kvmGuestFaultRange(s: KernelState, vm: Vm, profile: Profile, lo: number, hi: number, write: boolean, wantPrivate: boolean | undefined): GuestFaultStop | undefined {
  const facts = VM_TYPE_FACTS[vm.type];
  for (const { lo: plo, hi: phi, slot, attr } of guestPieces(vm, profile, lo, hi)) {
    const stop = (failure: ExitFailure | ErrnoFailure, gfn = plo) => ({ gfn, failure });
    if (attr === 'pending') return stop(memoryFault(plo, true, `gfn ${hex(plo)} is on its way to private; host references still pending (deferred)`));
    const isPrivate = facts.accessTypeFromHardware && wantPrivate !== undefined ? wantPrivate : attr === 'private';
    if (isPrivate !== (attr === 'private')) {
      return stop(memoryFault(plo, isPrivate, `${isPrivate ? 'private' : 'shared'} access to a ${attr} gfn ${hex(plo)}`));
    }
    if (!slot) {
      if (isPrivate) return stop(memoryFault(plo, true, `private access to gfn ${hex(plo)} outside every memslot`));
      return stop({
        ok: false, exit: 'MMIO', gpa: BigInt(plo * PAGE_SIZE), size: BigInt(PAGE_SIZE), flags: 0n, private: false,
        why: `gfn ${hex(plo)} is outside every memslot: emulated MMIO`,
      });
    }
    for (const gap of [...vm.sptes.cover(plo, phi)]) {
      if (gap.value !== undefined) continue; // present
      if (isPrivate || slot.gmemOnly) {
        if (!slot.gmem) return stop(memoryFault(gap.lo, isPrivate, `private access to gfn ${hex(gap.lo)} in a memslot without guest_memfd`), gap.lo);
        const file = slot.gmem.file;
        if (!file) return stop(memoryFault(gap.lo, isPrivate, `the guest_memfd bound at gfn ${hex(gap.lo)} was closed`), gap.lo);
        mapGmemPages(s, vm, slot, file.inode, gap.lo, gap.hi, gap.lo - slot.baseGfn + slot.gmem.pgoff, isPrivate);
        continue;
      }
      const ua = Number(slot.userspaceAddr);
      const hvaLo = ua + (gap.lo - slot.baseGfn) * PAGE_SIZE;
      const r = faultRange(s, hvaLo, (gap.hi - gap.lo) * PAGE_SIZE, write);
      const okHi = r ? gap.lo + Math.floor((r.address - hvaLo) / PAGE_SIZE) : gap.hi;
      mapHostPages(s, vm, gap.lo, okHi, hvaLo);
      if (r) {
        const hva = hvaLo + (okHi - gap.lo) * PAGE_SIZE;
        return stop(fail('EFAULT', `KVM_RUN: host fault on userspace_addr ${hex(hva)} failed: ${r.why}`), okHi);
      }
    }
  }
  return undefined;
}

/**
 * Install SPTEs of gfns [lo, hi) served from guest_memfd pages starting at `index`. The mapping
 * level follows the folio: a huge folio whose block is aligned alike in gfn and file index and
 * lies inside the memslot is mapped whole at its order (one huge SPTE per block; kernel-semantics
 * §2.3), everything else with 4 KiB SPTEs.
 */
function mapGmemPages(s: KernelState, vm: Vm, slot: Memslot, inode: GmemInode, lo: number, hi: number, index: number, isPrivate: boolean): void {
  const end = index + (hi - lo);
  gmemAllocate(s, inode, index, end);
  gmemPrepareRange(s, inode, index, end);
  const gfnOf = (i: number) => lo + (i - index);
  for (const seg of [...inode.pages.segments(index, end)]) {
    const idOf = (i: number) => seg.value + (i - seg.lo);
    for (const f of s.folios.segments(seg.value, seg.value + (seg.hi - seg.lo))) {
      let a = seg.lo + (f.lo - seg.value);
      let b = seg.lo + (f.hi - seg.value);
      let order = 0;
      if (f.value.order > 0) {
        const nr = 2 ** f.value.order;
        const [ba, bb] = [Math.floor(a / nr) * nr, Math.ceil(b / nr) * nr];
        if (gfnOf(ba) % nr === 0 && gfnOf(ba) >= slot.baseGfn && gfnOf(bb) <= slot.baseGfn + slot.npages) {
          [a, b, order] = [ba, bb, f.value.order];
          gmemPrepareRange(s, inode, a, b);
        }
      }
      vm.sptes.set(gfnOf(a), gfnOf(b), { id: idOf(a), order, private: isPrivate, backing: 'gmem' });
    }
  }
}

/** The largest order of the guest mappings of gfns [lo, hi) (0 when none is huge). */
export function kvmMaxMappingOrder(vm: Vm, lo: number, hi: number): number {
  let order = 0;
  for (const seg of vm.sptes.segments(lo, hi)) order = Math.max(order, seg.value.order);
  return order;
}

/** Install SPTEs of gfns [lo, hi) from the host PTEs of the user addresses from `hva` (all present). */
function mapHostPages(s: KernelState, vm: Vm, lo: number, hi: number, hva: number): void {
  const end = hva + (hi - lo) * PAGE_SIZE;
  for (const vma of vmasIn(s, hva, end)) {
    const a = Math.max(hva, vma.start);
    const b = Math.min(end, vma.end);
    const k0 = pteKey(vma, a);
    for (const seg of [...vma.ptes.segments(k0, pteKey(vma, b - 1) + 1)]) {
      const gfn = lo + (a - hva) / PAGE_SIZE + (seg.lo - k0);
      vm.sptes.set(gfn, gfn + (seg.hi - seg.lo), { id: seg.value, order: 0, private: false, backing: 'host' });
    }
  }
}

/**
 * A guest load or store of [gpa, gpa+length): the gfns are faulted in, then copied; a store
 * writes the bytes before the first refused page. KVM_EXIT_MMIO reports the access itself: its
 * address and (for the byte-wise guest) 1 byte.
 */
export function kvmGuestAccess(
  s: KernelState, vm: Vm, profile: Profile, gpa: number, length: number, store: Uint8Array | undefined, wantPrivate: boolean | undefined,
): Uint8Array | ExitFailure | ErrnoFailure {
  const stopped = kvmGuestTouch(s, vm, profile, gpa, length, store !== undefined, wantPrivate);
  if (stopped && !store) return stopped.failure;
  const n = stopped ? stopped.at - gpa : length;
  const r = copyThroughPages<never>(s, gpa, n, store?.subarray(0, n), (at) => vm.sptes.get(Math.floor(at / PAGE_SIZE))!.id);
  return stopped ? stopped.failure : (store ?? r);
}

/** Fault in a guest access without copying: where it stops (byte address) and why, if it does. */
export function kvmGuestTouch(
  s: KernelState, vm: Vm, profile: Profile, gpa: number, length: number, write: boolean, wantPrivate: boolean | undefined,
): { at: number; failure: ExitFailure | ErrnoFailure } | undefined {
  if (length <= 0) return undefined;
  const lo = Math.floor(gpa / PAGE_SIZE);
  const hi = Math.floor((gpa + length - 1) / PAGE_SIZE) + 1;
  const r = kvmGuestFaultRange(s, vm, profile, lo, hi, write, wantPrivate);
  if (!r) return undefined;
  const at = Math.max(gpa, r.gfn * PAGE_SIZE);
  const failure = 'exit' in r.failure && r.failure.exit === 'MMIO' ? { ...r.failure, gpa: BigInt(at), size: 1n } : r.failure;
  return { at, failure };
}

export function vmHasPrivateMem(type: VmType): boolean {
  return VM_TYPE_FACTS[type].privateMem;
}
