// The full-model checker on NO_DIRECT_MAP memory (profile no-direct-map, direct-map removal v12:
// kernel-semantics.md §1.11 [DMR], a posted series, not merged): the checked world creates its
// guest_memfd with GUEST_MEMFD_FLAG_NO_DIRECT_MAP because the profile offers it for the VM type,
// every holder falls back to a bounce buffer, no guest_memfd folio is ever pinned and no
// conversion is ever blocked; the search finds no violation, and the two properties that say so
// each catch a seeded bug.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { check } from '../src/checker/index.js';
import { FullModel, type FullState } from '../src/checker/full/model.js';
import { findMutant } from '../src/checker/full/mutants.js';
import { counterexampleScenario } from '../src/checker/full/scenario-writer.js';
import { OWN_PROPERTIES, World, type Action, type FullConfig } from '../src/checker/full/world.js';
import { GMEM_FLAGS } from '../src/model/abi.js';
import { NEXT_7_4, NO_DIRECT_MAP } from '../src/model/profile.js';
import { RETRY } from '../src/userspace/policies.js';

const S111 = 'kernel-semantics.md §1.11 [DMR]';
const config = (over: Partial<FullConfig> = {}): FullConfig => ({
  pages: 1, holders: ['odirect', 'io_uring', 'vfio'], requests: 1, profile: NO_DIRECT_MAP, policy: { ...RETRY, maxRetries: 2 }, fence: true, waitForIo: true, ...over,
});
const ndm = (w: World) => (w.inode.flags & GMEM_FLAGS.NO_DIRECT_MAP) !== 0n;

/** The full model, counting over every world the search reaches the holders that bounced and those that pinned guest memory. */
class CountingModel extends FullModel {
  bounced = 0;
  pinned = 0;
  worlds = 0;
  override successors(s: FullState, emit: (label: Action, next: FullState) => void): void {
    super.successors(s, (a, next) => {
      const w = next.world!;
      this.worlds++;
      for (const slot of w.slots) {
        if (slot.holder?.holding && slot.holder.bounced) this.bounced++;
        if (slot.holder?.holding && !slot.holder.bounced) this.pinned++;
        if (slot.racePin !== undefined) this.pinned++;
      }
      emit(a, next);
    });
  }
}

test(`the world's guest_memfd is NO_DIRECT_MAP where the profile offers it, and only there  [${S111}, §5.2]`, () => {
  assert.ok(ndm(new World(config())), 'no-direct-map, sw_protected');
  assert.ok(ndm(new World(config({ vmType: 'snp' }))), 'no-direct-map, snp');
  assert.ok(!ndm(new World(config({ profile: NEXT_7_4 }))), 'next-7.4 has no such flag');
});

test(`each holder kind bounces in the checked world: no pin on guest memory, the data moves by copies  [${S111}]`, () => {
  const w = new World(config());
  const ok = (a: Action) => { w.apply(a); assert.deepEqual(w.violations, [], JSON.stringify(a)); };
  ok({ who: 'guest', what: 'write', page: 0 });
  for (let h = 0; h < 3; h++) ok({ who: 'holder', h, what: 'pin', page: 0 });
  assert.deepEqual(w.slots.map((s) => s.holder?.bounced), [true, true, true]);
  ok({ who: 'holder', h: 0, what: 'complete' }); // the O_DIRECT read lands in guest memory by a copy
  ok({ who: 'holder', h: 1, what: 'dma-write' });
  ok({ who: 'holder', h: 2, what: 'dma-read' });
  assert.deepEqual(w.slots.map((s) => s.holder!.copies), [1, 1, 1]);
  assert.equal(w.backend.kernel.state.folios.find(0, Number.MAX_SAFE_INTEGER, (f) => f.ino === w.inode.ino && f.pinsShort + f.pinsLong > 0), undefined);
  // Contrast: the same holders pin under next-7.4.
  const pinned = new World(config({ profile: NEXT_7_4 }));
  for (let h = 0; h < 3; h++) pinned.apply({ who: 'holder', h, what: 'pin', page: 0 });
  assert.deepEqual(pinned.slots.map((s) => s.holder?.bounced), [false, false, false]);
});

test(`check --profile no-direct-map (1 page, io_uring; O_DIRECT on the command line below): no violation, holders bounced in the states reached, none pinned  [${S111}]`, () => {
  const m = new CountingModel(config({ holders: ['io_uring'] }));
  const r = check(m);
  assert.equal(r.status, 'ok', JSON.stringify(r.counterexample, null, 1));
  assert.ok(r.states > 100 && r.edges > r.states);
  assert.ok(m.bounced > 0, 'some reached world holds a bounce buffer');
  assert.equal(m.pinned, 0, 'no reached world holds a pin on guest memory');
});

test(`the two NO_DIRECT_MAP properties catch their seeded bugs, and the scenario creates the guest_memfd NO_DIRECT_MAP  [${S111}]`, () => {
  for (const [name, property] of [['gup-ignores-no-direct-map', OWN_PROPERTIES.noDirectMapUnpinned], ['no-host-zap', OWN_PROPERTIES.noDirectMapUnblocked]] as const) {
    const mu = findMutant(name)!;
    const cfg = config({ holders: ['odirect', 'io_uring'], profile: mu.profile!, ...(mu.plant ? { plant: mu.plant } : {}) });
    const r = check(new FullModel(cfg));
    assert.equal(r.status, 'violation', name);
    assert.equal(r.counterexample!.property, property, r.counterexample!.message);
    const yaml = counterexampleScenario(cfg, r.counterexample!.steps.map((s) => ({ process: s.process, action: s.action, params: s.params })), property, r.counterexample!.message);
    assert.match(yaml, /op: create_guest_memfd[\s\S]*?- NO_DIRECT_MAP/, name);
  }
});

test('gmemkit check --model full --profile no-direct-map: runs on the command line; a TDX VM is refused with exit 2', () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, ['bin/gmemkit.js', 'check', '--model', 'full', '--profile', 'no-direct-map', '--pages', '1', ...args], { encoding: 'utf8' });
  const ok = cli('--json');
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal((JSON.parse(ok.stdout) as { status: string }).status, 'ok');
  const tdx = cli('--vm-type', 'tdx');
  assert.equal(tdx.status, 2);
  assert.match(tdx.stderr, /--vm-type tdx: profile no-direct-map offers NO_DIRECT_MAP only for default, sw_protected, snp VMs/);
});
