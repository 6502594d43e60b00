// The VMM's own view of guest memory: which user addresses map which guest_memfd pages, which
// GPA ranges its memslots bind to which guest_memfd pages, and which attributes it set on each
// guest_memfd (the kernel has no "get" for them). Built by watching the calls the VMM makes
// (TrackingBackend forwards every call and records guest_memfd creation, mmap, munmap,
// memslots, attribute changes and close), so it works unchanged on the model and on real Linux.
import type { Backend } from '../backend/backend.js';
import { decorate } from '../backend/decorate.js';
import { GMEM_FLAGS, PAGE_SIZE } from '../model/abi.js';
import { IntervalMap, type Segment } from '../model/interval-map.js';
import type { MemoryAttributes2Args, MemoryRegion2, MmapArgs, U64 } from '../model/kernel.js';

export interface GmemRange { readonly fd: number; readonly lo: number; readonly hi: number }
export type Attribute = 'shared' | 'private';
interface Mapping { readonly addr: number; readonly length: number; readonly fd: number | null; readonly pgoff: number }
interface Slot { readonly vmFd: number; readonly slot: bigint; readonly gfn: number; readonly npages: number; readonly fd: number; readonly pgoff: number }

/** A translation problem, said in the VMM's terms. */
export class TranslationError extends Error {}

export class MemoryMap {
  private readonly mappings: Mapping[] = [];
  private readonly slots: Slot[] = [];
  /** Per guest_memfd fd: the attributes the VMM created it with and set since. */
  private readonly attributes = new Map<number, IntervalMap<Attribute>>();

  /** guest_memfds created with NO_DIRECT_MAP: nothing in them can be pinned (holders bounce). */
  private readonly noDirectMapFds = new Set<number>();

  noDirectMap(fd: number): boolean {
    return this.noDirectMapFds.has(fd);
  }

  recordGmem(fd: number, size: number, flags: bigint): void {
    if (flags & GMEM_FLAGS.NO_DIRECT_MAP) this.noDirectMapFds.add(fd);
    else this.noDirectMapFds.delete(fd);
    const m = new IntervalMap<Attribute>();
    m.set(0, Math.ceil(size / PAGE_SIZE), flags & GMEM_FLAGS.INIT_SHARED ? 'shared' : 'private');
    this.attributes.set(fd, m);
  }

  recordAttributes(fd: number, args: MemoryAttributes2Args): void {
    const lo = Number(args.offset) / PAGE_SIZE;
    this.attributes.get(fd)?.set(lo, lo + Number(args.size) / PAGE_SIZE, BigInt(args.attributes) ? 'private' : 'shared');
  }

  /** What the VMM knows of the attributes of a range, as runs; undefined where it does not know. */
  attributesOf(range: GmemRange): Segment<Attribute | undefined>[] {
    const m = this.attributes.get(range.fd);
    return m ? [...m.cover(range.lo, range.hi)] : [{ lo: range.lo, hi: range.hi, value: undefined }];
  }

  recordMmap(addr: number, args: MmapArgs): void {
    const length = Math.ceil(Number(args.length) / PAGE_SIZE) * PAGE_SIZE;
    // A MAP_FIXED mapping replaces what was there: keep only the parts of older records outside it.
    const end = addr + length;
    for (let i = this.mappings.length - 1; i >= 0; i--) {
      const m = this.mappings[i]!;
      if (m.addr >= end || m.addr + m.length <= addr) continue;
      const parts: Mapping[] = [];
      if (m.addr < addr) parts.push({ ...m, length: addr - m.addr });
      if (m.addr + m.length > end) parts.push({ ...m, addr: end, length: m.addr + m.length - end, pgoff: m.pgoff + (end - m.addr) / PAGE_SIZE });
      this.mappings.splice(i, 1, ...parts);
    }
    this.mappings.push({ addr, length, fd: args.fd, pgoff: Number(args.offset) / PAGE_SIZE });
  }

  recordMunmap(addr: number, length: number): void {
    // Whole mappings only: partial unmaps keep the record (pins through it stay valid anyway).
    const i = this.mappings.findIndex((m) => m.addr === addr && m.length <= length);
    if (i >= 0) this.mappings.splice(i, 1);
  }

  recordMemslot(vmFd: number, r: MemoryRegion2): void {
    const size = Number(r.memory_size);
    const existing = this.slots.findIndex((s) => s.vmFd === vmFd && s.slot === BigInt(r.slot));
    if (existing >= 0) this.slots.splice(existing, 1);
    if (size === 0 || r.guest_memfd < 0) return;
    this.slots.push({
      vmFd, slot: BigInt(r.slot), gfn: Number(r.guest_phys_addr) / PAGE_SIZE, npages: size / PAGE_SIZE,
      fd: r.guest_memfd, pgoff: Number(r.guest_memfd_offset) / PAGE_SIZE,
    });
  }

  recordClose(fd: number): void {
    this.attributes.delete(fd); // (NO_DIRECT_MAP stays known: mappings outlive the fd)
    for (let i = this.slots.length - 1; i >= 0; i--) if (this.slots[i]!.vmFd === fd) this.slots.splice(i, 1);
  }

  /** The guest_memfd pages behind user addresses [addr, addr+length). */
  addressToGmem(addr: number, length: number): GmemRange {
    const m = this.mappings.find((x) => addr >= x.addr && addr + length <= x.addr + x.length);
    if (!m || m.fd === null) throw new TranslationError(`address range [0x${addr.toString(16)}, +${length}) is not inside one guest_memfd mapping`);
    const first = Math.floor((addr - m.addr) / PAGE_SIZE);
    const last = Math.ceil((addr + length - m.addr) / PAGE_SIZE);
    return { fd: m.fd, lo: m.pgoff + first, hi: m.pgoff + last };
  }

  /**
   * The guest_memfd page ranges behind GPAs [gpa, gpa+size) of a VM, in GPA order; a request may
   * span several memslots and files. Any part outside every guest_memfd memslot is an error.
   */
  gpaToGmem(vmFd: number, gpa: number, size: number): GmemRange[] {
    if (gpa % PAGE_SIZE || size % PAGE_SIZE || size <= 0) throw new TranslationError(`GPA range [0x${gpa.toString(16)}, +${size}) is not page-aligned and non-empty`);
    const out: GmemRange[] = [];
    let gfn = gpa / PAGE_SIZE;
    const end = gfn + size / PAGE_SIZE;
    while (gfn < end) {
      const s = this.slots.find((x) => x.vmFd === vmFd && gfn >= x.gfn && gfn < x.gfn + x.npages);
      if (!s) throw new TranslationError(`GPA 0x${(gfn * PAGE_SIZE).toString(16)} of [0x${gpa.toString(16)}, +${size}) is outside every guest_memfd memslot`);
      const stop = Math.min(end, s.gfn + s.npages);
      out.push({ fd: s.fd, lo: s.pgoff + (gfn - s.gfn), hi: s.pgoff + (stop - s.gfn) });
      gfn = stop;
    }
    return out;
  }

  /** The GPA of guest_memfd page `index` of `fd` in VM `vmFd`, if a memslot binds it. */
  gmemToGpa(vmFd: number, fd: number, index: number): number | undefined {
    const s = this.slots.find((x) => x.vmFd === vmFd && x.fd === fd && index >= x.pgoff && index < x.pgoff + x.npages);
    return s ? (s.gfn + index - s.pgoff) * PAGE_SIZE : undefined;
  }
}

/**
 * A Backend that forwards every call to another one and keeps the MemoryMap current. The
 * userspace half talks to this, so the VMM never asks the kernel what it mapped.
 */
export function trackingBackend(inner: Backend, map: MemoryMap): Backend {
  return decorate(inner, {
    createGuestMemfd(vmFd: number, size: U64, flags: U64) {
      const r = inner.createGuestMemfd(vmFd, size, flags);
      if (r.ok) map.recordGmem(r.value, Number(size), BigInt(flags));
      return r;
    },
    setMemoryAttributes2(fd: number, args: MemoryAttributes2Args) {
      const r = inner.setMemoryAttributes2(fd, args);
      if (r.ok) map.recordAttributes(fd, args);
      return r;
    },
    mmap(args: MmapArgs) {
      const r = inner.mmap(args);
      if (r.ok) map.recordMmap(r.value, args);
      return r;
    },
    munmap(addr: number, length: U64) {
      const r = inner.munmap(addr, length);
      if (r.ok) map.recordMunmap(addr, Number(length));
      return r;
    },
    setUserMemoryRegion2(vmFd: number, region: MemoryRegion2) {
      const r = inner.setUserMemoryRegion2(vmFd, region);
      if (r.ok) map.recordMemslot(vmFd, region);
      return r;
    },
    close(fd: number) {
      const r = inner.close(fd);
      if (r.ok) map.recordClose(fd);
      return r;
    },
  });
}
