// `gmemkit compare`: runs the bundled CoCo workload under each conversion policy and kernel
// profile and prints one table row per combination. Progress goes to stderr, the table to stdout.
import { findProfile, PROFILES, profileNames, type Profile } from '../model/profile.js';
import { findPolicy, POLICIES, type Policy } from '../userspace/policies.js';
import { DEFAULT_SHAPE, runWorkload, type WorkloadResult } from '../workload/coco-boot.js';
import { progressSink, type CommandSpec, type Parsed } from './args.js';
import { UsageError } from './usage.js';
import { TRACE_OPTION, traceTarget } from './out-file.js';
import { traceHooks } from '../sim/simulate.js';
import { TraceWriter } from '../trace/trace-events.js';
import { writeTraceFile } from '../trace/write.js';

// Default: every kernel version and design variant (not the mutants) the manager can drive.
const DEFAULT_PROFILES = PROFILES.filter((p) => p.conversion === 'gmem-ioctl').map((p) => p.name);

export const COMPARE_SPEC: CommandSpec = {
  name: 'compare',
  brief: 'the bundled CoCo workload under every conversion policy and kernel profile',
  synopsis: 'compare [options]',
  summary: 'Run the bundled CoCo workload (boot + bounce buffers) under each conversion policy and\n'
    + 'kernel profile and print one table row per combination.',
  options: [
    { name: 'profiles', arg: 'A,B', kind: { type: 'string' }, default: DEFAULT_PROFILES.join(','), help: 'profiles to compare' },
    { name: 'policies', arg: 'A,B', kind: { type: 'string' }, default: POLICIES.map((p) => p.name).join(','), help: 'policies to compare' },
    { name: 'seed', kind: { type: 'int', min: 0, max: Number.MAX_SAFE_INTEGER }, default: DEFAULT_SHAPE.seed, help: 'scheduler seed' },
    { name: 'json', kind: { type: 'bool' }, help: 'print the rows as JSON (no progress on stderr)' },
    TRACE_OPTION,
  ],
  notes: 'Progress goes to stderr, only when it is a terminal.',
};

export function compareCommand(values: Parsed): number {
  const drivable = profileNames().filter((n) => findProfile(n)!.conversion === 'gmem-ioctl');
  const profiles: Profile[] = values.string('profiles')!.split(',').map((n) => {
    const p = findProfile(n);
    if (!p) throw new UsageError(`--profiles: unknown profile '${n}'; allowed: ${drivable.join(', ')}`);
    if (p.conversion !== 'gmem-ioctl') {
      throw new UsageError(`--profiles: ${n} has no guest_memfd conversion ioctl for the manager to drive; allowed: ${drivable.join(', ')}`);
    }
    return p;
  });
  const policies: Policy[] = values.string('policies')!.split(',').map((n) => {
    const p = findPolicy(n);
    if (!p) throw new UsageError(`--policies: unknown policy '${n}'; allowed: ${POLICIES.map((x) => x.name).join(', ')}`);
    return p;
  });
  const seed = values.number('seed')!;
  const json = values.bool('json');
  const progress = progressSink(json);
  const tracePath = traceTarget(values);
  const trace = tracePath === undefined ? undefined : new TraceWriter();
  const rows: WorkloadResult[] = [];
  const total = profiles.length * policies.length;
  for (const profile of profiles) {
    for (const policy of policies) {
      progress?.(`[${rows.length + 1}/${total}] ${profile.name} × ${policy.name}`);
      const hooks = trace ? traceHooks(trace, `compare ${profile.name} × ${policy.name}, seed ${seed}`, 2000) : {};
      rows.push(runWorkload(profile, policy, { ...DEFAULT_SHAPE, seed }, hooks));
    }
  }
  if (json) console.log(JSON.stringify({ seed, shape: { ...DEFAULT_SHAPE, seed }, rows }, null, 2));
  else console.log(formatTable(rows, seed));
  const traceError = trace && writeTraceFile(tracePath!, trace);
  if (traceError) { console.error(`gmemkit compare: ${traceError}`); return 2; }
  return 0;
}

export function formatTable(rows: readonly WorkloadResult[], seed: number): string {
  const head = '| profile | policy | requests | completed | failed | stuck | EAGAINs | retries | holders released | I/O waited for | guest stalled (steps) | VM stopped | invariant violations | bounce copies | bytes copied |';
  const sep = '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|';
  const lines = rows.map((r) => {
    const variant = findProfile(r.profile)?.status === 'variant' ? ' (variant)' : '';
    const failed = r.requests - r.completed - r.stuck;
    return `| ${r.profile}${variant} | ${r.policy} | ${r.requests} | ${r.completed} | ${failed} | ${r.stuck} | ${r.eagains} | ${r.retries} | ${r.released} | ${r.waited} | ${r.stalled} | ${r.vmStopped ? 'yes' : 'no'} | ${r.invariantViolations} | ${r.copies} | ${r.bytesCopied} |`;
  });
  return [`gmemkit compare — CoCo boot + bounce-buffer workload, seed ${seed}`, '', head, sep, ...lines].join('\n');
}
