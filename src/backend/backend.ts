// The backend interface: the kernel as the userspace half and the scenario runner see it, one
// method per syscall or ioctl with the kernel's arguments (fds and user addresses are plain
// numbers, u64 fields bigint or number). The model (model-backend.ts) and real Linux
// (src/linux/) implement it; code above this layer must not know which one it has.
import type { Errno } from '../model/abi.js';
import type {
  FileStat, MemoryAttributes2Args, MemoryAttributesArgs, MemoryRegion2, MmapArgs, U64,
} from '../model/kernel.js';
import type { ErrnoFailure, ExitFailure, Ok, SignalFailure } from '../model/result.js';

/**
 * The largest host, guest or device read a backend buffers (256 MiB). A larger access that the
 * kernel would complete is reported as unsupported, after its faults; one that would fault
 * first (SIGSEGV, SIGBUS, an exit) reports that, as the kernel would.
 */
export const MAX_BUFFERED_ACCESS = 256 * 1024 * 1024;

/**
 * The backend cannot perform this step (no such ioctl, VM type, flag or facility). `error`: it
 * tried and failed in a way that is no answer at all (a KVM_RUN or I/O that timed out, an
 * unexpected vCPU exit): an ERROR of the case, not a missing capability. `errnoNumber`: the
 * kernel failed with an errno abi.ts has no name for (compare it as this number). `capability`:
 * set by the capability gate (capability-gate.ts) on a step the running kernel cannot do because
 * it does not advertise this capability; diff and conform count only those as unsupported.
 */
export interface Unsupported {
  readonly ok: false;
  readonly unsupported: string;
  readonly error?: true;
  readonly errnoNumber?: number;
  readonly capability?: string;
}

/**
 * Set on an answer a kernel backend decided itself without asking the kernel (a SIGSEGV from
 * its own mapping table, an EBADF for an fd it did not open…): why. Absent on the kernel's
 * own answers and on every model answer.
 */
export interface Guarded { readonly guarded?: string }

export type BResult<T = void> = ((Ok<T> | ErrnoFailure | SignalFailure | ExitFailure) & Guarded) | Unsupported;

export function unsupported(why: string): Unsupported {
  return { ok: false, unsupported: why };
}

/** Identity printed with every result: which kernel (or model profile) produced it. */
export interface BackendIdentity {
  readonly backend: 'model' | 'linux';
  /** Model: profile name. Linux: `uname -r`. */
  readonly kernel: string;
  /** Model: profile status (mainline / posted-series / variant). Linux: KVM flavour (kvm_pvm, kvm_intel…). */
  readonly flavour: string;
}

/** An invariant broken by the last step (model backend only). */
export interface Violation {
  readonly invariant: string;
  readonly title: string;
  readonly detail: string;
  /** Offending guest_memfd byte offsets (or addresses), when the invariant is about pages. */
  readonly offsets?: readonly bigint[];
}

export interface Backend {
  identity(): BackendIdentity;

  createVm(type: U64): BResult<number>;
  checkExtension(cap: U64, vmFd?: number): BResult<bigint>;
  createGuestMemfd(vmFd: number, size: U64, flags: U64): BResult<number>;
  close(fd: number): BResult;

  mmap(args: MmapArgs): BResult<number>;
  munmap(addr: number, length: U64): BResult;
  /** Host load through a mapping; SIGBUS/SIGSEGV come back as a SignalFailure. */
  hostRead(addr: number, length: number): BResult<Uint8Array>;
  hostWrite(addr: number, data: Uint8Array): BResult;
  /**
   * A store of `length` bytes of `byte` (memset). Up to MAX_BUFFERED_ACCESS bytes it is done;
   * beyond, only the faults of the first MAX_BUFFERED_ACCESS bytes are taken (the bytes before
   * a refused page are written and the signal returned), else it is unsupported. Optional: the
   * scenario runner falls back to hostWrite of a buffer up to MAX_BUFFERED_ACCESS.
   */
  hostFill?(addr: number, length: U64, byte: number): BResult;
  madvise(addr: number, length: U64, advice: number): BResult;

  fallocate(fd: number, mode: U64, offset: U64, len: U64): BResult;
  ftruncate(fd: number, length: U64): BResult;
  fdRead(fd: number, length?: U64): BResult<Uint8Array>;
  fdWrite(fd: number, data: Uint8Array): BResult<number>;
  pread(fd: number, length: U64, offset: U64): BResult<Uint8Array>;
  pwrite(fd: number, data: Uint8Array, offset: U64): BResult<number>;
  lseek(fd: number, offset: U64, whence: number): BResult<bigint>;
  /** fstat(2): st_size and st_blksize. Optional: without it the step is unsupported. */
  fstat?(fd: number): BResult<FileStat>;

  setUserMemoryRegion2(vmFd: number, region: MemoryRegion2): BResult;
  setMemoryAttributes(vmFd: number, args: MemoryAttributesArgs): BResult;
  setMemoryAttributes2(gmemFd: number, args: MemoryAttributes2Args): BResult;

  guestRead(vmFd: number, gpa: U64, length: number, isPrivate?: boolean): BResult<Uint8Array>;
  guestWrite(vmFd: number, gpa: U64, data: Uint8Array, isPrivate?: boolean): BResult;

  /** GUP pin of user memory; returns a pin id (Linux: an io_uring buffer or O_DIRECT I/O). */
  pinUserPages(addr: number, length: number, longterm: boolean, write?: boolean): BResult<number>;
  unpinUserPages(pin: number): BResult;
  /** Device access through a pin: what DMA to the pinned pages reads or writes. */
  pinAccess(pin: number, offset: number, length: number, store?: Uint8Array): BResult<Uint8Array>;
  /** pipe2() + vmsplice(); returns the pipe's read fd. Read it with fdRead. */
  vmsplice(addr: number, length: number): BResult<number>;

  /**
   * Revocable fd+offset imports of guest_memfd ranges for devices (the `revoke` design variant;
   * optional: a backend without them, or a profile that answers ENOTTY, means pins are used).
   */
  gmemImport?(gmemFd: number, offset: U64, length: U64): BResult<number>;
  gmemUnimport?(id: number): BResult;
  importAccess?(id: number, offset: number, length: number, store?: Uint8Array): BResult<Uint8Array>;

  /**
   * Model only, for replaying checker counterexamples: run `race` at the preemption point inside
   * the next to-private conversion (lock-free work another CPU could do there), and GUP-fast.
   */
  setPreemptionPoint?(race: (() => void) | undefined): void;
  pinUserPagesFast?(addr: number, length: number, longterm: boolean): BResult<number>;

  /**
   * Model only (no kernel reports them): the order of the folio holding byte `offset` of a
   * guest_memfd, and of the guest mapping of `gpa` (0 = 4 KiB, 9 = 2 MiB); ENOENT when none.
   */
  folioOrder?(gmemFd: number, offset: U64): BResult<bigint>;
  spteOrder?(vmFd: number, gpa: U64): BResult<bigint>;

  /** Invariants broken by the last call (empty for backends that cannot see kernel state). */
  takeViolations(): Violation[];
  /** Close every fd, mapping, pin and pipe this backend opened. */
  dispose(): void;
}


export type { Errno, FileStat };
