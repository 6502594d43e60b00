// Benchmark: the gmemkit checker against SPIN on the reference protocol, at (N,H,C) = (4,2,2)
// and (4,3,2). Builds pan from bench/spin/gmem.pml (in the repository; docs/checker.md §3)
// exactly as docs/checker.md §4.5 says (spin -a; gcc -O2 -DSAFETY -DNOREDUCE), runs both on the same
// machine in one run, and prints states, edges, times and the ratio gmemkit/SPIN. Then the
// parallel runs side by side: gmemkit with 2 worker threads beside 1, and pan built with
// -DNCORE=2 beside single-core pan, with the speedups (wall and CPU time) and ratios.
// Installs spin and gcc from Debian only when spin is not on PATH (and says so). It must
// never write outside a fresh temporary directory, nor use an absolute path to the anchor.
//
//   node dist/bench/check.js [--reps K]     (K runs of each, the fastest is reported)
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { check } from '../src/checker/engine.js';
import { ReferenceModel } from '../src/checker/reference/model.js';
import { referenceParams } from '../src/checker/reference/params.js';
import { checkParallel } from '../src/checker/parallel.js';
import { referenceSpec } from '../src/checker/reference/spec.js';

/** Configurations with pan's -w (log2 hash slots, about log2(states)+1) and -m (a depth bound above the depth reached): docs/checker.md §4.5. */
const CONFIGS = [
  { n: 4, h: 2, c: 2, w: 23, m: 500000, readme: { states: 2449311, transitions: 31288177, panS: 5.33 } },
  { n: 4, h: 3, c: 2, w: 25, m: 1000000, readme: { states: 9332623, transitions: 139985930, panS: 32.6 } },
];

const self = fileURLToPath(import.meta.url);
/** The repository root: dist/bench/check.js -> ../.. ; the Promela model is bench/spin/gmem.pml. */
const repo = resolve(dirname(self), '..', '..');
const pml = join(repo, 'bench', 'spin', 'gmem.pml');

interface GmemkitRun { states: number; edges: number; seconds: number; cpu: number; maxDepth: number; memoryMB: number; status: string }
/** Worker threads of the parallel gmemkit run, and pan's cores (-DNCORE). */
const CORES = 2;
interface PanRun { states: number; transitions: number; transitionsText: string; seconds: number; cpu: number; depth: number; errors: number }

function sh(cmd: string, args: string[], cwd?: string): { code: number; out: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return { code: r.status ?? -1, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

function onPath(cmd: string): boolean {
  return sh('sh', ['-c', `command -v ${cmd}`]).code === 0;
}

function ensureSpin(): void {
  if (onPath('spin') && onPath('gcc')) return;
  const cmd = 'apt-get update && apt-get install -y spin gcc';
  console.log(`spin or gcc is not on PATH: running '${cmd}'`);
  const r = spawnSync('sh', ['-c', cmd], { stdio: 'inherit' });
  if (r.status !== 0 || !onPath('spin')) throw new Error(`'${cmd}' failed (status ${r.status}); install SPIN 6.5.2 by hand`);
}

/**
 * spin -a, gcc -O2 -DSAFETY -DNOREDUCE, as docs/checker.md §4.5; then pan-ncore, the same with
 * -DNCORE (multi-core pan refuses `hidden` variables, so that one is generated with -DNOHIDDEN).
 */
function buildPan(dir: string, n: number, h: number, c: number): void {
  copyFileSync(pml, join(dir, 'gmem.pml'));
  for (const [out, extra, gccExtra] of [['pan', [], []], ['pan-ncore', ['-DNOHIDDEN'], [`-DNCORE=${CORES}`]]] as const) {
    const a = sh('spin', [`-DN=${n}`, `-DH=${h}`, `-DC=${c}`, ...extra, '-a', 'gmem.pml'], dir);
    if (a.code !== 0) throw new Error(`spin -a failed:\n${a.out}`);
    const g = sh('gcc', ['-O2', '-DSAFETY', '-DNOREDUCE', ...gccExtra, '-o', out, 'pan.c'], dir);
    if (g.code !== 0) throw new Error(`gcc failed:\n${g.out}`);
  }
}

function runPan(dir: string, w: number, m: number, pan = 'pan'): PanRun {
  // bash's `times` prints the children's user and system CPU time after pan exits (multi-core
  // pan's other cores are processes it forks and waits for, so they are included).
  const r = sh('bash', ['-c', `./${pan} -m${m} -w${w}; times`], dir);
  const t = /\n(\d+)m([\d.]+)s (\d+)m([\d.]+)s\s*$/.exec(r.out);
  const cpu = t ? Number(t[1]) * 60 + Number(t[2]) + Number(t[3]) * 60 + Number(t[4]) : NaN;
  const num = (re: RegExp): string => {
    const x = re.exec(r.out);
    if (!x) throw new Error(`cannot parse pan output (${re}):\n${r.out}`);
    return x[1];
  };
  if (/max search depth too small/.test(r.out)) throw new Error('pan: max search depth too small; raise -m');
  const transitionsText = num(/^\s*([\d.e+]+) transitions \(= stored\+matched\)/m);
  return {
    states: Number(num(/^\s*([\d.e+]+) states, stored/m)),
    transitions: Number(transitionsText),
    transitionsText,
    // Multi-core pan prints its totals as one search, and its time as `cpu0: elapsed time`.
    seconds: Number(num(/(?:pan|cpu0): elapsed time ([\d.e+]+) seconds/)),
    cpu,
    depth: Number(num(/depth reached (\d+)/)),
    errors: Number(num(/errors: (\d+)/)),
  };
}

/** One gmemkit run in a fresh process (cold JIT, its own heap), as JSON on stdout. */
function runGmemkit(n: number, h: number, c: number, symmetry: boolean, workers = 1): GmemkitRun {
  const r = spawnSync(process.execPath, [self, '--child', String(n), String(h), String(c), symmetry ? '1' : '0', String(workers)],
    { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`gmemkit run failed:\n${r.stdout}${r.stderr}`);
  return JSON.parse(r.stdout) as GmemkitRun;
}

async function child(argv: string[]): Promise<void> {
  const [n, h, c, sym, workers] = argv.map(Number);
  const params = referenceParams({ pages: n, holders: h, requests: c, symmetry: sym === 1 });
  const res = workers === 1 ? check(new ReferenceModel(params)) : await checkParallel(referenceSpec(params), { workers: workers! });
  const u = process.cpuUsage(); // the whole process, start-up included, like pan's

  const out: GmemkitRun = {
    states: res.states, edges: res.edges, seconds: res.seconds, cpu: (u.user + u.system) / 1e6, maxDepth: res.maxDepth,
    memoryMB: res.memoryBytes / 1048576, status: res.status,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

const fmt = (x: number): string => x.toLocaleString('en-US');

/** Do gmemkit's edges match pan's transitions - 1, to the digits pan printed? */
function edgesAgree(edges: number, pan: PanRun): string {
  if (/e/.test(pan.transitionsText)) {
    const digits = pan.transitionsText.replace(/e.*$/, '').replace(/[^\d]/g, '').length;
    const same = Number((edges + 1).toPrecision(digits)) === pan.transitions;
    return same ? `yes (pan prints ${digits} significant digits)` : 'NO';
  }
  return edges + 1 === pan.transitions ? 'yes (exact)' : 'NO';
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--child') {
    await child(argv.slice(1));
    return 0;
  }
  let reps = 1;
  const ri = argv.indexOf('--reps');
  if (ri >= 0) {
    reps = Number(argv[ri + 1]);
    if (!Number.isInteger(reps) || reps < 1) {
      console.error('bench/check: --reps must be a positive integer');
      return 2;
    }
  }
  if (!existsSync(pml)) {
    console.error(`bench/check: ${pml} not found (bench/spin/gmem.pml is part of the repository)`);
    return 2;
  }
  ensureSpin();
  console.log(`${sh('spin', ['-V']).out.trim()}; gcc ${sh('gcc', ['-dumpfullversion']).out.trim()}; node ${process.version}`);
  console.log('anchor: bench/spin/gmem.pml (docs/checker.md §3)');
  console.log(`pan: spin -DN=.. -DH=.. -DC=.. -a gmem.pml && gcc -O2 -DSAFETY -DNOREDUCE -o pan pan.c && ./pan -m.. -w..`);
  console.log(`gmemkit: check(reference N,H,C) breadth-first, one fresh node process per run; ${reps} run(s) each, fastest kept\n`);
  const rows: string[][] = [];
  const prows: string[][] = [];
  let ok = true;
  for (const cfg of CONFIGS) {
    const { n, h, c } = cfg;
    const dir = mkdtempSync(join(tmpdir(), 'gmemkit-bench-'));
    try {
      buildPan(dir, n, h, c);
      let pan: PanRun | undefined;
      let panN: PanRun | undefined;
      let plain: GmemkitRun | undefined;
      let sym: GmemkitRun | undefined;
      let par: GmemkitRun | undefined;
      for (let i = 0; i < reps; i++) {
        // Interleaved, so all see the same machine load.
        const p = runPan(dir, cfg.w, cfg.m);
        if (!pan || p.seconds < pan.seconds) pan = p;
        const g = runGmemkit(n, h, c, false);
        if (!plain || g.seconds < plain.seconds) plain = g;
        const s = runGmemkit(n, h, c, true);
        if (!sym || s.seconds < sym.seconds) sym = s;
        const pn = runPan(dir, cfg.w, cfg.m, 'pan-ncore');
        if (!panN || pn.seconds < panN.seconds) panN = pn;
        const g2 = runGmemkit(n, h, c, false, CORES);
        if (!par || g2.seconds < par.seconds) par = g2;
        console.log(`(${n},${h},${c}) run ${i + 1}: pan ${p.seconds} s (cpu ${p.cpu.toFixed(2)}), `
          + `gmemkit ${g.seconds.toFixed(2)} s (cpu ${g.cpu.toFixed(2)}), `
          + `gmemkit+symmetry ${s.seconds.toFixed(2)} s (cpu ${s.cpu.toFixed(2)}), `
          + `pan NCORE=${CORES} ${pn.seconds} s (cpu ${pn.cpu.toFixed(2)}), `
          + `gmemkit ${CORES} workers ${g2.seconds.toFixed(2)} s (cpu ${g2.cpu.toFixed(2)})`);
      }
      if (!pan || !plain || !sym || !panN || !par) throw new Error('no runs');
      const parOk = par.states === plain.states && par.edges === plain.edges && par.status === 'ok';
      const panNOk = panN.states === pan.states && panN.errors === 0;
      if (!parOk || !panNOk) ok = false;
      prows.push([
        `(${n},${h},${c})`,
        `${plain.seconds.toFixed(2)} (${plain.cpu.toFixed(2)})`, `${par.seconds.toFixed(2)} (${par.cpu.toFixed(2)})`,
        `${(plain.seconds / par.seconds).toFixed(2)} / ${(plain.cpu / par.cpu).toFixed(2)}`,
        parOk ? 'yes' : 'NO',
        `${pan.seconds.toFixed(2)} (${pan.cpu.toFixed(2)})`, `${panN.seconds.toFixed(2)} (${panN.cpu.toFixed(2)})`,
        `${(pan.seconds / panN.seconds).toFixed(2)} / ${(pan.cpu / panN.cpu).toFixed(2)}`,
        panNOk ? `yes (${fmt(panN.states)})` : `NO (${fmt(panN.states)})`,
        `${(par.seconds / panN.seconds).toFixed(2)} / ${(par.cpu / panN.cpu).toFixed(2)}`,
      ]);
      const statesOk = pan.states === plain.states;
      const edgesOk = edgesAgree(plain.edges, pan);
      if (!statesOk || edgesOk === 'NO' || pan.errors !== 0 || plain.status !== 'ok') ok = false;
      rows.push([
        `(${n},${h},${c})`,
        fmt(pan.states), fmt(plain.states), statesOk ? 'yes' : 'NO',
        /e/.test(pan.transitionsText) ? `${pan.transitionsText} - 1` : fmt(pan.transitions - 1), fmt(plain.edges), edgesOk,
        pan.seconds.toFixed(2), plain.seconds.toFixed(2),
        `${sym.seconds.toFixed(2)} (${fmt(sym.states)} states)`,
        (plain.seconds / pan.seconds).toFixed(2), (sym.seconds / pan.seconds).toFixed(2),
        `${(plain.cpu / pan.cpu).toFixed(2)} / ${(sym.cpu / pan.cpu).toFixed(2)}`,
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const head = ['config', 'states SPIN', 'states gmemkit', 'equal', 'edges SPIN (transitions-1)', 'edges gmemkit',
    'equal', 'SPIN pan s', 'gmemkit s (no reduction)', 'gmemkit s (symmetry)', 'ratio', 'ratio (symmetry)',
    'CPU-time ratio (plain / symmetry)'];
  console.log('');
  console.log(`| ${head.join(' | ')} |`);
  console.log(`|${head.map(() => '---').join('|')}|`);
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
  console.log('\nratio = gmemkit s / SPIN pan s (search time only, single thread, invariants checked in every state).');
  console.log('CPU-time ratio = user+system CPU of the whole gmemkit process / of the whole pan process (steadier on a busy machine).');
  console.log('symmetry: holders of the same behaviour (IOU, VFIO) are interchangeable; it changes nothing at H=2 (ST, IOU).');
  const phead = ['config', 'gmemkit 1 worker s (CPU s)', `gmemkit ${CORES} workers s (CPU s)`, 'speedup wall / CPU',
    'states, edges equal', 'SPIN pan s (CPU s)', `SPIN NCORE=${CORES} s (CPU s)`, 'speedup wall / CPU',
    'states equal', `ratio gmemkit ${CORES}w / SPIN NCORE=${CORES} wall / CPU`];
  console.log(`\nParallel (${CORES} worker threads; pan -DNCORE=${CORES}, generated with -DNOHIDDEN):`);
  console.log(`| ${phead.join(' | ')} |`);
  console.log(`|${phead.map(() => '---').join('|')}|`);
  for (const r of prows) console.log(`| ${r.join(' | ')} |`);
  console.log('speedup = time of one / time of the parallel run (wall: elapsed; CPU: user+system of the whole process tree,');
  console.log('so a CPU speedup below 1 is the price of the parallel work). On a machine whose cores other jobs share,');
  console.log('the wall speedup is bounded by the cores left free, not by the search.');
  if (!ok) console.log('\nMISMATCH: gmemkit and SPIN disagree (see the table)');
  return ok ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
