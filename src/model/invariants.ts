// Invariants I1–I11 of kernel-semantics.md §3 as named predicates over the model's state.
// State invariants hold after every step; step invariants (I3, I4, I5, I7) relate the state
// before a step to the state after it, so a step is bracketed by beginStep()/endStep().
// This module only reads the state; it must never change it.
import { PAGE_SIZE } from './abi.js';
import type { IntervalMap } from './interval-map.js';
import type { Kernel } from './kernel.js';
import { VM_TYPE_FACTS } from './platform.js';
import { extraRefs, type Attr, type Folio, type GmemInode, type Vm } from './state.js';

export interface InvariantViolation {
  readonly invariant: string;
  readonly title: string;
  readonly detail: string;
  readonly offsets?: readonly bigint[];
}

export const INVARIANTS = {
  I1: 'no host userspace mapping of private memory',
  I2: 'a private page carries no reference besides the page cache',
  I3: 'a to-shared conversion never fails on references',
  I4: 'a conversion changes the whole range or nothing',
  I5: 'attributes belong to the inode and change only by conversion',
  I6: 'a folio is zeroed before its first exposure',
  I7: 'content across a conversion follows the platform',
  I8: 'KVM never keeps using a removed or converted folio',
  I9: 'folios never move',
  I10: 'binding uniqueness',
  I11: 'reference direction: file pins VM, VMA pins file, memslot pins nothing',
} as const;
export type InvariantName = keyof typeof INVARIANTS;

const off = (index: number): bigint => BigInt(index * PAGE_SIZE);

function violation(name: InvariantName, detail: string, offsets?: bigint[]): InvariantViolation {
  return offsets ? { invariant: name, title: INVARIANTS[name], detail, offsets } : { invariant: name, title: INVARIANTS[name], detail };
}

// ------------------------------------------------------------------ state invariants

/** I1: every host PTE of a guest_memfd, and every live device import, covers shared indices only. */
export function noHostMappingOfPrivate(k: Kernel): InvariantViolation[] {
  const bad: bigint[] = [];
  for (const [, vma] of k.state.vmas.entries()) {
    if (!vma.file) continue;
    const attrs = vma.file.inode.attributes;
    for (const [key] of vma.ptes.entries()) if (attrs.get(key) !== 'shared') bad.push(off(key));
  }
  for (const imp of k.state.imports.values()) {
    const seg = imp.revoked ? undefined : imp.inode.attributes.find(imp.lo, imp.hi, (a) => a !== 'shared');
    if (seg) bad.push(off(seg.lo));
  }
  return bad.length ? [violation('I1', `host PTEs or device imports reach non-shared offsets ${list(bad)}`, bad)] : [];
}

/** I2: no folio at a private index holds host PTEs, pins or page references. */
export function privatePagesExclusive(k: Kernel): InvariantViolation[] {
  const bad: bigint[] = [];
  for (const inode of k.state.inodes) {
    for (const seg of inode.attributes.segments()) {
      if (seg.value !== 'private') continue;
      inode.pages.forRange(seg.lo, seg.hi, false, (index: number, f: Folio) => { if (extraRefs(f) > 0) bad.push(off(index)); });
    }
  }
  return bad.length ? [violation('I2', `private offsets with extra references: ${list(bad)}`, bad)] : [];
}

/** I6: every folio the host, a device, a pipe or a guest can reach is uptodate (zeroed). */
export function zeroedBeforeExposure(k: Kernel): InvariantViolation[] {
  const bad = new Set<Folio>();
  const check = (f: Folio) => { if (!f.uptodate) bad.add(f); };
  for (const [, vma] of k.state.vmas.entries()) for (const [, f] of vma.ptes.entries()) check(f);
  for (const pin of k.state.pins.values()) pin.folios.forEach(check);
  for (const e of k.state.fds.values()) if (e.kind === 'pipe') e.pipe.buffers.forEach((b) => check(b.folio));
  for (const vm of k.state.vms) for (const [, spte] of vm.sptes.entries()) check(spte.folio);
  const offs = [...bad].map((f) => off(f.index));
  return offs.length ? [violation('I6', `exposed folios never zeroed at ${list(offs)}`, offs)] : [];
}

/** I8: every guest mapping is of the folio now in the file, with the attribute now in force. */
export function guestMappingsCurrent(k: Kernel): InvariantViolation[] {
  const out: InvariantViolation[] = [];
  for (const vm of k.state.vms) {
    for (const [gfn, spte] of vm.sptes.entries()) {
      if (spte.backing !== 'gmem') continue;
      const slot = vm.gfnIndex[0].get(gfn);
      const file = slot?.gmem?.file;
      if (!slot || !file) {
        out.push(violation('I8', `VM ${vm.id} gfn ${gfn}: guest mapping outlived its memslot or file`));
        continue;
      }
      const index = gfn - slot.baseGfn + slot.gmem!.pgoff;
      if (file.inode.pages.get(index) !== spte.folio) {
        out.push(violation('I8', `VM ${vm.id} gfn ${gfn}: guest maps a folio no longer in the file`, [off(index)]));
      }
      const attr = k.profile.privateTracking === 'gmem' ? file.inode.attributes.get(index) : (vm.attributes.get(gfn) ?? 'shared');
      if (attr === 'pending' || (attr === 'private') !== spte.private) {
        out.push(violation('I8', `VM ${vm.id} gfn ${gfn}: ${spte.private ? 'private' : 'shared'} guest mapping of a ${attr} page`, [off(index)]));
      }
    }
  }
  return out;
}

/** I9: every folio sits in its own inode's page cache at the index it was allocated for. */
export function foliosUnmoved(k: Kernel): InvariantViolation[] {
  const out: InvariantViolation[] = [];
  for (const inode of k.state.inodes) {
    for (const [index, f] of inode.pages.entries()) {
      if (f.index !== index || f.ino !== inode.ino || !f.inCache) {
        out.push(violation('I9', `inode ${inode.ino} page ${index} holds folio of inode ${f.ino} page ${f.index}`, [off(index)]));
      }
    }
  }
  return out;
}

/** I10: a file has one VM; each file page is bound to at most one memslot, consistently. */
export function bindingsUnique(k: Kernel): InvariantViolation[] {
  const out: InvariantViolation[] = [];
  for (const inode of k.state.inodes) {
    for (const file of inode.files) {
      for (const seg of file.bindings.segments()) {
        const slot = seg.value;
        if (slot.vm !== file.vm) out.push(violation('I10', `file ${file.id} bound to a memslot of another VM`));
        if (slot.gmem?.file !== file) out.push(violation('I10', `file ${file.id}: binding at page ${seg.lo} not mirrored by its memslot`));
        if (seg.hi > inode.size / PAGE_SIZE) out.push(violation('I10', `file ${file.id}: binding past i_size`));
      }
    }
  }
  for (const vm of k.state.vms) {
    for (const slot of vm.memslots.values()) {
      const file = slot.gmem?.file;
      if (file && file.bindings.get(slot.gmem!.pgoff) !== slot) out.push(violation('I10', `VM ${vm.id} slot ${slot.id}: not recorded in its file's bindings`));
    }
  }
  return out;
}

/** I11: files pin their VM, VMAs pin their file, memslots pin nothing. */
export function referenceDirection(k: Kernel): InvariantViolation[] {
  const out: InvariantViolation[] = [];
  for (const inode of k.state.inodes) {
    if (inode.evicted) out.push(violation('I11', `inode ${inode.ino} evicted while listed`));
    for (const file of inode.files) {
      if (file.released) out.push(violation('I11', `file ${file.id} released but still on its inode`));
      if (file.vm.destroyed) out.push(violation('I11', `file ${file.id} outlived its VM`));
      if (file.fdRefs === 0 && file.vmaRefs === 0) out.push(violation('I11', `file ${file.id} has no fd or VMA but was not released (a memslot must not pin it)`));
    }
  }
  for (const [, vma] of k.state.vmas.entries()) {
    if (vma.file?.released) out.push(violation('I11', `VMA at ${vma.start} maps a released file`));
  }
  return out;
}

const STATE_INVARIANTS: ReadonlyArray<(k: Kernel) => InvariantViolation[]> = [
  noHostMappingOfPrivate, privatePagesExclusive, zeroedBeforeExposure, guestMappingsCurrent,
  foliosUnmoved, bindingsUnique, referenceDirection,
];

export function checkState(k: Kernel): InvariantViolation[] {
  return STATE_INVARIANTS.flatMap((inv) => inv(k));
}

// ------------------------------------------------------------------ step invariants

/** A conversion the step is about to attempt, on guest_memfd pages [lo, hi). */
export interface ConversionIntent {
  readonly inode: GmemInode;
  readonly vmType: Vm['type'];
  readonly lo: number;
  readonly hi: number;
  readonly target: Attr;
}

export interface StepContext {
  readonly conversions: readonly ConversionIntent[];
  readonly attrs: Map<GmemInode, IntervalMap<Attr>>;
  readonly vmAttrs: Map<Vm, IntervalMap<Attr>>;
  /** For conversions: page index -> content copy (null = zero), per inode. */
  readonly content: Map<GmemInode, Map<number, Uint8Array | null>>;
}

export function beginStep(k: Kernel, conversions: readonly ConversionIntent[] = []): StepContext {
  const attrs = new Map<GmemInode, IntervalMap<Attr>>();
  for (const inode of k.state.inodes) attrs.set(inode, inode.attributes.clone());
  const vmAttrs = new Map<Vm, IntervalMap<Attr>>();
  for (const vm of k.state.vms) vmAttrs.set(vm, vm.attributes.clone());
  const content = new Map<GmemInode, Map<number, Uint8Array | null>>();
  for (const c of conversions) {
    const pages = content.get(c.inode) ?? new Map<number, Uint8Array | null>();
    c.inode.pages.forRange(c.lo, c.hi, false, (i: number, f: Folio) => { pages.set(i, f.data ? f.data.slice() : null); });
    content.set(c.inode, pages);
  }
  return { conversions, attrs, vmAttrs, content };
}

/** Step invariants for a step that returned `succeeded` (and `errno` when it failed). */
export function endStep(ctx: StepContext, succeeded: boolean, errno?: string): InvariantViolation[] {
  const out: InvariantViolation[] = [];
  const isConversion = ctx.conversions.length > 0;
  for (const [inode, before] of ctx.attrs) {
    if (inode.evicted || before.version === inode.attributes.version) continue;
    if (!isConversion && !onlySettled(before, inode.attributes)) out.push(violation('I5', `inode ${inode.ino}: attributes changed by a step that is not a conversion`));
    else if (!succeeded && !before.equals(inode.attributes)) out.push(violation('I4', `inode ${inode.ino}: failed conversion changed attributes`));
  }
  if (!succeeded && isConversion) {
    for (const [vm, before] of ctx.vmAttrs) {
      if (!vm.destroyed && before.version !== vm.attributes.version && !before.equals(vm.attributes)) {
        out.push(violation('I4', `VM ${vm.id}: failed conversion changed per-VM attributes`));
      }
    }
  }
  for (const c of ctx.conversions) {
    if (c.target === 'shared' && errno === 'EAGAIN') out.push(violation('I3', 'to-shared conversion failed with EAGAIN'));
    if (!succeeded) continue;
    const reached = (a: Attr | undefined) => a === c.target || (c.target === 'private' && a === 'pending'); // deferred variant
    if (!c.inode.attributes.every(c.lo, c.hi, reached)) {
      out.push(violation('I4', `inode ${c.inode.ino}: successful conversion left part of [${off(c.lo)}, ${off(c.hi)}) unconverted`));
    }
    out.push(...contentRule(c, ctx.attrs.get(c.inode)!, ctx.content.get(c.inode)!));
  }
  return out;
}

/** Every index that changed went from 'pending' to 'private' (a deferred conversion completing). */
function onlySettled(before: IntervalMap<Attr>, after: IntervalMap<Attr>): boolean {
  for (const seg of before.segments()) {
    if (seg.value === 'pending') continue;
    if (!after.every(seg.lo, seg.hi, (a) => a === seg.value)) return false;
  }
  for (const seg of after.segments()) {
    if (seg.value === 'pending' && !before.every(seg.lo, seg.hi, (a) => a === 'pending')) return false;
  }
  return true;
}

/** I7: preserve on software-protected VMs; pages that changed attribute read zero on SNP/TDX. */
function contentRule(c: ConversionIntent, before: IntervalMap<Attr>, content: Map<number, Uint8Array | null>): InvariantViolation[] {
  const rule = VM_TYPE_FACTS[c.vmType].conversionContent;
  const bad: bigint[] = [];
  for (const [index, old] of content) {
    const f = c.inode.pages.get(index);
    if (!f || c.inode.attributes.get(index) === 'pending') continue; // content rule applies when it completes
    const changed = before.get(index) !== c.target;
    const expectZero = rule === 'zero' && changed;
    const now = f.data;
    const same = expectZero ? (now === null || now.every((b) => b === 0)) : sameBytes(old, now);
    if (!same) bad.push(off(index));
  }
  return bad.length ? [violation('I7', `${c.vmType}: content ${rule === 'zero' ? 'not destroyed' : 'not preserved'} at ${list(bad)}`, bad)] : [];
}

function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return (a ?? b ?? new Uint8Array()).every((x) => x === 0);
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function list(offs: bigint[]): string {
  const shown = offs.slice(0, 8).map((o) => String(o)).join(', ');
  return offs.length > 8 ? `${shown}, … (${offs.length} in all)` : shown;
}
