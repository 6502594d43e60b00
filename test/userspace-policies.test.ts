// Each conversion policy against each kind of pin holder. The guest asks (KVM_HC_MAP_GPA_RANGE)
// for GPA [0, 16K) to become private while one holder references the page at 4K; each cell
// states what the manager's request does (completed or failed, EAGAINs seen, retries, holders
// released, I/O waited for, VM stopped) and the state afterwards (host access, attributes, pin
// registry, where an O_DIRECT's data went). Sources:
//   policies — retry: kernel-semantics.md §1.10(b) "Userspace contract" and §4; preunmap:
//   design-discussion.md §3.1 (QEMU RamDiscardManager: unmap before to-private); guest-retry
//   and stop: design-discussion.md §2.4 (TDX MapGPA RETRY, stock QEMU stops the VM).
//   holders — kernel-semantics.md §1.11 (long-term and short-term pins block to-private),
//   design-discussion.md §1.2 (seed: io_uring/VFIO unregister first, in-flight I/O delays
//   the conversion, vhost-user needs GUP), kernel-probe.md §6 (vmsplice holds page references).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Holder } from '../src/userspace/holders.js';
import { ODirectIo, VfioDmaMapping } from '../src/userspace/holders.js';
import { GUEST_RETRY, PREUNMAP, RETRY, STOP, type Policy } from '../src/userspace/policies.js';
import { K, ran, recordEvents, str, summary, text, World } from './userspace-world.js';

type Kind = 'io_uring' | 'vfio' | 'odirect-read' | 'odirect-write' | 'vmsplice' | 'vhost-user';

interface HolderSpec {
  readonly cite: string;
  /** Takes the references on bytes [4K, 8K) of the file; the holder is named `h`. */
  readonly make: (w: World) => Holder;
  /** What the holder's state is once the manager released it. */
  readonly releasedState: string;
  /** Kind-specific checks after a completed conversion. */
  readonly afterCompleted?: (w: World, h: Holder) => void;
  /** Kind-specific checks after the VM was stopped (the holder kept its references). */
  readonly afterStopped?: (w: World, h: Holder) => void;
}

const S111 = 'kernel-semantics.md §1.11';
const SEED = 'design-discussion.md §1.2 (seed, 17 Oct 2024)';

const HOLDERS: Readonly<Record<Kind, HolderSpec>> = {
  io_uring: {
    cite: `${SEED}: unregister io_uring fixed buffers; ${S111} FOLL_LONGTERM`,
    make: (w) => w.must(w.us.ioUringRegisterBuffers(w.ram + 4 * K, 4 * K, 'h')),
    releasedState: 'released',
  },
  vfio: {
    cite: `${SEED}: VFIO unmap; ${S111} IOMMU/VFIO mapping`,
    make: (w) => w.must(w.us.vfioDmaMap(w.ram + 4 * K, 4 * K, 0x100000n, 'h')),
    releasedState: 'released',
    afterCompleted: (_w, h) => {
      const r = (h as VfioDmaMapping).dma(0, 1);
      assert.ok(!r.ok && 'errno' in r && r.errno === 'EFAULT', 'device DMA through the unmapped IOVA faults');
    },
  },
  'odirect-read': {
    cite: `${SEED}: in-flight I/O delays the conversion; ${S111} short-term pin`,
    make: (w) => w.must(w.us.odirect(w.ram + 4 * K, 4 * K, 'read', text('disk block'), 'h')),
    releasedState: 'completed',
    afterCompleted: (w) => {
      assert.equal(str(w.must(w.guestRead(4 * K, 10))), 'disk block', 'the data the read delivered is in the now-private page');
    },
    afterStopped: (w, h) => {
      assert.equal(h.state, 'in-flight', 'the manager never cancels I/O');
      w.must((h as ODirectIo).complete(), 'io_complete after the stop');
      assert.equal(str(w.must(w.hostRead(w.ram + 4 * K, 10))), 'disk block', 'the read lands in the still-shared page');
    },
  },
  'odirect-write': {
    cite: `${SEED}: in-flight I/O delays the conversion; ${S111} short-term pin`,
    make: (w) => {
      w.hostWrite(w.ram + 4 * K, 'to disk');
      return w.must(w.us.odirect(w.ram + 4 * K, 4 * K, 'write', undefined, 'h'));
    },
    releasedState: 'completed',
    afterCompleted: (w, h) => {
      assert.equal(str((h as ODirectIo).data.subarray(0, 7)), 'to disk', 'the write sent what the page held before the conversion');
      assert.equal(str(w.must(w.guestRead(4 * K, 7))), 'to disk', 'sw_protected keeps the content across the conversion (I7)');
    },
    afterStopped: (_w, h) => {
      assert.equal(h.state, 'in-flight', 'the manager never cancels I/O');
      assert.equal(str(((h as ODirectIo).complete(), (h as ODirectIo).data.subarray(0, 7))), 'to disk');
    },
  },
  vmsplice: {
    cite: 'kernel-probe.md §6 (vmsplice holds FOLL_GET page references until read)',
    make: (w) => w.must(w.us.vmsplice(w.ram + 4 * K, 4 * K, 'h')),
    releasedState: 'released',
  },
  'vhost-user': {
    cite: 'design-discussion.md §1.2 (Peter Xu, David Hildenbrand: vhost-user is VA-based and needs GUP)',
    make: (w) => {
      const vhost = w.must(w.us.vhostUserAttach(w.ram, 64 * K, 'vhost'));
      return w.must(vhost.io(4 * K, 4 * K, 'h'));
    },
    releasedState: 'completed',
  },
};

interface PolicySpec { readonly policy: Policy; readonly cite: string }
const POLICIES: Readonly<Record<string, PolicySpec>> = {
  retry: { policy: RETRY, cite: 'kernel-semantics.md §1.10(b) userspace contract, §4' },
  preunmap: { policy: PREUNMAP, cite: 'design-discussion.md §3.1 (unmap before to-private)' },
  'guest-retry': { policy: GUEST_RETRY, cite: 'design-discussion.md §2.4 (TDX MapGPA RETRY)' },
  stop: { policy: STOP, cite: 'design-discussion.md §2.4 (stock QEMU stops the VM), §3.8' },
};

interface Cell {
  readonly holder: Kind;
  readonly policy: keyof typeof POLICIES;
  readonly outcome: 'completed' | 'failed';
  readonly eagains: number;
  readonly retries: number;
  readonly released: readonly string[];
  readonly waited: readonly string[];
  readonly events: readonly string[];
}

const BLOCKED = 'blocked@4096[h]';
const RETRIED = [BLOCKED, 'released:h', 'retried#1', 'completed'];
const STOPPED = [BLOCKED, 'failed'];

/** The matrix: every policy against every holder. */
const CELLS: readonly Cell[] = [
  { holder: 'io_uring', policy: 'retry', outcome: 'completed', eagains: 1, retries: 1, released: ['h'], waited: [], events: RETRIED },
  { holder: 'io_uring', policy: 'preunmap', outcome: 'completed', eagains: 0, retries: 0, released: ['h'], waited: [], events: ['released:h', 'completed'] },
  { holder: 'io_uring', policy: 'guest-retry', outcome: 'completed', eagains: 1, retries: 1, released: ['h'], waited: [], events: RETRIED },
  { holder: 'io_uring', policy: 'stop', outcome: 'failed', eagains: 1, retries: 0, released: [], waited: [], events: STOPPED },

  { holder: 'vfio', policy: 'retry', outcome: 'completed', eagains: 1, retries: 1, released: ['h'], waited: [], events: RETRIED },
  { holder: 'vfio', policy: 'preunmap', outcome: 'completed', eagains: 0, retries: 0, released: ['h'], waited: [], events: ['released:h', 'completed'] },
  { holder: 'vfio', policy: 'guest-retry', outcome: 'completed', eagains: 1, retries: 1, released: ['h'], waited: [], events: RETRIED },
  { holder: 'vfio', policy: 'stop', outcome: 'failed', eagains: 1, retries: 0, released: [], waited: [], events: STOPPED },

  { holder: 'odirect-read', policy: 'retry', outcome: 'completed', eagains: 1, retries: 1, released: ['h'], waited: ['h'], events: RETRIED },
  { holder: 'odirect-read', policy: 'preunmap', outcome: 'completed', eagains: 0, retries: 0, released: ['h'], waited: ['h'], events: ['released:h', 'completed'] },
  { holder: 'odirect-read', policy: 'guest-retry', outcome: 'completed', eagains: 1, retries: 1, released: ['h'], waited: ['h'], events: RETRIED },
  { holder: 'odirect-read', policy: 'stop', outcome: 'failed', eagains: 1, retries: 0, released: [], waited: [], events: STOPPED },

  { holder: 'odirect-write', policy: 'retry', outcome: 'completed', eagains: 1, retries: 1, released: ['h'], waited: ['h'], events: RETRIED },
  { holder: 'odirect-write', policy: 'preunmap', outcome: 'completed', eagains: 0, retries: 0, released: ['h'], waited: ['h'], events: ['released:h', 'completed'] },
  { holder: 'odirect-write', policy: 'guest-retry', outcome: 'completed', eagains: 1, retries: 1, released: ['h'], waited: ['h'], events: RETRIED },
  { holder: 'odirect-write', policy: 'stop', outcome: 'failed', eagains: 1, retries: 0, released: [], waited: [], events: STOPPED },

  { holder: 'vmsplice', policy: 'retry', outcome: 'completed', eagains: 1, retries: 1, released: ['h'], waited: [], events: RETRIED },
  { holder: 'vmsplice', policy: 'preunmap', outcome: 'completed', eagains: 0, retries: 0, released: ['h'], waited: [], events: ['released:h', 'completed'] },
  { holder: 'vmsplice', policy: 'guest-retry', outcome: 'completed', eagains: 1, retries: 1, released: ['h'], waited: [], events: RETRIED },
  { holder: 'vmsplice', policy: 'stop', outcome: 'failed', eagains: 1, retries: 0, released: [], waited: [], events: STOPPED },

  // The kernel zaps the backend's PTEs itself (§1.10(b) step 4); only its I/O pin blocks, and
  // under retry the manager finds that I/O, not the backend, at error_offset.
  { holder: 'vhost-user', policy: 'retry', outcome: 'completed', eagains: 1, retries: 1, released: ['h'], waited: ['h'], events: RETRIED },
  { holder: 'vhost-user', policy: 'preunmap', outcome: 'completed', eagains: 0, retries: 0, released: ['h', 'vhost'], waited: ['h'], events: ['released:h', 'released:vhost', 'completed'] },
  { holder: 'vhost-user', policy: 'guest-retry', outcome: 'completed', eagains: 1, retries: 1, released: ['h'], waited: ['h'], events: RETRIED },
  { holder: 'vhost-user', policy: 'stop', outcome: 'failed', eagains: 1, retries: 0, released: [], waited: [], events: STOPPED },
];

function runCell(cell: Cell): void {
  const w = new World();
  const spec = HOLDERS[cell.holder];
  const h = spec.make(w);
  const events = recordEvents(w.us);
  const t = ran(w, w.us.mapGpaRange(w.vm, 0, 16 * K, 'private', POLICIES[cell.policy]!.policy));

  assert.deepEqual(summary(t), {
    phase: cell.outcome === 'completed' ? 'done' : 'failed', eagains: cell.eagains, retries: cell.retries,
    released: cell.released, waited: cell.waited, vmStopped: cell.policy === 'stop',
  });
  assert.deepEqual(events, cell.events, 'event sequence');
  if (cell.outcome === 'completed') {
    assert.equal(t.failure, undefined);
    assert.equal(w.attrs(), '0-16K private, 16-64K shared');
    const host = w.hostRead(w.ram + 4 * K, 1);
    assert.ok(!host.ok && 'signal' in host && host.signal === 'SIGBUS', 'a host read of the private page raises SIGBUS');
    assert.deepEqual(w.registered(w.fd, 0, 16 * K), [], 'the registry no longer lists the released holder');
    assert.equal(h.holding, false);
    assert.equal(h.state, spec.releasedState);
    spec.afterCompleted?.(w, h);
  } else {
    assert.ok(t.failure && 'errno' in t.failure && t.failure.errno === 'EAGAIN', `fails with EAGAIN, got ${JSON.stringify(t.failure)}`);
    assert.match(t.failure.why, /offset 4096.*stops the VM/);
    assert.equal(w.attrs(), '0-64K shared', 'the failed request changed no attribute');
    assert.ok(w.hostRead(w.ram + 4 * K, 1).ok, 'the page is still shared: the host reads it');
    assert.deepEqual(w.registered(w.fd, 4 * K, 4 * K), [h.id], 'the holder kept its references');
    assert.equal(h.holding, true);
    spec.afterStopped?.(w, h);
  }
  w.noViolations(`${cell.policy} × ${cell.holder}`);
  w.dispose();
}

test('the matrix covers every policy against every holder', () => {
  const seen = new Set(CELLS.map((c) => `${c.policy}/${c.holder}`));
  assert.equal(seen.size, CELLS.length, 'no duplicate cell');
  for (const p of Object.keys(POLICIES)) for (const h of Object.keys(HOLDERS)) assert.ok(seen.has(`${p}/${h}`), `missing ${p} × ${h}`);
});

for (const policy of Object.keys(POLICIES)) {
  describe(`policy ${policy}  [${POLICIES[policy]!.cite}]`, () => {
    for (const cell of CELLS.filter((c) => c.policy === policy)) {
      test(`${cell.holder}: ${cell.outcome}, eagains ${cell.eagains}, retries ${cell.retries}  [${HOLDERS[cell.holder].cite}]`, () => runCell(cell));
    }
  });
}
