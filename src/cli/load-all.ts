// Loading the scenario files a command names, all before anything runs: every file's errors are
// collected into one ScenarioError. Shared by run, diff, conform and export.
import { expandPaths, loadScenarioFile, ScenarioError, type Scenario } from '../scenario/load.js';
import { UsageError } from './usage.js';

/** Load and validate every scenario before anything runs. */
export function loadAll(cmd: string, paths: readonly string[]): Scenario[] {
  if (paths.length === 0) throw new UsageError(`${cmd}: name at least one scenario file or directory`);
  const files = expandPaths([...paths]);
  if (files.length === 0) throw new UsageError(`${cmd}: no .yaml, .yml or .json files in ${paths.join(', ')}`);
  const scenarios: Scenario[] = [];
  const errors: ScenarioError[] = [];
  for (const f of files) {
    try { scenarios.push(loadScenarioFile(f)); } catch (e) {
      if (!(e instanceof ScenarioError)) throw e;
      errors.push(e);
    }
  }
  if (errors.length) throw new ScenarioError(errors.flatMap((e) => e.errors));
  return scenarios;
}
