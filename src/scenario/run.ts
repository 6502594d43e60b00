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
import type { StepCounts } from './report.js';
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

/** One run without its steps: what a streaming report keeps (`counts` tallied as they passed). */
export interface RunTally extends Omit<ScenarioResult, 'steps'> {
  readonly counts: StepCounts;
}

/** Sees each run's steps as they are judged (a streaming report); the run then keeps none. */
export interface StepSink {
  start(scenario: Scenario, identity: BackendIdentity): void;
  step(r: StepResult): void;
  end(run: RunTally): void;
}

export interface RunOptions {
  /** Profile to run under (default: each of the scenario's profiles). */
  readonly profile?: string;
  /** Check invariants after every step (model backend; default true). */
  readonly invariants?: boolean;
  /** Backend factory; default: the model with the scenario's profile and machine. */
  readonly backend?: (profile: Profile, scenario: Scenario) => Backend;
  /** Watches a run (a trace recorder): wraps its backend, sees its userspace half and each step. */
  readonly observe?: (profile: Profile, scenario: Scenario) => RunObserver;
}

export interface RunObserver {
  wrap(b: Backend): Backend;
  attach(us: Userspace, backend: Backend): void;
  beforeStep(step: Step): void;
  afterStep(step: Step, outcome: Outcome, violations: readonly Violation[]): void;
  finish(): void;
}

export function modelBackendFor(invariants: boolean) {
  return (profile: Profile, scenario: Scenario): Backend =>
    new ModelBackend({ profile, machine: scenario.machine === 'probed' ? PROBED_MACHINE : FULL_MACHINE, checkInvariants: invariants, invariantMode: 'incremental' });
}

/** Run a scenario under each requested profile. */
export function runScenario(scenario: Scenario, opts: RunOptions = {}): ScenarioResult[] {
  return profilesOf(scenario, opts).map((profile) => {
    const steps: StepResult[] = [];
    const { counts: _, ...run } = runUnder(scenario, profile, opts, (r) => steps.push(r));
    return { ...run, steps };
  });
}

/** Run a scenario under each requested profile, handing each step to `sink` as it is judged. */
export function streamScenario(scenario: Scenario, opts: RunOptions, sink: StepSink): RunTally[] {
  return profilesOf(scenario, opts).map((profile) => {
    const run = runUnder(scenario, profile, opts, (r) => sink.step(r), (identity) => sink.start(scenario, identity));
    sink.end(run);
    return run;
  });
}

const profilesOf = (scenario: Scenario, opts: RunOptions): Profile[] => (opts.profile ? [opts.profile] : scenario.profiles).map((name) => findProfile(name)!);

function runUnder(scenario: Scenario, profile: Profile, opts: RunOptions, each: (r: StepResult) => void, start?: (identity: BackendIdentity) => void): RunTally {
  const observer = opts.observe?.(profile, scenario);
  const raw = (opts.backend ?? modelBackendFor(opts.invariants ?? true))(profile, scenario);
  const world = new World(observer ? observer.wrap(raw) : raw, profile, scenario.manager, observer);
  observer?.attach(world.us, raw);
  const identity = world.backend.identity();
  start?.(identity);
  const counts = { passed: 0, failed: 0, unsupported: 0 };
  let unsupported = 0;
  let passed = true;
  try {
    for (const step of scenario.steps) {
      const r = world.step(step);
      if (r.outcome.kind === 'unsupported') unsupported++;
      if (r.failure !== undefined) passed = false;
      if (r.failure) counts.failed++; // as stepCounts counts them
      else if (r.outcome.kind === 'unsupported') counts.unsupported++;
      else counts.passed++;
      each(r);
    }
  } finally {
    observer?.finish();
    world.dispose();
  }
  return { scenario, profile: profile.name, identity, passed, unsupported, counts };
}

/**
 * One scenario world: a backend, the userspace half over it and the handles named so far.
 * `step` executes one validated step and judges it, as `run` does for each step of a file
 * (the server runs its requests through the same method). The caller disposes it.
 */
export class World {
  readonly us: Userspace;
  readonly handles = new Map<string, HandleValue>();
  private readonly failedAt = new Map<string, { step: number; root?: NonNullable<HandleMissing['root']> }>();
  private readonly ctx: ExecContext;
  /** The model reports invariant violations; a kernel backend cannot (looked up once). */
  private readonly seesInvariants: boolean;

  constructor(readonly backend: Backend, readonly profile: Profile, manager: Scenario['manager'], private readonly observer?: RunObserver) {
    const resolve = (ref: unknown): HandleValue => {
      const r = ref as HandleRef;
      if ('raw' in r) return Number(r.raw);
      const v = this.handles.get(r.handle);
      if (v === undefined) {
        const f = this.failedAt.get(r.handle)!;
        throw new HandleMissing(f.root
          ? `needs '${r.handle}' of step ${f.step}: ${f.root.why}`
          : `handle '${r.handle}' was not created (step ${f.step} did not succeed)`, f.root);
      }
      return v;
    };
    this.seesInvariants = backend.identity().backend === 'model';
    const us = (this.us = new Userspace(backend, { fence: manager.fence, waitForIo: manager.waitForIo }));
    this.ctx = {
      backend: us.backend, us, profile,
      num: (ref) => {
        const v = resolve(ref);
        return v instanceof SplicePipe ? v.fd : (v as number);
      },
      map: (ref) => resolve(ref) as MapHandle,
      holder: (ref) => resolve(ref) as Holder,
      value: resolve,
    };
  }

  step(step: Step): StepResult {
    const expected = expectFor(step.expect, this.profile.name);
    let outcome: Outcome;
    let handle: HandleValue | undefined;
    let root: HandleMissing['root'];
    this.observer?.beforeStep(step);
    try {
      const r = EXEC[step.op]!(step.args, this.ctx, step.as);
      outcome = toOutcome(r.result, r.conversion, r.holder);
      handle = r.handle;
    } catch (e) {
      if (!(e instanceof HandleMissing)) throw e;
      // A step that needs what an unsupported (or errored) step would have made is unsupported
      // (an error) too, with the root reason as its cause.
      root = e.root;
      outcome = !root ? { kind: 'skipped', why: e.message }
        : root.error ? { kind: 'error', why: e.message }
        : { kind: 'unsupported', why: e.message, cause: root.why, ...(root.capability !== undefined ? { capability: root.capability } : {}) };
    }
    if (step.as) {
      if (handle !== undefined) this.handles.set(step.as, handle);
      else if (root) this.failedAt.set(step.as, { step: step.index, root });
      else if (outcome.kind === 'error') this.failedAt.set(step.as, { step: step.index, root: { why: outcome.why, error: true } });
      else if (outcome.kind === 'unsupported') this.failedAt.set(step.as, { step: step.index, root: { why: outcome.why, ...(outcome.capability !== undefined ? { capability: outcome.capability } : {}) } });
      else this.failedAt.set(step.as, { step: step.index });
    }
    if (outcome.kind === 'ok' && step.as) outcome = { ...outcome, handle: step.as };
    const violations = this.backend.takeViolations();
    this.observer?.afterStep(step, outcome, violations);
    return judge(step, expected, outcome, violations, this.seesInvariants);
  }

  dispose(): void {
    this.backend.dispose();
  }
}

function judge(step: Step, expected: Expect, outcome: Outcome, violations: Violation[], seesInvariants: boolean): StepResult {
  const base = { step, outcome, expected, violations };
  if (outcome.kind === 'skipped') return { ...base, failure: outcome.why };
  const m = mismatch(expected, outcome);
  if (m) return { ...base, failure: m };
  if (violations.length === 0 && step.expect.violations.length === 0) return base; // the common case
  const v = violationMismatch(step.expect.violations, violations);
  if (v.unexpected.length) return { ...base, failure: `invariant ${v.unexpected.map((x) => `${x.invariant} (${x.title}): ${x.detail}`).join('; ')}` };
  if (seesInvariants && v.missing.length && outcome.kind !== 'unsupported') return { ...base, failure: `expected invariant violation ${v.missing.join(', ')} was not reported` };
  return base;
}
