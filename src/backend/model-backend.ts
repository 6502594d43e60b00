// The model as a backend: forwards each call to the Kernel model and, unless switched off,
// checks the invariants I1–I13 around it. Violations are collected per call, never thrown.
import { PAGE_SIZE } from '../model/abi.js';
import { beginStep, checkState, ContentScratch, endStep, IncrementalStateCheck, type ConversionIntent } from '../model/invariants.js';
import { Kernel, type KernelOptions, type MemoryAttributes2Args, type MemoryAttributesArgs, type MemoryRegion2, type MmapArgs, type U64 } from '../model/kernel.js';
import { kvmGmemRanges } from '../model/kvm.js';
import { OK, type KResult } from '../model/result.js';
import { MAX_BUFFERED_ACCESS, unsupported, type Backend, type BackendIdentity, type BResult, type Violation } from './backend.js';

export interface ModelBackendOptions extends KernelOptions {
  /** Check I1–I13 after every call (default true). */
  checkInvariants?: boolean;
  /**
   * How the state invariants are checked: 'full' evaluates every one after every call (the
   * default); 'incremental' evaluates only those whose inputs the call changed and reuses the
   * last result of the others, which gives the same violations (invariants.ts, IncrementalStateCheck).
   */
  invariantMode?: 'full' | 'incremental';
}

const PAGE = BigInt(PAGE_SIZE);
/** The (shared, frozen) answer of takeViolations() for a step that broke nothing: no array per step. */
const NONE: readonly Violation[] = Object.freeze([]);
const MIB = 1024 * 1024;

// Kept outside the backend's fields, which a checker clones and encodes as state: the
// incremental check of each backend (made on first use, so a clone starts with a fresh one),
// and the buffer for beginStep's page copies, shared, used by one step at a time.
const INCREMENTAL = new WeakMap<ModelBackend, IncrementalStateCheck>();
const SCRATCH = new ContentScratch();
let scratchBusy = false;

/** An access too large to buffer: its failure if its faults fail, else "unsupported", saying why. */
function tooLarge<T>(touched: KResult<void>, what: string, length: number): BResult<T> {
  if (!touched.ok) return touched;
  return unsupported(`${what} of ${length} bytes: every page is accessible, so the kernel would complete it, `
    + `but gmemkit buffers at most ${MAX_BUFFERED_ACCESS / MIB} MiB per access (MAX_BUFFERED_ACCESS); read less at a time`);
}

export class ModelBackend implements Backend {
  readonly kernel: Kernel;
  /** Check I1–I13 around each call; a checker switches this off while it replays a path. */
  checking: boolean;
  private violations: Violation[] = [];
  readonly invariantMode: 'full' | 'incremental';

  constructor(opts: ModelBackendOptions = {}) {
    this.kernel = new Kernel(opts);
    this.checking = opts.checkInvariants ?? true;
    this.invariantMode = opts.invariantMode ?? 'full';
  }

  /** The incremental state check ('incremental' mode), with its counts of evaluations and reuses. */
  get incremental(): IncrementalStateCheck | undefined {
    if (this.invariantMode !== 'incremental') return undefined;
    let c = INCREMENTAL.get(this);
    if (!c) INCREMENTAL.set(this, (c = new IncrementalStateCheck()));
    return c;
  }

  identity(): BackendIdentity {
    return { backend: 'model', kernel: this.kernel.profile.name, flavour: this.kernel.profile.status };
  }

  takeViolations(): Violation[] {
    const v = this.violations;
    if (v.length === 0) return NONE as Violation[];
    this.violations = [];
    return v;
  }

  dispose(): void {
    for (const pin of [...this.kernel.state.pins.keys()]) this.kernel.unpinUserPages(pin);
    for (const [, vma] of [...this.kernel.state.vmas.entries()]) this.kernel.munmap(vma.start, vma.end - vma.start);
    for (const fd of [...this.kernel.state.fds.keys()]) this.kernel.close(fd);
  }

  /** Run one kernel call between the step invariants and the state invariants. */
  private step<T>(call: () => BResult<T>, conversions: () => ConversionIntent[] = () => []): BResult<T> {
    if (!this.checking) return call();
    // A call made inside another (a race at a preemption point) copies into its own buffer.
    const own = !scratchBusy;
    scratchBusy = true;
    let r: BResult<T>;
    let broken: ReturnType<typeof endStep>;
    try {
      const ctx = beginStep(this.kernel, conversions(), own ? SCRATCH : undefined);
      r = call();
      broken = endStep(ctx, r.ok, !r.ok && 'errno' in r ? r.errno : undefined);
    } finally {
      if (own) scratchBusy = false;
    }
    const incremental = this.incremental;
    const state = incremental ? incremental.check(this.kernel) : checkState(this.kernel);
    if (broken.length) this.violations.push(...broken);
    if (state.length) this.violations.push(...state);
    return r;
  }

  createVm(type: U64) { return this.step(() => this.kernel.createVm(type)); }
  checkExtension(cap: U64, vmFd?: number) { return this.step(() => this.kernel.checkExtension(cap, vmFd)); }
  createGuestMemfd(vmFd: number, size: U64, flags: U64) { return this.step(() => this.kernel.createGuestMemfd(vmFd, size, flags)); }
  close(fd: number) { return this.step(() => this.kernel.close(fd)); }
  mmap(args: MmapArgs) { return this.step(() => this.kernel.mmap(args)); }
  munmap(addr: number, length: U64) { return this.step(() => this.kernel.munmap(addr, length)); }
  hostRead(addr: number, length: number): BResult<Uint8Array> {
    if (length > MAX_BUFFERED_ACCESS) return this.step(() => tooLarge(this.kernel.hostTouch(addr, length, false), 'host read', length));
    return this.step(() => this.kernel.hostRead(addr, length));
  }
  hostWrite(addr: number, data: Uint8Array) { return this.step(() => this.kernel.hostWrite(addr, data)); }
  hostFill(addr: number, length: U64, byte: number): BResult {
    const n = BigInt(length);
    if (n <= BigInt(MAX_BUFFERED_ACCESS)) return this.hostWrite(addr, new Uint8Array(Number(n)).fill(byte));
    return this.step(() => {
      // Range-wise: only the first MAX_BUFFERED_ACCESS bytes are faulted; nothing of N bytes is allocated.
      const touched = this.kernel.hostTouch(addr, MAX_BUFFERED_ACCESS, true);
      if (touched.ok) {
        return unsupported(`a store of ${n} bytes: the first ${MAX_BUFFERED_ACCESS / MIB} MiB are faultable, `
          + `and gmemkit writes at most ${MAX_BUFFERED_ACCESS / MIB} MiB per access (MAX_BUFFERED_ACCESS); write less at a time`);
      }
      if ('signal' in touched) this.kernel.hostWrite(addr, new Uint8Array(touched.address - addr).fill(byte));
      return touched;
    });
  }
  madvise(addr: number, length: U64, advice: number) { return this.step(() => this.kernel.madvise(addr, length, advice)); }
  fallocate(fd: number, mode: U64, offset: U64, len: U64) { return this.step(() => this.kernel.fallocate(fd, mode, offset, len)); }
  ftruncate(fd: number, length: U64) { return this.step(() => this.kernel.ftruncate(fd, length)); }
  fdRead(fd: number, length?: U64) { return this.step(() => this.kernel.fdRead(fd, length)); }
  fdWrite(fd: number, data: Uint8Array) { return this.step(() => this.kernel.fdWrite(fd, data)); }
  pread(fd: number, length: U64, offset: U64) { return this.step(() => this.kernel.pread(fd, length, offset)); }
  pwrite(fd: number, data: Uint8Array, offset: U64) { return this.step(() => this.kernel.pwrite(fd, data, offset)); }
  lseek(fd: number, offset: U64, whence: number) { return this.step(() => this.kernel.lseek(fd, offset, whence)); }
  fstat(fd: number) { return this.step(() => this.kernel.fstat(fd)); }
  setUserMemoryRegion2(vmFd: number, region: MemoryRegion2) { return this.step(() => this.kernel.setUserMemoryRegion2(vmFd, region)); }

  setMemoryAttributes(vmFd: number, args: MemoryAttributesArgs): BResult {
    return this.step(() => this.kernel.setMemoryAttributes(vmFd, args), () => {
      const vm = this.kernel.vmOfFd(vmFd);
      if (!vm || this.kernel.profile.conversion !== 'vm-ioctl') return [];
      const lo = BigInt(args.address) / PAGE;
      const hi = (BigInt(args.address) + BigInt(args.size)) / PAGE;
      const target = BigInt(args.attributes) ? 'private' as const : 'shared' as const;
      return kvmGmemRanges(vm, Number(lo), Number(hi)).map((r) => ({ ...r, vmType: vm.type, target }));
    });
  }

  setMemoryAttributes2(gmemFd: number, args: MemoryAttributes2Args): BResult {
    return this.step(() => this.kernel.setMemoryAttributes2(gmemFd, args), () => {
      const file = this.kernel.gmemFile(gmemFd);
      const o = BigInt(args.offset);
      const n = BigInt(args.size);
      if (!file || o % PAGE || n % PAGE || o + n > BigInt(file.inode.size)) return [];
      const target = BigInt(args.attributes) ? 'private' as const : 'shared' as const;
      return [{ inode: file.inode, vmType: file.vm.type, lo: Number(o / PAGE), hi: Number((o + n) / PAGE), target }];
    });
  }

  guestRead(vmFd: number, gpa: U64, length: number, isPrivate?: boolean): BResult<Uint8Array> {
    if (length > MAX_BUFFERED_ACCESS) return this.step(() => tooLarge(this.kernel.guestTouch(vmFd, gpa, length, false, isPrivate), 'guest read', length));
    return this.step(() => this.kernel.guestRead(vmFd, gpa, length, isPrivate));
  }
  guestWrite(vmFd: number, gpa: U64, data: Uint8Array, isPrivate?: boolean) { return this.step(() => this.kernel.guestWrite(vmFd, gpa, data, isPrivate)); }
  pinUserPages(addr: number, length: number, longterm: boolean, write?: boolean) { return this.step(() => this.kernel.pinUserPages(addr, length, longterm, write)); }
  unpinUserPages(pin: number) { return this.step(() => this.kernel.unpinUserPages(pin)); }
  pinAccess(pin: number, offset: number, length: number, store?: Uint8Array): BResult<Uint8Array> {
    const held = this.kernel.state.pins.get(pin);
    if (!store && length > MAX_BUFFERED_ACCESS && held && offset >= 0 && offset + length <= held.length) {
      return this.step(() => tooLarge(OK, 'device read through a pin', length));
    }
    return this.step(() => this.kernel.pinAccess(pin, offset, length, store));
  }
  vmsplice(addr: number, length: number) { return this.step(() => this.kernel.vmsplice(addr, length)); }
  folioOrder(gmemFd: number, offset: U64) { return this.step(() => this.kernel.folioOrder(gmemFd, offset)); }
  spteOrder(vmFd: number, gpa: U64) { return this.step(() => this.kernel.spteOrder(vmFd, gpa)); }
  setPreemptionPoint(race: (() => void) | undefined): void { this.kernel.state.preemptionPoint = race; }
  pinUserPagesFast(addr: number, length: number, longterm: boolean) { return this.step(() => this.kernel.pinUserPagesFast(addr, length, longterm)); }
  gmemImport(gmemFd: number, offset: U64, length: U64) { return this.step(() => this.kernel.gmemImport(gmemFd, offset, length)); }
  gmemUnimport(id: number) { return this.step(() => this.kernel.gmemUnimport(id)); }
  importAccess(id: number, offset: number, length: number, store?: Uint8Array): BResult<Uint8Array> {
    const imp = this.kernel.state.imports.get(id);
    if (!store && length > MAX_BUFFERED_ACCESS && imp && !imp.revoked && offset >= 0 && offset + length <= (imp.hi - imp.lo) * PAGE_SIZE) {
      return this.step(() => tooLarge(OK, 'device read through an import', length));
    }
    return this.step(() => this.kernel.importAccess(id, offset, length, store));
  }
}
