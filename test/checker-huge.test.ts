// The full-model checker on HugeTLB worlds (issue 9, "The checker"): a world whose guest_memfd is
// backed by scaled-down huge pages of K base pages (`--hugepage-pages K`) when the profile has
// huge-page decisions (kernel-semantics.md §2.3 [RFC25]); I12 and I13 (§3) are checked on every
// edge like the other properties, so the two hugetlb mutants are found with shortest traces, and
// their counterexample scenarios (with `hugepage_pages`) replay under `gmemkit run`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { check } from '../src/checker/index.js';
import { FullModel } from '../src/checker/full/model.js';
import { findMutant, MUTANTS } from '../src/checker/full/mutants.js';
import { counterexampleScenario } from '../src/checker/full/scenario-writer.js';
import { PROPERTIES, World, type FullConfig } from '../src/checker/full/world.js';
import { HUGETLB, IPC_V8 } from '../src/model/profile.js';
import { parseScenario } from '../src/scenario/load.js';
import { formatHuman } from '../src/scenario/report.js';
import { runScenario } from '../src/scenario/run.js';
import { RETRY } from '../src/userspace/policies.js';

const config = (over: Partial<FullConfig> = {}): FullConfig => ({
  pages: 2, holders: ['odirect'], requests: 1, profile: HUGETLB, policy: { ...RETRY, maxRetries: 2 }, fence: true, waitForIo: true, ...over,
});
const cli = (...args: string[]) => spawnSync(process.execPath, ['bin/gmemkit.js', ...args], { encoding: 'utf8' });

test('the world follows the profile: huge pages of K base pages where it has HugeTLB decisions, none elsewhere', () => {
  assert.equal(new World(config()).inode.hugeOrder, 1, 'default: huge pages of 2 base pages');
  assert.match(new FullModel(config()).name, /pages 2 \(huge pages of 2\)/);
  assert.equal(new World(config({ hugepagePages: 2 })).inode.hugeOrder, 1);
  assert.equal(new World(config({ profile: IPC_V8, hugepagePages: 2 })).inode.hugeOrder, 0, 'ipc-v8 has no huge pages');
  // The world reaches huge folios (so the search below is not vacuous): the guest makes both pages
  // private (kernel-semantics.md §2.3 [RFC25] rule 2: an all-private block is one huge folio).
  const w = new World(config());
  w.apply({ who: 'guest', what: 'request', lo: 0, hi: 1, to: 'private' });
  while (w.task && !w.task.terminal) w.apply({ who: 'vmm', what: 'step' });
  w.apply({ who: 'guest', what: 'write', page: 1 });
  assert.deepEqual(w.violations, []);
  assert.deepEqual(w.backend.folioOrder(w.gmem, 0n), { ok: true, value: 1n });
  // The host may punch a whole huge page (rule 5: EAGAIN while referenced, else freed), only where there are huge pages.
  const punches = (cfg: FullConfig) => new World(cfg).enabled().filter((a) => a.who === 'host' && a.what === 'punch-huge');
  assert.deepEqual(punches(config()), [{ who: 'host', what: 'punch-huge', page: 0 }]);
  assert.deepEqual(punches(config({ profile: IPC_V8 })), []);
});

test('a HugeTLB world holds every property, I12 and I13 included: 2 pages in one huge page, no holder, 1 request', () => {
  assert.ok(PROPERTIES.some((p) => p.startsWith('I12 ')) && PROPERTIES.some((p) => p.startsWith('I13 ')));
  const r = check(new FullModel(config({ holders: [] })));
  assert.equal(r.status, 'ok', JSON.stringify(r.counterexample, null, 1));
  assert.ok(r.states > 1000 && r.edges > r.states);
});

// Shortest traces (breadth-first) in the default world of the CLI (2 pages, one huge page of 2,
// O_DIRECT): kernel-semantics.md §2.3 [RFC25] rule 2 (merge-while-shared: a 1-page to-private
// merges the block around a shared page) and rules 3, 5 (split-without-check: a pin, then a
// punch of the whole huge page merges before the refcount check and stays merged on EAGAIN).
const HUGE_MUTANTS: readonly { name: string; property: string; steps: number; last: string }[] = [
  { name: 'merge-while-shared', property: 'I12', steps: 4, last: 'vmm: step()' },
  { name: 'split-without-check', property: 'I13', steps: 2, last: 'host: punch-huge(page=0)' },
];

for (const want of HUGE_MUTANTS) {
  test(`mutant ${want.name}: caught by ${want.property} in ${want.steps} steps, and its scenario replays with that violation`, () => {
    const m = findMutant(want.name)!;
    assert.ok(m.profile?.hugetlb, 'a hugetlb mutant profile');
    const cfg = config({ profile: m.profile });
    const r = check(new FullModel(cfg));
    assert.equal(r.status, 'violation', `${m.name} was not caught`);
    const ce = r.counterexample!;
    assert.equal(ce.property, m.breaks);
    assert.ok(ce.property.startsWith(`${want.property} `), ce.property);
    assert.equal(ce.steps.length, want.steps, ce.steps.map((s) => s.text).join('\n'));
    assert.equal(ce.steps[ce.steps.length - 1]!.text, want.last);
    const yaml = counterexampleScenario(cfg, ce.steps.map((s) => ({ process: s.process, action: s.action, params: s.params })), ce.property, ce.message);
    assert.match(yaml, /hugepage_pages: 2/);
    const [replay] = runScenario(parseScenario(yaml, `${m.name}.yaml`));
    assert.ok(replay!.passed, formatHuman(replay!));
    const last = replay!.steps[replay!.steps.length - 1]!;
    assert.ok(last.violations.some((v) => v.invariant === want.property), formatHuman(replay!));
    assert.ok(replay!.steps.slice(0, -1).every((s) => s.violations.length === 0), 'only the last step breaks something');
  });
}

test('the hugetlb mutants are in the checker\'s mutant list (I12 and I13 each have one)', () => {
  const breaks = new Set(MUTANTS.map((x) => x.breaks.split(' ')[0]));
  assert.ok(breaks.has('I12') && breaks.has('I13'));
});

test('gmemkit check --mutant split-without-check --out FILE: the file replays under gmemkit run', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gmemkit-huge-'));
  try {
    const out = join(dir, 'cx.yaml');
    const r = cli('check', '--model', 'full', '--mutant', 'split-without-check', '--out', out);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stdout, /VIOLATION[\s\S]*I13 [\s\S]* 2\. host: punch-huge\(page=0\)/);
    const yaml = readFileSync(out, 'utf8');
    assert.match(yaml, /- HUGETLB\n\s+hugepage_pages: 2/);
    assert.match(yaml, /offset: 0K\n\s+length: 8K\n\s+expect:/, 'the whole huge page is punched');
    const replay = cli('run', out);
    assert.equal(replay.status, 0, replay.stdout);
    assert.match(replay.stdout, /invariant I13 /);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// Bad --hugepage-pages values and worlds that are not whole huge pages: exit 2, naming the option and the allowed values.
const BAD: readonly { args: string[]; message: RegExp }[] = [
  { args: ['--profile', 'hugetlb', '--hugepage-pages', '3'], message: /--hugepage-pages must be a power of two >= 2 that divides --pages \(got 3\)/ },
  { args: ['--profile', 'hugetlb', '--hugepage-pages', '1'], message: /--hugepage-pages must be an integer >= 2 \(got '1'\)/ },
  { args: ['--profile', 'hugetlb', '--hugepage-pages', '6'], message: /--hugepage-pages must be a power of two >= 2 that divides --pages \(got 6\)/ },
  { args: ['--profile', 'hugetlb', '--hugepage-pages', 'x'], message: /--hugepage-pages must be an integer/ },
  { args: ['--profile', 'hugetlb', '--hugepage-pages', '4'], message: /--pages 2: --profile hugetlb backs the guest_memfd with whole huge pages of 4 pages .*allowed: --pages none up to 3, or --hugepage-pages 2/ },
  { args: ['--profile', 'hugetlb', '--pages', '3'], message: /--pages 3: --profile hugetlb .*huge pages of 2 pages .*allowed: --pages 2$/m },
  { args: ['--mutant', 'merge-while-shared', '--pages', '1'], message: /--pages 1: --mutant merge-while-shared .*allowed: --pages 2$/m },
  { args: ['--profile', 'ipc-v8', '--hugepage-pages', '2'], message: /--hugepage-pages: --profile ipc-v8 has no huge pages; it goes with a HugeTLB profile \(--profile hugetlb\) or mutant \(--mutant merge-while-shared, split-without-check\)/ },
  { args: ['--mutant', 'no-rollback', '--hugepage-pages', '2'], message: /--hugepage-pages: --mutant no-rollback has no huge pages/ },
];

test('bad --hugepage-pages values give a clean usage error (exit 2), nothing searched', () => {
  for (const b of BAD) {
    const r = cli('check', '--model', 'full', ...b.args);
    assert.equal(r.status, 2, `${b.args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, b.message, b.args.join(' '));
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
    assert.equal(r.stdout, '');
  }
});

// The scenario field the counterexamples use: a model-only huge page of `hugepage_pages` 4 KiB pages.
const SCENARIO = (gmem: string) => `name: t\nprofile: hugetlb\nsteps:\n  - { op: create_vm, type: sw_protected, as: vm }\n  - ${gmem}\n`;

test('scenario create_guest_memfd hugepage_pages: a power of two >= 2, one huge page size, with HUGETLB only', () => {
  const good = runScenario(parseScenario(SCENARIO('{ op: create_guest_memfd, vm: vm, size: 16K, flags: [MMAP, HUGETLB], hugepage_pages: 4, as: g }')
    + '  - { op: fallocate, fd: g, mode: [KEEP_SIZE], offset: 0, length: 4K }\n  - { op: folio_order, fd: g, offset: 12K, expect: { value: 2 } }\n', 'good.yaml'))[0]!;
  assert.ok(good.passed, formatHuman(good));
  for (const [gmem, message] of [
    ['{ op: create_guest_memfd, vm: vm, size: 16K, flags: [HUGETLB], hugepage_pages: 3 }', /'hugepage_pages' must be a power of two >= 2 .*got 3/],
    ['{ op: create_guest_memfd, vm: vm, size: 16K, flags: [HUGETLB], hugepage_pages: 1 }', /'hugepage_pages' must be a power of two >= 2/],
    ['{ op: create_guest_memfd, vm: vm, size: 16K, flags: [MMAP], hugepage_pages: 2 }', /field 'hugepage_pages' goes with flag HUGETLB only/],
    ['{ op: create_guest_memfd, vm: vm, size: 4M, flags: [HUGETLB], hugepage_pages: 2, hugepage_size: 2M }', /'hugepage_size' and 'hugepage_pages' exclude each other/],
    ['{ op: create_guest_memfd, vm: vm, size: 4M, flags: [HUGETLB] }', /flag HUGETLB needs 'hugepage_size' \(allowed: 2M, 1G\) or, model only, 'hugepage_pages'/],
  ] as const) {
    assert.throws(() => parseScenario(SCENARIO(gmem), 'bad.yaml'), message, gmem);
  }
});
