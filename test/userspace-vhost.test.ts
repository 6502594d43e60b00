// The vhost-user backend holder on both backends: on VHOST_USER_SET_MEM_TABLE it mmaps the
// guest_memfd itself at its own address (not the VMM's, and not in the VMM's memory map), its
// I/O pins through that mapping, releasing it for a range unmaps its own mapping there and
// leaves the VMM's alone, and re-establishing maps the range again. On the model also the
// conversions that drive it (preunmap: released before to-private, mapped again after to-shared).
// Sources: design-discussion.md §1.2 (vhost-user is VA-based and needs GUP; Peter Xu's "map
// only what is authorised, zap remotely"), §3.1 (QEMU's RamDiscardManager notifies listeners of
// discard/populate); kernel-semantics.md §1.10(b) step 4 (to-private zaps the range's host PTEs
// in every process; only references block).
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { Backend, BResult } from '../src/backend/backend.js';
import { ModelBackend } from '../src/backend/model-backend.js';
import { LinuxBackend } from '../src/linux/linux-backend.js';
import { GMEM_FLAGS, MAP_FLAGS, PROT } from '../src/model/abi.js';
import { PREUNMAP, RETRY } from '../src/userspace/policies.js';
import { Userspace } from '../src/userspace/userspace.js';
import { K, PAGE, World, ran, str, summary, text } from './userspace-world.js';

const probe = LinuxBackend.probe();

/** A Userspace over one backend, with a 64K guest_memfd the VMM maps and writes a marker into. */
class Bench {
  readonly us: Userspace;
  readonly fd: number;
  readonly ram: number;
  constructor(readonly b: Backend) {
    this.us = new Userspace(b);
    const vm = this.must(this.us.backend.createVm(0));
    this.fd = this.must(this.us.backend.createGuestMemfd(vm, 64 * K, GMEM_FLAGS.MMAP | GMEM_FLAGS.INIT_SHARED));
    this.ram = this.must(this.us.backend.mmap({ fd: this.fd, offset: 0, length: 64 * K, prot: PROT.READ | PROT.WRITE, flags: MAP_FLAGS.SHARED }));
    for (let p = 0; p < 16; p++) this.must(this.us.backend.hostWrite(this.ram + p * PAGE, text(`page ${p}`)));
  }
  must<T>(r: BResult<T>): T {
    if (!r.ok) assert.fail(JSON.stringify(r));
    return r.value;
  }
  /** Bytes through the VMM's mapping / an address of another process (the backend's). */
  vmmRead(p: number): string { return str(this.must(this.us.backend.hostRead(this.ram + p * PAGE, 6))); }
  ownRead(addr: number): BResult<Uint8Array> { return this.us.kernel.hostRead(addr, 6); }
}

const BACKENDS: readonly { name: string; make: () => Backend | string }[] = [
  { name: 'model', make: () => new ModelBackend({ checkInvariants: true }) },
  { name: 'linux', make: () => (probe.usable ? new LinuxBackend() : probe.reason) },
];

function onBoth(name: string, body: (w: Bench, backend: string) => void): void {
  for (const { name: backend, make } of BACKENDS) {
    test(`${name} [${backend}]`, (t: TestContext) => {
      const b = make();
      if (typeof b === 'string') return void t.skip(b);
      try {
        const w = new Bench(b);
        body(w, backend);
        assert.deepEqual(b.takeViolations().map((v) => `${v.invariant}: ${v.detail}`), []);
      } finally {
        b.dispose();
      }
    });
  }
}

onBoth('set_mem_table: the backend mmaps the guest_memfd itself, at its own address, outside the VMM\'s memory map', (w) => {
  const vhost = w.must(w.us.vhostUserAttach(w.ram, 64 * K, 'vhost'));
  const own = vhost.addressOf(1)!;
  assert.ok(own !== undefined && own !== w.ram + PAGE, 'its own address, not the VMM\'s');
  assert.equal(str(w.must(w.ownRead(own))), 'page 1', 'the same file page through its own mapping');
  w.must(w.us.kernel.hostWrite(own, text('BACKND')));
  assert.equal(w.vmmRead(1), 'BACKND', 'one file: the VMM sees what the backend stored');
  const r = w.us.ioUringRegisterBuffers(own, PAGE);
  assert.ok(!r.ok && 'errno' in r && r.errno === 'EFAULT' && /not inside one guest_memfd mapping/.test(r.why), 'the VMM does not track another process\'s mapping');
  assert.deepEqual(w.us.registry.overlapping(w.fd, 0, 16), [], 'a mapping holds no reference');
});

onBoth('its I/O pins through its own mapping (GUP on its addresses)', (w, backend) => {
  const vhost = w.must(w.us.vhostUserAttach(w.ram, 64 * K, 'vhost'));
  const io = w.must(vhost.io(2 * PAGE, 6, 'tx'));
  assert.equal(io.addr, vhost.addressOf(2), 'the pin is taken at the backend\'s address');
  assert.deepEqual([io.state, w.us.registry.overlapping(w.fd, 0, 16)], ['in-flight', [io.id]]);
  assert.deepEqual(w.us.holdersAt(w.fd, 2).map((h) => h.name), ['tx'], 'the manager finds it at error_offset');
  const done = io.complete();
  if (backend === 'model') {
    w.must(done);
    assert.equal(str(io.data), 'page 2', 'the device read the page through the pin');
  } else {
    // kernel-probe.md §6 / src/linux/pins.ts: a short-term pin on Linux is one O_DIRECT I/O
    // within the pin call; no device access through it is possible afterwards.
    assert.ok(!done.ok && 'unsupported' in done && /short-term pin/.test(done.unsupported), JSON.stringify(done));
  }
});

onBoth('release over a range unmaps its own mapping there, not the VMM\'s; re-establishing maps it again', (w) => {
  const vhost = w.must(w.us.vhostUserAttach(w.ram, 64 * K, 'vhost'));
  const before = vhost.addressOf(5)!;
  const range = { fd: w.fd, lo: 4, hi: 8 };
  assert.equal(vhost.release(range), 'released');
  assert.deepEqual([4, 5, 6, 7].map((p) => vhost.addressOf(p)), [undefined, undefined, undefined, undefined]);
  assert.ok(!w.ownRead(before).ok, 'its old address maps nothing');
  assert.equal(str(w.must(w.ownRead(vhost.addressOf(3)!))), 'page 3', 'the rest of its mapping stays');
  assert.equal(str(w.must(w.ownRead(vhost.addressOf(8)!))), 'page 8');
  assert.equal(w.vmmRead(5), 'page 5', 'the VMM\'s mapping is untouched');
  assert.equal(vhost.releasedOver(range), true);
  const io = vhost.io(5 * PAGE, 6, 'x');
  assert.ok(!io.ok && 'errno' in io && io.errno === 'EFAULT' && /removed for a conversion/.test(io.why), JSON.stringify(io));
  w.must(vhost.reestablish(range));
  assert.equal(vhost.releasedOver(range), false);
  assert.equal(str(w.must(w.ownRead(vhost.addressOf(5)!))), 'page 5', 'mapped again');
  w.must(vhost.close());
  assert.ok(!w.ownRead(vhost.addressOf(0) ?? before).ok && vhost.addressOf(0) === undefined, 'closed: it maps nothing');
  assert.equal(w.vmmRead(0), 'page 0');
  const again = vhost.close();
  assert.ok(!again.ok && 'errno' in again && again.errno === 'EINVAL');
  assert.ok(!vhost.io(0, 6).ok, 'no I/O after close');
});

onBoth('set_mem_table regions are whole pages', (w) => {
  const r = w.us.vhostUserAttach(w.ram + 100, PAGE);
  assert.ok(!r.ok && 'errno' in r && r.errno === 'EINVAL' && /whole pages/.test(r.why), JSON.stringify(r));
});

const PU = 'design-discussion.md §3.1 (RamDiscardManager: notify_discard before to-private, notify_populate after to-shared)';

test(`preunmap: the backend unmaps the range before to-private and maps it again after to-shared; the VMM keeps its mapping [${PU}]`, () => {
  const w = new World();
  w.hostWrite(w.ram + 20 * K, 'shared data');
  const vhost = w.must(w.us.vhostUserAttach(w.ram, 64 * K, 'vhost'));
  const t = ran(w, w.us.mapGpaRange(w.vm, 16 * K, 16 * K, 'private', PREUNMAP));
  assert.deepEqual(summary(t), { phase: 'done', eagains: 0, retries: 0, released: ['vhost'], waited: [], vmStopped: false });
  assert.deepEqual([3, 4, 7, 8].map((p) => vhost.addressOf(p) !== undefined), [true, false, false, true]);
  assert.equal(w.attrs(), '0-16K shared, 16-32K private, 32-64K shared');
  assert.deepEqual(w.us.memory.addressToGmem(w.ram + 16 * K, 16 * K), { fd: w.fd, lo: 4, hi: 8 }, 'the VMM\'s mapping is still its own');
  const back = ran(w, w.us.mapGpaRange(w.vm, 16 * K, 16 * K, 'shared', PREUNMAP));
  assert.equal(back.phase, 'done');
  assert.equal(vhost.releasedOver({ fd: w.fd, lo: 0, hi: 16 }), false, 're-established');
  const own = w.must(w.us.kernel.hostRead(vhost.addressOf(5)!, 11));
  assert.deepEqual(own, w.must(w.hostRead(w.ram + 20 * K, 11)), 'its new mapping shows the file\'s page');
  w.noViolations();
  w.dispose();
});

test('preunmap, to-shared of part of what was released: only that part is mapped again, the rest waits [' + PU + ']', () => {
  const w = new World();
  const vhost = w.must(w.us.vhostUserAttach(w.ram, 64 * K, 'vhost'));
  ran(w, w.us.mapGpaRange(w.vm, 16 * K, 16 * K, 'private', PREUNMAP));
  ran(w, w.us.mapGpaRange(w.vm, 16 * K, 4 * K, 'shared', PREUNMAP));
  assert.deepEqual([4, 5, 7].map((p) => vhost.addressOf(p) !== undefined), [true, false, false]);
  ran(w, w.us.mapGpaRange(w.vm, 20 * K, 12 * K, 'shared', PREUNMAP));
  assert.deepEqual([4, 5, 6, 7].map((p) => vhost.addressOf(p) !== undefined), [true, true, true, true]);
  w.noViolations();
  w.dispose();
});

test('retry: the backend\'s mapping never blocks (the kernel zaps it); its I/O in flight does, and is waited for [kernel-semantics.md §1.10(b) step 4]', () => {
  const w = new World();
  const vhost = w.must(w.us.vhostUserAttach(w.ram, 64 * K, 'vhost'));
  const tx = w.must(vhost.io(20 * K, 4 * K, 'tx'));
  const t = ran(w, w.us.mapGpaRange(w.vm, 16 * K, 16 * K, 'private', RETRY));
  assert.deepEqual(summary(t), { phase: 'done', eagains: 1, retries: 1, released: ['tx'], waited: ['tx'], vmStopped: false });
  assert.equal(tx.state, 'completed');
  assert.ok(vhost.addressOf(5) !== undefined, 'retry releases only the holders at error_offset: the backend keeps its mapping (its PTEs are zapped)');
  w.noViolations();
  w.dispose();
});
