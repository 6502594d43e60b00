// The `gmemkit` command line: parses arguments, dispatches to a subcommand, and turns every
// user error into a message and exit code 2 (never a stack trace). Exit 1 means a check failed.
import { parseArgs } from 'node:util';
import { MUTANT_PROFILES, PROFILES, profileNames } from '../model/profile.js';
import { expandPaths, formatLoadError, loadScenarioFile, ScenarioError, type Scenario } from '../scenario/load.js';
import { formatHuman, toJson } from '../scenario/report.js';
import { runScenario, type ScenarioResult } from '../scenario/run.js';
import { LinuxBackend } from '../linux/linux-backend.js';
import { checkCommand } from './check-command.js';
import { compareCommand } from './compare.js';
import { exportCommand } from './export-command.js';
import { CONFORMANCE_DIR, diffReport, diffScenarios, formatConform, linuxBackendFactory } from './kernel-commands.js';
import { UsageError } from './usage.js';

const USAGE = `gmemkit — executable model and test harness for KVM guest_memfd shared<->private conversion

Usage:
  gmemkit run [options] FILE|DIR...   run scenario files and print each step
      --backend model|linux           the model (default) or the running kernel through /dev/kvm
      --profile NAME                  run under this ABI profile (default: the scenario's)
      --json                          print a machine-readable result
      --no-invariants                 do not check invariants I1-I11 after every step (model)
  gmemkit diff [--profile NAME] [--json] FILE|DIR...
                                      run on the model and on the kernel; report every step whose
                                      outcome (errno, signal, data, value, exit) differs
  gmemkit conform [--json] [DIR...]   the bundled conformance suite on both backends: a table per op
  gmemkit compare [options]           run the bundled CoCo workload under each policy and profile
      --profiles A,B                  profiles to compare (default: ipc-v8,rfc-2025,deferred,revoke)
      --policies A,B                  policies to compare (default: retry,preunmap,guest-retry,stop)
      --seed N                        scheduler seed (default 1)
      --json                          print the rows as JSON
  gmemkit check --model full|reference [options]
                                      exhaustive model checking; 'gmemkit check --help' for options
  gmemkit profiles                    list the ABI profiles
  gmemkit help                        this text

Profiles: ${profileNames().join(', ')}
Exit codes: 0 all passed, 1 an expectation failed, 2 bad input.`;


export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'run': return runCommand(rest);
      case 'diff': return diffCommand(rest);
      case 'check': return checkCommand(rest);
      case 'conform': return conformCommand(rest);
      case 'export': return exportCommand(rest);
      case 'profiles': return profilesCommand();
      case 'compare': {
        const { values, positionals } = parseFlags(rest, {
          profiles: { type: 'string' }, policies: { type: 'string' }, seed: { type: 'string' }, json: { type: 'boolean', default: false },
        });
        if (positionals.length) throw new UsageError(`compare takes no file arguments (got ${positionals.join(' ')})`);
        return compareCommand(values as { profiles?: string; policies?: string; seed?: string; json?: boolean });
      }
      case undefined: case 'help': case '--help': case '-h':
        console.log(USAGE);
        return cmd === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command '${cmd}'; commands: run, diff, conform, check, compare, profiles, help`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`gmemkit: ${e.message}\nRun 'gmemkit help' for usage.`);
      return 2;
    }
    if (e instanceof ScenarioError) {
      console.error(e.errors.map(formatLoadError).join('\n'));
      return 2;
    }
    throw e;
  }
}

/** parseArgs with errors turned into UsageError (unknown flag, missing value). */
function parseFlags<T extends NonNullable<Parameters<typeof parseArgs>[0]>['options']>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify.*$/s, ''));
  }
}

function runCommand(args: string[]): number {
  const { values, positionals } = parseFlags(args, {
    profile: { type: 'string' },
    backend: { type: 'string', default: 'model' },
    json: { type: 'boolean', default: false },
    'no-invariants': { type: 'boolean', default: false },
  });
  const profile = checkProfile(values.profile as string | undefined);
  const backendName = values.backend as string;
  if (backendName !== 'model' && backendName !== 'linux') throw new UsageError(`--backend: unknown backend '${backendName}'; allowed: model, linux`);
  const scenarios = loadAll('run', positionals);
  const backend = backendName === 'linux' ? linuxBackendFactory() : undefined;
  const results: ScenarioResult[] = [];
  for (const s of scenarios) {
    const rs = runScenario(s, { ...(profile ? { profile } : {}), invariants: !values['no-invariants'], ...(backend ? { backend } : {}) });
    results.push(...rs);
    if (!values.json) for (const r of rs) console.log(`${formatHuman(r)}\n`);
  }
  const failed = results.filter((r) => !r.passed).length;
  if (values.json) console.log(JSON.stringify(toJson(results), null, 2));
  else console.log(`${results.length - failed} scenario run(s) passed, ${failed} failed`);
  return failed ? 1 : 0;
}

function checkProfile(profile: string | undefined): string | undefined {
  if (profile !== undefined && !profileNames().includes(profile)) {
    throw new UsageError(`--profile: unknown profile '${profile}'; allowed: ${profileNames().join(', ')}`);
  }
  return profile;
}

/** Load and validate every scenario before anything runs. */
function loadAll(cmd: string, paths: string[]): Scenario[] {
  if (paths.length === 0) throw new UsageError(`${cmd}: name at least one scenario file or directory`);
  const files = expandPaths(paths);
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

function diffCommand(args: string[]): number {
  const { values, positionals } = parseFlags(args, { profile: { type: 'string' }, json: { type: 'boolean', default: false } });
  const profile = checkProfile(values.profile as string | undefined);
  const scenarios = loadAll('diff', positionals);
  const { text, failed } = diffReport(diffScenarios(scenarios, profile), values.json as boolean);
  console.log(text);
  return failed ? 1 : 0;
}

function conformCommand(args: string[]): number {
  const { values, positionals } = parseFlags(args, { json: { type: 'boolean', default: false } });
  const scenarios = loadAll('conform', positionals.length ? positionals : [CONFORMANCE_DIR]);
  const comparisons = diffScenarios(scenarios);
  const probe = new LinuxBackend();
  const id = probe.identity();
  probe.dispose();
  const { text, failed } = values.json ? diffReport(comparisons, true) : { text: formatConform(comparisons, `kernel ${id.kernel} (${id.flavour}) vs model`), failed: diffReport(comparisons, false).failed };
  console.log(text);
  return failed ? 1 : 0;
}

function profilesCommand(): number {
  for (const p of [...PROFILES, ...MUTANT_PROFILES]) console.log(`${p.name.padEnd(30)} ${p.status.padEnd(14)} ${p.title}\n${''.padEnd(45)}source: ${p.source}`);
  return 0;
}
