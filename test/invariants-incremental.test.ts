// Incremental invariant checking (invariants.ts, IncrementalStateCheck) against the full check:
// the same random operation sequences run on two model backends, one checking every invariant
// after every call, one only those whose inputs changed; after every call both must report the
// same violations. The profiles that break invariants are the point (the mutants of profile.ts
// and rfc-2024, which breaks I2: kernel-semantics.md §1.10(c) [RFC24]); that they do break some
// is asserted, so the comparison is never between two empty lists only.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ModelBackend } from '../src/backend/model-backend.js';
import { FULL_MACHINE } from '../src/model/platform.js';
import { MAINLINE_6_18, MUTANT_PROFILES, RFC_2024, type Profile } from '../src/model/profile.js';
import { cmd, prelude, run, setUp, type Cmd } from './op-sequences.js';

const numRuns = Number(process.env.GMEMKIT_PROPERTY_RUNS ?? 100);
const seed = process.env.GMEMKIT_PROPERTY_SEED === undefined ? {} : { seed: Number(process.env.GMEMKIT_PROPERTY_SEED) };

/** Runs the sequence on both backends; returns the violations seen and the state checks reused. */
function compare(p: Profile, pre: Parameters<typeof setUp>[1], cmds: readonly Cmd[]): { violations: number; reused: number } {
  const full = new ModelBackend({ profile: p, machine: FULL_MACHINE });
  const inc = new ModelBackend({ profile: p, machine: FULL_MACHINE, invariantMode: 'incremental' });
  const wf = setUp(full, pre);
  const wi = setUp(inc, pre);
  assert.deepEqual(inc.takeViolations(), full.takeViolations(), 'set-up');
  let violations = 0;
  for (const [i, c] of cmds.entries()) {
    const a = run(full, wf, c);
    const b = run(inc, wi, c);
    assert.deepEqual(b, a, `step ${i}: the two models diverged`);
    const expected = full.takeViolations();
    assert.deepEqual(inc.takeViolations(), expected, `step ${i} ${JSON.stringify(c, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x))}`);
    violations += expected.length;
  }
  full.dispose();
  inc.dispose();
  return { violations, reused: inc.incremental!.reused };
}

describe('incremental invariant checks report what the full check reports, after every call', () => {
  const broken = new Map<string, number>();
  for (const p of [...MUTANT_PROFILES, RFC_2024, MAINLINE_6_18]) {
    test(`${p.name}: ${numRuns} runs × 20–40 commands`, () => {
      let violations = 0;
      let reused = 0;
      fc.assert(fc.property(prelude, fc.array(cmd, { minLength: 20, maxLength: 40 }), (pre, cmds) => {
        const r = compare(p, pre, cmds);
        violations += r.violations;
        reused += r.reused;
      }), { numRuns, includeErrorInReport: true, ...seed });
      assert.ok(reused > 0, 'the incremental check never reused a result');
      broken.set(p.name, violations);
    });
  }
  // Some mutants need a race or a particular sequence the random commands rarely make; these two
  // break an invariant in most runs (no-refcount-check: I2 on a pinned page made private;
  // fault-accepts-private: I1 and I2 when the host maps a private page).
  test('the comparison saw violations (the mutants broke invariants), not only empty lists', () => {
    for (const name of ['mutant-no-refcount-check', 'mutant-fault-accepts-private']) {
      assert.ok((broken.get(name) ?? 0) > 0, `${name} broke no invariant in ${numRuns} runs (${JSON.stringify([...broken])})`);
    }
  });
});
