// The guest-access harness: one tiny 64-bit user-mode (CPL3) vCPU per VM that copies bytes
// between a guest-physical address and a scratch page with `rep movsb`, then exits with OUT.
// On a PVM host only CPL3 code runs natively on the shadow MMU and so takes the guest_memfd
// fault path (kernel-probe §8); page tables, code and scratch live in a plain anonymous memslot
// at the top of the identity-mappable guest-physical space, so they never meet the scenario's.
// It must never let a KVM_RUN block unbounded, never modify a present guest PTE (a host write
// to a shadowed guest page table is not tracked by KVM), and never leak its vCPU or memory.
import { PAGE_SIZE } from '../model/abi.js';
import * as libc from './libc.js';
import {
  allocCpuid2, cpuidEntries, EXIT, EXIT_NAMES, KVM, KVM_CAP_NR_MEMSLOTS, packOneMsr, packRegion2, packRegs, RUN, SIZES,
  SREGS, writeSegment,
} from './structs.js';

/** Size of the harness memslot: code, scratch page, and a pool of page-table pages. */
export const HARNESS_BYTES = 2 * 1024 * 1024;
const CODE = 0x0000;
const SCRATCH = 0x1000;
const PML4 = 0x2000;
const POOL = 0x3000;
const IO_PORT = 0x10;
const RUN_TIMEOUT_MS = 5000;
const MSR_STAR = 0xc0000081;
const EINTR = 4;
const EFAULT = 14;
const RFLAGS = 0x2n;
/**
 * A 64-bit TSS in the code page whose I/O bitmap allows every port: PVM runs the CPL3 OUT
 * through KVM's emulator, which checks IOPL and then the TSS bitmap (a failed TSS read would
 * inject #PF into a guest without an IDT: a triple fault and a PVM trace in the kernel log).
 */
const TSS = 0x800;
const TSS_IOMAP_BASE = 104;
const TSS_LIMIT = 0x1ff;

/** rep movsb ; out 0x10, al */
const CODE_BYTES = [0xf3, 0xa4, 0xe6, IO_PORT];

export type HarnessOutcome =
  | { kind: 'ok'; data: Uint8Array }
  | { kind: 'memory-fault'; gpa: bigint; size: bigint; flags: bigint }
  | { kind: 'mmio'; gpa: bigint; size: bigint }
  /** KVM_RUN itself failed: the kernel's answer to the access. */
  | { kind: 'errno'; errno: number; why: string }
  | { kind: 'unsupported'; why: string }
  /** No answer: the run timed out or the vCPU exited in a way the harness never causes. */
  | { kind: 'error'; why: string };

/** Facts about the host that fix the harness placement (same for every VM). */
export interface HarnessPlacement {
  /** Guest MAXPHYADDR advertised through the CPUID the harness installs. */
  physBits: number;
  /** GPA of the harness memslot. */
  gpa: bigint;
  /** Memslot id used by the harness (the last user slot). */
  slot: number;
  cpuid: Buffer;
  runSize: number;
}

/**
 * Decide where the harness lives: the top HARNESS_BYTES below 2^min(MAXPHYADDR, 47) (identity
 * mapping needs a canonical lower-half virtual address), in the last user memslot.
 */
export function harnessPlacement(kvmFd: number): HarnessPlacement | string {
  let cpuid = allocCpuid2(128);
  let r = libc.ioctlBuf(kvmFd, KVM.GET_SUPPORTED_CPUID, cpuid);
  if (!r.ok) return `KVM_GET_SUPPORTED_CPUID failed (errno ${r.errno})`;
  const leaf = cpuidEntries(cpuid).find((e) => e.fn === 0x80000008);
  const physBits = leaf ? leaf.eax & 0xff : 36;
  cpuid = cpuid.subarray(0, SIZES.cpuid2Header + cpuid.readUInt32LE(0) * SIZES.cpuidEntry);
  const slots = libc.ioctlInt(kvmFd, KVM.CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
  if (!slots.ok || slots.value < 2) return 'KVM_CAP_NR_MEMSLOTS gives no spare slot';
  const runSize = libc.ioctlInt(kvmFd, KVM.GET_VCPU_MMAP_SIZE);
  if (!runSize.ok) return `KVM_GET_VCPU_MMAP_SIZE failed (errno ${runSize.errno})`;
  const top = 1n << BigInt(Math.min(physBits, 47));
  return { physBits, gpa: top - BigInt(HARNESS_BYTES), slot: slots.value - 1, cpuid, runSize: runSize.value };
}

/** SIGALRM interrupts a KVM_RUN that runs too long; Node would die of it without a listener. */
let alarmUsers = 0;
const onAlarm = (): void => {};
function alarmAcquire(): void {
  if (alarmUsers++ === 0) process.on('SIGALRM', onAlarm);
}
function alarmRelease(): void {
  if (--alarmUsers === 0) process.off('SIGALRM', onAlarm);
}

interface Vcpu { fd: number; run: bigint; view: Buffer }

export class GuestHarness {
  private vcpu: Vcpu | null = null;
  private nextVcpuId = 0;
  private mem = 0n;
  private memView: Buffer | null = null;
  private slotCreated = false;
  private poolNext = POOL;
  private alarm = false;

  constructor(private readonly vmFd: number, private readonly place: HarnessPlacement) {}

  get gpaRange(): [bigint, bigint] { return [this.place.gpa, this.place.gpa + BigInt(HARNESS_BYTES)]; }

  /** One guest load (store undefined) or store of [gpa, gpa+length) within one page. */
  accessPage(gpa: bigint, length: number, store?: Uint8Array): HarnessOutcome {
    const limit = 1n << BigInt(Math.min(this.place.physBits, 47));
    if (gpa + BigInt(length) > limit) {
      return { kind: 'unsupported', why: `gpa 0x${gpa.toString(16)} is beyond the harness's identity map (2^${Math.min(this.place.physBits, 47)})` };
    }
    const [lo, hi] = this.gpaRange;
    if (gpa < hi && gpa + BigInt(length) > lo) return { kind: 'unsupported', why: 'gpa lies in the guest harness memslot' };
    const ready = this.ensureReady();
    if (ready) return ready;
    const v = this.vcpu!;
    const mv = this.memView!;
    if (!this.mapIdentity(gpa)) return { kind: 'unsupported', why: 'guest harness page-table pool exhausted' };
    const scratch = this.place.gpa + BigInt(SCRATCH);
    if (store) mv.set(store, SCRATCH);
    const regs = packRegs({
      rip: this.place.gpa + BigInt(CODE), rflags: RFLAGS, rcx: BigInt(length),
      rsi: store ? scratch : gpa, rdi: store ? gpa : scratch, rsp: this.place.gpa + BigInt(SCRATCH),
    });
    const set = libc.ioctlBuf(v.fd, KVM.SET_REGS, regs);
    if (!set.ok) return { kind: 'error', why: `KVM_SET_REGS on the harness vCPU failed (errno ${set.errno})` };
    const out = this.run(v);
    if (out.kind === 'ok') return store ? out : { kind: 'ok', data: Uint8Array.from(mv.subarray(SCRATCH, SCRATCH + length)) };
    return out;
  }

  /** KVM_RUN once, bounded by SIGALRM, and classify the exit. */
  private run(v: Vcpu): HarnessOutcome {
    v.view.writeUInt32LE(EXIT.UNKNOWN, RUN.exitReason);
    v.view.writeUInt8(0, RUN.immediateExit);
    // EINTR also comes from pending task work (e.g. an io_uring teardown sets TIF_NOTIFY_SIGNAL):
    // re-enter until the alarm's deadline, which is the only EINTR that means "too long".
    const deadline = performance.now() + RUN_TIMEOUT_MS; // monotonic: a wall-clock step cannot cut a run short
    libc.setAlarm(RUN_TIMEOUT_MS);
    let r = libc.ioctlIntOnce(v.fd, KVM.RUN);
    while (!r.ok && r.errno === EINTR && performance.now() < deadline) r = libc.ioctlIntOnce(v.fd, KVM.RUN);
    libc.setAlarm(0);
    // Read everything needed from kvm_run before the vCPU may be retired (its mapping goes away).
    const reason = v.view.readUInt32LE(RUN.exitReason);
    const port = v.view.readUInt16LE(RUN.ioPort);
    const fault = { flags: v.view.readBigUInt64LE(RUN.faultFlags), gpa: v.view.readBigUInt64LE(RUN.faultGpa), size: v.view.readBigUInt64LE(RUN.faultSize) };
    const mmio = { gpa: v.view.readBigUInt64LE(RUN.mmioPhysAddr), size: BigInt(v.view.readUInt32LE(RUN.mmioLen)) };
    const suberror = v.view.readUInt32LE(RUN.internalSuberror);
    if (!r.ok) {
      if (r.errno === EFAULT && reason === EXIT.MEMORY_FAULT) return { kind: 'memory-fault', ...fault };
      this.retireVcpu();
      if (r.errno === EINTR) return { kind: 'error', why: `guest access did not finish within ${RUN_TIMEOUT_MS} ms` };
      return { kind: 'errno', errno: r.errno, why: `KVM_RUN failed (exit reason ${EXIT_NAMES[reason] ?? reason})` };
    }
    if (reason === EXIT.IO && port === IO_PORT) {
      this.completePendingIo(v);
      return { kind: 'ok', data: new Uint8Array(0) };
    }
    // Anything else leaves the vCPU mid-instruction: never run it again.
    this.retireVcpu();
    if (reason === EXIT.MMIO) return { kind: 'mmio', ...mmio };
    const extra = reason === EXIT.INTERNAL_ERROR ? ` suberror ${suberror}` : '';
    return { kind: 'error', why: `unexpected guest harness vCPU exit ${EXIT_NAMES[reason] ?? reason}${extra}` };
  }

  /** Let KVM finish the OUT's completion now (immediate_exit returns EINTR before entering). */
  private completePendingIo(v: Vcpu): void {
    v.view.writeUInt8(1, RUN.immediateExit);
    libc.ioctlIntOnce(v.fd, KVM.RUN);
    v.view.writeUInt8(0, RUN.immediateExit);
  }

  private ensureReady(): HarnessOutcome | null {
    if (!this.memView) {
      const m = libc.mmap(0n, BigInt(HARNESS_BYTES), 3, 0x22 /* PRIVATE|ANONYMOUS */, -1, 0n);
      if (!m.ok) return { kind: 'error', why: `mmap of the guest harness memory failed (errno ${m.errno})` };
      this.mem = m.value;
      this.memView = Buffer.from(libc.memView(this.mem, HARNESS_BYTES).buffer);
      this.memView.set(CODE_BYTES, CODE);
      this.memView.writeUInt16LE(TSS_IOMAP_BASE, TSS + 102); // the bitmap after it is zero
      this.mapIdentity(this.place.gpa + BigInt(CODE));
      this.mapIdentity(this.place.gpa + BigInt(SCRATCH));
    }
    if (!this.slotCreated) {
      const r = libc.ioctlBuf(this.vmFd, KVM.SET_USER_MEMORY_REGION2, packRegion2({
        slot: this.place.slot, flags: 0, guest_phys_addr: this.place.gpa, memory_size: HARNESS_BYTES,
        userspace_addr: this.mem, guest_memfd: 0, guest_memfd_offset: 0,
      }));
      if (!r.ok) return { kind: 'unsupported', why: `cannot create the guest harness memslot ${this.place.slot} at 0x${this.place.gpa.toString(16)} (errno ${r.errno})` };
      this.slotCreated = true;
    }
    if (!this.vcpu) return this.createVcpu();
    return null;
  }

  private createVcpu(): HarnessOutcome | null {
    const fd = libc.ioctlInt(this.vmFd, KVM.CREATE_VCPU, this.nextVcpuId++);
    if (!fd.ok) return { kind: 'error', why: `KVM_CREATE_VCPU for the guest harness failed (errno ${fd.errno})` };
    const run = libc.mmap(0n, BigInt(this.place.runSize), 3, 0x01 /* SHARED */, fd.value, 0n);
    if (!run.ok) {
      libc.close(fd.value);
      return { kind: 'error', why: `mmap of kvm_run failed (errno ${run.errno})` };
    }
    this.vcpu = { fd: fd.value, run: run.value, view: Buffer.from(libc.memView(run.value, this.place.runSize).buffer) };
    if (!this.alarm) {
      alarmAcquire();
      this.alarm = true;
    }
    const why = this.setupVcpu(fd.value);
    if (why) {
      this.retireVcpu();
      return { kind: 'error', why };
    }
    return null;
  }

  /** 64-bit user mode: CS 0x33 (DPL3, L), SS 0x2b, paging with the harness PML4 (guest_probe.c). */
  private setupVcpu(fd: number): string | null {
    const cpuid = Buffer.from(this.place.cpuid);
    let r = libc.ioctlBuf(fd, KVM.SET_CPUID2, cpuid);
    if (!r.ok) return `KVM_SET_CPUID2 failed (errno ${r.errno})`;
    r = libc.ioctlBuf(fd, KVM.SET_MSRS, packOneMsr(MSR_STAR, (0x23n << 48n) | (0x10n << 32n)));
    if (!r.ok || r.value !== 1) return 'KVM_SET_MSRS(STAR) failed';
    const s = Buffer.alloc(SIZES.sregs);
    r = libc.ioctlBuf(fd, KVM.GET_SREGS, s);
    if (!r.ok) return `KVM_GET_SREGS failed (errno ${r.errno})`;
    const code = { base: 0n, limit: 0xffffffff, selector: 0x33, type: 0xb, present: 1, dpl: 3, db: 0, s: 1, l: 1, g: 1 };
    const data = { base: 0n, limit: 0xffffffff, selector: 0, type: 0x3, present: 1, dpl: 3, db: 1, s: 1, l: 0, g: 1 };
    writeSegment(s, SREGS.cs, code);
    for (const seg of [SREGS.ds, SREGS.es, SREGS.fs, SREGS.gs]) writeSegment(s, seg, data);
    writeSegment(s, SREGS.ss, { ...data, selector: 0x2b });
    writeSegment(s, SREGS.tr, {
      base: this.place.gpa + BigInt(CODE + TSS), limit: TSS_LIMIT, selector: 0x40, type: 0xb, present: 1, dpl: 0, db: 0, s: 0, l: 0, g: 0,
    });
    s.writeBigUInt64LE(0x80050033n, SREGS.cr0); // PG|AM|WP|NE|ET|MP|PE
    s.writeBigUInt64LE(this.place.gpa + BigInt(PML4), SREGS.cr3);
    s.writeBigUInt64LE(0x20n, SREGS.cr4); // PAE
    s.writeBigUInt64LE(0x501n, SREGS.efer); // LME|LMA|SCE
    r = libc.ioctlBuf(fd, KVM.SET_SREGS, s);
    if (!r.ok) return `KVM_SET_SREGS(long mode, CPL3) failed (errno ${r.errno})`;
    return null;
  }

  /**
   * Map the 4K page holding `gpa` at the same virtual address (P|RW|U), allocating table pages
   * from the pool. Only ever turns non-present entries present. False when the pool is empty.
   */
  private mapIdentity(gpa: bigint): boolean {
    const mv = this.memView!;
    const page = gpa & ~BigInt(PAGE_SIZE - 1);
    let table = PML4;
    for (const shift of [39n, 30n, 21n]) {
      const at = table + Number((page >> shift) & 511n) * 8;
      let e = mv.readBigUInt64LE(at);
      if ((e & 1n) === 0n) {
        if (this.poolNext + PAGE_SIZE > HARNESS_BYTES) return false;
        const next = this.poolNext;
        this.poolNext += PAGE_SIZE;
        e = (this.place.gpa + BigInt(next)) | 7n;
        mv.writeBigUInt64LE(e, at);
      }
      table = Number((e & ~0xfffn & ((1n << 52n) - 1n)) - this.place.gpa);
    }
    const at = table + Number((page >> 12n) & 511n) * 8;
    if ((mv.readBigUInt64LE(at) & 1n) === 0n) mv.writeBigUInt64LE(page | 7n, at);
    return true;
  }

  /** Close the vCPU fd and its kvm_run mapping; the next access creates a fresh vCPU. */
  private retireVcpu(): void {
    const v = this.vcpu;
    if (!v) return;
    this.vcpu = null;
    libc.munmap(v.run, BigInt(this.place.runSize));
    libc.close(v.fd);
  }

  /** Release the vCPU, the harness memory and the SIGALRM listener (the memslot dies with the VM). */
  dispose(): void {
    this.retireVcpu();
    if (this.memView) {
      this.memView = null;
      libc.munmap(this.mem, BigInt(HARNESS_BYTES));
    }
    if (this.alarm) {
      this.alarm = false;
      alarmRelease();
    }
  }
}
