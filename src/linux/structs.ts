// KVM uAPI for x86-64 as bytes: ioctl numbers and the little-endian layout of every struct the
// linux backend passes to the kernel (kernel-semantics §5, kernel-probe §0; sizes checked
// against the 6.18 uAPI). Pure packing and unpacking: must never make a system call.
import type { MemoryAttributes2Args, MemoryAttributesArgs, MemoryRegion2, U64 } from '../model/kernel.js';

const KVMIO = 0xae;
const ioc = (dir: number, nr: number, size: number): number => ((dir << 30) | (size << 16) | (KVMIO << 8) | nr) >>> 0;
const IO = (nr: number) => ioc(0, nr, 0);
const IOW = (nr: number, size: number) => ioc(1, nr, size);
const IOR = (nr: number, size: number) => ioc(2, nr, size);
const IOWR = (nr: number, size: number) => ioc(3, nr, size);

export const SIZES = {
  createGuestMemfd: 64, region2: 160, attributes: 32, attributes2: 128,
  regs: 144, sregs: 312, cpuid2Header: 8, cpuidEntry: 40, msrsHeader: 8, msrEntry: 16,
} as const;

export const KVM = {
  GET_API_VERSION: IO(0x00),
  CREATE_VM: IO(0x01),
  CHECK_EXTENSION: IO(0x03),
  GET_VCPU_MMAP_SIZE: IO(0x04),
  GET_SUPPORTED_CPUID: IOWR(0x05, SIZES.cpuid2Header),
  CREATE_VCPU: IO(0x41),
  SET_USER_MEMORY_REGION2: IOW(0x49, SIZES.region2),
  RUN: IO(0x80),
  GET_REGS: IOR(0x81, SIZES.regs),
  SET_REGS: IOW(0x82, SIZES.regs),
  GET_SREGS: IOR(0x83, SIZES.sregs),
  SET_SREGS: IOW(0x84, SIZES.sregs),
  SET_MSRS: IOW(0x89, SIZES.msrsHeader),
  SET_CPUID2: IOW(0x90, SIZES.cpuid2Header),
  SET_MEMORY_ATTRIBUTES: IOW(0xd2, SIZES.attributes),
  CREATE_GUEST_MEMFD: IOWR(0xd4, SIZES.createGuestMemfd),
  /** v8 in-place conversion: same nr as SET_MEMORY_ATTRIBUTES, _IOWR and 128 bytes, on the gmem fd. */
  SET_MEMORY_ATTRIBUTES2: IOWR(0xd2, SIZES.attributes2),
} as const;

/** KVM capability numbers the backend itself needs (not part of the modelled ABI). */
export const KVM_CAP_NR_MEMSLOTS = 10;

const u64 = (v: U64): bigint => BigInt.asUintN(64, BigInt(v));

/** struct kvm_create_guest_memfd { u64 size, flags, reserved[6] }. */
export function packCreateGuestMemfd(size: U64, flags: U64): Buffer {
  const b = Buffer.alloc(SIZES.createGuestMemfd);
  b.writeBigUInt64LE(u64(size), 0);
  b.writeBigUInt64LE(u64(flags), 8);
  return b;
}

/** struct kvm_userspace_memory_region2 { u32 slot, flags; u64 gpa, size, uaddr, gmem_offset; u32 gmem_fd, pad1; u64 pad2[14] }. */
export function packRegion2(r: MemoryRegion2): Buffer {
  const b = Buffer.alloc(SIZES.region2);
  b.writeUInt32LE(Number(BigInt.asUintN(32, BigInt(r.slot))), 0);
  b.writeUInt32LE(Number(BigInt.asUintN(32, BigInt(r.flags))), 4);
  b.writeBigUInt64LE(u64(r.guest_phys_addr), 8);
  b.writeBigUInt64LE(u64(r.memory_size), 16);
  b.writeBigUInt64LE(u64(r.userspace_addr), 24);
  b.writeBigUInt64LE(u64(r.guest_memfd_offset), 32);
  b.writeUInt32LE(r.guest_memfd >>> 0, 40);
  return b;
}

/** struct kvm_memory_attributes { u64 address, size, attributes, flags }. */
export function packAttributes(a: MemoryAttributesArgs): Buffer {
  const b = Buffer.alloc(SIZES.attributes);
  [a.address, a.size, a.attributes, a.flags].forEach((v, i) => b.writeBigUInt64LE(u64(v), i * 8));
  return b;
}

/** v8 struct kvm_memory_attributes2 { u64 offset, size, attributes, flags, error_offset, reserved[11] }. */
export function packAttributes2(a: MemoryAttributes2Args): Buffer {
  const b = Buffer.alloc(SIZES.attributes2);
  [a.offset, a.size, a.attributes, a.flags].forEach((v, i) => b.writeBigUInt64LE(u64(v), i * 8));
  (a.reserved ?? []).slice(0, 11).forEach((v, i) => b.writeBigUInt64LE(u64(v), 40 + i * 8));
  return b;
}
export const ATTRIBUTES2_ERROR_OFFSET = 32;

// ---------------------------------------------------------------- vCPU state

/** struct kvm_regs: rax rbx rcx rdx rsi rdi rsp rbp r8..r15 rip rflags (18 × u64). */
export const REG = { rax: 0, rbx: 1, rcx: 2, rdx: 3, rsi: 4, rdi: 5, rsp: 6, rbp: 7, rip: 16, rflags: 17 } as const;
export function packRegs(values: Partial<Record<keyof typeof REG, bigint>>): Buffer {
  const b = Buffer.alloc(SIZES.regs);
  for (const [k, v] of Object.entries(values)) b.writeBigUInt64LE(v, REG[k as keyof typeof REG] * 8);
  return b;
}

/** struct kvm_segment (24 bytes) as stored at `at` inside struct kvm_sregs. */
export interface Segment {
  base: bigint; limit: number; selector: number; type: number;
  present: number; dpl: number; db: number; s: number; l: number; g: number;
}
export function writeSegment(b: Buffer, at: number, s: Segment): void {
  b.writeBigUInt64LE(s.base, at);
  b.writeUInt32LE(s.limit, at + 8);
  b.writeUInt16LE(s.selector, at + 12);
  [s.type, s.present, s.dpl, s.db, s.s, s.l, s.g, 0, 0, 0].forEach((v, i) => b.writeUInt8(v, at + 14 + i));
}
/** Offsets in struct kvm_sregs: 8 segments, gdt, idt, then control registers. */
export const SREGS = {
  cs: 0, ds: 24, es: 48, fs: 72, gs: 96, ss: 120, tr: 144, ldt: 168,
  cr0: 224, cr2: 232, cr3: 240, cr4: 248, cr8: 256, efer: 264, apicBase: 272,
} as const;

/** struct kvm_msrs with one entry. */
export function packOneMsr(index: number, data: bigint): Buffer {
  const b = Buffer.alloc(SIZES.msrsHeader + SIZES.msrEntry);
  b.writeUInt32LE(1, 0);
  b.writeUInt32LE(index, 8);
  b.writeBigUInt64LE(data, 16);
  return b;
}

/** struct kvm_cpuid2 with room for `n` entries. */
export function allocCpuid2(n: number): Buffer {
  const b = Buffer.alloc(SIZES.cpuid2Header + n * SIZES.cpuidEntry);
  b.writeUInt32LE(n, 0);
  return b;
}
export function cpuidEntries(b: Buffer): { fn: number; eax: number; at: number }[] {
  const n = b.readUInt32LE(0);
  const out = [];
  for (let i = 0; i < n; i++) {
    const at = SIZES.cpuid2Header + i * SIZES.cpuidEntry;
    out.push({ fn: b.readUInt32LE(at), eax: b.readUInt32LE(at + 12), at });
  }
  return out;
}

// ---------------------------------------------------------------- struct kvm_run

export const EXIT = { UNKNOWN: 0, IO: 2, HLT: 5, MMIO: 6, SHUTDOWN: 8, FAIL_ENTRY: 9, INTR: 10, INTERNAL_ERROR: 17, MEMORY_FAULT: 39 } as const;
export const EXIT_NAMES: Readonly<Record<number, string>> = Object.fromEntries(Object.entries(EXIT).map(([k, v]) => [v, k]));

/** Offsets in struct kvm_run (the exit union starts at 32). */
export const RUN = {
  immediateExit: 1, exitReason: 8,
  ioDirection: 32, ioSize: 33, ioPort: 34, ioCount: 36, ioDataOffset: 40,
  mmioPhysAddr: 32, mmioLen: 48, mmioIsWrite: 52,
  faultFlags: 32, faultGpa: 40, faultSize: 48,
  internalSuberror: 32,
} as const;
