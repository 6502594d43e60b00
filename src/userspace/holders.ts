// Pin holders: the userspace subsystems that keep references on shared guest_memfd pages, each
// with its own small state mirroring the real one: io_uring fixed-buffer tables, VFIO type1 DMA
// mappings, O_DIRECT I/O in flight, vmsplice pipes, and a vhost-user backend. Each knows how to
// release its references when the conversion manager asks, and never cancels I/O in flight:
// releasing it means waiting for the device to complete it.
import type { Backend, BResult } from '../backend/backend.js';
import { MAP_FLAGS, PAGE_SIZE, PROT } from '../model/abi.js';
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
  /**
   * The same kernel, called on behalf of another process (a vhost-user backend): its mappings
   * are not the VMM's, so they go untracked and never enter the VMM's memory map.
   */
  readonly kernel: Backend;
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

  /** `range`: the pages behind [addr, addr+length) when addr is not the VMM's (a vhost-user backend's own mapping). */
  constructor(protected readonly host: HolderHost, readonly id: number, readonly kind: HolderKind,
    readonly addr: number, readonly length: number, name?: string, range?: GmemRange) {
    this.name = name ?? `${kind}#${id}`;
    this.range = range ?? host.memory.addressToGmem(addr, length);
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

  /** The manager asks this holder to drop its references on the pages of a conversion (`range`). */
  abstract release(range?: GmemRange): ReleaseAnswer;
  /** The kernel pin this holder holds, if any. */
  get pinId(): number | undefined { return this.pin; }
  /** The device's access through this holder's pin (DMA, READ_FIXED/WRITE_FIXED). */
  dma(offset: number, length: number, store?: Uint8Array): BResult<Uint8Array> {
    if (this.pin === undefined) return fail('EFAULT', `${this.kind} ${this.name} holds no pin`);
    return this.host.backend.pinAccess(this.pin, offset, length, store);
  }
  /** A registration the VMM can make again (buffers, DMA maps), as opposed to I/O or pipes. */
  get reestablishable(): boolean { return false; }
  /** Re-take the references after `range` became shared again (preunmap policy). */
  reestablish(_range?: GmemRange): BResult {
    return fail('EINVAL', `${this.kind} ${this.name} cannot be re-established`);
  }
  /** Whether the holder let go of (part of) `range` and has not taken it again. */
  releasedOver(_range: GmemRange): boolean { return this.state === 'released'; }
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

  constructor(host: HolderHost, id: number, addr: number, length: number, readonly direction: 'read' | 'write', data: Uint8Array | undefined, name?: string, range?: GmemRange) {
    super(host, id, 'odirect', addr, length, name, range);
    this.data = data ?? new Uint8Array(length).fill(direction === 'read' ? 0xd1 : 0);
  }

  /** `range`: see Holder (I/O through a mapping that is not the VMM's). */
  static submit(host: HolderHost, addr: number, length: number, direction: 'read' | 'write', data?: Uint8Array, name?: string, range?: GmemRange): BResult<ODirectIo> {
    if (data && data.length > length) return fail('EINVAL', `data (${data.length} bytes) is longer than the I/O (${length})`);
    const io = new ODirectIo(host, host.nextId(), addr, length, direction, data, name, range);
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

/** One region of a vhost-user backend's memory table: pages [lo, hi) of the file, mapped at `addr`. */
interface BackendRegion { readonly lo: number; readonly hi: number; readonly addr: number }

/**
 * A vhost-user backend, told guest RAM by VHOST_USER_SET_MEM_TABLE: for the VMM's region
 * [addr, addr+length) it gets the guest_memfd fd and offset and mmaps the file itself, at its
 * own address (through `host.kernel`: another process's mapping, not in the VMM's memory map).
 * Its I/O pins pages by GUP on its own addresses, a short-term pin per I/O, like O_DIRECT.
 * Released for a conversion (VHOST_USER_REM_MEM_REG over the range) it munmaps that part of its
 * own mapping and leaves the VMM's alone; its I/O in flight there is a holder of its own, which
 * the manager waits for. Re-established after to-shared (VHOST_USER_ADD_MEM_REG) it mmaps the
 * range again, at a new address. gmemkit runs it in-process: it is a second mapping of the same
 * memfd, not a second address space.
 */
export class VhostUserBackend extends Holder {
  readonly ios: ODirectIo[] = [];
  /** Its memory table: its own mappings of pages of range.fd, in page order. */
  private regions: BackendRegion[] = [];

  static attach(host: HolderHost, addr: number, length: number, name?: string): BResult<VhostUserBackend> {
    if (addr % PAGE_SIZE || length % PAGE_SIZE || length <= 0) return fail('EINVAL', `a vhost-user memory region is whole pages: [0x${addr.toString(16)}, +${length}) is not`);
    const h = new VhostUserBackend(host, host.nextId(), 'vhost_user', addr, length, name);
    const r = h.mapPages(h.range.lo, h.range.hi);
    return r.ok ? ok(h) : r;
  }

  /** mmap pages [lo, hi) of the file at an address of its own. */
  private mapPages(lo: number, hi: number): BResult {
    const r = this.host.kernel.mmap({
      fd: this.range.fd, offset: BigInt(lo * PAGE_SIZE), length: BigInt((hi - lo) * PAGE_SIZE),
      prot: PROT.READ | PROT.WRITE, flags: MAP_FLAGS.SHARED,
    });
    if (!r.ok) return r;
    this.regions.push({ lo, hi, addr: r.value });
    this.regions.sort((a, b) => a.lo - b.lo);
    return OK;
  }

  /** munmap its own mapping of pages [lo, hi) (the parts it maps). */
  private unmapPages(lo: number, hi: number): BResult {
    let result: BResult = OK;
    const kept: BackendRegion[] = [];
    for (const g of this.regions) {
      const a = Math.max(g.lo, lo);
      const b = Math.min(g.hi, hi);
      if (a >= b) { kept.push(g); continue; }
      const r = this.host.kernel.munmap(g.addr + (a - g.lo) * PAGE_SIZE, BigInt((b - a) * PAGE_SIZE));
      if (!r.ok) result = r;
      if (g.lo < a) kept.push({ lo: g.lo, hi: a, addr: g.addr });
      if (b < g.hi) kept.push({ lo: b, hi: g.hi, addr: g.addr + (b - g.lo) * PAGE_SIZE });
    }
    this.regions = kept;
    return result;
  }

  /** Its own address of file page `index`, or undefined where it does not map it. */
  addressOf(index: number): number | undefined {
    const g = this.regions.find((x) => index >= x.lo && index < x.hi);
    return g && g.addr + (index - g.lo) * PAGE_SIZE;
  }

  /** Whether it maps any page of `range`. */
  mapsAny(range: GmemRange): boolean {
    return range.fd === this.range.fd && this.regions.some((g) => g.lo < range.hi && range.lo < g.hi);
  }

  /**
   * The backend starts an I/O on bytes [offset, offset+length) of its memory region (a device
   * read of guest RAM, like virtio-net TX): GUP through its own mapping, a short-term pin.
   */
  io(offset: number, length: number, name?: string): BResult<ODirectIo> {
    if (!this.holding) return fail('EINVAL', `vhost-user ${this.name} was closed`);
    if (offset < 0 || length <= 0 || offset + length > this.length) return fail('EINVAL', `I/O [${offset}, +${length}) is outside the ${this.length} bytes vhost-user ${this.name} maps`);
    const lo = this.range.lo + Math.floor(offset / PAGE_SIZE);
    const hi = this.range.lo + Math.ceil((offset + length) / PAGE_SIZE);
    const g = this.regions.find((x) => x.lo <= lo && hi <= x.hi);
    if (!g) return fail('EFAULT', `vhost-user ${this.name} does not map all of I/O [${offset}, +${length}): that part of its memory table was removed for a conversion`);
    const own = g.addr + (lo - g.lo) * PAGE_SIZE + (offset % PAGE_SIZE);
    const r = ODirectIo.submit(this.host, own, length, 'write', undefined, name, { fd: this.range.fd, lo, hi });
    if (r.ok) {
      this.ios.push(r.value);
      this.host.track(r.value);
    }
    return r;
  }

  /** Unmap its own mapping of the range (all it maps by default); its I/Os are holders the manager waits for. */
  release(range: GmemRange = this.range): ReleaseAnswer {
    if (range.fd === this.range.fd) this.unmapPages(range.lo, range.hi);
    return 'released';
  }

  override get reestablishable(): boolean { return true; }

  /** Map again the pages of `range` (all of its region by default) it unmapped. */
  override reestablish(range: GmemRange = this.range): BResult {
    if (!this.holding) return fail('EINVAL', `vhost-user ${this.name} was closed`);
    if (range.fd !== this.range.fd) return OK;
    let p = Math.max(range.lo, this.range.lo);
    const end = Math.min(range.hi, this.range.hi);
    while (p < end) {
      const g = this.regions.find((x) => p >= x.lo && p < x.hi);
      if (g) { p = g.hi; continue; }
      const next = this.regions.find((x) => x.lo > p);
      const stop = Math.min(end, next ? next.lo : end);
      const r = this.mapPages(p, stop);
      if (!r.ok) return r;
      p = stop;
    }
    return OK;
  }

  override releasedOver(range: GmemRange): boolean {
    if (!this.holding || range.fd !== this.range.fd) return false;
    const lo = Math.max(range.lo, this.range.lo);
    const hi = Math.min(range.hi, this.range.hi);
    let covered = 0;
    for (const g of this.regions) covered += Math.max(0, Math.min(g.hi, hi) - Math.max(g.lo, lo));
    return lo < hi && covered < hi - lo;
  }

  /** The backend disconnects: it unmaps all it maps (its I/O in flight keeps its pins until it completes). */
  override close(): BResult {
    if (!this.holding) return fail('EINVAL', `vhost-user ${this.name} was already released (${this.state})`);
    const r = this.unmapPages(this.range.lo, this.range.hi);
    this.state = 'released';
    return r;
  }
}
