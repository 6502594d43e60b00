// Random operation sequences over a small universe, for the properties of the model: the
// commands (fast-check arbitraries), the universe every sequence starts from, and the driver
// that runs one command on a ModelBackend. Shared by test/property-invariants.test.ts and
// test/invariants-incremental.test.ts.
import fc from 'fast-check';
import type { BResult } from '../src/backend/backend.js';
import type { ModelBackend } from '../src/backend/model-backend.js';
import { CAPS, MADV, MAP_FLAGS, PROT, VM_TYPES } from '../src/model/abi.js';
import { INIT_SHARED, MMAP, PAGE } from './table.js';

// ------------------------------------------------------------------ commands

const TYPES = ['default', 'sw_protected', 'snp', 'tdx'] as const;
const ADVICE = [MADV.DONTNEED, MADV.REMOVE, MADV.POPULATE_READ, MADV.POPULATE_WRITE, MADV.COLLAPSE, MADV.FREE, MADV.WILLNEED];

const idx = fc.nat(7);
/** A page within (or just past) a mapping. */
const page = fc.oneof({ weight: 4, arbitrary: fc.nat(2) }, { weight: 1, arbitrary: fc.nat(5) });
/** A byte offset or size: mostly page multiples, sometimes unaligned, zero or huge. */
const span = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: 5 }).map((n) => BigInt(n * PAGE)) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 5 * PAGE }).map(BigInt) },
  { weight: 1, arbitrary: fc.constantFrom((1n << 63n) - BigInt(PAGE), (1n << 64n) - BigInt(PAGE)) },
);
/** A conversion range: mostly inside a 1–4 page file, sometimes unaligned, empty or past EOF. */
const convOff = fc.oneof({ weight: 6, arbitrary: fc.nat(2).map((n) => BigInt(n * PAGE)) }, { weight: 1, arbitrary: span });
const convSize = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 2 }).map((n) => BigInt(n * PAGE)) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 4 }).map((n) => BigInt(n * PAGE)) },
  { weight: 1, arbitrary: span },
);
const access = fc.option(fc.boolean(), { nil: undefined });

export const cmd = fc.oneof(
  { weight: 1, arbitrary: fc.record({ op: fc.constant('createVm' as const), type: fc.constantFrom(...TYPES) }) },
  { weight: 1, arbitrary: fc.record({
    op: fc.constant('createGuestMemfd' as const), vm: idx, pages: fc.integer({ min: 1, max: 4 }), odd: fc.nat(9).map((n) => n === 0),
    flags: fc.constantFrom(0n, MMAP, INIT_SHARED, MMAP | INIT_SHARED, MMAP | INIT_SHARED, MMAP | INIT_SHARED, 4n),
  }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('close' as const), fd: fc.nat(20) }) },
  { weight: 3, arbitrary: fc.record({
    op: fc.constant('mmap' as const), gmem: idx, off: fc.nat(2), pages: fc.integer({ min: 1, max: 5 }),
    kind: fc.constantFrom('shared', 'shared', 'shared', 'shared', 'shared', 'private', 'exec', 'readonly', 'anon', 'anon'),
  }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('munmap' as const), map: idx, page, pages: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('hostAccess' as const), map: idx, page, at: fc.nat(PAGE - 1), write: fc.boolean(), byte: fc.nat(255) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('madvise' as const), map: idx, page, pages: fc.integer({ min: 1, max: 3 }), advice: fc.constantFrom(...ADVICE) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('pin' as const), map: idx, page, pages: fc.integer({ min: 1, max: 2 }), longterm: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('unpin' as const), pin: idx }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('pinAccess' as const), pin: idx, at: fc.nat(2 * PAGE), write: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('vmsplice' as const), map: idx, page, length: fc.integer({ min: 1, max: 2 * PAGE }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('pipeRead' as const), pipe: idx, length: fc.option(fc.nat(2 * PAGE), { nil: undefined }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('fallocate' as const), fd: fc.nat(12), mode: fc.constantFrom(1n, 3n, 3n, 0n, 2n, 0x10n), off: span, len: span }) },
  { weight: 3, arbitrary: fc.record({
    op: fc.constant('slotCreate' as const), vm: idx, slot: fc.nat(3), gpa: fc.nat(7), pages: fc.oneof(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 4 })),
    gmem: fc.option(idx, { nil: null, freq: 4 }), own: fc.nat(4).map((n) => n > 0), goff: fc.oneof(fc.constant(0), fc.nat(2)), uaddr: fc.option(idx, { nil: null }),
  }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('slotDelete' as const), vm: idx, slot: fc.nat(3) }) },
  { weight: 5, arbitrary: fc.record({
    op: fc.constant('guestAccess' as const), vm: idx, gpa: fc.oneof({ weight: 5, arbitrary: fc.nat(12 * PAGE - 1) }, { weight: 1, arbitrary: fc.nat(32 * PAGE) }),
    length: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 1, max: 16 }) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 6000 }) }), write: fc.boolean(), isPrivate: access,
  }) },
  { weight: 5, arbitrary: fc.record({ op: fc.constant('convert' as const), gmem: idx, off: convOff, size: convSize, toPrivate: fc.boolean(), flags: fc.constantFrom(0n, 0n, 0n, 0n, 0n, 0n, 1n) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('vmAttributes' as const), vm: idx, addr: convOff, size: convSize, toPrivate: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('fileSyscall' as const), fd: fc.nat(12), which: fc.constantFrom('read', 'write', 'pread', 'lseek', 'ftruncate') }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('checkExtension' as const), fd: fc.option(fc.nat(12), { nil: undefined }), cap: fc.constantFrom(CAPS.GUEST_MEMFD_FLAGS, CAPS.MEMORY_ATTRIBUTES, 250) }) },
);
export type Cmd = typeof cmd extends fc.Arbitrary<infer T> ? T : never;

/** The handles a run has created (closed ones stay, to exercise EBADF). */
export interface World { vms: number[]; gmems: number[]; maps: { addr: number; len: number }[]; pins: number[]; pipes: number[] }

export const pick = <T>(xs: readonly T[], i: number): T | undefined => (xs.length ? xs[i % xs.length] : undefined);

/** Runs one command; returns the operation name and its result (undefined when it had no target). */
export function run(b: ModelBackend, w: World, c: Cmd): [string, BResult<unknown>] | undefined {
  const vmFd = (i: number) => pick(w.vms, i);
  const mapAt = (i: number, pg: number) => { const m = pick(w.maps, i); return m && m.addr + pg * PAGE; };
  switch (c.op) {
    case 'createVm': {
      const r = b.createVm(VM_TYPES[c.type]);
      if (r.ok) w.vms.push(r.value);
      return ['createVm', r];
    }
    case 'createGuestMemfd': {
      const vm = vmFd(c.vm);
      if (vm === undefined) return undefined;
      const r = b.createGuestMemfd(vm, c.pages * PAGE + (c.odd ? 1 : 0), c.flags);
      if (r.ok) w.gmems.push(r.value);
      return ['createGuestMemfd', r];
    }
    case 'close': return ['close', b.close(c.fd)];
    case 'mmap': {
      const len = c.pages * PAGE;
      if (c.kind === 'anon') {
        const r = b.mmap({ fd: null, offset: 0, length: len, prot: PROT.READ | PROT.WRITE, flags: MAP_FLAGS.SHARED | MAP_FLAGS.ANONYMOUS });
        if (r.ok) w.maps.push({ addr: r.value, len });
        return ['mmap', r];
      }
      const fd = pick(w.gmems, c.gmem);
      if (fd === undefined) return undefined;
      const prot = c.kind === 'exec' ? PROT.READ | PROT.EXEC : c.kind === 'readonly' ? PROT.READ : PROT.READ | PROT.WRITE;
      const r = b.mmap({ fd, offset: c.off * PAGE, length: len, prot, flags: c.kind === 'private' ? MAP_FLAGS.PRIVATE : MAP_FLAGS.SHARED });
      if (r.ok) w.maps.push({ addr: r.value, len });
      return ['mmap', r];
    }
    case 'munmap': { const a = mapAt(c.map, c.page); return a === undefined ? undefined : ['munmap', b.munmap(a, c.pages * PAGE)]; }
    case 'hostAccess': {
      const a = mapAt(c.map, c.page);
      if (a === undefined) return undefined;
      return c.write ? ['hostWrite', b.hostWrite(a + c.at, Uint8Array.of(c.byte, c.byte))] : ['hostRead', b.hostRead(a + c.at, 2)];
    }
    case 'madvise': {
      const a = mapAt(c.map, c.page);
      if (a === undefined) return undefined;
      const anon = b.kernel.vmaAt(a)?.file === null;
      return [anon && c.advice === MADV.REMOVE ? 'madviseRemoveAnon' : 'madvise', b.madvise(a, c.pages * PAGE, c.advice)];
    }
    case 'pin': {
      const a = mapAt(c.map, c.page);
      if (a === undefined) return undefined;
      const r = b.pinUserPages(a, c.pages * PAGE, c.longterm);
      if (r.ok) w.pins.push(r.value);
      return ['pinUserPages', r];
    }
    case 'unpin': { const p = pick(w.pins, c.pin); return p === undefined ? undefined : ['unpinUserPages', b.unpinUserPages(p)]; }
    case 'pinAccess': {
      const p = pick(w.pins, c.pin);
      if (p === undefined) return undefined;
      return ['pinAccess', b.pinAccess(p, c.at, 3, c.write ? Uint8Array.of(1, 2, 3) : undefined)];
    }
    case 'vmsplice': {
      const a = mapAt(c.map, c.page);
      if (a === undefined) return undefined;
      const r = b.vmsplice(a, c.length);
      if (r.ok) w.pipes.push(r.value);
      return ['vmsplice', r];
    }
    case 'pipeRead': { const p = pick(w.pipes, c.pipe); return p === undefined ? undefined : ['fdRead', b.fdRead(p, c.length)]; }
    case 'fallocate': return ['fallocate', b.fallocate(c.fd < 10 ? (pick(w.gmems, c.fd) ?? c.fd) : c.fd, c.mode, c.off, c.len)];
    case 'slotCreate': {
      const vm = vmFd(c.vm);
      if (vm === undefined) return undefined;
      // Mostly a guest_memfd of this VM; sometimes any (another VM's: EINVAL, kernel-probe §7).
      const own = w.gmems.filter((g) => b.kernel.gmemFile(g)?.vm === b.kernel.vmOfFd(vm));
      const gmem = c.gmem === null ? undefined : pick(c.own && own.length ? own : w.gmems, c.gmem);
      const uaddr = c.uaddr === null ? 0 : (mapAt(c.uaddr, 0) ?? 0);
      return ['setUserMemoryRegion2', b.setUserMemoryRegion2(vm, {
        slot: c.slot, flags: gmem === undefined ? 0n : 4n, guest_phys_addr: c.gpa * PAGE, memory_size: c.pages * PAGE,
        userspace_addr: uaddr, guest_memfd: gmem ?? -1, guest_memfd_offset: c.goff * PAGE,
      })];
    }
    case 'slotDelete': {
      const vm = vmFd(c.vm);
      if (vm === undefined) return undefined;
      return ['setUserMemoryRegion2', b.setUserMemoryRegion2(vm, {
        slot: c.slot, flags: 0n, guest_phys_addr: 0, memory_size: 0, userspace_addr: 0, guest_memfd: -1, guest_memfd_offset: 0,
      })];
    }
    case 'guestAccess': {
      const vm = vmFd(c.vm);
      if (vm === undefined) return undefined;
      return c.write
        ? ['guestWrite', b.guestWrite(vm, c.gpa, new Uint8Array(c.length).fill(0x5a), c.isPrivate)]
        : ['guestRead', b.guestRead(vm, c.gpa, c.length, c.isPrivate)];
    }
    case 'convert': {
      const fd = pick(w.gmems, c.gmem);
      if (fd === undefined) return undefined;
      return ['setMemoryAttributes2', b.setMemoryAttributes2(fd, { offset: c.off, size: c.size, attributes: c.toPrivate ? 8n : 0n, flags: c.flags })];
    }
    case 'vmAttributes': {
      const vm = vmFd(c.vm);
      if (vm === undefined) return undefined;
      return ['setMemoryAttributes', b.setMemoryAttributes(vm, { address: c.addr, size: c.size, attributes: c.toPrivate ? 8n : 0n, flags: 0n })];
    }
    case 'fileSyscall':
      switch (c.which) {
        case 'read': return ['fdRead', b.fdRead(c.fd, 8)];
        case 'write': return ['fdWrite', b.fdWrite(c.fd, Uint8Array.of(1))];
        case 'pread': return ['pread', b.pread(c.fd, 8, 0)];
        case 'lseek': return ['lseek', b.lseek(c.fd, 0, 0)];
        default: return ['ftruncate', b.ftruncate(c.fd, PAGE)];
      }
    case 'checkExtension': return ['checkExtension', b.checkExtension(c.cap, c.fd)];
  }
}


/** The universe every run starts from: 1–2 VMs of random types, 1–3 guest_memfds of 1–4 pages, mapped if MMAP and bound. */
export const prelude = fc.record({
  vms: fc.array(fc.constantFrom(...TYPES), { minLength: 1, maxLength: 2 }),
  gmems: fc.array(fc.record({ vm: idx, pages: fc.integer({ min: 1, max: 4 }), flags: fc.constantFrom(MMAP | INIT_SHARED, MMAP | INIT_SHARED, MMAP, 0n) }), { minLength: 1, maxLength: 3 }),
});


/** Creates the universe of `pre` on `b`: its VMs, guest_memfds (mapped if MMAP) and memslots. */
export function setUp(b: ModelBackend, pre: typeof prelude extends fc.Arbitrary<infer T> ? T : never): World {
  const w: World = { vms: [], gmems: [], maps: [], pins: [], pipes: [] };
  for (const type of pre.vms) w.vms.push((b.createVm(VM_TYPES[type]) as { value: number }).value);
  for (const g of pre.gmems) {
    const r = b.createGuestMemfd(pick(w.vms, g.vm)!, g.pages * PAGE, g.flags);
    if (!r.ok) continue; // INIT_SHARED refused for this VM type (kernel-semantics.md §1.1)
    w.gmems.push(r.value);
    let uaddr = 0;
    if (g.flags & MMAP) {
      const m = b.mmap({ fd: r.value, offset: 0, length: g.pages * PAGE, prot: PROT.READ | PROT.WRITE, flags: MAP_FLAGS.SHARED });
      if (m.ok) w.maps.push({ addr: (uaddr = m.value), len: g.pages * PAGE });
    }
    // Bound at gpa 4 pages × its number, in slot 4 + its number, on its own VM.
    const n = w.gmems.length - 1;
    b.setUserMemoryRegion2(pick(w.vms, g.vm)!, {
      slot: 4 + n, flags: 4n, guest_phys_addr: 4 * n * PAGE, memory_size: g.pages * PAGE, userspace_addr: uaddr, guest_memfd: r.value, guest_memfd_offset: 0,
    });
  }
  return w;
}
