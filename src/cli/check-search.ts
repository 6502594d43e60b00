// What `gmemkit check` shares between its two models: the --workers and --all-violations
// options (parsed and checked against --dfs and --liveness), running the sequential or the
// parallel search, and the result lines of one or of every violated property.
// It must never print or exit: callers print the lines and return the exit code.
import { check } from '../checker/engine.js';
import { checkParallel, MAX_WORKERS, type ModelSpec } from '../checker/parallel.js';
import { formatCounterexample } from '../checker/trace.js';
import type { AnyModel, CheckOptions, CheckResult } from '../checker/types.js';
import type { OptionSpec, Parsed } from './args.js';
import { UsageError } from './usage.js';

export const SEARCH_OPTIONS: readonly OptionSpec[] = [
  { name: 'workers', arg: 'N', kind: { type: 'int', min: 1, max: MAX_WORKERS }, default: 1, help: 'search on N worker threads: breadth-first, the same states, edges and verdict as on one' },
  { name: 'all-violations', kind: { type: 'bool' }, help: 'search on after a violation: report each violated property once, with its shortest trace' },
];

export interface SearchFlags {
  readonly workers: number;
  readonly allViolations: boolean;
}

/** --workers and --all-violations; a UsageError if they meet --dfs or --liveness. */
export function searchFlags(f: Parsed, dfs: boolean, liveness: boolean): SearchFlags {
  const workers = f.number('workers')!;
  const allViolations = f.bool('all-violations');
  const other = dfs ? '--dfs' : liveness ? '--liveness' : undefined;
  if (other && workers > 1) throw new UsageError(`--workers ${workers} and ${other} cannot be combined (the parallel search is breadth-first safety checking; use --workers 1)`);
  if (other && allViolations) throw new UsageError(`--all-violations and ${other} cannot be combined (shortest traces per property need the breadth-first safety search)`);
  return { workers, allViolations };
}

/** The safety search the flags ask for: sequential for one worker, else parallel over `spec`. */
export async function runSearch(
  model: AnyModel, spec: () => ModelSpec, s: SearchFlags, opts: Omit<CheckOptions, 'allViolations'>,
): Promise<CheckResult> {
  const o = { ...opts, allViolations: s.allViolations };
  if (s.workers === 1) return check(model, o);
  const { search: _search, ...rest } = o;
  return checkParallel(spec(), { ...rest, workers: s.workers });
}

/** The counterexamples a result reports: every violated property's, or the one found. */
export function reported(r: CheckResult): CheckResult['violations'] & object {
  return r.violations ?? (r.counterexample ? [r.counterexample] : []);
}

/** `result:` and the counterexamples, numbered steps each, for a violation. */
export function violationLines(r: CheckResult): string[] {
  const ces = reported(r);
  if (r.violations === undefined) {
    const ce = ces[0]!;
    return [`result:    VIOLATION of ${ce.property}`, ...formatCounterexample(ce)];
  }
  const out = [`result:    VIOLATION of ${ces.length} ${ces.length === 1 ? 'property' : 'properties'} (each with its shortest trace): ${ces.map((c) => c.property).join('; ')}`];
  ces.forEach((ce, i) => out.push(`[${i + 1}/${ces.length}]`, ...formatCounterexample(ce)));
  return out;
}
