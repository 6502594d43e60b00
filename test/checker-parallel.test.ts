// The parallel search (issue "Sound verdicts": both cores) against the sequential one, and the
// all-violations mode ("every violation found is reported with its shortest trace"): for the
// reference protocol (docs/checker.md §3; counts = SPIN's, §4.1), the full model (§2) and
// small object models, parallel == sequential in states, edges, depth and verdict; a
// violation has a counterexample of the same length; each violated property is reported once.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { check } from '../src/checker/engine.js';
import { FullModel } from '../src/checker/full/model.js';
import { fullSpec, makeFullModel, type FullSpec } from '../src/checker/full/spec.js';
import { checkParallel } from '../src/checker/parallel.js';
import { ReferenceModel } from '../src/checker/reference/model.js';
import { referenceParams, type ReferenceParams } from '../src/checker/reference/params.js';
import { referenceSpec } from '../src/checker/reference/spec.js';
import type { CheckResult, Counterexample } from '../src/checker/types.js';
import { gridSpec, makeGrid } from './parallel-models.js';

const counts = (r: CheckResult) => ({ status: r.status, states: r.states, edges: r.edges, maxDepth: r.maxDepth });
const lengths = (ces: readonly Counterexample[] | undefined) => (ces ?? []).map((c) => `${c.property}: ${c.steps.length}`).sort();

describe('parallel search: the reference protocol (docs/checker.md §4.1 counts)', () => {
  const configs: [string, Partial<ReferenceParams>][] = [
    ['(2,1,1), SPIN 963 states', { pages: 2, holders: 1, requests: 1 }],
    ['(3,2,2), SPIN 142,435 states', { pages: 3, holders: 2, requests: 2 }],
    ['(2,3,2) COOP', { pages: 2, holders: 3, requests: 2, coop: true }],
    ['(2,3,2) symmetry', { pages: 2, holders: 3, requests: 2, symmetry: true }],
  ];
  for (const [name, p] of configs) {
    for (const workers of name.startsWith('(3,2,2)') ? [2] : [2, 3]) {
      it(`${name}, ${workers} workers: the sequential counts`, async () => {
        const params = referenceParams(p);
        const seq = check(new ReferenceModel(params));
        const par = await checkParallel(referenceSpec(params), { workers });
        assert.equal(seq.status, 'ok');
        assert.deepEqual(counts(par), counts(seq));
        assert.equal(par.workers, workers);
      });
    }
  }
  // docs/checker.md §4.2: bugs 1-4 have shortest counterexamples of 4, 5, 4, 4 steps (N=2, H=2, C=2 here).
  for (const bug of [1, 2, 3, 4]) {
    it(`bug ${bug}: a violation with a counterexample as short as the sequential one, of a property that has one that short`, async () => {
      const params = referenceParams({ pages: 2, bug });
      const seq = check(new ReferenceModel(params));
      const every = check(new ReferenceModel(params), { allViolations: true });
      const par = await checkParallel(referenceSpec(params), { workers: 2 });
      assert.equal(par.status, 'violation');
      const ce = par.counterexample!;
      assert.equal(ce.steps.length, seq.counterexample!.steps.length);
      assert.ok(every.violations!.some((v) => v.property === ce.property && v.steps.length === ce.steps.length), ce.property);
    });
  }
  it('all violations (bug 4 FAULTPRIV, N=2): the same properties with the same lengths as the sequential search', async () => {
    const params = referenceParams({ pages: 2, bug: 4 });
    const seq = check(new ReferenceModel(params), { allViolations: true });
    const par = await checkParallel(referenceSpec(params), { workers: 2, allViolations: true });
    assert.deepEqual(counts(par), counts(seq));
    assert.deepEqual(lengths(par.violations), lengths(seq.violations));
    assert.ok(seq.violations!.length >= 3, lengths(seq.violations).join(', '));
  });
  it('the memory limit stops every worker: incomplete, with the statistics so far', async () => {
    const r = await checkParallel(referenceSpec(referenceParams()), { workers: 2, maxMemoryMB: 1 });
    assert.equal(r.status, 'incomplete');
    assert.ok(r.states > 0 && r.states < 142435);
    assert.match(r.stopReason ?? '', /^memory limit of 1 MB reached .* over 2 workers\): stopped after \d+ states/);
  });
  it('reports progress (summed over the workers, growing)', async () => {
    const seen: number[] = [];
    await checkParallel(referenceSpec(referenceParams({ pages: 2 })), { workers: 2, progressIntervalMs: 0, onProgress: (p) => seen.push(p.states) });
    assert.ok(seen.length > 5, `${seen.length} reports`);
    assert.ok(seen.every((s, i) => i === 0 || s >= seen[i - 1]!));
    assert.ok(seen[seen.length - 1]! <= 6381);
  });
});

describe('all-violations mode on a grid (states, edges and shortest traces worked out by hand)', () => {
  // 5x5 grid: the step 'down from (0,2)' fails and is not followed, so (0,3) and (0,4) are never
  // reached: 23 states; edges: 9 in column 0, 3 x 14 in columns 1-3, 9 in column 4 = 60.
  const expected = ['no step down from (0,2): 3', 'not at (3,0): 2'];
  it('sequential', () => {
    const r = check(makeGrid({ size: 5, properties: true }), { allViolations: true });
    assert.deepEqual(counts(r), { status: 'violation', states: 23, edges: 60, maxDepth: 7 });
    assert.deepEqual(lengths(r.violations), expected);
    assert.equal(r.counterexample, r.violations![0]);
    const inv = r.violations!.find((v) => v.kind === 'invariant')!;
    assert.deepEqual(inv.steps.map((s) => s.text), ['p: right(x=2)', 'p: right(x=3)']);
  });
  for (const workers of [2, 3]) {
    it(`${workers} workers (states sent by structured clone, two equal initial states)`, async () => {
      const r = await checkParallel(gridSpec(5, true), { workers, allViolations: true });
      assert.deepEqual(counts(r), { status: 'violation', states: 23, edges: 60, maxDepth: 7 });
      assert.deepEqual(lengths(r.violations), expected);
      const ok = await checkParallel(gridSpec(5, false), { workers });
      assert.deepEqual(counts(ok), counts(check(makeGrid({ size: 5, properties: false }))));
      assert.equal(ok.states, 25);
    });
  }
});

describe('parallel search: the full model (docs/checker.md §2)', () => {
  const spec = (over: Partial<FullSpec>): FullSpec => ({
    vmType: 'sw_protected', pages: 1, holders: [], requests: 1, profile: 'ipc-v8', policy: 'retry', maxRetries: 2, ...over,
  });
  const configs: [string, FullSpec][] = [
    ['1 page, no holder', spec({})],
    // Each worker meets the encoding's shapes in its own order: the keys must not depend on it.
    ['1 page, tdx, 2 requests', spec({ vmType: 'tdx', requests: 2 })],
    ['1 page, snp, next-7.4', spec({ vmType: 'snp', profile: 'next-7.4' })],
  ];
  for (const [name, s] of configs) {
    it(`${name}: the sequential counts on 2 workers`, async () => {
      const seq = check(new FullModel(makeFullModel(s).config));
      const par = await checkParallel(fullSpec(s), { workers: 2 });
      assert.equal(seq.status, 'ok');
      assert.deepEqual(counts(par), counts(seq));
    });
  }
  it('a state sent as its path is rebuilt with the encoding its sender had', () => {
    const m = makeFullModel(spec({ holders: ['io_uring'] }));
    let frontier = m.initialStates();
    for (let depth = 0; depth < 3; depth++) {
      const next: typeof frontier = [];
      for (const s of frontier) m.successors(s, (_a, t) => { next.push(t); });
      for (const t of next) assert.equal(m.unpack(m.pack(t), t.enc!).world!.encode(), t.enc);
      frontier = next.slice(0, 12);
    }
  });
  it('mutant punch-keeps-guest-mappings: found on 2 workers, I8 in 2 steps as sequentially (the trace may be another of that length)', async () => {
    const s = spec({ mutant: 'punch-keeps-guest-mappings' });
    const par = await checkParallel(fullSpec(s), { workers: 2 });
    const seq = check(makeFullModel(s));
    assert.equal(par.status, 'violation');
    assert.equal(par.counterexample!.property, seq.counterexample!.property);
    assert.equal(par.counterexample!.steps.length, 2);
    assert.equal(seq.counterexample!.steps.length, 2);
    assert.equal(par.counterexample!.steps[1]!.text, 'host: punch(page=0)');
  });
  it('mutant fault-accepts-private breaks three properties: each reported once, shortest, sequential and parallel alike', async () => {
    const s = spec({ mutant: 'fault-accepts-private' });
    const seq = check(makeFullModel(s), { allViolations: true });
    const par = await checkParallel(fullSpec(s), { workers: 2, allViolations: true });
    assert.deepEqual(lengths(seq.violations), [
      'I1 no host userspace mapping of private memory: 4',
      'I2 a private page carries no reference besides the page cache: 4',
      'the host never observes guest-private data: 5',
    ]);
    assert.deepEqual(lengths(par.violations), lengths(seq.violations));
    assert.deepEqual(counts(par), counts(seq));
  });
});

/** `gmemkit check ARGS` in a child process (the parallel search awaits, so stdout is not swapped here). */
function runCheck(argv: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, ['bin/gmemkit.js', 'check', ...argv], { encoding: 'utf8' });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

describe('gmemkit check --workers, --all-violations', () => {
  const bad: [string[], RegExp][] = [
    [['--workers', '0'], /--workers must be an integer in 1\.\.64 \(got '0'\)/],
    [['--workers', 'two'], /--workers must be an integer in 1\.\.64 \(got 'two'\)/],
    [['--workers', '2', '--dfs'], /--workers 2 and --dfs cannot be combined/],
    [['--workers', '2', '--liveness'], /--workers 2 and --liveness cannot be combined/],
    [['--all-violations', '--dfs'], /--all-violations and --dfs cannot be combined/],
    [['--model', 'full', '--all-violations', '--liveness'], /--all-violations and --liveness cannot be combined/],
    [['--model', 'full', '--workers', '65'], /--workers must be an integer in 1\.\.64/],
  ];
  for (const [args, msg] of bad) {
    it(`rejects ${args.join(' ')} with exit 2`, async () => {
      const r = runCheck(args);
      assert.equal(r.code, 2);
      assert.match(r.err, msg);
    });
  }
  it('--workers 2 --json (2,1,1): the SPIN counts (docs/checker.md §4.1)', async () => {
    const r = runCheck(['--pages', '2', '--holders', '1', '--requests', '1', '--workers', '2', '--json']);
    assert.equal(r.code, 0);
    const j = JSON.parse(r.out) as CheckResult;
    assert.deepEqual([j.states, j.edges, j.workers], [963, 6903, 2]);
  });
  it('--all-violations --bug 4: every violated property in the text, exit 1', async () => {
    const r = runCheck(['--pages', '2', '--bug', '4', '--all-violations', '--workers', '2']);
    assert.equal(r.code, 1);
    assert.match(r.out, /result: {4}VIOLATION of 5 properties \(each with its shortest trace\): S1 private page mapped; S2 private page pinned;/);
    assert.equal(r.out.match(/^counterexample: /gm)?.length, 5);
  });
  it('--model full --all-violations --out: one replayable scenario per property', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gmemkit-allv-'));
    try {
      const r = runCheck(['--model', 'full', '--pages', '1', '--holders', '', '--mutant', 'fault-accepts-private', '--all-violations', '--json', '--out', join(dir, 'ce.yaml')]);
      assert.equal(r.code, 1);
      const j = JSON.parse(r.out) as { violations: Counterexample[]; counterexampleScenarios: { property: string; file: string }[] };
      assert.equal(j.violations.length, 3);
      assert.deepEqual(j.counterexampleScenarios.map((x) => x.property), j.violations.map((v) => v.property));
      assert.deepEqual(readdirSync(dir).sort(), [
        'ce.i1-no-host-userspace-mapping-of-private-memory.yaml',
        'ce.i2-a-private-page-carries-no-reference-besides.yaml',
        'ce.the-host-never-observes-guest-private-data.yaml',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
