// The full model's canonical encoding (issue "Sound verdicts", "Sound first"): derived from the
// whole world, so state the old hand-picked encoding left out (the guest's SPTEs) is in it; its
// one abstraction of ids keeps worlds that differ only by id numbering together; and it is
// complete: for random reachable worlds, equal encodings mean equal behaviour of every enabled
// action (same outcome, same violations, same successor encoding).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { findMutant } from '../src/checker/full/mutants.js';
import { World, type Action, type FullConfig } from '../src/checker/full/world.js';
import { IPC_V8 } from '../src/model/profile.js';
import { RETRY } from '../src/userspace/policies.js';
import { mulberry32 } from '../src/workload/rng.js';

const config = (over: Partial<FullConfig> = {}): FullConfig => ({
  pages: 2, holders: ['odirect', 'io_uring'], requests: 2, profile: IPC_V8, policy: { ...RETRY, maxRetries: 2 }, fence: true, waitForIo: true, ...over,
});
const world = (cfg: FullConfig, path: readonly Action[]): World => {
  const w = new World(cfg);
  for (const a of path) w.apply(a);
  return w;
};
const hostRead = (page: number): Action => ({ who: 'host', what: 'read', page });
const guestRead = (page: number): Action => ({ who: 'guest', what: 'read', page });

test('the guest mapping (SPTE) is state: a guest read that maps the page changes the encoding', () => {
  const cfg = config();
  assert.notEqual(world(cfg, [hostRead(0)]).encode(), world(cfg, [hostRead(0), guestRead(0)]).encode());
});

test('ids are renamed: faulting page 0 then 1 or 1 then 0 (different folio ids) is one state', () => {
  const cfg = config();
  assert.equal(world(cfg, [hostRead(0), hostRead(1)]).encode(), world(cfg, [hostRead(1), hostRead(0)]).encode());
});

/** Everything an action does, seen from outside: its outcome, its violations, the successor. */
function behaviour(cfg: FullConfig, path: readonly Action[]): string[] {
  const here = world(cfg, path);
  return here.enabled().map((a) => {
    const w = world(cfg, path);
    w.apply(a);
    return `${JSON.stringify(a)} -> ${w.outcome} [${w.violations.map((v) => v.property).join(', ')}] ${w.encode()}`;
  });
}

for (const [name, cfg] of [
  ['ipc-v8, O_DIRECT + io_uring, 2 requests', config()],
  ['O_DIRECT + VFIO, tdx (content destroyed)', config({ holders: ['odirect', 'vfio'], vmType: 'tdx' })],
  // With stale guest mappings the SPTEs decide what the guest reads: a test of their encoding.
  ['planted punch-keeps-guest-mappings', config({ plant: findMutant('punch-keeps-guest-mappings')!.plant! })],
] as const) {
  test(`completeness (${name}): random reachable worlds with equal encodings behave the same`, () => {
    const rnd = mulberry32(7);
    const firstPath = new Map<string, Action[]>();
    let compared = 0;
    for (let walk = 0; walk < 300 && compared < 40; walk++) {
      const w = new World(cfg);
      const path: Action[] = [];
      const len = 1 + Math.floor(rnd() * 12);
      for (let i = 0; i < len; i++) {
        const en = w.enabled();
        const a = en[Math.floor(rnd() * en.length)]!;
        w.apply(a);
        path.push(a);
        const e = w.encode();
        const other = firstPath.get(e);
        if (!other) { firstPath.set(e, [...path]); continue; }
        if (JSON.stringify(other) === JSON.stringify(path)) continue;
        compared++;
        assert.deepEqual(behaviour(cfg, path), behaviour(cfg, other), `paths\n${JSON.stringify(path)}\n${JSON.stringify(other)}\nshare an encoding but behave differently`);
      }
    }
    assert.ok(compared >= 20, `only ${compared} pairs of different paths met in one encoding`);
  });
}

test('completeness on the pair the old encoding merged: a punched page with and without a stale guest mapping', () => {
  const cfg = config({ plant: findMutant('punch-keeps-guest-mappings')!.plant! });
  const punch: Action = { who: 'host', what: 'punch', page: 0 };
  const a = [guestRead(0), punch];
  const b = [punch];
  // Either they are told apart, or they must behave alike; with the SPTEs in the encoding they are told apart.
  assert.notEqual(world(cfg, a).encode(), world(cfg, b).encode());
  assert.notDeepEqual(behaviour(cfg, a), behaviour(cfg, b));
});
