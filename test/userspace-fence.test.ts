// Liveness of the conversion manager under interleavings (issue: "for any interleaving of holder
// operations and guest requests, a cooperative VMM completes every request and no invariant
// breaks; without the pin fence the same property finds the livelock"). The livelock is the
// one SPIN finds in the reference protocol (docs/checker.md §4.3, COOP=0): the
// O_DIRECT user re-pins the page each time its I/O completes, before the manager retries.
// The schedules are random: a weight per actor (the bias, drawn by the generator like the rest)
// and one uniform draw per step choosing among the enabled actors; nothing favours the user.
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

/** Steps the schedule's draws decide; after them every enabled actor takes turns (weak fairness). */
const HORIZON = 256;
/** Resolution of one draw: a step picks actor k with probability weight[k] / (sum over the enabled). */
const DRAW = 65536;

/**
 * A random interleaving of the user, the device and the manager: `weights` (1..16 each) is the
 * bias, `draws` one uniform number per step in [0, DRAW).
 */
interface Schedule { readonly weights: readonly [number, number, number]; readonly draws: readonly number[] }

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
  const actors = [user, device, manager];
  let turn = 0;
  for (let n = 0; n < 2000 && !task.terminal; n++) {
    const enabled = actors.filter((a) => a.enabled());
    let actor = enabled[turn++ % enabled.length]!;
    if (n < schedule.draws.length) {
      const weights = enabled.map((a) => schedule.weights[actors.indexOf(a)]!);
      let r = (schedule.draws[n]! / DRAW) * weights.reduce((x, y) => x + y, 0);
      let k = 0;
      while (k < weights.length - 1 && r >= weights[k]!) r -= weights[k++]!;
      actor = enabled[k]!;
    }
    actor.act();
    violations.push(...backend.takeViolations().map((v) => `${v.invariant}: ${v.detail}`));
  }
  return { task, violations };
}

// noBias: uniform weights and draws (fast-check's default bias towards small values would
// make draw 0, the first enabled actor, the user, more likely).
const weight = fc.noBias(fc.integer({ min: 1, max: 16 }));
const schedules: fc.Arbitrary<Schedule> = fc.record({
  weights: fc.tuple(weight, weight, weight),
  draws: fc.array(fc.noBias(fc.integer({ min: 0, max: DRAW - 1 })), { minLength: HORIZON, maxLength: HORIZON }),
});

test('with the pin fence, every interleaving with a re-pinning O_DIRECT user completes the request', () => {
  fc.assert(fc.property(schedules, (s) => {
    const { task, violations } = raceRepinningUser(true, s);
    assert.deepEqual(violations, []);
    assert.equal(task.phase, 'done', `request ended ${task.phase}: ${task.failure && 'why' in task.failure ? task.failure.why : ''}`);
  }), { numRuns: 300, seed: 42 });
});

// With fast-check 4.10 and seeds 1..200 the livelock was found within at most 158 runs (the
// seed pinned here: the run the diagnostic reports); 300 runs leave room for that.
test('without the pin fence, the same property finds the livelock (expected failure)', (t) => {
  const out = fc.check(fc.property(schedules, (s) => raceRepinningUser(false, s).task.phase === 'done'), { numRuns: 300, seed: 42 });
  assert.equal(out.failed, true, 'the livelock was not found in 300 random schedules');
  t.diagnostic(`seed 42: the livelock found at run ${out.numRuns} of 300 (shrunk ${out.numShrinks} times)`);
  // The counterexample: each time the I/O completes, the user re-pins before the manager retries.
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
