// Differential comparison: the same scenario run on two backends, step by step. Two outcomes
// agree when they are the same kind with the same errno (by number, so an errno abi.ts cannot
// name is compared too) and out-values, signal, data, value or exit (gpa, size, private); the
// model's reasons and the handles' numbers are not compared. An equal answer the kernel backend
// decided itself (`guarded`) is counted apart from "agree"; a step the backend tried and got no
// answer for (a KVM_RUN timeout, an unexpected vCPU exit) is an error, never "unsupported", and so
// is a step the backend cannot do for any reason but a capability the kernel does not advertise.
import type { BackendIdentity } from '../backend/backend.js';
import { ERRNO } from '../model/abi.js';
import { describeOutcome, type Outcome } from './expect.js';
import type { ScenarioResult } from './run.js';

/**
 * agree: the kernel answered as the model did. guarded: the same answer, but decided by the
 * kernel backend without asking the kernel. differ / marked: the answers differ (marked: the
 * scenario states the known difference). unsupported: the kernel does not advertise a
 * capability the step needs (the capability gate says which). error: no answer to compare (a
 * timeout, an unexpected vCPU exit, a step the backend cannot do for another reason).
 */
export type StepVerdict = 'agree' | 'guarded' | 'differ' | 'unsupported' | 'error' | 'marked';
export const STEP_VERDICTS: readonly StepVerdict[] = ['agree', 'guarded', 'differ', 'unsupported', 'error', 'marked'];

export interface StepComparison {
  readonly index: number;
  readonly op: string;
  readonly line?: number;
  readonly verdict: StepVerdict;
  readonly model: Outcome;
  readonly kernel: Outcome;
  /**
   * Why the step has its verdict: for `marked` the scenario's stated reason; for `unsupported`
   * the root reason (what the kernel does not offer); for `guarded` the backend's reason; for
   * `error` what went wrong. Absent on agree and differ.
   */
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

/** The errno's number: its own for one abi.ts cannot name, else the name's. */
const errnoNumber = (o: Extract<Outcome, { kind: 'errno' }>): number | string =>
  o.number ?? (ERRNO as Record<string, number>)[o.errno] ?? o.errno;
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
      return errnoNumber(a) === errnoNumber(o) && ka.length === Object.keys(o.out ?? {}).length && ka.every((k) => a.out![k] === o.out?.[k]);
    }
    case 'signal': return a.signal === (b as typeof a).signal;
    case 'exit': {
      const o = b as typeof a;
      return a.exit === o.exit && a.gpa === o.gpa && a.size === o.size && a.private === o.private;
    }
    case 'error': return false;
    case 'unsupported': case 'skipped': return true;
  }
}

const guardOf = (o: Outcome): string | undefined => ('guarded' in o ? o.guarded : undefined);

export function compareStep(m: Outcome, k: Outcome, knownDifference?: string): { verdict: StepVerdict; reason?: string } {
  if (k.kind === 'error') return { verdict: 'error', reason: k.why };
  if (m.kind === 'error') return { verdict: 'error', reason: m.why };
  if (k.kind === 'unsupported' || m.kind === 'unsupported') {
    const u = (k.kind === 'unsupported' ? k : m) as Extract<Outcome, { kind: 'unsupported' }>;
    // Only a capability the kernel does not advertise makes a step unsupported; a backend that
    // cannot do a step for any other reason leaves the case unchecked: an error.
    if (u.capability === undefined) return { verdict: 'error', reason: `unsupported, but not for a capability the kernel lacks: ${u.cause ?? u.why}` };
    return { verdict: 'unsupported', reason: u.cause ?? u.why };
  }
  const guard = guardOf(k) ?? guardOf(m);
  if (sameOutcome(m, k)) return guard !== undefined ? { verdict: 'guarded', reason: guard } : { verdict: 'agree' };
  if (knownDifference) return { verdict: 'marked', reason: knownDifference };
  return { verdict: 'differ' };
}

export function compareRuns(model: ScenarioResult, kernel: ScenarioResult): ScenarioComparison {
  const steps = model.steps.map((m, i): StepComparison => {
    const k = kernel.steps[i]!;
    const base = { index: m.step.index, op: m.step.op, model: m.outcome, kernel: k.outcome, ...(m.step.line ? { line: m.step.line } : {}) };
    const v = compareStep(m.outcome, k.outcome, m.step.knownDifference);
    return { ...base, verdict: v.verdict, ...(v.reason !== undefined ? { reason: v.reason } : {}) };
  });
  // An unsupported or errored kernel step is counted in its own column, not again here.
  const counted = (s: { outcome: Outcome }) => s.outcome.kind !== 'unsupported' && s.outcome.kind !== 'error';
  const expectationFailures = [
    ...model.steps.filter((s) => s.failure).map((s) => `model, step ${s.step.index} (${s.step.op}): ${s.failure}`),
    ...kernel.steps.filter((s) => s.failure && counted(s) && !s.step.knownDifference).map((s) => `kernel, step ${s.step.index} (${s.step.op}): ${s.failure}`),
  ];
  return { kernelIdentity: kernel.identity, file: model.scenario.file, name: model.scenario.name, profile: model.profile, steps, expectationFailures };
}

/** Steps counted by verdict. */
export function verdictCounts(steps: Iterable<StepComparison>): Record<StepVerdict, number> {
  const n = Object.fromEntries(STEP_VERDICTS.map((v) => [v, 0])) as Record<StepVerdict, number>;
  for (const s of steps) n[s.verdict]++;
  return n;
}

export const verdictCountsText = (n: Record<StepVerdict, number>): string =>
  `${n.agree} agree, ${n.guarded} guarded, ${n.differ} differ, ${n.unsupported} unsupported, ${n.error} errors, ${n.marked} marked`;

const hasReason = (s: StepComparison): boolean => s.reason !== undefined && s.reason.trim() !== '';

/** The steps of `verdict` grouped by their reason, most frequent first ('' for none stated). */
export function reasonGroups(comparisons: readonly ScenarioComparison[], verdict: StepVerdict): { reason: string; count: number }[] {
  const groups = new Map<string, number>();
  for (const c of comparisons) {
    for (const s of c.steps) {
      if (s.verdict !== verdict) continue;
      const r = hasReason(s) ? s.reason! : '';
      groups.set(r, (groups.get(r) ?? 0) + 1);
    }
  }
  return [...groups].map(([reason, count]) => ({ reason, count })).sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason));
}

/** Unsupported and guarded steps that carry no reason: what `--strict` refuses. */
export function unstatedSteps(comparisons: readonly ScenarioComparison[]): { file: string; profile: string; index: number; op: string; verdict: StepVerdict }[] {
  return comparisons.flatMap((c) => c.steps
    .filter((s) => (s.verdict === 'unsupported' || s.verdict === 'guarded') && !hasReason(s))
    .map((s) => ({ file: c.file, profile: c.profile, index: s.index, op: s.op, verdict: s.verdict })));
}

/** The reasons of the unsupported, guarded and errored steps, grouped with their counts. */
export function formatReasons(comparisons: readonly ScenarioComparison[]): string[] {
  const lines: string[] = [];
  const titles: [StepVerdict, string][] = [['error', 'Errors'], ['unsupported', 'Unsupported'], ['guarded', 'Guarded (answered by the backend, not the kernel)']];
  for (const [verdict, title] of titles) {
    const groups = reasonGroups(comparisons, verdict);
    if (!groups.length) continue;
    lines.push(`${title}: ${groups.reduce((n, g) => n + g.count, 0)} step(s), by reason:`);
    for (const g of groups) lines.push(`  ${String(g.count).padStart(4)}  ${g.reason || '(no reason stated)'}`);
  }
  return lines;
}

export function formatComparison(c: ScenarioComparison): string {
  const lines = [`▶ ${c.name}  [model ${c.profile} vs ${c.kernelIdentity.backend} ${c.kernelIdentity.kernel} (${c.kernelIdentity.flavour})] ${c.file}`];
  for (const s of c.steps) {
    if (s.verdict === 'agree') continue;
    const where = `step ${s.index}${s.line ? ` (line ${s.line})` : ''} ${s.op}`;
    if (s.verdict === 'unsupported') lines.push(`  – ${where}: ${describeOutcome(s.kernel.kind === 'unsupported' ? s.kernel : s.model)}`);
    else if (s.verdict === 'error') lines.push(`  ✗ ${where}: ${describeOutcome(s.kernel.kind === 'error' ? s.kernel : s.model)}`);
    else if (s.verdict === 'guarded') lines.push(`  ≈ ${where}: ${describeOutcome(s.kernel)}, guarded (${s.reason || 'no reason stated'})`);
    else if (s.verdict === 'marked') lines.push(`  ≠ ${where}: known difference (${s.reason}): model ${describeOutcome(s.model)}, kernel ${describeOutcome(s.kernel)}`);
    else lines.push(`  ✗ ${where}: model ${describeOutcome(s.model)}, kernel ${describeOutcome(s.kernel)}${guardOf(s.kernel) !== undefined ? ` (guarded: ${guardOf(s.kernel)})` : ''}`);
  }
  for (const f of c.expectationFailures) lines.push(`  ! expectation: ${f}`);
  lines.push(`  ${verdictCountsText(verdictCounts(c.steps))}`);
  return lines.join('\n');
}
