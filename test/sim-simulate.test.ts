// The simulator: its metrics add up, a seed reproduces a run, its own cost is per request (the
// kernel calls of a boot follow the requests, not the guest's pages), sweeps shard and merge
// back to the unsharded result, and the command line rejects bad input with exit 2.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { Backend } from '../src/backend/backend.js';
import { decorate } from '../src/backend/decorate.js';
import { findProfile } from '../src/model/profile.js';
import { findPolicy } from '../src/userspace/policies.js';
import { shapeOf, simulate, SIM_DEFAULTS, type SimParams } from '../src/sim/simulate.js';
import { expandSweep, mergeShards, parseSeeds, parseShard, parseSize, shardIndices, type SweepSpec } from '../src/sim/sweep.js';
import { runWorkload } from '../src/workload/coco-boot.js';
import { main } from '../src/cli/main.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const dir = mkdtempSync(join(tmpdir(), 'gmemkit-sim-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const cli = (...args: string[]) => spawnSync(process.execPath, ['bin/gmemkit.js', ...args], { encoding: 'utf8' });
const small: SimParams = { ...SIM_DEFAULTS, guestSize: 64 * MiB, vcpus: 2, bounces: 60, holders: ['vfio', 'io_uring', 'odirect', 'vhost-user'] };
const timeless = <T extends { modelSeconds: number; microsecondsPerRequest: number }>(m: T) => ({ ...m, modelSeconds: 0, microsecondsPerRequest: 0 });

test('a boot accepts all of RAM in chunk-sized MapGPA requests, gives the swiotlb back, and the metrics add up', () => {
  const m = simulate(small);
  assert.equal(m.bootRequests, 64 / 2 + 1); // 32 chunks of 2M + the swiotlb to shared
  assert.equal(m.requests, m.bootRequests + small.bounces);
  assert.equal(m.completed + m.failed + m.stuck, m.requests);
  assert.ok(m.eagains > 0 && m.holdersReleased > 0, 'the whole-RAM VFIO mapping blocks the first boot request');
  assert.ok(m.bytesBounced > 0 && m.bytesBounced % 4096 === 0);
  assert.ok(m.latency.p50 <= m.latency.p90 && m.latency.p90 <= m.latency.p99 && m.latency.p99 <= m.latency.max);
});

test('the same seed gives the same run; another seed another schedule', () => {
  assert.deepEqual(timeless(simulate(small)), timeless(simulate(small)));
  assert.notEqual(JSON.stringify(timeless(simulate({ ...small, seed: 2 }))), JSON.stringify(timeless(simulate(small))));
});

test('the policy matters: stop stops the VM at the first blocked request, preunmap never sees EAGAIN from a known holder', () => {
  const stop = simulate({ ...small, policy: 'stop' });
  assert.equal(stop.vmStopped, true);
  assert.ok(stop.requests <= small.vcpus, 'each vCPU has at most its first request out when the VM stops');
  assert.equal(stop.completed, 0);
  const pre = simulate({ ...small, policy: 'preunmap', holders: ['vfio', 'io_uring'] });
  assert.equal(pre.eagains, 0);
  assert.equal(pre.failed, 0);
});

test('the cost of a boot is per request: kernel calls per MapGPA request are the same for a 256 MiB and a 16 GiB guest', () => {
  const callsPerRequest = (guestSize: number) => {
    let calls = 0;
    const p: SimParams = { ...SIM_DEFAULTS, guestSize, vcpus: 1, bounces: 0, holders: [] };
    const r = runWorkload(findProfile(p.profile)!, findPolicy(p.policy)!, shapeOf(p), {
      wrap: (b) => decorate(b, { setMemoryAttributes2: (...a: Parameters<Backend['setMemoryAttributes2']>) => { calls++; return b.setMemoryAttributes2(...a); }, guestRead: (...a: Parameters<Backend['guestRead']>) => { calls++; return b.guestRead(...a); } }),
    });
    return { perRequest: calls / r.requests, requests: r.requests };
  };
  const a = callsPerRequest(256 * MiB);
  const b = callsPerRequest(16 * GiB);
  assert.equal(b.requests, 16 * GiB / (2 * MiB) + 1);
  assert.ok(Math.abs(a.perRequest - b.perRequest) < 0.05, `${a.perRequest} vs ${b.perRequest}`);
});

const SWEEP: SweepSpec = { guestSize: [32 * MiB, 64 * MiB], vcpus: [1, 2], chunk: [2 * MiB], bounces: [20], profile: ['ipc-v8'], policy: ['retry', 'guest-retry'], seed: [1, 2], base: { ...SIM_DEFAULTS, holders: ['io_uring', 'odirect'] } };

test('shards of a sweep partition its runs, and merging them gives the unsharded results', () => {
  const all = expandSweep(SWEEP);
  assert.equal(all.length, 16);
  const shards = [0, 1, 2].map((i) => shardIndices(all.length, { index: i, count: 3 }));
  assert.deepEqual(shards.flat().sort((x, y) => x - y), all.map((_, i) => i));
  const files = shards.map((idx, i) => ({ name: `s${i}`, data: JSON.parse(JSON.stringify({ gmemkit: 'simulate-shard', sweep: SWEEP, runsInSweep: all.length, shard: { index: i, count: 3 }, runs: idx.map((k) => ({ ...timeless(simulate(all[k]!)), index: k })) })) as unknown }));
  const merged = mergeShards(files);
  assert.ok(!('error' in merged), JSON.stringify(merged));
  assert.deepEqual(merged.runs.map((r) => r.index), all.map((_, i) => i));
  assert.deepEqual(merged.runs.map((r) => ({ ...r, index: 0 })), all.map((p) => ({ ...timeless(simulate(p)), index: 0 })));
  // a missing shard, a shard twice, a shard of another sweep
  assert.match(String((mergeShards(files.slice(1)) as { error: string }).error), /runs missing \(first: run 0\)/);
  assert.match(String((mergeShards([...files, files[0]!]) as { error: string }).error), /also in another shard/);
  const other = { name: 'x', data: { ...(files[0]!.data as object), sweep: { ...SWEEP, seed: [9] } } };
  assert.match(String((mergeShards([...files, other]) as { error: string }).error), /different sweep/);
});

// Parsers of the command line's values (sizes as in the scenario language, kernel-semantics-free).
const PARSE: [string, unknown, unknown][] = [
  ['size 1T', parseSize('1T'), 2 ** 40], ['size 4G', parseSize('4G'), 4 * GiB], ['size 64K', parseSize('64K'), 65536], ['size 3X', parseSize('3X'), undefined],
  ['seeds 1..4', parseSeeds('1..4'), [1, 2, 3, 4]], ['seeds 3,5', parseSeeds('3,5'), [3, 5]], ['seeds 4..1', parseSeeds('4..1'), undefined],
  ['shard 2/8', parseShard('2/8'), { index: 2, count: 8 }], ['shard 8/8', parseShard('8/8'), undefined], ['shard 1/0', parseShard('1/0'), undefined],
];
for (const [what, got, want] of PARSE) test(`parses ${what}`, () => assert.deepEqual(got, want));

/** main() in this process, capturing stdout and stderr (as test/cli-conventions.test.ts does). */
async function inProcess(...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const ow = process.stdout.write.bind(process.stdout);
  const ew = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((x: string) => { stdout += x; return true; }) as typeof process.stdout.write;
  process.stderr.write = ((x: string) => { stderr += x; return true; }) as typeof process.stderr.write;
  try {
    return { status: await main(args), stdout, stderr };
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
  }
}

test('gmemkit simulate: bad input is exit 2 with a message naming the option, never a stack trace', async () => {
  for (const [args, msg] of [
    [['--guest-size', '3M'], /--guest-size must be a multiple of 2M/],
    [['--guest-size', 'lots'], /--guest-size: 'lots' is not a size/],
    [['--holders', 'nvme'], /--holders: unknown holder 'nvme'; allowed: vfio, io_uring, odirect, vhost-user, none/],
    [['--policy', 'pray'], /--policy: 'pray' is not one of retry, preunmap, guest-retry, stop/],
    [['--shard', '3/3'], /--shard: '3\/3' is not i\/n/],
    [['--seed', 'x'], /--seed: 'x' is not a seed/],
    [['--merge'], /merge: name the shard files/],
    [['--trace', join(dir, 'no', 'such', 'dir', 't.json')], /--trace .*cannot write/],
  ] as [string[], RegExp][]) {
    const r = await inProcess('simulate', ...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, msg);
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+|TypeError/);
  }
});

test('gmemkit simulate --shard i/n --out, then --merge, prints the whole sweep; --json; stderr silent when not a terminal', () => {
  const base = ['simulate', '--guest-size', '32M,64M', '--bounces', '10', '--holders', 'io_uring,odirect', '--seed', '1..2'];
  const files = [0, 1].map((i) => {
    const f = join(dir, `shard${i}.json`);
    const r = cli(...base, '--shard', `${i}/2`, '--out', f, '--json');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.equal((JSON.parse(r.stdout) as { runs: unknown[] }).runs.length, 2);
    return f;
  });
  const m = cli('simulate', '--merge', ...files);
  assert.equal(m.status, 0, m.stderr);
  assert.equal(m.stdout.trim().split('\n').length, 2 + 4);
  writeFileSync(join(dir, 'junk.json'), '{"x":1}');
  const bad = cli('simulate', '--merge', join(dir, 'junk.json'));
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /junk.json: not a shard file/);
  const one = cli('simulate', '--guest-size', '32M', '--bounces', '5');
  assert.equal(one.status, 0, one.stderr);
  assert.equal(one.stderr, '');
  for (const line of ['requests:', 'completed:', 'failed:', 'EAGAINs:', 'retries:', 'holders released:', 'I/O waited for:', 'guest stall', 'bytes bounced:', 'conversion latency (steps):', 'model time (CPU):']) assert.ok(one.stdout.includes(line), line);
  assert.ok(JSON.parse(readFileSync(files[0]!, 'utf8')).gmemkit === 'simulate-shard');
});

test('regression: the swiotlb give-back waits for every vCPU\'s last acceptance to be touched (4 vCPUs, seed 1: was 2 stuck)', () => {
  const m = simulate({ ...SIM_DEFAULTS, guestSize: 256 * MiB, holders: [], bounces: 3000, vcpus: 4, seed: 1 });
  assert.equal(m.stuck, 0);
  assert.equal(m.completed, m.requests);
});
