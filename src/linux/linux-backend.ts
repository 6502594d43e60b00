// The running kernel as a Backend: every call is the real syscall or ioctl through koffi, and
// its result is the kernel's (errno names from abi.ts, `why` saying the kernel returned it).
// The backend owns what it opens (VM, guest_memfd and pipe fds, mappings, pins, harness vCPUs)
// and refuses, without calling the kernel, anything that could reach memory or fds of the Node
// process itself (unknown fds: EBADF; ranges outside its mappings). dispose() releases all of it.
// Address and length arithmetic is exact (bigint); a caller's number that is not a safe
// integer has lost its exact value and is refused before it is used as an address. Answers the
// backend decides without the kernel carry `guarded` (backend.ts).
// It must never dereference user memory without the host-access probe (SIGBUS kills Node).
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { CAPS, errnoName, LIMITS, MAP_FLAGS, PAGE_SIZE } from '../model/abi.js';
import type { MemoryAttributes2Args, MemoryAttributesArgs, MemoryRegion2, MmapArgs, U64 } from '../model/kernel.js';
import { ok, OK, signal } from '../model/result.js';
import {
  MAX_BUFFERED_ACCESS, unsupported, type Backend, type BackendIdentity, type BResult, type Violation,
} from '../backend/backend.js';
import { backendError, backendRefusal, guarded, kernelFail } from './errors.js';
import { GuestHarness, harnessPlacement, type HarnessPlacement } from './guest.js';
import { hostRead, hostWrite } from './host-access.js';
import * as libc from './libc.js';
import { MappingTable, pageCeil } from './mappings.js';
import { PinSet } from './pins.js';
import { ATTRIBUTES2_ERROR_OFFSET, KVM, packAttributes, packAttributes2, packCreateGuestMemfd, packRegion2 } from './structs.js';

type FdKind = 'vm' | 'gmem' | 'pipe';
export type ProbeResult = { usable: true } | { usable: false; reason: string };

const s64 = (v: U64): bigint => BigInt.asIntN(64, BigInt(v));
const u64 = (v: U64): bigint => BigInt.asUintN(64, BigInt(v));
const int32 = (v: U64): number => Number(BigInt.asIntN(32, BigInt(v)));
const SPLICE_F_NONBLOCK = 2;
const PIPE_DEF_PAGES = 16;
/** Largest pipe size asked for with F_SETPIPE_SZ (its argument is an int). */
const PIPE_MAX_BYTES = 1n << 30n;
const PAGE = BigInt(PAGE_SIZE);
const TWO_64 = 1n << 64n;
const EAGAIN = 11;

/** A user address or length: the Backend interface passes numbers; bigint keeps all 64 bits. */
export type Addr = number | bigint;

/**
 * The exact integer the caller meant, or null for a number beyond 2^53 (its low bits are gone:
 * it must not be used as an address). A non-integer number is a gmemkit bug.
 */
function exact(v: Addr): bigint | null {
  if (typeof v === 'bigint') return v < 0n ? BigInt.asUintN(64, v) : v;
  if (!Number.isInteger(v)) throw new TypeError(`linux backend: ${v} is not an integer address or length`);
  if (!Number.isSafeInteger(v)) return null;
  return v < 0 ? BigInt.asUintN(64, BigInt(v)) : BigInt(v); // a negative value is the C unsigned long it becomes
}
const inexact = (v: Addr): string => `0x${BigInt(v).toString(16)} came as a number beyond 2^53, so its exact value is lost`;
/** A backend address (always below TASK_SIZE_MAX) as the number the Backend interface returns. */
const asNumber = (v: bigint): number => Number(v);
/** Whether [lo, hi) lies wholly at or above TASK_SIZE_MAX, where no mapping of any process can be. */
const aboveUserSpace = (lo: bigint, hi: bigint): boolean => lo >= LIMITS.taskSizeMax && hi <= TWO_64;

/** A buffer for a read of `n` bytes: at most MAX_BUFFERED_ACCESS, the count the kernel is given. */
function bufferFor(n: bigint): Buffer {
  return Buffer.alloc(n < BigInt(MAX_BUFFERED_ACCESS) ? Number(n) : MAX_BUFFERED_ACCESS);
}

/** The bytes a read returned. With a clamped count, a full buffer could have been more: unsupported. */
function clamped(n: bigint, buf: Buffer, got: number, what: string): BResult<Uint8Array> {
  const data = ok(Uint8Array.from(buf.subarray(0, got)));
  if (n <= BigInt(buf.length)) return data;
  if (got === buf.length) return unsupported(`${what} of ${n} bytes returned the first ${got}: gmemkit buffers at most MAX_BUFFERED_ACCESS (${MAX_BUFFERED_ACCESS} bytes)`);
  return guarded(data, `${what} was made with the count ${n} clamped to MAX_BUFFERED_ACCESS (${MAX_BUFFERED_ACCESS}); it returned less`);
}

/** The KVM implementation module loaded on this host. */
function kvmFlavour(): string {
  for (const m of ['kvm_pvm', 'kvm_intel', 'kvm_amd']) if (existsSync(`/sys/module/${m}`)) return m;
  return 'unknown';
}

export class LinuxBackend implements Backend {
  private readonly kvmFd: number;
  private readonly fds = new Map<number, FdKind>();
  private readonly maps = new MappingTable();
  private readonly pins = new PinSet();
  private readonly harnesses = new Map<number, GuestHarness>();
  private placement: HarnessPlacement | string | null = null;
  private disposed = false;

  /** Whether this host can run the backend; callers (tests, CLI) skip with `reason` otherwise. */
  static probe(): ProbeResult {
    if (process.platform !== 'linux' || process.arch !== 'x64') return { usable: false, reason: `needs Linux on x86-64 (this is ${process.platform}/${process.arch})` };
    try {
      libc.load();
    } catch (e) {
      return { usable: false, reason: `koffi cannot bind libc: ${(e as Error).message}` };
    }
    const name = (n: number): string => errnoName(n) ?? `errno ${n}`;
    const kvm = libc.open('/dev/kvm', libc.O_RDWR | libc.O_CLOEXEC);
    if (!kvm.ok) return { usable: false, reason: `cannot open /dev/kvm read-write: ${name(kvm.errno)} (needs KVM, and root or the kvm group)` };
    const cap = libc.ioctlInt(kvm.value, KVM.CHECK_EXTENSION, CAPS.GUEST_MEMFD);
    libc.close(kvm.value);
    if (!cap.ok || cap.value !== 1) return { usable: false, reason: `KVM_CHECK_EXTENSION(KVM_CAP_GUEST_MEMFD) is ${cap.ok ? cap.value : name(cap.errno)}, not 1` };
    return { usable: true };
  }

  /** Opens /dev/kvm; call probe() first (a host without KVM makes this throw). */
  constructor() {
    const kvm = libc.open('/dev/kvm', libc.O_RDWR | libc.O_CLOEXEC);
    if (!kvm.ok) throw new Error(`LinuxBackend: cannot open /dev/kvm (errno ${kvm.errno}); check LinuxBackend.probe() first`);
    this.kvmFd = kvm.value;
  }

  identity(): BackendIdentity {
    return { backend: 'linux', kernel: release(), flavour: kvmFlavour() };
  }

  takeViolations(): Violation[] { return []; }

  /** Counts of what the backend holds, for leak tests. */
  held(): { fds: number; mappings: number; pins: number; vcpus: number } {
    return { fds: this.fds.size, mappings: this.maps.size, pins: this.pins.count, vcpus: this.harnesses.size };
  }

  private kind(fd: number): FdKind | undefined { return this.fds.get(fd); }
  private notOurs(fd: number) { return backendRefusal('EBADF', `fd ${fd} was not opened by this backend`); }

  // ---------------------------------------------------------------- /dev/kvm, VMs, guest_memfd

  createVm(type: U64): BResult<number> {
    const r = libc.ioctlInt(this.kvmFd, KVM.CREATE_VM, u64(type));
    if (!r.ok) return kernelFail(r.errno, 'KVM_CREATE_VM');
    this.fds.set(r.value, 'vm');
    return ok(r.value);
  }

  checkExtension(cap: U64, vmFd?: number): BResult<bigint> {
    if (vmFd !== undefined && !this.kind(vmFd)) return this.notOurs(vmFd);
    const r = libc.ioctlInt(vmFd ?? this.kvmFd, KVM.CHECK_EXTENSION, u64(cap));
    return r.ok ? ok(BigInt(r.value)) : kernelFail(r.errno, 'KVM_CHECK_EXTENSION');
  }

  createGuestMemfd(vmFd: number, size: U64, flags: U64): BResult<number> {
    if (!this.kind(vmFd)) return this.notOurs(vmFd);
    const r = libc.ioctlBuf(vmFd, KVM.CREATE_GUEST_MEMFD, packCreateGuestMemfd(size, flags));
    if (!r.ok) return kernelFail(r.errno, 'KVM_CREATE_GUEST_MEMFD');
    this.fds.set(r.value, 'gmem');
    return ok(r.value);
  }

  close(fd: number): BResult {
    const kind = this.kind(fd);
    if (!kind) return this.notOurs(fd);
    if (kind === 'vm') this.dropHarness(fd);
    this.fds.delete(fd);
    const r = libc.close(fd);
    return r.ok ? OK : kernelFail(r.errno, 'close');
  }

  // ---------------------------------------------------------------- host mm

  mmap(args: MmapArgs): BResult<number> {
    const flags = Number(u64(args.flags) & 0xffffffffn);
    if (flags & Number(MAP_FLAGS.FIXED)) return unsupported('MAP_FIXED could replace memory the Node process uses');
    const anon = (flags & Number(MAP_FLAGS.ANONYMOUS)) !== 0;
    let fd = -1; // without MAP_ANONYMOUS and without an fd the kernel answers EBADF (no MAP_FIXED here)
    if (!anon && args.fd !== null) {
      if (!this.kind(args.fd)) return this.notOurs(args.fd);
      fd = args.fd;
    }
    const prot = Number(u64(args.prot) & 0xffffffffn);
    const r = libc.mmap(0n, u64(args.length), prot, flags, fd, s64(args.offset));
    if (!r.ok) return kernelFail(r.errno, 'mmap');
    const end = pageCeil(r.value + u64(args.length));
    this.maps.add({ start: r.value, end, prot, fd: anon ? null : fd, offset: u64(args.offset) });
    return ok(asNumber(r.value));
  }

  /**
   * munmap of the parts of the range this backend mapped; the rest is not the scenario's memory
   * (and munmap of unmapped memory is 0). Ranges the kernel rejects before touching anything
   * (do_vmi_munmap: unaligned, zero length, beyond TASK_SIZE) go to the kernel whole.
   */
  munmap(addr: Addr, length: U64): BResult {
    const len = u64(length);
    const start = exact(addr) ?? BigInt(addr); // a number beyond 2^53 is beyond TASK_SIZE however rounded
    const kernelRejects = start % PAGE !== 0n || len === 0n || start > LIMITS.taskSizeMax || len > LIMITS.taskSizeMax - start;
    if (kernelRejects || start >= TWO_64) {
      if (start >= TWO_64) return backendRefusal('EINVAL', `address 0x${start.toString(16)} does not fit in 64 bits`);
      const r = libc.munmap(start, len);
      return r.ok ? OK : kernelFail(r.errno, 'munmap');
    }
    const end = start + pageCeil(len);
    const pieces = this.maps.pieces(start, end);
    for (const [lo, hi] of pieces) {
      const r = libc.munmap(lo, hi - lo);
      if (!r.ok) return kernelFail(r.errno, 'munmap');
      this.maps.remove(lo, hi);
    }
    const mine = pieces.reduce((n, [lo, hi]) => n + (hi - lo), 0n);
    return mine === end - start ? OK : guarded(OK, 'the parts of the range outside this backend\'s mappings were not passed to the kernel (munmap of unmapped memory is 0)');
  }

  hostRead(addr: Addr, length: Addr): BResult<Uint8Array> {
    const a = exact(addr);
    if (a === null) return guarded(signal('SIGSEGV', Number(addr), inexact(addr)), `${inexact(addr)}; no mapping of this backend can lie there`);
    return hostRead(this.maps, a, exact(length) ?? BigInt(length)); // any length beyond 2^53 runs past every mapping
  }

  hostWrite(addr: Addr, data: Uint8Array): BResult {
    const a = exact(addr);
    if (a === null) return guarded(signal('SIGSEGV', Number(addr), inexact(addr)), `${inexact(addr)}; no mapping of this backend can lie there`);
    return hostWrite(this.maps, a, data);
  }

  /**
   * madvise(2) of ranges the kernel rejects before touching anything (unaligned start, zero
   * length, a length or end past 2^64), of ranges inside this backend's mappings, and of ranges
   * wholly at or above TASK_SIZE_MAX; any other range could reach Node's memory: ENOMEM, guarded.
   */
  madvise(addr: Addr, length: U64, advice: number): BResult {
    const len = u64(length);
    const start = exact(addr);
    if (start === null) return backendRefusal('ENOMEM', inexact(addr));
    if (start >= TWO_64) return backendRefusal('EINVAL', `address 0x${start.toString(16)} does not fit in 64 bits`);
    const alignedLen = pageCeil(len);
    const kernelRejects = start % PAGE !== 0n || len === 0n || alignedLen >= TWO_64 || start + alignedLen > TWO_64;
    if (!kernelRejects && !this.maps.covers(start, start + alignedLen) && !aboveUserSpace(start, start + alignedLen)) {
      return backendRefusal('ENOMEM', 'range is not fully inside this backend\'s mappings');
    }
    const r = libc.madvise(start, len, advice);
    return r.ok ? OK : kernelFail(r.errno, 'madvise');
  }

  // ---------------------------------------------------------------- file syscalls

  fallocate(fd: number, mode: U64, offset: U64, len: U64): BResult {
    if (!this.kind(fd)) return this.notOurs(fd);
    const r = libc.fallocate(fd, int32(mode), s64(offset), s64(len));
    return r.ok ? OK : kernelFail(r.errno, 'fallocate');
  }

  ftruncate(fd: number, length: U64): BResult {
    if (!this.kind(fd)) return this.notOurs(fd);
    const r = libc.ftruncate(fd, s64(length));
    return r.ok ? OK : kernelFail(r.errno, 'ftruncate');
  }

  /** read(2); on a pipe without `length`, whatever it holds (FIONREAD), non-blocking. */
  fdRead(fd: number, length?: U64): BResult<Uint8Array> {
    const kind = this.kind(fd);
    if (!kind) return this.notOurs(fd);
    let n = length === undefined ? BigInt(PAGE_SIZE) : u64(length);
    if (kind === 'pipe' && length === undefined) {
      const avail = Buffer.alloc(4);
      const q = libc.ioctlBuf(fd, libc.FIONREAD, avail);
      if (!q.ok) return kernelFail(q.errno, 'ioctl(FIONREAD) on the pipe');
      n = BigInt(avail.readInt32LE(0));
      if (n === 0n) return guarded(ok(new Uint8Array(0)), 'the pipe holds nothing (FIONREAD 0): no read(2) made');
    }
    const buf = bufferFor(n);
    const r = libc.read(fd, buf);
    if (!r.ok) {
      if (kind === 'pipe' && length === undefined && r.errno === EAGAIN) return guarded(ok(new Uint8Array(0)), 'read(2) of the empty non-blocking pipe returned EAGAIN: 0 bytes');
      return kernelFail(r.errno, 'read');
    }
    return clamped(n, buf, r.value, 'read(2)');
  }

  fdWrite(fd: number, data: Uint8Array): BResult<number> {
    if (!this.kind(fd)) return this.notOurs(fd);
    const r = libc.write(fd, Buffer.from(data));
    return r.ok ? ok(r.value) : kernelFail(r.errno, 'write');
  }

  pread(fd: number, length: U64, offset: U64): BResult<Uint8Array> {
    if (!this.kind(fd)) return this.notOurs(fd);
    const n = u64(length);
    const buf = bufferFor(n);
    const r = libc.pread(fd, buf, s64(offset));
    return r.ok ? clamped(n, buf, r.value, 'pread(2)') : kernelFail(r.errno, 'pread');
  }

  pwrite(fd: number, data: Uint8Array, offset: U64): BResult<number> {
    if (!this.kind(fd)) return this.notOurs(fd);
    const r = libc.pwrite(fd, Buffer.from(data), s64(offset));
    return r.ok ? ok(r.value) : kernelFail(r.errno, 'pwrite');
  }

  lseek(fd: number, offset: U64, whence: number): BResult<bigint> {
    if (!this.kind(fd)) return this.notOurs(fd);
    const r = libc.lseek(fd, s64(offset), whence);
    return r.ok ? ok(r.value) : kernelFail(r.errno, 'lseek');
  }

  // ---------------------------------------------------------------- memslots and attributes

  setUserMemoryRegion2(vmFd: number, region: MemoryRegion2): BResult {
    if (!this.kind(vmFd)) return this.notOurs(vmFd);
    const unsafe = this.foreignUserspaceAddr(region);
    if (unsafe) return unsupported(unsafe);
    const r = libc.ioctlBuf(vmFd, KVM.SET_USER_MEMORY_REGION2, packRegion2(region));
    return r.ok ? OK : kernelFail(r.errno, 'KVM_SET_USER_MEMORY_REGION2');
  }

  /**
   * A memslot whose userspace_addr is Node's own memory would let guest stores reach it. Allowed:
   * NULL, deletions, non-user or unaligned addresses (the kernel rejects them), this backend's
   * mappings, and ranges no VMA of the process covers (the kernel only checks access_ok, §7).
   */
  private foreignUserspaceAddr(r: MemoryRegion2): string | null {
    const uaddr = u64(r.userspace_addr);
    const size = u64(r.memory_size);
    if (uaddr === 0n || size === 0n || uaddr % BigInt(PAGE_SIZE) !== 0n || uaddr + size > LIMITS.taskSizeMax) return null;
    const lo = uaddr;
    const hi = uaddr + size;
    if (this.maps.covers(lo, hi)) return null;
    for (const line of readFileSync('/proc/self/maps', 'utf8').split('\n')) {
      const m = /^([0-9a-f]+)-([0-9a-f]+)/.exec(line);
      if (m && BigInt(`0x${m[1]!}`) < hi && BigInt(`0x${m[2]!}`) > lo) {
        return `userspace_addr range [0x${lo.toString(16)}, 0x${hi.toString(16)}) overlaps memory of the Node process, not a mapping of this backend`;
      }
    }
    return null;
  }

  setMemoryAttributes(vmFd: number, args: MemoryAttributesArgs): BResult {
    if (!this.kind(vmFd)) return this.notOurs(vmFd);
    const r = libc.ioctlBuf(vmFd, KVM.SET_MEMORY_ATTRIBUTES, packAttributes(args));
    return r.ok ? OK : kernelFail(r.errno, 'KVM_SET_MEMORY_ATTRIBUTES');
  }

  /** v8 KVM_SET_MEMORY_ATTRIBUTES2 on the gmem fd; error_offset is copied back on EAGAIN/ENOMEM. */
  setMemoryAttributes2(gmemFd: number, args: MemoryAttributes2Args): BResult {
    if (!this.kind(gmemFd)) return this.notOurs(gmemFd);
    const buf = packAttributes2(args);
    const r = libc.ioctlBuf(gmemFd, KVM.SET_MEMORY_ATTRIBUTES2, buf);
    if (r.ok) return OK;
    const out = r.errno === 11 || r.errno === 12 ? { error_offset: buf.readBigUInt64LE(ATTRIBUTES2_ERROR_OFFSET) } : undefined;
    return kernelFail(r.errno, 'KVM_SET_MEMORY_ATTRIBUTES2', out);
  }

  // ---------------------------------------------------------------- guest accesses

  guestRead(vmFd: number, gpa: U64, length: Addr, isPrivate?: boolean): BResult<Uint8Array> {
    return this.guestAccess(vmFd, u64(gpa), exact(length) ?? BigInt(length), undefined, isPrivate);
  }

  guestWrite(vmFd: number, gpa: U64, data: Uint8Array, isPrivate?: boolean): BResult {
    const r = this.guestAccess(vmFd, u64(gpa), BigInt(data.length), data, isPrivate);
    return r.ok ? (r.guarded ? guarded(OK, r.guarded) : OK) : r;
  }

  /**
   * Page by page through the VM's CPL3 harness vCPU, as the guest's `rep movsb` goes: the first
   * page that exits ends the access. A load is buffered up to MAX_BUFFERED_ACCESS; one that gets
   * that far without an exit is unsupported (nothing larger is allocated). `isPrivate` is
   * ignored: the access type comes from hardware only on SNP/TDX, which this backend cannot
   * create (the model ignores it for the other VM types too).
   */
  private guestAccess(vmFd: number, gpa: bigint, length: bigint, store: Uint8Array | undefined, _isPrivate?: boolean): BResult<Uint8Array> {
    const kind = this.kind(vmFd);
    if (!kind) return this.notOurs(vmFd);
    if (kind !== 'vm') return backendRefusal('EINVAL', `fd ${vmFd} is a ${kind} fd, not a VM fd`);
    if (length <= 0n) return guarded(ok(new Uint8Array(0)), 'a guest access of 0 bytes runs no vCPU');
    const harness = this.harnessFor(vmFd);
    if (typeof harness === 'string') return unsupported(harness);
    const parts: Uint8Array[] = [];
    let done = 0n;
    while (done < length) {
      if (!store && done >= BigInt(MAX_BUFFERED_ACCESS)) {
        return unsupported(`a guest load of ${length} bytes: the first ${MAX_BUFFERED_ACCESS} completed, and gmemkit buffers at most MAX_BUFFERED_ACCESS (${MAX_BUFFERED_ACCESS} bytes)`);
      }
      const at = gpa + done;
      const rest = length - done;
      const inPage = PAGE - (at % PAGE);
      const n = Number(rest < inPage ? rest : inPage);
      const from = Number(done);
      const r = harness.accessPage(at, n, store?.subarray(from, from + n));
      switch (r.kind) {
        case 'ok':
          if (!store) parts.push(r.data);
          break;
        case 'memory-fault':
          return {
            ok: false, exit: 'MEMORY_FAULT', gpa: r.gpa, size: r.size, flags: r.flags, private: (r.flags & (1n << 3n)) !== 0n,
            why: 'KVM_RUN returned EFAULT with KVM_EXIT_MEMORY_FAULT',
          };
        case 'mmio':
          return { ok: false, exit: 'MMIO', gpa: r.gpa, size: r.size, flags: 0n, private: false, why: 'KVM_RUN exited with KVM_EXIT_MMIO' };
        case 'errno':
          return kernelFail(r.errno, r.why);
        case 'unsupported':
          return unsupported(r.why);
        case 'error':
          return backendError(r.why);
      }
      done += BigInt(n);
    }
    if (store) return ok(new Uint8Array(0));
    const out = new Uint8Array(Number(length));
    let pos = 0;
    for (const p of parts) {
      out.set(p, pos);
      pos += p.length;
    }
    return ok(out);
  }

  private harnessFor(vmFd: number): GuestHarness | string {
    const h = this.harnesses.get(vmFd);
    if (h) return h;
    if (this.placement === null) this.placement = harnessPlacement(this.kvmFd);
    if (typeof this.placement === 'string') return this.placement;
    const made = new GuestHarness(vmFd, this.placement);
    this.harnesses.set(vmFd, made);
    return made;
  }

  private dropHarness(vmFd: number): void {
    this.harnesses.get(vmFd)?.dispose();
    this.harnesses.delete(vmFd);
  }

  // ---------------------------------------------------------------- pins and pipes

  /**
   * Why [addr, addr+length) must not be handed to a GUP (it could reach Node's memory), or null:
   * ranges inside this backend's mappings, and ranges wholly at or above TASK_SIZE_MAX, go to
   * the kernel.
   */
  private notGupable(addr: Addr, length: Addr): string | null {
    const a = exact(addr);
    const n = exact(length);
    if (a === null) return inexact(addr);
    if (n === null) return `length ${inexact(length)}`;
    if (n <= 0n) return null;
    if (this.maps.covers(a, a + n) || aboveUserSpace(a, a + n)) return null;
    return 'range is not inside this backend\'s mappings';
  }

  pinUserPages(addr: Addr, length: Addr, longterm: boolean, write = true): BResult<number> {
    if (Number(length) <= 0) return backendRefusal('EINVAL', 'length must be positive');
    const why = this.notGupable(addr, length);
    if (why) return backendRefusal('EFAULT', why);
    return this.pins.pin(exact(addr)!, exact(length)!, longterm, write);
  }

  unpinUserPages(pin: number): BResult { return this.pins.unpin(pin); }

  pinAccess(pin: number, offset: Addr, length: Addr, store?: Uint8Array): BResult<Uint8Array> {
    const o = exact(offset);
    const n = exact(length);
    if (o === null || n === null) return backendRefusal('EINVAL', `offset ${String(offset)} or length ${String(length)} is not exact`);
    return this.pins.access(pin, o, n, store);
  }

  /** pipe2(O_NONBLOCK) + vmsplice of the range; the write end is closed, the read fd returned. */
  vmsplice(addr: Addr, length: Addr): BResult<number> {
    if (Number(length) <= 0) return backendRefusal('EINVAL', 'length must be positive');
    const why = this.notGupable(addr, length);
    if (why) return backendRefusal('EFAULT', why);
    const a = exact(addr)!;
    const n = exact(length)!;
    const p = libc.pipe2(libc.O_NONBLOCK | libc.O_CLOEXEC);
    if (!p.ok) return kernelFail(p.errno, 'pipe2');
    const [rfd, wfd] = p.value;
    const bytes = pageCeil((a % PAGE) + n);
    if (bytes > BigInt(PIPE_DEF_PAGES) * PAGE) libc.fcntlInt(wfd, libc.F_SETPIPE_SZ, Number(bytes < PIPE_MAX_BYTES ? bytes : PIPE_MAX_BYTES));
    const r = libc.vmsplice(wfd, a, n, SPLICE_F_NONBLOCK);
    libc.close(wfd);
    if (!r.ok) {
      libc.close(rfd);
      return kernelFail(r.errno, 'vmsplice');
    }
    this.fds.set(rfd, 'pipe');
    return BigInt(r.value) === n ? ok(rfd) : ok(rfd, `vmsplice moved ${r.value} of ${n} bytes (pipe capacity)`);
  }

  // ---------------------------------------------------------------- teardown

  /** Release pins, harness vCPUs, mappings and fds, in that order. Idempotent; never throws for kernel errors. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.pins.dispose();
    for (const vm of [...this.harnesses.keys()]) this.dropHarness(vm);
    for (const m of [...this.maps.all()]) libc.munmap(m.start, m.end - m.start);
    this.maps.remove(0n, TWO_64);
    for (const fd of [...this.fds.keys()]) libc.close(fd);
    this.fds.clear();
    libc.close(this.kvmFd);
  }
}
