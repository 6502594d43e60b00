// `gmemkit simulate`: the CoCo guest simulator (src/sim/) from the command line: one run or a
// sweep of parameter lists and seeds, a shard of it (`--shard i/n`, for array jobs) written with
// `--out`, and `--merge` of the shard files. Metrics on stdout (a list, a table, or `--json`),
// a progress bar on stderr (only a terminal, never under --json), `--trace` for Perfetto.
import { readFileSync, writeFileSync } from 'node:fs';
import { PROFILES } from '../model/profile.js';
import { POLICIES } from '../userspace/policies.js';
import { checkParams, SIM_DEFAULTS, SIM_HOLDERS, simulate, swiotlbOf, type SimHolder, type SimMetrics, type SimParams } from '../sim/simulate.js';
import { expandSweep, formatSize, mergeShards, parseSeeds, parseShard, parseSize, shardIndices, type ShardFile, type SweepSpec } from '../sim/sweep.js';
import { TraceWriter } from '../trace/trace-events.js';
import { writeTraceFile } from '../trace/write.js';
import { TRACE_OPTION, traceTarget, unwritable } from './out-file.js';
import { EXIT, type CommandSpec, type Parsed } from './args.js';
import { UsageError } from './usage.js';

const CONVERTING = PROFILES.filter((p) => p.conversion === 'gmem-ioctl').map((p) => p.name);

export const SIMULATE_SPEC: CommandSpec = {
  name: 'simulate',
  brief: 'the CoCo guest simulator: TiB guests, vCPUs, MapGPA chunks, bounce churn, holders; sweeps and shards',
  synopsis: 'simulate [options] | simulate --merge SHARD.json...',
  summary: 'Simulate a CoCo (TDX) guest: it accepts all of its RAM as private at boot in MapGPA requests,\n'
    + 'gives the swiotlb area back as shared, then converts bounce buffers back and forth while the\n'
    + "VMM's holders pin what they use. Prints the run's metrics. Options marked LIST take a comma list;\n"
    + 'several values make a sweep (every combination, one run each).',
  positionals: 'with --merge: the shard files written by --shard i/n --out FILE',
  options: [
    { name: 'guest-size', arg: 'SIZE', kind: { type: 'string' }, default: '4G', help: 'guest RAM (K, M, G, T suffixes), LIST' },
    { name: 'vcpus', arg: 'N', kind: { type: 'string' }, default: String(SIM_DEFAULTS.vcpus), help: 'vCPUs issuing MapGPA requests, LIST' },
    { name: 'chunk', arg: 'SIZE', kind: { type: 'string' }, default: '2M', help: 'MapGPA request size at boot, LIST' },
    { name: 'swiotlb', arg: 'SIZE', kind: { type: 'string' }, defaultText: '64M, a quarter of a guest below 256M', help: 'the bounce area, shared after boot' },
    { name: 'bounces', arg: 'N', kind: { type: 'string' }, default: String(SIM_DEFAULTS.bounces), help: 'bounce-buffer conversions after boot (churn), LIST' },
    { name: 'bounce-size', arg: 'SIZE', kind: { type: 'string' }, default: '64K', help: 'size of each bounce-buffer conversion' },
    { name: 'holders', arg: 'K,K', kind: { type: 'string' }, default: SIM_DEFAULTS.holders.join(','), help: `pin holders: ${SIM_HOLDERS.join(', ')} (vfio maps all of RAM; 'none' for none)` },
    { name: 'profile', arg: 'P', kind: { type: 'string' }, default: SIM_DEFAULTS.profile, help: `kernel profile, LIST: ${CONVERTING.join(', ')}` },
    { name: 'policy', arg: 'P', kind: { type: 'string' }, default: SIM_DEFAULTS.policy, help: `manager policy, LIST: ${POLICIES.map((p) => p.name).join(', ')}` },
    { name: 'seed', arg: 'S', kind: { type: 'string' }, default: String(SIM_DEFAULTS.seed), help: 'scheduler seed: N, a LIST, or a range A..B' },
    { name: 'duration', arg: 'STEPS', kind: { type: 'int', min: 1, max: Number.MAX_SAFE_INTEGER }, defaultText: 'until every request ended', help: 'stop after this many simulated steps' },
    { name: 'invariants', kind: { type: 'bool' }, help: 'check I1-I11 around every kernel call (slow; the count is a metric)' },
    { name: 'shard', arg: 'i/n', kind: { type: 'string' }, help: 'run only the runs whose index mod n is i (0 <= i < n): one array-job task' },
    { name: 'out', arg: 'FILE', kind: { type: 'string' }, help: 'also write the results as a shard file for --merge' },
    { name: 'merge', kind: { type: 'bool' }, help: 'merge the shard files named as arguments and print the whole sweep' },
    { name: 'json', kind: { type: 'bool' }, help: 'print the metrics as JSON (no progress on stderr)' },
    TRACE_OPTION,
  ],
  notes: 'The progress bar goes to stderr, only when it is a terminal and not under --json.\n'
    + 'Latency is from a request to its completion or failure, in simulated steps (one scheduler action each).',
};

function list<T>(p: Parsed, name: string, parse: (s: string) => T | undefined, allowed: string): T[] {
  const raw = p.string(name)!;
  return raw.split(',').map((x) => {
    const v = parse(x.trim());
    if (v === undefined) throw new UsageError(`--${name}: '${x}' is not ${allowed}`);
    return v;
  });
}

const positiveInt = (s: string) => (/^\d+$/.test(s) && Number(s) >= 1 && Number.isSafeInteger(Number(s)) ? Number(s) : undefined);
const count = (s: string) => (/^\d+$/.test(s) && Number.isSafeInteger(Number(s)) ? Number(s) : undefined);

export function sweepOf(p: Parsed): SweepSpec {
  const holders = p.string('holders')!.split(',').map((x) => x.trim()).filter((x) => x !== '' && x !== 'none');
  for (const h of holders) if (!(SIM_HOLDERS as readonly string[]).includes(h)) throw new UsageError(`--holders: unknown holder '${h}'; allowed: ${SIM_HOLDERS.join(', ')}, none`);
  const seeds = parseSeeds(p.string('seed')!);
  if (!seeds) throw new UsageError(`--seed: '${p.string('seed')}' is not a seed, a comma list of seeds or a range A..B`);
  const size = (name: string) => { const v = parseSize(p.string(name)!); if (v === undefined) throw new UsageError(`--${name}: '${p.string(name)}' is not a size (e.g. 64K, 2M, 4G, 1T)`); return v; };
  const base: SimParams = {
    ...SIM_DEFAULTS, holders: holders as SimHolder[], bounceSize: size('bounce-size'), swiotlb: p.has('swiotlb') ? size('swiotlb') : 0,
    duration: p.number('duration') ?? SIM_DEFAULTS.duration, invariants: p.bool('invariants'),
  };
  const spec: SweepSpec = {
    guestSize: list(p, 'guest-size', parseSize, 'a size (e.g. 4G, 1T)'),
    vcpus: list(p, 'vcpus', (s) => { const n = positiveInt(s); return n !== undefined && n <= 1024 ? n : undefined; }, 'a vCPU count in 1..1024'),
    chunk: list(p, 'chunk', parseSize, 'a size (e.g. 2M)'),
    bounces: list(p, 'bounces', count, 'a count'),
    profile: list(p, 'profile', (s) => (CONVERTING.includes(s) ? s : undefined), `one of ${CONVERTING.join(', ')}`),
    policy: list(p, 'policy', (s) => (POLICIES.some((x) => x.name === s) ? s : undefined), `one of ${POLICIES.map((x) => x.name).join(', ')}`),
    seed: seeds,
    base,
  };
  for (const run of expandSweep({ ...spec, seed: [spec.seed[0]!] })) {
    const bad = checkParams(run);
    if (bad) throw new UsageError(bad);
  }
  return spec;
}

export function simulateCommand(p: Parsed): number {
  const json = p.bool('json');
  if (p.bool('merge')) return mergeCommand(p, json);
  if (p.positionals.length) throw new UsageError(`unexpected argument '${p.positionals[0]}': shard files are merged with --merge`);
  const spec = sweepOf(p);
  const shardText = p.string('shard');
  const shard = shardText === undefined ? { index: 0, count: 1 } : parseShard(shardText);
  if (!shard) throw new UsageError(`--shard: '${shardText}' is not i/n with 0 <= i < n (e.g. 0/8)`);
  const out = p.string('out');
  const badOut = out === undefined ? undefined : unwritable(out);
  if (badOut) throw new UsageError(badOut);
  const tracePath = traceTarget(p);
  const trace = tracePath === undefined ? undefined : new TraceWriter();
  const all = expandSweep(spec);
  const mine = shardIndices(all.length, shard);
  const bar = progressBar(json);
  const runs: ShardFile['runs'][number][] = [];
  mine.forEach((index, n) => {
    const label = mine.length > 1 ? `run ${n + 1}/${mine.length} ` : '';
    const m = simulate(all[index]!, { ...(bar ? { onProgress: (d: number, t: number) => bar(label, d, t) } : {}), ...(trace ? { trace } : {}) });
    bar?.done();
    runs.push({ ...m, index });
  });
  if (out !== undefined) {
    const file: ShardFile = { gmemkit: 'simulate-shard', sweep: spec, runsInSweep: all.length, shard, runs };
    writeFileSync(out, `${JSON.stringify(file, null, 2)}\n`);
  }
  if (json) console.log(JSON.stringify(runs.length === 1 && all.length === 1 ? runs[0] : { shard, runsInSweep: all.length, runs }, null, 2));
  else console.log(runs.length === 1 ? formatMetrics(runs[0]!) : formatRuns(runs));
  const traceError = trace && writeTraceFile(tracePath!, trace);
  if (traceError) { console.error(`gmemkit simulate: ${traceError}`); return EXIT.USAGE; }
  return EXIT.OK;
}

function mergeCommand(p: Parsed, json: boolean): number {
  const files = p.positionals.map((name) => {
    let text: string;
    try { text = readFileSync(name, 'utf8'); } catch (e) { throw new UsageError(`${name}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`); }
    try { return { name, data: JSON.parse(text) as unknown }; } catch (e) { throw new UsageError(`${name}: not JSON (${(e as Error).message})`); }
  });
  const r = mergeShards(files);
  if ('error' in r) throw new UsageError(r.error);
  if (json) console.log(JSON.stringify({ runsInSweep: r.runs.length, runs: r.runs }, null, 2));
  else console.log(formatRuns(r.runs));
  return EXIT.OK;
}

const int = (n: number) => n.toLocaleString('en');

export function formatMetrics(m: SimMetrics): string {
  const p = m.params;
  const rows: [string, string][] = [
    ['guest', `${formatSize(p.guestSize)}, ${p.vcpus} vCPUs, MapGPA chunk ${formatSize(p.chunk)}, swiotlb ${formatSize(swiotlbOf(p))}, ${int(p.bounces)} bounces of ${formatSize(p.bounceSize)}`],
    ['holders', p.holders.length ? p.holders.join(', ') : 'none'],
    ['profile / policy / seed', `${p.profile} / ${p.policy} / ${p.seed}`],
    ['requests', `${int(m.requests)} (boot ${int(m.bootRequests)})`],
    ['completed', int(m.completed)],
    ['failed', int(m.failed)],
    ['stuck', int(m.stuck)],
    ['EAGAINs', int(m.eagains)],
    ['retries', int(m.retries)],
    ['holders released', int(m.holdersReleased)],
    ['I/O waited for', int(m.ioWaited)],
    ['guest stall (vCPU-steps)', int(m.guestStall)],
    ['bytes bounced', `${int(m.bytesBounced)} (${(m.bytesBounced / 2 ** 20).toFixed(1)} MiB)`],
    ['VM stopped', m.vmStopped ? 'yes' : 'no'],
    ['simulated steps', int(m.steps)],
    ['conversion latency (steps)', `p50 ${m.latency.p50}, p90 ${m.latency.p90}, p99 ${m.latency.p99}, max ${m.latency.max}`],
    ['model time (CPU)', `${m.modelSeconds.toFixed(2)} s, ${m.microsecondsPerRequest.toFixed(1)} µs per request`],
    ...(p.invariants ? [['invariant violations', int(m.invariantViolations)] as [string, string]] : []),
  ];
  const w = Math.max(...rows.map(([k]) => k.length)) + 2;
  return [`gmemkit simulate — CoCo guest boot + bounce-buffer churn`, '', ...rows.map(([k, v]) => `${`${k}:`.padEnd(w)}${v}`)].join('\n');
}

export function formatRuns(runs: readonly (SimMetrics & { index: number })[]): string {
  const head = '| run | guest | vCPUs | chunk | bounces | profile | policy | seed | requests | completed | failed | EAGAINs | retries | released | I/O waited | stall | bounced MiB | p50 | p99 | µs/request |';
  const sep = `|${'---:|'.repeat(5)}---|---|${'---:|'.repeat(13)}`;
  const lines = runs.map((m) => {
    const p = m.params;
    return `| ${m.index} | ${formatSize(p.guestSize)} | ${p.vcpus} | ${formatSize(p.chunk)} | ${p.bounces} | ${p.profile} | ${p.policy} | ${p.seed} | ${m.requests} | ${m.completed} | ${m.failed} | ${m.eagains} | ${m.retries} | ${m.holdersReleased} | ${m.ioWaited} | ${m.guestStall} | ${(m.bytesBounced / 2 ** 20).toFixed(1)} | ${m.latency.p50} | ${m.latency.p99} | ${m.microsecondsPerRequest.toFixed(1)} |`;
  });
  return [head, sep, ...lines].join('\n');
}

/** A progress bar on stderr with requests/s and ETA: only on a terminal, never under --json. */
function progressBar(json: boolean, stream: NodeJS.WriteStream = process.stderr): (((label: string, done: number, total: number) => void) & { done(): void }) | undefined {
  if (json || !stream.isTTY) return undefined;
  let t0 = 0;
  let last = 0;
  let shown = false;
  const f = ((label: string, done: number, total: number) => {
    const now = Date.now();
    if (!t0) t0 = now;
    if (now - last < 200 && done < total) return;
    last = now;
    const frac = total ? Math.min(1, done / total) : 1;
    const rate = done / Math.max((now - t0) / 1000, 1e-3);
    const eta = rate > 0 ? Math.max(0, (total - done) / rate) : 0;
    const width = 30;
    const fill = Math.round(frac * width);
    stream.write(`\r${label}[${'#'.repeat(fill)}${'-'.repeat(width - fill)}] ${(frac * 100).toFixed(1)}% ${int(done)}/${int(total)} requests  ${int(Math.round(rate))} req/s  ETA ${eta.toFixed(0)} s  `);
    shown = true;
  }) as ((label: string, done: number, total: number) => void) & { done(): void };
  f.done = () => { if (shown) stream.write('\n'); shown = false; t0 = 0; last = 0; };
  return f;
}
