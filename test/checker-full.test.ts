// The full model under the checker (issue: "gmemkit check verifies the default configuration of
// the full model and finds every mutant"): the engine explores the real Kernel, ModelBackend and
// Userspace code; each seeded bug is found breadth-first with a short trace, and the trace,
// written as a scenario, replays under `gmemkit run` with the same violation.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { check, checkLiveness } from '../src/checker/index.js';
import { FullModel } from '../src/checker/full/model.js';
import { MUTANTS } from '../src/checker/full/mutants.js';
import { counterexampleScenario } from '../src/checker/full/scenario-writer.js';
import { OWN_PROPERTIES, PROPERTIES, type FullConfig } from '../src/checker/full/world.js';
import { IPC_V8 } from '../src/model/profile.js';
import { parseScenario } from '../src/scenario/load.js';
import { formatHuman } from '../src/scenario/report.js';
import { runScenario } from '../src/scenario/run.js';
import { RETRY } from '../src/userspace/policies.js';

const policy = { ...RETRY, maxRetries: 2 };
const config = (over: Partial<FullConfig> = {}): FullConfig => ({
  pages: 2, holders: ['odirect', 'io_uring'], requests: 1, profile: IPC_V8, policy, fence: true, waitForIo: true, ...over,
});

test('the correct design (ipc-v8, retry, fence) holds every property: 1 page, O_DIRECT + VFIO, 1 request', () => {
  const r = check(new FullModel(config({ pages: 1, holders: ['odirect', 'vfio'] })));
  assert.equal(r.status, 'ok', JSON.stringify(r.counterexample, null, 1));
  assert.ok(r.states > 100 && r.edges > r.states);
});

test('two requests (private, then shared on purpose): the guest sharing its data is not a leak', () => {
  const r = check(new FullModel(config({ pages: 1, requests: 2 })));
  assert.equal(r.status, 'ok', JSON.stringify(r.counterexample, null, 1));
});

test('liveness: under weak fairness every guest request completes (1 page, O_DIRECT + io_uring)', () => {
  const r = checkLiveness(new FullModel(config({ pages: 1 })));
  assert.equal(r.status, 'ok', JSON.stringify(r.counterexample, null, 1));
  assert.equal(r.search, 'liveness');
});

// Expected shortest traces (BFS, so nothing shorter exists) on O_DIRECT + io_uring, 1 page (no-rollback
// needs 2: it converts part of a range): every mutant is caught by the one property it breaks.
const EXPECTED: Record<string, { pages: number; steps: number }> = {
  'no-refcount-check': { pages: 1, steps: 4 },
  'check-before-unmap': { pages: 1, steps: 4 },
  'no-rollback': { pages: 2, steps: 4 },
  'fault-accepts-private': { pages: 1, steps: 4 },
  'retry-without-waiting': { pages: 1, steps: 6 },
  'no-pin-fence': { pages: 1, steps: 8 },
  'punch-keeps-guest-mappings': { pages: 1, steps: 2 },
  'to-shared-blocks-on-pins': { pages: 1, steps: 4 },
  'punch-resets-attributes': { pages: 1, steps: 4 },
  'fault-skips-uptodate': { pages: 1, steps: 1 },
  'to-private-destroys-content': { pages: 1, steps: 4 },
  'allocate-misplaces-folio': { pages: 1, steps: 1 },
  'punch-drops-binding': { pages: 1, steps: 1 },
  'munmap-releases-file': { pages: 1, steps: 1 },
  'private-write-lost': { pages: 1, steps: 6 },
  'host-reads-private': { pages: 1, steps: 5 },
  'dma-reads-page-cache': { pages: 1, steps: 7 },
  'gup-ignores-no-direct-map': { pages: 1, steps: 1 },
  'no-host-zap': { pages: 1, steps: 4 },
};

// The hugetlb mutants need a HugeTLB world (2 pages in one huge page): test/checker-huge.test.ts.
for (const m of MUTANTS.filter((x) => !x.profile?.hugetlb)) {
  test(`mutant ${m.name} is caught by '${m.breaks}' with the shortest trace${m.plant ? '' : ', and the trace replays as a scenario'}`, () => {
    const want = EXPECTED[m.name]!;
    const cfg = config({ pages: want.pages, ...(m.profile ? { profile: m.profile } : {}), fence: m.fence ?? true, waitForIo: m.waitForIo ?? true, ...(m.plant ? { plant: m.plant } : {}) });
    const r = check(new FullModel(cfg));
    assert.equal(r.status, 'violation', `${m.name} was not caught`);
    const ce = r.counterexample!;
    assert.equal(ce.property, m.breaks, ce.message);
    assert.equal(ce.steps.length, want.steps, ce.steps.map((s) => s.text).join('\n'));
    if (m.plant) return; // a planted bug has no profile: `gmemkit run` cannot reproduce it
    const yaml = counterexampleScenario(cfg, ce.steps.map((s) => ({ process: s.process, action: s.action, params: s.params })), ce.property, ce.message);
    const [replay] = runScenario(parseScenario(yaml, `${m.name}.yaml`));
    assert.ok(replay!.passed, formatHuman(replay!));
    assert.ok(replay!.steps.slice(0, -1).every((s) => s.violations.length === 0), 'only the last step breaks something');
  });
}

test('no property is dead code: each one has a mutant that it catches', () => {
  // With one memslot a request is one ioctl, so a failed request that changed attributes is a failed
  // ioctl that did: I4 (kernel-semantics.md §3) reports it on the same edge, before the manager's check.
  const coincides = new Set<string>([OWN_PROPERTIES.failedChangesNothing]);
  const caught = new Set(MUTANTS.map((m) => m.breaks));
  assert.deepEqual(PROPERTIES.filter((p) => !caught.has(p) && !coincides.has(p)), []);
});

test('the planted punch bug of the audit: found on 1 page and on the default configuration', () => {
  const plant = MUTANTS.find((m) => m.name === 'punch-keeps-guest-mappings')!.plant!;
  for (const cfg of [config({ pages: 1, holders: ['odirect'], plant }), config({ holders: ['odirect'], plant })]) {
    const r = check(new FullModel(cfg));
    assert.equal(r.status, 'violation');
    assert.match(r.counterexample!.message, /^I8 .*guest maps a folio no longer in the file/);
  }
});

test('gmemkit check --model full on the command line: JSON, exit codes, the counterexample file replays', () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, ['bin/gmemkit.js', ...args], { encoding: 'utf8' });
  const ok = cli('check', '--model', 'full', '--pages', '1', '--json');
  assert.equal(ok.status, 0, ok.stderr);
  const j = JSON.parse(ok.stdout) as { status: string; states: number; edges: number };
  assert.equal(j.status, 'ok');
  assert.ok(j.states > 0 && j.edges > j.states);
  const dir = mkdtempSync(join(tmpdir(), 'gmemkit-'));
  try {
    const out = join(dir, 'cx.yaml');
    const bad = cli('check', '--model', 'full', '--mutant', 'no-rollback', '--out', out);
    assert.equal(bad.status, 1, bad.stderr);
    assert.match(bad.stdout, /VIOLATION[\s\S]*I4 a conversion changes the whole range or nothing[\s\S]* 1\. /);
    const replay = cli('run', out);
    assert.equal(replay.status, 0, replay.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const usage = cli('check', '--model', 'full', '--mutant', 'nope');
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /--mutant must be one of no-refcount-check, /);
});
