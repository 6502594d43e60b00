// The userspace half of a VMM, over any Backend: the memory map, the pin holders and their
// registry, the pin fence, and the conversion manager with its event stream. It must not know
// whether the backend is the model or real Linux.
import { EventEmitter } from 'node:events';
import type { Backend, BResult } from '../backend/backend.js';
import { PAGE_SIZE } from '../model/abi.js';
import { fail, ok } from '../model/result.js';
import { IoUringBuffers, ODirectIo, SplicePipe, VfioDmaMapping, VhostUserBackend, type Holder, type HolderHost } from './holders.js';
import { ConversionManager, type ConversionRequest, type ConversionTask, type Direction, type Environment, type ManagerOptions } from './manager.js';
import { MemoryMap, trackingBackend, TranslationError, type GmemRange } from './memory-map.js';
import type { Policy } from './policies.js';
import { PinRegistry } from './registry.js';

/** The progress of conversions, as events a user can watch. */
export interface ConversionEvents {
  blocked: { request: ConversionRequest; fd: number; offset: number; holders: Holder[] };
  released: { request: ConversionRequest; holder: Holder; how: string };
  retried: { request: ConversionRequest; attempt: number };
  completed: { request: ConversionRequest; retries: number; released: Holder[]; waited: Holder[] };
  failed: { request: ConversionRequest; reason: string };
}

export class ConversionEventEmitter {
  private readonly ee = new EventEmitter();
  on<K extends keyof ConversionEvents>(name: K, fn: (e: ConversionEvents[K]) => void): this {
    this.ee.on(name, fn);
    return this;
  }
  emit<K extends keyof ConversionEvents>(name: K, e: ConversionEvents[K]): void {
    this.ee.emit(name, e);
  }
}

export interface UserspaceOptions extends Partial<ManagerOptions> {}

/** The cooperative environment of a synchronous run: the device completes awaited I/O. */
const COOPERATIVE: Environment = { complete: (io) => { (io as ODirectIo).complete(); } };

export class Userspace implements HolderHost {
  readonly memory = new MemoryMap();
  readonly registry = new PinRegistry();
  readonly events = new ConversionEventEmitter();
  readonly backend: Backend;
  /** The untracked backend: calls made for another process (a vhost-user backend's own mappings). */
  readonly kernel: Backend;
  readonly manager: ConversionManager;
  private readonly holders = new Map<number, Holder>();
  private readonly fences = new Map<number, readonly GmemRange[]>();
  /** Holders released before a to-private conversion, to re-establish after to-shared. */
  private readonly releasedFor: { range: GmemRange; holder: Holder }[] = [];
  private ids = 1;

  constructor(backend: Backend, opts: UserspaceOptions = {}) {
    this.kernel = backend;
    this.backend = trackingBackend(backend, this.memory);
    this.manager = new ConversionManager(this, { fence: opts.fence ?? true, waitForIo: opts.waitForIo ?? true });
  }

  nextId(): number { return this.ids++; }

  // ------------------------------------------------------------ the fence

  fenced(range: GmemRange): boolean {
    for (const ranges of this.fences.values()) {
      if (ranges.some((r) => r.fd === range.fd && r.lo < range.hi && range.lo < r.hi)) return true;
    }
    return false;
  }

  fence(request: number, ranges: readonly GmemRange[]): void {
    this.fences.set(request, ranges);
  }

  /** Lift a request's fence and submit the I/O that queued behind it. */
  unfence(request: number): void {
    if (!this.fences.delete(request)) return;
    for (const h of this.holders.values()) {
      if (h instanceof ODirectIo && h.state === 'queued' && !this.fenced(h.range)) h.start();
    }
  }

  // ------------------------------------------------------------ holders

  track(h: Holder): void {
    this.holders.set(h.id, h);
  }

  private adopt<T extends Holder>(r: BResult<T>): BResult<T> {
    if (r.ok) this.track(r.value);
    return r;
  }

  private guard<T>(f: () => BResult<T>): BResult<T> {
    try {
      return f();
    } catch (e) {
      if (e instanceof TranslationError) return fail('EFAULT', e.message);
      throw e;
    }
  }

  ioUringRegisterBuffers(addr: number, length: number, name?: string) {
    return this.guard(() => this.adopt(IoUringBuffers.register(this, addr, length, name)));
  }
  vfioDmaMap(addr: number, length: number, iova: bigint, name?: string) {
    return this.guard(() => this.adopt(VfioDmaMapping.map(this, addr, length, iova, name)));
  }
  odirect(addr: number, length: number, direction: 'read' | 'write', data?: Uint8Array, name?: string) {
    return this.guard(() => this.adopt(ODirectIo.submit(this, addr, length, direction, data, name)));
  }
  vmsplice(addr: number, length: number, name?: string) {
    return this.guard(() => this.adopt(SplicePipe.splice(this, addr, length, name)));
  }
  vhostUserAttach(addr: number, length: number, name?: string) {
    return this.guard(() => this.adopt(VhostUserBackend.attach(this, addr, length, name)));
  }

  holder(id: number): Holder | undefined { return this.holders.get(id); }

  holdersAt(fd: number, index: number): Holder[] {
    return this.registry.at(fd, index).map((id) => this.holders.get(id)!).filter((h) => h.holding);
  }

  holdersOver(range: GmemRange): Holder[] {
    const pinned = this.registry.overlapping(range.fd, range.lo, range.hi).map((id) => this.holders.get(id)!);
    const mappers = [...this.holders.values()].filter((h) => h instanceof VhostUserBackend && h.mapsAny(range));
    return [...pinned, ...mappers].filter((h) => h.holding);
  }

  rememberReleased(range: GmemRange, holder: Holder): void {
    this.releasedFor.push({ range, holder });
  }

  /**
   * Re-establish holders released for a range (of those, only `only` when given) over `range`.
   * A holder that cannot take all it let go of yet (part of it is still private) keeps its record.
   */
  reestablishReleased(range: GmemRange, only?: readonly Holder[]): void {
    for (let i = this.releasedFor.length - 1; i >= 0; i--) {
      const { range: r, holder } = this.releasedFor[i]!;
      if (r.fd !== range.fd || r.hi <= range.lo || range.hi <= r.lo || (only && !only.includes(holder))) continue;
      if (holder.releasedOver(r) && (!holder.reestablish(range).ok || holder.releasedOver(r))) continue;
      this.releasedFor.splice(i, 1);
    }
  }

  /** Revocable importers over a range that is shared again map it again (revoke variant). */
  remapRevocable(range: GmemRange): void {
    for (const h of this.holders.values()) {
      if (h instanceof VfioDmaMapping && h.revocable && h.holding && h.range.fd === range.fd && h.range.lo < range.hi && range.lo < h.range.hi) h.reestablish();
    }
  }

  // ------------------------------------------------------------ conversions

  /** Convert guest_memfd bytes [offset, offset+size) of `fd` (the VMM's own request). */
  convert(fd: number, offset: number, size: number, to: Direction, policy: Policy): BResult<ConversionTask> {
    if (offset % PAGE_SIZE || size % PAGE_SIZE || size <= 0) return fail('EINVAL', `offset ${offset} and size ${size} must be page-aligned and size positive`);
    const task = this.manager.request([{ fd, lo: offset / PAGE_SIZE, hi: (offset + size) / PAGE_SIZE }], to, policy, 'vmm');
    return ok(this.manager.run(task, COOPERATIVE));
  }

  /** Serve a KVM_HC_MAP_GPA_RANGE hypercall exit (or a memory-fault exit) for a VM, to the end. */
  mapGpaRange(vmFd: number, gpa: number, size: number, to: Direction, policy: Policy, origin = 'KVM_HC_MAP_GPA_RANGE'): BResult<ConversionTask> {
    const t = this.mapGpaRangeTask(vmFd, gpa, size, to, policy, origin);
    return t.ok ? ok(this.manager.run(t.value, COOPERATIVE)) : t;
  }

  /** The same request as a task to advance step by step (simulators, checkers). */
  mapGpaRangeTask(vmFd: number, gpa: number, size: number, to: Direction, policy: Policy, origin = 'KVM_HC_MAP_GPA_RANGE'): BResult<ConversionTask> {
    let segments: GmemRange[];
    try {
      segments = this.memory.gpaToGmem(vmFd, gpa, size);
    } catch (e) {
      if (e instanceof TranslationError) return fail('EINVAL', e.message);
      throw e;
    }
    return ok(this.manager.request(segments, to, policy, origin, vmFd));
  }
}
