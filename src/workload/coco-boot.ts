// The bundled comparison workload: a CoCo guest boots (accepting most of its RAM as private in
// MapGPA requests) and then keeps converting swiotlb bounce buffers back and forth, while the
// VMM has guest RAM mapped for a passthrough device (VFIO, in 1 MiB DMA mappings), registers
// the block device's data area as io_uring fixed buffers, and keeps O_DIRECT reads in flight
// into bounce buffers. A seeded scheduler interleaves guest, manager, devices and the I/O
// submitter one action at a time, so every policy and profile meets the same races.
// Under a profile with direct-map removal the guest_memfd is created NO_DIRECT_MAP, so every
// holder bounces (nothing pins guest memory; copies are counted). TDX refuses the flag
// (kernel-semantics §1.11, §7 item 7), so that guest is SNP, which the model treats as TDX
// (access type from hardware, content destroyed by conversion).
import type { Backend } from '../backend/backend.js';
import { ModelBackend, type ModelBackendOptions } from '../backend/model-backend.js';
import { GMEM_FLAGS, MAP_FLAGS, PAGE_SIZE, PROT, VM_TYPES, hugetlbFlags } from '../model/abi.js';
import type { Profile } from '../model/profile.js';
import { ODirectIo, type VhostUserBackend } from '../userspace/holders.js';
import type { ConversionTask, Direction } from '../userspace/manager.js';
import type { Policy } from '../userspace/policies.js';
import { Userspace } from '../userspace/userspace.js';
import { mulberry32 } from './rng.js';

const KiB = 1024;
const MiB = 1024 * KiB;

export interface WorkloadShape {
  /** Guest RAM (one guest_memfd, one memslot at GPA 0). */
  readonly ram: number;
  /** Accepted as private at boot, from GPA 0, in requests of `bootChunk`. */
  readonly bootPrivate: number;
  readonly bootChunk: number;
  /** Bounce-buffer conversions after boot, each of `bounceSize` bytes. */
  readonly bounceConversions: number;
  readonly bounceSize: number;
  /** The block device's io_uring fixed buffers: [bootPrivate, bootPrivate + ioUringSize). */
  readonly ioUringSize: number;
  /** Chance per step that the block backend submits an O_DIRECT read into a bounce page. */
  readonly ioRate: number;
  /** O_DIRECT reads the block backend keeps in flight at most. */
  readonly queueDepth: number;
  /** Chance per step that the device may complete an in-flight I/O. */
  readonly completionRate: number;
  /** Steps a guest keeps touching a page that is not private yet before it counts as stuck. */
  readonly stuckAfter: number;
  readonly seed: number;
  readonly maxSteps: number;
  /** Check I1–I11 around every kernel call (the violation count is then a measurement). */
  readonly checkInvariants: boolean;
  /** vCPUs: each issues its own requests and waits for its own (default 1). */
  readonly vcpus?: number;
  /**
   * Accept all of RAM at boot (a TDX guest), then give the bounce area back as shared in one
   * request (swiotlb), instead of accepting only [0, bootPrivate) (default false).
   */
  readonly acceptAll?: boolean;
  /** Size of each VFIO DMA mapping over RAM (default 1 MiB; RAM size: one mapping of all of it; 0: no VFIO). */
  readonly vfioMapSize?: number;
  /** A vhost-user backend maps all of RAM; chance per step that it starts I/O on a bounce page (default 0: no backend). */
  readonly vhostRate?: number;
  /** Call the kernel model, not just the backend, from the workload's own setup (default: the ModelBackend's options). */
  readonly kernelOptions?: Omit<ModelBackendOptions, 'profile' | 'checkInvariants'>;
}

/** Watches a run (simulator metrics, traces); every hook is optional. */
export interface WorkloadHooks {
  /** The backend and userspace half, before setup (wrap the backend to see kernel calls). */
  wrap?(b: ModelBackend): Backend;
  attach?(us: Userspace, backend: ModelBackend): void;
  /** Around each scheduler step: setup is step 0, the scheduler's steps count from 1. */
  beforeStep?(k: number, actor: string, what: string): void;
  afterStep?(k: number, what?: string): void;
  requestStarted?(t: ConversionTask, k: number, vcpu: number, boot: boolean): void;
  requestEnded?(t: ConversionTask, k: number): void;
  /** An I/O completed and its data passed through a (shared) bounce buffer. */
  bounced?(bytes: number): void;
  /** The run is over; the model still holds its final state (it is disposed right after). */
  finished?(): void;
}

export const DEFAULT_SHAPE: WorkloadShape = {
  ram: 16 * MiB, bootPrivate: 12 * MiB, bootChunk: 512 * KiB, bounceConversions: 48, bounceSize: 64 * KiB,
  ioUringSize: 1 * MiB, ioRate: 0.5, queueDepth: 8, completionRate: 0.3, stuckAfter: 200, seed: 1, maxSteps: 200_000, checkInvariants: true,
};

export interface WorkloadResult {
  readonly profile: string;
  readonly policy: string;
  readonly requests: number;
  /** Requests whose pages the guest could use afterwards. */
  readonly completed: number;
  /** Requests the kernel accepted but whose pages never became usable (deferred without release). */
  readonly stuck: number;
  readonly eagains: number;
  readonly retries: number;
  readonly released: number;
  readonly waited: number;
  /** Scheduler steps during which the guest waited for an unfinished request. */
  readonly stalled: number;
  readonly vmStopped: boolean;
  readonly steps: number;
  readonly invariantViolations: number;
  /** Copies through bounce buffers (NO_DIRECT_MAP memory), and the bytes they moved; 0 where holders pin. */
  readonly copies: number;
  readonly bytesCopied: number;
}

export interface GuestRequest { gpa: number; size: number; to: Direction; boot: boolean }

/** The guest's requests in order, one object per request, never per page (also the guest of `gmemkit serve`). */
export function plan(shape: Pick<WorkloadShape, 'ram' | 'bootPrivate' | 'bootChunk' | 'bounceConversions' | 'bounceSize'> & { acceptAll?: boolean }, rand: () => number): GuestRequest[] {
  const out: GuestRequest[] = [];
  const accepted = shape.acceptAll ? shape.ram : shape.bootPrivate;
  for (let gpa = 0; gpa < accepted; gpa += shape.bootChunk) out.push({ gpa, size: Math.min(shape.bootChunk, accepted - gpa), to: 'private', boot: true });
  const bounce = shape.ram - shape.bootPrivate;
  if (shape.acceptAll && bounce > 0) out.push({ gpa: shape.bootPrivate, size: bounce, to: 'shared', boot: true });
  const slots = bounce / shape.bounceSize;
  const owned = new Set<number>();
  for (let i = 0; i < shape.bounceConversions; i++) {
    const slot = Math.floor(rand() * slots);
    const gpa = shape.bootPrivate + slot * shape.bounceSize;
    // The guest reclaims a bounce buffer (to private) and later hands one back (to shared).
    const to: Direction = owned.has(slot) ? 'shared' : 'private';
    if (to === 'private') owned.add(slot);
    else owned.delete(slot);
    out.push({ gpa, size: shape.bounceSize, to, boot: false });
  }
  return out;
}

export function runWorkload(profile: Profile, policy: Policy, shape: WorkloadShape = DEFAULT_SHAPE, hooks: WorkloadHooks = {}): WorkloadResult {
  const rand = mulberry32(shape.seed);
  const backend = new ModelBackend({ ...shape.kernelOptions, profile, checkInvariants: shape.checkInvariants });
  const us = new Userspace(hooks.wrap ? hooks.wrap(backend) : backend);
  hooks.attach?.(us, backend);
  const b = us.backend;
  hooks.beforeStep?.(0, 'VMM', 'setup: VM, guest_memfd, memslot, mmap, holders');
  const must = <T>(r: { ok: boolean; value?: T }, what: string): T => {
    if (!r.ok) throw new Error(`workload setup: ${what}: ${JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
    return r.value as T;
  };
  let copies = 0;
  let bytesCopied = 0;
  us.events.on('copied', (e) => { copies++; bytesCopied += e.bytes; });
  const noDirectMap = profile.noDirectMap !== undefined;
  const vm = must(b.createVm(noDirectMap && !profile.noDirectMap!.vmTypes.includes('tdx') ? VM_TYPES.snp : VM_TYPES.tdx), 'create_vm');
  // Under hugetlb the guest's RAM is 2 MiB huge pages (kernel-semantics §2.3), when it is whole ones.
  const huge = profile.hugetlb !== undefined && shape.ram % (2 * MiB) === 0 ? hugetlbFlags(2 * MiB) : 0n;
  const gmem = must(b.createGuestMemfd(vm, shape.ram, GMEM_FLAGS.MMAP | GMEM_FLAGS.INIT_SHARED | (noDirectMap ? GMEM_FLAGS.NO_DIRECT_MAP : 0n) | huge), 'create_guest_memfd');
  must(b.setUserMemoryRegion2(vm, { slot: 0, flags: 4n, guest_phys_addr: 0, memory_size: shape.ram, userspace_addr: 0, guest_memfd: gmem, guest_memfd_offset: 0 }), 'memslot');
  const ram = must<number>(b.mmap({ fd: gmem, offset: 0, length: shape.ram, prot: PROT.READ | PROT.WRITE, flags: MAP_FLAGS.SHARED }), 'mmap');
  const vfioMap = shape.vfioMapSize ?? MiB;
  if (vfioMap > 0) {
    for (let off = 0; off < shape.ram; off += vfioMap) {
      const len = Math.min(vfioMap, shape.ram - off);
      must(us.vfioDmaMap(ram + off, len, BigInt(off), vfioMap === MiB ? `dma@${off / MiB}M` : `dma@${off}`), 'vfio_dma_map');
    }
  }
  if (shape.ioUringSize > 0) must(us.ioUringRegisterBuffers(ram + shape.bootPrivate, shape.ioUringSize, 'blk-buffers'), 'io_uring_register_buffers');
  const vhost = shape.vhostRate ? must<VhostUserBackend>(us.vhostUserAttach(ram, shape.ram, 'vhost-user'), 'vhost_user_set_mem_table') : undefined;
  hooks.afterStep?.(0);

  const requests = plan(shape, rand);
  const bouncePages = (shape.ram - shape.bootPrivate) / PAGE_SIZE;
  const inflight: ODirectIo[] = [];
  // Boot requests go to whichever vCPU is free; after boot each bounce buffer belongs to one
  // vCPU (slot mod vCPUs), so two vCPUs never convert the same buffer at once.
  const boot = requests.filter((r) => r.boot);
  const nv = Math.max(1, shape.vcpus ?? 1);
  const bounceOf: GuestRequest[][] = Array.from({ length: nv }, () => []);
  for (const r of requests) if (!r.boot) bounceOf[((r.gpa - shape.bootPrivate) / shape.bounceSize) % nv]!.push(r);
  let bootNext = 0;
  let bootEnded = 0;
  const bounceNext: number[] = bounceOf.map(() => 0);
  // The swiotlb give-back waits until every acceptance before it ended and was touched.
  const settled = () => bootEnded === bootNext && vcpus.every((c) => !c.touching);
  const hasNext = (i: number) => (bootNext < boot.length
    ? boot[bootNext]!.to === 'private' || settled()
    : bootEnded === boot.length && bounceNext[i]! < bounceOf[i]!.length);
  const takeNext = (i: number): GuestRequest => (bootNext < boot.length ? boot[bootNext++]! : bounceOf[i]![bounceNext[i]!++]!);
  const done: ConversionTask[] = [];
  let stalled = 0;
  let steps = 0;
  let vmStopped = false;
  let violations = 0;
  let usable = 0;
  let stuck = 0;

  /** A vCPU: its outstanding request, and after a request to private the page it touches (a fault means it must wait). */
  interface Vcpu { task?: ConversionTask; touching?: { gpa: number; since: number } }
  const vcpus: Vcpu[] = Array.from({ length: nv }, () => ({}));
  type Actor = { name: string; enabled: () => boolean; act: () => string };
  const guests: Actor[] = vcpus.map((c, i) => ({
    name: vcpus.length === 1 ? 'guest vCPU 0' : `guest vCPU ${i}`,
    enabled: () => c.touching !== undefined || (c.task === undefined ? hasNext(i) : c.task.phase === 'bounced'),
    act: () => {
      if (c.touching) {
        const r = b.guestRead(vm, c.touching.gpa, 1, true);
        if (r.ok) { usable++; c.touching = undefined; return 'touch: ok'; }
        if (steps - c.touching.since > shape.stuckAfter) { stuck++; c.touching = undefined; return 'touch: stuck'; }
        return 'touch: fault, waits';
      }
      if (c.task?.phase === 'bounced') { us.manager.guestRetry(c.task); return `MapGPA again (request ${c.task.request.id})`; }
      const r = takeNext(i);
      const t = us.mapGpaRangeTask(vm, r.gpa, r.size, r.to, policy);
      if (!t.ok) throw new Error(`workload: request outside memory: ${JSON.stringify(r)}`);
      c.task = t.value;
      hooks.requestStarted?.(c.task, steps, i, r.boot);
      return `MapGPA ${r.to} gpa=0x${r.gpa.toString(16)} size=0x${r.size.toString(16)} (request ${c.task.request.id})`;
    },
  }));
  const active = () => vcpus.filter((c) => c.task !== undefined && !c.task.terminal && c.task.phase !== 'bounced');
  const manager: Actor = {
    name: 'VMM conversion manager',
    enabled: () => active().length > 0,
    act: () => {
      const ready = active();
      const t = (ready.length === 1 ? ready[0]! : ready[Math.floor(rand() * ready.length)]!).task!;
      const phase = t.phase;
      us.manager.step(t);
      return `${phase} → ${t.phase} (request ${t.request.id})`;
    },
  };
  const device: Actor = { // completes in submission order, like a disk queue
    name: 'block device',
    enabled: () => inflight.some((io) => io.state === 'in-flight') && rand() < shape.completionRate,
    act: () => {
      const i = inflight.findIndex((io) => io.state === 'in-flight');
      const io = inflight.splice(i, 1)[0]!;
      const r = io.complete();
      if (r.ok) hooks.bounced?.(io.length);
      return `complete ${io.name}${r.ok ? '' : `: ${'errno' in r ? r.errno : 'failed'}`}`;
    },
  };
  const submitter: Actor = {
    name: 'O_DIRECT submitter',
    enabled: () => inflight.length < shape.queueDepth && rand() < shape.ioRate,
    act: () => {
      const page = Math.floor(rand() * bouncePages);
      const r = us.odirect(ram + shape.bootPrivate + page * PAGE_SIZE, PAGE_SIZE, 'read');
      if (r.ok && (r.value.state === 'in-flight' || r.value.state === 'queued')) inflight.push(r.value);
      return `O_DIRECT read bounce page ${page}: ${r.ok ? r.value.state : 'errno' in r ? r.errno : 'failed'}`;
    },
  };
  const backendIo: Actor = {
    name: 'vhost-user backend',
    enabled: () => vhost !== undefined && inflight.length < shape.queueDepth && rand() < (shape.vhostRate ?? 0),
    act: () => {
      const page = Math.floor(rand() * bouncePages);
      const r = vhost!.io(shape.bootPrivate + page * PAGE_SIZE, PAGE_SIZE);
      if (r.ok && (r.value.state === 'in-flight' || r.value.state === 'queued')) inflight.push(r.value);
      return `vhost-user I/O on bounce page ${page}: ${r.ok ? r.value.state : 'errno' in r ? r.errno : 'failed'}`;
    },
  };
  const actors = [...guests, manager, device, submitter, ...(vhost ? [backendIo] : [])];
  run: while (steps < shape.maxSteps) {
    for (const c of vcpus) {
      const task = c.task;
      if (!task?.terminal) continue;
      done.push(task);
      if (bootEnded < boot.length) bootEnded++;
      hooks.requestEnded?.(task, steps);
      c.task = undefined;
      if (task.vmStopped) { vmStopped = true; break run; }
      if (task.phase === 'done' && task.request.to === 'private') c.touching = { gpa: requestGpa(task), since: steps };
      else if (task.phase === 'done') usable++;
    }
    if (vcpus.every((c, i) => c.task === undefined && !c.touching && !hasNext(i))) break;
    const enabled = actors.filter((a) => a.enabled());
    if (enabled.length === 0) break;
    const actor = enabled[Math.floor(rand() * enabled.length)]!;
    hooks.beforeStep?.(steps + 1, actor.name, actor.name);
    const what = actor.act();
    for (const c of vcpus) if ((c.task && !c.task.terminal) || c.touching) stalled++;
    violations += backend.takeViolations().length;
    steps++;
    hooks.afterStep?.(steps, what);
  }
  function requestGpa(t: ConversionTask): number {
    return us.memory.gmemToGpa(vm, t.request.segments[0]!.fd, t.request.segments[0]!.lo)!;
  }
  const sum = (f: (t: ConversionTask) => number) => done.reduce((n, t) => n + f(t), 0);
  hooks.finished?.();
  backend.dispose();
  return {
    profile: profile.name, policy: policy.name,
    requests: done.length + vcpus.filter((c) => c.task !== undefined).length, completed: usable, stuck,
    eagains: sum((t) => t.eagains), retries: sum((t) => t.retries), released: sum((t) => t.released.length),
    waited: sum((t) => t.waited.length), stalled, vmStopped, steps, invariantViolations: violations, copies, bytesCopied,
  };
}
