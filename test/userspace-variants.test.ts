// The design variants with the conversion manager (profiles in src/model/profile.ts; VARIANTS,
// not in any kernel).
//   deferred — Fuad Tabba's 2025 design: a to-private conversion that meets references returns
//   0 at once; the range is pending (host SIGBUS, no new GUP, guest exits) and becomes private
//   when the last reference drops. Sources: kernel-semantics.md §1.10(c) "Fuad v7";
//   design-discussion.md §2.2, §6 policy 2.
//   revoke — the fd+offset direction (Jason Gunthorpe; iommufd's revocable DMA-BUF imports): a
//   VFIO mapping imports guest_memfd by fd+offset and holds no pin; a to-private conversion
//   revokes it (device DMA faults) and the VMM maps it again once the range is shared.
//   Sources: design-discussion.md §1.3, §2.5, §6 policy 3; kernel-semantics.md §7 item 4.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { BResult } from '../src/backend/backend.js';
import { gmemFolio } from '../src/model/gmem.js';
import { DEFERRED, IPC_V8, REVOKE } from '../src/model/profile.js';
import type { Holder, ODirectIo, SplicePipe, VfioDmaMapping } from '../src/userspace/holders.js';
import { PREUNMAP, RETRY, STOP } from '../src/userspace/policies.js';
import { K, ran, recordEvents, str, summary, text, World } from './userspace-world.js';

const isErrno = (r: BResult<unknown>, name: string) => !r.ok && 'errno' in r && r.errno === name;
const isSignal = (r: BResult<unknown>, name: string) => !r.ok && 'signal' in r && r.signal === name;

const DEFER = 'kernel-semantics.md §1.10(c) "Fuad v7"; design-discussion.md §2.2 (NONE_SHARED, completes on the last folio_put)';

interface DeferRow {
  readonly name: string;
  /** Takes references on [4K, 8K); returns the holder and how its user lets go. */
  readonly make: (w: World) => { h: Holder; letGo: () => void };
  /** What the page holds once private (read by the guest at GPA 4K). */
  readonly data?: string;
}

const DEFER_ROWS: readonly DeferRow[] = [
  { name: 'io_uring fixed buffers, unregistered later', make: (w) => {
    const h = w.must(w.us.ioUringRegisterBuffers(w.ram + 4 * K, 4 * K, 'h'));
    return { h, letGo: () => w.must(h.close()) };
  } },
  { name: 'a VFIO DMA mapping, unmapped later', make: (w) => {
    const h = w.must(w.us.vfioDmaMap(w.ram + 4 * K, 4 * K, 0n, 'h'));
    return { h, letGo: () => w.must(h.close()) };
  } },
  { name: 'an O_DIRECT read, completed later: its data is in the private page', data: 'disk block', make: (w) => {
    const h = w.must(w.us.odirect(w.ram + 4 * K, 4 * K, 'read', text('disk block'), 'h'));
    return { h, letGo: () => w.must(h.complete()) };
  } },
  { name: 'an O_DIRECT write, completed later: it sent the bytes of the page', data: 'to disk', make: (w) => {
    w.hostWrite(w.ram + 4 * K, 'to disk');
    const h = w.must(w.us.odirect(w.ram + 4 * K, 4 * K, 'write', undefined, 'h'));
    return { h, letGo: () => { w.must(h.complete()); assert.equal(str(h.data.subarray(0, 7)), 'to disk'); } };
  } },
  { name: 'a vmsplice pipe, read later', data: 'spliced', make: (w) => {
    w.hostWrite(w.ram + 4 * K, 'spliced');
    const h = w.must(w.us.vmsplice(w.ram + 4 * K, 4 * K, 'h'));
    return { h, letGo: () => assert.equal(str(w.must((h as SplicePipe).read()).subarray(0, 7)), 'spliced') };
  } },
  { name: 'a vhost-user backend\'s I/O, completed later', make: (w) => {
    const vhost = w.must(w.us.vhostUserAttach(w.ram, 64 * K, 'vhost'));
    const h = w.must(vhost.io(4 * K, 4 * K, 'h'));
    return { h, letGo: () => w.must((h as ODirectIo).complete()) };
  } },
];

describe(`deferred: the manager's call succeeds at once; private when the last holder lets go  [${DEFER}]`, () => {
  for (const row of DEFER_ROWS) {
    test(row.name, () => {
      const w = new World({ profile: DEFERRED });
      const { h, letGo } = row.make(w);
      const events = recordEvents(w.us);
      const t = ran(w, w.us.convert(w.fd, 0, 16 * K, 'private', RETRY));
      assert.deepEqual(summary(t), { phase: 'done', eagains: 0, retries: 0, released: [], waited: [], vmStopped: false });
      assert.deepEqual(events, ['completed'], 'the kernel accepted the call: nothing to resolve');
      assert.equal(w.attrs(), '0-16K pending, 16-64K shared');
      assert.equal(h.holding, true, 'the holder keeps its references');
      assert.ok(isSignal(w.hostRead(w.ram + 8 * K, 1), 'SIGBUS'), 'host access to the pending range: SIGBUS');
      const exit = w.guestRead(4 * K, 1);
      assert.ok(!exit.ok && 'exit' in exit && exit.exit === 'MEMORY_FAULT' && exit.private, 'the guest cannot use it yet');
      assert.ok(isErrno(w.us.ioUringRegisterBuffers(w.ram, 4 * K), 'EFAULT'), 'no new GUP in the pending range');
      assert.equal(w.us.fenced({ fd: w.fd, lo: 0, hi: 4 }), false, 'the manager is done: its fence is down');

      letGo();
      assert.equal(w.attrs(), '0-16K private, 16-64K shared', 'the last reference dropped: the conversion completed');
      assert.deepEqual(w.registered(w.fd, 0, 16 * K), []);
      if (row.data) assert.equal(str(w.must(w.guestRead(4 * K, row.data.length))), row.data);
      else w.must(w.guestRead(4 * K, 1));
      w.noViolations();
      w.dispose();
    });
  }

  test('two holders on the page: pending until both let go', () => {
    const w = new World({ profile: DEFERRED });
    const ring = w.must(w.us.ioUringRegisterBuffers(w.ram, 8 * K, 'ring'));
    const dma = w.must(w.us.vfioDmaMap(w.ram + 4 * K, 4 * K, 0n, 'dma'));
    ran(w, w.us.mapGpaRange(w.vm, 0, 8 * K, 'private', RETRY));
    w.must(ring.close());
    assert.equal(w.attrs(), '0-8K pending, 8-64K shared');
    w.must(dma.close());
    assert.equal(w.attrs(), '0-8K private, 8-64K shared');
    w.noViolations();
    w.dispose();
  });

  test('preunmap under deferred releases first: the range is private at once, never pending', () => {
    const w = new World({ profile: DEFERRED });
    w.must(w.us.ioUringRegisterBuffers(w.ram + 4 * K, 4 * K, 'ring'));
    const t = ran(w, w.us.mapGpaRange(w.vm, 0, 16 * K, 'private', PREUNMAP));
    assert.deepEqual(summary(t), { phase: 'done', eagains: 0, retries: 0, released: ['ring'], waited: [], vmStopped: false });
    assert.equal(w.attrs(), '0-16K private, 16-64K shared');
    w.noViolations();
    w.dispose();
  });

  test('stop under deferred: nothing blocks, so the VM is never stopped (contrast: ipc-v8 stops it)', () => {
    for (const [profile, phase, stopped] of [[DEFERRED, 'done', false], [IPC_V8, 'failed', true]] as const) {
      const w = new World({ profile });
      w.must(w.us.vfioDmaMap(w.ram + 4 * K, 4 * K, 0n, 'dma'));
      const t = ran(w, w.us.mapGpaRange(w.vm, 0, 16 * K, 'private', STOP));
      assert.deepEqual([t.phase, t.vmStopped], [phase, stopped], profile.name);
      w.noViolations(profile.name);
      w.dispose();
    }
  });

  test('to-shared of a pending range: shared again, the conversion abandoned; the holder drops later without effect', () => {
    const w = new World({ profile: DEFERRED });
    const ring = w.must(w.us.ioUringRegisterBuffers(w.ram + 4 * K, 4 * K, 'ring'));
    ran(w, w.us.convert(w.fd, 0, 16 * K, 'private', RETRY));
    const t = ran(w, w.us.convert(w.fd, 0, 16 * K, 'shared', RETRY));
    assert.equal(t.phase, 'done');
    assert.equal(w.attrs(), '0-64K shared');
    w.must(ring.close());
    assert.equal(w.attrs(), '0-64K shared');
    w.must(w.hostRead(w.ram + 4 * K, 1));
    w.noViolations();
    w.dispose();
  });
});

const REV = 'design-discussion.md §2.5 (iommufd DMA-BUF import with revoke; "no automatic remap … map/unmap it around the activity"), §6 policy 3';

describe(`revoke: VFIO imports by fd+offset, the conversion revokes, to-shared maps again  [${REV}]`, () => {
  function revokeWorld() {
    const w = new World({ profile: REVOKE, type: 'tdx' });
    const dma = w.must(w.us.vfioDmaMap(w.ram, 16 * K, 0n, 'dma')) as VfioDmaMapping;
    return { w, dma };
  }

  test('the mapping is an import: no pin, nothing in the pin registry, DMA reaches the page', () => {
    const { w, dma } = revokeWorld();
    assert.equal(dma.revocable, true);
    assert.notEqual(dma.importId, undefined);
    assert.deepEqual(w.registered(w.fd, 0, 16 * K), []);
    assert.equal(gmemFolio(w.b.kernel.state, w.b.kernel.gmemFile(w.fd)!.inode, 0)?.pinsLong ?? 0, 0);
    w.must(dma.dma(0, 2, text('rx')));
    assert.equal(str(w.must(w.hostRead(w.ram, 2))), 'rx');
    w.noViolations();
    w.dispose();
  });

  test('to-private under every policy: no EAGAIN, nothing released, the device\'s DMA faults (EFAULT)', () => {
    for (const policy of [RETRY, PREUNMAP, STOP]) {
      const { w, dma } = revokeWorld();
      const events = recordEvents(w.us);
      const t = ran(w, w.us.mapGpaRange(w.vm, 0, 16 * K, 'private', policy));
      assert.deepEqual(summary(t), { phase: 'done', eagains: 0, retries: 0, released: [], waited: [], vmStopped: false }, policy.name);
      assert.deepEqual(events, ['completed']);
      assert.equal(w.attrs(), '0-16K private, 16-64K shared');
      const r = dma.dma(0, 2);
      assert.ok(isErrno(r, 'EFAULT') && /revoked/.test((r as { why: string }).why), JSON.stringify(r));
      assert.equal(dma.holding, true, 'the VMM keeps its mapping object, to map it again');
      w.noViolations(policy.name);
      w.dispose();
    }
  });

  test('to-shared maps it again: the device writes, the host reads it', () => {
    const { w, dma } = revokeWorld();
    ran(w, w.us.convert(w.fd, 0, 16 * K, 'private', RETRY));
    const revoked = dma.importId;
    ran(w, w.us.convert(w.fd, 0, 16 * K, 'shared', RETRY));
    assert.notEqual(dma.importId, revoked, 'a new import');
    w.must(dma.dma(4 * K, 2, text('ok')));
    assert.equal(str(w.must(w.hostRead(w.ram + 4 * K, 2))), 'ok');
    assert.equal(w.b.kernel.state.imports.size, 1, 'the revoked import was dropped');
    w.noViolations();
    w.dispose();
  });

  test('to-shared of part of the mapping: still unmapped (EFAULT) until all of it is shared, then mapped again', () => {
    const { w, dma } = revokeWorld();
    ran(w, w.us.convert(w.fd, 0, 16 * K, 'private', RETRY));
    ran(w, w.us.convert(w.fd, 0, 4 * K, 'shared', RETRY));
    assert.ok(isErrno(dma.dma(0, 1), 'EFAULT'), 'an IOMMU fault, not a stale mapping');
    assert.equal(dma.revocable, true, 'still an fd+offset mapping');
    ran(w, w.us.convert(w.fd, 4 * K, 12 * K, 'shared', RETRY));
    w.must(dma.dma(12 * K, 3, text('all')));
    assert.equal(str(w.must(w.hostRead(w.ram + 12 * K, 3))), 'all');
    w.noViolations();
    w.dispose();
  });

  test('io_uring still pins under revoke: the manager releases it on EAGAIN as under ipc-v8', () => {
    const { w } = revokeWorld();
    w.must(w.us.ioUringRegisterBuffers(w.ram + 8 * K, 4 * K, 'ring'));
    const t = ran(w, w.us.convert(w.fd, 0, 16 * K, 'private', RETRY));
    assert.deepEqual(summary(t), { phase: 'done', eagains: 1, retries: 1, released: ['ring'], waited: [], vmStopped: false });
    w.noViolations();
    w.dispose();
  });

  test('unmapping a revoked mapping: ok once, EINVAL the second time; an unmapped mapping is not mapped again by to-shared', () => {
    const { w, dma } = revokeWorld();
    ran(w, w.us.convert(w.fd, 0, 16 * K, 'private', RETRY));
    w.must(dma.close());
    assert.ok(isErrno(dma.close(), 'EINVAL'));
    ran(w, w.us.convert(w.fd, 0, 16 * K, 'shared', RETRY));
    assert.equal(dma.state, 'released');
    assert.ok(isErrno(dma.dma(0, 1), 'EFAULT'));
    assert.equal(w.b.kernel.state.imports.size, 0);
    w.noViolations();
    w.dispose();
  });

  test('under ipc-v8 the same mapping pins: it blocks, and stop stops the VM', () => {
    const w = new World({ profile: IPC_V8, type: 'tdx' });
    const dma = w.must(w.us.vfioDmaMap(w.ram, 16 * K, 0n, 'dma'));
    assert.equal(dma.revocable, false);
    assert.deepEqual(w.registered(w.fd, 0, 16 * K), [dma.id]);
    const t = ran(w, w.us.mapGpaRange(w.vm, 0, 16 * K, 'private', STOP));
    assert.deepEqual([t.phase, t.eagains, t.vmStopped], ['failed', 1, true]);
    w.noViolations();
    w.dispose();
  });
});
