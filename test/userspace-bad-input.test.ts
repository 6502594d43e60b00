// Bad input to the userspace half: releasing a holder twice, completing an I/O twice, handles
// a scenario never defined, GPA ranges outside every memslot (entirely, partly, unaligned), and
// requests the kernel rejects. Each must fail with a clear errno and reason and leave nothing
// half done: no attribute changed, no fence left up, no holder released.
// Sources: scenario-language.md §1.2 ("A handle that does not exist … is a scenario error: reported
// with the step number and field, before anything runs"); kernel-semantics.md §1.10(b)
// (validation errors: EINVAL, nothing changed); design-discussion.md §6 (a failed conversion
// changes no attribute); io_uring_register(2) / VFIO_IOMMU_UNMAP_DMA (unregistering what is not
// registered is EINVAL in both).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { BResult } from '../src/backend/backend.js';
import { ScenarioError, parseScenario } from '../src/scenario/load.js';
import { runScenario } from '../src/scenario/run.js';
import { PREUNMAP, RETRY } from '../src/userspace/policies.js';
import { K, ran, recordEvents, text, World } from './userspace-world.js';

function errno(r: BResult<unknown>, name: string, why?: RegExp): void {
  assert.ok(!r.ok && 'errno' in r, `expected ${name}, got ${JSON.stringify(r)}`);
  assert.equal(r.errno, name, r.why);
  if (why) assert.match(r.why, why);
}

const UAPI = 'io_uring_register(2) IORING_UNREGISTER_BUFFERS, VFIO_IOMMU_UNMAP_DMA: EINVAL when nothing is registered';

describe(`releasing twice, completing twice  [${UAPI}]`, () => {
  test('io_uring_unregister_buffers twice: EINVAL, saying it was already released', () => {
    const w = new World();
    const ring = w.must(w.us.ioUringRegisterBuffers(w.ram, 8 * K, 'ring'));
    w.must(ring.close());
    errno(ring.close(), 'EINVAL', /io_uring ring was already released \(released\)/);
    assert.deepEqual(w.registered(w.fd, 0, 8 * K), []);
    w.noViolations();
    w.dispose();
  });

  test('vfio_dma_unmap twice: EINVAL, saying it was already released', () => {
    const w = new World();
    const dma = w.must(w.us.vfioDmaMap(w.ram, 8 * K, 0n, 'dma'));
    w.must(dma.close());
    errno(dma.close(), 'EINVAL', /vfio dma was already released \(released\)/);
    errno(dma.dma(0, 1), 'EFAULT', /not mapped/);
    w.noViolations();
    w.dispose();
  });

  test('unregistering what the manager already released: EINVAL (the VMM must not double-free)', () => {
    const w = new World();
    const ring = w.must(w.us.ioUringRegisterBuffers(w.ram, 4 * K, 'ring'));
    ran(w, w.us.convert(w.fd, 0, 4 * K, 'private', RETRY));
    errno(ring.close(), 'EINVAL', /already released/);
    w.dispose();
  });

  test('io_complete of an I/O that already completed: EINVAL, not in flight (completed)', () => {
    const w = new World();
    const io = w.must(w.us.odirect(w.ram, 4 * K, 'read', text('x'), 'io'));
    w.must(io.complete());
    errno(io.complete(), 'EINVAL', /I\/O io is not in flight \(completed\)/);
    w.dispose();
  });

  test('io_complete of an I/O whose buffer went private before submission: EINVAL, not in flight (failed)', () => {
    const w = new World();
    const t = w.must(w.us.mapGpaRangeTask(w.vm, 0, 4 * K, 'private', RETRY));
    w.us.manager.step(t);
    const io = w.must(w.us.odirect(w.ram, 4 * K, 'read', undefined, 'io'));
    while (!t.terminal) w.us.manager.step(t);
    assert.deepEqual([io.state, io.error], ['failed', 'EFAULT']);
    errno(io.complete(), 'EINVAL', /not in flight \(failed\)/);
    w.dispose();
  });

  test('an O_DIRECT cannot be cancelled by closing it: EINVAL', () => {
    const w = new World();
    const io = w.must(w.us.odirect(w.ram, 4 * K, 'write', undefined, 'io'));
    errno(io.close(), 'EINVAL', /cannot be cancelled/);
    assert.equal(io.state, 'in-flight');
    w.dispose();
  });

  test('O_DIRECT data longer than the I/O: EINVAL; a vhost-user I/O outside its mapping: EINVAL', () => {
    const w = new World();
    errno(w.us.odirect(w.ram, 4, 'read', text('too long')), 'EINVAL', /longer than the I\/O/);
    const vhost = w.must(w.us.vhostUserAttach(w.ram, 16 * K, 'vhost'));
    errno(vhost.io(12 * K, 8 * K, 'io'), 'EINVAL', /outside the 16384 bytes vhost-user vhost maps/);
    assert.deepEqual(w.registered(w.fd, 0, 64 * K), []);
    w.dispose();
  });

  test('a holder over memory that is no guest_memfd mapping: EFAULT naming the address', () => {
    const w = new World();
    errno(w.us.ioUringRegisterBuffers(w.ram + 60 * K, 8 * K), 'EFAULT', /is not inside one guest_memfd mapping/);
    errno(w.us.vmsplice(0x1000, 4 * K), 'EFAULT', /address range \[0x1000, \+4096\)/);
    w.dispose();
  });
});

/** A world with a ring at [48K, 52K), to show that a rejected request released nothing. */
function withRing() {
  const w = new World();
  const ring = w.must(w.us.ioUringRegisterBuffers(w.ram + 48 * K, 4 * K, 'ring'));
  const events = recordEvents(w.us);
  return { w, ring, events };
}

function nothingHalfDone(w: World, ring: { state: string }, events: string[]): void {
  assert.equal(w.attrs(), '0-64K shared', 'no attribute changed');
  assert.equal(ring.state, 'held', 'no holder released');
  assert.equal(w.us.fenced({ fd: w.fd, lo: 0, hi: 16 }), false, 'no fence left up');
  w.must(w.us.vfioDmaMap(w.ram + 56 * K, 4 * K, 0n), 'a new pin in the range is not fenced');
  assert.deepEqual(events, [], 'no request was started');
  w.noViolations();
  w.dispose();
}

const GPA = 'kernel-semantics.md §1.10(b) validation errors (EINVAL, nothing changed); src/userspace/memory-map.ts gpaToGmem';

describe(`GPA ranges the VMM cannot translate  [${GPA}]`, () => {
  const rows: { name: string; gpa: number; size: number; why: RegExp }[] = [
    { name: 'entirely outside every memslot', gpa: 1024 * K * K, size: 4 * K, why: /GPA 0x40000000 of \[0x40000000, \+4096\) is outside every guest_memfd memslot/ },
    { name: 'partly outside (runs past the end of the memslot)', gpa: 48 * K, size: 32 * K, why: /GPA 0x10000 of \[0xc000, \+32768\) is outside every guest_memfd memslot/ },
    { name: 'unaligned GPA', gpa: 48 * K + 100, size: 4 * K, why: /GPA range \[0xc064, \+4096\) is not page-aligned and non-empty/ },
    { name: 'unaligned size', gpa: 48 * K, size: 100, why: /is not page-aligned/ },
    { name: 'size 0', gpa: 48 * K, size: 0, why: /non-empty/ },
  ];
  for (const row of rows) {
    test(`${row.name}: EINVAL naming the GPA, nothing half done`, () => {
      const { w, ring, events } = withRing();
      for (const policy of [RETRY, PREUNMAP]) errno(w.us.mapGpaRange(w.vm, row.gpa, row.size, 'private', policy), 'EINVAL', row.why);
      nothingHalfDone(w, ring, events);
    });
  }

  test('a hole between two memslots: EINVAL naming the first GPA of the hole', () => {
    const w = new World({ files: [{ size: 32 * K, gpa: 0 }, { size: 32 * K, gpa: 64 * K }] });
    errno(w.us.mapGpaRange(w.vm, 16 * K, 64 * K, 'private', RETRY), 'EINVAL', /GPA 0x8000 of \[0x4000, \+65536\) is outside every guest_memfd memslot/);
    assert.deepEqual([w.attrs(w.fds[0]), w.attrs(w.fds[1])], ['0-32K shared', '0-32K shared']);
    w.dispose();
  });

  test('another VM\'s fd: EINVAL (its memslots are not this VM\'s)', () => {
    const { w, ring, events } = withRing();
    errno(w.us.mapGpaRange(w.vm + 100, 0, 4 * K, 'private', RETRY), 'EINVAL', /GPA 0x0 .* outside every guest_memfd memslot/);
    nothingHalfDone(w, ring, events);
  });

  test('convert() with an unaligned offset or size: EINVAL before any request', () => {
    const { w, ring, events } = withRing();
    errno(w.us.convert(w.fd, 100, 4 * K, 'private', RETRY), 'EINVAL', /offset 100 and size 4096 must be page-aligned/);
    errno(w.us.convert(w.fd, 48 * K, 0, 'private', PREUNMAP), 'EINVAL', /size positive/);
    nothingHalfDone(w, ring, events);
  });
});

const KREJECT = 'kernel-semantics.md §1.10(b) validation errors; design-discussion.md §3.1 (VFIO re-maps when memory is shared)';

describe(`requests the kernel rejects  [${KREJECT}]`, () => {
  test('convert() past the end of the file: the kernel\'s EINVAL, the fence lifted, nothing released', () => {
    const { w, ring } = withRing();
    const t = ran(w, w.us.convert(w.fd, 32 * K, 64 * K, 'private', RETRY));
    assert.equal(t.phase, 'failed');
    errno(t.failure as BResult<unknown>, 'EINVAL', /outside i_size/);
    assert.equal(ring.state, 'held');
    assert.equal(w.us.fenced({ fd: w.fd, lo: 8, hi: 24 }), false);
    assert.equal(w.attrs(), '0-64K shared');
    w.noViolations();
    w.dispose();
  });

  test('a VM without private memory under preunmap: EINVAL, and the holders released beforehand are registered again', () => {
    const w = new World({ type: 'default' });
    const ring = w.must(w.us.ioUringRegisterBuffers(w.ram, 8 * K, 'ring'));
    const dma = w.must(w.us.vfioDmaMap(w.ram + 4 * K, 4 * K, 0n, 'dma'));
    const t = ran(w, w.us.mapGpaRange(w.vm, 0, 16 * K, 'private', PREUNMAP));
    errno(t.failure as BResult<unknown>, 'EINVAL', /has no private memory/);
    assert.deepEqual(t.released.map((h) => h.name), ['ring', 'dma']);
    assert.deepEqual([ring.state, dma.state], ['held', 'held'], 'the failed request released nothing for good');
    assert.deepEqual(w.registered(w.fd, 0, 16 * K), [ring.id, dma.id]);
    w.must(dma.dma(0, 2, text('ok')));
    w.noViolations();
    w.dispose();
  });

  test('a raw pin under preunmap: the manager gives up, and the holders it released are registered again', () => {
    const w = new World();
    const ring = w.must(w.us.ioUringRegisterBuffers(w.ram, 16 * K, 'ring'));
    w.must(w.us.backend.pinUserPages(w.ram + 8 * K, 4 * K, true), 'raw pin');
    const t = ran(w, w.us.convert(w.fd, 0, 16 * K, 'private', PREUNMAP));
    assert.equal(t.phase, 'failed');
    assert.match((t.failure as { why: string }).why, /no known holder owns/);
    assert.equal(ring.state, 'held');
    assert.equal(w.attrs(), '0-64K shared');
    w.noViolations();
    w.dispose();
  });
});

const LOADER = 'scenario-language.md §1.2 ("a handle that does not exist … reported with the step number and field, before anything runs")';

describe(`scenario handles that do not exist  [${LOADER}]`, () => {
  const HEAD = `name: bad handles
steps:
  - { op: create_vm, type: sw_protected, as: vm }
  - { op: create_guest_memfd, vm: vm, size: 64K, flags: [MMAP, INIT_SHARED], as: gmem }
  - { op: mmap, fd: gmem, length: 64K, as: ram }
  - { op: io_uring_register_buffers, map: ram, offset: 0, length: 4K, as: ring }
`;
  const rows: { name: string; step: string; want: RegExp }[] = [
    { name: 'unregister an undefined ring', step: '{ op: io_uring_unregister_buffers, ring: rnig }', want: /step 5: \(io_uring_unregister_buffers\) field 'ring': handle 'rnig' is not defined \(defined so far: vm, gmem, ram, ring\)/ },
    { name: 'unmap an undefined DMA mapping', step: '{ op: vfio_dma_unmap, dma: dma }', want: /step 5: \(vfio_dma_unmap\) field 'dma': handle 'dma' is not defined/ },
    { name: 'complete an undefined I/O', step: '{ op: io_complete, io: io }', want: /step 5: \(io_complete\) field 'io': handle 'io' is not defined/ },
    { name: 'read an undefined pipe', step: '{ op: pipe_read, pipe: p }', want: /step 5: \(pipe_read\) field 'pipe': handle 'p' is not defined/ },
    { name: 'an I/O on an undefined vhost-user backend', step: '{ op: vhost_user_io, vhost: v, length: 4K }', want: /step 5: \(vhost_user_io\) field 'vhost': handle 'v' is not defined/ },
    { name: 'a ring where a DMA mapping is expected', step: '{ op: vfio_dma_unmap, dma: ring }', want: /step 5: \(vfio_dma_unmap\) field 'dma': handle 'ring' is a ring handle \(step 4\); expected a dma handle/ },
    { name: 'a ring where an I/O is expected', step: '{ op: io_complete, io: ring }', want: /step 5: \(io_complete\) field 'io': handle 'ring' is a ring handle \(step 4\); expected a io handle/ },
    { name: 'convert on an undefined guest_memfd', step: '{ op: convert, fd: gmme, offset: 0, size: 4K, to: private }', want: /step 5: \(convert\) field 'fd': handle 'gmme' is not defined/ },
    { name: 'map_gpa_range on an undefined VM', step: '{ op: map_gpa_range, vm: vn, gpa: 0, size: 4K, to: private }', want: /step 5: \(map_gpa_range\) field 'vm': handle 'vn' is not defined/ },
    { name: 'a holder on an undefined mapping', step: '{ op: odirect_read, map: rma, length: 4K, as: io }', want: /step 5: \(odirect_read\) field 'map': handle 'rma' is not defined/ },
  ];
  for (const row of rows) {
    test(`${row.name}: a loader error naming the step and field`, () => {
      const src = `${HEAD}  - ${row.step}\n`;
      assert.throws(() => parseScenario(src, 'bad.yaml'), (e: unknown) => {
        assert.ok(e instanceof ScenarioError);
        assert.equal(e.errors.length, 1, e.message);
        assert.match(e.message, row.want);
        assert.match(e.message, /^bad\.yaml:7: /, 'the file and line are named');
        return true;
      });
    });
  }

  test('a handle whose creating step failed: the later step is not run and says why', () => {
    const s = parseScenario(`${HEAD}  - { op: io_uring_register_buffers, map: ram, offset: 60K, length: 8K, as: r2, expect: { errno: EFAULT } }
  - { op: io_uring_unregister_buffers, ring: r2 }
`);
    const [r] = runScenario(s);
    assert.equal(r!.passed, false);
    const last = r!.steps.at(-1)!;
    assert.equal(last.outcome.kind, 'skipped');
    assert.match(last.failure!, /handle 'r2' was not created \(step 5 did not succeed\)/);
  });
});
