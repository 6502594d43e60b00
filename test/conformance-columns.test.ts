// The columns of `gmemkit diff` / `conform` and what `--strict` refuses, with a fake kernel: the
// model behind a wrapper that injects what the linux backend can answer (src/linux/README.md
// "Results"): a guarded answer (`guarded: 'reason'`), an error of the case (`error: true`: a
// KVM_RUN timeout, an unexpected vCPU exit), an errno abi.ts cannot name (`errnoNumber`) and
// unsupported steps with and without a reason. Each must land in its own column, never in
// "agree" or "unsupported" by accident; errors and differences fail the run; --strict also
// fails an unsupported or guarded step that states no reason.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { unsupported, type Backend, type BResult } from '../src/backend/backend.js';
import { notAdvertised } from '../src/backend/capability-gate.js';
import { decorate } from '../src/backend/decorate.js';
import {
  comparisonJson, comparisonsFailed, comparisonVerdict, conformTable, diffReport, diffScenarios, formatConform,
} from '../src/cli/kernel-commands.js';
import type { Profile } from '../src/model/profile.js';
import { compareStep, sameOutcome, type ScenarioComparison } from '../src/scenario/diff.js';
import { mismatch, toOutcome, type Outcome } from '../src/scenario/expect.js';
import { parseScenario, type Scenario } from '../src/scenario/load.js';
import { formatHuman, toJson } from '../src/scenario/report.js';
import { modelBackendFor, runScenario } from '../src/scenario/run.js';

/** The kernel side: the model, with `inject` replacing some calls (it gets the model to forward to). */
const fakeKernel = (inject: (inner: Backend) => Partial<Backend>) => (profile: Profile, scenario: Scenario): Backend => {
  const inner = modelBackendFor(true)(profile, scenario);
  return decorate(inner, inject(inner));
};

const timeout = (): BResult<number> => ({ ok: false, unsupported: 'KVM_RUN did not return within 5 s', error: true });

const SCENARIO = parseScenario(`
name: columns
profile: mainline-6.18
steps:
  - { op: create_vm, as: vm }
  - { op: create_guest_memfd, vm: vm, size: 16K, as: g }
  - { op: close, fd: 999, expect: { errno: EBADF } }
  - { op: close, fd: 998, expect: { errno: EBADF } }
  - { op: fallocate, fd: g, mode: [KEEP_SIZE], offset: 0, length: 4K }
  - { op: create_guest_memfd, vm: vm, size: 8K, as: h }
  - { op: close, fd: h }
  - { op: lseek, fd: g, offset: 0, whence: CUR, expect: { errno: ESPIPE } }
  - { op: pread, fd: g, length: 4, offset: 0, expect: { errno: ESPIPE } }
`, 'columns.yaml');

/** Every kind of answer at once: step 3 guarded with a reason, 4 guarded without, 5 an unnamed
 * errno, 6 a timeout (7 needs its fd: an error too), 8 unsupported with a reason, 9 without. */
const mixed = fakeKernel((inner) => {
  let gmems = 0;
  return {
    close(fd: number): BResult {
      const r = inner.close(fd);
      return fd === 999 ? { ...r, guarded: 'fd 999 was not opened by this backend' } : fd === 998 ? { ...r, guarded: '' } : r;
    },
    fallocate: () => ({ ok: false, unsupported: 'fallocate: kernel returned errno 200, which abi.ts does not name', errnoNumber: 200 }),
    createGuestMemfd(vm: number, size, flags) {
      return ++gmems === 2 ? timeout() : inner.createGuestMemfd(vm, size, flags);
    },
    lseek: () => notAdvertised('KVM_CAP_TEST', 'this kernel has no lseek on guest_memfd (a test reason)'),
    pread: () => notAdvertised('KVM_CAP_TEST', ''),
  };
});

const run = (kernel: ReturnType<typeof fakeKernel>, s: Scenario = SCENARIO): ScenarioComparison[] => diffScenarios([s], undefined, undefined, kernel);

test('each injected answer is counted in its own column: agree, guarded, differ, errors, unsupported', () => {
  const [c] = run(mixed);
  assert.deepEqual(c!.steps.map((s) => s.verdict), ['agree', 'agree', 'guarded', 'guarded', 'differ', 'error', 'error', 'unsupported', 'unsupported']);
  const table = conformTable([c!]);
  assert.deepEqual(table.get('close'), { cases: 3, agree: 0, guarded: 2, differ: 0, unsupported: 0, error: 1, marked: 0 });
  assert.deepEqual(table.get('create_guest_memfd'), { cases: 2, agree: 1, guarded: 0, differ: 0, unsupported: 0, error: 1, marked: 0 });
  const text = formatConform([c!], 'fake kernel vs model');
  assert.match(text, /^\| op \| cases \| agree \| guarded \| differ \| unsupported \| errors \| marked \|$/m);
  assert.match(text, /^\| close \| 3 \| 0 \| 2 \| 0 \| 0 \| 1 \| 0 \|$/m);
  assert.match(text, /^\| \*\*all\*\* \| 9 \| 2 \| 2 \| 1 \| 2 \| 2 \| 0 \|$/m);
  assert.match(text, /\(steps: 2 agree, 2 guarded, 1 differ, 2 unsupported, 2 errors, 0 marked\)$/);
  const doc = JSON.parse(comparisonJson([c!], false)) as { steps: Record<string, number>; runs: Record<string, number>; failed: boolean };
  assert.deepEqual(doc.steps, { agree: 2, guarded: 2, differ: 1, unsupported: 2, error: 2, marked: 0 });
  assert.equal(doc.runs.failed, 1);
  assert.equal(doc.failed, true);
});

test('an error of the case is never unsupported, and alone fails diff and conform', () => {
  const onlyTimeout = fakeKernel((inner) => {
    let n = 0;
    return { createGuestMemfd: (vm: number, size, flags) => (++n === 2 ? timeout() : inner.createGuestMemfd(vm, size, flags)) };
  });
  const [c] = run(onlyTimeout);
  const verdicts = c!.steps.map((s) => s.verdict);
  assert.equal(verdicts.filter((v) => v === 'unsupported').length, 0);
  assert.deepEqual(verdicts.filter((v) => v !== 'agree'), ['error', 'error']); // the timeout, and the close of its fd
  assert.equal(c!.steps[6]!.reason, "needs 'h' of step 6: KVM_RUN did not return within 5 s");
  assert.equal(comparisonVerdict(c!), 'failed');
  assert.equal(comparisonsFailed([c!], false), true);
  assert.equal(diffReport([c!], false).failed, true);
  assert.match(diffReport([c!], false).text, /Errors: 2 step\(s\), by reason:\n {5}1 {2}KVM_RUN did not return within 5 s\n {5}1 {2}needs 'h' of step 6/);
  // The run on that backend alone fails the step as well (gmemkit run --backend linux).
  const [k] = runScenario(SCENARIO, { backend: onlyTimeout });
  assert.equal(k!.steps[5]!.outcome.kind, 'error');
  assert.equal(k!.steps[5]!.failure, 'error: KVM_RUN did not return within 5 s');
  assert.equal(k!.passed, false);
});

test('a step the backend cannot do for a reason other than a missing capability is an error', () => {
  // As the linux backend answers MAP_FIXED, a read past MAX_BUFFERED_ACCESS, a short READ_FIXED.
  const refused = fakeKernel(() => ({ createGuestMemfd: () => unsupported('gmemkit cannot do this here') }));
  const [c] = run(refused);
  const notRun = c!.steps.filter((s) => s.verdict !== 'agree');
  assert.ok(notRun.length >= 2 && notRun.every((s) => s.verdict === 'error'), JSON.stringify(notRun.map((s) => s.verdict)));
  assert.equal(notRun[0]!.reason, 'unsupported, but not for a capability the kernel lacks: gmemkit cannot do this here');
  assert.equal(comparisonsFailed([c!], false), true);
  // The same step refused for a capability is unsupported, and steps needing it are too.
  const gated = fakeKernel(() => ({ createGuestMemfd: () => notAdvertised('KVM_CAP_GUEST_MEMFD', 'no guest_memfd here') }));
  const [u] = run(gated);
  assert.ok(u!.steps.filter((s) => s.verdict !== 'agree').every((s) => s.verdict === 'unsupported' && s.reason === 'no guest_memfd here'));
  assert.equal(comparisonsFailed([u!], true), false);
});

test('an errno abi.ts cannot name is compared by its number', () => {
  const unnamed = (n: number): Outcome => toOutcome({ ok: false, unsupported: `kernel returned errno ${n}, which abi.ts does not name`, errnoNumber: n });
  assert.deepEqual(unnamed(200), { kind: 'errno', errno: 'errno 200', number: 200, why: 'kernel returned errno 200, which abi.ts does not name' });
  const ebadf: Outcome = { kind: 'errno', errno: 'EBADF', why: 'model' };
  // EBADF is 9 on x86-64 (abi.ts ERRNO): the same number agrees, another differs.
  assert.equal(sameOutcome(ebadf, unnamed(9)), true);
  assert.equal(sameOutcome(ebadf, unnamed(200)), false);
  assert.equal(compareStep(ebadf, unnamed(200)).verdict, 'differ');
  const asNumber = (n: number) => fakeKernel(() => ({ close: () => ({ ok: false, unsupported: 'close: unnamed', errnoNumber: n }) }));
  const s = parseScenario('name: n\nprofile: mainline-6.18\nsteps:\n  - { op: close, fd: 999, expect: { errno: EBADF } }\n', 'n.yaml');
  assert.deepEqual(run(asNumber(9), s)[0]!.steps.map((x) => x.verdict), ['agree']);
  const [c] = run(asNumber(200), s);
  assert.deepEqual(c!.steps.map((x) => x.verdict), ['differ']);
  assert.match(formatConform([c!], 'x'), /step 1 \(line 4\) close: model EBADF, kernel errno 200/);
  assert.equal(mismatch({ kind: 'errno', errno: 'EBADF', out: {} }, unnamed(200)), 'expected EBADF, got errno 200');
});

test('a guarded answer that differs from the model is a difference, shown with its reason', () => {
  const wrongGuard = fakeKernel(() => ({ close: () => ({ ok: false, errno: 'EINVAL', why: 'backend', guarded: 'not an fd of this backend' }) }));
  const s = parseScenario('name: g\nprofile: mainline-6.18\nsteps:\n  - { op: close, fd: 999, expect: any }\n', 'g.yaml');
  const [c] = run(wrongGuard, s);
  assert.equal(c!.steps[0]!.verdict, 'differ');
  assert.match(diffReport([c!], false).text, /model EBADF, kernel EINVAL \(guarded: not an fd of this backend\)/);
});

/** Only reasons differ: guarded and unsupported steps, with (`reason` given) or without a reason. */
const reasonsOnly = (reason: (text: string) => string) => fakeKernel((inner) => ({
  close(fd: number): BResult {
    const r = inner.close(fd);
    if (fd !== 998 && fd !== 999) return r;
    return r.ok || 'errno' in r ? { ...r, guarded: fd === 998 ? reason('') : 'fd 999 was not opened by this backend' } : r;
  },
  lseek: () => notAdvertised('KVM_CAP_TEST', 'this kernel has no lseek on guest_memfd (a test reason)'),
  pread: () => notAdvertised('KVM_CAP_TEST', reason('')),
}));

test('--strict fails on an unsupported or guarded step without a reason, and only then', () => {
  const [clean] = run(reasonsOnly((t) => t));
  assert.deepEqual(clean!.steps.map((s) => s.verdict), ['agree', 'agree', 'guarded', 'guarded', 'agree', 'agree', 'agree', 'unsupported', 'unsupported']);
  assert.equal(comparisonsFailed([clean!], false), false, 'unsupported and guarded steps alone do not fail');
  assert.equal(comparisonsFailed([clean!], true), true);
  const report = formatConform([clean!], 'x', true);
  assert.match(report, /--strict: 2 unsupported or guarded step\(s\) without a stated reason:\n {2}columns\.yaml \[mainline-6\.18\] step 4 close: guarded\n {2}columns\.yaml \[mainline-6\.18\] step 9 pread: unsupported/);
  const doc = JSON.parse(comparisonJson([clean!], true)) as { unstated: { index: number; verdict: string }[]; failed: boolean; strict: boolean };
  assert.deepEqual(doc.unstated.map((u) => [u.index, u.verdict]), [[4, 'guarded'], [9, 'unsupported']]);
  assert.deepEqual([doc.strict, doc.failed], [true, true]);
  assert.equal(diffReport([clean!], false, true).failed, true);
  // A reason of blanks is no reason.
  assert.equal(comparisonsFailed(run(reasonsOnly(() => '  ')), true), true);
  // With every reason stated, strict passes (and says so).
  const stated = run(reasonsOnly(() => 'a stated reason'));
  assert.equal(comparisonsFailed(stated, true), false);
  assert.equal(diffReport(stated, false, true).failed, false);
  assert.match(formatConform(stated, 'x', true), /--strict: every unsupported and guarded step states its reason/);
});

test('the reasons are printed grouped, with counts, in diff and conform', () => {
  const [c] = run(mixed);
  for (const text of [formatConform([c!], 'x'), diffReport([c!], false).text]) {
    assert.match(text, /Unsupported: 2 step\(s\), by reason:\n {5}1 {2}\(no reason stated\)\n {5}1 {2}this kernel has no lseek on guest_memfd \(a test reason\)/);
    assert.match(text, /Guarded \(answered by the backend, not the kernel\): 2 step\(s\), by reason:\n {5}1 {2}\(no reason stated\)\n {5}1 {2}fd 999 was not opened by this backend/);
  }
  const doc = JSON.parse(comparisonJson([c!, c!], false)) as { reasons: Record<string, { reason: string; count: number }[]> };
  assert.deepEqual(doc.reasons.guarded, [{ reason: '', count: 2 }, { reason: 'fd 999 was not opened by this backend', count: 2 }]);
});

test('gmemkit run shows a guarded answer as guarded, and the JSON outcome carries its reason', () => {
  const [r] = runScenario(SCENARIO, { backend: reasonsOnly(() => 'a stated reason') });
  assert.match(formatHuman(r!), /close fd=999 {2}→ EBADF {2}\([^)]*\) {2}\[guarded: fd 999 was not opened by this backend\]/);
  assert.doesNotMatch(formatHuman(r!), /close fd=h .*guarded/);
  const doc = toJson([r!]) as { scenarios: { steps: { outcome: { guarded?: string } }[] }[] };
  assert.equal(doc.scenarios[0]!.steps[2]!.outcome.guarded, 'fd 999 was not opened by this backend');
});
