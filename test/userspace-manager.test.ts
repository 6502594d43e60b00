// The conversion manager beyond one holder: requests that span two memslots and two
// guest_memfd files (and the rollback of a request that finally fails), the guest's retry
// budget, I/O in flight that delays a conversion, the pin fence observed mid-conversion by
// driving the manager one step at a time, and the event API.
// Sources: design-discussion.md §2.4 (TDX MapGPA RETRY: the guest resumes at the next GPA
// and gives up after 3 retries without forward progress), §1.2 seed (in-flight I/O delays the
// conversion), §6 "Invariants to assert" (a failed conversion changes no attribute in the
// range), kernel-semantics.md §1.10(b) (EAGAIN + error_offset; all-or-nothing per call) and I4.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ODirectIo, SplicePipe } from '../src/userspace/holders.js';
import type { ConversionTask, TaskPhase } from '../src/userspace/manager.js';
import { GUEST_RETRY, PREUNMAP, RETRY, STOP } from '../src/userspace/policies.js';
import { K, PAGE, ran, recordEvents, str, summary, text, World } from './userspace-world.js';

/** Step the manager until the task reaches `phase` (or ends); at most `max` steps. */
function stepUntil(w: World, t: ConversionTask, phase: TaskPhase, max = 50): void {
  for (let n = 0; t.phase !== phase && !t.terminal; n++) {
    assert.ok(n < max, `task stuck in ${t.phase}`);
    w.us.manager.step(t);
  }
  assert.equal(t.phase, phase);
}

/** Two 32K guest_memfd files in two memslots: A at GPA [0, 32K), B at GPA [32K, 64K). */
const twoFiles = () => new World({ files: [{ size: 32 * K, gpa: 0 }, { size: 32 * K, gpa: 32 * K }] });
const SPAN = 'design-discussion.md §3.1 (a request may cover several RAM blocks), §6 (a failed conversion changes no attribute)';

describe(`a request over two memslots and two guest_memfd files  [${SPAN}]`, () => {
  test('GPA [16K, 48K) becomes A [16K, 32K) then B [0, 16K), one ioctl per file', () => {
    const w = twoFiles();
    const [A, B] = w.fds as [number, number];
    const t = ran(w, w.us.mapGpaRange(w.vm, 16 * K, 32 * K, 'private', RETRY));
    assert.deepEqual(t.request.segments, [{ fd: A, lo: 4, hi: 8 }, { fd: B, lo: 0, hi: 4 }]);
    assert.deepEqual(summary(t), { phase: 'done', eagains: 0, retries: 0, released: [], waited: [], vmStopped: false });
    assert.equal(w.attrs(A), '0-16K shared, 16-32K private');
    assert.equal(w.attrs(B), '0-16K private, 16-32K shared');
    w.noViolations();
    w.dispose();
  });

  test('the second segment blocked (io_uring in B): the first stays converted, the manager releases and retries B only', () => {
    const w = twoFiles();
    const [A, B] = w.fds as [number, number];
    w.must(w.us.ioUringRegisterBuffers(w.maps[1]! + 4 * K, 4 * K, 'ring'));
    const t = w.must(w.us.mapGpaRangeTask(w.vm, 16 * K, 32 * K, 'private', RETRY));
    stepUntil(w, t, 'call'); // begin
    w.us.manager.step(t); // A converts
    assert.equal(t.seg, 1);
    assert.equal(w.attrs(A), '0-16K shared, 16-32K private');
    const events = recordEvents(w.us);
    w.us.manager.step(t); // B: EAGAIN at B's 4K, the ring is released
    assert.deepEqual(events, ['blocked@4096[ring]', 'released:ring', 'retried#1']);
    assert.equal(w.attrs(B), '0-32K shared');
    w.us.manager.step(t);
    assert.deepEqual(summary(t), { phase: 'done', eagains: 1, retries: 1, released: ['ring'], waited: [], vmStopped: false });
    assert.equal(w.attrs(B), '0-16K private, 16-32K shared');
    w.noViolations();
    w.dispose();
  });

  test('the second segment blocked under stop: the first segment is rolled back, no attribute changed', () => {
    const w = twoFiles();
    const [A, B] = w.fds as [number, number];
    w.must(w.us.ioUringRegisterBuffers(w.maps[1]! + 4 * K, 4 * K, 'ring'));
    const before = [w.attrs(A), w.attrs(B)];
    const t = ran(w, w.us.mapGpaRange(w.vm, 16 * K, 32 * K, 'private', STOP));
    assert.deepEqual(summary(t), { phase: 'failed', eagains: 1, retries: 0, released: [], waited: [], vmStopped: true });
    assert.deepEqual([w.attrs(A), w.attrs(B)], before);
    assert.deepEqual([w.b.kernel.gmemFile(A)!.inode.attributes.get(4), w.b.kernel.gmemFile(B)!.inode.attributes.get(0)], ['shared', 'shared']);
    assert.equal(w.us.fenced({ fd: A, lo: 0, hi: 8 }), false, 'the fence is lifted');
    w.noViolations();
    w.dispose();
  });

  test('rollback restores what was there: a page of the first segment that was already private stays private', () => {
    const w = twoFiles();
    const [A, B] = w.fds as [number, number];
    w.must(w.us.convert(A, 20 * K, 4 * K, 'private', RETRY)); // A [20K, 24K) private beforehand
    w.must(w.us.ioUringRegisterBuffers(w.maps[1]! + 8 * K, 4 * K, 'ring'));
    const before = [w.attrs(A), w.attrs(B)];
    assert.equal(before[0], '0-20K shared, 20-24K private, 24-32K shared');
    const t = ran(w, w.us.mapGpaRange(w.vm, 16 * K, 32 * K, 'private', STOP));
    assert.equal(t.phase, 'failed');
    assert.deepEqual([w.attrs(A), w.attrs(B)], before, 'a failed request leaves no attribute changed, in either direction');
    w.noViolations();
    w.dispose();
  });

  test('rollback of a to-shared request that fails in its second file restores the private pages of the first', () => {
    const w = twoFiles();
    const [A, B] = w.fds as [number, number];
    ran(w, w.us.mapGpaRange(w.vm, 0, 64 * K, 'private', RETRY));
    w.must(w.us.convert(A, 0, 4 * K, 'shared', RETRY)); // A [0, 4K) shared again
    const before = [w.attrs(A), w.attrs(B)];
    // B's ioctl fails: the request names a range past B's end (a VMM bug), EINVAL from the kernel.
    const t = w.us.manager.request([{ fd: A, lo: 0, hi: 8 }, { fd: B, lo: 4, hi: 12 }], 'shared', RETRY, 'vmm');
    w.us.manager.run(t, { complete: (io) => { (io as ODirectIo).complete(); } });
    assert.equal(t.phase, 'failed');
    assert.ok(t.failure && 'errno' in t.failure && t.failure.errno === 'EINVAL', JSON.stringify(t.failure));
    assert.deepEqual([w.attrs(A), w.attrs(B)], before);
    w.noViolations();
    w.dispose();
  });

  test('a raw pin in the second file under retry: the manager gives up after 8 retries, nothing changed', () => {
    const w = twoFiles();
    const [A, B] = w.fds as [number, number];
    w.must(w.us.backend.pinUserPages(w.maps[1]! + 4 * K, 4 * K, true), 'raw pin');
    const t = ran(w, w.us.mapGpaRange(w.vm, 16 * K, 32 * K, 'private', RETRY));
    assert.deepEqual(summary(t), { phase: 'failed', eagains: 9, retries: 8, released: [], waited: [], vmStopped: false });
    assert.match((t.failure as { why: string }).why, /gave up after 8 retries: offset 4096 is still blocked by a reference no known holder owns/);
    assert.ok(t.stalled > 8, 'the manager backed off between attempts');
    assert.deepEqual([w.attrs(A), w.attrs(B)], ['0-32K shared', '0-32K shared']);
    w.noViolations();
    w.dispose();
  });

  test('guest-retry: the bounce names the GPA where the guest resumes (the start of B), and the retry converts B only', () => {
    const w = twoFiles();
    const [A, B] = w.fds as [number, number];
    const ring = w.must(w.us.ioUringRegisterBuffers(w.maps[1]! + 4 * K, 4 * K, 'ring'));
    const t = w.must(w.us.mapGpaRangeTask(w.vm, 16 * K, 32 * K, 'private', GUEST_RETRY));
    stepUntil(w, t, 'bounced');
    assert.equal(t.nextGpa, 32 * K);
    assert.equal(ring.state, 'released', 'the VMM released the ring before bouncing');
    assert.equal(w.attrs(A), '0-16K shared, 16-32K private');
    w.us.manager.guestRetry(t);
    w.us.manager.step(t);
    assert.deepEqual(summary(t), { phase: 'done', eagains: 1, retries: 1, released: ['ring'], waited: [], vmStopped: false });
    assert.equal(w.attrs(B), '0-16K private, 16-32K shared');
    w.noViolations();
    w.dispose();
  });

  test('preunmap over both files releases the holders of both before the first ioctl and registers them again on to-shared', () => {
    const w = twoFiles();
    const [A, B] = w.fds as [number, number];
    const ra = w.must(w.us.ioUringRegisterBuffers(w.maps[0]! + 16 * K, 4 * K, 'ra'));
    const db = w.must(w.us.vfioDmaMap(w.maps[1]!, 8 * K, 0n, 'db'));
    const t = ran(w, w.us.mapGpaRange(w.vm, 16 * K, 32 * K, 'private', PREUNMAP));
    assert.deepEqual(summary(t), { phase: 'done', eagains: 0, retries: 0, released: ['ra', 'db'], waited: [], vmStopped: false });
    ran(w, w.us.mapGpaRange(w.vm, 16 * K, 32 * K, 'shared', PREUNMAP));
    assert.deepEqual([ra.state, db.state], ['held', 'held']);
    assert.deepEqual([w.registered(A, 16 * K, 4 * K), w.registered(B, 0, 8 * K)], [[ra.id], [db.id]]);
    w.must(db.dma(0, 2, text('ok')));
    assert.equal(str(w.must(w.hostRead(w.maps[1]!, 2))), 'ok', 'the re-established DMA mapping reaches the page');
    w.noViolations();
    w.dispose();
  });
});

const BUDGET = 'design-discussion.md §2.4 (tdx_map_gpa(): RETRY resumes at the next GPA; 3 retries without progress, then give up)';

describe(`the guest's retry budget  [${BUDGET}]`, () => {
  test('a raw pin no holder owns: the guest gives up after 3 retries without progress', () => {
    const w = new World();
    w.must(w.us.backend.pinUserPages(w.ram + 4 * K, 4 * K, true), 'raw pin_user_pages');
    const events = recordEvents(w.us);
    const t = ran(w, w.us.mapGpaRange(w.vm, 0, 16 * K, 'private', GUEST_RETRY));
    assert.deepEqual(summary(t), { phase: 'failed', eagains: 4, retries: 3, released: [], waited: [], vmStopped: false });
    assert.match((t.failure as { why: string }).why, /the guest gave up after 3 retries without progress at offset 4096/);
    assert.deepEqual(events, [
      'blocked@4096[]', 'retried#1', 'blocked@4096[]', 'retried#2', 'blocked@4096[]', 'retried#3', 'blocked@4096[]', 'failed',
    ]);
    assert.equal(w.attrs(), '0-64K shared');
    assert.equal(w.us.fenced({ fd: w.fd, lo: 0, hi: 4 }), false);
    w.noViolations();
    w.dispose();
  });

  test('the blocking O_DIRECT completes within the budget (after the 2nd retry): the conversion succeeds, with its data', () => {
    const w = new World();
    const io = w.must(w.us.odirect(w.ram + 4 * K, 4 * K, 'read', text('late data'), 'io'));
    const t = w.must(w.us.mapGpaRangeTask(w.vm, 0, 16 * K, 'private', GUEST_RETRY));
    stepUntil(w, t, 'bounced'); // EAGAIN 1
    for (let retry = 1; retry <= 2; retry++) {
      w.us.manager.guestRetry(t);
      stepUntil(w, t, 'bounced'); // EAGAIN 2, 3: the I/O is still in flight
    }
    assert.equal(t.noProgress, 3);
    w.must(io.complete(), 'the device completes the read');
    w.us.manager.guestRetry(t); // the 3rd retry, the last one the budget allows
    w.us.manager.step(t);
    assert.deepEqual(summary(t), { phase: 'done', eagains: 3, retries: 3, released: ['io'], waited: ['io'], vmStopped: false });
    assert.equal(str(w.must(w.guestRead(4 * K, 9))), 'late data');
    w.noViolations();
    w.dispose();
  });

  test('the I/O completes one retry too late: the guest has given up; the page stays shared and receives the data', () => {
    const w = new World();
    const io = w.must(w.us.odirect(w.ram + 4 * K, 4 * K, 'read', text('too late'), 'io'));
    const t = w.must(w.us.mapGpaRangeTask(w.vm, 0, 16 * K, 'private', GUEST_RETRY));
    stepUntil(w, t, 'bounced');
    for (let retry = 1; retry <= 3; retry++) {
      w.us.manager.guestRetry(t);
      if (retry < 3) stepUntil(w, t, 'bounced');
      else stepUntil(w, t, 'failed');
    }
    assert.deepEqual([t.eagains, t.retries, io.state], [4, 3, 'in-flight']);
    w.must(io.complete());
    assert.equal(w.attrs(), '0-64K shared');
    assert.equal(str(w.must(w.hostRead(w.ram + 4 * K, 8))), 'too late');
    w.noViolations();
    w.dispose();
  });

  test('progress renews the budget: 2 + 3 fruitless retries on two files still complete', () => {
    const w = twoFiles();
    const pa = w.must(w.us.backend.pinUserPages(w.maps[0]! + 16 * K, 4 * K, true));
    const pb = w.must(w.us.backend.pinUserPages(w.maps[1]!, 4 * K, true));
    const t = w.must(w.us.mapGpaRangeTask(w.vm, 16 * K, 32 * K, 'private', GUEST_RETRY));
    stepUntil(w, t, 'bounced');
    for (let i = 0; i < 2; i++) { w.us.manager.guestRetry(t); stepUntil(w, t, 'bounced'); }
    assert.equal(t.nextGpa, 16 * K);
    w.must(w.us.backend.unpinUserPages(pa));
    w.us.manager.guestRetry(t);
    stepUntil(w, t, 'bounced'); // A converts (progress), B is blocked
    assert.deepEqual([t.seg, t.noProgress, t.nextGpa], [1, 1, 32 * K]);
    for (let i = 0; i < 2; i++) { w.us.manager.guestRetry(t); stepUntil(w, t, 'bounced'); }
    w.must(w.us.backend.unpinUserPages(pb));
    w.us.manager.guestRetry(t);
    w.us.manager.step(t);
    assert.deepEqual([t.phase, t.retries, t.eagains], ['done', 6, 6]);
    w.noViolations();
    w.dispose();
  });
});

const FENCE = 'design-discussion.md §1.2 seed (in-flight I/O delays the conversion); src/userspace/manager.ts (the pin fence)';

describe(`I/O in flight and the pin fence, one manager step at a time  [${FENCE}]`, () => {
  test('while a to-private conversion waits for an O_DIRECT read: new pins in the range get EBUSY, a new O_DIRECT is queued', () => {
    const w = new World();
    const io = w.must(w.us.odirect(w.ram + 4 * K, 4 * K, 'read', text('in flight'), 'io'));
    const outside = w.must(w.us.vfioDmaMap(w.ram + 32 * K, 4 * K, 0n, 'outside'));
    const vhost = w.must(w.us.vhostUserAttach(w.ram, 64 * K, 'vhost'));
    const t = w.must(w.us.mapGpaRangeTask(w.vm, 0, 16 * K, 'private', RETRY));
    w.us.manager.step(t); // begin: the fence goes up
    w.us.manager.step(t); // EAGAIN at 4K: the manager waits for the read
    assert.deepEqual([t.phase, t.eagains, t.awaiting.map((h) => h.name)], ['wait', 1, ['io']]);
    w.us.manager.step(t);
    assert.equal(t.phase, 'wait', 'the device has not completed the read: still waiting');
    assert.ok(t.stalled >= 1);

    const range = { fd: w.fd, lo: 0, hi: 4 };
    assert.equal(w.us.fenced(range), true);
    const busy = [
      w.us.ioUringRegisterBuffers(w.ram + 8 * K, 4 * K, 'ring'),
      w.us.vfioDmaMap(w.ram + 12 * K, 4 * K, 0x1000n, 'dma'),
      w.us.vmsplice(w.ram, 4 * K, 'pipe'),
    ];
    for (const r of busy) assert.ok(!r.ok && 'errno' in r && r.errno === 'EBUSY' && /conversion to private/.test(r.why), JSON.stringify(r));
    const queued = w.must(w.us.odirect(w.ram + 8 * K, 4 * K, 'read', text('queued'), 'queued'));
    assert.equal(queued.state, 'queued');
    const vhostQueued = w.must(vhost.io(12 * K, 4 * K, 'vhost-io'));
    assert.equal(vhostQueued.state, 'queued', 'a vhost-user backend\'s I/O queues behind the fence too');
    const early = queued.complete();
    assert.ok(!early.ok && 'errno' in early && early.errno === 'EBUSY', 'a queued I/O cannot complete');
    assert.deepEqual(w.registered(w.fd, 8 * K, 4 * K), [], 'a queued I/O holds no pin');
    // Outside the range nothing is fenced.
    w.must(w.us.ioUringRegisterBuffers(w.ram + 40 * K, 4 * K, 'ring-outside'));
    assert.equal(w.attrs(), '0-64K shared', 'nothing converted yet');

    w.must(io.complete(), 'the device completes the read');
    w.us.manager.step(t); // the wait ends
    w.us.manager.step(t); // the retried ioctl
    assert.deepEqual(summary(t), { phase: 'done', eagains: 1, retries: 1, released: ['io'], waited: ['io'], vmStopped: false });
    assert.equal(w.us.fenced(range), false);
    assert.equal(str(w.must(w.guestRead(4 * K, 9))), 'in flight', 'the read\'s data is in the page');
    // The queued O_DIRECT was submitted after the conversion: its buffer is private now.
    assert.deepEqual([queued.state, queued.error], ['failed', 'EFAULT']);
    assert.deepEqual([vhostQueued.state, vhostQueued.error], ['failed', 'EFAULT']);
    assert.equal(outside.holding, true);
    w.noViolations();
    w.dispose();
  });

  test('an O_DIRECT write in flight: the conversion waits, and the write sends the bytes the page held', () => {
    const w = new World();
    w.hostWrite(w.ram + 4 * K, 'payload');
    const io = w.must(w.us.odirect(w.ram + 4 * K, 4 * K, 'write', undefined, 'io'));
    const t = w.must(w.us.mapGpaRangeTask(w.vm, 0, 16 * K, 'private', RETRY));
    stepUntil(w, t, 'wait');
    w.us.manager.step(t);
    assert.equal(t.phase, 'wait');
    w.must(io.complete());
    stepUntil(w, t, 'done');
    assert.equal(str(io.data.subarray(0, 7)), 'payload');
    w.noViolations();
    w.dispose();
  });

  test('a conversion that fails lifts the fence too, and the queued O_DIRECT is submitted to the still-shared page', () => {
    const w = new World();
    w.must(w.us.backend.pinUserPages(w.ram + 4 * K, 4 * K, true), 'raw pin');
    const t = w.must(w.us.mapGpaRangeTask(w.vm, 0, 16 * K, 'private', STOP));
    w.us.manager.step(t); // fence
    const queued = w.must(w.us.odirect(w.ram + 8 * K, 4 * K, 'read', text('after'), 'queued'));
    assert.equal(queued.state, 'queued');
    w.us.manager.step(t); // EAGAIN: the VM stops
    assert.equal(t.phase, 'failed');
    assert.equal(queued.state, 'in-flight');
    w.must(queued.complete());
    assert.equal(str(w.must(w.hostRead(w.ram + 8 * K, 5))), 'after');
    w.noViolations();
    w.dispose();
  });

  test('a to-shared conversion puts up no fence', () => {
    const w = new World();
    ran(w, w.us.convert(w.fd, 0, 16 * K, 'private', RETRY));
    const t = w.us.manager.request([{ fd: w.fd, lo: 0, hi: 4 }], 'shared', RETRY, 'vmm');
    w.us.manager.step(t);
    assert.equal(w.us.fenced({ fd: w.fd, lo: 0, hi: 4 }), false);
    w.us.manager.step(t);
    assert.equal(t.phase, 'done');
    w.must(w.us.ioUringRegisterBuffers(w.ram, 4 * K, 'ring'));
    w.noViolations();
    w.dispose();
  });

  test('without the fence a registration that slips in while the manager waits blocks the retried call again', () => {
    const w = new World({ fence: false });
    const io = w.must(w.us.odirect(w.ram + 4 * K, 4 * K, 'read', undefined, 'io'));
    const t = w.must(w.us.mapGpaRangeTask(w.vm, 0, 16 * K, 'private', RETRY));
    stepUntil(w, t, 'wait');
    w.must(w.us.ioUringRegisterBuffers(w.ram + 8 * K, 4 * K, 'late-ring'), 'no fence: the registration succeeds');
    w.must(io.complete());
    stepUntil(w, t, 'done');
    assert.deepEqual(summary(t), { phase: 'done', eagains: 2, retries: 2, released: ['io', 'late-ring'], waited: ['io'], vmStopped: false });
    w.noViolations();
    w.dispose();
  });
});

const EVENTS = 'src/userspace/userspace.ts ConversionEvents; design-discussion.md §2.4 (no kernel notification exists: the VMM learns from EAGAIN + error_offset)';

describe(`the event API  [${EVENTS}]`, () => {
  test('blocked → released → retried → completed, with offsets, holders and the same request object', () => {
    const w = new World();
    const ring = w.must(w.us.ioUringRegisterBuffers(w.ram + 8 * K, 8 * K, 'ring'));
    const seen: { name: string; e: Record<string, unknown> }[] = [];
    for (const name of ['blocked', 'released', 'retried', 'completed', 'failed'] as const) {
      w.us.events.on(name, (e) => seen.push({ name, e: e as unknown as Record<string, unknown> }));
    }
    const t = ran(w, w.us.mapGpaRange(w.vm, 0, 16 * K, 'private', RETRY));
    assert.deepEqual(seen.map((s) => s.name), ['blocked', 'released', 'retried', 'completed']);
    const [blocked, released, retried, completed] = seen.map((s) => s.e) as Record<string, unknown>[];
    assert.deepEqual([blocked!.fd, blocked!.offset, blocked!.holders], [w.fd, 8 * K, [ring]]);
    assert.deepEqual([released!.holder, released!.how], [ring, 'released']);
    assert.equal(retried!.attempt, 1);
    assert.deepEqual([completed!.retries, completed!.released, completed!.waited], [1, [ring], []]);
    for (const s of seen) assert.equal(s.e.request, t.request);
    assert.equal(t.request.origin, 'KVM_HC_MAP_GPA_RANGE');
    w.noViolations();
    w.dispose();
  });

  test('an I/O is released by waiting for it: the event says so, and completed lists it as waited for', () => {
    const w = new World();
    const io = w.must(w.us.odirect(w.ram, 4 * K, 'read', undefined, 'io'));
    const how: string[] = [];
    let waited: unknown[] = [];
    w.us.events.on('released', (e) => how.push(e.how)).on('completed', (e) => { waited = e.waited; });
    ran(w, w.us.convert(w.fd, 0, 4 * K, 'private', RETRY));
    assert.deepEqual(how, ['waiting for its I/O to complete']);
    assert.deepEqual(waited, [io]);
    w.dispose();
  });

  test('two holders on one page: both are named by blocked and both released before the single retry', () => {
    const w = new World();
    w.must(w.us.ioUringRegisterBuffers(w.ram, 8 * K, 'ring'));
    w.must(w.us.vfioDmaMap(w.ram + 4 * K, 4 * K, 0n, 'dma'));
    const events = recordEvents(w.us);
    const t = ran(w, w.us.convert(w.fd, 4 * K, 4 * K, 'private', RETRY));
    assert.deepEqual(events, ['blocked@4096[ring,dma]', 'released:ring', 'released:dma', 'retried#1', 'completed']);
    assert.equal(t.request.origin, 'vmm');
    w.noViolations();
    w.dispose();
  });

  test('holders on two pages: one EAGAIN per error_offset, in ascending order', () => {
    const w = new World();
    w.must(w.us.vmsplice(w.ram + 12 * K, 4 * K, 'pipe'));
    w.must(w.us.ioUringRegisterBuffers(w.ram + 4 * K, 4 * K, 'ring'));
    const events = recordEvents(w.us);
    const t = ran(w, w.us.convert(w.fd, 0, 16 * K, 'private', RETRY));
    assert.deepEqual(events, ['blocked@4096[ring]', 'released:ring', 'retried#1', `blocked@${12 * K}[pipe]`, 'released:pipe', 'retried#2', 'completed']);
    assert.deepEqual([t.eagains, t.retries], [2, 2]);
    w.noViolations();
    w.dispose();
  });

  test('a failing request: blocked then failed, with the reason; nothing released under stop', () => {
    const w = new World();
    w.must(w.us.vfioDmaMap(w.ram, 4 * K, 0n, 'dma'));
    const reasons: string[] = [];
    const events = recordEvents(w.us);
    w.us.events.on('failed', (e) => reasons.push(e.reason));
    ran(w, w.us.mapGpaRange(w.vm, 0, 4 * K, 'private', STOP));
    assert.deepEqual(events, ['blocked@0[dma]', 'failed']);
    assert.deepEqual(reasons, ['conversion blocked at offset 0; the VMM stops the VM']);
    w.dispose();
  });

  test('a failing request under retry: every attempt is reported until the manager gives up', () => {
    const w = new World();
    w.must(w.us.backend.pinUserPages(w.ram, PAGE, true), 'raw pin');
    const events = recordEvents(w.us);
    ran(w, w.us.convert(w.fd, 0, 4 * K, 'private', RETRY));
    assert.equal(events.filter((e) => e === 'blocked@0[]').length, 9);
    assert.deepEqual(events.filter((e) => e.startsWith('retried')), ['#1', '#2', '#3', '#4', '#5', '#6', '#7', '#8'].map((n) => `retried${n}`));
    assert.equal(events.at(-1), 'failed');
    w.dispose();
  });
});

const PIPE = 'kernel-probe.md §6 (a vmsplice pipe holds page references until they are read)';

describe(`a pipe's references end when its reader consumes them  [${PIPE}]`, () => {
  test('read to the end in one read of exactly its length: released, the registry forgets it', () => {
    const w = new World();
    w.hostWrite(w.ram, 'pipe');
    const p = w.must(w.us.vmsplice(w.ram, 4, 'p')) as SplicePipe;
    assert.equal(str(w.must(p.read(4))), 'pipe');
    assert.deepEqual([p.state, p.holding, w.registered(w.fd, 0, 4 * K)], ['released', false, []]);
    const t = ran(w, w.us.convert(w.fd, 0, 4 * K, 'private', PREUNMAP));
    assert.deepEqual(t.released, [], 'preunmap has nothing to release');
    w.noViolations();
    w.dispose();
  });

  test('read in parts: held until the last byte is read', () => {
    const w = new World();
    const p = w.must(w.us.vmsplice(w.ram, 8 * K, 'p')) as SplicePipe;
    w.must(p.read(4 * K));
    assert.deepEqual([p.state, w.registered(w.fd, 0, 8 * K)], ['held', [p.id]]);
    w.must(p.read(4 * K));
    assert.deepEqual([p.state, w.registered(w.fd, 0, 8 * K)], ['released', []]);
    w.must(p.close(), 'closing the drained pipe');
    w.noViolations();
    w.dispose();
  });
});
