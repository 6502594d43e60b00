// Liveness of the conversion manager under interleavings (issue: "for any interleaving of holder
// operations and guest requests, a cooperative VMM completes every request and no invariant
// breaks; without the pin fence the same property finds the livelock"). The livelock is the
// one SPIN finds in the reference protocol (docs/checker.md §4.3, COOP=0): the
// O_DIRECT user re-pins the page each time its I/O completes, before the manager retries.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ModelBackend } from '../src/backend/model-backend.js';
import { GMEM_FLAGS, MAP_FLAGS, PROT, VM_TYPES } from '../src/model/abi.js';
import { IoUringBuffers, ODirectIo, VfioDmaMapping, type Holder } from '../src/userspace/holders.js';
import type { ConversionTask } from '../src/userspace/manager.js';
import { PREUNMAP, RETRY, type Policy } from '../src/userspace/policies.js';
import { Userspace } from '../src/userspace/userspace.js';

const PAGE = 4096;
const PAGES = 4;

/** Who goes next when several actors are enabled. */
type Schedule = { kind: 'adversary-first' } | { kind: 'random'; picks: number[] };

interface World { us: Userspace; backend: ModelBackend; vm: number; ram: number }

function world(fence: boolean): World {
  const backend = new ModelBackend({ checkInvariants: true });
  const us = new Userspace(backend, { fence });
  const b = us.backend;
  const vm = (b.createVm(VM_TYPES.sw_protected) as { value: number }).value;
  const gmem = (b.createGuestMemfd(vm, PAGES * PAGE, GMEM_FLAGS.MMAP | GMEM_FLAGS.INIT_SHARED) as { value: number }).value;
  assert.ok(b.setUserMemoryRegion2(vm, { slot: 0, flags: 4n, guest_phys_addr: 0, memory_size: PAGES * PAGE, userspace_addr: 0, guest_memfd: gmem, guest_memfd_offset: 0 }).ok);
  const ram = (b.mmap({ fd: gmem, offset: 0, length: PAGES * PAGE, prot: PROT.READ | PROT.WRITE, flags: MAP_FLAGS.SHARED }) as { value: number }).value;
  return { us, backend, vm, ram };
}

/**
 * One guest request to make every page private, raced by a user that keeps an O_DIRECT read in
 * flight on page 0: whenever its I/O completes it submits the next one. Returns the task.
 */
function raceRepinningUser(fence: boolean, schedule: Schedule, policy: Policy = RETRY): { task: ConversionTask; violations: string[] } {
  const { us, backend, vm, ram } = world(fence);
  const first = us.odirect(ram, PAGE, 'read');
  let io: ODirectIo | undefined = first.ok ? first.value : undefined;
  const t = us.mapGpaRangeTask(vm, 0, PAGES * PAGE, 'private', policy);
  assert.ok(t.ok);
  const task = t.value;
  const violations: string[] = [];
  const user = { enabled: () => !io || io.state === 'completed', act: () => { const r = us.odirect(ram, PAGE, 'read'); io = r.ok ? r.value : undefined; } };
  const device = { enabled: () => io?.state === 'in-flight', act: () => { io!.complete(); } };
  const manager = { enabled: () => !task.terminal, act: () => us.manager.step(task) };
  // Weak fairness: after the schedule's own choices, every enabled actor gets its turn in
  // rotation. The adversary re-pins whenever it can; the others still take turns.
  let turn = 0;
  for (let n = 0; n < 2000 && !task.terminal; n++) {
    const enabled = [user, device, manager].filter((a) => a.enabled());
    let actor;
    if (schedule.kind === 'adversary-first' && user.enabled()) actor = user;
    else if (schedule.kind === 'random' && n < schedule.picks.length) actor = enabled[schedule.picks[n]! % enabled.length]!;
    else {
      const others = schedule.kind === 'adversary-first' ? enabled.filter((a) => a !== user) : enabled;
      actor = others[turn++ % others.length]!;
    }
    actor.act();
    violations.push(...backend.takeViolations().map((v) => `${v.invariant}: ${v.detail}`));
  }
  return { task, violations };
}

const schedules: fc.Arbitrary<Schedule> = fc.oneof(
  fc.constant<Schedule>({ kind: 'adversary-first' }),
  fc.array(fc.nat(5), { minLength: 1, maxLength: 64 }).map((picks): Schedule => ({ kind: 'random', picks })),
);

test('with the pin fence, every interleaving with a re-pinning O_DIRECT user completes the request', () => {
  fc.assert(fc.property(schedules, (s) => {
    const { task, violations } = raceRepinningUser(true, s);
    assert.deepEqual(violations, []);
    assert.equal(task.phase, 'done', `request ended ${task.phase}: ${task.failure && 'why' in task.failure ? task.failure.why : ''}`);
  }), { numRuns: 200 });
});

test('without the pin fence, the same property finds the livelock (expected failure)', () => {
  const out = fc.check(fc.property(schedules, (s) => raceRepinningUser(false, s).task.phase === 'done'), { numRuns: 200, seed: 42 });
  assert.equal(out.failed, true, 'the livelock was not found');
  // The counterexample is the schedule in which the user always re-pins before the manager retries.
  const [schedule] = out.counterexample!;
  const { task } = raceRepinningUser(false, schedule);
  assert.equal(task.phase, 'failed');
  assert.match(task.failure && 'why' in task.failure ? task.failure.why : '', /gave up after 8 retries: offset 0 is still blocked/);
  assert.equal(task.eagains, RETRY.maxRetries + 1);
  assert.ok(task.waited.length >= RETRY.maxRetries, 'each retry waited for an I/O that completed, and the user re-pinned');
});

/** Operations a user of the holders may do at any time. */
type UserOp =
  | { op: 'register'; page: number } | { op: 'unregister'; k: number }
  | { op: 'map'; page: number } | { op: 'unmap'; k: number }
  | { op: 'odirect'; page: number } | { op: 'complete'; k: number }
  | { op: 'request'; page: number; pages: number; to: 'private' | 'shared' }
  | { op: 'manager' };

const userOps: fc.Arbitrary<UserOp> = fc.oneof(
  fc.record({ op: fc.constant('register' as const), page: fc.nat(PAGES - 1) }),
  fc.record({ op: fc.constant('unregister' as const), k: fc.nat(7) }),
  fc.record({ op: fc.constant('map' as const), page: fc.nat(PAGES - 1) }),
  fc.record({ op: fc.constant('unmap' as const), k: fc.nat(7) }),
  fc.record({ op: fc.constant('odirect' as const), page: fc.nat(PAGES - 1) }),
  fc.record({ op: fc.constant('complete' as const), k: fc.nat(7) }),
  fc.record({ op: fc.constant('request' as const), page: fc.nat(PAGES - 1), pages: fc.integer({ min: 1, max: PAGES }), to: fc.constantFrom('private' as const, 'shared' as const) }),
  fc.constant({ op: 'manager' as const }),
);

test('any interleaving of holder operations and guest requests: a cooperative VMM completes every request, no invariant breaks', () => {
  fc.assert(fc.property(fc.array(userOps, { maxLength: 60 }), fc.constantFrom(RETRY, PREUNMAP), (ops, policy) => {
    const { us, backend, vm, ram } = world(true);
    const holders: Holder[] = [];
    const tasks: ConversionTask[] = [];
    let current: ConversionTask | undefined;
    const nth = <T extends Holder>(k: number, kind: new (...a: never[]) => T): T | undefined => holders.filter((h): h is T => h instanceof kind && h.holding)[k];
    for (const o of ops) {
      switch (o.op) {
        case 'register': { const r = us.ioUringRegisterBuffers(ram + o.page * PAGE, PAGE); if (r.ok) holders.push(r.value); break; }
        case 'unregister': nth(o.k, IoUringBuffers)?.close(); break;
        case 'map': { const r = us.vfioDmaMap(ram + o.page * PAGE, PAGE, BigInt(o.page * PAGE)); if (r.ok) holders.push(r.value); break; }
        case 'unmap': nth(o.k, VfioDmaMapping)?.close(); break;
        case 'odirect': { const r = us.odirect(ram + o.page * PAGE, PAGE, 'read'); if (r.ok) holders.push(r.value); break; }
        case 'complete': { const io = holders.filter((h): h is ODirectIo => h instanceof ODirectIo && h.state === 'in-flight')[o.k]; io?.complete(); break; }
        case 'request': {
          if (current && !current.terminal) break; // one outstanding request: the vCPU waits for it
          const size = Math.min(o.pages, PAGES - o.page) * PAGE;
          const t = us.mapGpaRangeTask(vm, o.page * PAGE, size, o.to, policy);
          assert.ok(t.ok);
          current = t.value;
          tasks.push(current);
          break;
        }
        case 'manager': if (current && !current.terminal) us.manager.step(current); break;
      }
      assert.deepEqual(backend.takeViolations().map((v) => `${v.invariant}: ${v.detail}`), []);
    }
    // Afterwards the environment is cooperative (weak fairness): the device completes what the
    // manager waits for, and the manager keeps stepping.
    if (current && !current.terminal) us.manager.run(current, { complete: (io) => { (io as ODirectIo).complete(); } });
    assert.deepEqual(backend.takeViolations().map((v) => `${v.invariant}: ${v.detail}`), []);
    for (const t of tasks) assert.equal(t.phase, 'done', `request ${t.request.id} ended ${t.phase}: ${t.failure && 'why' in t.failure ? t.failure.why : ''}`);
  }), { numRuns: 150 });
});
