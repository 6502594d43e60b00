// `gmemkit check`: explicit-state model checking of the bundled reference protocol (the full
// gmemkit model is check-full.ts). Parses and validates the flags, runs the engine with
// progress on stderr, and prints a summary (or JSON) with the counterexample as numbered steps.
// It must never call process.exit or change global state: it returns the exit code.
import { check, checkLiveness } from '../checker/engine.js';
import { mib } from '../checker/memory.js';
import { ReferenceModel } from '../checker/reference/model.js';
import {
  HOLDER_KINDS, RANGES, referenceParams, validateReferenceParams, type HolderKind, type ReferenceParams,
} from '../checker/reference/params.js';
import { formatCounterexample } from '../checker/trace.js';
import { checkFullCommand } from './check-full.js';
import type { CheckResult, Progress } from '../checker/types.js';

/** Exit codes: property holds, violation found, bad usage, search incomplete. */
export const EXIT = { OK: 0, VIOLATION: 1, USAGE: 2, INCOMPLETE: 3 } as const;

const USAGE = `usage: gmemkit check --model reference [--pages N] [--holders H] [--requests C]
                     [--bug K] [--coop] [--kinds K0,K1,K2] [--semantic]
                     [--dfs | --liveness] [--symmetry] [--max-memory MB] [--json]

  --model reference   the reference protocol (docs/checker.md §3; bench/spin/gmem.pml for SPIN)
  --model full        the full gmemkit model: see 'gmemkit check --model full --help'
  --pages N           pages in the file, ${RANGES.pages[0]}..${RANGES.pages[1]} (default 3)
  --holders H         pin holders, ${RANGES.holders[0]}..${RANGES.holders[1]} (default 2)
  --requests C        conversion requests the guest may make, ${RANGES.requests[0]}..${RANGES.requests[1]} (default 2)
  --bug K             0 correct (default), 1 NOPINCHECK, 2 TOCTOU, 3 NOROLLBACK, 4 FAULTPRIV
  --coop              cooperative userspace: no new pin inside a range being made private
  --kinds K0,K1,K2    holder kinds, each ST, IOU or VFIO (default ST,IOU,VFIO)
  --semantic          check only S4, S5 and WF (not S1, S2), like gmem.pml -DSEMANTIC
  --dfs               depth-first search (default: breadth-first, shortest counterexample)
  --liveness          check 'every request completes' under weak fairness (SPIN -DLIVE -a -f)
  --symmetry          symmetry reduction over interchangeable holders (fewer states than SPIN)
  --max-memory MB     stop with the statistics so far once the search needs more than MB
  --json              print the result as JSON on stdout

exit status: 0 no violation, 1 violation found, 2 bad usage, 3 search incomplete`;

interface Flags {
  model: string;
  params: ReferenceParams;
  dfs: boolean;
  liveness: boolean;
  maxMemoryMB: number | undefined;
  json: boolean;
}

const VALUE_FLAGS = ['--model', '--pages', '--holders', '--requests', '--bug', '--kinds', '--max-memory'];
const BOOL_FLAGS = ['--coop', '--semantic', '--dfs', '--liveness', '--symmetry', '--json', '--help'];

function parseIntFlag(flag: string, v: string, lo: number, hi: number): number | string {
  if (!/^\d+$/.test(v)) return `${flag} must be an integer in ${lo}..${hi} (got '${v}')`;
  const n = Number(v);
  if (n < lo || n > hi) return `${flag} must be an integer in ${lo}..${hi} (got ${n})`;
  return n;
}

/** Parsed flags, or a usage error message naming the flag and its allowed values. */
function parseFlags(argv: string[]): Flags | string | 'help' {
  const raw = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let v: string | undefined;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) {
      v = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    if (VALUE_FLAGS.includes(a)) {
      if (v === undefined) {
        if (i + 1 >= argv.length || argv[i + 1].startsWith('--')) return `${a} needs a value`;
        v = argv[++i];
      }
      raw.set(a, v);
    } else if (BOOL_FLAGS.includes(a)) {
      if (v !== undefined) return `${a} takes no value`;
      raw.set(a, true);
    } else {
      return `unknown argument '${argv[i]}' (flags: ${[...VALUE_FLAGS, ...BOOL_FLAGS].join(' ')})`;
    }
  }
  if (raw.has('--help')) return 'help';
  const model = (raw.get('--model') as string | undefined) ?? 'reference';
  if (model !== 'reference' && model !== 'full') return `--model must be 'reference' or 'full' (got '${model}')`;

  const ints: Record<'pages' | 'holders' | 'requests' | 'bug', number | undefined> = {
    pages: undefined, holders: undefined, requests: undefined, bug: undefined,
  };
  for (const k of ['pages', 'holders', 'requests', 'bug'] as const) {
    const v = raw.get(`--${k}`);
    if (typeof v !== 'string') continue;
    const r = parseIntFlag(`--${k}`, v, RANGES[k][0], RANGES[k][1]);
    if (typeof r === 'string') return r;
    ints[k] = r;
  }
  let kinds: HolderKind[] | undefined;
  const kv = raw.get('--kinds');
  if (typeof kv === 'string') {
    const ks = kv.split(',').map((s) => s.trim().toUpperCase());
    const bad = ks.find((k) => !HOLDER_KINDS.includes(k as HolderKind));
    if (bad !== undefined) return `--kinds must list ST, IOU or VFIO, comma-separated (got '${bad}')`;
    kinds = ks as HolderKind[];
    if (ints.holders === undefined) ints.holders = kinds.length;
    if (kinds.length !== ints.holders) {
      return `--kinds must name one kind per holder: --holders is ${ints.holders}, --kinds names ${kinds.length}`;
    }
  }
  let maxMemoryMB: number | undefined;
  const mv = raw.get('--max-memory');
  if (typeof mv === 'string') {
    if (!/^\d+(\.\d+)?$/.test(mv) || Number(mv) <= 0) return `--max-memory must be a positive number of MB (got '${mv}')`;
    maxMemoryMB = Number(mv);
  }
  const dfs = raw.has('--dfs');
  const liveness = raw.has('--liveness');
  const symmetry = raw.has('--symmetry');
  if (dfs && liveness) return '--dfs and --liveness cannot be combined (liveness has its own search)';
  if (symmetry && liveness) return '--symmetry and --liveness cannot be combined (fairness is per holder)';
  const params = referenceParams({
    ...(ints.pages !== undefined ? { pages: ints.pages } : {}),
    ...(ints.holders !== undefined ? { holders: ints.holders } : {}),
    ...(ints.requests !== undefined ? { requests: ints.requests } : {}),
    ...(ints.bug !== undefined ? { bug: ints.bug } : {}),
    ...(kinds ? { kinds } : {}),
    coop: raw.has('--coop'),
    semantic: raw.has('--semantic'),
    symmetry,
  });
  const err = validateReferenceParams(params);
  if (err) return err;
  return { model, params, dfs, liveness, maxMemoryMB, json: raw.has('--json') };
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
    `search:    ${search}${f.params.symmetry ? ', symmetry reduction over holders' : ''}`,
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
  } else if (r.counterexample) {
    out.push(`result:    VIOLATION of ${r.counterexample.property}`);
    out.push(...formatCounterexample(r.counterexample));
  }
  return out;
}

export async function checkCommand(argv: string[]): Promise<number> {
  if (argv.includes('--model=full') || argv.some((a, i) => a === '--model' && argv[i + 1] === 'full')) return checkFullCommand(argv);
  const f = parseFlags(argv);
  if (f === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.OK;
  }
  if (typeof f === 'string') {
    process.stderr.write(`gmemkit check: ${f}\n${USAGE}\n`);
    return EXIT.USAGE;
  }
  const model = new ReferenceModel(f.params);
  const onProgress = (p: Progress): void => { process.stderr.write(`${progressLine(p)}\n`); };
  const opts = {
    search: f.dfs ? 'dfs' as const : 'bfs' as const,
    onProgress,
    ...(f.maxMemoryMB !== undefined ? { maxMemoryMB: f.maxMemoryMB } : {}),
  };
  const r = f.liveness ? checkLiveness(model, opts) : check(model, opts);
  if (f.json) {
    process.stdout.write(`${JSON.stringify({ ...r, params: f.params }, null, 2)}\n`);
  } else {
    process.stdout.write(`${summary(r, f).join('\n')}\n`);
  }
  return r.status === 'ok' ? EXIT.OK : r.status === 'violation' ? EXIT.VIOLATION : EXIT.INCOMPLETE;
}
