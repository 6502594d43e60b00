// Traces against the rules of the Chrome trace-event format (Trace Event Format document:
// phases, required fields, timestamps per track, B/E matching, flow binding, counters): the
// validator catches each broken rule, and the traces gmemkit writes (run of the examples, a
// check counterexample, compare, simulate) are valid, with several tracks, flows and counters.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { findProfile } from '../src/model/profile.js';
import { findPolicy } from '../src/userspace/policies.js';
import { expandPaths, loadScenarioFile } from '../src/scenario/load.js';
import { runScenario } from '../src/scenario/run.js';
import { simulate, SIM_DEFAULTS, traceHooks } from '../src/sim/simulate.js';
import { traceScenarioRuns } from '../src/trace/scenario-trace.js';
import { TraceWriter } from '../src/trace/trace-events.js';
import { validateTrace } from '../src/trace/validate.js';
import { DEFAULT_SHAPE, runWorkload } from '../src/workload/coco-boot.js';

const dir = mkdtempSync(join(tmpdir(), 'gmemkit-trace-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const M = (name: string) => ({ name: 'thread_name', ph: 'M', pid: 1, tid: 1, args: { name } });

// Each row breaks one rule of the format and names the problem the validator must report.
const BROKEN: [string, unknown[], RegExp][] = [
  ['an unknown phase', [M('a'), { name: 'x', ph: 'Q', pid: 1, tid: 1, ts: 0 }], /unknown phase "Q"/],
  ['a complete slice without dur', [M('a'), { name: 'x', ph: 'X', pid: 1, tid: 1, ts: 0 }], /dur must be a number/],
  ['time going back on a track', [M('a'), { name: 'x', ph: 'X', pid: 1, tid: 1, ts: 10, dur: 1 }, { name: 'y', ph: 'X', pid: 1, tid: 1, ts: 5, dur: 1 }], /goes back on track 1\/1/],
  ['slices overlapping without nesting', [M('a'), { name: 'x', ph: 'X', pid: 1, tid: 1, ts: 0, dur: 10 }, { name: 'y', ph: 'X', pid: 1, tid: 1, ts: 5, dur: 10 }], /overlaps the enclosing slice/],
  ['E without B', [M('a'), { ph: 'E', pid: 1, tid: 1, ts: 1 }], /E without a matching B/],
  ['B without E', [M('a'), { name: 'x', ph: 'B', pid: 1, tid: 1, ts: 1 }], /1 B without E/],
  ['a flow end without start', [M('a'), { name: 'f', cat: 'flow', ph: 'f', bp: 'e', id: 1, pid: 1, tid: 1, ts: 1 }], /flow flow:1 has no start/],
  ['a flow that never ends', [M('a'), { name: 'f', cat: 'flow', ph: 's', id: 1, pid: 1, tid: 1, ts: 1 }], /flow flow:1 never ends/],
  ['a counter with a string value', [{ name: 'c', ph: 'C', pid: 1, tid: 0, ts: 1, args: { value: 'many' } }], /counter args must be finite numbers/],
  ['a track without a name', [{ name: 'x', ph: 'X', pid: 1, tid: 2, ts: 0, dur: 1 }], /track 1\/2 has no thread_name/],
  ['a negative timestamp', [M('a'), { name: 'x', ph: 'i', pid: 1, tid: 1, ts: -1 }], /ts must be a non-negative number/],
];

for (const [what, events, problem] of BROKEN) {
  test(`the validator reports ${what}`, () => {
    const { problems } = validateTrace({ traceEvents: events });
    assert.ok(problems.some((p) => problem.test(p)), problems.join('\n'));
  });
}

test('a well-formed trace passes: nested slices, matched B/E, a flow, a counter', () => {
  const { problems, summary } = validateTrace({ traceEvents: [
    M('a'), { name: 'outer', ph: 'X', pid: 1, tid: 1, ts: 0, dur: 10 }, { name: 'inner', ph: 'X', pid: 1, tid: 1, ts: 2, dur: 3 },
    { name: 'f', cat: 'flow', ph: 's', id: 1, pid: 1, tid: 1, ts: 3 },
    { name: 'b', ph: 'B', pid: 1, tid: 1, ts: 20 }, { name: 'f', cat: 'flow', ph: 'f', bp: 'e', id: 1, pid: 1, tid: 1, ts: 20.5 }, { ph: 'E', pid: 1, tid: 1, ts: 21 },
    { name: 'c', ph: 'C', pid: 1, tid: 0, ts: 0, args: { value: 3 } },
  ] });
  assert.deepEqual(problems, []);
  assert.deepEqual({ slices: summary.slices, flows: summary.flows, counters: summary.counters }, { slices: 3, flows: 1, counters: 1 });
});

const COUNTERS = ['conversions in flight', 'pinned pages', 'private pages'];

test('gmemkit run --trace over every example writes a valid trace: a process per run, actor and kernel tracks, flows, counters, page maps', () => {
  const w = new TraceWriter();
  const files = expandPaths(['examples']);
  for (const f of files) runScenario(loadScenarioFile(f), { observe: traceScenarioRuns(w) });
  const t = JSON.parse(JSON.stringify(w.toJSON())) as { traceEvents: { ph: string; name: string; args?: { name?: string } }[]; otherData: { pageMaps: unknown[] } };
  const { problems, summary } = validateTrace(t);
  assert.deepEqual(problems, []);
  const tracks = new Set(t.traceEvents.filter((e) => e.name === 'thread_name').map((e) => e.args!.name));
  for (const name of ['kernel', 'VMM', 'guest vCPU 0', 'VMM conversion manager']) assert.ok(tracks.has(name), `track ${name}`);
  assert.ok(summary.flows >= 3, `flows: ${summary.flows}`);
  assert.deepEqual(summary.counterNames, COUNTERS);
  assert.ok(t.otherData.pageMaps.length >= files.length);
});

test('a huge guest mapping shows its level on the kernel track (example 12, hugetlb)', () => {
  // kernel-semantics.md §2.3: KVM maps a merged block at the huge level
  const w = new TraceWriter();
  runScenario(loadScenarioFile('examples/12-huge-page-split-by-bounce-buffer.yaml'), { observe: traceScenarioRuns(w) });
  const kernelSlices = w.events.filter((e) => e.ph === 'X' && (e.name === 'guestWrite' || e.name === 'guestRead'));
  const outcomes = kernelSlices.map((e) => String(e.args?.outcome));
  assert.ok(outcomes.includes('ok: guest mapping at order 9 (a 2 MiB SPTE)'), outcomes.join('\n'));
  assert.ok(outcomes.includes('ok'), 'a 4 KiB mapping (the split block) has no level note');
});

test('a blocked conversion starts a flow that ends on the track of the holder it releases (example 07)', () => {
  const w = new TraceWriter();
  runScenario(loadScenarioFile('examples/07-io-uring-buffers-released-and-reregistered.yaml'), { profile: 'ipc-v8', observe: traceScenarioRuns(w) });
  const ev = w.events;
  const name = (pid: number, tid: number) => ev.find((e) => e.ph === 'M' && e.name === 'thread_name' && e.pid === pid && e.tid === tid)?.args?.name;
  const starts = ev.filter((e) => e.ph === 's');
  assert.ok(starts.length > 0);
  for (const s of starts) {
    const f = ev.find((e) => e.ph === 'f' && e.id === s.id)!;
    // from the step that ran the manager: a map_gpa_range of the guest, or a manager step
    assert.match(String(name(s.pid, s.tid)), /^(guest vCPU 0|VMM conversion manager)$/);
    assert.match(String(name(f.pid, f.tid)), /^io_uring /);
    // the flow leaves from a kernel call answered EAGAIN in the same step
    assert.ok(ev.some((e) => e.ph === 'X' && name(e.pid, e.tid) === 'kernel' && /^EAGAIN/.test(String(e.args?.outcome)) && Math.floor(e.ts! / 1000) === Math.floor(s.ts! / 1000)));
  }
});

test('gmemkit check --model full --trace writes the counterexample as a valid trace with a flow (retry-without-waiting mutant)', () => {
  const out = join(dir, 'ce.yaml');
  const trace = join(dir, 'ce.json');
  const r = spawnSync(process.execPath, ['bin/gmemkit.js', 'check', '--model', 'full', '--mutant', 'retry-without-waiting', '--pages', '1', '--out', out, '--trace', trace], { encoding: 'utf8' });
  assert.equal(r.status, 1, r.stderr);
  const { problems, summary } = validateTrace(JSON.parse(readFileSync(trace, 'utf8')));
  assert.deepEqual(problems, []);
  assert.ok(summary.tracks >= 4 && summary.flows >= 1, JSON.stringify(summary));
  assert.deepEqual(summary.counterNames, COUNTERS);
});

test('compare and simulate traces are valid, and tracing changes no result', () => {
  const w = new TraceWriter();
  const p = findProfile('ipc-v8')!;
  const pol = findPolicy('retry')!;
  const traced = runWorkload(p, pol, DEFAULT_SHAPE, traceHooks(w, 'compare', 2000));
  assert.deepEqual(traced, runWorkload(p, pol, DEFAULT_SHAPE));
  const params = { ...SIM_DEFAULTS, guestSize: 64 * 2 ** 20, vcpus: 2, bounces: 40, holders: ['vfio', 'io_uring', 'odirect', 'vhost-user'] as const };
  const plain = simulate(params);
  const withTrace = simulate(params, { trace: w });
  const strip = (m: typeof plain) => ({ ...m, modelSeconds: 0, microsecondsPerRequest: 0 });
  assert.deepEqual(strip(withTrace), strip(plain));
  const { problems, summary } = validateTrace(JSON.parse(JSON.stringify(w.toJSON())));
  assert.deepEqual(problems, []);
  assert.ok(summary.tracks >= 8 && summary.flows >= 2, JSON.stringify(summary));
  assert.deepEqual(summary.counterNames, COUNTERS);
});
