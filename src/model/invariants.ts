// Invariants I1–I13 of kernel-semantics.md §3 as named predicates over the model's state.
// State invariants hold after every step; step invariants (I3, I4, I5, I7) relate the state
// before a step to the state after it, so a step is bracketed by beginStep()/endStep().
// This module only reads the state; it must never change it. Every predicate works on runs
// (page-cache, PTE, SPTE and folio-table extents, attribute segments), never page by page, so
// checking after every step stays cheap on a 1 TiB guest.
import { PAGE_SIZE } from './abi.js';
import type { ExtentMap } from './extent-map.js';
import type { IntervalMap } from './interval-map.js';
import type { Kernel } from './kernel.js';
import { VM_TYPE_FACTS } from './platform.js';
import { extraRefs, type Attr, type FolioRun, type GmemInode, type KernelState, type Vm } from './state.js';

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
  I12: 'no huge folio spans pages of different attributes',
  I13: 'a huge folio is merged (and stays) only while no page of it carries extra references or a host mapping',
} as const;
export type InvariantName = keyof typeof INVARIANTS;

const off = (index: number): bigint => BigInt(index * PAGE_SIZE);

function violation(name: InvariantName, detail: string, offsets?: bigint[]): InvariantViolation {
  return offsets ? { invariant: name, title: INVARIANTS[name], detail, offsets } : { invariant: name, title: INVARIANTS[name], detail };
}

/** Offending page ranges, reported as the offsets of their first pages and a total. */
class BadPages {
  private readonly shown: bigint[] = [];
  private total = 0;
  add(lo: number, hi: number): void {
    for (let i = lo; i < hi && this.shown.length < 64; i++) this.shown.push(off(i));
    this.total += hi - lo;
  }
  get empty(): boolean { return this.total === 0; }
  get offsets(): bigint[] { return this.shown; }
  list(): string {
    const text = this.shown.slice(0, 8).map((o) => String(o)).join(', ');
    return this.total > 8 ? `${text}, … (${this.total} in all)` : text;
  }
}

/** The folio-table runs behind folio ids [id, id + n) (freed folios are skipped). */
function foliosOf(s: KernelState, id: number, n: number): { lo: number; hi: number; value: FolioRun }[] {
  return s.folios.segments(id, id + n);
}

// ------------------------------------------------------------------ state invariants

/** I1: every host PTE of a guest_memfd, and every live device import, covers shared indices only. */
export function noHostMappingOfPrivate(k: Kernel): InvariantViolation[] {
  const bad = new BadPages();
  for (const [, vma] of k.state.vmas.entries()) {
    if (!vma.file) continue;
    const attrs = vma.file.inode.attributes;
    for (const seg of vma.ptes.segments()) {
      for (const a of attrs.cover(seg.lo, seg.hi)) if (a.value !== 'shared') bad.add(a.lo, a.hi);
    }
  }
  for (const imp of k.state.imports.values()) {
    const seg = imp.revoked ? undefined : imp.inode.attributes.find(imp.lo, imp.hi, (a) => a !== 'shared');
    if (seg) bad.add(seg.lo, seg.lo + 1);
  }
  return bad.empty ? [] : [violation('I1', `host PTEs or device imports reach non-shared offsets ${bad.list()}`, bad.offsets)];
}

/** I2: no folio at a private index holds host PTEs, pins or page references. */
export function privatePagesExclusive(k: Kernel): InvariantViolation[] {
  const bad = new BadPages();
  for (const inode of k.state.inodes) {
    for (const seg of inode.attributes.segments()) {
      if (seg.value !== 'private') continue;
      for (const p of inode.pages.segments(seg.lo, seg.hi)) {
        for (const f of foliosOf(k.state, p.value, p.hi - p.lo)) {
          if (extraRefs(f.value) > 0) bad.add(p.lo + (f.lo - p.value), p.lo + (f.hi - p.value));
        }
      }
    }
  }
  return bad.empty ? [] : [violation('I2', `private offsets with extra references: ${bad.list()}`, bad.offsets)];
}

/** I6: every folio the host, a device, a pipe or a guest can reach is uptodate (zeroed). */
export function zeroedBeforeExposure(k: Kernel): InvariantViolation[] {
  const s = k.state;
  let seen: Map<number, number> | undefined; // first id -> end id of every never-zeroed run found
  const check = (id: number, n: number) => {
    for (const f of foliosOf(s, id, n)) {
      if (!f.value.uptodate) (seen ??= new Map()).set(f.lo, Math.max(seen.get(f.lo) ?? 0, f.hi));
    }
  };
  for (const [, vma] of s.vmas.entries()) for (const seg of vma.ptes.segments()) check(seg.value, seg.hi - seg.lo);
  for (const pin of s.pins.values()) for (const b of pin.folios) check(b.id, b.nr);
  for (const e of s.fds.values()) if (e.kind === 'pipe') e.pipe.buffers.forEach((b) => check(b.folio, 1));
  for (const vm of s.vms) for (const seg of vm.sptes.segments()) check(seg.value.id, seg.hi - seg.lo);
  if (!seen) return [];
  const bad = new BadPages();
  const runs = [...seen].sort((x, y) => x[0] - y[0]);
  let done = Number.MIN_SAFE_INTEGER;
  for (const [lo, hi] of runs) { // overlapping reports of one folio count once
    const from = Math.max(lo, done);
    if (from < hi) { const idx = s.folios.get(from)!.index; bad.add(idx, idx + (hi - from)); }
    done = Math.max(done, hi);
  }
  return bad.empty ? [] : [violation('I6', `exposed folios never zeroed at ${bad.list()}`, bad.offsets)];
}

/** I8: every guest mapping is of the folio now in the file, with the attribute now in force. */
export function guestMappingsCurrent(k: Kernel): InvariantViolation[] {
  const out: InvariantViolation[] = [];
  for (const vm of k.state.vms) {
    for (const spte of vm.sptes.segments()) {
      if (spte.value.backing !== 'gmem') continue;
      for (const ss of vm.gfnIndex[0].cover(spte.lo, spte.hi)) {
        const slot = ss.value;
        const file = slot?.gmem?.file;
        if (!slot || !file) {
          out.push(violation('I8', `VM ${vm.id} gfn ${ss.lo}: guest mapping outlived its memslot or file`));
          continue;
        }
        const base = slot.gmem!.pgoff - slot.baseGfn; // index = gfn + base
        const idOf = (gfn: number) => spte.value.id + (gfn - spte.lo);
        const stale = [...file.inode.pages.cover(ss.lo + base, ss.hi + base)].find((p) => p.value !== idOf(p.lo - base));
        if (stale) out.push(violation('I8', `VM ${vm.id} gfn ${stale.lo - base}: guest maps a folio no longer in the file`, [off(stale.lo)]));
        const attrs = k.profile.privateTracking === 'gmem'
          ? [...file.inode.attributes.cover(ss.lo + base, ss.hi + base)].map((a) => ({ gfn: a.lo - base, attr: a.value }))
          : [...vm.attributes.cover(ss.lo, ss.hi)].map((a) => ({ gfn: a.lo, attr: a.value ?? 'shared' as Attr }));
        for (const { gfn, attr } of attrs) {
          if (attr === 'pending' || (attr === 'private') !== spte.value.private) {
            out.push(violation('I8', `VM ${vm.id} gfn ${gfn}: ${spte.value.private ? 'private' : 'shared'} guest mapping of a ${attr} page`, [off(gfn + base)]));
          }
        }
      }
    }
  }
  return out;
}

/** I9: every folio sits in its own inode's page cache at the index it was allocated for. */
export function foliosUnmoved(k: Kernel): InvariantViolation[] {
  const out: InvariantViolation[] = [];
  for (const inode of k.state.inodes) {
    for (const p of inode.pages.segments()) {
      const end = p.value + (p.hi - p.lo);
      const indexOf = (id: number) => p.lo + (id - p.value);
      let at = p.value;
      for (const f of foliosOf(k.state, p.value, p.hi - p.lo)) {
        if (f.lo > at) out.push(violation('I9', `inode ${inode.ino} page ${indexOf(at)} holds a freed folio`, [off(indexOf(at))]));
        at = f.hi;
        const v = f.value;
        if (v.index !== indexOf(f.lo) || v.ino !== inode.ino || !v.inCache) {
          out.push(violation('I9', `inode ${inode.ino} page ${indexOf(f.lo)} holds folio of inode ${v.ino} page ${v.index}${v.inCache ? '' : ' (detached)'}`, [off(indexOf(f.lo))]));
        }
      }
      if (at < end) out.push(violation('I9', `inode ${inode.ino} page ${indexOf(at)} holds a freed folio`, [off(indexOf(at))]));
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

/**
 * The huge folios of an inode's page cache (of pages [lo, hi)): [first page, end page, run state]
 * for every run of the folio table of order > 0 (a run may hold several aligned huge folios, or
 * part of one). O(runs).
 */
function hugeRuns(s: KernelState, inode: GmemInode, lo?: number, hi?: number): [number, number, FolioRun][] {
  const out: [number, number, FolioRun][] = [];
  for (const p of inode.pages.segments(lo, hi)) {
    for (const f of foliosOf(s, p.value, p.hi - p.lo)) {
      if (f.value.order > 0) out.push([p.lo + (f.lo - p.value), p.lo + (f.hi - p.value), f.value]);
    }
  }
  return out;
}

/**
 * I12 (kernel-semantics §2.3 [RFC25] rules 1, 2): every huge folio covers one whole aligned block
 * of its HugeTLB file, of the file's huge page order (its runs may be cut by per-page state, never
 * by order), and all its pages have the same attribute (shared pages are split).
 */
export function hugeFoliosUniform(k: Kernel): InvariantViolation[] {
  const bad = new BadPages();
  for (const inode of k.state.inodes) {
    if (!inode.hugeOrder) continue; // only a HugeTLB inode allocates or merges huge folios
    const nr = 2 ** inode.hugeOrder;
    let done = -1; // blocks below this page are checked
    for (const [lo, hi, run] of hugeRuns(k.state, inode)) {
      if (run.order !== inode.hugeOrder) { bad.add(lo, lo + 1); continue; }
      const [a, b] = [Math.max(done, Math.floor(lo / nr) * nr), Math.ceil(hi / nr) * nr];
      if (a >= b) continue;
      done = b;
      // The whole block is in the page cache, in folios of the huge order.
      const whole = inode.pages.count(a, b) === b - a && hugeRuns(k.state, inode, a, b).reduce((n, [x, y, r]) => n + (r.order === run.order ? y - x : 0), 0) === b - a;
      if (!whole) bad.add(a, a + 1);
      // An attribute boundary strictly inside a block splits a huge folio.
      for (const seg of inode.attributes.segments(a, b)) {
        if (seg.lo > a && seg.lo % nr !== 0) bad.add(Math.floor(seg.lo / nr) * nr, Math.floor(seg.lo / nr) * nr + 1);
      }
    }
  }
  return bad.empty ? [] : [violation('I12', `huge folios at ${bad.list()} are not one whole block of one attribute`, bad.offsets)];
}

/**
 * I13 (kernel-semantics §2.3 [RFC25] rule 3): a huge folio holds nothing but the page cache's
 * references. Huge folios are made only by allocation (unreferenced) and by a merge, and a page
 * of one can be neither host-mapped nor pinned, so a reference on one means a merge took place
 * while a page of the block was referenced or mapped.
 */
export function hugeFoliosUnreferenced(k: Kernel): InvariantViolation[] {
  const bad = new BadPages();
  for (const inode of k.state.inodes) {
    if (!inode.hugeOrder) continue;
    for (const [lo, hi, run] of hugeRuns(k.state, inode)) if (extraRefs(run) > 0) bad.add(lo, hi);
  }
  return bad.empty ? [] : [violation('I13', `pages of huge folios carry extra references or host mappings at ${bad.list()}`, bad.offsets)];
}

const STATE_INVARIANTS: ReadonlyArray<(k: Kernel) => InvariantViolation[]> = [
  noHostMappingOfPrivate, privatePagesExclusive, zeroedBeforeExposure, guestMappingsCurrent,
  foliosUnmoved, bindingsUnique, referenceDirection, hugeFoliosUniform, hugeFoliosUnreferenced,
];

/** Every state invariant, in order: the full check. */
export function checkState(k: Kernel): InvariantViolation[] {
  let out: InvariantViolation[] | undefined;
  for (const inv of STATE_INVARIANTS) {
    const v = inv(k);
    if (v.length) (out ??= []).push(...v);
  }
  return out ?? [];
}

// ------------------------------------------------------------------ incremental checking
//
// Each state invariant is a pure function of the part of the state it reads. Its *inputs*
// below list that part as tokens: every object it visits (by identity), every mutable scalar
// field it reads (by value) and the version of every ExtentMap and IntervalMap it reads.
// Equal token lists mean an equal result, so the last result is reused; this is exactly
// checkState, step for step, with the same violations (the same objects) in the same order.
// Why the tokens determine the inputs:
// - ExtentMap and IntervalMap bump `version` on every change (set, delete and update go through
//   them; the tree is private), and a version never comes back: (map, version) fixes the
//   contents. A clone is a new map, so a restored clone never passes for the original.
// - The values in those maps are immutable (FolioRun, Spte, folio ids, attribute strings, by
//   the contract of extent-map.ts and interval-map.ts), except memslots, whose mutable `gmem`
//   and `gmem.file` are tokens where an invariant reads them.
// - Object fields declared readonly in state.ts are never reassigned (the object's identity
//   fixes them), and so are pin.folios (the pinned blocks are fixed when the pin is taken).
// - Collections (state.vmas, pins, imports, fds, inodes, vms, inode.files, vm.memslots) are
//   walked in their iteration order, so an added, removed or reordered member changes the list.
// A map is two tokens, itself and its version (a restored clone is another map).
// A token list is a superset where it is cheaper than precision (a whole map's version for a
// range of it): that only makes a reuse rarer, never wrong. The kernel's profile is fixed.
// Step invariants (I3, I4, I5, I7) are not reused: they compare a step's before and after.

/** The inputs of a state invariant, appended to `out` as tokens (see above). */
type Inputs = (k: Kernel, out: unknown[]) => void;

const vmaInputs = (s: KernelState, out: unknown[], withFile: boolean): void => {
  for (const [, vma] of s.vmas.entries()) {
    out.push(vma, vma.ptes, vma.ptes.version);
    if (withFile && vma.file) out.push(vma.file.inode.attributes, vma.file.inode.attributes.version, vma.file.released);
  }
};

/** Per state invariant (same order as STATE_INVARIANTS; checked below): everything it reads. */
const STATE_INPUTS: readonly Inputs[] = [
  // I1: VMAs, their PTEs and their inode's attributes; imports, their revocation and attributes.
  (k, out) => {
    vmaInputs(k.state, out, true);
    for (const imp of k.state.imports.values()) out.push(imp, imp.revoked, imp.inode.attributes, imp.inode.attributes.version);
  },
  // I2: each inode's attributes and page cache; the folio table.
  (k, out) => {
    for (const inode of k.state.inodes) out.push(inode, inode.attributes, inode.attributes.version, inode.pages, inode.pages.version);
    out.push(k.state.folios, k.state.folios.version);
  },
  // I6: PTEs, pins, pipe buffers, SPTEs; the folio table (uptodate, index).
  (k, out) => {
    const s = k.state;
    vmaInputs(s, out, false);
    for (const pin of s.pins.values()) out.push(pin);
    for (const e of s.fds.values()) {
      if (e.kind !== 'pipe') continue;
      out.push(e, e.pipe.buffers.length);
      for (const b of e.pipe.buffers) out.push(b.folio);
    }
    for (const vm of s.vms) out.push(vm, vm.sptes, vm.sptes.version);
    out.push(s.folios, s.folios.version);
  },
  // I8: each VM's SPTEs, address space 0, per-VM attributes; each memslot's file there, with
  // its page cache and attributes.
  (k, out) => {
    for (const vm of k.state.vms) {
      out.push(vm, vm.sptes, vm.sptes.version, vm.gfnIndex[0], vm.gfnIndex[0].version, vm.attributes, vm.attributes.version);
      for (const seg of vm.gfnIndex[0].segments()) {
        const gmem = seg.value.gmem;
        const file = gmem?.file;
        out.push(seg.value, gmem, file);
        if (file) out.push(file.inode.pages, file.inode.pages.version, file.inode.attributes, file.inode.attributes.version);
      }
    }
  },
  // I9: each inode's page cache; the folio table.
  (k, out) => {
    for (const inode of k.state.inodes) out.push(inode, inode.pages, inode.pages.version);
    out.push(k.state.folios, k.state.folios.version);
  },
  // I10: each inode's files and their bindings (the memslots there and their file); each VM's
  // memslots, their file and that file's bindings.
  (k, out) => {
    for (const inode of k.state.inodes) {
      out.push(inode);
      for (const file of inode.files) {
        out.push(file, file.bindings, file.bindings.version);
        for (const seg of file.bindings.segments()) out.push(seg.value, seg.value.gmem, seg.value.gmem?.file);
      }
    }
    for (const vm of k.state.vms) {
      out.push(vm);
      for (const slot of vm.memslots.values()) {
        const file = slot.gmem?.file;
        out.push(slot, slot.gmem, file, file?.bindings, file?.bindings.version);
      }
    }
  },
  // I11: inodes (evicted), their files (released, references, their VM destroyed); VMAs' files.
  (k, out) => {
    for (const inode of k.state.inodes) {
      out.push(inode, inode.evicted);
      for (const file of inode.files) out.push(file, file.released, file.vm.destroyed, file.fdRefs, file.vmaRefs);
    }
    for (const [, vma] of k.state.vmas.entries()) out.push(vma, vma.file?.released);
  },
  // I12: each inode (hugeOrder is readonly), its page cache and attributes; the folio table.
  (k, out) => {
    for (const inode of k.state.inodes) out.push(inode, inode.pages, inode.pages.version, inode.attributes, inode.attributes.version);
    out.push(k.state.folios, k.state.folios.version);
  },
  // I13: each inode and its page cache; the folio table (order, references).
  (k, out) => {
    for (const inode of k.state.inodes) out.push(inode, inode.pages, inode.pages.version);
    out.push(k.state.folios, k.state.folios.version);
  },
];
// One inputs list per state invariant: a new invariant without one is a bug here, found at load.
if (STATE_INPUTS.length !== STATE_INVARIANTS.length) {
  throw new Error(`invariants.ts: ${STATE_INVARIANTS.length} state invariants but ${STATE_INPUTS.length} inputs lists (STATE_INPUTS)`);
}

/**
 * The state invariants checked incrementally: after a step, only those whose inputs changed
 * are evaluated again; the others give their last result (the same, see above). One per
 * kernel; it may skip steps (a checker that switches checking off meanwhile): the tokens see
 * every change since the last check.
 */
export class IncrementalStateCheck {
  private readonly tokens: unknown[][] = STATE_INVARIANTS.map(() => []);
  private readonly results: InvariantViolation[][] = STATE_INVARIANTS.map(() => []);
  private primed = false;
  private scratch: unknown[] = [];
  /** Evaluations done and reused since construction (for benchmarks and tests). */
  evaluated = 0;
  reused = 0;

  check(k: Kernel): InvariantViolation[] {
    let out: InvariantViolation[] | undefined;
    for (let i = 0; i < STATE_INVARIANTS.length; i++) {
      const now = this.scratch;
      now.length = 0;
      STATE_INPUTS[i]!(k, now);
      const last = this.tokens[i]!;
      let same = this.primed && now.length === last.length;
      for (let j = 0; same && j < now.length; j++) same = now[j] === last[j];
      if (same) this.reused++;
      else {
        this.results[i] = STATE_INVARIANTS[i]!(k);
        this.tokens[i] = now;
        this.scratch = last;
        this.evaluated++;
      }
      const v = this.results[i]!;
      if (v.length) (out ??= []).push(...v);
    }
    this.primed = true;
    return out ?? [];
  }
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
  readonly state: KernelState;
  readonly conversions: readonly ConversionIntent[];
  readonly attrs: Map<GmemInode, IntervalMap<Attr>>;
  readonly vmAttrs: Map<Vm, IntervalMap<Attr>>;
  /** For conversions, per inode: the page cache then, and copies of its non-zero pages by index. */
  readonly content: Map<GmemInode, ContentBefore>;
}

export interface ContentBefore {
  readonly pages: ExtentMap<number>;
  readonly data: Map<number, Uint8Array>;
}

/** Copies of the non-zero pages of [lo, hi) of an inode, by page index. */
function nonZeroPages(s: KernelState, pages: ExtentMap<number>, lo: number, hi: number, into = new Map<number, Uint8Array>()): Map<number, Uint8Array> {
  for (const p of pages.segments(lo, hi)) {
    for (const [id, data] of s.folioData.entries(p.value)) {
      if (id >= p.value + (p.hi - p.lo)) break;
      into.set(p.lo + (id - p.value), data);
    }
  }
  return into;
}

/**
 * Room for the page copies of beginStep, reused from step to step by a caller that ends each
 * step (endStep) before it begins the next (a ModelBackend): no allocation per conversion.
 */
export class ContentScratch {
  private buffer = new Uint8Array(0);
  take(size: number): Uint8Array {
    if (this.buffer.length < size) this.buffer = new Uint8Array(Math.max(size, 2 * this.buffer.length));
    return this.buffer.subarray(0, size);
  }
}

export function beginStep(k: Kernel, conversions: readonly ConversionIntent[] = [], scratch?: ContentScratch): StepContext {
  const attrs = new Map<GmemInode, IntervalMap<Attr>>();
  for (const inode of k.state.inodes) attrs.set(inode, inode.attributes.clone());
  // Per-VM attributes matter only to a failed conversion (I4), page contents only to a
  // conversion (I7): other steps copy neither.
  const vmAttrs = new Map<Vm, IntervalMap<Attr>>();
  if (conversions.length) for (const vm of k.state.vms) vmAttrs.set(vm, vm.attributes.clone());
  const content = new Map<GmemInode, ContentBefore>();
  for (const c of conversions) {
    const before = content.get(c.inode) ?? { pages: c.inode.pages.clone(), data: new Map<number, Uint8Array>() };
    // The step may write these pages in place: copy them, into one buffer (the scratch's).
    const pages = nonZeroPages(k.state, before.pages, c.lo, c.hi);
    let size = 0;
    for (const d of pages.values()) size += d.length;
    const copy = scratch && conversions.length === 1 ? scratch.take(size) : new Uint8Array(size);
    let at = 0;
    for (const [i, d] of pages) {
      copy.set(d, at);
      before.data.set(i, copy.subarray(at, at + d.length));
      at += d.length;
    }
    content.set(c.inode, before);
  }
  return { state: k.state, conversions, attrs, vmAttrs, content };
}

/** Step invariants for a step that returned `succeeded` (and `errno` when it failed). */
export function endStep(ctx: StepContext, succeeded: boolean, errno?: string): InvariantViolation[] {
  const s = ctx.state;
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
    out.push(...contentRule(s, c, ctx.attrs.get(c.inode)!, ctx.content.get(c.inode)!));
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

/**
 * I7: preserve on software-protected VMs; pages that changed attribute read zero on SNP/TDX.
 * Only pages holding data before or after can differ, so only those are compared.
 */
function contentRule(s: KernelState, c: ConversionIntent, before: IntervalMap<Attr>, content: ContentBefore): InvariantViolation[] {
  const rule = VM_TYPE_FACTS[c.vmType].conversionContent;
  const now = nonZeroPages(s, c.inode.pages, c.lo, c.hi);
  const indices = new Set([...content.data.keys(), ...now.keys()]);
  const bad = new BadPages();
  for (const index of [...indices].sort((x, y) => x - y)) {
    if (content.pages.get(index) === undefined || c.inode.pages.get(index) === undefined) continue; // not in the file then or now
    if (c.inode.attributes.get(index) === 'pending') continue; // content rule applies when it completes
    const changed = before.get(index) !== c.target;
    const expectZero = rule === 'zero' && changed;
    const after = now.get(index) ?? null;
    const same = expectZero ? (after === null || allZero(after)) : sameBytes(content.data.get(index) ?? null, after);
    if (!same) bad.add(index, index + 1);
  }
  return bad.empty ? [] : [violation('I7', `${c.vmType}: content ${rule === 'zero' ? 'not destroyed' : 'not preserved'} at ${bad.list()}`, bad.offsets)];
}

function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return allZero(a ?? b ?? EMPTY);
  if (a.length !== b.length) return false;
  const wa = words(a);
  const wb = words(b);
  if (wa && wb) {
    for (let i = 0; i < wa.length; i++) if (wa[i] !== wb[i]) return false;
    return true;
  }
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const EMPTY = new Uint8Array();

/** Whether every byte is zero (compared a word at a time: this runs for every page a conversion touches). */
function allZero(a: Uint8Array): boolean {
  const w = words(a);
  if (w) {
    for (let i = 0; i < w.length; i++) if (w[i] !== 0) return false;
    return true;
  }
  for (let i = 0; i < a.length; i++) if (a[i] !== 0) return false;
  return true;
}

/** The bytes as 32-bit words when they are word-aligned (folio contents are whole pages). */
function words(a: Uint8Array): Uint32Array | undefined {
  return a.byteOffset % 4 === 0 && a.length % 4 === 0 ? new Uint32Array(a.buffer, a.byteOffset, a.length / 4) : undefined;
}
