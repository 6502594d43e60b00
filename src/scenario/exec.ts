// Executing one scenario step on a backend: resolve the step's handles to fds, addresses and
// pin ids, make the call, and say what handle (if any) the result is. One entry per op.
import { MAX_BUFFERED_ACCESS, unsupported, type Backend, type BResult } from '../backend/backend.js';
import { CAPS, PAGE_SIZE } from '../model/abi.js';
import type { Profile } from '../model/profile.js';
import { fail, ok } from '../model/result.js';
import { Holder, ODirectIo, SplicePipe, VhostUserBackend } from '../userspace/holders.js';
import type { ConversionTask, Direction } from '../userspace/manager.js';
import { POLICIES, type Policy } from '../userspace/policies.js';
import type { Userspace } from '../userspace/userspace.js';
import { hugepageFlagBits, type HandleRef } from './ops.js';

export interface MapHandle { readonly addr: number; readonly length: number }
export type HandleValue = number | MapHandle | Holder | ConversionTask;

/** What a conversion request did, for `expect: { retries, released, waited }`. */
export interface ConversionSummary {
  readonly retries: number;
  readonly eagains: number;
  readonly released: readonly string[];
  readonly waited: readonly string[];
  readonly stalled: number;
  readonly vmStopped: boolean;
}

/** What a pin holder did with a bounce buffer, for `expect: { bounced, copies, bytes_copied }`. */
export interface HolderSummary {
  readonly bounced: boolean;
  readonly copies: number;
  readonly bytesCopied: number;
}

export function holderSummary(h: Holder): HolderSummary {
  return { bounced: h.bounced, copies: h.copies, bytesCopied: h.bytesCopied };
}

/** Resolves handle references; a handle whose creating step failed raises HandleMissing. */
export interface ExecContext {
  readonly backend: Backend;
  readonly us: Userspace;
  readonly profile: Profile;
  num(ref: unknown): number;
  map(ref: unknown): MapHandle;
  holder(ref: unknown): Holder;
  value(ref: unknown): HandleValue;
}

export class HandleMissing extends Error {
  /**
   * `root`: the step that creates the handle was unsupported (with the capability the kernel
   * lacks, if that is why) or an error of the case (no answer at all), and why.
   */
  constructor(message: string, readonly root?: { readonly why: string; readonly error?: boolean; readonly capability?: string }) {
    super(message);
  }
}

type Args = Readonly<Record<string, unknown>>;
export interface ExecResult { result: BResult<unknown>; handle?: HandleValue; conversion?: ConversionSummary; holder?: HolderSummary }
type Exec = (a: Args, c: ExecContext, as?: string) => ExecResult;

const big = (v: unknown): bigint => v as bigint;
const int = (v: unknown): number => Number(v as bigint);
const bytesOf = (a: Args): Uint8Array => (a.data ?? a.bytes) as Uint8Array;
const call = (result: BResult<unknown>) => ({ result });
const produce = (result: BResult<HandleValue>): ExecResult => ({
  result, ...(result.ok ? { handle: result.value, ...(result.value instanceof Holder ? { holder: holderSummary(result.value) } : {}) } : {}),
});
/** A step on an existing holder: its result, with the holder's bounce-buffer counts after it. */
const onHolder = (h: Holder, result: BResult<unknown>): ExecResult => ({ result, holder: holderSummary(h) });
const policyOf = (v: unknown): Policy => POLICIES[int(v ?? 0n)]!;
const directionOf = (v: unknown): Direction => (v === 1n ? 'private' : 'shared');

export function summarize(t: ConversionTask): ConversionSummary {
  return {
    retries: t.retries, eagains: t.eagains, released: t.released.map((h) => h.name), waited: t.waited.map((h) => h.name),
    stalled: t.stalled, vmStopped: t.vmStopped,
  };
}

/** A conversion request's outcome: the task's failure, or success, with its summary. */
function conversionResult(r: BResult<ConversionTask>): ExecResult {
  if (!r.ok) return { result: r };
  const t = r.value;
  return { result: t.failure ?? ok(undefined), conversion: summarize(t) };
}

/** A guest access; with `on_fault`, the VMM serves a memory-fault exit by converting, then re-runs it. */
function guestAccess(a: Args, c: ExecContext, run: () => BResult<unknown>): ExecResult {
  const first = run();
  if (a.on_fault === undefined || first.ok || !('exit' in first) || first.exit !== 'MEMORY_FAULT') return { result: first };
  const conv = c.us.mapGpaRange(c.num(a.vm), Number(first.gpa), Number(first.size), first.private ? 'private' : 'shared', policyOf(a.on_fault), 'KVM_EXIT_MEMORY_FAULT');
  const done = conversionResult(conv);
  return done.result.ok ? { result: run(), ...(done.conversion ? { conversion: done.conversion } : {}) } : done;
}


/** Address of `offset` within a mapping handle. */
const at = (c: ExecContext, a: Args): number => c.map(a.map).addr + int(a.offset ?? 0n);

/** `addr:` of mmap: a map handle's start address, or a raw number. */
const addressOf = (v: unknown, c: ExecContext): bigint => {
  const r = v as HandleRef;
  return 'raw' in r ? r.raw : BigInt(c.map(r).addr);
};

/** write with fill: the backend's memset, or a buffer of at most MAX_BUFFERED_ACCESS bytes. */
function fill(c: ExecContext, addr: number, length: bigint, byte: number): BResult<unknown> {
  if (c.backend.hostFill) return c.backend.hostFill(addr, length, byte);
  if (length > BigInt(MAX_BUFFERED_ACCESS)) return unsupported(`a store of ${length} bytes: this backend writes at most MAX_BUFFERED_ACCESS (${MAX_BUFFERED_ACCESS} bytes) per access`);
  return c.backend.hostWrite(addr, new Uint8Array(Number(length)).fill(byte));
}

/** A model-only op on a kernel backend: unsupported, naming what no kernel reports. */
const modelOnly = (op: string, what: string) => ({ ...unsupported(`${op} reads the model's state: no kernel interface reports ${what} to userspace`), capability: `${what} (no kernel reports it)` });

/** Capability names resolve per profile (the in-place cap moved between versions: §5.4). */
function capNumber(cap: unknown, profile: Profile): bigint {
  if (typeof cap === 'number' || typeof cap === 'bigint') return BigInt(cap);
  const name = String(cap).replace(/^KVM_CAP_/, '');
  if (name === 'GUEST_MEMFD_MEMORY_ATTRIBUTES') return BigInt(profile.gmemAttributesCap ?? 250);
  return BigInt((CAPS as Record<string, number>)[name]!);
}

export const EXEC: Readonly<Record<string, Exec>> = {
  create_vm: (a, c) => produce(c.backend.createVm(big(a.type))),
  check_extension: (a, c) => call(c.backend.checkExtension(capNumber(a.cap, c.profile), a.vm === undefined ? undefined : c.num(a.vm))),
  create_guest_memfd: (a, c) => produce(c.backend.createGuestMemfd(c.num(a.vm), big(a.size), big(a.flags) | hugepageFlagBits(a))),
  close: (a, c) => {
    const h = c.value(a.fd);
    return call(typeof h === 'object' && 'kind' in h ? h.close() : c.backend.close(c.num(a.fd)));
  },
  mmap: (a, c) => {
    const r = c.backend.mmap({
      fd: a.fd === undefined ? null : c.num(a.fd), offset: big(a.offset), length: big(a.length), prot: big(a.prot), flags: big(a.flags),
      ...(a.addr === undefined ? {} : { addr: addressOf(a.addr, c) + big(a.addr_offset ?? 0n) }),
    });
    const length = Math.ceil(int(a.length) / PAGE_SIZE) * PAGE_SIZE;
    return r.ok ? { result: r, handle: { addr: r.value, length } } : { result: r };
  },
  munmap: (a, c) => {
    const m = c.map(a.map);
    const off = int(a.offset ?? 0n);
    return call(c.backend.munmap(m.addr + off, a.length === undefined ? BigInt(m.length - off) : big(a.length)));
  },
  read: (a, c) => call(c.backend.hostRead(at(c, a), int(a.length))),
  write: (a, c) => call(a.fill === undefined ? c.backend.hostWrite(at(c, a), bytesOf(a)) : fill(c, at(c, a), big(a.length), int(a.fill))),
  madvise: (a, c) => {
    const m = c.map(a.map);
    const off = int(a.offset ?? 0n);
    return call(c.backend.madvise(m.addr + off, a.length === undefined ? BigInt(m.length - off) : big(a.length), int(a.advice)));
  },
  fallocate: (a, c) => call(c.backend.fallocate(c.num(a.fd), big(a.mode), big(a.offset), big(a.length))),
  ftruncate: (a, c) => call(c.backend.ftruncate(c.num(a.fd), big(a.length))),
  fd_read: (a, c) => call(c.backend.fdRead(c.num(a.fd), a.length === undefined ? undefined : big(a.length))),
  fd_write: (a, c) => call(c.backend.fdWrite(c.num(a.fd), bytesOf(a))),
  pread: (a, c) => call(c.backend.pread(c.num(a.fd), big(a.length), big(a.offset))),
  pwrite: (a, c) => call(c.backend.pwrite(c.num(a.fd), bytesOf(a), big(a.offset))),
  lseek: (a, c) => call(c.backend.lseek(c.num(a.fd), big(a.offset), int(a.whence))),
  fstat: (a, c) => call(c.backend.fstat ? c.backend.fstat(c.num(a.fd)) : unsupported('this backend has no fstat')),
  set_user_memory_region2: (a, c) => {
    const ua = a.userspace_addr as HandleRef;
    const uaddr = 'raw' in ua ? ua.raw : BigInt(c.map(ua).addr);
    const flags = a.flags ?? (a.guest_memfd !== undefined ? 4n : 0n); // KVM_MEM_GUEST_MEMFD when a guest_memfd is named
    return call(c.backend.setUserMemoryRegion2(c.num(a.vm), {
      slot: big(a.slot), flags: big(flags), guest_phys_addr: big(a.guest_phys_addr), memory_size: big(a.memory_size),
      userspace_addr: uaddr, guest_memfd: a.guest_memfd === undefined ? -1 : c.num(a.guest_memfd), guest_memfd_offset: big(a.guest_memfd_offset),
    }));
  },
  set_memory_attributes: (a, c) => call(c.backend.setMemoryAttributes(c.num(a.vm), {
    address: big(a.address), size: big(a.size), attributes: big(a.attributes), flags: big(a.flags),
  })),
  set_memory_attributes2: (a, c) => call(c.backend.setMemoryAttributes2(c.num(a.fd), {
    offset: big(a.offset), size: big(a.size), attributes: big(a.attributes), flags: big(a.flags),
    ...(a.reserved === undefined ? {} : { reserved: [big(a.reserved)] }),
  })),
  guest_read: (a, c) => guestAccess(a, c, () => c.backend.guestRead(c.num(a.vm), big(a.gpa), int(a.length), a.private as boolean | undefined)),
  guest_write: (a, c) => guestAccess(a, c, () => c.backend.guestWrite(c.num(a.vm), big(a.gpa), bytesOf(a), a.private as boolean | undefined)),
  pin_user_pages: (a, c) => produce(c.backend.pinUserPages(at(c, a), int(a.length), a.longterm as boolean, a.write as boolean)),
  unpin_user_pages: (a, c) => call(c.backend.unpinUserPages(c.num(a.pin))),
  pin_read: (a, c) => call(c.backend.pinAccess(c.num(a.pin), int(a.offset), int(a.length))),
  pin_write: (a, c) => call(c.backend.pinAccess(c.num(a.pin), int(a.offset), bytesOf(a).length, bytesOf(a))),
  folio_order: (a, c) => call(c.backend.folioOrder ? c.backend.folioOrder(c.num(a.fd), big(a.offset)) : modelOnly('folio_order', 'the order of a guest_memfd folio')),
  spte_order: (a, c) => call(c.backend.spteOrder ? c.backend.spteOrder(c.num(a.vm), big(a.gpa)) : modelOnly('spte_order', 'the level of a guest mapping')),
  // ------------------------------------------------------------ the userspace half
  io_uring_register_buffers: (a, c, as) => produce(c.us.ioUringRegisterBuffers(at(c, a), int(a.length), as)),
  io_uring_unregister_buffers: (a, c) => onHolder(c.holder(a.ring), c.holder(a.ring).close()),
  vfio_dma_map: (a, c, as) => produce(c.us.vfioDmaMap(at(c, a), int(a.length), big(a.iova), as)),
  vfio_dma_unmap: (a, c) => onHolder(c.holder(a.dma), c.holder(a.dma).close()),
  dma_read: (a, c) => onHolder(c.holder(a.dma), c.holder(a.dma).dma(int(a.offset), int(a.length))),
  dma_write: (a, c) => onHolder(c.holder(a.dma), c.holder(a.dma).dma(int(a.offset), bytesOf(a).length, bytesOf(a))),
  odirect_read: (a, c, as) => produce(c.us.odirect(at(c, a), int(a.length), 'read', (a.data ?? a.bytes) as Uint8Array | undefined, as)),
  odirect_write: (a, c, as) => produce(c.us.odirect(at(c, a), int(a.length), 'write', undefined, as)),
  io_complete: (a, c) => {
    const io = c.holder(a.io) as ODirectIo;
    const r = io.complete();
    return onHolder(io, r.ok && io.direction === 'write' ? ok(io.data) : r);
  },
  vmsplice: (a, c, as) => produce(c.us.vmsplice(at(c, a), int(a.length), as)),
  pipe_read: (a, c) => call((c.holder(a.pipe) as SplicePipe).read(a.length === undefined ? undefined : int(a.length))),
  vhost_user_set_mem_table: (a, c, as) => {
    const m = c.map(a.map);
    const off = int(a.offset ?? 0n);
    return produce(c.us.vhostUserAttach(m.addr + off, a.length === undefined ? m.length - off : int(a.length), as));
  },
  vhost_user_io: (a, c, as) => produce((c.holder(a.vhost) as VhostUserBackend).io(int(a.offset), int(a.length), as)),
  convert: (a, c) => conversionResult(c.us.convert(c.num(a.fd), int(a.offset), int(a.size), directionOf(a.to), policyOf(a.policy))),
  request_start: (a, c) => {
    const base = policyOf(a.policy);
    const policy = a.max_retries === undefined ? base : { ...base, maxRetries: int(a.max_retries) };
    const r = c.us.mapGpaRangeTask(c.num(a.vm), int(a.gpa), int(a.size), directionOf(a.to), policy);
    return r.ok ? { result: ok(undefined), handle: r.value } : { result: r };
  },
  manager_step: (a, c) => {
    const task = c.value(a.request) as ConversionTask;
    if (task.terminal) return call(fail('EINVAL', `request ${task.request.id} has already ${task.phase === 'done' ? 'completed' : 'failed'}`));
    let racePin: number | undefined;
    if (a.race_map !== undefined) {
      if (!c.backend.setPreemptionPoint || !c.backend.pinUserPagesFast) return call({ ...unsupported('a race inside the conversion can only be injected into the model'), capability: 'a preemption point inside the conversion ioctl (no kernel offers one to userspace)' });
      const addr = c.map(a.race_map).addr + int(a.race_offset ?? 0n);
      c.backend.setPreemptionPoint(() => {
        const r = c.backend.pinUserPagesFast!(addr, PAGE_SIZE, a.race_longterm as boolean);
        if (r.ok) racePin = r.value;
      });
    }
    if (task.phase === 'bounced') c.us.manager.guestRetry(task);
    else c.us.manager.step(task);
    c.backend.setPreemptionPoint?.(undefined);
    const result = task.phase === 'failed' ? task.failure! : ok(undefined);
    return { result, conversion: summarize(task), ...(racePin !== undefined ? { handle: racePin } : {}) };
  },
  map_gpa_range: (a, c) => conversionResult(c.us.mapGpaRange(c.num(a.vm), int(a.gpa), int(a.size), directionOf(a.to), policyOf(a.policy))),
};
