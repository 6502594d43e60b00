// Pin holders: the userspace subsystems that keep references on shared guest_memfd pages, each
// with its own small state mirroring the real one: io_uring fixed-buffer tables, VFIO type1 DMA
// mappings, O_DIRECT I/O in flight, vmsplice pipes, and a vhost-user backend. Each knows how to
// release its references when the conversion manager asks, and never cancels I/O in flight:
// releasing it means waiting for the device to complete it.
import type { Backend, BResult } from '../backend/backend.js';
import { PAGE_SIZE } from '../model/abi.js';
import { fail, ok, OK } from '../model/result.js';
import type { GmemRange, MemoryMap } from './memory-map.js';
import type { PinRegistry } from './registry.js';

export type HolderKind = 'io_uring' | 'vfio' | 'odirect' | 'pipe' | 'vhost_user';
/** held: references in place; in-flight: I/O the device will complete; queued: behind a fence. */
export type HolderState = 'held' | 'in-flight' | 'queued' | 'released' | 'completed' | 'failed';

/** What the manager gets when it asks a holder to let go. */
export type ReleaseAnswer = 'released' | 'wait';

/** The services holders share: the backend, the VMM's memory map and the pin registry. */
export interface HolderHost {
  readonly backend: Backend;
  readonly memory: MemoryMap;
  readonly registry: PinRegistry;
  /** A conversion to private is in progress over these pages (the pin fence). */
  fenced(range: GmemRange): boolean;
  nextId(): number;
  /** Keep a holder created outside the host's own calls (a backend's I/O), so its registry entries resolve. */
  track(h: Holder): void;
}

export abstract class Holder {
  state: HolderState = 'held';
  /** Scenario handle name, or a generated one. */
  name: string;
  protected pin: number | undefined;
  range: GmemRange;

  constructor(protected readonly host: HolderHost, readonly id: number, readonly kind: HolderKind,
    readonly addr: number, readonly length: number, name?: string) {
    this.name = name ?? `${kind}#${id}`;
    this.range = host.memory.addressToGmem(addr, length);
  }

  /** Take the references (GUP) and record them in the registry. */
  protected acquire(longterm: boolean): BResult {
    const r = this.host.backend.pinUserPages(this.addr, this.length, longterm);
    if (!r.ok) return r;
    this.pin = r.value;
    this.host.registry.add(this.range.fd, this.range.lo, this.range.hi, this.id);
    return OK;
  }

  protected drop(): BResult {
    if (this.pin === undefined) return OK;
    const r = this.host.backend.unpinUserPages(this.pin);
    this.host.registry.remove(this.range.fd, this.range.lo, this.range.hi, this.id);
    this.pin = undefined;
    return r;
  }

  /** The manager asks this holder to drop its references on the pages of a conversion. */
  abstract release(): ReleaseAnswer;
  /** The kernel pin this holder holds, if any. */
  get pinId(): number | undefined { return this.pin; }
  /** The device's access through this holder's pin (DMA, READ_FIXED/WRITE_FIXED). */
  dma(offset: number, length: number, store?: Uint8Array): BResult<Uint8Array> {
    if (this.pin === undefined) return fail('EFAULT', `${this.kind} ${this.name} holds no pin`);
    return this.host.backend.pinAccess(this.pin, offset, length, store);
  }
  /** A registration the VMM can make again (buffers, DMA maps), as opposed to I/O or pipes. */
  get reestablishable(): boolean { return false; }
  /** Re-take the references after the range became shared again (preunmap policy). */
  reestablish(): BResult {
    return fail('EINVAL', `${this.kind} ${this.name} cannot be re-established`);
  }
  /** True while the holder still references pages. */
  get holding(): boolean { return this.state === 'held' || this.state === 'in-flight'; }
  /** The user's own teardown (unregister, unmap, close); releasing twice is an error. */
  close(): BResult {
    if (!this.holding) return fail('EINVAL', `${this.kind} ${this.name} was already released (${this.state})`);
    const r = this.drop();
    this.state = 'released';
    return r;
  }
}

/** An io_uring ring with one fixed-buffer table (IORING_REGISTER_BUFFERS: a long-term pin). */
export class IoUringBuffers extends Holder {
  static register(host: HolderHost, addr: number, length: number, name?: string): BResult<IoUringBuffers> {
    const h = new IoUringBuffers(host, host.nextId(), 'io_uring', addr, length, name);
    if (host.fenced(h.range)) return fail('EBUSY', `a conversion to private of these pages is in progress: registration refused until it completes`);
    const r = h.acquire(true);
    return r.ok ? ok(h) : r;
  }
  release(): ReleaseAnswer { this.drop(); this.state = 'released'; return 'released'; }
  override get reestablishable(): boolean { return true; }
  override reestablish(): BResult {
    const r = this.acquire(true);
    if (r.ok) this.state = 'held';
    return r;
  }
}

/**
 * A VFIO type1 DMA mapping at an iova (VFIO_IOMMU_MAP_DMA: a long-term pin plus an IOMMU entry).
 * Where the kernel offers revocable fd+offset imports (the `revoke` variant) the mapping names
 * the memory by fd+offset instead and holds no pin: a conversion revokes it, and it maps again
 * once the range is shared.
 */
export class VfioDmaMapping extends Holder {
  importId: number | undefined;
  /** Mapped by fd+offset (the kernel revokes instead of pinning); kept while a revoked import waits to map again. */
  revocable = false;
  constructor(host: HolderHost, id: number, addr: number, length: number, readonly iova: bigint, name?: string) {
    super(host, id, 'vfio', addr, length, name);
  }
  override get reestablishable(): boolean { return true; }
  static map(host: HolderHost, addr: number, length: number, iova: bigint, name?: string): BResult<VfioDmaMapping> {
    const h = new VfioDmaMapping(host, host.nextId(), addr, length, iova, name);
    if (host.fenced(h.range)) return fail('EBUSY', 'a conversion to private of these pages is in progress: DMA map refused until it completes');
    const r = h.attach();
    return r.ok ? ok(h) : r;
  }
  /** Import by fd+offset if the kernel can revoke; otherwise pin. */
  private attach(): BResult {
    const b = this.host.backend;
    const imp = b.gmemImport?.(this.range.fd, BigInt(this.range.lo * PAGE_SIZE), BigInt((this.range.hi - this.range.lo) * PAGE_SIZE));
    if (imp?.ok) {
      this.importId = imp.value;
      this.revocable = true;
      return OK;
    }
    if (imp && !imp.ok && 'errno' in imp && imp.errno !== 'ENOTTY') return imp;
    return this.acquire(true);
  }
  release(): ReleaseAnswer {
    if (this.importId !== undefined) this.host.backend.gmemUnimport?.(this.importId);
    this.importId = undefined;
    this.drop();
    this.state = 'released';
    return 'released';
  }
  override reestablish(): BResult {
    if (this.importId !== undefined) this.host.backend.gmemUnimport?.(this.importId);
    this.importId = undefined;
    const r = this.attach();
    if (r.ok) this.state = 'held';
    return r;
  }
  override close(): BResult {
    if (!this.holding) return fail('EINVAL', `vfio ${this.name} was already released (${this.state})`);
    this.release();
    return OK;
  }
  /** The device's DMA through the mapping: the pinned folios, or the file's pages by fd+offset. */
  override dma(offset: number, length: number, store?: Uint8Array): BResult<Uint8Array> {
    if (!this.holding || (this.importId === undefined && this.pin === undefined)) return fail('EFAULT', `vfio ${this.name} is not mapped (IOMMU fault)`);
    if (this.importId !== undefined) return this.host.backend.importAccess!(this.importId, offset, length, store);
    return this.host.backend.pinAccess(this.pin!, offset, length, store);
  }
}

/**
 * One O_DIRECT read or write: a short-term pin from submission to completion. A read's data
 * lands in the page at completion; a write reads the page at completion. Behind a fence the
 * I/O is queued and submitted when the conversion completes.
 */
export class ODirectIo extends Holder {
  /** What the device delivers (read) or received (write). */
  data: Uint8Array;
  error?: string;

  constructor(host: HolderHost, id: number, addr: number, length: number, readonly direction: 'read' | 'write', data: Uint8Array | undefined, name?: string) {
    super(host, id, 'odirect', addr, length, name);
    this.data = data ?? new Uint8Array(length).fill(direction === 'read' ? 0xd1 : 0);
  }

  static submit(host: HolderHost, addr: number, length: number, direction: 'read' | 'write', data?: Uint8Array, name?: string): BResult<ODirectIo> {
    if (data && data.length > length) return fail('EINVAL', `data (${data.length} bytes) is longer than the I/O (${length})`);
    const io = new ODirectIo(host, host.nextId(), addr, length, direction, data, name);
    if (host.fenced(io.range)) {
      io.state = 'queued';
      return ok(io);
    }
    const r = io.start();
    return r.ok ? ok(io) : r;
  }

  /** Submit: GUP the buffer for the duration of the I/O. */
  start(): BResult {
    const r = this.acquire(false);
    if (!r.ok) {
      this.state = 'failed';
      this.error = 'errno' in r ? r.errno : 'EFAULT';
      return r;
    }
    this.state = 'in-flight';
    return OK;
  }

  /** The device completes the I/O: the data moves, the pin goes. */
  complete(): BResult {
    if (this.state === 'queued') return fail('EBUSY', `I/O ${this.name} is queued behind a conversion`);
    if (this.state !== 'in-flight') return fail('EINVAL', `I/O ${this.name} is not in flight (${this.state})`);
    const moved = this.direction === 'read'
      ? this.host.backend.pinAccess(this.pin!, 0, this.data.length, this.data)
      : this.host.backend.pinAccess(this.pin!, 0, this.length);
    if (moved.ok && this.direction === 'write') this.data = moved.value;
    this.drop();
    this.state = 'completed';
    return moved.ok ? OK : moved;
  }

  release(): ReleaseAnswer { return this.state === 'in-flight' ? 'wait' : 'released'; }
  override close(): BResult { return fail('EINVAL', `I/O ${this.name} cannot be cancelled; complete it (io_complete)`); }
}

/** A pipe filled by vmsplice: page references until a reader consumes them. */
export class SplicePipe extends Holder {
  readonly fd: number;
  /** Bytes spliced in and not yet read: the pipe holds page references until this is 0. */
  private unread: number;
  constructor(host: HolderHost, id: number, addr: number, length: number, fd: number, name?: string) {
    super(host, id, 'pipe', addr, length, name);
    this.fd = fd;
    this.unread = length;
  }
  static splice(host: HolderHost, addr: number, length: number, name?: string): BResult<SplicePipe> {
    const probe = host.memory.addressToGmem(addr, length);
    if (host.fenced(probe)) return fail('EBUSY', 'a conversion to private of these pages is in progress: vmsplice refused until it completes');
    const r = host.backend.vmsplice(addr, length);
    if (!r.ok) return r;
    const p = new SplicePipe(host, host.nextId(), addr, length, r.value, name);
    host.registry.add(p.range.fd, p.range.lo, p.range.hi, p.id);
    return ok(p);
  }
  /** The reader side: consume up to `length` bytes (all by default). */
  read(length?: number): BResult<Uint8Array> {
    const r = this.host.backend.fdRead(this.fd, length);
    if (r.ok) this.unread -= r.value.length;
    if (r.ok && this.unread <= 0 && this.state !== 'released') this.drained();
    return r;
  }
  private drained(): void {
    this.unread = 0;
    this.host.registry.remove(this.range.fd, this.range.lo, this.range.hi, this.id);
    this.state = 'released';
  }
  /** Releasing a pipe means letting its consumer drain it (the VMM flushes it). */
  release(): ReleaseAnswer {
    this.host.backend.fdRead(this.fd);
    this.drained();
    return 'released';
  }
  override close(): BResult {
    const r = this.host.backend.close(this.fd);
    this.drained();
    return r;
  }
}

/**
 * A vhost-user backend: it maps all guest RAM (its own mapping of the guest_memfd) and pins
 * ranges for the I/O it does. Releasing asks it to drop its PTEs on the range and to finish
 * that I/O.
 */
export class VhostUserBackend extends Holder {
  readonly ios: ODirectIo[] = [];
  static attach(host: HolderHost, addr: number, length: number, name?: string): BResult<VhostUserBackend> {
    return ok(new VhostUserBackend(host, host.nextId(), 'vhost_user', addr, length, name));
  }
  /** The backend starts an I/O on [offset, offset+length) of guest RAM (a short-term pin). */
  io(offset: number, length: number, name?: string): BResult<ODirectIo> {
    if (offset < 0 || length <= 0 || offset + length > this.length) return fail('EINVAL', `I/O [${offset}, +${length}) is outside the ${this.length} bytes vhost-user ${this.name} maps`);
    const r = ODirectIo.submit(this.host, this.addr + offset, length, 'write', undefined, name);
    if (r.ok) {
      this.ios.push(r.value);
      this.host.track(r.value);
    }
    return r;
  }
  /** Drop its PTEs; its I/Os are holders of their own, which the manager waits for. */
  release(): ReleaseAnswer {
    this.host.backend.madvise(this.addr, BigInt(this.length), 4 /* MADV_DONTNEED */);
    return 'released';
  }
  override close(): BResult {
    this.state = 'released';
    return OK;
  }
  pageAddr(index: number): number {
    return this.addr + (index - this.range.lo) * PAGE_SIZE;
  }
}
