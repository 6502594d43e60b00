// The linux backend against the running kernel: kernel-probe.md behaviours (§1–§8), one row
// per behaviour citing its section, and leak checks (fds and mappings counted from /proc/self
// before and after scenario-like sequences, also ones that fail midway). Every test skips with
// the probe's reason where /dev/kvm or guest_memfd is missing.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { BResult } from '../src/backend/backend.js';
import { CAPS, FALLOC_FLAGS, GMEM_FLAGS, MADV, MAP_FLAGS, MEMSLOT_FLAGS, PROT } from '../src/model/abi.js';
import { LinuxBackend } from '../src/linux/linux-backend.js';

const K = 1024;
const PAGE = 4 * K;
const { MMAP, INIT_SHARED } = GMEM_FLAGS;
const RW = PROT.READ | PROT.WRITE;
const KEEP = FALLOC_FLAGS.KEEP_SIZE;
const PUNCH = FALLOC_FLAGS.PUNCH_HOLE | FALLOC_FLAGS.KEEP_SIZE;
const GMEM_SLOT = MEMSLOT_FLAGS.GUEST_MEMFD;

const probe = LinuxBackend.probe();

const show = (r: unknown): string => JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? `<${v.length} bytes>` : v));

/** A backend plus setup helpers whose calls must succeed. */
class World {
  readonly b = new LinuxBackend();
  must<T>(r: BResult<T>, what: string): T {
    if (!r.ok) assert.fail(`${what} failed: ${show(r)}`);
    return r.value;
  }
  vm(): number { return this.must(this.b.createVm(0), 'create_vm'); }
  gmem(vm: number, size: number, flags: bigint): number { return this.must(this.b.createGuestMemfd(vm, size, flags), 'create_guest_memfd'); }
  map(fd: number | null, length: number, prot: bigint = RW, flags: bigint = MAP_FLAGS.SHARED, offset = 0): number {
    return this.must(this.b.mmap({ fd, offset, length, prot, flags }), 'mmap');
  }
  anon(length: number): number { return this.map(null, length, RW, MAP_FLAGS.PRIVATE | MAP_FLAGS.ANONYMOUS); }
  bind(vm: number, slot: number, gpa: number, size: number, gmem: number, offset = 0, uaddr = 0): BResult {
    return this.b.setUserMemoryRegion2(vm, {
      slot, flags: GMEM_SLOT, guest_phys_addr: gpa, memory_size: size, userspace_addr: uaddr, guest_memfd: gmem, guest_memfd_offset: offset,
    });
  }
  write(addr: number, text: string): void { this.must(this.b.hostWrite(addr, Buffer.from(text)), 'host write'); }
  read(addr: number, n: number): string { return Buffer.from(this.must(this.b.hostRead(addr, n), 'host read')).toString('latin1'); }
}

function errno(r: BResult<unknown>, name: string): void {
  assert.ok(!r.ok && 'errno' in r && r.errno === name, `expected errno ${name}, got ${show(r)}`);
}
function sig(r: BResult<unknown>, name: string, address?: number): void {
  assert.ok(!r.ok && 'signal' in r && r.signal === name, `expected ${name}, got ${show(r)}`);
  if (address !== undefined && 'signal' in r) assert.equal(r.address, address);
}
const fill = (c: string, n: number): string => c.repeat(n);

/** Run `body` on a fresh backend (skipping with the probe's reason), always disposing it. */
function kernelTest(name: string, body: (w: World, t: TestContext) => void): void {
  test(name, (t) => {
    if (!probe.usable) {
      t.skip(probe.reason);
      return;
    }
    const w = new World();
    try {
      body(w, t);
    } finally {
      w.b.dispose();
    }
  });
}

// ---------------------------------------------------------------- behaviour rows

interface Row { name: string; cite: string; run: (w: World) => void }

const rows: Row[] = [
  { name: 'capabilities: GUEST_MEMFD_FLAGS = MMAP|INIT_SHARED, MEMORY_ATTRIBUTES = 0; VM type 1 is EINVAL', cite: 'kernel-probe.md §1',
    run: (w) => {
      assert.equal(w.must(w.b.checkExtension(CAPS.GUEST_MEMFD), 'cap'), 1n);
      assert.equal(w.must(w.b.checkExtension(CAPS.GUEST_MEMFD_FLAGS), 'cap'), MMAP | INIT_SHARED);
      const vm = w.vm();
      assert.equal(w.must(w.b.checkExtension(CAPS.MEMORY_ATTRIBUTES, vm), 'cap'), 0n);
      errno(w.b.createVm(1), 'EINVAL');
    } },
  { name: 'no conversion ioctl: SET_MEMORY_ATTRIBUTES (VM) and SET_MEMORY_ATTRIBUTES2 (gmem) are ENOTTY', cite: 'kernel-probe.md §1; kernel-semantics.md §5.1',
    run: (w) => {
      const vm = w.vm();
      const g = w.gmem(vm, 16 * K, MMAP | INIT_SHARED);
      errno(w.b.setMemoryAttributes(vm, { address: 0, size: PAGE, attributes: 8n, flags: 0 }), 'ENOTTY');
      const r = w.b.setMemoryAttributes2(g, { offset: 0, size: PAGE, attributes: 8n, flags: 0 });
      errno(r, 'ENOTTY');
      assert.ok(!r.ok && 'errno' in r && r.out === undefined, 'no error_offset on ENOTTY');
    } },
  { name: 'create: unaligned size and unknown flag bit are EINVAL; INIT_SHARED without MMAP is accepted but not mappable (ENODEV)', cite: 'kernel-probe.md §2, §3',
    run: (w) => {
      const vm = w.vm();
      errno(w.b.createGuestMemfd(vm, 4095, 0n), 'EINVAL');
      errno(w.b.createGuestMemfd(vm, 16 * K, 1n << 2n), 'EINVAL');
      const g = w.gmem(vm, 16 * K, INIT_SHARED);
      errno(w.b.mmap({ fd: g, offset: 0, length: 16 * K, prot: RW, flags: MAP_FLAGS.SHARED }), 'ENODEV');
    } },
  { name: 'mmap: MAP_PRIVATE is EINVAL, PROT_EXEC is EPERM, flags=0 is ENODEV', cite: 'kernel-probe.md §3',
    run: (w) => {
      const vm = w.vm();
      const g = w.gmem(vm, 16 * K, MMAP | INIT_SHARED);
      errno(w.b.mmap({ fd: g, offset: 0, length: 16 * K, prot: RW, flags: MAP_FLAGS.PRIVATE }), 'EINVAL');
      errno(w.b.mmap({ fd: g, offset: 0, length: 16 * K, prot: RW | PROT.EXEC, flags: MAP_FLAGS.SHARED }), 'EPERM');
      errno(w.b.mmap({ fd: w.gmem(vm, 16 * K, 0n), offset: 0, length: 16 * K, prot: RW, flags: MAP_FLAGS.SHARED }), 'ENODEV');
    } },
  { name: 'host access to a flags=MMAP (not INIT_SHARED) mapping is SIGBUS, and Node lives on', cite: 'kernel-probe.md §3, §9',
    run: (w) => {
      const vm = w.vm();
      const g = w.gmem(vm, 16 * K, MMAP);
      const m = w.map(g, 16 * K);
      sig(w.b.hostRead(m + 5, 1), 'SIGBUS', m + 5);
      w.must(w.b.fallocate(g, KEEP, 0, 16 * K), 'fallocate');
      sig(w.b.hostWrite(m + PAGE, Buffer.from('x')), 'SIGBUS', m + PAGE);
      errno(w.b.madvise(m, PAGE, MADV.POPULATE_READ), 'EFAULT');
      const ok = w.gmem(vm, 16 * K, MMAP | INIT_SHARED);
      const m2 = w.map(ok, 16 * K);
      w.write(m2, 'alive');
      assert.equal(w.read(m2, 5), 'alive');
    } },
  { name: 'mapping longer than the file: the last in-file page works, the first page past EOF is SIGBUS; no mapping is SIGSEGV', cite: 'kernel-probe.md §3',
    run: (w) => {
      const g = w.gmem(w.vm(), 16 * K, MMAP | INIT_SHARED);
      const m = w.map(g, 32 * K);
      w.write(m + 12 * K, 'L');
      assert.equal(w.read(m + 12 * K, 1), 'L');
      sig(w.b.hostRead(m + 12 * K, 2 * PAGE), 'SIGBUS', m + 16 * K);
      w.must(w.b.munmap(m, 32 * K), 'munmap');
      sig(w.b.hostRead(m, 1), 'SIGSEGV', m);
    } },
  { name: 'file syscalls: read/write EINVAL, pread/lseek ESPIPE, ftruncate EINVAL', cite: 'kernel-probe.md §4',
    run: (w) => {
      const g = w.gmem(w.vm(), 16 * K, MMAP | INIT_SHARED);
      errno(w.b.fdRead(g, 16), 'EINVAL');
      errno(w.b.fdWrite(g, Buffer.from('x')), 'EINVAL');
      errno(w.b.pread(g, 16, 0), 'ESPIPE');
      errno(w.b.pwrite(g, Buffer.from('x'), 0), 'ESPIPE');
      errno(w.b.lseek(g, 0, 0), 'ESPIPE');
      errno(w.b.ftruncate(g, 32 * K), 'EINVAL');
    } },
  { name: 'fallocate: mode 0 EOPNOTSUPP, allocation straddling EOF EINVAL, punch beyond EOF ok', cite: 'kernel-probe.md §5',
    run: (w) => {
      const g = w.gmem(w.vm(), 16 * K, MMAP | INIT_SHARED);
      errno(w.b.fallocate(g, 0, 0, PAGE), 'EOPNOTSUPP');
      errno(w.b.fallocate(g, KEEP, 12 * K, 8 * K), 'EINVAL');
      w.must(w.b.fallocate(g, PUNCH, 32 * K, PAGE), 'punch beyond EOF');
      errno(w.b.fallocate(g, FALLOC_FLAGS.PUNCH_HOLE, 0, PAGE), 'EOPNOTSUPP');
    } },
  { name: 'punch of a mapped dirty page: it reads back as zero, neighbours keep their data; MADV_REMOVE punches too', cite: 'kernel-probe.md §5, §3',
    run: (w) => {
      const g = w.gmem(w.vm(), 16 * K, MMAP | INIT_SHARED);
      const m = w.map(g, 16 * K);
      w.write(m, fill('A', 3 * PAGE));
      w.must(w.b.fallocate(g, PUNCH, PAGE, PAGE), 'punch');
      assert.equal(w.read(m + PAGE, 4), '\0\0\0\0');
      assert.equal(w.read(m, 1) + w.read(m + 2 * PAGE, 1), 'AA');
      w.must(w.b.madvise(m + 2 * PAGE, PAGE, MADV.REMOVE), 'MADV_REMOVE');
      assert.equal(w.read(m + 2 * PAGE, 1), '\0');
    } },
  { name: 'long-term pin, punch: the device (WRITE_FIXED) sees the old data, the mapping zeros; READ_FIXED lands in the detached page', cite: 'kernel-probe.md §6',
    run: (w) => {
      const g = w.gmem(w.vm(), 64 * K, MMAP | INIT_SHARED);
      const m = w.map(g, 64 * K);
      w.write(m, fill('A', 2 * PAGE));
      const pin = w.must(w.b.pinUserPages(m, 2 * PAGE, true), 'pin');
      w.must(w.b.fallocate(g, PUNCH, 0, PAGE), 'punch under the pin');
      assert.equal(w.read(m, 4), '\0\0\0\0');
      assert.equal(Buffer.from(w.must(w.b.pinAccess(pin, 0, 4), 'pin access')).toString(), 'AAAA');
      w.write(m, 'BBBB');
      w.must(w.b.pinAccess(pin, 0, 4, Buffer.from('CCCC')), 'pin store');
      assert.equal(w.read(m, 4), 'BBBB');
      w.write(m + PAGE, 'EEEE'); // an un-punched pinned page stays coherent
      assert.equal(Buffer.from(w.must(w.b.pinAccess(pin, PAGE, 4), 'pin access')).toString(), 'EEEE');
      w.must(w.b.unpinUserPages(pin), 'unpin');
      errno(w.b.pinAccess(pin, 0, 4), 'EINVAL');
    } },
  { name: 'pins of a flags=MMAP (not shared) mapping are EFAULT (long-term, short-term and vmsplice)', cite: 'kernel-probe.md §6',
    run: (w) => {
      const g = w.gmem(w.vm(), 16 * K, MMAP);
      const m = w.map(g, 16 * K);
      errno(w.b.pinUserPages(m, PAGE, true), 'EFAULT');
      const short = w.b.pinUserPages(m, PAGE, false);
      if (!('unsupported' in short)) errno(short, 'EFAULT');
      errno(w.b.vmsplice(m, PAGE), 'EFAULT');
    } },
  { name: 'short-term pin: the O_DIRECT GUP succeeds and keeps the data; device access through it is unsupported', cite: 'kernel-probe.md §6 (O_DIRECT)',
    run: (w) => {
      const g = w.gmem(w.vm(), 16 * K, MMAP | INIT_SHARED);
      const m = w.map(g, 16 * K);
      w.write(m, 'keep');
      const r = w.b.pinUserPages(m, 2 * PAGE, false, true);
      if ('unsupported' in r) return; // no disk-backed directory: nothing more to check
      const pin = w.must(r, 'short-term pin');
      assert.equal(w.read(m, 4), 'keep');
      const a = w.b.pinAccess(pin, 0, 4);
      assert.ok(!a.ok && 'unsupported' in a, show(a));
      w.must(w.b.unpinUserPages(pin), 'unpin');
    } },
  { name: 'vmsplice, write, punch: the mapping reads zero, the pipe returns the old page with the later write', cite: 'kernel-probe.md §6',
    run: (w) => {
      const g = w.gmem(w.vm(), 16 * K, MMAP | INIT_SHARED);
      const m = w.map(g, 16 * K);
      w.write(m, fill('A', PAGE));
      const pipe = w.must(w.b.vmsplice(m, PAGE), 'vmsplice');
      w.write(m, 'M');
      w.must(w.b.fallocate(g, PUNCH, 0, PAGE), 'punch');
      assert.equal(w.read(m, 1), '\0');
      const data = Buffer.from(w.must(w.b.fdRead(pipe), 'pipe read'));
      assert.equal(data.length, PAGE);
      assert.equal(data.toString('latin1', 0, 2), 'MA');
      assert.equal(w.must(w.b.fdRead(pipe), 'empty pipe read').length, 0);
    } },
  { name: 'memslots: overlapping file range EINVAL, overlapping GPA EEXIST, gmem slots immutable (EINVAL), delete then rebind ok', cite: 'kernel-probe.md §7',
    run: (w) => {
      const vm = w.vm();
      const g = w.gmem(vm, 2 * 1024 * K, MMAP | INIT_SHARED);
      w.must(w.bind(vm, 0, 0, 1024 * K, g, 0), 'bind slot 0');
      errno(w.bind(vm, 1, 4096 * K, 1024 * K, g, 512 * K), 'EINVAL');
      errno(w.bind(vm, 1, 512 * K, 1024 * K, g, 1024 * K), 'EEXIST');
      errno(w.bind(vm, 0, 0, 1024 * K, g, 0), 'EINVAL');
      w.must(w.b.setUserMemoryRegion2(vm, { slot: 0, flags: 0, guest_phys_addr: 0, memory_size: 0, userspace_addr: 0, guest_memfd: 0, guest_memfd_offset: 0 }), 'delete');
      w.must(w.bind(vm, 2, 0, 1024 * K, g, 0), 'rebind');
    } },
  { name: 'CPL3 guest write to a gmem slot (uaddr NULL) is seen through the gmem mmap; host write seen by the guest; punch reads zero', cite: 'kernel-probe.md §8 (variant L-B)',
    run: (w) => {
      const vm = w.vm();
      const g = w.gmem(vm, 64 * K, MMAP | INIT_SHARED);
      const m = w.map(g, 64 * K);
      w.must(w.bind(vm, 1, 0x10000, 64 * K, g), 'bind');
      w.must(w.b.guestWrite(vm, 0x11000, Buffer.from(fill('\xab', 256), 'latin1')), 'guest write');
      assert.equal(w.read(m + 0x1000, 256), fill('\xab', 256));
      w.write(m + 0x2000, 'host');
      assert.equal(Buffer.from(w.must(w.b.guestRead(vm, 0x12000, 4), 'guest read')).toString(), 'host');
      w.must(w.b.fallocate(g, PUNCH, 0x1000, PAGE), 'punch');
      assert.deepEqual([...w.must(w.b.guestRead(vm, 0x11000, 4), 'guest read')], [0, 0, 0, 0]);
      // an access that crosses a page boundary
      w.must(w.b.guestWrite(vm, 0x12ffe, Buffer.from('span')), 'guest write across pages');
      assert.equal(w.read(m + 0x2ffe, 4), 'span');
    } },
  { name: 'CPL3 guest on an MMAP gmem slot ignores userspace_addr (uaddr = other anon memory)', cite: 'kernel-probe.md §8 (variant L-C)',
    run: (w) => {
      const vm = w.vm();
      const g = w.gmem(vm, 64 * K, MMAP | INIT_SHARED);
      const m = w.map(g, 64 * K);
      const alt = w.anon(64 * K);
      w.must(w.bind(vm, 1, 0x10000, 64 * K, g, 0, alt), 'bind with uaddr = anon');
      w.must(w.b.guestWrite(vm, 0x11000, Buffer.from('gmem')), 'guest write');
      assert.equal(w.read(m + 0x1000, 4), 'gmem');
      assert.equal(w.read(alt + 0x1000, 4), '\0\0\0\0');
    } },
  { name: 'CPL3 guest reads and writes a flags=MMAP (host-private) gmem while the host gets SIGBUS; punch then reads zero', cite: 'kernel-probe.md §8 (variant L-E)',
    run: (w) => {
      const vm = w.vm();
      const g = w.gmem(vm, 64 * K, MMAP);
      const m = w.map(g, 64 * K);
      w.must(w.bind(vm, 1, 0x10000, 64 * K, g), 'bind');
      w.must(w.b.guestWrite(vm, 0x11000, Buffer.from('priv')), 'guest write');
      assert.equal(Buffer.from(w.must(w.b.guestRead(vm, 0x11000, 4), 'guest read')).toString(), 'priv');
      sig(w.b.hostRead(m + 0x1000, 4), 'SIGBUS');
      w.must(w.b.fallocate(g, PUNCH, 0x1000, PAGE), 'punch');
      assert.deepEqual([...w.must(w.b.guestRead(vm, 0x11000, 4), 'guest read')], [0, 0, 0, 0]);
    } },
  { name: 'guest access outside every memslot exits with KVM_EXIT_MMIO; the harness recovers for the next access', cite: 'kernel-probe.md §8 (variant E, emulated); kernel-semantics.md §1.4',
    run: (w) => {
      const vm = w.vm();
      const g = w.gmem(vm, 16 * K, MMAP | INIT_SHARED);
      w.must(w.bind(vm, 0, 0x10000, 16 * K, g), 'bind');
      const r = w.b.guestRead(vm, 0x900000, 4);
      assert.ok(!r.ok && 'exit' in r && r.exit === 'MMIO' && r.gpa === 0x900000n, show(r));
      w.must(w.b.guestWrite(vm, 0x10000, Buffer.from('ok')), 'guest write after MMIO');
    } },
  { name: 'guest access to a gmem slot whose file was released (fd closed, never mapped) exits with KVM_EXIT_MEMORY_FAULT', cite: 'kernel-semantics.md §1.12; kernel-probe.md §8',
    run: (w) => {
      const vm = w.vm();
      const g = w.gmem(vm, 64 * K, MMAP | INIT_SHARED);
      w.must(w.bind(vm, 1, 0x10000, 64 * K, g), 'bind');
      w.must(w.b.guestWrite(vm, 0x11000, Buffer.from('gone')), 'guest write');
      w.must(w.b.close(g), 'close the last reference to the file');
      const r = w.b.guestRead(vm, 0x11000, 4);
      assert.ok(!r.ok && 'exit' in r && r.exit === 'MEMORY_FAULT' && r.gpa === 0x11000n && r.size === BigInt(PAGE) && !r.private, show(r));
      const again = w.b.guestRead(vm, 0x12000, 1);
      assert.ok(!again.ok && 'exit' in again && again.exit === 'MEMORY_FAULT', show(again));
    } },
  { name: 'vmsplice of a guest-written page, punch: the guest re-reads zero, the pipe keeps the guest data', cite: 'kernel-probe.md §8 (extra L-B)',
    run: (w) => {
      const vm = w.vm();
      const g = w.gmem(vm, 64 * K, MMAP | INIT_SHARED);
      const m = w.map(g, 64 * K);
      w.must(w.bind(vm, 1, 0x10000, 64 * K, g), 'bind');
      w.must(w.b.guestWrite(vm, 0x11000, Buffer.from(fill('\xab', 256), 'latin1')), 'guest write');
      const pipe = w.must(w.b.vmsplice(m + 0x1000, 256), 'vmsplice');
      w.must(w.b.fallocate(g, PUNCH, 0x1000, PAGE), 'punch');
      assert.deepEqual([...w.must(w.b.guestRead(vm, 0x11000, 2), 'guest read')], [0, 0]);
      assert.equal(Buffer.from(w.must(w.b.fdRead(pipe), 'pipe read')).toString('latin1'), fill('\xab', 256));
    } },
];

for (const row of rows) kernelTest(`${row.name} [${row.cite}]`, (w) => row.run(w));

kernelTest('identity names the running kernel and the KVM flavour', (w) => {
  const id = w.b.identity();
  assert.equal(id.backend, 'linux');
  assert.equal(id.kernel, readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim());
  assert.match(id.flavour, /^kvm_(pvm|intel|amd)$|^unknown$/);
});

kernelTest('the backend refuses fds and memory it does not own, without calling the kernel', (w) => {
  errno(w.b.close(0), 'EBADF');
  errno(w.b.fdRead(1, 1), 'EBADF');
  const heap = w.anon(PAGE);
  w.must(w.b.munmap(heap, PAGE), 'munmap');
  errno(w.b.madvise(heap, PAGE, MADV.DONTNEED), 'ENOMEM');
  errno(w.b.pinUserPages(heap, PAGE, true), 'EFAULT');
  const fixed = w.b.mmap({ fd: null, offset: 0, length: PAGE, prot: RW, flags: MAP_FLAGS.PRIVATE | MAP_FLAGS.ANONYMOUS | MAP_FLAGS.FIXED });
  assert.ok(!fixed.ok && 'unsupported' in fixed, show(fixed));
});

// ---------------------------------------------------------------- leaks

/** What the process holds: fd link targets and the lines of /proc/self/maps. */
function census(): { fds: number; kinds: Map<string, number>; maps: string[] } {
  const kinds = new Map<string, number>();
  const entries = readdirSync('/proc/self/fd');
  for (const fd of entries) {
    let target = '?';
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`).replace(/\d+/g, 'N');
    } catch { /* the directory fd itself is gone by now */ }
    kinds.set(target, (kinds.get(target) ?? 0) + 1);
  }
  return { fds: entries.length, kinds, maps: readFileSync('/proc/self/maps', 'utf8').trim().split('\n') };
}

/** Size of the guest harness memory (src/linux/guest.ts HARNESS_BYTES). */
const HARNESS_BYTES = 2 * 1024 * K;

/**
 * Same fds (count and kinds) as before; no new /proc/self/maps line that is the backend's: a
 * KVM, io_uring or memfd mapping, one of `addrs`, or a harness-sized anonymous region. (V8 may
 * map heap pages meanwhile, so other new lines are reported, not failed.)
 */
function assertNoLeak(t: TestContext, before: ReturnType<typeof census>, addrs: number[]): void {
  const after = census();
  assert.equal(after.fds, before.fds, `fd count ${before.fds} -> ${after.fds}: ${show([...after.kinds])} vs ${show([...before.kinds])}`);
  assert.deepEqual([...after.kinds].sort(), [...before.kinds].sort());
  const old = new Set(before.maps);
  const added = after.maps.filter((l) => !old.has(l));
  const ours = added.filter((l) => {
    const [lo, hi] = l.split(' ')[0]!.split('-').map((x) => parseInt(x, 16)) as [number, number];
    return /kvm|io_uring|memfd:/.test(l) || addrs.includes(lo) || hi - lo === HARNESS_BYTES;
  });
  assert.deepEqual(ours, [], 'mappings of the backend left behind');
  t.diagnostic(`/proc/self/maps lines ${before.maps.length} -> ${after.maps.length}; new lines not the backend's: ${added.length}`);
}

/** Open one of everything the backend can hold; returns the addresses it mapped. */
function everything(w: World): number[] {
  const vm = w.vm();
  const g = w.gmem(vm, 64 * K, MMAP | INIT_SHARED);
  const priv = w.gmem(vm, 16 * K, MMAP);
  const m = w.map(g, 64 * K);
  const mp = w.map(priv, 16 * K);
  const a = w.anon(16 * K);
  w.must(w.bind(vm, 1, 0x10000, 64 * K, g), 'bind');
  w.must(w.b.guestWrite(vm, 0x10000, Buffer.from('vcpu')), 'guest write (creates the harness vCPU)');
  w.write(m, 'data');
  w.must(w.b.pinUserPages(m, 8 * K, true), 'long-term pin (ring)');
  w.must(w.b.pinUserPages(m + 8 * K, 8 * K, true), 'second ring');
  const short = w.b.pinUserPages(m + 16 * K, PAGE, false);
  assert.ok(short.ok || 'unsupported' in short, show(short));
  w.must(w.b.vmsplice(m, PAGE), 'vmsplice (pipe)');
  w.must(w.b.vmsplice(m + PAGE, 2 * PAGE), 'second pipe');
  return [m, mp, a];
}

kernelTest('no leaks: a full sequence then dispose() releases every fd, mapping, ring, pipe and vCPU', (w, t) => {
  w.b.dispose(); // this test counts around its own backends
  const before = census();
  const b = new World();
  let addrs: number[] = [];
  try {
    addrs = everything(b);
    assert.ok(census().fds > before.fds);
  } finally {
    b.b.dispose();
  }
  assert.deepEqual(b.b.held(), { fds: 0, mappings: 0, pins: 0, vcpus: 0 });
  assertNoLeak(t, before, addrs);
});

kernelTest('no leaks: a sequence that fails midway (errno, SIGBUS, MMIO exit, then a thrown error) still releases everything', (w, t) => {
  w.b.dispose();
  const before = census();
  const b = new World();
  let addrs: number[] = [];
  assert.throws(() => {
    try {
      addrs = everything(b);
      const vm = b.vm();
      const priv = b.gmem(vm, 16 * K, MMAP);
      const mp = b.map(priv, 16 * K);
      addrs.push(mp);
      errno(b.b.pinUserPages(mp, PAGE, true), 'EFAULT'); // a ring created and torn down inside
      errno(b.b.vmsplice(mp, PAGE), 'EFAULT'); // a pipe created and closed inside
      sig(b.b.hostRead(mp, 1), 'SIGBUS');
      const mmio = b.b.guestRead(vm, 0x900000, 1); // harness vCPU retired after the exit
      assert.ok(!mmio.ok && 'exit' in mmio, show(mmio));
      errno(b.b.createGuestMemfd(vm, 4095, 0n), 'EINVAL');
      throw new Error('scenario aborted midway');
    } finally {
      b.b.dispose();
    }
  }, /aborted midway/);
  assertNoLeak(t, before, addrs);
});

kernelTest('no leaks: close() of a VM fd releases its harness vCPU; munmap and unpin release their parts', (w, t) => {
  w.b.dispose();
  const before = census();
  const b = new World();
  try {
    const vm = b.vm();
    const g = b.gmem(vm, 16 * K, MMAP | INIT_SHARED);
    const m = b.map(g, 16 * K);
    b.must(b.bind(vm, 0, 0, 16 * K, g), 'bind');
    b.must(b.b.guestRead(vm, 0, 1), 'guest read');
    const pin = b.must(b.b.pinUserPages(m, PAGE, true), 'pin');
    b.must(b.b.unpinUserPages(pin), 'unpin');
    b.must(b.b.munmap(m, 16 * K), 'munmap');
    b.must(b.b.close(g), 'close gmem');
    b.must(b.b.close(vm), 'close vm');
    assert.deepEqual(b.b.held(), { fds: 0, mappings: 0, pins: 0, vcpus: 0 });
    const mid = census();
    assert.equal(mid.fds, before.fds + 1, 'only /dev/kvm stays open');
  } finally {
    b.b.dispose();
  }
  assertNoLeak(t, before, []);
});
