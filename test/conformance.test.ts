// Differential conformance on the running kernel: the bundled suite (conformance/) runs on the
// model and through /dev/kvm, and every step must agree (or be marked with its reason, be a
// guarded answer equal to the model's, or be unsupported because this kernel does not advertise
// a capability); no step may be an error. Skips, with the reason printed, where /dev/kvm is not
// usable.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { CONFORMANCE_DIR, diffScenarios, formatConform, conformTable } from '../src/cli/kernel-commands.js';
import { LinuxBackend } from '../src/linux/linux-backend.js';
import { reasonGroups } from '../src/scenario/diff.js';
import { expandPaths, loadScenarioFile } from '../src/scenario/load.js';

const probe = LinuxBackend.probe();
const cli = (...args: string[]) => spawnSync(process.execPath, ['bin/gmemkit.js', ...args], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });

/** What the capability gate (src/backend/capability-gate.ts) says of a capability this kernel does not advertise. */
const CAPABILITY = /is not offered by this kernel \(KVM_CAP_VM_TYPES|not offered by this kernel \(KVM_CAP_GUEST_MEMFD_FLAGS|this kernel has no (KVM_SET_MEMORY_ATTRIBUTES|guest_memfd conversion ioctl)/;

test('conformance suite: model and kernel agree on every step', (t) => {
  if (!probe.usable) {
    t.skip(`/dev/kvm is not usable here: ${probe.reason}`);
    return;
  }
  const scenarios = expandPaths([CONFORMANCE_DIR]).map(loadScenarioFile);
  const comparisons = diffScenarios(scenarios);
  const table = conformTable(comparisons);
  const sum = (k: 'cases' | 'agree' | 'guarded' | 'differ' | 'error' | 'unsupported') => [...table.values()].reduce((n, r) => n + r[k], 0);
  const report = formatConform(comparisons, 'running kernel vs model');
  t.diagnostic(`${sum('cases')} cases, ${sum('agree')} agree, ${sum('guarded')} guarded, ${sum('unsupported')} unsupported`);
  assert.ok(sum('cases') >= 80, `only ${sum('cases')} conformance cases`);
  assert.equal(sum('differ'), 0, report);
  assert.equal(sum('error'), 0, report);
  for (const c of comparisons) assert.deepEqual(c.expectationFailures, [], report);
  // Only a capability the kernel does not advertise makes a step unsupported here.
  for (const g of reasonGroups(comparisons, 'unsupported')) assert.match(g.reason, CAPABILITY, report);
  for (const g of reasonGroups(comparisons, 'guarded')) assert.notEqual(g.reason, '', report);
});

test('conform --strict and diff --strict pass on this kernel, with the reasons grouped', (t) => {
  if (!probe.usable) {
    t.skip(`/dev/kvm is not usable here: ${probe.reason}`);
    return;
  }
  const conform = cli('conform', '--strict');
  assert.equal(conform.status, 0, conform.stdout + conform.stderr);
  assert.match(conform.stdout, /^\| op \| cases \| agree \| guarded \| differ \| unsupported \| errors \| marked \|$/m);
  assert.match(conform.stdout, /^--strict: every unsupported and guarded step states its reason$/m);
  const json = cli('conform', '--strict', '--json');
  assert.equal(json.status, 0, json.stderr);
  const doc = JSON.parse(json.stdout) as { steps: Record<string, number>; unstated: unknown[]; strict: boolean; failed: boolean; reasons: Record<string, { reason: string; count: number }[]> };
  assert.deepEqual([doc.strict, doc.failed, doc.unstated, doc.steps.error, doc.steps.differ], [true, false, [], 0, 0]);
  const grouped = (k: string) => doc.reasons[k]!.reduce((n, g) => n + g.count, 0);
  assert.deepEqual([grouped('unsupported'), grouped('guarded')], [doc.steps.unsupported, doc.steps.guarded]);
  const diff = cli('diff', '--strict', 'conformance/probe-4-file-syscalls.yaml');
  assert.equal(diff.status, 0, diff.stdout + diff.stderr);
  assert.match(diff.stdout, /^--strict: every unsupported and guarded step states its reason$/m);
});
