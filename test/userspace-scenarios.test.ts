// The userspace-half scenarios (test/scenarios/userspace/*.yaml) pass on the model under each of
// their profiles, with no invariant broken at any step. Each file cites its own sources.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expandPaths, loadScenarioFile } from '../src/scenario/load.js';
import { formatHuman } from '../src/scenario/report.js';
import { runScenario } from '../src/scenario/run.js';

const FILES = expandPaths(['test/scenarios/userspace']);

test('there are userspace scenarios', () => assert.ok(FILES.length >= 5));

for (const file of FILES) {
  test(`scenario ${file}`, () => {
    for (const r of runScenario(loadScenarioFile(file))) {
      assert.ok(r.passed, formatHuman(r));
      assert.ok(r.steps.every((s) => s.violations.length === 0), formatHuman(r));
    }
  });
}
