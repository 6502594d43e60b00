// The scenario runner: executes a validated scenario step by step on one backend and records,
// per step, the outcome, whether it met the expectation, and any invariant the model saw
// broken. It never throws for kernel-level results; the backend is always disposed.
import type { Backend, BackendIdentity, Violation } from '../backend/backend.js';
import { ModelBackend } from '../backend/model-backend.js';
import { FULL_MACHINE, PROBED_MACHINE } from '../model/platform.js';
import { findProfile, type Profile } from '../model/profile.js';
import { SplicePipe, type Holder } from '../userspace/holders.js';
import { Userspace } from '../userspace/userspace.js';
import { EXEC, HandleMissing, type ExecContext, type HandleValue, type MapHandle } from './exec.js';
import { expectFor, mismatch, toOutcome, violationMismatch, type Expect, type Outcome } from './expect.js';
import type { Scenario, Step } from './load.js';
import type { HandleRef } from './ops.js';

export interface StepResult {
  readonly step: Step;
  readonly outcome: Outcome;
  readonly expected: Expect;
  /** Why the step failed (expectation not met, or an unexpected invariant violation). */
  readonly failure?: string;
  readonly violations: readonly Violation[];
}

export interface ScenarioResult {
  readonly scenario: Scenario;
  readonly profile: string;
  readonly identity: BackendIdentity;
  readonly steps: readonly StepResult[];
  readonly passed: boolean;
  readonly unsupported: number;
}

export interface RunOptions {
  /** Profile to run under (default: each of the scenario's profiles). */
  readonly profile?: string;
  /** Check invariants after every step (model backend; default true). */
  readonly invariants?: boolean;
  /** Backend factory; default: the model with the scenario's profile and machine. */
  readonly backend?: (profile: Profile, scenario: Scenario) => Backend;
}

export function modelBackendFor(invariants: boolean) {
  return (profile: Profile, scenario: Scenario): Backend =>
    new ModelBackend({ profile, machine: scenario.machine === 'probed' ? PROBED_MACHINE : FULL_MACHINE, checkInvariants: invariants });
}

/** Run a scenario under each requested profile. */
export function runScenario(scenario: Scenario, opts: RunOptions = {}): ScenarioResult[] {
  const names = opts.profile ? [opts.profile] : scenario.profiles;
  return names.map((name) => runUnder(scenario, findProfile(name)!, opts));
}

function runUnder(scenario: Scenario, profile: Profile, opts: RunOptions): ScenarioResult {
  const backend = (opts.backend ?? modelBackendFor(opts.invariants ?? true))(profile, scenario);
  const handles = new Map<string, HandleValue>();
  const failedAt = new Map<string, { step: number; unsupported?: string }>();
  const resolve = (ref: unknown): HandleValue => {
    const r = ref as HandleRef;
    if ('raw' in r) return Number(r.raw);
    const v = handles.get(r.handle);
    if (v === undefined) {
      const f = failedAt.get(r.handle)!;
      throw new HandleMissing(f.unsupported
        ? `needs '${r.handle}' of step ${f.step}: ${f.unsupported}`
        : `handle '${r.handle}' was not created (step ${f.step} did not succeed)`, f.unsupported);
    }
    return v;
  };
  const us = new Userspace(backend, { fence: scenario.manager.fence, waitForIo: scenario.manager.waitForIo });
  const ctx: ExecContext = {
    backend: us.backend, us, profile,
    num: (ref) => {
      const v = resolve(ref);
      return v instanceof SplicePipe ? v.fd : (v as number);
    },
    map: (ref) => resolve(ref) as MapHandle,
    holder: (ref) => resolve(ref) as Holder,
    value: resolve,
  };
  const results: StepResult[] = [];
  try {
    for (const step of scenario.steps) {
      const expected = expectFor(step.expect, profile.name);
      let outcome: Outcome;
      let handle: HandleValue | undefined;
      let rootCause: string | undefined;
      try {
        const r = EXEC[step.op]!(step.args, ctx, step.as);
        outcome = toOutcome(r.result, r.conversion, r.holder);
        handle = r.handle;
      } catch (e) {
        if (!(e instanceof HandleMissing)) throw e;
        outcome = e.unsupported !== undefined ? { kind: 'unsupported', why: e.message } : { kind: 'skipped', why: e.message };
        rootCause = e.unsupported;
      }
      if (step.as) {
        if (handle !== undefined) handles.set(step.as, handle);
        else failedAt.set(step.as, { step: step.index, ...(outcome.kind === 'unsupported' ? { unsupported: rootCause ?? outcome.why } : {}) });
      }
      if (outcome.kind === 'ok' && step.as) outcome = { ...outcome, handle: step.as };
      const violations = backend.takeViolations();
      results.push(judge(step, expected, outcome, violations, backend.identity().backend === 'model'));
    }
  } finally {
    backend.dispose();
  }
  return {
    scenario, profile: profile.name, identity: backend.identity(), steps: results,
    passed: results.every((r) => r.failure === undefined),
    unsupported: results.filter((r) => r.outcome.kind === 'unsupported').length,
  };
}

function judge(step: Step, expected: Expect, outcome: Outcome, violations: Violation[], seesInvariants: boolean): StepResult {
  const base = { step, outcome, expected, violations };
  if (outcome.kind === 'skipped') return { ...base, failure: outcome.why };
  const m = mismatch(expected, outcome);
  if (m) return { ...base, failure: m };
  const v = violationMismatch(step.expect.violations, violations);
  if (v.unexpected.length) return { ...base, failure: `invariant ${v.unexpected.map((x) => `${x.invariant} (${x.title}): ${x.detail}`).join('; ')}` };
  if (seesInvariants && v.missing.length && outcome.kind !== 'unsupported') return { ...base, failure: `expected invariant violation ${v.missing.join(', ')} was not reported` };
  return base;
}
