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
import { compareRuns, formatComparison, type ScenarioComparison, type StepVerdict } from '../scenario/diff.js';
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

/** Run every scenario on the model and on the kernel, and compare them step by step. */
export function diffScenarios(scenarios: readonly Scenario[], profile?: string, progress?: (line: string) => void): ScenarioComparison[] {
  const linux = linuxBackendFactory();
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

/** A comparison is failed (a step differs or an expectation failed), or else by its unsupported steps. */
export type ComparisonVerdict = 'agree' | 'partial' | 'unsupported' | 'failed';

export function comparisonVerdict(c: ScenarioComparison): ComparisonVerdict {
  if (c.expectationFailures.length || c.steps.some((s) => s.verdict === 'differ')) return 'failed';
  const unsupported = c.steps.filter((s) => s.verdict === 'unsupported').length;
  if (unsupported === 0) return 'agree';
  return unsupported === c.steps.length ? 'unsupported' : 'partial';
}

export function comparisonTotals(comparisons: readonly ScenarioComparison[]): { runs: Record<ComparisonVerdict, number>; steps: Record<StepVerdict, number> } {
  const runs: Record<ComparisonVerdict, number> = { agree: 0, partial: 0, unsupported: 0, failed: 0 };
  const steps: Record<StepVerdict, number> = { agree: 0, differ: 0, unsupported: 0, marked: 0 };
  for (const c of comparisons) {
    runs[comparisonVerdict(c)]++;
    for (const s of c.steps) steps[s.verdict]++;
  }
  return { runs, steps };
}

/** The closing line of diff and conform: runs by verdict, steps by verdict. */
export function formatComparisonTotals(comparisons: readonly ScenarioComparison[]): string {
  const { runs, steps } = comparisonTotals(comparisons);
  return `${comparisons.length} scenario run(s): ${runs.agree} agree, ${runs.failed} failed, ${runs.partial} agree in part, ${runs.unsupported} unsupported`
    + ` (steps: ${steps.agree} agree, ${steps.differ} differ, ${steps.unsupported} unsupported, ${steps.marked} marked)`;
}

/**
 * The report of `gmemkit diff`; under --json `{ runs, steps, comparisons }` (runs and steps
 * counted by verdict, each comparison with its `verdict`).
 */
export function diffReport(comparisons: readonly ScenarioComparison[], json: boolean): { text: string; failed: boolean } {
  const failed = comparisons.some((c) => comparisonVerdict(c) === 'failed');
  if (json) {
    const doc = { ...comparisonTotals(comparisons), comparisons: comparisons.map((c) => ({ ...c, verdict: comparisonVerdict(c) })) };
    return { text: JSON.stringify(doc, jsonReplacer, 2), failed };
  }
  return { text: [...comparisons.map(formatComparison), formatComparisonTotals(comparisons)].join('\n\n'), failed };
}

interface OpRow { cases: number; agree: number; differ: number; unsupported: number; marked: number }

/** The per-op table of `gmemkit conform`. */
export function conformTable(comparisons: readonly ScenarioComparison[]): Map<string, OpRow> {
  const rows = new Map<string, OpRow>();
  for (const c of comparisons) {
    for (const s of c.steps) {
      const row = rows.get(s.op) ?? { cases: 0, agree: 0, differ: 0, unsupported: 0, marked: 0 };
      row.cases++;
      row[s.verdict satisfies StepVerdict]++;
      rows.set(s.op, row);
    }
  }
  return new Map([...rows].sort(([a], [b]) => a.localeCompare(b)));
}

export function formatConform(comparisons: readonly ScenarioComparison[], identity: string): string {
  const rows = conformTable(comparisons);
  const total: OpRow = { cases: 0, agree: 0, differ: 0, unsupported: 0, marked: 0 };
  const lines = [
    `gmemkit conform — ${identity}`,
    `${comparisons.length} scenario runs from the bundled suite; model profile per scenario (mainline-6.18 on the probed machine for the kernel-probe rows)`,
    '',
    '| op | cases | agree | differ | unsupported | marked |',
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const [op, r] of rows) {
    lines.push(`| ${op} | ${r.cases} | ${r.agree} | ${r.differ} | ${r.unsupported} | ${r.marked} |`);
    for (const k of Object.keys(total) as (keyof OpRow)[]) total[k] += r[k];
  }
  lines.push(`| **all** | ${total.cases} | ${total.agree} | ${total.differ} | ${total.unsupported} | ${total.marked} |`);
  const notable = comparisons.filter((c) => c.steps.some((s) => s.verdict === 'differ' || s.verdict === 'marked') || c.expectationFailures.length);
  if (notable.length) lines.push('', ...notable.map(formatComparison));
  lines.push('', formatComparisonTotals(comparisons));
  return lines.join('\n');
}

function jsonReplacer(_k: string, v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
  return v;
}
