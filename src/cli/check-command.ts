// `gmemkit check`: explicit-state model checking of the bundled reference protocol (the full
// gmemkit model is check-full.ts). Parses and validates the flags, runs the engine with
// progress on stderr, and prints a summary (or JSON) with the counterexample as numbered steps.
// It must never call process.exit or change global state: it returns the exit code.
import { checkLiveness } from '../checker/engine.js';
import { mib } from '../checker/memory.js';
import { ReferenceModel } from '../checker/reference/model.js';
import {
  BUG_NAMES, HOLDER_KINDS, RANGES, referenceParams, validateReferenceParams, type HolderKind, type ReferenceParams,
} from '../checker/reference/params.js';
import { referenceSpec } from '../checker/reference/spec.js';
import { checkFullCommand } from './check-full.js';
import { runSearch, SEARCH_OPTIONS, searchFlags, violationLines, type SearchFlags } from './check-search.js';
import type { CheckResult, Progress } from '../checker/types.js';
import { EXIT, helpText, MAX_MEMORY_MB, parseCommand, progressSink, type CommandSpec } from './args.js';
import { UsageError } from './usage.js';

const D = referenceParams();

/** The options of `gmemkit check --model reference`; the defaults are gmem.pml's (referenceParams()). */
export const REFERENCE_SPEC: CommandSpec = {
  name: 'check',
  synopsis: 'check [--model reference] [options]',
  summary: 'Exhaustive model checking of the reference protocol (docs/checker.md §3; bench/spin/gmem.pml for SPIN);\n'
    + "'gmemkit check --model full --help' for the full gmemkit model.",
  options: [
    { name: 'model', arg: 'reference|full', kind: { type: 'string', choices: ['reference', 'full'] }, default: 'reference', help: 'the reference protocol, or the full gmemkit model' },
    { name: 'pages', kind: { type: 'int', min: RANGES.pages[0], max: RANGES.pages[1] }, default: D.pages, help: 'pages in the file' },
    { name: 'holders', arg: 'H', kind: { type: 'int', min: RANGES.holders[0], max: RANGES.holders[1] }, default: D.holders, help: 'pin holders' },
    { name: 'requests', arg: 'C', kind: { type: 'int', min: RANGES.requests[0], max: RANGES.requests[1] }, default: D.requests, help: 'conversion requests the guest may make' },
    { name: 'bug', arg: 'K', kind: { type: 'int', min: RANGES.bug[0], max: RANGES.bug[1] }, default: D.bug, help: `a seeded bug: ${BUG_NAMES.map((n, i) => `${i} ${n}`).join(', ')}` },
    { name: 'coop', kind: { type: 'bool' }, help: 'cooperative userspace: no new pin inside a range being made private' },
    { name: 'kinds', arg: 'K0,K1,K2', kind: { type: 'string' }, defaultText: D.kinds.join(','), help: `holder kinds, one per holder, each ${HOLDER_KINDS.join(', ')}; by default the first H of ${HOLDER_KINDS.join(',')}` },
    { name: 'semantic', kind: { type: 'bool' }, help: 'check only S4, S5 and WF (not S1, S2), like gmem.pml -DSEMANTIC' },
    { name: 'dfs', kind: { type: 'bool' }, help: 'depth-first search (default: breadth-first, shortest counterexample)' },
    { name: 'liveness', kind: { type: 'bool' }, help: "check 'every request completes' under weak fairness (SPIN -DLIVE -a -f)" },
    { name: 'symmetry', kind: { type: 'bool' }, help: 'symmetry reduction over interchangeable holders (fewer states than SPIN)' },
    { name: 'max-memory', arg: 'MB', kind: { type: 'positive', max: MAX_MEMORY_MB }, help: 'stop with the statistics so far once the search needs more than MB (exit 3)' },
    ...SEARCH_OPTIONS,
    { name: 'json', kind: { type: 'bool' }, help: 'print the result as JSON on stdout (no progress on stderr)' },
  ],
  notes: 'Progress goes to stderr, only when it is a terminal.',
};

export const USAGE = helpText(REFERENCE_SPEC);

interface Flags {
  model: string;
  params: ReferenceParams;
  dfs: boolean;
  liveness: boolean;
  maxMemoryMB: number | undefined;
  json: boolean;
  search: SearchFlags;
}

/** Parsed flags, or a usage error message naming the flag and its allowed values. */
export function parseReferenceFlags(argv: readonly string[]): Flags | string | 'help' {
  let f;
  try {
    f = parseCommand(REFERENCE_SPEC, argv);
  } catch (e) {
    if (e instanceof UsageError) return e.message;
    throw e;
  }
  if (f === 'help') return 'help';
  const ints = { pages: f.number('pages')!, holders: f.number('holders')!, requests: f.number('requests')!, bug: f.number('bug')! };
  let kinds: HolderKind[] | undefined;
  const kv = f.string('kinds');
  if (kv !== undefined) {
    const ks = kv.split(',').map((s) => s.trim().toUpperCase());
    const bad = ks.find((k) => !HOLDER_KINDS.includes(k as HolderKind));
    if (bad !== undefined) return `--kinds must list ST, IOU or VFIO, comma-separated (got '${bad}')`;
    kinds = ks as HolderKind[];
    if (!f.has('holders')) ints.holders = kinds.length;
    if (kinds.length !== ints.holders) {
      return `--kinds must name one kind per holder: --holders is ${ints.holders}, --kinds names ${kinds.length}`;
    }
  }
  const dfs = f.bool('dfs');
  const liveness = f.bool('liveness');
  const symmetry = f.bool('symmetry');
  if (dfs && liveness) return '--dfs and --liveness cannot be combined (liveness has its own search)';
  if (symmetry && liveness) return '--symmetry and --liveness cannot be combined (fairness is per holder)';
  let search: SearchFlags;
  try {
    search = searchFlags(f, dfs, liveness);
  } catch (e) {
    if (e instanceof UsageError) return e.message;
    throw e;
  }
  const params = referenceParams({ ...ints, ...(kinds ? { kinds } : {}), coop: f.bool('coop'), semantic: f.bool('semantic'), symmetry });
  const err = validateReferenceParams(params);
  if (err) return err;
  return { model: f.string('model')!, params, dfs, liveness, maxMemoryMB: f.number('max-memory'), json: f.bool('json'), search };
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

function progressLine(p: Progress): string {
  return `check: ${fmt(p.states)} states (${fmt(p.statesPerSecond)}/s), ${fmt(p.edges)} edges, `
    + `depth ${fmt(p.depth)}, queue ${fmt(p.queue)}, ${mib(p.memoryBytes)} MB, ${p.seconds.toFixed(0)} s`;
}

function summary(r: CheckResult, f: Flags): string[] {
  // A complete safety search without reduction explores the same graph as SPIN -DNOREDUCE.
  const spinComparable = r.status === 'ok' && !f.liveness && !f.params.symmetry;
  const search = r.search === 'bfs' ? 'breadth-first' : r.search === 'dfs' ? 'depth-first (iterative)'
    : 'liveness (whole graph, fair SCCs)';
  const out = [
    `model:     ${r.model}`,
    `search:    ${search}${f.params.symmetry ? ', symmetry reduction over holders' : ''}${r.workers ? `, ${r.workers} worker threads` : ''}${f.search.allViolations ? ', every violated property' : ''}`,
    `states:    ${fmt(r.states)}`,
    `edges:     ${fmt(r.edges)}${spinComparable ? ` (SPIN NOREDUCE reports transitions = edges + 1 = ${fmt(r.edges + 1)})` : ''}`,
    `max depth: ${fmt(r.maxDepth)}`,
    `time:      ${r.seconds.toFixed(2)} s (${fmt(r.states / Math.max(r.seconds, 1e-9))} states/s, `
      + `${fmt(r.edges / Math.max(r.seconds, 1e-9))} edges/s)`,
    `memory:    ${mib(r.memoryBytes)} MB (search structures)`,
  ];
  if (r.status === 'ok') {
    const props = f.liveness ? 'every request completes (weak fairness), and the safety properties'
      : f.params.semantic ? 'S3, S4, S5, WF' : 'S1, S2, S3, S4, S5, WF';
    out.push(`result:    ok, no violation (${props})`);
  } else if (r.status === 'incomplete') {
    out.push(`result:    INCOMPLETE: ${r.stopReason ?? ''}`);
    if (r.violations?.length) out.push(...violationLines(r));
  } else if (r.counterexample) {
    out.push(...violationLines(r));
  }
  return out;
}

/** The value of --model in argv (the two models have different options). */
function modelOf(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--model') return argv[i + 1];
    if (argv[i]!.startsWith('--model=')) return argv[i]!.slice('--model='.length);
  }
  return undefined;
}

export async function checkCommand(argv: string[]): Promise<number> {
  if (modelOf(argv) === 'full') return checkFullCommand(argv);
  const f = parseReferenceFlags(argv);
  if (f === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.OK;
  }
  if (typeof f === 'string') {
    process.stderr.write(`gmemkit check: ${f}\nRun 'gmemkit check --help' for the options.\n`);
    return EXIT.USAGE;
  }
  const model = new ReferenceModel(f.params);
  const sink = progressSink(f.json);
  const opts = {
    search: f.dfs ? 'dfs' as const : 'bfs' as const,
    ...(sink ? { onProgress: (p: Progress): void => sink(progressLine(p)) } : {}),
    ...(f.maxMemoryMB !== undefined ? { maxMemoryMB: f.maxMemoryMB } : {}),
  };
  const r = f.liveness ? checkLiveness(model, opts) : await runSearch(model, () => referenceSpec(f.params), f.search, opts);
  if (f.json) {
    process.stdout.write(`${JSON.stringify({ ...r, params: f.params }, null, 2)}\n`);
  } else {
    process.stdout.write(`${summary(r, f).join('\n')}\n`);
  }
  return r.status === 'ok' ? EXIT.OK : r.status === 'violation' ? EXIT.FAILED : EXIT.INCOMPLETE;
}
