// Differential comparison: the same scenario run on two backends, step by step. Two outcomes
// agree when they are the same kind with the same errno and out-values, signal, data, value or
// exit (gpa, size, private); the model's reasons and the handles' numbers are not compared.
import type { BackendIdentity } from '../backend/backend.js';
import { describeOutcome, type Outcome } from './expect.js';
import type { ScenarioResult } from './run.js';

export type StepVerdict = 'agree' | 'differ' | 'unsupported' | 'marked';

export interface StepComparison {
  readonly index: number;
  readonly op: string;
  readonly line?: number;
  readonly verdict: StepVerdict;
  readonly model: Outcome;
  readonly kernel: Outcome;
  /** For `marked`: the scenario's stated reason for the known difference. */
  readonly reason?: string;
}

export interface ScenarioComparison {
  /** The kernel side's identity: `uname -r` and the KVM flavour. */
  readonly kernelIdentity: BackendIdentity;
  readonly file: string;
  readonly name: string;
  readonly profile: string;
  readonly steps: readonly StepComparison[];
  /** Expectation failures on either side (a step can agree and both miss the expectation). */
  readonly expectationFailures: readonly string[];
}

const sameBytes = (a?: Uint8Array, b?: Uint8Array): boolean =>
  a === b || (a !== undefined && b !== undefined && a.length === b.length && a.every((x, i) => x === b[i]));

/** Out-values of successful calls (fstat's size and blksize) agree key by key. */
const sameOut = (a?: Record<string, bigint>, b?: Record<string, bigint>): boolean =>
  Object.keys(a ?? {}).length === Object.keys(b ?? {}).length && Object.entries(a ?? {}).every(([k, v]) => b?.[k] === v);

export function sameOutcome(a: Outcome, b: Outcome): boolean {
  if (a.kind !== b.kind) return false;
  switch (a.kind) {
    case 'ok': {
      const o = b as typeof a;
      return sameBytes(a.data, o.data) && a.value === o.value && sameOut(a.out, o.out);
    }
    case 'errno': {
      const o = b as typeof a;
      const ka = Object.keys(a.out ?? {});
      return a.errno === o.errno && ka.length === Object.keys(o.out ?? {}).length && ka.every((k) => a.out![k] === o.out?.[k]);
    }
    case 'signal': return a.signal === (b as typeof a).signal;
    case 'exit': {
      const o = b as typeof a;
      return a.exit === o.exit && a.gpa === o.gpa && a.size === o.size && a.private === o.private;
    }
    case 'unsupported': case 'skipped': return true;
  }
}

export function compareRuns(model: ScenarioResult, kernel: ScenarioResult): ScenarioComparison {
  const steps = model.steps.map((m, i): StepComparison => {
    const k = kernel.steps[i]!;
    const base = { index: m.step.index, op: m.step.op, model: m.outcome, kernel: k.outcome, ...(m.step.line ? { line: m.step.line } : {}) };
    if (k.outcome.kind === 'unsupported' || m.outcome.kind === 'unsupported') return { ...base, verdict: 'unsupported' };
    if (sameOutcome(m.outcome, k.outcome)) return { ...base, verdict: 'agree' };
    if (m.step.knownDifference) return { ...base, verdict: 'marked', reason: m.step.knownDifference };
    return { ...base, verdict: 'differ' };
  });
  const expectationFailures = [
    ...model.steps.filter((s) => s.failure).map((s) => `model, step ${s.step.index} (${s.step.op}): ${s.failure}`),
    ...kernel.steps.filter((s) => s.failure && s.outcome.kind !== 'unsupported' && !s.step.knownDifference).map((s) => `kernel, step ${s.step.index} (${s.step.op}): ${s.failure}`),
  ];
  return { kernelIdentity: kernel.identity, file: model.scenario.file, name: model.scenario.name, profile: model.profile, steps, expectationFailures };
}

export function formatComparison(c: ScenarioComparison): string {
  const lines = [`▶ ${c.name}  [model ${c.profile} vs ${c.kernelIdentity.backend} ${c.kernelIdentity.kernel} (${c.kernelIdentity.flavour})] ${c.file}`];
  for (const s of c.steps) {
    if (s.verdict === 'agree') continue;
    const where = `step ${s.index}${s.line ? ` (line ${s.line})` : ''} ${s.op}`;
    if (s.verdict === 'unsupported') lines.push(`  – ${where}: ${describeOutcome(s.kernel.kind === 'unsupported' ? s.kernel : s.model)}`);
    else if (s.verdict === 'marked') lines.push(`  ≠ ${where}: known difference (${s.reason}): model ${describeOutcome(s.model)}, kernel ${describeOutcome(s.kernel)}`);
    else lines.push(`  ✗ ${where}: model ${describeOutcome(s.model)}, kernel ${describeOutcome(s.kernel)}`);
  }
  for (const f of c.expectationFailures) lines.push(`  ! expectation: ${f}`);
  const count = (v: StepVerdict) => c.steps.filter((s) => s.verdict === v).length;
  lines.push(`  ${count('agree')} agree, ${count('differ')} differ, ${count('unsupported')} unsupported, ${count('marked')} marked`);
  return lines.join('\n');
}
