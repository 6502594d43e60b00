// The bundled scenarios pass on the model: the examples (the newcomer's story) and the flows
// of the kernel selftests guest_memfd_test.c and the v8 guest_memfd_conversions_test.c.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { expandPaths, loadScenarioFile } from '../src/scenario/load.js';
import { formatHuman } from '../src/scenario/report.js';
import { runScenario } from '../src/scenario/run.js';

const DIRS = ['examples', 'conformance/selftests'];

for (const file of expandPaths(DIRS)) {
  test(`scenario ${file}`, () => {
    for (const r of runScenario(loadScenarioFile(file))) {
      assert.ok(r.passed, formatHuman(r));
      assert.ok(r.steps.every((s) => s.violations.length === 0), formatHuman(r));
    }
  });
}

test('at least six examples', () => {
  assert.ok(expandPaths(['examples']).length >= 6);
});

const cli = (...args: string[]) => spawnSync(process.execPath, ['bin/gmemkit.js', ...args], { encoding: 'utf8' });

test('gmemkit run examples/ exits 0', () => {
  const r = cli('run', 'examples/');
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /scenario run\(s\) passed, 0 failed/);
});

test('a failed expectation names the step, expected and actual, exit 1', () => {
  const r = cli('run', 'test/scenarios/failing/wrong-expectation.yaml');
  assert.equal(r.status, 1);
  assert.match(r.stdout, /step 4 \(line \d+\): expected data "x", got SIGBUS/);
});

test('a bad scenario file exits 2 before anything runs', () => {
  const r = cli('run', 'examples/', 'test/scenarios/failing/bad-handle.yaml');
  assert.equal(r.status, 2);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /bad-handle\.yaml:\d+: step 2: \(mmap\) field 'fd': handle 'gmme' is not defined/);
});

test('--json prints a machine-readable result', () => {
  const r = cli('run', '--json', 'examples/01-pinned-page-blocks-conversion.yaml');
  assert.equal(r.status, 0);
  const doc = JSON.parse(r.stdout) as { passed: number; scenarios: { steps: { op: string; outcome: { kind: string; errno?: string; out?: Record<string, string> } }[] }[] };
  assert.equal(doc.passed, 1);
  const blocked = doc.scenarios[0]!.steps[5]!;
  assert.deepEqual([blocked.op, blocked.outcome.errno, blocked.outcome.out?.error_offset], ['set_memory_attributes2', 'EAGAIN', '4096']);
});

test('bad command-line input is a message, not a stack trace', () => {
  for (const args of [['run', '--profile', 'v9', 'examples/'], ['run'], ['frobnicate'], ['run', '--bogus']]) {
    const r = cli(...args);
    assert.equal(r.status, 2, args.join(' '));
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+/);
    assert.match(r.stderr, /^gmemkit: /);
  }
});
