// The commands that touch the running kernel: the backend choice of `gmemkit run`, `gmemkit
// diff` (model and kernel side by side, every differing step) and `gmemkit conform` (the
// bundled conformance suite, a table per op). The real kernel is reached only through
// LinuxBackend, wrapped in the capability gate so missing features read as unsupported.
import { fileURLToPath } from 'node:url';
import type { Backend } from '../backend/backend.js';
import { capabilityGate } from '../backend/capability-gate.js';
import { LinuxBackend } from '../linux/linux-backend.js';
import { FULL_MACHINE, PROBED_MACHINE } from '../model/platform.js';
import type { Profile } from '../model/profile.js';
import {
  compareRuns, formatComparison, formatReasons, reasonGroups, unstatedSteps, verdictCounts, verdictCountsText,
  type ScenarioComparison, type StepVerdict,
} from '../scenario/diff.js';
import type { Scenario } from '../scenario/load.js';
import { runScenario } from '../scenario/run.js';
import { UsageError } from './usage.js';

/** The bundled conformance suite, next to the package (works from a checkout and when installed). */
export const CONFORMANCE_DIR = fileURLToPath(new URL('../../../conformance/', import.meta.url));

/** A factory of gated Linux backends, or a UsageError saying why this machine cannot run one. */
export function linuxBackendFactory(): (profile: Profile, scenario: Scenario) => Backend {
  const probe = LinuxBackend.probe();
  if (!probe.usable) throw new UsageError(`the linux backend cannot run here: ${probe.reason}`);
  return (profile, scenario) => capabilityGate(new LinuxBackend(), profile, scenario.machine === 'probed' ? PROBED_MACHINE : FULL_MACHINE);
}

/**
 * Run every scenario on the model and on the kernel, and compare them step by step. `kernel`:
 * the backend factory of the kernel side (default: the gated Linux backend; tests pass others).
 */
export function diffScenarios(
  scenarios: readonly Scenario[], profile?: string, progress?: (line: string) => void,
  kernel?: (profile: Profile, scenario: Scenario) => Backend,
): ScenarioComparison[] {
  const linux = kernel ?? linuxBackendFactory();
  const out: ScenarioComparison[] = [];
  for (const [i, s] of scenarios.entries()) {
    progress?.(`[${i + 1}/${scenarios.length}] ${s.file}`);
    const opts = profile ? { profile } : {};
    const models = runScenario(s, opts);
    const kernels = runScenario(s, { ...opts, backend: linux });
    models.forEach((m, i) => out.push(compareRuns(m, kernels[i]!)));
  }
  return out;
}

/**
 * A comparison is failed (a step differs or is an error, or an expectation failed); else
 * unsupported (no step ran), partial (some did not), guarded (every step ran, some answers were
 * the backend's own) or agree.
 */
export type ComparisonVerdict = 'agree' | 'guarded' | 'partial' | 'unsupported' | 'failed';

export function comparisonVerdict(c: ScenarioComparison): ComparisonVerdict {
  if (c.expectationFailures.length || c.steps.some((s) => s.verdict === 'differ' || s.verdict === 'error')) return 'failed';
  const unsupported = c.steps.filter((s) => s.verdict === 'unsupported').length;
  if (unsupported === 0) return c.steps.some((s) => s.verdict === 'guarded') ? 'guarded' : 'agree';
  return unsupported === c.steps.length ? 'unsupported' : 'partial';
}

export function comparisonTotals(comparisons: readonly ScenarioComparison[]): { runs: Record<ComparisonVerdict, number>; steps: Record<StepVerdict, number> } {
  const runs: Record<ComparisonVerdict, number> = { agree: 0, guarded: 0, partial: 0, unsupported: 0, failed: 0 };
  for (const c of comparisons) runs[comparisonVerdict(c)]++;
  return { runs, steps: verdictCounts(comparisons.flatMap((c) => c.steps)) };
}

/** The closing line of diff and conform: runs by verdict, steps by verdict. */
export function formatComparisonTotals(comparisons: readonly ScenarioComparison[]): string {
  const { runs, steps } = comparisonTotals(comparisons);
  return `${comparisons.length} scenario run(s): ${runs.agree} agree, ${runs.guarded} agree with guarded answers, ${runs.failed} failed, ${runs.partial} agree in part, ${runs.unsupported} unsupported`
    + ` (steps: ${verdictCountsText(steps)})`;
}

/** What `--strict` adds: the unsupported and guarded steps without a stated reason fail the run. */
function strictLines(comparisons: readonly ScenarioComparison[]): string[] {
  const unstated = unstatedSteps(comparisons);
  if (!unstated.length) return ['--strict: every unsupported and guarded step states its reason'];
  return [
    `--strict: ${unstated.length} unsupported or guarded step(s) without a stated reason:`,
    ...unstated.map((u) => `  ${u.file} [${u.profile}] step ${u.index} ${u.op}: ${u.verdict}`),
  ];
}

/** Whether diff or conform fails: a failed comparison, or under `strict` a reason missing. */
export function comparisonsFailed(comparisons: readonly ScenarioComparison[], strict: boolean): boolean {
  return comparisons.some((c) => comparisonVerdict(c) === 'failed') || (strict && unstatedSteps(comparisons).length > 0);
}

/**
 * The `--json` document of diff and conform: `{ runs, steps, reasons, unstated, strict,
 * failed, comparisons }`: runs and steps counted by verdict; `reasons` groups the error,
 * unsupported and guarded steps by reason with counts; `unstated` lists the unsupported and
 * guarded steps without a reason (what --strict refuses); each comparison has its `verdict`.
 */
export function comparisonJson(comparisons: readonly ScenarioComparison[], strict: boolean): string {
  const doc = {
    ...comparisonTotals(comparisons),
    reasons: { error: reasonGroups(comparisons, 'error'), unsupported: reasonGroups(comparisons, 'unsupported'), guarded: reasonGroups(comparisons, 'guarded') },
    unstated: unstatedSteps(comparisons),
    strict,
    failed: comparisonsFailed(comparisons, strict),
    comparisons: comparisons.map((c) => ({ ...c, verdict: comparisonVerdict(c) })),
  };
  return JSON.stringify(doc, jsonReplacer, 2);
}

/** The report of `gmemkit diff`: every step that does not agree, the reasons, the totals. */
export function diffReport(comparisons: readonly ScenarioComparison[], json: boolean, strict = false): { text: string; failed: boolean } {
  const failed = comparisonsFailed(comparisons, strict);
  if (json) return { text: comparisonJson(comparisons, strict), failed };
  const reasons = formatReasons(comparisons);
  const text = [
    ...comparisons.map(formatComparison),
    ...(reasons.length ? [reasons.join('\n')] : []),
    ...(strict ? [strictLines(comparisons).join('\n')] : []),
    formatComparisonTotals(comparisons),
  ].join('\n\n');
  return { text, failed };
}

type OpRow = { cases: number } & Record<StepVerdict, number>;
const emptyRow = (): OpRow => ({ cases: 0, ...verdictCounts([]) });

/** The per-op table of `gmemkit conform`. */
export function conformTable(comparisons: readonly ScenarioComparison[]): Map<string, OpRow> {
  const rows = new Map<string, OpRow>();
  for (const c of comparisons) {
    for (const s of c.steps) {
      const row = rows.get(s.op) ?? emptyRow();
      row.cases++;
      row[s.verdict]++;
      rows.set(s.op, row);
    }
  }
  return new Map([...rows].sort(([a], [b]) => a.localeCompare(b)));
}

/** The table's columns after `cases`, in order, with their headings. */
const COLUMNS: [StepVerdict, string][] = [['agree', 'agree'], ['guarded', 'guarded'], ['differ', 'differ'], ['unsupported', 'unsupported'], ['error', 'errors'], ['marked', 'marked']];

/** The report of `gmemkit conform`: the per-op table, what did not agree, the reasons, the totals. */
export function formatConform(comparisons: readonly ScenarioComparison[], identity: string, strict = false): string {
  const rows = conformTable(comparisons);
  const total = emptyRow();
  const cells = (r: OpRow) => [r.cases, ...COLUMNS.map(([v]) => r[v])].join(' | ');
  const lines = [
    `gmemkit conform — ${identity}`,
    `${comparisons.length} scenario runs from the bundled suite; model profile per scenario (mainline-6.18 on the probed machine for the kernel-probe rows)`,
    '',
    `| op | cases | ${COLUMNS.map(([, h]) => h).join(' | ')} |`,
    `|---|---:|${COLUMNS.map(() => '---:').join('|')}|`,
  ];
  for (const [op, r] of rows) {
    lines.push(`| ${op} | ${cells(r)} |`);
    total.cases += r.cases;
    for (const [v] of COLUMNS) total[v] += r[v];
  }
  lines.push(`| **all** | ${cells(total)} |`);
  const notable = comparisons.filter((c) => c.steps.some((s) => s.verdict === 'differ' || s.verdict === 'marked' || s.verdict === 'error') || c.expectationFailures.length);
  if (notable.length) lines.push('', ...notable.map(formatComparison));
  const reasons = formatReasons(comparisons);
  if (reasons.length) lines.push('', ...reasons);
  if (strict) lines.push('', ...strictLines(comparisons));
  lines.push('', formatComparisonTotals(comparisons));
  return lines.join('\n');
}

function jsonReplacer(_k: string, v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
  return v;
}
