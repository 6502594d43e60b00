// Presenting scenario results: a readable per-step trace for humans, and a JSON document for
// machines (bigints as decimal strings, bytes as hex). Pure formatting; never runs anything.
import { describeExpect, describeOutcome, type Outcome } from './expect.js';
import type { ScenarioResult, StepResult } from './run.js';

const useColor = (): boolean => Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
const paint = (code: string, s: string): string => (useColor() ? `\x1b[${code}m${s}\x1b[0m` : s);
const green = (s: string) => paint('32', s);
const red = (s: string) => paint('31', s);
const dim = (s: string) => paint('2', s);
const yellow = (s: string) => paint('33', s);

function showArg(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(showArg).join(',')}]`;
  if (typeof v === 'string') return /^[\w.^+-]*$/.test(v) && v !== '' ? v : JSON.stringify(v);
  if (v === null) return 'null';
  return String(v);
}

export function describeStep(r: StepResult): string {
  const args = Object.entries(r.step.written).map(([k, v]) => `${k}=${showArg(v)}`).join(' ');
  return `${r.step.op}${args ? ` ${args}` : ''}${r.step.as ? ` as ${r.step.as}` : ''}`;
}

function outcomeText(o: Outcome): string {
  return o.kind === 'ok' && o.handle ? `ok: ${o.handle}` : describeOutcome(o);
}

/** The per-step story of one scenario run. */
export function formatHuman(res: ScenarioResult): string {
  const { scenario, identity } = res;
  const lines: string[] = [];
  const flavour = identity.flavour === 'variant' ? 'VARIANT: a design no kernel has' : identity.flavour === 'mutant' ? 'MUTANT: a seeded bug' : identity.flavour;
  const who = `${identity.backend} ${identity.kernel} (${flavour})`;
  lines.push(`▶ ${scenario.name}  ${dim(`[${who}] ${scenario.file}`)}`);
  if (scenario.description) lines.push(dim(`  ${scenario.description.trim().replace(/\n/g, '\n  ')}`));
  for (const r of res.steps) {
    const mark = r.failure ? red('✗') : r.outcome.kind === 'unsupported' ? yellow('–') : green('✓');
    const why = r.outcome.kind !== 'ok' && 'why' in r.outcome && r.outcome.kind !== 'unsupported' && r.outcome.kind !== 'skipped' ? dim(`  (${r.outcome.why})`) : '';
    lines.push(`  ${mark} ${String(r.step.index).padStart(2)} ${describeStep(r)}  → ${outcomeText(r.outcome)}${why}`);
    if (r.failure) lines.push(red(`       step ${r.step.index}${r.step.line ? ` (line ${r.step.line})` : ''}: ${r.failure}`));
    for (const v of r.violations) lines.push(yellow(`       invariant ${v.invariant} (${v.title}): ${v.detail}`));
  }
  const v = scenarioVerdict(res);
  const text = `  ${v === 'failed' ? 'FAILED' : v === 'unsupported' ? 'UNSUPPORTED' : v === 'partial' ? 'passed in part' : 'passed'} (${v === 'passed' ? `${res.steps.length} steps` : countsText(stepCounts(res))})`;
  lines.push(v === 'failed' ? red(text) : v === 'passed' ? green(text) : yellow(text));
  return lines.join('\n');
}

/** Steps of a run by result: met the expectation, failed it, or could not run on this backend. */
export interface StepCounts { passed: number; failed: number; unsupported: number }

export function stepCounts(res: ScenarioResult): StepCounts {
  const failed = res.steps.filter((s) => s.failure).length;
  const unsupported = res.steps.filter((s) => !s.failure && s.outcome.kind === 'unsupported').length;
  return { passed: res.steps.length - failed - unsupported, failed, unsupported };
}

/**
 * A run is failed if a step failed; unsupported if no step could run; passed in part if some
 * steps were unsupported; passed only when every step ran and met its expectation.
 */
export type ScenarioVerdict = 'passed' | 'partial' | 'unsupported' | 'failed';

export function scenarioVerdict(res: ScenarioResult): ScenarioVerdict {
  const c = stepCounts(res);
  if (c.failed) return 'failed';
  if (c.unsupported === 0) return 'passed';
  return c.passed === 0 ? 'unsupported' : 'partial';
}

export const countsText = (c: StepCounts): string =>
  `${c.passed} passed, ${c.failed} failed, ${c.unsupported} unsupported, of ${c.passed + c.failed + c.unsupported} steps`;

/** The closing line of `gmemkit run`: runs by verdict, and the steps of all runs. */
export function formatTotals(results: readonly ScenarioResult[]): string {
  const t = totals(results);
  return `${t.runs.passed} scenario run(s) passed, ${t.runs.failed} failed, ${t.runs.partial} passed in part, ${t.runs.unsupported} unsupported`
    + ` (steps: ${countsText(t.steps)})`;
}

export function totals(results: readonly ScenarioResult[]): { runs: Record<ScenarioVerdict, number>; steps: StepCounts } {
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
