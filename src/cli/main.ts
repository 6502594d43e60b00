// The `gmemkit` command line: parses arguments (args.ts, one option table per command, which
// also gives its --help), dispatches to a subcommand, and turns every user error into a
// message and exit code 2 (never a stack trace). Exit 1 means a check failed; the codes are EXIT_TEXT.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MUTANT_PROFILES, PROFILES, profileNames } from '../model/profile.js';
import { formatLoadError, ScenarioError, type Scenario } from '../scenario/load.js';
import { loadAll } from './load-all.js';
import { formatTotals, HumanTrace, toJson } from '../scenario/report.js';
import { runScenario, streamScenario, type RunTally, type ScenarioResult, type StepSink } from '../scenario/run.js';
import { ChunkedWriter } from './chunked-writer.js';
import { EXIT, EXIT_TEXT, helpText, parseCommand, progressSink, type CommandSpec, type OptionSpec, type Parsed } from './args.js';
import { UsageError } from './usage.js';
import { TRACE_OPTION, traceTarget } from './out-file.js';

// Start-up is part of every run: the modules of the other commands (the checker, the C export,
// the Linux backend and koffi, the workload comparison, the simulator, the page-map view) and
// the trace recorder are imported only by the command (or option) that needs them.
const kernelCommands = () => import('./kernel-commands.js');
const traceModules = async () => {
  const [{ traceScenarioRuns }, { TraceWriter }, { writeTraceFile }] = await Promise.all([
    import('../trace/scenario-trace.js'), import('../trace/trace-events.js'), import('../trace/write.js'),
  ]);
  return { traceScenarioRuns, TraceWriter, writeTraceFile };
};
const profileOption: OptionSpec = { name: 'profile', arg: 'NAME', kind: { type: 'string' }, defaultText: "each of the scenario's profiles", help: 'run under this ABI profile' };
const jsonOption: OptionSpec = { name: 'json', kind: { type: 'bool' }, help: 'print a machine-readable result' };
const strictOption: OptionSpec = { name: 'strict', kind: { type: 'bool' }, help: 'exit 1 also when an unsupported or guarded step states no reason' };

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
    TRACE_OPTION,
  ],
  notes: "The ops a step may use, with their fields: 'gmemkit ops'.",
};

const DIFF_SPEC: CommandSpec = {
  name: 'diff',
  brief: 'the same scenarios on the model and on the kernel; every step whose outcome differs',
  synopsis: 'diff [options] FILE|DIR...',
  summary: 'Run scenarios on the model and on the kernel; report every step whose outcome (errno,\n'
    + 'signal, data, value, exit) differs, and count the steps that agree, are guarded (the same answer,\n'
    + 'decided by the backend without the kernel), differ, are unsupported (the kernel does not offer\n'
    + 'the feature), errors (no answer: a KVM_RUN timeout, an unexpected vCPU exit) or marked; the\n'
    + 'reasons of the unsupported, guarded and errored steps, grouped with counts. Exit 1 on a\n'
    + 'difference or an error.',
  positionals: 'scenario files or directories',
  options: [profileOption, jsonOption, strictOption],
  notes: 'Progress goes to stderr, only when it is a terminal.',
};

const CONFORM_SPEC: CommandSpec = {
  name: 'conform',
  brief: 'the bundled conformance suite on both backends: a table per op, exit 1 on a difference',
  synopsis: 'conform [options] [DIR...]',
  summary: 'The bundled conformance suite (or the scenarios named) on both backends: a table per op\n'
    + '(agree, guarded, differ, unsupported, errors, marked, as in diff) and the reasons grouped with\n'
    + 'counts. Exit 1 on a difference or an error.',
  positionals: 'scenario files or directories (default: the bundled conformance suite)',
  options: [jsonOption, strictOption],
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

/** Every command's spec, in the order of the usage text (loads the modules that define them). */
async function specs(): Promise<readonly CommandSpec[]> {
  const [{ COMPARE_SPEC }, { EXPORT_SPEC }, { SERVE_SPEC }, { SIMULATE_SPEC }, { VIEW_SPEC }] = await Promise.all([
    import('./compare.js'), import('./export-command.js'), import('./serve-command.js'), import('./simulate-command.js'), import('./view-command.js'),
  ]);
  return [RUN_SPEC, DIFF_SPEC, CONFORM_SPEC, COMPARE_SPEC, SIMULATE_SPEC, VIEW_SPEC, EXPORT_SPEC, PROFILES_SPEC, OPS_SPEC, SERVE_SPEC];
}
/** The commands that have a spec (and so `gmemkit COMMAND --help`). */
const SPEC_NAMES = ['run', 'diff', 'conform', 'compare', 'simulate', 'view', 'export', 'profiles', 'ops', 'serve'];
const COMMANDS = ['run', 'diff', 'conform', 'compare', 'simulate', 'view', 'check', 'export', 'profiles', 'ops', 'serve', 'help'];

/** The package version, from package.json next to the build. */
export function version(): string {
  const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../../package.json', import.meta.url)), 'utf8')) as { version: string };
  return pkg.version;
}

async function usage(): Promise<string> {
  const SPECS = await specs();
  const { REFERENCE_SPEC } = await import('./check-command.js');
  const rows: [string, string][] = [
    ...SPECS.slice(0, 6).map((s): [string, string] => [s.synopsis, s.brief ?? s.summary.split('\n')[0]!]),
    [REFERENCE_SPEC.synopsis.replace('[--model reference]', '--model reference|full'), 'exhaustive model checking (shortest counterexamples)'],
    ...SPECS.slice(6).map((s): [string, string] => [s.synopsis, s.brief ?? s.summary.split('\n')[0]!]),
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

async function helpOf(cmd: string): Promise<string> {
  if (cmd === 'check') {
    const [{ USAGE: REFERENCE_USAGE }, { FULL_USAGE }] = await Promise.all([import('./check-command.js'), import('./check-full.js')]);
    return `${REFERENCE_USAGE}\n\n${FULL_USAGE}`;
  }
  const spec = (await specs()).find((s) => s.name === cmd);
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
      case 'run': return (p = parsed(RUN_SPEC, rest)) ? await runCommand(p) : EXIT.OK;
      case 'diff': return (p = parsed(DIFF_SPEC, rest)) ? await diffCommand(p) : EXIT.OK;
      case 'check': return await (await import('./check-command.js')).checkCommand(rest);
      case 'conform': return (p = parsed(CONFORM_SPEC, rest)) ? await conformCommand(p) : EXIT.OK;
      case 'export': {
        const { EXPORT_SPEC, exportCommand } = await import('./export-command.js');
        return (p = parsed(EXPORT_SPEC, rest)) ? exportCommand(p) : EXIT.OK;
      }
      case 'profiles': return (p = parsed(PROFILES_SPEC, rest)) ? profilesCommand() : EXIT.OK;
      case 'ops':
        if ((p = parsed(OPS_SPEC, rest))) console.log((await import('./ops-listing.js')).opsListing(p.positionals));
        return EXIT.OK;
      case 'compare': {
        const { COMPARE_SPEC, compareCommand } = await import('./compare.js');
        return (p = parsed(COMPARE_SPEC, rest)) ? compareCommand(p) : EXIT.OK;
      }
      case 'serve': {
        const { SERVE_SPEC, serveCommand } = await import('./serve-command.js');
        return (p = parsed(SERVE_SPEC, rest)) ? await serveCommand(p) : EXIT.OK;
      }
      case 'simulate': {
        const { SIMULATE_SPEC, simulateCommand } = await import('./simulate-command.js');
        return (p = parsed(SIMULATE_SPEC, rest)) ? simulateCommand(p) : EXIT.OK;
      }
      case 'view': {
        const { VIEW_SPEC, viewCommand } = await import('./view-command.js');
        return (p = parsed(VIEW_SPEC, rest)) ? viewCommand(p) : EXIT.OK;
      }
      case '--version': case '-V':
        if (rest.length) throw new UsageError(`${cmd} takes no arguments (got ${rest.join(' ')})`);
        console.log(`gmemkit ${version()}`);
        return EXIT.OK;
      case 'help': case '--help': case '-h':
        if (rest.length > 1) throw new UsageError(`help takes at most one command (got ${rest.join(' ')})`);
        console.log(rest.length ? await helpOf(rest[0]!) : await usage());
        return EXIT.OK;
      case undefined:
        console.error(await usage());
        return EXIT.USAGE;
      default:
        throw new UsageError(`unknown command '${cmd}'; commands: ${COMMANDS.join(', ')} (or --version)`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      const more = cmd && SPEC_NAMES.includes(cmd) ? `gmemkit ${cmd} --help` : 'gmemkit help';
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

async function runCommand(p: Parsed): Promise<number> {
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
  const backend = backendName === 'linux' ? (await kernelCommands()).linuxBackendFactory() : undefined;
  const tracePath = traceTarget(p);
  const tracing = tracePath === undefined ? undefined : await traceModules();
  const trace = tracing && new tracing.TraceWriter();
  const opts = { ...(profile ? { profile } : {}), invariants: !values['no-invariants'], ...(backend ? { backend } : {}), ...(trace ? { observe: tracing.traceScenarioRuns(trace) } : {}) };
  const results: (ScenarioResult | RunTally)[] = [];
  if (values.json) {
    for (const s of scenarios) results.push(...runScenario(s, opts));
    console.log(JSON.stringify(toJson(results as ScenarioResult[]), null, 2));
  } else {
    // The trace is printed as the steps run (in pieces of about 64 KiB): nothing keeps a step.
    const out = new ChunkedWriter((text) => process.stdout.write(text));
    const human = new HumanTrace();
    const sink: StepSink = {
      start: (scenario, identity) => out.line(human.heading(scenario, identity)),
      step: (r) => out.line(human.step(r)),
      end: (run) => { out.line(human.verdict(run.counts)); out.line(''); out.flush(); },
    };
    for (const s of scenarios) results.push(...streamScenario(s, opts, sink));
    console.log(formatTotals(results));
  }
  const failed = results.filter((r) => !r.passed).length;
  const traceError = trace && tracing.writeTraceFile(tracePath!, trace);
  if (traceError) { console.error(`gmemkit run: ${traceError}`); return EXIT.USAGE; }
  return failed ? EXIT.FAILED : EXIT.OK;
}

function checkProfile(profile: string | undefined): string | undefined {
  if (profile !== undefined && !profileNames().includes(profile)) {
    throw new UsageError(`--profile: unknown profile '${profile}'; allowed: ${profileNames().join(', ')}`);
  }
  return profile;
}

async function diffCommand(p: Parsed): Promise<number> {
  const { diffReport, diffScenarios } = await kernelCommands();
  const profile = checkProfile(p.string('profile'));
  const scenarios = loadAll('diff', [...p.positionals]);
  const { text, failed } = diffReport(diffScenarios(scenarios, profile, progressSink(p.bool('json'))), p.bool('json'), p.bool('strict'));
  console.log(text);
  return failed ? EXIT.FAILED : EXIT.OK;
}

async function conformCommand(p: Parsed): Promise<number> {
  const { comparisonJson, comparisonsFailed, CONFORMANCE_DIR, diffScenarios, formatConform } = await kernelCommands();
  const { LinuxBackend } = await import('../linux/linux-backend.js');
  const values = { json: p.bool('json'), strict: p.bool('strict') };
  const positionals = p.positionals;
  const scenarios = loadAll('conform', positionals.length ? [...positionals] : [CONFORMANCE_DIR]);
  const comparisons = diffScenarios(scenarios, undefined, progressSink(values.json));
  const probe = new LinuxBackend();
  const id = probe.identity();
  probe.dispose();
  const text = values.json ? comparisonJson(comparisons, values.strict) : formatConform(comparisons, `kernel ${id.kernel} (${id.flavour}) vs model`, values.strict);
  const failed = comparisonsFailed(comparisons, values.strict);
  console.log(text);
  return failed ? EXIT.FAILED : EXIT.OK;
}

function profilesCommand(): number {
  for (const p of [...PROFILES, ...MUTANT_PROFILES]) console.log(`${p.name.padEnd(30)} ${p.status.padEnd(14)} ${p.title}\n${''.padEnd(45)}source: ${p.source}`);
  return 0;
}
