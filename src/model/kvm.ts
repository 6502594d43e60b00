// KVM work functions: VM lifetime, memslots and their guest_memfd bindings, the per-VM
// attribute xarray, guest (vCPU) accesses through the secondary MMU, and the memory-fault exit.
// Callers (kernel.ts) validate arguments; these functions assume valid input.
import { MEMORY_EXIT_FLAG_PRIVATE, PAGE_SIZE, type VmType } from './abi.js';
import {
  gmemAttr, gmemCheckToPrivate, gmemCommitAttributes, gmemGetFolio, gmemPrepareFolio,
} from './gmem.js';
import { IntervalMap } from './interval-map.js';
import { copyThroughPages, handleFault, hex } from './mm.js';
import { VM_TYPE_FACTS } from './platform.js';
import type { Profile } from './profile.js';
import type { ErrnoFailure, ExitFailure } from './result.js';
import { fail } from './result.js';
import {
  newTree, type Attr, type Folio, type GmemFile, type GmemInode, type KernelState, type Memslot, type Spte, type Vm,
} from './state.js';

export function kvmCreateVm(s: KernelState, type: VmType): Vm {
  const vm: Vm = {
    id: s.nextId++, type, fdOpen: true, destroyed: false, files: new Set(), memslots: new Map(),
    gfnIndex: [new IntervalMap<Memslot>(), new IntervalMap<Memslot>()],
    attributes: new IntervalMap<Attr>(), sptes: newTree(),
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
  vm.sptes.deleteRange(slot.baseGfn, slot.baseGfn + slot.npages, false);
}

/** Per-VM KVM_SET_MEMORY_ATTRIBUTES effect: store, and zap guest mappings of the range. */
export function kvmSetVmAttributes(vm: Vm, gfnLo: number, gfnHi: number, attr: Attr): void {
  if (attr === 'private') vm.attributes.set(gfnLo, gfnHi, 'private');
  else vm.attributes.delete(gfnLo, gfnHi);
  vm.sptes.deleteRange(gfnLo, gfnHi, false);
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
  for (const r of ranges) gmemCommitAttributes(r.inode, vm.type, r.lo, r.hi, attr);
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
      const stale: number[] = [];
      vm.sptes.forRange(gfnLo, gfnHi, false, (gfn, spte) => { if (spte.backing === 'host') stale.push(gfn); });
      for (const gfn of stale) vm.sptes.delete(gfn);
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

type GuestFault = { folio: Folio } | ExitFailure | ErrnoFailure;

/**
 * The guest page fault for one gfn (kernel-semantics §1.4, kernel-probe §8): access-type
 * mismatch exits to userspace; private accesses and gmem-only slots are served from
 * guest_memfd; other shared accesses go through the slot's userspace_addr.
 */
export function kvmGuestFault(s: KernelState, vm: Vm, profile: Profile, gfn: number, write: boolean, wantPrivate: boolean | undefined): GuestFault {
  const slot = vm.gfnIndex[0].get(gfn);
  const attr = kvmGfnAttr(vm, profile, slot, gfn);
  const facts = VM_TYPE_FACTS[vm.type];
  if (attr === 'pending') return memoryFault(gfn, true, `gfn ${hex(gfn)} is on its way to private; host references still pending (deferred)`);
  const isPrivate = facts.accessTypeFromHardware && wantPrivate !== undefined ? wantPrivate : attr === 'private';
  if (isPrivate !== (attr === 'private')) {
    return memoryFault(gfn, isPrivate, `${isPrivate ? 'private' : 'shared'} access to a ${attr} gfn ${hex(gfn)}`);
  }
  if (!slot) {
    if (isPrivate) return memoryFault(gfn, true, `private access to gfn ${hex(gfn)} outside every memslot`);
    return {
      ok: false, exit: 'MMIO', gpa: BigInt(gfn * PAGE_SIZE), size: BigInt(PAGE_SIZE), flags: 0n, private: false,
      why: `gfn ${hex(gfn)} is outside every memslot: emulated MMIO`,
    };
  }
  const present = vm.sptes.get(gfn);
  if (present) return { folio: present.folio };
  if (isPrivate || slot.gmemOnly) {
    if (!slot.gmem) return memoryFault(gfn, isPrivate, `private access to gfn ${hex(gfn)} in a memslot without guest_memfd`);
    const file: GmemFile | null = slot.gmem.file;
    if (!file) return memoryFault(gfn, isPrivate, `the guest_memfd bound at gfn ${hex(gfn)} was closed`);
    const index = gfn - slot.baseGfn + slot.gmem.pgoff;
    const folio = gmemGetFolio(s, file.inode, index);
    gmemPrepareFolio(folio);
    installSpte(vm, gfn, { folio, private: isPrivate, backing: 'gmem' });
    return { folio };
  }
  const hva = Number(slot.userspaceAddr) + (gfn - slot.baseGfn) * PAGE_SIZE;
  const r = handleFault(s, hva, write);
  if ('signal' in r) return fail('EFAULT', `KVM_RUN: host fault on userspace_addr ${hex(hva)} failed: ${r.why}`);
  installSpte(vm, gfn, { folio: r.folio, private: false, backing: 'host' });
  return { folio: r.folio };
}

function installSpte(vm: Vm, gfn: number, spte: Spte): void {
  vm.sptes.set(gfn, spte);
}

/** A guest load or store of [gpa, gpa+length), page by page. */
export function kvmGuestAccess(
  s: KernelState, vm: Vm, profile: Profile, gpa: number, length: number, store: Uint8Array | undefined, wantPrivate: boolean | undefined,
): Uint8Array | ExitFailure | ErrnoFailure {
  return copyThroughPages(gpa, length, store, (at) => {
    const r = kvmGuestFault(s, vm, profile, Math.floor(at / PAGE_SIZE), store !== undefined, wantPrivate);
    // KVM_EXIT_MMIO reports the access itself: its address and (for the byte-wise guest) 1 byte.
    if ('exit' in r && r.exit === 'MMIO') return { ...r, gpa: BigInt(at), size: 1n };
    return 'folio' in r ? r.folio : r;
  });
}

export function vmHasPrivateMem(type: VmType): boolean {
  return VM_TYPE_FACTS[type].privateMem;
}
