// The running kernel as a Backend: every call is the real syscall or ioctl through koffi, and
// its result is the kernel's (errno names from abi.ts, `why` saying the kernel returned it).
// The backend owns what it opens (VM, guest_memfd and pipe fds, mappings, pins, harness vCPUs)
// and refuses, without calling the kernel, anything that could reach memory or fds of the Node
// process itself (unknown fds: EBADF; ranges outside its mappings). dispose() releases all of it.
// It must never dereference user memory without the host-access probe (SIGBUS kills Node).
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { CAPS, errnoName, LIMITS, MAP_FLAGS, PAGE_SIZE } from '../model/abi.js';
import type { MemoryAttributes2Args, MemoryAttributesArgs, MemoryRegion2, MmapArgs, U64 } from '../model/kernel.js';
import { ok, OK } from '../model/result.js';
import { unsupported, type Backend, type BackendIdentity, type BResult, type Violation } from '../backend/backend.js';
import { backendRefusal, kernelFail } from './errors.js';
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
/** Largest buffer a read-like call allocates (the kernel's answer for bigger requests is not needed). */
const MAX_READ = 16 * 1024 * 1024;
const SPLICE_F_NONBLOCK = 2;
const PIPE_DEF_PAGES = 16;

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
    let fd = -1;
    if (!anon) {
      if (args.fd === null) return backendRefusal('EBADF', 'no fd and no MAP_ANONYMOUS');
      if (!this.kind(args.fd)) return this.notOurs(args.fd);
      fd = args.fd;
    }
    const prot = Number(u64(args.prot) & 0xffffffffn);
    const r = libc.mmap(0, u64(args.length), prot, flags, fd, s64(args.offset));
    if (!r.ok) return kernelFail(r.errno, 'mmap');
    const end = pageCeil(r.value + Number(u64(args.length)));
    this.maps.add({ start: r.value, end, prot, fd: anon ? null : fd, offset: u64(args.offset) });
    return ok(r.value);
  }

  /** munmap of the parts of the range this backend mapped; the rest is not the scenario's memory. */
  munmap(addr: number, length: U64): BResult {
    const len = u64(length);
    if (addr % PAGE_SIZE !== 0 || len === 0n) {
      const r = libc.munmap(addr, len); // the kernel rejects these before touching anything
      return r.ok ? OK : kernelFail(r.errno, 'munmap');
    }
    const end = addr + Number((len + BigInt(PAGE_SIZE - 1)) / BigInt(PAGE_SIZE) * BigInt(PAGE_SIZE));
    for (const [lo, hi] of this.maps.pieces(addr, end)) {
      const r = libc.munmap(lo, BigInt(hi - lo));
      if (!r.ok) return kernelFail(r.errno, 'munmap');
      this.maps.remove(lo, hi);
    }
    return OK;
  }

  hostRead(addr: number, length: number): BResult<Uint8Array> { return hostRead(this.maps, addr, length); }
  hostWrite(addr: number, data: Uint8Array): BResult { return hostWrite(this.maps, addr, data); }

  madvise(addr: number, length: U64, advice: number): BResult {
    const len = u64(length);
    if (addr % PAGE_SIZE === 0 && len !== 0n && !this.maps.covers(addr, addr + Number(len))) {
      return backendRefusal('ENOMEM', 'range is not fully inside this backend\'s mappings');
    }
    const r = libc.madvise(addr, len, advice);
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
    let n = length === undefined ? PAGE_SIZE : Number(u64(length));
    if (kind === 'pipe' && length === undefined) {
      const avail = Buffer.alloc(4);
      const q = libc.ioctlBuf(fd, libc.FIONREAD, avail);
      n = q.ok ? avail.readInt32LE(0) : 0;
      if (n === 0) return ok(new Uint8Array(0));
    }
    const buf = Buffer.alloc(Math.min(n, MAX_READ));
    const r = libc.read(fd, buf);
    if (!r.ok) return kind === 'pipe' && r.errno === 11 ? ok(new Uint8Array(0)) : kernelFail(r.errno, 'read');
    return ok(Uint8Array.from(buf.subarray(0, r.value)));
  }

  fdWrite(fd: number, data: Uint8Array): BResult<number> {
    if (!this.kind(fd)) return this.notOurs(fd);
    const r = libc.write(fd, Buffer.from(data));
    return r.ok ? ok(r.value) : kernelFail(r.errno, 'write');
  }

  pread(fd: number, length: U64, offset: U64): BResult<Uint8Array> {
    if (!this.kind(fd)) return this.notOurs(fd);
    const buf = Buffer.alloc(Math.min(Number(u64(length)), MAX_READ));
    const r = libc.pread(fd, buf, s64(offset));
    return r.ok ? ok(Uint8Array.from(buf.subarray(0, r.value))) : kernelFail(r.errno, 'pread');
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
    const lo = Number(uaddr);
    const hi = Number(uaddr + size);
    if (this.maps.covers(lo, hi)) return null;
    for (const line of readFileSync('/proc/self/maps', 'utf8').split('\n')) {
      const m = /^([0-9a-f]+)-([0-9a-f]+)/.exec(line);
      if (m && parseInt(m[1]!, 16) < hi && parseInt(m[2]!, 16) > lo) {
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

  guestRead(vmFd: number, gpa: U64, length: number, isPrivate?: boolean): BResult<Uint8Array> {
    return this.guestAccess(vmFd, u64(gpa), length, undefined, isPrivate);
  }

  guestWrite(vmFd: number, gpa: U64, data: Uint8Array, isPrivate?: boolean): BResult {
    const r = this.guestAccess(vmFd, u64(gpa), data.length, data, isPrivate);
    return r.ok ? OK : r;
  }

  /**
   * Page by page through the VM's CPL3 harness vCPU. `isPrivate` is ignored: the access type
   * comes from hardware only on SNP/TDX, which this backend cannot create (the model ignores it
   * for the other VM types too).
   */
  private guestAccess(vmFd: number, gpa: bigint, length: number, store: Uint8Array | undefined, _isPrivate?: boolean): BResult<Uint8Array> {
    const kind = this.kind(vmFd);
    if (!kind) return this.notOurs(vmFd);
    if (kind !== 'vm') return backendRefusal('EINVAL', `fd ${vmFd} is a ${kind} fd, not a VM fd`);
    const harness = this.harnessFor(vmFd);
    if (typeof harness === 'string') return unsupported(harness);
    const out = new Uint8Array(store ? 0 : length);
    let done = 0;
    while (done < length) {
      const at = gpa + BigInt(done);
      const n = Math.min(PAGE_SIZE - Number(at % BigInt(PAGE_SIZE)), length - done);
      const r = harness.accessPage(at, n, store?.subarray(done, done + n));
      switch (r.kind) {
        case 'ok':
          if (!store) out.set(r.data, done);
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
      }
      done += n;
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

  pinUserPages(addr: number, length: number, longterm: boolean, write = true): BResult<number> {
    if (length <= 0) return backendRefusal('EINVAL', 'length must be positive');
    if (!this.maps.covers(addr, addr + length)) return backendRefusal('EFAULT', 'range is not inside this backend\'s mappings');
    return this.pins.pin(addr, length, longterm, write);
  }

  unpinUserPages(pin: number): BResult { return this.pins.unpin(pin); }

  pinAccess(pin: number, offset: number, length: number, store?: Uint8Array): BResult<Uint8Array> {
    return this.pins.access(pin, offset, length, store);
  }

  /** pipe2(O_NONBLOCK) + vmsplice of the range; the write end is closed, the read fd returned. */
  vmsplice(addr: number, length: number): BResult<number> {
    if (length <= 0) return backendRefusal('EINVAL', 'length must be positive');
    if (!this.maps.covers(addr, addr + length)) return backendRefusal('EFAULT', 'range is not inside this backend\'s mappings');
    const p = libc.pipe2(libc.O_NONBLOCK | libc.O_CLOEXEC);
    if (!p.ok) return kernelFail(p.errno, 'pipe2');
    const [rfd, wfd] = p.value;
    const pages = Math.ceil(((addr % PAGE_SIZE) + length) / PAGE_SIZE);
    if (pages > PIPE_DEF_PAGES) libc.fcntlInt(wfd, libc.F_SETPIPE_SZ, pages * PAGE_SIZE);
    const r = libc.vmsplice(wfd, addr, length, SPLICE_F_NONBLOCK);
    libc.close(wfd);
    if (!r.ok) {
      libc.close(rfd);
      return kernelFail(r.errno, 'vmsplice');
    }
    this.fds.set(rfd, 'pipe');
    return r.value === length ? ok(rfd) : ok(rfd, `vmsplice moved ${r.value} of ${length} bytes (pipe capacity)`);
  }

  // ---------------------------------------------------------------- teardown

  /** Release pins, harness vCPUs, mappings and fds, in that order. Idempotent; never throws for kernel errors. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.pins.dispose();
    for (const vm of [...this.harnesses.keys()]) this.dropHarness(vm);
    for (const m of [...this.maps.all()]) libc.munmap(m.start, BigInt(m.end - m.start));
    this.maps.remove(0, Number.MAX_SAFE_INTEGER);
    for (const fd of [...this.fds.keys()]) libc.close(fd);
    this.fds.clear();
    libc.close(this.kvmFd);
  }
}
