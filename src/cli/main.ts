// The `gmemkit` command line: parses arguments (args.ts, one option table per command, which
// also gives its --help), dispatches to a subcommand, and turns every user error into a
// message and exit code 2 (never a stack trace). Exit 1 means a check failed; the codes are EXIT_TEXT.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MUTANT_PROFILES, PROFILES, profileNames } from '../model/profile.js';
import { expandPaths, formatLoadError, loadScenarioFile, ScenarioError, type Scenario } from '../scenario/load.js';
import { formatHuman, formatTotals, toJson } from '../scenario/report.js';
import { runScenario, type ScenarioResult } from '../scenario/run.js';
import { LinuxBackend } from '../linux/linux-backend.js';
import { EXIT, EXIT_TEXT, helpText, parseCommand, progressSink, type CommandSpec, type OptionSpec, type Parsed } from './args.js';
import { checkCommand, REFERENCE_SPEC, USAGE as REFERENCE_USAGE } from './check-command.js';
import { FULL_USAGE } from './check-full.js';
import { COMPARE_SPEC, compareCommand } from './compare.js';
import { opsListing } from './ops-listing.js';
import { EXPORT_SPEC, exportCommand } from './export-command.js';
import { CONFORMANCE_DIR, diffReport, diffScenarios, formatConform, linuxBackendFactory } from './kernel-commands.js';
import { UsageError } from './usage.js';

const profileOption: OptionSpec = { name: 'profile', arg: 'NAME', kind: { type: 'string' }, defaultText: "each of the scenario's profiles", help: 'run under this ABI profile' };
const jsonOption: OptionSpec = { name: 'json', kind: { type: 'bool' }, help: 'print a machine-readable result' };

const RUN_SPEC: CommandSpec = {
  name: 'run',
  brief: 'run scenarios step by step on the model (default) or the running kernel',
  synopsis: 'run [options] FILE|DIR...',
  summary: 'Run scenario files and print each step with its outcome; a summary counts the runs and\n'
    + 'their steps: passed, failed, and unsupported (the backend cannot run them).',
  positionals: 'scenario files (.yaml, .yml, .json) or directories of them',
  options: [
    { name: 'backend', kind: { type: 'string', choices: ['model', 'linux'] }, default: 'model', help: 'the model, or the running kernel through /dev/kvm' },
    profileOption,
    jsonOption,
    { name: 'no-invariants', kind: { type: 'bool' }, help: 'do not check invariants I1-I11 after every step (model)' },
  ],
  notes: "The ops a step may use, with their fields: 'gmemkit ops'.",
};

const DIFF_SPEC: CommandSpec = {
  name: 'diff',
  brief: 'the same scenarios on the model and on the kernel; every step whose outcome differs',
  synopsis: 'diff [options] FILE|DIR...',
  summary: 'Run scenarios on the model and on the kernel; report every step whose outcome (errno,\n'
    + 'signal, data, value, exit) differs, and count the steps that agree, differ, are unsupported or marked.',
  positionals: 'scenario files or directories',
  options: [profileOption, jsonOption],
  notes: 'Progress goes to stderr, only when it is a terminal.',
};

const CONFORM_SPEC: CommandSpec = {
  name: 'conform',
  brief: 'the bundled conformance suite on both backends: a table per op, exit 1 on a difference',
  synopsis: 'conform [options] [DIR...]',
  summary: 'The bundled conformance suite (or the scenarios named) on both backends: a table per op.',
  positionals: 'scenario files or directories (default: the bundled conformance suite)',
  options: [jsonOption],
  notes: 'Progress goes to stderr, only when it is a terminal.',
};

const PROFILES_SPEC: CommandSpec = { name: 'profiles', synopsis: 'profiles', brief: 'the ABI profiles, design variants and mutants', summary: 'List the ABI profiles, design variants and mutants.', options: [] };

const OPS_SPEC: CommandSpec = {
  name: 'ops',
  brief: 'the scenario ops with their fields (request_start, manager_step, ... included)',
  synopsis: 'ops [OP...]',
  summary: 'List the scenario ops (all, or those named) with their fields, kinds and defaults.',
  positionals: 'op names',
  options: [],
};

const SPECS: readonly CommandSpec[] = [RUN_SPEC, DIFF_SPEC, CONFORM_SPEC, COMPARE_SPEC, EXPORT_SPEC, PROFILES_SPEC, OPS_SPEC];
const COMMANDS = ['run', 'diff', 'conform', 'compare', 'check', 'export', 'profiles', 'ops', 'help'];

/** The package version, from package.json next to the build. */
export function version(): string {
  const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../../package.json', import.meta.url)), 'utf8')) as { version: string };
  return pkg.version;
}

function usage(): string {
  const rows: [string, string][] = [
    ...SPECS.slice(0, 4).map((s): [string, string] => [s.synopsis, s.brief ?? s.summary.split('\n')[0]!]),
    [REFERENCE_SPEC.synopsis.replace('[--model reference]', '--model reference|full'), 'exhaustive model checking (shortest counterexamples)'],
    ...SPECS.slice(4).map((s): [string, string] => [s.synopsis, s.brief ?? s.summary.split('\n')[0]!]),
    ['help [COMMAND]', 'this text, or the options of COMMAND (also: gmemkit COMMAND --help)'],
    ['--version', `print the version (${version()}) and exit 0 (also -V)`],
  ];
  return `gmemkit — executable model and test harness for KVM guest_memfd shared<->private conversion

Usage:
${rows.map(([a, b]) => `  gmemkit ${a}\n      ${b}`).join('\n')}

'gmemkit COMMAND --help' lists the options of each command.
Profiles: ${profileNames().join(', ')}

${EXIT_TEXT}`;
}

function helpOf(cmd: string): string {
  if (cmd === 'check') return `${REFERENCE_USAGE}\n\n${FULL_USAGE}`;
  const spec = SPECS.find((s) => s.name === cmd);
  if (!spec) throw new UsageError(`help: unknown command '${cmd}'; commands: ${COMMANDS.join(', ')}`);
  return helpText(spec);
}

/** Parse argv for a command; print its help (and return undefined) on --help. */
function parsed(spec: CommandSpec, argv: readonly string[]): Parsed | undefined {
  const p = parseCommand(spec, argv);
  if (p === 'help') {
    console.log(helpText(spec));
    return undefined;
  }
  return p;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  let p: Parsed | undefined;
  try {
    switch (cmd) {
      case 'run': return (p = parsed(RUN_SPEC, rest)) ? runCommand(p) : EXIT.OK;
      case 'diff': return (p = parsed(DIFF_SPEC, rest)) ? diffCommand(p) : EXIT.OK;
      case 'check': return checkCommand(rest);
      case 'conform': return (p = parsed(CONFORM_SPEC, rest)) ? conformCommand(p) : EXIT.OK;
      case 'export': return (p = parsed(EXPORT_SPEC, rest)) ? exportCommand(p) : EXIT.OK;
      case 'profiles': return (p = parsed(PROFILES_SPEC, rest)) ? profilesCommand() : EXIT.OK;
      case 'ops':
        if ((p = parsed(OPS_SPEC, rest))) console.log(opsListing(p.positionals));
        return EXIT.OK;
      case 'compare': return (p = parsed(COMPARE_SPEC, rest)) ? compareCommand(p) : EXIT.OK;
      case '--version': case '-V':
        if (rest.length) throw new UsageError(`${cmd} takes no arguments (got ${rest.join(' ')})`);
        console.log(`gmemkit ${version()}`);
        return EXIT.OK;
      case 'help': case '--help': case '-h':
        if (rest.length > 1) throw new UsageError(`help takes at most one command (got ${rest.join(' ')})`);
        console.log(rest.length ? helpOf(rest[0]!) : usage());
        return EXIT.OK;
      case undefined:
        console.error(usage());
        return EXIT.USAGE;
      default:
        throw new UsageError(`unknown command '${cmd}'; commands: ${COMMANDS.join(', ')} (or --version)`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      const more = cmd && SPECS.some((s) => s.name === cmd) ? `gmemkit ${cmd} --help` : 'gmemkit help';
      console.error(`gmemkit: ${e.message}\nRun '${more}' for usage.`);
      return EXIT.USAGE;
    }
    if (e instanceof ScenarioError) {
      console.error(e.errors.map(formatLoadError).join('\n'));
      return EXIT.USAGE;
    }
    throw e;
  }
}

function runCommand(p: Parsed): number {
  const values = { json: p.bool('json'), 'no-invariants': p.bool('no-invariants') };
  const profile = checkProfile(p.string('profile'));
  const backendName = p.string('backend');
  let scenarios: Scenario[];
  try {
    scenarios = loadAll('run', [...p.positionals]);
  } catch (e) {
    // Under --json a validation error is JSON too, on stdout (exit 2 as always).
    if (!values.json || !(e instanceof ScenarioError)) throw e;
    console.log(JSON.stringify({ error: 'invalid scenario', errors: e.errors.map((x) => ({ ...x, text: formatLoadError(x) })) }, null, 2));
    return 2;
  }
  const backend = backendName === 'linux' ? linuxBackendFactory() : undefined;
  const results: ScenarioResult[] = [];
  for (const s of scenarios) {
    const rs = runScenario(s, { ...(profile ? { profile } : {}), invariants: !values['no-invariants'], ...(backend ? { backend } : {}) });
    results.push(...rs);
    if (!values.json) for (const r of rs) console.log(`${formatHuman(r)}\n`);
  }
  const failed = results.filter((r) => !r.passed).length;
  if (values.json) console.log(JSON.stringify(toJson(results), null, 2));
  else console.log(formatTotals(results));
  return failed ? EXIT.FAILED : EXIT.OK;
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

function diffCommand(p: Parsed): number {
  const profile = checkProfile(p.string('profile'));
  const scenarios = loadAll('diff', [...p.positionals]);
  const { text, failed } = diffReport(diffScenarios(scenarios, profile, progressSink(p.bool('json'))), p.bool('json'));
  console.log(text);
  return failed ? EXIT.FAILED : EXIT.OK;
}

function conformCommand(p: Parsed): number {
  const values = { json: p.bool('json') };
  const positionals = p.positionals;
  const scenarios = loadAll('conform', positionals.length ? [...positionals] : [CONFORMANCE_DIR]);
  const comparisons = diffScenarios(scenarios, undefined, progressSink(values.json));
  const probe = new LinuxBackend();
  const id = probe.identity();
  probe.dispose();
  const { text, failed } = values.json ? diffReport(comparisons, true) : { text: formatConform(comparisons, `kernel ${id.kernel} (${id.flavour}) vs model`), failed: diffReport(comparisons, false).failed };
  console.log(text);
  return failed ? EXIT.FAILED : EXIT.OK;
}

function profilesCommand(): number {
  for (const p of [...PROFILES, ...MUTANT_PROFILES]) console.log(`${p.name.padEnd(30)} ${p.status.padEnd(14)} ${p.title}\n${''.padEnd(45)}source: ${p.source}`);
  return 0;
}
