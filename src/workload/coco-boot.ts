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
import { ModelBackend } from '../backend/model-backend.js';
import { GMEM_FLAGS, MAP_FLAGS, PAGE_SIZE, PROT, VM_TYPES } from '../model/abi.js';
import type { Profile } from '../model/profile.js';
import { ODirectIo } from '../userspace/holders.js';
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

interface GuestRequest { gpa: number; size: number; to: Direction }

function plan(shape: WorkloadShape, rand: () => number): GuestRequest[] {
  const out: GuestRequest[] = [];
  for (let gpa = 0; gpa < shape.bootPrivate; gpa += shape.bootChunk) out.push({ gpa, size: shape.bootChunk, to: 'private' });
  const bounce = shape.ram - shape.bootPrivate;
  const slots = bounce / shape.bounceSize;
  const owned = new Set<number>();
  for (let i = 0; i < shape.bounceConversions; i++) {
    const slot = Math.floor(rand() * slots);
    const gpa = shape.bootPrivate + slot * shape.bounceSize;
    // The guest reclaims a bounce buffer (to private) and later hands one back (to shared).
    const to: Direction = owned.has(slot) ? 'shared' : 'private';
    if (to === 'private') owned.add(slot);
    else owned.delete(slot);
    out.push({ gpa, size: shape.bounceSize, to });
  }
  return out;
}

export function runWorkload(profile: Profile, policy: Policy, shape: WorkloadShape = DEFAULT_SHAPE): WorkloadResult {
  const rand = mulberry32(shape.seed);
  const backend = new ModelBackend({ profile, checkInvariants: shape.checkInvariants });
  const us = new Userspace(backend);
  const b = us.backend;
  const must = <T>(r: { ok: boolean; value?: T }, what: string): T => {
    if (!r.ok) throw new Error(`workload setup: ${what}: ${JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
    return r.value as T;
  };
  let copies = 0;
  let bytesCopied = 0;
  us.events.on('copied', (e) => { copies++; bytesCopied += e.bytes; });
  const noDirectMap = profile.noDirectMap !== undefined;
  const vm = must(b.createVm(noDirectMap && !profile.noDirectMap!.vmTypes.includes('tdx') ? VM_TYPES.snp : VM_TYPES.tdx), 'create_vm');
  const gmem = must(b.createGuestMemfd(vm, shape.ram, GMEM_FLAGS.MMAP | GMEM_FLAGS.INIT_SHARED | (noDirectMap ? GMEM_FLAGS.NO_DIRECT_MAP : 0n)), 'create_guest_memfd');
  must(b.setUserMemoryRegion2(vm, { slot: 0, flags: 4n, guest_phys_addr: 0, memory_size: shape.ram, userspace_addr: 0, guest_memfd: gmem, guest_memfd_offset: 0 }), 'memslot');
  const ram = must<number>(b.mmap({ fd: gmem, offset: 0, length: shape.ram, prot: PROT.READ | PROT.WRITE, flags: MAP_FLAGS.SHARED }), 'mmap');
  for (let off = 0; off < shape.ram; off += MiB) must(us.vfioDmaMap(ram + off, MiB, BigInt(off), `dma@${off / MiB}M`), 'vfio_dma_map');
  must(us.ioUringRegisterBuffers(ram + shape.bootPrivate, shape.ioUringSize, 'blk-buffers'), 'io_uring_register_buffers');

  const requests = plan(shape, rand);
  const bouncePages = (shape.ram - shape.bootPrivate) / PAGE_SIZE;
  const inflight: ODirectIo[] = [];
  let next = 0;
  let task: ConversionTask | undefined;
  const done: ConversionTask[] = [];
  let stalled = 0;
  let steps = 0;
  let vmStopped = false;
  let violations = 0;

  /** After a request to private completes, the guest touches the page; a fault means it must wait. */
  let touching: { gpa: number; since: number } | undefined;
  let usable = 0;
  let stuck = 0;
  type Actor = { enabled: () => boolean; act: () => void };
  const guest: Actor = {
    enabled: () => touching !== undefined || (task === undefined ? next < requests.length : task.phase === 'bounced'),
    act: () => {
      if (touching) {
        const r = b.guestRead(vm, touching.gpa, 1, true);
        if (r.ok) { usable++; touching = undefined; }
        else if (steps - touching.since > shape.stuckAfter) { stuck++; touching = undefined; }
        return;
      }
      if (task?.phase === 'bounced') return us.manager.guestRetry(task);
      const r = requests[next++]!;
      const t = us.mapGpaRangeTask(vm, r.gpa, r.size, r.to, policy);
      if (!t.ok) throw new Error(`workload: request outside memory: ${JSON.stringify(r)}`);
      task = t.value;
    },
  };
  const manager: Actor = {
    enabled: () => task !== undefined && !task.terminal && task.phase !== 'bounced',
    act: () => us.manager.step(task!),
  };
  const device: Actor = { // completes in submission order, like a disk queue
    enabled: () => inflight.some((io) => io.state === 'in-flight') && rand() < shape.completionRate,
    act: () => {
      const i = inflight.findIndex((io) => io.state === 'in-flight');
      inflight.splice(i, 1)[0]!.complete();
    },
  };
  const submitter: Actor = {
    enabled: () => inflight.length < shape.queueDepth && rand() < shape.ioRate,
    act: () => {
      const page = Math.floor(rand() * bouncePages);
      const r = us.odirect(ram + shape.bootPrivate + page * PAGE_SIZE, PAGE_SIZE, 'read');
      if (r.ok && (r.value.state === 'in-flight' || r.value.state === 'queued')) inflight.push(r.value);
    },
  };
  const actors = [guest, manager, device, submitter];
  while (steps < shape.maxSteps) {
    if (task?.terminal) {
      done.push(task);
      if (task.vmStopped) { vmStopped = true; task = undefined; break; }
      if (task.phase === 'done' && task.request.to === 'private') touching = { gpa: requestGpa(task), since: steps };
      else if (task.phase === 'done') usable++;
      task = undefined;
    }
    if (next >= requests.length && task === undefined && !touching) break;
    // queued I/O that its fence released becomes in flight without the device's help
    const enabled = actors.filter((a) => a.enabled());
    if (enabled.length === 0) break;
    enabled[Math.floor(rand() * enabled.length)]!.act();
    if ((task && !task.terminal) || touching) stalled++;
    violations += backend.takeViolations().length;
    steps++;
  }
  function requestGpa(t: ConversionTask): number {
    return us.memory.gmemToGpa(vm, t.request.segments[0]!.fd, t.request.segments[0]!.lo)!;
  }
  const sum = (f: (t: ConversionTask) => number) => done.reduce((n, t) => n + f(t), 0);
  backend.dispose();
  return {
    profile: profile.name, policy: policy.name,
    requests: done.length + (task ? 1 : 0), completed: usable, stuck,
    eagains: sum((t) => t.eagains), retries: sum((t) => t.retries), released: sum((t) => t.released.length),
    waited: sum((t) => t.waited.length), stalled, vmStopped, steps, invariantViolations: violations, copies, bytesCopied,
  };
}
