// Differential conformance on the running kernel: the bundled suite (conformance/) runs on the
// model and through /dev/kvm, and every step must agree (or be marked with its reason, or be
// unsupported by this kernel). Skips, with the reason printed, where /dev/kvm is not usable.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CONFORMANCE_DIR, diffScenarios, formatConform, conformTable } from '../src/cli/kernel-commands.js';
import { LinuxBackend } from '../src/linux/linux-backend.js';
import { expandPaths, loadScenarioFile } from '../src/scenario/load.js';

const probe = LinuxBackend.probe();

test('conformance suite: model and kernel agree on every step', (t) => {
  if (!probe.usable) {
    t.skip(`/dev/kvm is not usable here: ${probe.reason}`);
    return;
  }
  const scenarios = expandPaths([CONFORMANCE_DIR]).map(loadScenarioFile);
  const comparisons = diffScenarios(scenarios);
  const table = conformTable(comparisons);
  const all = [...table.values()].reduce((n, r) => n + r.cases, 0);
  const agree = [...table.values()].reduce((n, r) => n + r.agree, 0);
  const report = formatConform(comparisons, 'running kernel vs model');
  t.diagnostic(`${all} cases, ${agree} agree`);
  assert.ok(all >= 80, `only ${all} conformance cases`);
  assert.equal([...table.values()].reduce((n, r) => n + r.differ, 0), 0, report);
  for (const c of comparisons) assert.deepEqual(c.expectationFailures, [], report);
});
