// The kernel model's system-call surface: one method per syscall or ioctl, named after it and
// taking its arguments. Every entry point validates first and returns the errno at once, in
// the kernel's order; the work functions below (gmem.ts, mm.ts, kvm.ts, pipe.ts) assume valid
// input. Synchronous and deterministic: no I/O, no clock, no randomness.
import {
  CAPS, FALLOC_FLAGS, GMEM_FLAGS, HUGETLB_SIZE_MASK, LIMITS, MADV, MAP_FLAGS, MEMORY_ATTRIBUTES, MEMSLOT_FLAGS,
  PAGE_SHIFT, PAGE_SIZE, PROT, VM_TYPES, hugetlbShift, type VmType,
} from './abi.js';
import { folioAddRefs, idAt } from './folio.js';
import { gmemAllocate, gmemCreateFile, gmemCreateInode, gmemNrPages, gmemPrepareRange, gmemPunchHole, gmemRelease, gmemSetAttributes, gmemSettlePending } from './gmem.js';
import {
  kvmConvertVmRange, kvmCreateMemslot, kvmCreateVm, kvmDeleteMemslot, kvmGuestAccess, kvmGuestTouch, kvmMaxMappingOrder, kvmSetVmAttributes,
  kvmVmPut, slotKey, vmHasPrivateMem,
} from './kvm.js';
import { copyThroughPages, faultRange, findVma, gupPages, hex, vmaNoDirectMap, hostAccess, insertVma, madviseRange, newVma, placeMapping, pteIds, pteKey, unmapRange, vmasIn } from './mm.js';
import { pipeCreate, pipeRead, pipeRelease, pipeSplicePages } from './pipe.js';
import { FULL_MACHINE, hasMemoryAttributes, type MachineConfig } from './platform.js';
import { DEFAULT_PROFILE, type Profile } from './profile.js';
import { fail, ok, OK, type AccessResult, type GuestResult, type KResult } from './result.js';
import { newState, type FdEntry, type FolioIds, type GmemFile, type Import, type KernelState, type Memslot, type Pin, type Vm } from './state.js';

export type U64 = bigint | number;

export interface MemoryRegion2 {
  slot: U64; flags: U64; guest_phys_addr: U64; memory_size: U64; userspace_addr: U64;
  guest_memfd: number; guest_memfd_offset: U64;
}
export interface MemoryAttributesArgs { address: U64; size: U64; attributes: U64; flags: U64 }
export interface MemoryAttributes2Args { offset: U64; size: U64; attributes: U64; flags: U64; reserved?: U64[] }
/** `addr`: the hint, or with MAP_FIXED / MAP_FIXED_NOREPLACE the address (default 0, NULL). */
export interface MmapArgs { fd: number | null; offset: U64; length: U64; prot: U64; flags: U64; addr?: U64 }
/** What fstat(2) reports that scenarios check: st_size and st_blksize. */
export interface FileStat { readonly size: bigint; readonly blksize: bigint }

export interface KernelOptions {
  profile?: Profile;
  machine?: MachineConfig;
}

const big = (v: U64): bigint => BigInt(v);
const s64 = (v: U64): bigint => BigInt.asIntN(64, big(v));
const u64 = (v: U64): bigint => BigInt.asUintN(64, big(v));
const aligned = (v: bigint): boolean => (v & BigInt(PAGE_SIZE - 1)) === 0n;
const PAGE = BigInt(PAGE_SIZE);
/** Lowest address mappings are placed at (mmap_min_addr-like floor of the model's layout). */
const MMAP_FLOOR = 0x10000n;

export class Kernel {
  readonly profile: Profile;
  readonly machine: MachineConfig;
  readonly state: KernelState = newState();

  constructor(opts: KernelOptions = {}) {
    this.profile = opts.profile ?? DEFAULT_PROFILE;
    this.machine = opts.machine ?? FULL_MACHINE;
    this.state.faultAcceptsPrivate = this.profile.faultAcceptsPrivate ?? false;
  }

  // ---------------------------------------------------------------- fd table

  private installFd(entry: FdEntry): number {
    let fd = LIMITS.firstFd;
    while (this.state.fds.has(fd)) fd++;
    this.state.fds.set(fd, entry);
    return fd;
  }

  private vmOf(fd: number): Vm | ReturnType<typeof fail> {
    const e = this.state.fds.get(fd);
    if (!e) return fail('EBADF', `fd ${fd} is not open`);
    if (e.kind !== 'vm') return fail('ENOTTY', `fd ${fd} is a ${e.kind} fd, not a VM fd`);
    return e.vm;
  }

  private gmemOf(fd: number): GmemFile | ReturnType<typeof fail> {
    const e = this.state.fds.get(fd);
    if (!e) return fail('EBADF', `fd ${fd} is not open`);
    if (e.kind !== 'gmem') return fail('ENOTTY', `fd ${fd} is a ${e.kind} fd, not a guest_memfd`);
    return e.file;
  }

  /** close(2). */
  close(fd: number): KResult {
    const e = this.state.fds.get(fd);
    if (!e) return fail('EBADF', `fd ${fd} is not open`);
    this.state.fds.delete(fd);
    if (e.kind === 'vm') {
      e.vm.fdOpen = false;
      kvmVmPut(this.state, e.vm);
    } else if (e.kind === 'gmem') {
      e.file.fdRefs--;
      this.releaseFile(e.file);
    } else {
      pipeRelease(this.state, e.pipe);
      this.settle();
    }
    return OK;
  }

  /** After a reference drops: complete deferred conversions whose pages are now free (variant). */
  private settle(): void {
    if (this.profile.toPrivate.onBlocked !== 'defer') return;
    for (const inode of this.state.inodes) gmemSettlePending(this.state, inode, this.profile.toPrivate);
  }

  private releaseFile(file: GmemFile): void {
    gmemRelease(this.state, file, (vm) => kvmVmPut(this.state, vm));
  }

  // ---------------------------------------------------------------- /dev/kvm and VMs

  /** KVM_CREATE_VM. */
  createVm(type: U64): KResult<number> {
    const t = big(type);
    const name = (Object.keys(VM_TYPES) as (keyof typeof VM_TYPES)[]).find((k) => BigInt(VM_TYPES[k]) === t);
    if (!name || !(this.machine.vmTypes as readonly string[]).includes(name)) {
      return fail('EINVAL', `VM type ${t} is not supported here (supported: ${this.machine.vmTypes.join(', ')})`);
    }
    const vm = kvmCreateVm(this.state, name as VmType);
    return ok(this.installFd({ kind: 'vm', vm }));
  }

  /** KVM_CHECK_EXTENSION on /dev/kvm (vmFd undefined) or on a VM. */
  checkExtension(cap: U64, vmFd?: number): KResult<bigint> {
    let vm: Vm | undefined;
    if (vmFd !== undefined) {
      const r = this.vmOf(vmFd);
      if ('ok' in r) return r;
      vm = r;
    }
    return ok(this.capabilityValue(Number(big(cap)), vm));
  }

  private capabilityValue(cap: number, vm: Vm | undefined): bigint {
    const privateMem = vm ? vmHasPrivateMem(vm.type) : true; // kvm == NULL answers for the device
    const attrs = hasMemoryAttributes(this.machine);
    switch (cap) {
      case CAPS.USER_MEMORY2: case CAPS.MEMORY_FAULT_INFO: case CAPS.GUEST_MEMFD: return 1n;
      case CAPS.PRE_FAULT_MEMORY: return this.machine.preFaultMemory ? 1n : 0n;
      case CAPS.VM_TYPES:
        return this.machine.vmTypes.reduce((m, t) => m | (1n << BigInt(VM_TYPES[t])), 0n);
      case CAPS.MEMORY_ATTRIBUTES:
        // v8: with per-gmem tracking the VM ioctl no longer advertises PRIVATE (§1.10(a)).
        return attrs && privateMem && this.profile.privateTracking === 'vm' ? MEMORY_ATTRIBUTES.PRIVATE : 0n;
      case CAPS.GUEST_MEMFD_FLAGS: return this.supportedGmemFlags(vm);
      default:
        if (cap === this.profile.gmemAttributesCap) return attrs && privateMem ? MEMORY_ATTRIBUTES.PRIVATE : 0n;
        return 0n;
    }
  }

  private supportedGmemFlags(vm: Vm | undefined): bigint {
    const initShared = !vm || !vmHasPrivateMem(vm.type) || this.profile.initSharedForPrivateVms;
    return GMEM_FLAGS.MMAP | (initShared ? GMEM_FLAGS.INIT_SHARED : 0n) | (this.noDirectMapFor(vm) ? GMEM_FLAGS.NO_DIRECT_MAP : 0n)
      | (this.profile.hugetlb ? GMEM_FLAGS.HUGETLB : 0n);
  }

  /**
   * DMR: whether NO_DIRECT_MAP is offered for this VM (not on TDX: kernel-semantics §1.11, §7
   * item 7). Asked on /dev/kvm (no VM), the answer is that of a VM type that allows it, as for
   * INIT_SHARED (unconfirmed for the posted series).
   */
  private noDirectMapFor(vm: Vm | undefined): boolean {
    const types = this.profile.noDirectMap?.vmTypes;
    return types !== undefined && (vm === undefined ? types.length > 0 : types.includes(vm.type));
  }

  // ---------------------------------------------------------------- guest_memfd

  /** KVM_CREATE_GUEST_MEMFD (kernel-semantics §1.1, kernel-probe §2). reserved[] is not checked. */
  createGuestMemfd(vmFd: number, size: U64, flags: U64): KResult<number> {
    const vm = this.vmOf(vmFd);
    if ('ok' in vm) return vm;
    const f = u64(flags);
    const supported = this.supportedGmemFlags(vm);
    // With HUGETLB, bits 58..63 carry the huge page size (RFC25's encoding, abi.ts).
    const sizeBits = supported & GMEM_FLAGS.HUGETLB && f & GMEM_FLAGS.HUGETLB ? HUGETLB_SIZE_MASK : 0n;
    if (f & ~(supported | sizeBits)) {
      const tdx = (f & GMEM_FLAGS.NO_DIRECT_MAP) !== 0n && this.profile.noDirectMap !== undefined && !this.noDirectMapFor(vm);
      return fail('EINVAL', `flags ${hex(f)} outside the supported ${hex(supported)}${tdx ? ` (NO_DIRECT_MAP is not offered for a ${vm.type} VM: kernel-semantics §1.11, §7 item 7)` : ''}`);
    }
    const sz = s64(size);
    if (sz <= 0n || !aligned(sz)) return fail('EINVAL', `size ${sz} is not a positive multiple of ${PAGE_SIZE}`);
    let hugeOrder = 0;
    if (sizeBits) {
      // kernel-semantics §2.3 [RFC25]: a huge page size is required, and the file is whole huge pages.
      const shift = hugetlbShift(f);
      if (shift < PAGE_SHIFT) return fail('EINVAL', shift === 0 ? 'HUGETLB without a huge page size (log2 in flag bits 58..63)' : `huge page size 2^${shift} is smaller than PAGE_SIZE`);
      if (sz % (1n << BigInt(shift)) !== 0n) return fail('EINVAL', `size ${sz} is not a multiple of the huge page size ${1n << BigInt(shift)}`);
      hugeOrder = shift - PAGE_SHIFT;
    }
    const inode = gmemCreateInode(this.state, this.state.nextId++, vm.type, Number(sz), f, (f & GMEM_FLAGS.INIT_SHARED) !== 0n, hugeOrder);
    const file = gmemCreateFile(this.state, inode, vm);
    return ok(this.installFd({ kind: 'gmem', file }));
  }

  /** fallocate(2) on a guest_memfd: vfs_fallocate's checks, then kvm_gmem_fallocate's. */
  fallocate(fd: number, mode: U64, offset: U64, len: U64): KResult {
    const e = this.state.fds.get(fd);
    if (!e) return fail('EBADF', `fd ${fd} is not open`);
    const m = u64(mode);
    const off = s64(offset);
    const n = s64(len);
    if (off < 0n || n <= 0n) return fail('EINVAL', 'offset < 0 or len <= 0');
    const known = Object.values(FALLOC_FLAGS).reduce((a, b) => a | b, 0n);
    if (m & ~known) return fail('EOPNOTSUPP', `unknown mode bits ${hex(m & ~known)}`);
    if ((m & FALLOC_FLAGS.PUNCH_HOLE) && !(m & FALLOC_FLAGS.KEEP_SIZE)) return fail('EOPNOTSUPP', 'PUNCH_HOLE without KEEP_SIZE');
    if (e.kind === 'pipe') return fail('EBADF', 'the vmsplice pipe fd is the read end (no FMODE_WRITE)');
    if (e.kind === 'vm') return fail('ENODEV', 'a VM fd is not a regular file');
    if (off + n > LIMITS.loffMax) return fail('EFBIG', 'offset + len exceeds the maximum file size');
    if (!(m & FALLOC_FLAGS.KEEP_SIZE)) return fail('EOPNOTSUPP', 'guest_memfd requires KEEP_SIZE');
    if (m & ~(FALLOC_FLAGS.KEEP_SIZE | FALLOC_FLAGS.PUNCH_HOLE)) return fail('EOPNOTSUPP', 'guest_memfd supports only allocate and PUNCH_HOLE');
    if (!aligned(off) || !aligned(n)) return fail('EINVAL', 'offset and len must be page-aligned');
    const inode = e.file.inode;
    const lo = Number(off / PAGE);
    if (m & FALLOC_FLAGS.PUNCH_HOLE) {
      const hi = Number((off + n) / PAGE);
      return gmemPunchHole(this.state, inode, lo, Math.min(hi, gmemNrPages(inode)), this.profile.hugetlb) ?? OK;
    }
    if (off + n > BigInt(inode.size)) return fail('EINVAL', `range [${off}, ${off + n}) extends past i_size ${inode.size}`);
    gmemAllocate(this.state, inode, lo, Number((off + n) / PAGE));
    return OK;
  }

  /** ftruncate(2): guest_memfd's setattr always fails (kernel-probe §4). */
  ftruncate(fd: number, length: U64): KResult {
    const e = this.state.fds.get(fd);
    if (!e) return fail('EBADF', `fd ${fd} is not open`);
    if (s64(length) < 0n) return fail('EINVAL', 'negative length');
    return fail('EINVAL', e.kind === 'gmem' ? 'guest_memfd size is immutable (setattr)' : `a ${e.kind} fd is not a regular file`);
  }

  /** read(2) on an fd: a pipe is read; a guest_memfd or VM fd has no read (EINVAL). */
  fdRead(fd: number, length?: U64): KResult<Uint8Array> {
    const e = this.state.fds.get(fd);
    if (!e) return fail('EBADF', `fd ${fd} is not open`);
    if (e.kind === 'pipe') {
      const data = pipeRead(this.state, e.pipe, length === undefined ? undefined : Number(big(length)));
      this.settle();
      return ok(data);
    }
    return fail('EINVAL', `a ${e.kind} fd has no read (no FMODE_CAN_READ)`);
  }

  /** write(2): a guest_memfd or VM fd has no write (EINVAL); a pipe's read end is not open for writing (EBADF). */
  fdWrite(fd: number, _data: Uint8Array): KResult<number> {
    const e = this.state.fds.get(fd);
    if (!e) return fail('EBADF', `fd ${fd} is not open`);
    if (e.kind === 'pipe') return fail('EBADF', `fd ${fd} is the read end of a pipe (no FMODE_WRITE)`);
    return fail('EINVAL', `a ${e.kind} fd has no write (no FMODE_CAN_WRITE)`);
  }

  /** pread(2)/pwrite(2): the file is not seekable (no FMODE_PREAD). */
  pread(fd: number, _length: U64, offset: U64): KResult<Uint8Array> {
    if (s64(offset) < 0n) return fail('EINVAL', 'negative position (checked before the fd)');
    if (!this.state.fds.has(fd)) return fail('EBADF', `fd ${fd} is not open`);
    return fail('ESPIPE', 'not seekable (no FMODE_PREAD)');
  }

  pwrite(fd: number, _data: Uint8Array, offset: U64): KResult<number> {
    if (s64(offset) < 0n) return fail('EINVAL', 'negative position (checked before the fd)');
    if (!this.state.fds.has(fd)) return fail('EBADF', `fd ${fd} is not open`);
    return fail('ESPIPE', 'not seekable (no FMODE_PWRITE)');
  }

  /** lseek(2): a VM fd has noop_llseek (returns the position, 0); guest_memfd and pipes are not seekable. */
  lseek(fd: number, _offset: U64, whence: number): KResult<bigint> {
    const e = this.state.fds.get(fd);
    if (!e) return fail('EBADF', `fd ${fd} is not open`);
    if (e.kind === 'vm') return ok(0n, 'noop_llseek on the VM fd (kernel-probe §4, linux backend)');
    if (whence < 0 || whence > 4) return fail('EINVAL', `whence ${whence}`);
    return fail('ESPIPE', 'not seekable');
  }

  /**
   * fstat(2), the fields scenarios check: a guest_memfd reports its size and a 4 KiB st_blksize
   * (guest_memfd_test.c test_file_size); a VM fd and a pipe report size 0, blksize 4096
   * (measured: conformance/language-additions.yaml).
   */
  fstat(fd: number): KResult<FileStat> {
    const e = this.state.fds.get(fd);
    if (!e) return fail('EBADF', `fd ${fd} is not open`);
    const size = e.kind === 'gmem' ? BigInt(e.file.inode.size) : 0n;
    return ok({ size, blksize: BigInt(PAGE_SIZE) });
  }

  // ---------------------------------------------------------------- host mm

  /**
   * mmap(2) of a guest_memfd, or anonymous memory with MAP_ANONYMOUS (kernel-probe §3). With
   * MAP_FIXED (MAP_FIXED_NOREPLACE implies it) `addr` is the address: beyond TASK_SIZE is
   * ENOMEM, unaligned EINVAL, NOREPLACE over any mapping EEXIST, and FIXED replaces what is
   * there. Without it `addr` is a hint, used (page-aligned down) when that range is free.
   * Measured (conformance/language-additions.yaml): when guest_memfd's own mmap handler refuses
   * a MAP_FIXED mapping (no MMAP flag: ENODEV, MAP_PRIVATE: EINVAL) over existing mappings, the
   * old range is already unmapped (a hole is left).
   */
  mmap(args: MmapArgs): KResult<number> {
    const len = u64(args.length);
    const off = u64(args.offset);
    const flags = u64(args.flags);
    const prot = u64(args.prot);
    if (len === 0n) return fail('EINVAL', 'length 0');
    if (!aligned(off)) return fail('EINVAL', 'offset not page-aligned');
    // SHARED|PRIVATE together is MAP_SHARED_VALIDATE: shared, with unknown flags refused.
    const type = flags & (MAP_FLAGS.SHARED | MAP_FLAGS.PRIVATE);
    if (type === 0n) return fail('EINVAL', 'one of SHARED and PRIVATE is required');
    if (prot & ~(PROT.READ | PROT.WRITE | PROT.EXEC)) return fail('EINVAL', `unknown prot bits ${hex(prot)}`);
    const pages = (len + PAGE - 1n) / PAGE;
    const length = Number(pages * PAGE);
    const fixed = (flags & (MAP_FLAGS.FIXED | MAP_FLAGS.FIXED_NOREPLACE)) !== 0n;
    const addr = u64(args.addr ?? 0n);
    let placed: number | undefined;
    if (fixed) {
      if (addr > LIMITS.taskSizeMax - pages * PAGE || pages * PAGE > LIMITS.taskSizeMax) return fail('ENOMEM', `[${hex(addr)}, +${hex(pages * PAGE)}) ends beyond TASK_SIZE`);
      if (!aligned(addr)) return fail('EINVAL', `MAP_FIXED address ${hex(addr)} not page-aligned`);
      placed = Number(addr);
      if ((flags & MAP_FLAGS.FIXED_NOREPLACE) && vmasIn(this.state, placed, placed + length).length) {
        return fail('EEXIST', `MAP_FIXED_NOREPLACE: [${hex(addr)}, ${hex(addr + pages * PAGE)}) overlaps a mapping`);
      }
    } else {
      const hint = addr - (addr % PAGE);
      if (hint >= MMAP_FLOOR && hint + pages * PAGE <= LIMITS.taskSizeMax && !vmasIn(this.state, Number(hint), Number(hint) + length).length) placed = Number(hint);
      else placed = pages * PAGE + 2n * PAGE > BigInt(this.state.mmapBase) - MMAP_FLOOR ? undefined : placeMapping(this.state, length, Number(MMAP_FLOOR));
    }
    if (placed === undefined) return fail('ENOMEM', 'no room for the mapping in the address space');
    const at = placed;
    /** MAP_FIXED: what was in [at, at+length) goes first. */
    const replace = () => { if (fixed) for (const file of unmapRange(this.state, at, at + length)) this.releaseFile(file); };
    const shared = type !== MAP_FLAGS.PRIVATE;
    if (flags & MAP_FLAGS.ANONYMOUS) {
      replace();
      insertVma(this.state, newVma(at, length, prot, shared, null, 0));
      return ok(at);
    }
    if (args.fd === null) return fail('EBADF', 'no fd and no MAP_ANONYMOUS');
    const e = this.state.fds.get(args.fd);
    if (!e) return fail('EBADF', `fd ${args.fd} is not open`);
    if (off + pages * PAGE > LIMITS.loffMax) return fail('EOVERFLOW', 'offset + length beyond MAX_LFS_FILESIZE (file_mmap_ok)');
    if (prot & PROT.EXEC) return fail('EPERM', 'PROT_EXEC on a noexec mount (anon_inode)');
    if (e.kind !== 'gmem') return fail('ENODEV', `a ${e.kind} fd has no mmap`);
    const refused = !(e.file.inode.flags & GMEM_FLAGS.MMAP) ? fail('ENODEV', 'guest_memfd created without MMAP')
      : !shared ? fail('EINVAL', 'guest_memfd needs MAP_SHARED (no CoW)') : undefined;
    if (refused) {
      if (!fixed || !vmasIn(this.state, at, at + length).length) return refused;
      replace();
      return fail(refused.errno, `${refused.why}; MAP_FIXED had already unmapped [${hex(at)}, ${hex(at + length)}) (measured)`);
    }
    const file = e.file;
    replace();
    insertVma(this.state, newVma(at, length, prot, true, file, Number(off / PAGE)));
    return ok(at);
  }

  /** munmap(2). */
  munmap(addr: number, length: U64): KResult {
    const len = u64(length);
    if (addr % PAGE_SIZE !== 0) return fail('EINVAL', 'address not page-aligned');
    if (len === 0n) return fail('EINVAL', 'length 0');
    const end = addr + Number((len + PAGE - 1n) / PAGE * PAGE);
    for (const file of unmapRange(this.state, addr, end)) this.releaseFile(file);
    return OK;
  }

  /**
   * The faults of a host access of [addr, addr+length) without the copy: how an access too large
   * to buffer ends (the pages it reaches are faulted in, as the access would).
   */
  hostTouch(addr: number, length: number, write: boolean): AccessResult<void> {
    return faultRange(this.state, addr, length, write) ?? OK;
  }

  /** A host load through a mapping (the process touching memory). */
  hostRead(addr: number, length: number): AccessResult<Uint8Array> {
    const r = hostAccess(this.state, addr, length);
    return r instanceof Uint8Array ? ok(r) : r;
  }

  /** A host store through a mapping. */
  hostWrite(addr: number, data: Uint8Array): AccessResult<void> {
    const r = hostAccess(this.state, addr, data.length, data);
    return r instanceof Uint8Array ? OK : r;
  }

  /** madvise(2) (kernel-probe §3). */
  madvise(addr: number, length: U64, advice: number): KResult {
    if (addr % PAGE_SIZE !== 0) return fail('EINVAL', 'address not page-aligned');
    if (!(Object.values(MADV) as number[]).includes(advice)) return fail('EINVAL', `unknown advice ${advice}`);
    const len = u64(length);
    if (len === 0n) return OK;
    const end = addr + Number((len + PAGE - 1n) / PAGE * PAGE);
    let at = addr;
    for (const vma of vmasIn(this.state, addr, end)) {
      if (vma.start > at) break;
      at = vma.end;
    }
    if (at < end) return fail('ENOMEM', `[${hex(addr)}, ${hex(end)}) is not fully mapped`);
    const r = madviseRange(this.state, addr, end, advice, this.profile.hugetlb);
    return r ?? OK;
  }

  /** pin_user_pages(FOLL_WRITE [| FOLL_LONGTERM]) over [addr, addr+length); returns a pin id. */
  pinUserPages(addr: number, length: number, longterm: boolean, write = true): KResult<number> {
    if (length <= 0) return fail('EINVAL', 'length must be positive');
    const first = addr - (addr % PAGE_SIZE);
    const folios = gupPages(this.state, first, addr + length - first, write);
    if (!Array.isArray(folios)) return folios;
    this.pinRefs(folios, longterm, 1);
    const pin: Pin = { id: this.state.nextId++, address: addr, length, longterm, write, folios, released: false };
    this.state.pins.set(pin.id, pin);
    return ok(pin.id);
  }

  /**
   * pin_user_pages_fast() without the slow-path fallback: only through PTEs already present,
   * without faulting and without the invalidate lock (what can race inside a conversion).
   */
  pinUserPagesFast(addr: number, length: number, longterm: boolean): KResult<number> {
    const first = addr - (addr % PAGE_SIZE);
    const end = addr + length;
    for (let at = first; at < end;) {
      const vma = findVma(this.state, at);
      if (vma && vmaNoDirectMap(vma)) return fail('EFAULT', `GUP-fast refuses the NO_DIRECT_MAP mapping at ${hex(at)}, and so does the slow path (kernel-semantics §1.11 [DMR])`);
      const stop = vma ? Math.min(end, vma.end) : at;
      const missing = vma && (vma.prot & PROT.WRITE) !== 0n
        ? [...vma.ptes.cover(pteKey(vma, at), pteKey(vma, stop - 1) + 1)].find((g) => g.value === undefined)
        : undefined;
      if (!vma || (vma.prot & PROT.WRITE) === 0n || missing) {
        const where = missing ? vma!.start + (missing.lo - pteKey(vma!, vma!.start)) * PAGE_SIZE : at;
        return fail('EAGAIN', `GUP-fast: no writable PTE at ${hex(where)} (would fall back to the slow path)`);
      }
      at = stop;
    }
    const folios = pteIds(this.state, first, end);
    this.pinRefs(folios, longterm, 1);
    const pin: Pin = { id: this.state.nextId++, address: addr, length, longterm, write: true, folios, released: false };
    this.state.pins.set(pin.id, pin);
    return ok(pin.id);
  }

  /** unpin_user_pages(). */
  unpinUserPages(pinId: number): KResult {
    const pin = this.state.pins.get(pinId);
    if (!pin) return fail('EINVAL', `pin ${pinId} is not held`);
    this.pinRefs(pin.folios, pin.longterm, -1);
    pin.released = true;
    this.state.pins.delete(pinId);
    this.settle();
    return OK;
  }

  private pinRefs(folios: readonly FolioIds[], longterm: boolean, delta: number): void {
    for (const b of folios) folioAddRefs(this.state, b.id, b.id + b.nr, longterm ? 'pinsLong' : 'pinsShort', delta);
  }

  /** Device access through a pin (DMA / READ_FIXED / WRITE_FIXED): the pinned folios, even detached ones. */
  pinAccess(pinId: number, offset: number, length: number, store?: Uint8Array): KResult<Uint8Array> {
    const pin = this.state.pins.get(pinId);
    if (!pin) return fail('EINVAL', `pin ${pinId} is not held`);
    if (offset < 0 || offset + length > pin.length) return fail('EINVAL', `[${offset}, ${offset + length}) outside the ${pin.length}-byte pin`);
    // The pinned folios themselves, even detached ones: byte 0 is the pin's first address.
    const r = copyThroughPages<never>(this.state, (pin.address % PAGE_SIZE) + offset, length, store, (at) => idAt(pin.folios, Math.floor(at / PAGE_SIZE))!);
    return ok(r);
  }

  /** pipe2() + vmsplice(): a new pipe holding page references on [addr, addr+length). */
  vmsplice(addr: number, length: number): KResult<number> {
    if (length <= 0) return fail('EINVAL', 'length must be positive');
    // vmsplice takes the pages before the first fault and returns a short count (-EFAULT if none).
    const first = addr - (addr % PAGE_SIZE);
    const folios: number[] = [];
    for (let at = first; at < addr + length; at += PAGE_SIZE) {
      const got = gupPages(this.state, at, PAGE_SIZE, false);
      if (!Array.isArray(got)) {
        if (folios.length === 0) return got;
        break;
      }
      folios.push(got[0]!.id);
    }
    const pipe = pipeCreate(this.state);
    pipeSplicePages(this.state, pipe, folios, addr, Math.min(length, first + folios.length * PAGE_SIZE - addr));
    return ok(this.installFd({ kind: 'pipe', pipe }));
  }

  // ---------------------------------------------------------------- revocable imports (variant)

  /** Import guest_memfd bytes [offset, offset+length) for a device by fd+offset (revoke variant). */
  gmemImport(gmemFd: number, offset: U64, length: U64): KResult<number> {
    const file = this.gmemOf(gmemFd);
    if ('ok' in file) return file;
    if (!this.profile.revocableImports) return fail('ENOTTY', `${this.profile.name} has no revocable guest_memfd imports`);
    const [off, len] = [u64(offset), u64(length)];
    if (!aligned(off) || !aligned(len) || len === 0n) return fail('EINVAL', 'offset and length must be page-aligned, length positive');
    if (off + len > BigInt(file.inode.size)) return fail('EINVAL', 'range outside the file');
    const lo = Number(off / PAGE);
    const hi = Number((off + len) / PAGE);
    if (!file.inode.attributes.every(lo, hi, (a) => a === 'shared')) return fail('EINVAL', 'only shared pages can be imported');
    const imp: Import = { id: this.state.nextId++, inode: file.inode, lo, hi, revoked: false };
    file.inode.imports.add(imp);
    this.state.imports.set(imp.id, imp);
    return ok(imp.id);
  }

  gmemUnimport(id: number): KResult {
    const imp = this.state.imports.get(id);
    if (!imp) return fail('EINVAL', `import ${id} does not exist`);
    imp.inode.imports.delete(imp);
    this.state.imports.delete(id);
    return OK;
  }

  /** Device access through an import: the file's current pages; EFAULT once revoked. */
  importAccess(id: number, offset: number, length: number, store?: Uint8Array): KResult<Uint8Array> {
    const imp = this.state.imports.get(id);
    if (!imp) return fail('EINVAL', `import ${id} does not exist`);
    if (imp.revoked) return fail('EFAULT', 'the import was revoked by a conversion to private (IOMMU fault)');
    if (offset < 0 || offset + length > (imp.hi - imp.lo) * PAGE_SIZE) return fail('EINVAL', 'access outside the import');
    // The file's current pages (fd+offset), allocated and zeroed on first use like a fault.
    const start = imp.lo * PAGE_SIZE + offset;
    if (length > 0) {
      const [lo, hi] = [Math.floor(start / PAGE_SIZE), Math.floor((start + length - 1) / PAGE_SIZE) + 1];
      gmemAllocate(this.state, imp.inode, lo, hi);
      gmemPrepareRange(this.state, imp.inode, lo, hi);
    }
    const r = copyThroughPages<never>(this.state, start, length, store, (at) => imp.inode.pages.get(Math.floor(at / PAGE_SIZE))!);
    return ok(r);
  }

  // ---------------------------------------------------------------- memslots

  /** KVM_SET_USER_MEMORY_REGION2 (kvm_set_memory_region + kvm_gmem_bind; kernel-probe §7). */
  setUserMemoryRegion2(vmFd: number, r: MemoryRegion2): KResult {
    const vm = this.vmOf(vmFd);
    if ('ok' in vm) return vm;
    const flags = u64(r.flags);
    const isGmem = (flags & MEMSLOT_FLAGS.GUEST_MEMFD) !== 0n;
    const valid = isGmem ? MEMSLOT_FLAGS.GUEST_MEMFD : MEMSLOT_FLAGS.LOG_DIRTY_PAGES | MEMSLOT_FLAGS.READONLY;
    if (flags & ~valid) return fail('EINVAL', `flags ${hex(flags)} invalid${isGmem ? ' with GUEST_MEMFD (no dirty logging, no READONLY)' : ''}`);
    const slotArg = u64(r.slot);
    const asId = Number(slotArg >> 16n);
    const id = Number(slotArg & 0xffffn);
    const size = u64(r.memory_size);
    const gpa = u64(r.guest_phys_addr);
    const uaddr = u64(r.userspace_addr);
    const goff = u64(r.guest_memfd_offset);
    if (!aligned(size)) return fail('EINVAL', 'memory_size not page-aligned');
    if (!aligned(gpa)) return fail('EINVAL', 'guest_phys_addr not page-aligned');
    if (!aligned(uaddr) || uaddr + size > LIMITS.taskSizeMax) return fail('EINVAL', 'userspace_addr unaligned or not a user address');
    if (isGmem && (!aligned(goff) || u64(goff + size) < goff)) return fail('EINVAL', 'guest_memfd_offset unaligned or overflowing');
    const asIds = vmHasPrivateMem(vm.type) ? 1 : this.machine.addressSpaces; // SMM is a second space
    if (asId >= asIds || id >= LIMITS.userMemSlots) return fail('EINVAL', `slot ${id} / address space ${asId} out of range (KVM_USER_MEM_SLOTS ${LIMITS.userMemSlots})`);
    if (u64(gpa + size) < gpa) return fail('EINVAL', 'guest_phys_addr + memory_size overflows');
    if (size / PAGE > LIMITS.memMaxNrPages) return fail('EINVAL', 'memory_size above KVM_MEM_MAX_NR_PAGES');
    const old = vm.memslots.get(slotKey(asId, id));
    if (size === 0n) {
      if (!old) return fail('EINVAL', `slot ${id} does not exist`);
      kvmDeleteMemslot(vm, old);
      return OK;
    }
    if (old) return fail('EINVAL', old.gmem || isGmem ? 'guest_memfd memslots are immutable: delete, then create' : 'modifying plain memslots is not modelled');
    const baseGfn = Number(gpa / PAGE);
    const npages = Number(size / PAGE);
    if (vm.gfnIndex[asId]!.find(baseGfn, baseGfn + npages, () => true)) return fail('EEXIST', 'GPA range overlaps another memslot');
    let gmem: Memslot['gmem'] = null;
    let gmemOnly = false;
    if (isGmem) {
      const e = this.state.fds.get(r.guest_memfd);
      if (!e) return fail('EBADF', `guest_memfd ${r.guest_memfd} is not open`);
      if (e.kind !== 'gmem') return fail('EINVAL', `fd ${r.guest_memfd} is not a guest_memfd`);
      if (e.file.vm !== vm) return fail('EINVAL', 'guest_memfd belongs to another VM');
      const o = s64(goff);
      if (o < 0n || o + BigInt(size) > BigInt(e.file.inode.size)) return fail('EINVAL', 'guest_memfd range outside the file');
      const pgoff = Number(o / PAGE);
      if (e.file.bindings.find(pgoff, pgoff + npages, () => true)) {
        return fail(this.profile.bindOverlapErrno, 'guest_memfd range already bound to another memslot');
      }
      gmem = { file: e.file, pgoff };
      gmemOnly = (e.file.inode.flags & GMEM_FLAGS.MMAP) !== 0n;
    }
    if (gpa + size > 1n << BigInt(this.machine.gpaBits)) return fail('EINVAL', `the slot ends beyond the ${this.machine.gpaBits}-bit guest physical address space (kvm_mmu_max_gfn)`);
    kvmCreateMemslot(vm, { vm, asId, id, flags, baseGfn, npages, userspaceAddr: uaddr, gmem, gmemOnly });
    return OK;
  }

  // ---------------------------------------------------------------- attributes and conversion

  /** KVM_SET_MEMORY_ATTRIBUTES on a VM (kernel-semantics §1.10(a); RFC24 converts through it). */
  setMemoryAttributes(vmFd: number, a: MemoryAttributesArgs): KResult {
    const vm = this.vmOf(vmFd);
    if ('ok' in vm) return vm;
    if (!hasMemoryAttributes(this.machine)) return fail('ENOTTY', 'no CONFIG_KVM_GENERIC_MEMORY_ATTRIBUTES (kernel-probe §1)');
    const [addr, size, attrs, flags] = [u64(a.address), u64(a.size), u64(a.attributes), u64(a.flags)];
    if (flags !== 0n) return fail('EINVAL', 'flags must be 0');
    const supported = this.capabilityValue(CAPS.MEMORY_ATTRIBUTES, vm);
    if (attrs & ~supported) return fail('EINVAL', `attributes ${hex(attrs)} outside the supported ${hex(supported)}`);
    if (size === 0n || u64(addr + size) < addr) return fail('EINVAL', 'size 0 or range overflows');
    if (!aligned(addr) || !aligned(size)) return fail('EINVAL', 'address and size must be page-aligned');
    const lo = Number(addr / PAGE);
    const hi = Number((addr + size) / PAGE);
    const attr = attrs ? 'private' : 'shared';
    if (this.profile.conversion === 'vm-ioctl') return kvmConvertVmRange(this.state, vm, this.profile, lo, hi, attr) ?? OK;
    kvmSetVmAttributes(vm, lo, hi, attr);
    return OK;
  }

  /** KVM_SET_MEMORY_ATTRIBUTES2 on a guest_memfd (kernel-semantics §1.10(b)); out: error_offset. */
  setMemoryAttributes2(gmemFd: number, a: MemoryAttributes2Args): KResult {
    const file = this.gmemOf(gmemFd);
    if ('ok' in file) return file;
    if (this.profile.conversion !== 'gmem-ioctl') return fail('ENOTTY', `${this.profile.name} has no guest_memfd conversion ioctl`);
    const [off, size, attrs, flags] = [u64(a.offset), u64(a.size), u64(a.attributes), u64(a.flags)];
    if (flags !== 0n) return fail('EINVAL', 'flags must be 0');
    if ((a.reserved ?? []).some((v) => big(v) !== 0n)) return fail('EINVAL', 'reserved fields must be 0');
    if (!vmHasPrivateMem(file.vm.type)) return fail('EINVAL', `a ${file.vm.type} VM has no private memory`);
    if (attrs & ~MEMORY_ATTRIBUTES.PRIVATE) return fail('EINVAL', `unknown attribute bits ${hex(attrs & ~MEMORY_ATTRIBUTES.PRIVATE)}`);
    if (size === 0n) return this.profile.zeroSizeConversionIsNoop ? OK : fail('EINVAL', 'size 0');
    if (u64(off + size) < off) return fail('EINVAL', 'offset + size overflows');
    if (!aligned(off) || !aligned(size)) return fail('EINVAL', 'offset and size must be page-aligned');
    const isize = BigInt(file.inode.size);
    if (off >= isize || off + size > isize) return fail('EINVAL', `range [${off}, ${off + size}) outside i_size ${isize}`);
    const target = attrs ? 'private' : 'shared';
    const r = gmemSetAttributes(this.state, file.inode, file.vm.type, Number(off / PAGE), Number((off + size) / PAGE), target, this.profile.toPrivate, this.profile.hugetlb);
    return r ?? OK;
  }

  // ---------------------------------------------------------------- guest

  /** A vCPU load (KVM_RUN until the access completes or exits). `private` sets the access type on SNP/TDX. */
  guestRead(vmFd: number, gpa: U64, length: number, isPrivate?: boolean): GuestResult<Uint8Array> {
    const vm = this.vmOf(vmFd);
    if ('ok' in vm) return vm;
    const r = kvmGuestAccess(this.state, vm, this.profile, Number(u64(gpa)), length, undefined, isPrivate);
    return r instanceof Uint8Array ? ok(r, this.hugeMappingNote(vm, gpa, length)) : r;
  }

  /** For traces: the level a guest access is mapped at, when a huge SPTE serves it. */
  private hugeMappingNote(vm: Vm, gpa: U64, length: number): string | undefined {
    if (!this.profile.hugetlb || length <= 0) return undefined;
    const lo = Math.floor(Number(u64(gpa)) / PAGE_SIZE);
    const order = kvmMaxMappingOrder(vm, lo, Math.floor((Number(u64(gpa)) + length - 1) / PAGE_SIZE) + 1);
    const bytes = PAGE_SIZE * 2 ** order;
    const size = bytes >= 2 ** 30 ? `${bytes / 2 ** 30} GiB` : bytes >= 2 ** 20 ? `${bytes / 2 ** 20} MiB` : `${bytes / 1024} KiB`;
    return order > 0 ? `guest mapping at order ${order} (a ${size} SPTE)` : undefined;
  }

  /** The faults of a vCPU access without the copy (an access too large to buffer): where it stops. */
  guestTouch(vmFd: number, gpa: U64, length: number, write: boolean, isPrivate?: boolean): GuestResult<void> {
    const vm = this.vmOf(vmFd);
    if ('ok' in vm) return vm;
    return kvmGuestTouch(this.state, vm, this.profile, Number(u64(gpa)), length, write, isPrivate)?.failure ?? OK;
  }

  /** A vCPU store. */
  guestWrite(vmFd: number, gpa: U64, data: Uint8Array, isPrivate?: boolean): GuestResult<void> {
    const vm = this.vmOf(vmFd);
    if ('ok' in vm) return vm;
    const r = kvmGuestAccess(this.state, vm, this.profile, Number(u64(gpa)), data.length, data, isPrivate);
    if (!(r instanceof Uint8Array)) return r;
    const note = this.hugeMappingNote(vm, gpa, data.length);
    return note ? ok(undefined, note) : OK;
  }

  // ---------------------------------------------------------------- introspection (not syscalls)

  /**
   * The order of the folio holding the page at byte `offset` of a guest_memfd (0 = 4 KiB, 9 =
   * 2 MiB, 18 = 1 GiB): the scenario op folio_order. ENOENT when no folio is allocated there.
   */
  folioOrder(fd: number, offset: U64): KResult<bigint> {
    const file = this.gmemOf(fd);
    if ('ok' in file) return file;
    const off = s64(offset);
    if (off < 0n || off >= BigInt(file.inode.size)) return fail('EINVAL', `offset ${off} outside i_size ${file.inode.size}`);
    const id = file.inode.pages.get(Number(off / PAGE));
    const run = id === undefined ? undefined : this.state.folios.get(id);
    return run ? ok(BigInt(run.order)) : fail('ENOENT', `no folio at offset ${off}`);
  }

  /** The order of the guest mapping (SPTE) of `gpa` in a VM (0 = 4 KiB, 9 = 2 MiB): the op spte_order. ENOENT when unmapped. */
  spteOrder(vmFd: number, gpa: U64): KResult<bigint> {
    const vm = this.vmOf(vmFd);
    if ('ok' in vm) return vm;
    const spte = vm.sptes.get(Number(u64(gpa) / PAGE));
    return spte ? ok(BigInt(spte.order)) : fail('ENOENT', `gpa ${hex(u64(gpa))} is not mapped in the guest`);
  }

  /** The guest_memfd file behind an fd, for tools that inspect the model. */
  gmemFile(fd: number): GmemFile | undefined {
    const e = this.state.fds.get(fd);
    return e?.kind === 'gmem' ? e.file : undefined;
  }

  vmOfFd(fd: number): Vm | undefined {
    const e = this.state.fds.get(fd);
    return e?.kind === 'vm' ? e.vm : undefined;
  }

  vmaAt(addr: number) {
    return findVma(this.state, addr);
  }
}
