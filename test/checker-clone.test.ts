// The full model's world clone (issue "Sound verdicts", "Then fast": worlds cloned, no replay
// from the root): a clone behaves exactly as the world it was taken from, so the search over
// clones finds the same states, edges and counterexamples as the search that rebuilds every
// successor by replaying its path; and using a clone leaves the original untouched.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { check } from '../src/checker/index.js';
import { FullModel } from '../src/checker/full/model.js';
import { findMutant } from '../src/checker/full/mutants.js';
import { World, type Action, type FullConfig } from '../src/checker/full/world.js';
import { IPC_V8 } from '../src/model/profile.js';
import { RETRY } from '../src/userspace/policies.js';
import { mulberry32 } from '../src/workload/rng.js';

const config = (over: Partial<FullConfig> = {}): FullConfig => ({
  pages: 2, holders: ['odirect', 'io_uring'], requests: 2, profile: IPC_V8, policy: { ...RETRY, maxRetries: 2 }, fence: true, waitForIo: true, ...over,
});

const replay = (cfg: FullConfig, path: readonly Action[]): World => {
  const w = new World(cfg);
  for (const a of path) w.apply(a);
  return w;
};

for (const [name, cfg] of [
  ['O_DIRECT + io_uring, 2 requests', config()],
  ['O_DIRECT + VFIO, tdx', config({ holders: ['odirect', 'vfio'], vmType: 'tdx' })],
  // A planted bug is an own method of the kernel, bound to it: the clone must plant it on itself.
  ['planted punch-keeps-guest-mappings', config({ plant: findMutant('punch-keeps-guest-mappings')!.plant! })],
  ['planted private-write-lost', config({ plant: findMutant('private-write-lost')!.plant! })],
] as const) {
  test(`a clone behaves as a replay of the same path, and leaves its original untouched (${name})`, () => {
    const rnd = mulberry32(11);
    let steps = 0;
    for (let walk = 0; walk < 8; walk++) {
      let w = new World(cfg);
      const path: Action[] = [];
      for (let i = 0; i < 10; i++) {
        const before = w.encode();
        for (const a of w.enabled()) {
          const c = w.clone();
          c.apply(a);
          const r = replay(cfg, [...path, a]);
          assert.equal(c.outcome, r.outcome, JSON.stringify([...path, a]));
          assert.deepEqual(c.violations, r.violations, JSON.stringify([...path, a]));
          assert.equal(c.encode(), r.encode(), JSON.stringify([...path, a]));
          steps++;
        }
        assert.equal(w.encode(), before, 'applying actions to clones changed the original');
        const en = w.enabled();
        const a = en[Math.floor(rnd() * en.length)]!;
        const next = w.clone();
        next.apply(a);
        path.push(a);
        w = next;
      }
    }
    assert.ok(steps > 500);
  });
}

test('the search over clones and the search by replay agree: states, edges, depth (1 page, O_DIRECT)', () => {
  const cfg = config({ pages: 1, holders: ['odirect'], requests: 1 });
  const a = check(new FullModel(cfg, 'clone'));
  const b = check(new FullModel(cfg, 'replay'));
  assert.equal(a.status, 'ok');
  assert.deepEqual([a.states, a.edges, a.maxDepth], [b.states, b.edges, b.maxDepth]);
});

test('the search over clones and the search by replay find the same counterexample (planted punch bug)', () => {
  const m = findMutant('punch-keeps-guest-mappings')!;
  const cfg = config({ pages: 1, holders: ['odirect'], requests: 1, plant: m.plant! });
  const a = check(new FullModel(cfg, 'clone'));
  const b = check(new FullModel(cfg, 'replay'));
  assert.equal(a.status, 'violation');
  assert.deepEqual(a.counterexample, b.counterexample);
  assert.deepEqual([a.states, a.edges], [b.states, b.edges]);
});
