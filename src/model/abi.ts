// The KVM / guest_memfd / mm ABI as data: errno and signal names, flag bits, capability and
// VM-type numbers, struct sizes. Values are from kernel-semantics.md §5 and kernel-probe.md §0.
// Numbers that moved between patch-series versions are not here: they live in the profiles.
// Must never hold behaviour, only names and numbers.

export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;

/** Linux errno numbers (x86-64), for the names the model returns. */
export const ERRNO = {
  EPERM: 1, ENOENT: 2, EINTR: 4, EIO: 5, EBADF: 9, EAGAIN: 11, ENOMEM: 12, EACCES: 13,
  EFAULT: 14, EBUSY: 16, EEXIST: 17, ENODEV: 19, EINVAL: 22, EMFILE: 24, ENOTTY: 25,
  EFBIG: 27, ESPIPE: 29, EOPNOTSUPP: 95, EHWPOISON: 133,
  // Further numbers a real kernel can return (the linux backend names whatever it gets).
  ESRCH: 3, ENXIO: 6, E2BIG: 7, ECHILD: 10, EXDEV: 18, ENOTDIR: 20, EISDIR: 21, ENFILE: 23,
  ETXTBSY: 26, ENOSPC: 28, EROFS: 30, EMLINK: 31, EPIPE: 32, ERANGE: 34, EDEADLK: 35,
  ENOSYS: 38, ETIME: 62, EOVERFLOW: 75, EBADFD: 77, ETIMEDOUT: 110, ECANCELED: 125,
} as const;
export type Errno = keyof typeof ERRNO;
export const ERRNO_NAMES = Object.keys(ERRNO) as Errno[];
export function errnoName(n: number): Errno | undefined {
  return ERRNO_NAMES.find((name) => ERRNO[name] === n);
}

export const SIGNALS = { SIGBUS: 7, SIGSEGV: 11 } as const;
export type Signal = keyof typeof SIGNALS;

/** KVM_CREATE_VM machine types (arch/x86 uapi). */
export const VM_TYPES = { default: 0, sw_protected: 1, sev: 2, sev_es: 3, snp: 4, tdx: 5 } as const;
export type VmTypeName = keyof typeof VM_TYPES;
/** The VM types the model implements (SEV and SEV-ES have no guest_memfd support). */
export const MODELLED_VM_TYPES = ['default', 'sw_protected', 'snp', 'tdx'] as const;
export type VmType = (typeof MODELLED_VM_TYPES)[number];

/** guest_memfd creation flags (`GUEST_MEMFD_FLAG_*`). */
export const GMEM_FLAGS = {
  MMAP: 1n << 0n, INIT_SHARED: 1n << 1n,
  /** DMR, posted, not merged (kernel-semantics §5.2): only the `no-direct-map` profile accepts it. */
  NO_DIRECT_MAP: 1n << 2n,
  /**
   * HugeTLB backing (RFC25 `GUEST_MEMFD_FLAG_HUGETLB`, not merged: kernel-semantics §2.3, §5.2):
   * only the `hugetlb` profile accepts it. RFC25 used `1ULL << 2` on its own ABI; on the next-7.4
   * ABI that bit is DMR's NO_DIRECT_MAP, so gmemkit takes the next free bit (gmemkit's choice).
   */
  HUGETLB: 1n << 3n,
} as const;

/**
 * RFC25's huge page size encoding in the guest_memfd flags (`GUESTMEM_HUGETLB_FLAG_SHIFT` 58,
 * mask 0x3f): log2 of the huge page size in bits 58..63, e.g. 21 << 58 for 2 MiB.
 */
export const HUGETLB_SIZE_SHIFT = 58n;
export const HUGETLB_SIZE_MASK = 0x3fn << HUGETLB_SIZE_SHIFT;

/** The flag bits of a HugeTLB guest_memfd with huge pages of `bytes` (a power of two). */
export function hugetlbFlags(bytes: number | bigint): bigint {
  const b = BigInt(bytes);
  return GMEM_FLAGS.HUGETLB | (BigInt(b.toString(2).length - 1) << HUGETLB_SIZE_SHIFT);
}

/** The huge page size encoded in guest_memfd flags, as log2 of bytes (0: none given). */
export function hugetlbShift(flags: bigint): number {
  return Number((flags & HUGETLB_SIZE_MASK) >> HUGETLB_SIZE_SHIFT);
}
/** What one FOLL_PIN adds to a small folio's refcount (mm; kernel-semantics §5.2). */
export const GUP_PIN_COUNTING_BIAS = 1024;
/** `KVM_MEMORY_ATTRIBUTE_*`. */
export const MEMORY_ATTRIBUTES = { PRIVATE: 1n << 3n } as const;
/** `KVM_MEM_*` memslot flags. */
export const MEMSLOT_FLAGS = { LOG_DIRTY_PAGES: 1n << 0n, READONLY: 1n << 1n, GUEST_MEMFD: 1n << 2n } as const;
/** `KVM_MEMORY_EXIT_FLAG_PRIVATE`. */
export const MEMORY_EXIT_FLAG_PRIVATE = 1n << 3n;
export const KVM_EXIT_MEMORY_FAULT = 39;

/** fallocate(2) modes (Linux uapi falloc.h). */
export const FALLOC_FLAGS = {
  KEEP_SIZE: 0x01n, PUNCH_HOLE: 0x02n, NO_HIDE_STALE: 0x04n, COLLAPSE_RANGE: 0x08n,
  ZERO_RANGE: 0x10n, INSERT_RANGE: 0x20n, UNSHARE_RANGE: 0x40n,
} as const;

/** mmap(2) protections and flags. */
export const PROT = { READ: 0x1n, WRITE: 0x2n, EXEC: 0x4n } as const;
export const MAP_FLAGS = { SHARED: 0x01n, PRIVATE: 0x02n, FIXED: 0x10n, ANONYMOUS: 0x20n, POPULATE: 0x8000n, FIXED_NOREPLACE: 0x100000n } as const;

/** madvise(2) advice values (asm-generic mman-common.h). */
export const MADV = {
  NORMAL: 0, RANDOM: 1, SEQUENTIAL: 2, WILLNEED: 3, DONTNEED: 4, FREE: 8, REMOVE: 9,
  DONTFORK: 10, DOFORK: 11, MERGEABLE: 12, UNMERGEABLE: 13, HUGEPAGE: 14, NOHUGEPAGE: 15,
  DONTDUMP: 16, DODUMP: 17, WIPEONFORK: 18, KEEPONFORK: 19, COLD: 20, PAGEOUT: 21,
  POPULATE_READ: 22, POPULATE_WRITE: 23, COLLAPSE: 25,
} as const;
export type MadviseName = keyof typeof MADV;

/** Capability numbers that are the same in every profile (kernel-semantics.md §5.3). */
export const CAPS = {
  USER_MEMORY2: 231, MEMORY_FAULT_INFO: 232, MEMORY_ATTRIBUTES: 233, GUEST_MEMFD: 234,
  VM_TYPES: 235, PRE_FAULT_MEMORY: 236, GUEST_MEMFD_FLAGS: 244,
} as const;

/** Limits that shape argument validation. */
export const LIMITS = {
  /** KVM_USER_MEM_SLOTS on x86 (KVM_MEM_SLOTS_NUM minus the private slots): user slot ids below. */
  userMemSlots: 32764,
  /** KVM_MEM_MAX_NR_PAGES: pages one memslot may hold. */
  memMaxNrPages: (1n << 31n) - 1n,
  /** x86-64 TASK_SIZE_MAX with 4-level paging: user addresses lie below. */
  taskSizeMax: 0x7ffffffff000n,
  /** Largest value of a signed 64-bit loff_t. */
  loffMax: (1n << 63n) - 1n,
  /** First file descriptor a process gets after stdin/stdout/stderr. */
  firstFd: 3,
} as const;

/** Bit value of a named flag in a table, as used by the scenario lists. */
export type FlagTable = Readonly<Record<string, bigint>>;
