// `gmemkit compare`: runs the bundled CoCo workload under each conversion policy and kernel
// profile and prints one table row per combination. Progress goes to stderr, the table to stdout.
import { findProfile, PROFILES, profileNames, type Profile } from '../model/profile.js';
import { findPolicy, POLICIES, type Policy } from '../userspace/policies.js';
import { DEFAULT_SHAPE, runWorkload, type WorkloadResult } from '../workload/coco-boot.js';
import { UsageError } from './usage.js';


export function compareCommand(values: { profiles?: string; policies?: string; seed?: string; json?: boolean }): number {
  const drivable = profileNames().filter((n) => findProfile(n)!.conversion === 'gmem-ioctl');
  // Default: every kernel version and design variant (not the mutants) the manager can drive.
  const defaults = PROFILES.filter((p) => p.conversion === 'gmem-ioctl').map((p) => p.name);
  const profiles: Profile[] = (values.profiles?.split(',') ?? defaults).map((n) => {
    const p = findProfile(n);
    if (!p) throw new UsageError(`--profiles: unknown profile '${n}'; allowed: ${drivable.join(', ')}`);
    if (p.conversion !== 'gmem-ioctl') {
      throw new UsageError(`--profiles: ${n} has no guest_memfd conversion ioctl for the manager to drive; allowed: ${drivable.join(', ')}`);
    }
    return p;
  });
  const policies: Policy[] = values.policies === undefined ? [...POLICIES] : values.policies.split(',').map((n) => {
    const p = findPolicy(n);
    if (!p) throw new UsageError(`--policies: unknown policy '${n}'; allowed: ${POLICIES.map((x) => x.name).join(', ')}`);
    return p;
  });
  const seed = values.seed === undefined ? DEFAULT_SHAPE.seed : Number(values.seed);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new UsageError(`--seed: expected a non-negative integer, got '${values.seed}'`);
  const rows: WorkloadResult[] = [];
  const total = profiles.length * policies.length;
  for (const profile of profiles) {
    for (const policy of policies) {
      process.stderr.write(`[${rows.length + 1}/${total}] ${profile.name} × ${policy.name} … `);
      const t0 = process.hrtime.bigint();
      rows.push(runWorkload(profile, policy, { ...DEFAULT_SHAPE, seed }));
      process.stderr.write(`${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(0)} ms\n`);
    }
  }
  if (values.json) {
    console.log(JSON.stringify({ seed, shape: { ...DEFAULT_SHAPE, seed }, rows }, null, 2));
    return 0;
  }
  console.log(formatTable(rows, seed));
  return 0;
}

export function formatTable(rows: readonly WorkloadResult[], seed: number): string {
  const head = '| profile | policy | requests | completed | failed | stuck | EAGAINs | retries | holders released | I/O waited for | guest stalled (steps) | VM stopped | invariant violations |';
  const sep = '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|';
  const lines = rows.map((r) => {
    const variant = findProfile(r.profile)?.status === 'variant' ? ' (variant)' : '';
    const failed = r.requests - r.completed - r.stuck;
    return `| ${r.profile}${variant} | ${r.policy} | ${r.requests} | ${r.completed} | ${failed} | ${r.stuck} | ${r.eagains} | ${r.retries} | ${r.released} | ${r.waited} | ${r.stalled} | ${r.vmStopped ? 'yes' : 'no'} | ${r.invariantViolations} |`;
  });
  return [`gmemkit compare — CoCo boot + bounce-buffer workload, seed ${seed}`, '', head, sep, ...lines].join('\n');
}
