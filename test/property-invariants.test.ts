// Property: random sequences of operations over a small universe (1–2 VMs of random types, a
// few guest_memfds of a few pages, mappings, pins, vmsplice, punches, fallocate, memslots, guest
// accesses with a random access type, conversions of random aligned and unaligned ranges,
// closes) never break an invariant I1–I11 under mainline-6.18, ipc-v8 and rfc-2025 (rfc-2024 breaks
// only I2, as documented), and every errno an operation returns is one it is documented to return
// (ALLOWED below, with sources). fast-check prints the seed and the shrunk counterexample on
// failure; GMEMKIT_PROPERTY_SEED=<seed> replays it, GMEMKIT_PROPERTY_RUNS=<n> soaks.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { BResult } from '../src/backend/backend.js';
import { ModelBackend } from '../src/backend/model-backend.js';
import { checkState } from '../src/model/invariants.js';
import { CAPS, MADV, MAP_FLAGS, PROT, VM_TYPES, type Errno } from '../src/model/abi.js';
import { FULL_MACHINE } from '../src/model/platform.js';
import { IPC_V8, MAINLINE_6_18, RFC_2024, RFC_2025, type Profile } from '../src/model/profile.js';
import { INIT_SHARED, MMAP, PAGE } from './table.js';

// ------------------------------------------------------------------ documented errnos

/** Every errno each operation may return, and where that is documented. */
export const ALLOWED: Record<string, { readonly errnos: readonly Errno[]; readonly cite: string }> = {
  createVm: { errnos: ['EINVAL'], cite: 'kernel-probe.md §1 (unsupported VM type)' },
  checkExtension: { errnos: ['EBADF', 'ENOTTY'], cite: 'kernel-probe.md §1, §2 (not a VM fd: ENOTTY)' },
  createGuestMemfd: { errnos: ['EBADF', 'ENOTTY', 'EINVAL'], cite: 'kernel-semantics.md §1.1 Errors; kernel-probe.md §2' },
  close: { errnos: ['EBADF'], cite: 'close(2)' },
  mmap: { errnos: ['EBADF', 'ENODEV', 'EINVAL', 'EPERM'], cite: 'kernel-semantics.md §1.2 Errors; kernel-probe.md §3' },
  munmap: { errnos: ['EINVAL'], cite: 'munmap(2)' },
  hostRead: { errnos: [], cite: 'kernel-semantics.md §1.3 (faults raise SIGBUS/SIGSEGV, never an errno)' },
  hostWrite: { errnos: [], cite: 'kernel-semantics.md §1.3' },
  madvise: { errnos: ['EINVAL', 'EFAULT', 'ENOMEM', 'EACCES'], cite: 'kernel-probe.md §3; madvise(2)' },
  madviseRemoveAnon: { errnos: ['EINVAL', 'ENOMEM', 'EACCES', 'EOPNOTSUPP'], cite: 'madvise(2); EOPNOTSUPP: MADV_REMOVE of anonymous (shmem) memory is not modelled (mm.ts)' },
  pinUserPages: { errnos: ['EFAULT', 'EINVAL'], cite: 'kernel-semantics.md §1.11; kernel-probe.md §6' },
  unpinUserPages: { errnos: ['EINVAL'], cite: 'model API (unknown pin id)' },
  pinAccess: { errnos: ['EINVAL'], cite: 'model API (unknown pin id, out of bounds)' },
  vmsplice: { errnos: ['EFAULT', 'EINVAL'], cite: 'kernel-probe.md §6; vmsplice(2)' },
  fdRead: { errnos: ['EBADF', 'EINVAL'], cite: 'kernel-semantics.md §1.5; kernel-probe.md §4' },
  fdWrite: { errnos: ['EBADF', 'EINVAL'], cite: 'kernel-semantics.md §1.5; kernel-probe.md §4' },
  pread: { errnos: ['EBADF', 'ESPIPE'], cite: 'kernel-probe.md §4' },
  lseek: { errnos: ['EBADF', 'ESPIPE', 'EINVAL'], cite: 'kernel-probe.md §4' },
  ftruncate: { errnos: ['EBADF', 'EINVAL'], cite: 'kernel-semantics.md §1.8; kernel-probe.md §4' },
  fallocate: { errnos: ['EBADF', 'EINVAL', 'EOPNOTSUPP', 'ESPIPE', 'ENODEV', 'EFBIG'], cite: 'kernel-semantics.md §1.6, §1.7 Errors; kernel-probe.md §5; fallocate(2)' },
  setUserMemoryRegion2: { errnos: ['EBADF', 'ENOTTY', 'EINVAL', 'EEXIST'], cite: 'kernel-semantics.md §1.9 Errors; kernel-probe.md §7' },
  setMemoryAttributes: { errnos: ['EBADF', 'ENOTTY', 'EINVAL'], cite: 'kernel-semantics.md §1.10(a) Errors, §4 [RFC24]; kernel-probe.md §1' },
  setMemoryAttributes2: { errnos: ['EBADF', 'ENOTTY', 'EINVAL', 'EAGAIN'], cite: 'kernel-semantics.md §1.10(b) Result, §4' },
  guestRead: { errnos: ['EBADF', 'ENOTTY', 'EFAULT'], cite: 'kernel-semantics.md §1.4 (KVM_RUN -1/EFAULT); ioctl(2) (ENOTTY: not a VM fd)' },
  guestWrite: { errnos: ['EBADF', 'ENOTTY', 'EFAULT'], cite: 'kernel-semantics.md §1.4; ioctl(2)' },
};

/** Profile refinements: without a guest_memfd conversion ioctl the ioctl is unknown (ENOTTY). */
function allowed(op: string, p: Profile): readonly Errno[] {
  if (op === 'setMemoryAttributes2' && p.conversion !== 'gmem-ioctl') return ['EBADF', 'ENOTTY']; // kernel-probe.md §1 (sweep: ENOTTY)
  return ALLOWED[op]!.errnos;
}

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

const cmd = fc.oneof(
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
type Cmd = typeof cmd extends fc.Arbitrary<infer T> ? T : never;

/** The handles a run has created (closed ones stay, to exercise EBADF). */
interface World { vms: number[]; gmems: number[]; maps: { addr: number; len: number }[]; pins: number[]; pipes: number[] }

const pick = <T>(xs: readonly T[], i: number): T | undefined => (xs.length ? xs[i % xs.length] : undefined);

/** Runs one command; returns the operation name and its result (undefined when it had no target). */
function run(b: ModelBackend, w: World, c: Cmd): [string, BResult<unknown>] | undefined {
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

/** Checks one result against the documented outcomes of its operation. */
function checkOutcome(p: Profile, op: string, c: Cmd, r: BResult<unknown>): void {
  if (r.ok) return;
  if ('errno' in r) {
    assert.ok(allowed(op, p).includes(r.errno), `${op} returned ${r.errno} (${r.why}); documented: ${allowed(op, p).join(', ')} [${ALLOWED[op]!.cite}]`);
    if (r.errno === 'EAGAIN') {
      // kernel-semantics.md §4: EAGAIN only for a blocked to-private conversion; error_offset is the first offending page.
      assert.ok(c.op === 'convert' && c.toPrivate, 'EAGAIN from something other than a to-private conversion');
      const at = r.out?.error_offset;
      assert.ok(at !== undefined && at % BigInt(PAGE) === 0n && at >= c.off / BigInt(PAGE) * BigInt(PAGE) && at < c.off + c.size, `error_offset ${at} outside the request`);
    } else {
      assert.equal(r.out, undefined, `${op}: out-values written back on ${r.errno}`);
    }
    return;
  }
  if ('signal' in r) {
    assert.ok(op === 'hostRead' || op === 'hostWrite', `${op} raised ${r.signal}`);
    assert.ok(r.signal === 'SIGBUS' || r.signal === 'SIGSEGV');
    return;
  }
  if ('exit' in r) {
    // kernel-semantics.md §1.4: memory-fault exits carry the page and the PRIVATE flag of the access;
    // MMIO exits carry the access itself (the byte-wise guest: one byte), as the real kernel does.
    assert.ok(op === 'guestRead' || op === 'guestWrite', `${op} returned a KVM exit`);
    if (r.exit === 'MEMORY_FAULT') {
      assert.equal(r.gpa % BigInt(PAGE), 0n);
      assert.equal(r.size, BigInt(PAGE));
    } else {
      assert.equal(r.size, 1n);
    }
    assert.equal(r.flags, r.private ? 8n : 0n);
    if (r.exit === 'MMIO') assert.equal(r.private, false, 'MMIO exits are shared accesses');
    return;
  }
  assert.fail(`${op}: unexpected result ${JSON.stringify(r)}`);
}

/** The universe every run starts from: 1–2 VMs of random types, 1–3 guest_memfds of 1–4 pages, mapped if MMAP and bound. */
const prelude = fc.record({
  vms: fc.array(fc.constantFrom(...TYPES), { minLength: 1, maxLength: 2 }),
  gmems: fc.array(fc.record({ vm: idx, pages: fc.integer({ min: 1, max: 4 }), flags: fc.constantFrom(MMAP | INIT_SHARED, MMAP | INIT_SHARED, MMAP, 0n) }), { minLength: 1, maxLength: 3 }),
});

/** `tolerated`: invariants the profile is documented to break (rfc-2024: I2). */
function property(p: Profile, tolerated: readonly string[] = []) {
  return fc.property(prelude, fc.array(cmd, { minLength: 20, maxLength: 40 }), (pre, cmds) => {
    const b = new ModelBackend({ profile: p, machine: FULL_MACHINE });
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
    assert.deepEqual(b.takeViolations(), []);
    for (const [i, c] of cmds.entries()) {
      const done = run(b, w, c);
      if (!done) continue;
      const [op, r] = done;
      checkOutcome(p, op, c, r);
      const v = b.takeViolations().filter((x) => !tolerated.includes(x.invariant));
      assert.deepEqual(v, [], `step ${i} ${JSON.stringify(c, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x))} broke an invariant`);
    }
    // Lifetimes (kernel-semantics.md §1.12, I11): once every pin, mapping and fd is gone, so is everything.
    b.dispose();
    assert.deepEqual(checkState(b.kernel).filter((x) => !tolerated.includes(x.invariant)), []);
    assert.equal(b.kernel.state.vms.length, 0, 'a VM outlived its fds and files');
    assert.equal(b.kernel.state.inodes.size, 0, 'an inode outlived its files');
  });
}

describe('random operation sequences keep I1–I11 and return only documented errnos', () => {
  test('every documented-errno entry names its source', () => {
    for (const [op, a] of Object.entries(ALLOWED)) assert.ok(a.cite.length > 0, `${op} has no citation`);
  });
  // GMEMKIT_PROPERTY_RUNS raises the number of runs for a soak test; GMEMKIT_PROPERTY_SEED replays one.
  const numRuns = Number(process.env.GMEMKIT_PROPERTY_RUNS ?? 200);
  const seed = process.env.GMEMKIT_PROPERTY_SEED === undefined ? {} : { seed: Number(process.env.GMEMKIT_PROPERTY_SEED) };
  for (const p of [MAINLINE_6_18, IPC_V8, RFC_2025]) {
    test(`${p.name}: ${numRuns} runs × 20–40 commands`, () => {
      fc.assert(property(p), { numRuns, includeErrorInReport: true, ...seed });
    });
  }
  test(`rfc-2024: ${numRuns} runs; the only invariant it breaks is I2 (FOLL_GET references go unnoticed)  [kernel-semantics.md §1.10(c) [RFC24]]`, () => {
    fc.assert(property(RFC_2024, ['I2']), { numRuns, includeErrorInReport: true, ...seed });
  });
});
