// The CoCo guest simulator behind `gmemkit simulate`: the seeded workload of src/workload/
// with a guest of any size (a TiB and more), vCPUs, a MapGPA chunk size, bounce-buffer churn and
// a choice of holders, measured per run: requests and their outcomes, what the manager had to
// do, guest stall, bytes bounced, the model's time per request and the percentiles of conversion
// latency in simulated steps. Its own cost is per request and per range, never per page; the
// clock it reads measures the model, it never drives it (simulated time is the step count).
import type { Backend } from '../backend/backend.js';
import type { ModelBackend } from '../backend/model-backend.js';
import { DEFAULT_PROFILE, findProfile, type Profile } from '../model/profile.js';
import { findPolicy, type Policy } from '../userspace/policies.js';
import type { Userspace } from '../userspace/userspace.js';
import { DEFAULT_SHAPE, runWorkload, type WorkloadHooks, type WorkloadShape } from '../workload/coco-boot.js';
import { modelCounters, modelPageMaps } from '../trace/page-map.js';
import { TraceRecorder } from '../trace/recorder.js';
import type { TraceWriter } from '../trace/trace-events.js';

const KiB = 1024;
const MiB = 1024 * KiB;

export type SimHolder = 'vfio' | 'io_uring' | 'odirect' | 'vhost-user';
export const SIM_HOLDERS: readonly SimHolder[] = ['vfio', 'io_uring', 'odirect', 'vhost-user'];

export interface SimParams {
  readonly guestSize: number;
  readonly vcpus: number;
  /** MapGPA request size at boot. */
  readonly chunk: number;
  /** The swiotlb bounce area at the top of RAM (shared after boot); 0: 64M, or a quarter of a smaller guest. */
  readonly swiotlb: number;
  /** Bounce-buffer conversions after boot, each of `bounceSize`. */
  readonly bounces: number;
  readonly bounceSize: number;
  readonly holders: readonly SimHolder[];
  readonly profile: string;
  readonly policy: string;
  readonly seed: number;
  /** The most scheduler steps to run (simulated time). */
  readonly duration: number;
  readonly invariants: boolean;
}

export const SIM_DEFAULTS: SimParams = {
  guestSize: 4 * 1024 * MiB, vcpus: 4, chunk: 2 * MiB, swiotlb: 0, bounces: 1000, bounceSize: 64 * KiB,
  holders: ['vfio', 'io_uring', 'odirect'], profile: DEFAULT_PROFILE.name, policy: 'retry', seed: 1, duration: Number.MAX_SAFE_INTEGER, invariants: false,
};

export interface SimMetrics {
  readonly params: SimParams;
  readonly requests: number;
  readonly bootRequests: number;
  readonly completed: number;
  readonly failed: number;
  readonly stuck: number;
  readonly eagains: number;
  readonly retries: number;
  readonly holdersReleased: number;
  readonly ioWaited: number;
  /** vCPU-steps during which a vCPU waited for its request or its page. */
  readonly guestStall: number;
  readonly bytesBounced: number;
  readonly vmStopped: boolean;
  readonly steps: number;
  readonly invariantViolations: number;
  /** CPU seconds of the run (model, userspace half and simulator; tracing included when on). */
  readonly modelSeconds: number;
  readonly microsecondsPerRequest: number;
  /** Conversion latency (request to completion or failure) in simulated steps. */
  readonly latency: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number };
}

/** The bounce area of a run: as given, or 64M (a quarter of a guest below 256M), in whole bounce buffers. */
export function swiotlbOf(p: SimParams): number {
  if (p.swiotlb) return p.swiotlb;
  const want = Math.min(64 * MiB, p.guestSize / 4);
  return Math.max(p.bounceSize, want - (want % p.bounceSize));
}

/** Why the parameters cannot run, naming the option; undefined if they can. */
export function checkParams(p: SimParams): string | undefined {
  const page = 4 * KiB;
  if (!findProfile(p.profile)) return `--profile: unknown profile '${p.profile}'`;
  if (findProfile(p.profile)!.conversion !== 'gmem-ioctl') return `--profile: ${p.profile} has no guest_memfd conversion ioctl for the manager to drive`;
  if (!findPolicy(p.policy)) return `--policy: unknown policy '${p.policy}'`;
  if (p.guestSize % (2 * MiB) || p.guestSize < 4 * MiB) return `--guest-size must be a multiple of 2M, at least 4M (got ${p.guestSize})`;
  if (p.chunk % page || p.chunk <= 0) return `--chunk must be a positive multiple of 4K (got ${p.chunk})`;
  if (p.bounceSize % page || p.bounceSize <= 0) return `--bounce-size must be a positive multiple of 4K (got ${p.bounceSize})`;
  const swiotlb = swiotlbOf(p);
  if (swiotlb % p.bounceSize || swiotlb > p.guestSize / 2) return `--swiotlb must be a multiple of --bounce-size (${p.bounceSize}), at most half the guest (got ${swiotlb})`;
  return undefined;
}

/** The workload shape of a simulation. */
export function shapeOf(p: SimParams): WorkloadShape {
  const has = (h: SimHolder) => p.holders.includes(h);
  const swiotlb = swiotlbOf(p);
  return {
    ...DEFAULT_SHAPE,
    ram: p.guestSize, bootPrivate: p.guestSize - swiotlb, bootChunk: p.chunk, acceptAll: true,
    bounceConversions: p.bounces, bounceSize: p.bounceSize,
    ioUringSize: has('io_uring') ? Math.min(MiB, swiotlb) : 0,
    ioRate: has('odirect') ? DEFAULT_SHAPE.ioRate : 0,
    vfioMapSize: has('vfio') ? p.guestSize : 0,
    vhostRate: has('vhost-user') ? 0.3 : 0,
    vcpus: p.vcpus, seed: p.seed, maxSteps: p.duration, checkInvariants: p.invariants,
  };
}

export interface SimOptions {
  /** Called now and then with requests ended and planned. */
  readonly onProgress?: (done: number, total: number) => void;
  /** Record the run into this trace. */
  readonly trace?: TraceWriter;
}

export function simulate(p: SimParams, opts: SimOptions = {}): SimMetrics {
  const shape = shapeOf(p);
  const profile: Profile = findProfile(p.profile)!;
  const policy: Policy = findPolicy(p.policy)!;
  const planned = Math.ceil(p.guestSize / p.chunk) + 1 + p.bounces;
  const started = new Map<number, number>();
  const latencies: number[] = [];
  let bootRequests = 0;
  let bounced = 0;
  let ended = 0;
  const hooks: WorkloadHooks = {
    requestStarted: (t, k, _vcpu, boot) => { started.set(t.request.id, k); if (boot) bootRequests++; },
    requestEnded: (t, k) => {
      latencies.push(k - (started.get(t.request.id) ?? k));
      started.delete(t.request.id);
      if ((++ended & 1023) === 0) opts.onProgress?.(ended, planned);
    },
    bounced: (n) => { bounced += n; },
  };
  if (opts.trace) {
    const title = `simulate ${formatBytes(p.guestSize)}, ${p.vcpus} vCPUs, chunk ${formatBytes(p.chunk)}, ${p.bounces} bounces, holders ${p.holders.join('+') || 'none'}, ${p.profile}, ${p.policy}, seed ${p.seed}`;
    Object.assign(hooks, traceHooks(opts.trace, title, planned * 4));
  }
  // CPU time, not wall time: on a shared machine it is the model's own cost.
  const t0 = process.cpuUsage();
  const w = runWorkload(profile, policy, shape, hooks);
  const used = process.cpuUsage(t0);
  const seconds = (used.user + used.system) / 1e6;
  opts.onProgress?.(ended, planned);
  latencies.sort((a, b) => a - b);
  const pct = (q: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)]! : 0);
  return {
    params: p, requests: w.requests, bootRequests, completed: w.completed, failed: w.requests - w.completed - w.stuck, stuck: w.stuck,
    eagains: w.eagains, retries: w.retries, holdersReleased: w.released, ioWaited: w.waited, guestStall: w.stalled,
    bytesBounced: bounced, vmStopped: w.vmStopped, steps: w.steps, invariantViolations: w.invariantViolations,
    modelSeconds: seconds, microsecondsPerRequest: w.requests ? (seconds * 1e6) / w.requests : 0,
    latency: { p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), max: latencies.length ? latencies[latencies.length - 1]! : 0 },
  };
}

/**
 * Hooks that record a workload run into a trace: scheduler actions as slices per actor, the
 * kernel calls under them, flows, counters, and about 500 page maps over `expectedSteps`.
 */
export function traceHooks(writer: TraceWriter, title: string, expectedSteps: number): WorkloadHooks {
  let model: ModelBackend | undefined;
  const r: TraceRecorder = new TraceRecorder(writer, title, {
    holderTrack: (h) => (h.kind === 'odirect' ? 'I/O in flight (O_DIRECT, vhost-user)' : h.kind === 'vfio' ? 'VFIO DMA mapping' : h.kind === 'io_uring' ? 'io_uring fixed buffers' : h.kind === 'vhost_user' ? 'vhost-user backend' : `${h.kind} ${h.name}`),
    counters: () => ({ ...modelCounters(model!.kernel), 'conversions in flight': r.inFlight }),
    pageMaps: () => modelPageMaps(model!.kernel),
    pageMapEvery: Math.max(1, Math.ceil(expectedSteps / 500)),
  });
  return {
    wrap: (b: ModelBackend): Backend => { model = b; return r.wrap(b); },
    attach: (us: Userspace) => r.attach(us),
    beforeStep: (k: number, actor: string, what: string) => r.begin(k, actor, what),
    afterStep: (_k: number, what?: string) => r.end('ok', {}, what),
    finished: () => r.finish(),
  };
}

function formatBytes(n: number): string {
  for (const [s, m] of [['T', 2 ** 40], ['G', 2 ** 30], ['M', 2 ** 20], ['K', 2 ** 10]] as const) if (n >= m && n % m === 0) return `${n / m}${s}`;
  return String(n);
}
