// Benchmark: the full-model checker (check --model full, the real Kernel, ModelBackend and
// userspace code) against the reference engine (check --model reference, the packed protocol
// model), measured in one run: each search in a fresh node process, interleaved so both see
// the same machine load, printing states/s of each and their ratio (issue "Sound verdicts",
// "Then fast": full model >= 10% of the engine's states/s, at least 5%).
//
//   node dist/bench/full-check.js [--reps K] [--pages N] [--holders K,K] [--requests C] [--ref N,H,C] [--replay] [--workers N]
//
// --replay also runs the full model rebuilding every successor by replaying its path (the
// previous implementation), for the speed-up of cloning worlds.
// --workers N also runs the full model on N worker threads (checkParallel: a state is sent to
// its owner as its path and replayed there), for the parallel speed-up beside one thread.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { check } from '../src/checker/engine.js';
import { FullModel } from '../src/checker/full/model.js';
import type { HolderKind } from '../src/checker/full/world.js';
import { ReferenceModel } from '../src/checker/reference/model.js';
import { referenceParams } from '../src/checker/reference/params.js';
import { IPC_V8 } from '../src/model/profile.js';
import { RETRY } from '../src/userspace/policies.js';
import { fullSpec, type FullSpec } from '../src/checker/full/spec.js';
import { checkParallel } from '../src/checker/parallel.js';

const self = fileURLToPath(import.meta.url);

interface Run { what: string; status: string; states: number; edges: number; seconds: number; cpu: number }

async function child(argv: string[]): Promise<void> {
  const [kind, a, b, c, mode] = argv;
  if (kind === 'full-parallel') {
    const spec: FullSpec = { vmType: 'sw_protected', pages: Number(a), holders: b!.split(',').filter((x) => x !== '') as HolderKind[], requests: Number(c), profile: IPC_V8.name, policy: RETRY.name, maxRetries: 2 };
    const u0 = process.cpuUsage();
    const r = await checkParallel(fullSpec(spec), { workers: Number(mode) });
    const u = process.cpuUsage(u0);
    process.stdout.write(`${JSON.stringify({ what: `${r.model} on ${r.workers} workers`, status: r.status, states: r.states, edges: r.edges, seconds: r.seconds, cpu: (u.user + u.system) / 1e6 })}\n`);
    return;
  }
  const model = kind === 'full'
    ? new FullModel({
      pages: Number(a), holders: b!.split(',').filter((x) => x !== '') as HolderKind[], requests: Number(c),
      profile: IPC_V8, policy: { ...RETRY, maxRetries: 2 }, fence: true, waitForIo: true,
    }, mode as 'clone' | 'replay')
    : new ReferenceModel(referenceParams({ pages: Number(a), holders: Number(b), requests: Number(c) }));
  const u0 = process.cpuUsage();
  const r = check(model);
  const u = process.cpuUsage(u0);
  const out: Run = { what: model.name, status: r.status, states: r.states, edges: r.edges, seconds: r.seconds, cpu: (u.user + u.system) / 1e6 };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

function run(args: string[]): Run {
  const r = spawnSync(process.execPath, [self, '--child', ...args], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`run ${args.join(' ')} failed:\n${r.stdout}${r.stderr}`);
  return JSON.parse(r.stdout) as Run;
}

function opt(argv: string[], name: string, dflt: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : dflt;
}

const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');

async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--child') {
    await child(argv.slice(1));
    return 0;
  }
  const reps = Number(opt(argv, 'reps', '1'));
  const pages = opt(argv, 'pages', '2');
  const holders = opt(argv, 'holders', 'odirect');
  const requests = opt(argv, 'requests', '1');
  const ref = opt(argv, 'ref', '3,2,2').split(',');
  if (!Number.isInteger(reps) || reps < 1 || ref.length !== 3) {
    console.error('bench/full-check: --reps must be a positive integer, --ref N,H,C');
    return 2;
  }
  const jobs: [string, string[]][] = [
    ['full', ['full', pages, holders, requests, 'clone']],
    ['reference', ['reference', ...ref]],
  ];
  if (argv.includes('--replay')) jobs.push(['full (replay)', ['full', pages, holders, requests, 'replay']]);
  const workers = opt(argv, 'workers', '');
  if (workers !== '') jobs.push([`full (${workers} workers)`, ['full-parallel', pages, holders, requests, workers]]);
  console.log(`node ${process.version}; each search in a fresh process, interleaved; ${reps} run(s) each, the fastest kept`);
  const best = new Map<string, Run>();
  for (let i = 0; i < reps; i++) {
    for (const [key, args] of jobs) {
      const r = run(args);
      console.log(`run ${i + 1}: ${r.what}: ${r.status}, ${fmt(r.states)} states, ${fmt(r.edges)} edges, ${r.seconds.toFixed(2)} s (cpu ${r.cpu.toFixed(2)} s), ${fmt(r.states / r.seconds)} states/s`);
      const b = best.get(key);
      if (!b || r.seconds < b.seconds) best.set(key, r);
    }
  }
  const full = best.get('full')!;
  const refRun = best.get('reference')!;
  const fs = full.states / full.seconds;
  const rs = refRun.states / refRun.seconds;
  console.log('');
  console.log('| search | states | edges | s | states/s |');
  console.log('|---|---|---|---|---|');
  for (const [key] of jobs) {
    const r = best.get(key)!;
    console.log(`| ${key}: ${r.what} | ${fmt(r.states)} | ${fmt(r.edges)} | ${r.seconds.toFixed(2)} | ${fmt(r.states / r.seconds)} |`);
  }
  console.log(`\nfull / reference states/s: ${(100 * fs / rs).toFixed(2)}% (CPU-time based: ${(100 * (full.states / full.cpu) / (refRun.states / refRun.cpu)).toFixed(2)}%)`);
  const replay = best.get('full (replay)');
  if (replay) console.log(`clone / replay states/s: ${(fs / (replay.states / replay.seconds)).toFixed(2)}x (counts ${replay.states === full.states && replay.edges === full.edges ? 'equal' : 'DIFFER'})`);
  const par = best.get(`full (${workers} workers)`);
  const parOk = !par || (par.states === full.states && par.edges === full.edges && par.status === full.status);
  if (par) console.log(`${workers} workers / 1: speedup ${(full.seconds / par.seconds).toFixed(2)}x wall, CPU time ${(par.cpu / full.cpu).toFixed(2)}x that of one thread (counts ${parOk ? 'equal' : 'DIFFER'})`);
  return full.status === 'ok' && refRun.status === 'ok' && parOk ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
