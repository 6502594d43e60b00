// The scenario ops: for each op of scenario-language.md §2, its fields (kind, C type, required or
// default) and the kind of handle its `as:` names. The table is the single list of what exists;
// `parseField` validates every field of every op the same way. Numeric fields carry the C type
// of the kernel ABI they go to (kernel-semantics.md §5.5 and the syscall prototypes), so a
// value that does not fit is refused at load time; signed types keep negative values, which
// reach the backend (e.g. pread's negative offset is EINVAL there).
import { CAPS, GMEM_FLAGS, HUGETLB_SIZE_SHIFT, MAP_FLAGS, PAGE_SHIFT, type FlagTable } from '../model/abi.js';
import { POLICIES } from '../userspace/policies.js';
import { parseBytes, parseFlags, parseNamed, parseSize, TABLES, show, type CType, type Parsed } from './values.js';

export type HandleKind = 'vm' | 'gmem' | 'map' | 'pin' | 'pipe' | 'ring' | 'dma' | 'io' | 'vhost' | 'request';
/** Handles that are file descriptors (usable where an `fd` is expected). */
export const FD_KINDS: readonly HandleKind[] = ['vm', 'gmem', 'pipe'];

export type FieldKind =
  /** An integer or size string of C type `ctype`. */
  | { type: 'size'; ctype: CType }
  | { type: 'bool' }
  | { type: 'bytes' }
  /** A capability: a KVM_CAP_ name (prefix optional) or a number (KVM_CHECK_EXTENSION takes a long). */
  | { type: 'cap' }
  /** A flag list of names and raw numbers, OR-ed into a value of C type `ctype`. */
  | { type: 'flags'; table: FlagTable; what: string; ctype: CType }
  | { type: 'named'; table: Readonly<Record<string, number | bigint>>; what: string; ctype: CType }
  /** One of a fixed set of names (no raw numbers). */
  | { type: 'choice'; table: Readonly<Record<string, number>>; what: string }
  /** A handle of one of `kinds`; `raw` also admits a plain number of C type `ctype` (an fd or address), or null. */
  | { type: 'handle'; kinds: readonly HandleKind[]; raw?: 'number' | 'number-or-null'; ctype?: CType };

export interface FieldSpec { readonly kind: FieldKind; readonly required?: boolean; readonly default?: unknown }
export interface OpSpec {
  readonly fields: Readonly<Record<string, FieldSpec>>;
  /** Kind of handle the result is, when `as:` names it. */
  readonly produces?: HandleKind;
  /** Exactly one of these fields must be present (e.g. data | bytes). */
  readonly oneOf?: readonly string[];
  /**
   * Rules between fields, checked after each field parsed: the field a problem is about and
   * the message, or undefined. `given` holds the fields as written, `args` as parsed.
   */
  /** The `check` rules in words, for `gmemkit ops`. */
  readonly rules?: string;
  readonly check?: (given: Readonly<Record<string, unknown>>, args: Readonly<Record<string, unknown>>) => { field: string; message: string } | undefined;
  readonly summary: string;
}

/** Policy names map to their index in POLICIES. */
const POLICY_TABLE: Readonly<Record<string, number>> = Object.fromEntries(POLICIES.map((p, i) => [p.name, i]));

/** Integers by C type: u64 = __u64 and size_t (and unsigned long), s64 = off_t / loff_t, int = int. */
const u64: FieldKind = { type: 'size', ctype: 'u64' };
const u32: FieldKind = { type: 'size', ctype: 'u32' };
const off: FieldKind = { type: 'size', ctype: 's64' };
const bool: FieldKind = { type: 'bool' };
const bytes: FieldKind = { type: 'bytes' };
/** An fd: a handle, or a raw number (the syscalls take an int; close(-1) is EBADF). */
const fd: FieldKind = { type: 'handle', kinds: FD_KINDS, raw: 'number', ctype: 'int' };
const vm: FieldKind = fd;
const map: FieldKind = { type: 'handle', kinds: ['map'] };
const req = (kind: FieldKind): FieldSpec => ({ kind, required: true });
const opt = (kind: FieldKind, dflt?: unknown): FieldSpec => (dflt === undefined ? { kind } : { kind, default: dflt });
const flags = (table: FlagTable, what: string, ctype: CType): FieldKind => ({ type: 'flags', table, what, ctype });
const data = { data: opt(bytes), bytes: opt(bytes) };
const FIXED_BITS = MAP_FLAGS.FIXED | MAP_FLAGS.FIXED_NOREPLACE;

/** write: `fill` and `length` come together (a memset of `length` bytes). */
function fillRule(given: Readonly<Record<string, unknown>>): { field: string; message: string } | undefined {
  if (given.fill !== undefined && given.length === undefined) return { field: 'length', message: "field 'fill' needs 'length' (how many bytes of the fill value to write)" };
  if (given.length !== undefined && given.fill === undefined) return { field: 'length', message: "field 'length' goes with 'fill' only (data and bytes carry their own length)" };
  return undefined;
}

/** mmap: MAP_FIXED / MAP_FIXED_NOREPLACE need `addr`; `addr_offset` needs `addr`. */
function fixedRule(given: Readonly<Record<string, unknown>>, args: Readonly<Record<string, unknown>>): { field: string; message: string } | undefined {
  const bits = typeof args.flags === 'bigint' ? args.flags : 0n;
  if ((bits & FIXED_BITS) && given.addr === undefined) return { field: 'addr', message: "flags FIXED and FIXED_NOREPLACE need 'addr' (a map handle, whose start address is used, or a number)" };
  if (given.addr_offset !== undefined && given.addr === undefined) return { field: 'addr_offset', message: "field 'addr_offset' needs 'addr' (it is added to that address)" };
  return undefined;
}
/**
 * create_guest_memfd: a huge page size (`hugepage_size`, or `hugepage_pages` for a scaled-down
 * huge page of the model) goes with the HUGETLB flag, and only with it; one of the two.
 */
function hugepageRule(given: Readonly<Record<string, unknown>>, args: Readonly<Record<string, unknown>>): { field: string; message: string } | undefined {
  const huge = typeof args.flags === 'bigint' && (args.flags & GMEM_FLAGS.HUGETLB) !== 0n;
  // The name asks for HUGETLB; a raw bit (0x8) goes to the kernel as written, size or not.
  const named = Array.isArray(given.flags) ? given.flags.includes('HUGETLB') : given.flags === 'HUGETLB';
  const allowed = Object.keys(HUGEPAGE_SIZES).join(', ');
  const sized = given.hugepage_size !== undefined || given.hugepage_pages !== undefined;
  if (named && !sized) return { field: 'hugepage_size', message: `flag HUGETLB needs 'hugepage_size' (allowed: ${allowed}) or, model only, 'hugepage_pages'` };
  for (const field of ['hugepage_size', 'hugepage_pages']) {
    if (!huge && given[field] !== undefined) return { field, message: `field '${field}' goes with flag HUGETLB only` };
  }
  if (given.hugepage_size !== undefined && given.hugepage_pages !== undefined) return { field: 'hugepage_pages', message: "fields 'hugepage_size' and 'hugepage_pages' exclude each other (one huge page size)" };
  const n = args.hugepage_pages;
  if (typeof n === 'bigint' && (n < 2n || (n & (n - 1n)) !== 0n)) return { field: 'hugepage_pages', message: `'hugepage_pages' must be a power of two >= 2 (4 KiB pages per huge page), got ${n}` };
  return undefined;
}
/** Huge page sizes a scenario may name, as log2 of bytes (the model takes any power of two: abi.ts hugetlbFlags). */
export const HUGEPAGE_SIZES: Readonly<Record<string, number>> = { '2M': 21, '1G': 30 };
/** create_guest_memfd's huge page size as RFC25's flag bits: `hugepage_size` (log2 bytes) or `hugepage_pages` (4 KiB pages, a power of two). */
export function hugepageFlagBits(a: Readonly<Record<string, unknown>>): bigint {
  const pages = a.hugepage_pages as bigint | undefined;
  const shift = a.hugepage_size !== undefined ? BigInt(a.hugepage_size as bigint) : pages !== undefined ? BigInt(pages.toString(2).length - 1 + PAGE_SHIFT) : 0n;
  return shift << HUGETLB_SIZE_SHIFT;
}
const handle = (...kinds: HandleKind[]): FieldKind => ({ type: 'handle', kinds });
/** set_memory_attributes{,2} `flags`: no names are defined (must be 0 in v8), raw bits only. */
const attrFlags = flags({}, 'attributes flag', 'u64');

/**
 * The kernel interface (scenario-language.md §2.1), plus gmemkit extensions. C types:
 * struct kvm_create_guest_memfd, kvm_userspace_memory_region2, kvm_memory_attributes{,2}
 * (kernel-semantics.md §5.5); mmap(void *, size_t, int prot, int flags, int, off_t);
 * fallocate(int, int mode, off_t, off_t); ftruncate(int, off_t); pread/pwrite(int, void *,
 * size_t, off_t); lseek(int, off_t, unsigned int whence); madvise(void *, size_t, int);
 * KVM_CREATE_VM's unsigned long type. Offsets into a mapping and lengths of host accesses are
 * address arithmetic (unsigned long).
 */
export const KERNEL_OPS: Readonly<Record<string, OpSpec>> = {
  create_vm: { summary: 'KVM_CREATE_VM', produces: 'vm', fields: { type: opt({ type: 'named', table: TABLES.vmTypes, what: 'VM type', ctype: 'u64' }, 'default') } },
  check_extension: { summary: 'KVM_CHECK_EXTENSION', fields: { cap: req({ type: 'cap' }), vm: opt(vm) } },
  create_guest_memfd: {
    summary: 'KVM_CREATE_GUEST_MEMFD', produces: 'gmem', check: hugepageRule,
    rules: "'hugepage_size' (2M or 1G) or 'hugepage_pages' (model only: a scaled-down huge page of that many 4 KiB pages, a power of two >= 2) is required with flag HUGETLB (by name), and only with the HUGETLB bit",
    fields: {
      vm: req(vm), size: req(u64), flags: opt(flags(TABLES.gmemFlags, 'guest_memfd flag', 'u64'), []),
      hugepage_size: opt({ type: 'choice', table: HUGEPAGE_SIZES, what: 'huge page size' }), hugepage_pages: opt({ type: 'size', ctype: 'u32' }),
    },
  },
  close: { summary: 'close(2)', fields: { fd: req(fd) } },
  mmap: {
    summary: 'mmap(2)', produces: 'map',
    fields: {
      fd: opt(fd), offset: opt(off, 0), length: req(u64),
      prot: opt(flags(TABLES.prot, 'prot', 'int'), ['READ', 'WRITE']), flags: opt(flags(TABLES.mapFlags, 'mmap flag', 'int'), ['SHARED']),
      addr: opt({ type: 'handle', kinds: ['map'], raw: 'number', ctype: 'u64' }), addr_offset: opt(u64),
    },
    check: fixedRule, rules: "'addr' is required with FIXED or FIXED_NOREPLACE; 'addr_offset' needs 'addr'",
  },
  munmap: { summary: 'munmap(2)', fields: { map: req(map), offset: opt(u64, 0), length: opt(u64) } },
  read: { summary: 'host load through a mapping', fields: { map: req(map), offset: opt(u64, 0), length: req(u64) } },
  write: {
    summary: 'host store through a mapping (fill + length: a memset)', oneOf: ['data', 'bytes', 'fill'], check: fillRule, rules: "'length' is required with 'fill', and only with it",
    fields: { map: req(map), offset: opt(u64, 0), ...data, fill: opt({ type: 'size', ctype: 'u8' }), length: opt(u64) },
  },
  madvise: { summary: 'madvise(2)', fields: { map: req(map), offset: opt(u64, 0), length: opt(u64), advice: req({ type: 'named', table: TABLES.madvise, what: 'advice', ctype: 'int' }) } },
  fallocate: { summary: 'fallocate(2)', fields: { fd: req(fd), mode: req(flags(TABLES.falloc, 'fallocate mode', 'int')), offset: req(off), length: req(off) } },
  ftruncate: { summary: 'ftruncate(2)', fields: { fd: req(fd), length: req(off) } },
  fd_read: { summary: 'read(2) on the fd', fields: { fd: req(fd), length: opt(u64) } },
  fd_write: { summary: 'write(2) on the fd', oneOf: ['data', 'bytes'], fields: { fd: req(fd), ...data } },
  pread: { summary: 'pread(2)', fields: { fd: req(fd), length: req(u64), offset: opt(off, 0) } },
  pwrite: { summary: 'pwrite(2)', oneOf: ['data', 'bytes'], fields: { fd: req(fd), offset: opt(off, 0), ...data } },
  fstat: { summary: 'fstat(2): out-values size (st_size) and blksize (st_blksize)', fields: { fd: req(fd) } },
  lseek: { summary: 'lseek(2)', fields: { fd: req(fd), offset: opt(off, 0), whence: opt({ type: 'named', table: TABLES.whence, what: 'whence', ctype: 'u32' }, 'SET') } },
  set_user_memory_region2: {
    summary: 'KVM_SET_USER_MEMORY_REGION2',
    fields: {
      vm: req(vm), slot: req(u32), flags: opt(flags(TABLES.memslotFlags, 'memslot flag', 'u32')),
      guest_phys_addr: req(u64), memory_size: req(u64),
      userspace_addr: opt({ type: 'handle', kinds: ['map'], raw: 'number-or-null', ctype: 'u64' }, null),
      guest_memfd: opt({ type: 'handle', kinds: FD_KINDS, raw: 'number', ctype: 'u32' }), guest_memfd_offset: opt(u64, 0),
    },
  },
  set_memory_attributes: {
    summary: 'KVM_SET_MEMORY_ATTRIBUTES (VM ioctl)',
    fields: { vm: req(vm), address: req(u64), size: req(u64), attributes: req(flags(TABLES.attributes, 'attribute', 'u64')), flags: opt(attrFlags, 0) },
  },
  set_memory_attributes2: {
    summary: 'KVM_SET_MEMORY_ATTRIBUTES2 (guest_memfd ioctl)',
    fields: {
      fd: req(fd), offset: req(u64), size: req(u64), attributes: req(flags(TABLES.attributes, 'attribute', 'u64')),
      flags: opt(attrFlags, 0), reserved: opt(flags({}, 'reserved value', 'u64')),
    },
  },
  guest_read: { summary: 'vCPU load', fields: { vm: req(vm), gpa: req(u64), length: req(u64), private: opt(bool), on_fault: opt({ type: 'choice', table: POLICY_TABLE, what: 'policy' }) } },
  guest_write: { summary: 'vCPU store', oneOf: ['data', 'bytes'], fields: { vm: req(vm), gpa: req(u64), ...data, private: opt(bool), on_fault: opt({ type: 'choice', table: POLICY_TABLE, what: 'policy' }) } },
  pin_user_pages: {
    summary: 'pin_user_pages(FOLL_WRITE [| FOLL_LONGTERM])', produces: 'pin',
    fields: { map: req(map), offset: opt(u64, 0), length: req(u64), longterm: opt(bool, false), write: opt(bool, true) },
  },
  unpin_user_pages: { summary: 'unpin_user_pages()', fields: { pin: req(handle('pin')) } },
  pin_read: { summary: 'device read through a pin (gmemkit extension)', fields: { pin: req(handle('pin')), offset: opt(u64, 0), length: req(u64) } },
  pin_write: { summary: 'device write through a pin (gmemkit extension)', oneOf: ['data', 'bytes'], fields: { pin: req(handle('pin')), offset: opt(u64, 0), ...data } },
  folio_order: { summary: 'the order of the folio holding the page at offset: 0 = 4 KiB, 9 = 2 MiB, 18 = 1 GiB; ENOENT without one (model only)', fields: { fd: req(fd), offset: req(off) } },
  spte_order: { summary: 'the order of the guest mapping (SPTE) of gpa: 0 = 4 KiB, 9 = 2 MiB, 18 = 1 GiB; ENOENT when unmapped (gmemkit extension, model only)', fields: { vm: req(vm), gpa: req(u64) } },
};

const policy: FieldKind = { type: 'choice', table: POLICY_TABLE, what: 'policy' };
const direction: FieldKind = { type: 'choice', table: { private: 1, shared: 0 }, what: 'direction' };

/**
 * The userspace subsystems that hold pins, and the conversion manager (scenario-language.md §2.2, §2.3).
 * C types: struct iovec (size_t), struct vfio_iommu_type1_dma_map (__u64 iova, size), and the
 * conversion manager's ranges as in struct kvm_memory_attributes2 (__u64).
 */
export const USERSPACE_OPS: Readonly<Record<string, OpSpec>> = {
  io_uring_register_buffers: { summary: 'IORING_REGISTER_BUFFERS (long-term pin)', produces: 'ring', fields: { map: req(map), offset: opt(u64, 0), length: req(u64) } },
  io_uring_unregister_buffers: { summary: 'IORING_UNREGISTER_BUFFERS', fields: { ring: req(handle('ring')) } },
  vfio_dma_map: { summary: 'VFIO_IOMMU_MAP_DMA (long-term pin + IOMMU mapping)', produces: 'dma', fields: { map: req(map), offset: opt(u64, 0), length: req(u64), iova: req(u64) } },
  vfio_dma_unmap: { summary: 'VFIO_IOMMU_UNMAP_DMA', fields: { dma: req(handle('dma')) } },
  dma_read: { summary: 'the device reads through its DMA mapping or fixed buffer (gmemkit extension)', fields: { dma: req(handle('dma', 'ring')), offset: opt(u64, 0), length: req(u64) } },
  dma_write: { summary: 'the device writes through its DMA mapping or fixed buffer (gmemkit extension)', oneOf: ['data', 'bytes'], fields: { dma: req(handle('dma', 'ring')), offset: opt(u64, 0), ...data } },
  odirect_read: { summary: 'O_DIRECT read into the buffer, in flight until io_complete', produces: 'io', fields: { map: req(map), offset: opt(u64, 0), length: req(u64), data: opt(bytes), bytes: opt(bytes) } },
  odirect_write: { summary: 'O_DIRECT write from the buffer, in flight until io_complete', produces: 'io', fields: { map: req(map), offset: opt(u64, 0), length: req(u64) } },
  io_complete: { summary: 'the device completes an I/O (returns what a write sent)', fields: { io: req(handle('io')) } },
  vmsplice: { summary: 'pipe2() + vmsplice()', produces: 'pipe', fields: { map: req(map), offset: opt(u64, 0), length: req(u64) } },
  pipe_read: { summary: 'read(2) from the pipe', fields: { pipe: req(handle('pipe')), length: opt(u64) } },
  vhost_user_set_mem_table: { summary: 'a vhost-user backend maps guest RAM (gmemkit extension)', produces: 'vhost', fields: { map: req(map), offset: opt(u64, 0), length: opt(u64) } },
  vhost_user_io: { summary: 'the vhost-user backend pins a range for I/O (gmemkit extension)', produces: 'io', fields: { vhost: req(handle('vhost')), offset: opt(u64, 0), length: req(u64) } },
  convert: {
    summary: 'the conversion manager converts guest_memfd bytes',
    fields: { fd: req({ type: 'handle', kinds: ['gmem'], raw: 'number', ctype: 'int' }), offset: req(u64), size: req(u64), to: req(direction), policy: opt(policy, 'retry') },
  },
  request_start: {
    summary: 'a guest request the manager will serve step by step (gmemkit extension; see manager_step)', produces: 'request',
    fields: { vm: req(vm), gpa: req(u64), size: req(u64), to: req(direction), policy: opt(policy, 'retry'), max_retries: opt(u32) },
  },
  manager_step: {
    summary: 'one action of the conversion manager; race_* runs a GUP-fast pin inside the conversion ioctl (model only)', produces: 'pin',
    fields: { request: req(handle('request')), race_map: opt(map), race_offset: opt(u64), race_longterm: opt(bool, true) },
  },
  map_gpa_range: {
    summary: 'the guest asks KVM_HC_MAP_GPA_RANGE; the manager converts (gmemkit extension)',
    fields: { vm: req(vm), gpa: req(u64), size: req(u64), to: req(direction), policy: opt(policy, 'retry') },
  },
};

export const ALL_OPS: Readonly<Record<string, OpSpec>> = { ...KERNEL_OPS, ...USERSPACE_OPS };

/** Capability names KVM_CHECK_EXTENSION accepts (the in-place cap's number is per profile). */
const CAP_NAMES: readonly string[] = [...Object.keys(CAPS), 'GUEST_MEMFD_MEMORY_ATTRIBUTES'];

/** Parse one field's value (defaults already applied). Never throws. */
export function parseField(kind: FieldKind, v: unknown): Parsed<unknown> {
  switch (kind.type) {
    case 'size': return parseSize(v, kind.ctype);
    case 'bytes': return parseBytes(v);
    case 'bool': return typeof v === 'boolean' ? { ok: true, value: v } : { ok: false, message: `expected true or false, got ${show(v)}` };
    case 'cap':
      if (typeof v === 'string' && CAP_NAMES.includes(v.replace(/^KVM_CAP_/, ''))) return { ok: true, value: v };
      if (typeof v === 'number' || typeof v === 'bigint') return parseSize(v, 's64');
      return { ok: false, message: `unknown capability ${show(v)}; allowed: ${CAP_NAMES.join(', ')} or a number` };
    case 'flags': return parseFlags(v, kind.table, kind.what, kind.ctype);
    case 'named': return parseNamed(v, kind.table, kind.what, kind.ctype);
    case 'choice': return typeof v === 'string' && Object.hasOwn(kind.table, v)
      ? { ok: true, value: BigInt(kind.table[v]!) }
      : { ok: false, message: `unknown ${kind.what} ${show(v)}; allowed: ${Object.keys(kind.table).join(', ')}` };
    case 'handle': {
      // A handle name starts with a letter or '_' (`as:`); a string starting with a digit or sign is a number ("0x1000", "2^40").
      if (typeof v === 'string' && !(kind.raw && /^[+-]?[0-9]/.test(v))) return { ok: true, value: { handle: v } };
      if (kind.raw && (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'string')) {
        const n = parseSize(v, kind.ctype ?? 'int');
        return n.ok ? { ok: true, value: { raw: n.value } } : n;
      }
      if (kind.raw === 'number-or-null' && v === null) return { ok: true, value: { raw: 0n } };
      const also = kind.raw === 'number' ? ' or a number' : kind.raw === 'number-or-null' ? ', a number or null' : '';
      return { ok: false, message: `expected the name of a ${kind.kinds.join('/')} handle${also}, got ${show(v)}` };
    }
  }
}

/** A parsed handle field: a reference to a named handle, or a raw number. */
export type HandleRef = { handle: string } | { raw: bigint };
