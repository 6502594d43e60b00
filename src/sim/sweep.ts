// Sweeps of simulations for scale-out: the cartesian product of parameter lists and seeds, in a
// fixed order, so that `--shard i/n` runs every n-th run (run index mod n = i) on array-job
// task i, and `merge` puts the shards' results back together, checking that they belong to the
// same sweep and that every run is there exactly once.
import { SIM_DEFAULTS, type SimMetrics, type SimParams } from './simulate.js';

/** What varies in a sweep: a list per parameter (one element: fixed). */
export interface SweepSpec {
  readonly guestSize: readonly number[];
  readonly vcpus: readonly number[];
  readonly chunk: readonly number[];
  readonly bounces: readonly number[];
  readonly profile: readonly string[];
  readonly policy: readonly string[];
  readonly seed: readonly number[];
  /** Fixed for every run. */
  readonly base: SimParams;
}

export interface Shard { readonly index: number; readonly count: number }

export interface ShardFile {
  readonly gmemkit: 'simulate-shard';
  readonly sweep: SweepSpec;
  readonly runsInSweep: number;
  readonly shard: Shard;
  readonly runs: readonly (SimMetrics & { readonly index: number })[];
}

/** Every run of the sweep, in order. */
export function expandSweep(s: SweepSpec): SimParams[] {
  const out: SimParams[] = [];
  for (const guestSize of s.guestSize) for (const vcpus of s.vcpus) for (const chunk of s.chunk) for (const bounces of s.bounces) {
    for (const profile of s.profile) for (const policy of s.policy) for (const seed of s.seed) {
      out.push({ ...s.base, guestSize, vcpus, chunk, bounces, profile, policy, seed });
    }
  }
  return out;
}

/** The run indices of a shard. */
export function shardIndices(total: number, shard: Shard): number[] {
  const out: number[] = [];
  for (let i = shard.index; i < total; i += shard.count) out.push(i);
  return out;
}

/** `i/n` with 0 <= i < n; undefined if malformed. */
export function parseShard(text: string): Shard | undefined {
  const m = /^(\d+)\/(\d+)$/.exec(text);
  if (!m) return undefined;
  const index = Number(m[1]);
  const count = Number(m[2]);
  return count >= 1 && index < count && Number.isSafeInteger(count) ? { index, count } : undefined;
}

/** A size with an optional binary suffix (K, M, G, T, P); undefined if malformed. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+)([KMGTP]?)(i?B)?$/i.exec(text.trim());
  if (!m) return undefined;
  const mult = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40, P: 2 ** 50 }[m[2]!.toUpperCase() as 'K'];
  const v = Number(m[1]) * mult;
  return Number.isSafeInteger(v) ? v : undefined;
}

export function formatSize(n: number): string {
  for (const [s, m] of [['P', 2 ** 50], ['T', 2 ** 40], ['G', 2 ** 30], ['M', 2 ** 20], ['K', 2 ** 10]] as const) if (n >= m && n % m === 0) return `${n / m}${s}`;
  return String(n);
}

/** Seeds: `7`, `1,2,5` or `1..64`; undefined if malformed. */
export function parseSeeds(text: string): number[] | undefined {
  const range = /^(\d+)\.\.(\d+)$/.exec(text);
  if (range) {
    const a = Number(range[1]);
    const b = Number(range[2]);
    if (b < a || b - a >= 1_000_000) return undefined;
    return Array.from({ length: b - a + 1 }, (_, i) => a + i);
  }
  const list = text.split(',').map((x) => (/^\d+$/.test(x) ? Number(x) : NaN));
  return list.every((x) => Number.isSafeInteger(x)) ? list : undefined;
}

/** Merge shard files: the runs of one sweep, each exactly once, in order; or why not. */
export function mergeShards(files: readonly { name: string; data: unknown }[]): { sweep: SweepSpec; runs: ShardFile['runs'] } | { error: string } {
  if (files.length === 0) return { error: 'merge: name the shard files (written by simulate --shard i/n --out FILE)' };
  let sweep: string | undefined;
  let spec: SweepSpec | undefined;
  let total = 0;
  const byIndex = new Map<number, ShardFile['runs'][number]>();
  for (const f of files) {
    const d = f.data as ShardFile;
    if (!d || d.gmemkit !== 'simulate-shard' || !Array.isArray(d.runs)) return { error: `${f.name}: not a shard file of gmemkit simulate (gmemkit: simulate-shard)` };
    const key = JSON.stringify(d.sweep);
    if (sweep === undefined) { sweep = key; spec = d.sweep; total = d.runsInSweep; }
    else if (key !== sweep) return { error: `${f.name}: belongs to a different sweep than ${files[0]!.name}` };
    for (const r of d.runs) {
      if (byIndex.has(r.index)) return { error: `${f.name}: run ${r.index} is also in another shard` };
      byIndex.set(r.index, r);
    }
  }
  const missing = [];
  for (let i = 0; i < total; i++) if (!byIndex.has(i)) missing.push(i);
  if (missing.length) return { error: `merge: ${missing.length} of ${total} runs missing (first: run ${missing[0]}); a shard was not merged or did not finish` };
  return { sweep: spec!, runs: [...byIndex.values()].sort((a, b) => a.index - b.index) };
}

export const SWEEP_DEFAULT_BASE = SIM_DEFAULTS;
