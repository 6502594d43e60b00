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
  const unsupported = res.unsupported ? `, ${res.unsupported} unsupported` : '';
  lines.push(res.passed ? green(`  passed (${res.steps.length} steps${unsupported})`) : red(`  FAILED (${res.steps.filter((s) => s.failure).length} of ${res.steps.length} steps${unsupported})`));
  return lines.join('\n');
}

function jsonValue(v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
  if (Array.isArray(v)) return v.map(jsonValue);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonValue(x)]));
  return v;
}

export function toJson(results: readonly ScenarioResult[]): unknown {
  return {
    passed: results.filter((r) => r.passed).length,
    failed: results.filter((r) => !r.passed).length,
    scenarios: results.map((r) => ({
      name: r.scenario.name, file: r.scenario.file, profile: r.profile, backend: r.identity,
      passed: r.passed,
      steps: r.steps.map((s) => ({
        index: s.step.index, op: s.step.op, args: jsonValue(s.step.written), outcome: jsonValue(s.outcome),
        expected: describeExpect(s.expected), ...(s.failure ? { failure: s.failure } : {}),
        violations: s.violations.map((v) => jsonValue(v)),
      })),
    })),
  };
}
