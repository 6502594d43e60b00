// Presenting scenario results: a readable per-step trace for humans, and a JSON document for
// machines (bigints as decimal strings, bytes as hex). Pure formatting; never runs anything.
import { bounceText, describeExpect, describeOutcome, type Outcome } from './expect.js';
import type { BackendIdentity } from '../backend/backend.js';
import type { Scenario } from './load.js';
import type { RunTally, ScenarioResult, StepResult } from './run.js';

const useColor = (): boolean => Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;

function showArg(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(showArg).join(',')}]`;
  if (typeof v === 'string') return /^[\w.^+-]*$/.test(v) && v !== '' ? v : JSON.stringify(v);
  if (v === null) return 'null';
  return String(v);
}

export function describeStep(r: StepResult): string {
  let text = r.step.op;
  const written = r.step.written;
  for (const k in written) text += ` ${k}=${showArg(written[k])}`;
  return r.step.as ? `${text} as ${r.step.as}` : text;
}

function outcomeText(o: Outcome): string {
  return o.kind === 'ok' && o.handle ? `ok: ${o.handle}${bounceText(o.holder)}` : describeOutcome(o);
}

/**
 * The per-step story of runs, a piece at a time: the heading of a run, the lines of each step,
 * its closing verdict. A streaming report prints each piece as the run reaches it, so the run
 * keeps no step; formatHuman joins the pieces of a finished run.
 */
export class HumanTrace {
  // Whether to colour is decided once (process.env is slow to read, and this runs per step).
  private readonly color = useColor();

  private paint(code: string, s: string): string { return this.color ? `\x1b[${code}m${s}\x1b[0m` : s; }

  heading(scenario: Scenario, identity: BackendIdentity): string {
    const flavour = identity.flavour === 'variant' ? 'VARIANT: a design no kernel has' : identity.flavour === 'mutant' ? 'MUTANT: a seeded bug' : identity.flavour;
    const who = `${identity.backend} ${identity.kernel} (${flavour})`;
    const head = `▶ ${scenario.name}  ${this.paint('2', `[${who}] ${scenario.file}`)}`;
    return scenario.description ? `${head}\n${this.paint('2', `  ${scenario.description.trim().replace(/\n/g, '\n  ')}`)}` : head;
  }

  step(r: StepResult): string {
    const o = r.outcome;
    const mark = r.failure ? this.paint('31', '✗') : o.kind === 'unsupported' ? this.paint('33', '–') : this.paint('32', '✓');
    const why = o.kind !== 'ok' && 'why' in o && o.kind !== 'unsupported' && o.kind !== 'skipped' ? this.paint('2', `  (${o.why})`) : '';
    // An answer the backend decided without asking the kernel says so (src/linux/README.md).
    const guard = 'guarded' in o && o.guarded !== undefined ? this.paint('33', `  [guarded: ${o.guarded || 'no reason stated'}]`) : '';
    const index = r.step.index;
    let text = `  ${mark} ${index < 10 ? ` ${index}` : index} ${describeStep(r)}  → ${outcomeText(o)}${why}${guard}`;
    if (r.failure) text += `\n${this.paint('31', `       step ${index}${r.step.line ? ` (line ${r.step.line})` : ''}: ${r.failure}`)}`;
    for (const v of r.violations) text += `\n${this.paint('33', `       invariant ${v.invariant} (${v.title}): ${v.detail}`)}`;
    return text;
  }

  verdict(c: StepCounts): string {
    const v = verdictOf(c);
    const text = `  ${v === 'failed' ? 'FAILED' : v === 'unsupported' ? 'UNSUPPORTED' : v === 'partial' ? 'passed in part' : 'passed'} (${v === 'passed' ? `${c.passed} steps` : countsText(c)})`;
    return this.paint(v === 'failed' ? '31' : v === 'passed' ? '32' : '33', text);
  }
}

/** The per-step story of one scenario run. */
export function formatHuman(res: ScenarioResult): string {
  const t = new HumanTrace();
  const lines = [t.heading(res.scenario, res.identity)];
  for (const r of res.steps) lines.push(t.step(r));
  lines.push(t.verdict(stepCounts(res)));
  return lines.join('\n');
}

/** Steps of a run by result: met the expectation, failed it, or could not run on this backend. */
export interface StepCounts { passed: number; failed: number; unsupported: number }

/** A run's steps by result: counted from its steps, or as tallied while they streamed past. */
export function stepCounts(res: ScenarioResult | RunTally): StepCounts {
  if (!('steps' in res)) return res.counts;
  const failed = res.steps.filter((s) => s.failure).length;
  const unsupported = res.steps.filter((s) => !s.failure && s.outcome.kind === 'unsupported').length;
  return { passed: res.steps.length - failed - unsupported, failed, unsupported };
}

/**
 * A run is failed if a step failed; unsupported if no step could run; passed in part if some
 * steps were unsupported; passed only when every step ran and met its expectation.
 */
export type ScenarioVerdict = 'passed' | 'partial' | 'unsupported' | 'failed';

export function scenarioVerdict(res: ScenarioResult | RunTally): ScenarioVerdict {
  return verdictOf(stepCounts(res));
}

function verdictOf(c: StepCounts): ScenarioVerdict {
  if (c.failed) return 'failed';
  if (c.unsupported === 0) return 'passed';
  return c.passed === 0 ? 'unsupported' : 'partial';
}

export const countsText = (c: StepCounts): string =>
  `${c.passed} passed, ${c.failed} failed, ${c.unsupported} unsupported, of ${c.passed + c.failed + c.unsupported} steps`;

/** The closing line of `gmemkit run`: runs by verdict, and the steps of all runs. */
export function formatTotals(results: readonly (ScenarioResult | RunTally)[]): string {
  const t = totals(results);
  return `${t.runs.passed} scenario run(s) passed, ${t.runs.failed} failed, ${t.runs.partial} passed in part, ${t.runs.unsupported} unsupported`
    + ` (steps: ${countsText(t.steps)})`;
}

export function totals(results: readonly (ScenarioResult | RunTally)[]): { runs: Record<ScenarioVerdict, number>; steps: StepCounts } {
  const runs: Record<ScenarioVerdict, number> = { passed: 0, partial: 0, unsupported: 0, failed: 0 };
  const steps: StepCounts = { passed: 0, failed: 0, unsupported: 0 };
  for (const r of results) {
    runs[scenarioVerdict(r)]++;
    const c = stepCounts(r);
    steps.passed += c.passed;
    steps.failed += c.failed;
    steps.unsupported += c.unsupported;
  }
  return { runs, steps };
}

function jsonValue(v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
  if (Array.isArray(v)) return v.map(jsonValue);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonValue(x)]));
  return v;
}

/**
 * The `--json` document: `passed`, `partial`, `unsupported` and `failed` count runs by verdict,
 * `steps` counts the steps of all runs; each scenario has its `verdict` and `counts` (`passed`
 * there means no step failed, as before).
 */
export function toJson(results: readonly ScenarioResult[]): unknown {
  const t = totals(results);
  return {
    ...t.runs,
    steps: t.steps,
    scenarios: results.map((r) => ({
      name: r.scenario.name, file: r.scenario.file, profile: r.profile, backend: r.identity,
      passed: r.passed, verdict: scenarioVerdict(r), counts: stepCounts(r),
      steps: r.steps.map((s) => ({
        index: s.step.index, op: s.step.op, args: jsonValue(s.step.written), outcome: jsonValue(s.outcome),
        expected: describeExpect(s.expected), ...(s.failure ? { failure: s.failure } : {}),
        violations: s.violations.map((v) => jsonValue(v)),
      })),
    })),
  };
}
