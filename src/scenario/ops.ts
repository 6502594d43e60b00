// The scenario ops: for each op of scenario-language.md §2, its fields (kind, required or default)
// and the kind of handle its `as:` names. Field schemas are zod types built from these specs,
// so every op is validated the same way and the table is the single list of what exists.
import { z } from 'zod';
import { CAPS, type FlagTable } from '../model/abi.js';
import { POLICIES } from '../userspace/policies.js';
import { parseBytes, parseFlags, parseNamed, parseSize, TABLES, show, type Parsed } from './values.js';

export type HandleKind = 'vm' | 'gmem' | 'map' | 'pin' | 'pipe' | 'ring' | 'dma' | 'io' | 'vhost' | 'request';
/** Handles that are file descriptors (usable where an `fd` is expected). */
export const FD_KINDS: readonly HandleKind[] = ['vm', 'gmem', 'pipe'];

export type FieldKind =
  | { type: 'size' }
  | { type: 'bool' }
  | { type: 'bytes' }
  /** A capability: a KVM_CAP_ name (prefix optional) or a number. */
  | { type: 'cap' }
  | { type: 'flags'; table: FlagTable; what: string }
  | { type: 'named'; table: Readonly<Record<string, number | bigint>>; what: string }
  /** One of a fixed set of names (no raw numbers). */
  | { type: 'choice'; table: Readonly<Record<string, number>>; what: string }
  /** A handle of one of `kinds`; `raw` also admits a plain number (an fd or address) or null. */
  | { type: 'handle'; kinds: readonly HandleKind[]; raw?: 'number' | 'number-or-null' };

export interface FieldSpec { readonly kind: FieldKind; readonly required?: boolean; readonly default?: unknown }
export interface OpSpec {
  readonly fields: Readonly<Record<string, FieldSpec>>;
  /** Kind of handle the result is, when `as:` names it. */
  readonly produces?: HandleKind;
  /** Exactly one of these fields must be present (e.g. data | bytes). */
  readonly oneOf?: readonly string[];
  readonly summary: string;
}

/** Policy names map to their index in POLICIES. */
const POLICY_TABLE: Readonly<Record<string, number>> = Object.fromEntries(POLICIES.map((p, i) => [p.name, i]));

const size: FieldKind = { type: 'size' };
const bool: FieldKind = { type: 'bool' };
const bytes: FieldKind = { type: 'bytes' };
const fd: FieldKind = { type: 'handle', kinds: FD_KINDS, raw: 'number' };
const vm: FieldKind = { type: 'handle', kinds: FD_KINDS, raw: 'number' };
const map: FieldKind = { type: 'handle', kinds: ['map'] };
const req = (kind: FieldKind): FieldSpec => ({ kind, required: true });
const opt = (kind: FieldKind, dflt?: unknown): FieldSpec => (dflt === undefined ? { kind } : { kind, default: dflt });
const flags = (table: FlagTable, what: string): FieldKind => ({ type: 'flags', table, what });
const data = { data: opt(bytes), bytes: opt(bytes) };

/** The kernel interface (scenario-language.md §2.1), plus gmemkit extensions. */
export const KERNEL_OPS: Readonly<Record<string, OpSpec>> = {
  create_vm: { summary: 'KVM_CREATE_VM', produces: 'vm', fields: { type: opt({ type: 'named', table: TABLES.vmTypes, what: 'VM type' }, 'default') } },
  check_extension: { summary: 'KVM_CHECK_EXTENSION', fields: { cap: req({ type: 'cap' }), vm: opt(vm) } },
  create_guest_memfd: { summary: 'KVM_CREATE_GUEST_MEMFD', produces: 'gmem', fields: { vm: req(vm), size: req(size), flags: opt(flags(TABLES.gmemFlags, 'guest_memfd flag'), []) } },
  close: { summary: 'close(2)', fields: { fd: req(fd) } },
  mmap: {
    summary: 'mmap(2)', produces: 'map',
    fields: {
      fd: opt(fd), offset: opt(size, 0), length: req(size),
      prot: opt(flags(TABLES.prot, 'prot'), ['READ', 'WRITE']), flags: opt(flags(TABLES.mapFlags, 'mmap flag'), ['SHARED']),
    },
  },
  munmap: { summary: 'munmap(2)', fields: { map: req(map), offset: opt(size, 0), length: opt(size) } },
  read: { summary: 'host load through a mapping', fields: { map: req(map), offset: opt(size, 0), length: req(size) } },
  write: { summary: 'host store through a mapping', oneOf: ['data', 'bytes'], fields: { map: req(map), offset: opt(size, 0), ...data } },
  madvise: { summary: 'madvise(2)', fields: { map: req(map), offset: opt(size, 0), length: opt(size), advice: req({ type: 'named', table: TABLES.madvise, what: 'advice' }) } },
  fallocate: { summary: 'fallocate(2)', fields: { fd: req(fd), mode: req(flags(TABLES.falloc, 'fallocate mode')), offset: req(size), length: req(size) } },
  ftruncate: { summary: 'ftruncate(2)', fields: { fd: req(fd), length: req(size) } },
  fd_read: { summary: 'read(2) on the fd', fields: { fd: req(fd), length: opt(size) } },
  fd_write: { summary: 'write(2) on the fd', oneOf: ['data', 'bytes'], fields: { fd: req(fd), ...data } },
  pread: { summary: 'pread(2)', fields: { fd: req(fd), length: req(size), offset: opt(size, 0) } },
  pwrite: { summary: 'pwrite(2)', oneOf: ['data', 'bytes'], fields: { fd: req(fd), offset: opt(size, 0), ...data } },
  lseek: { summary: 'lseek(2)', fields: { fd: req(fd), offset: opt(size, 0), whence: opt({ type: 'named', table: TABLES.whence, what: 'whence' }, 'SET') } },
  set_user_memory_region2: {
    summary: 'KVM_SET_USER_MEMORY_REGION2',
    fields: {
      vm: req(vm), slot: req(size), flags: opt(flags(TABLES.memslotFlags, 'memslot flag')),
      guest_phys_addr: req(size), memory_size: req(size),
      userspace_addr: opt({ type: 'handle', kinds: ['map'], raw: 'number-or-null' }, null),
      guest_memfd: opt({ type: 'handle', kinds: FD_KINDS, raw: 'number' }), guest_memfd_offset: opt(size, 0),
    },
  },
  set_memory_attributes: {
    summary: 'KVM_SET_MEMORY_ATTRIBUTES (VM ioctl)',
    fields: { vm: req(vm), address: req(size), size: req(size), attributes: req(flags(TABLES.attributes, 'attribute')), flags: opt(size, 0) },
  },
  set_memory_attributes2: {
    summary: 'KVM_SET_MEMORY_ATTRIBUTES2 (guest_memfd ioctl)',
    fields: {
      fd: req(fd), offset: req(size), size: req(size), attributes: req(flags(TABLES.attributes, 'attribute')),
      flags: opt(size, 0), reserved: opt({ type: 'flags', table: {}, what: 'reserved value' }),
    },
  },
  guest_read: { summary: 'vCPU load', fields: { vm: req(vm), gpa: req(size), length: req(size), private: opt(bool), on_fault: opt({ type: 'choice', table: POLICY_TABLE, what: 'policy' }) } },
  guest_write: { summary: 'vCPU store', oneOf: ['data', 'bytes'], fields: { vm: req(vm), gpa: req(size), ...data, private: opt(bool), on_fault: opt({ type: 'choice', table: POLICY_TABLE, what: 'policy' }) } },
  pin_user_pages: {
    summary: 'pin_user_pages(FOLL_WRITE [| FOLL_LONGTERM])', produces: 'pin',
    fields: { map: req(map), offset: opt(size, 0), length: req(size), longterm: opt(bool, false), write: opt(bool, true) },
  },
  unpin_user_pages: { summary: 'unpin_user_pages()', fields: { pin: req({ type: 'handle', kinds: ['pin'] }) } },
  pin_read: { summary: 'device read through a pin (gmemkit extension)', fields: { pin: req({ type: 'handle', kinds: ['pin'] }), offset: opt(size, 0), length: req(size) } },
  pin_write: { summary: 'device write through a pin (gmemkit extension)', oneOf: ['data', 'bytes'], fields: { pin: req({ type: 'handle', kinds: ['pin'] }), offset: opt(size, 0), ...data } },
};

const policy: FieldKind = { type: 'choice', table: POLICY_TABLE, what: 'policy' };
const direction: FieldKind = { type: 'choice', table: { private: 1, shared: 0 }, what: 'direction' };

/** The userspace subsystems that hold pins, and the conversion manager (scenario-language.md §2.2, §2.3). */
export const USERSPACE_OPS: Readonly<Record<string, OpSpec>> = {
  io_uring_register_buffers: { summary: 'IORING_REGISTER_BUFFERS (long-term pin)', produces: 'ring', fields: { map: req(map), offset: opt(size, 0), length: req(size) } },
  io_uring_unregister_buffers: { summary: 'IORING_UNREGISTER_BUFFERS', fields: { ring: req({ type: 'handle', kinds: ['ring'] }) } },
  vfio_dma_map: { summary: 'VFIO_IOMMU_MAP_DMA (long-term pin + IOMMU mapping)', produces: 'dma', fields: { map: req(map), offset: opt(size, 0), length: req(size), iova: req(size) } },
  vfio_dma_unmap: { summary: 'VFIO_IOMMU_UNMAP_DMA', fields: { dma: req({ type: 'handle', kinds: ['dma'] }) } },
  dma_read: { summary: 'the device reads through its DMA mapping or fixed buffer (gmemkit extension)', fields: { dma: req({ type: 'handle', kinds: ['dma', 'ring'] }), offset: opt(size, 0), length: req(size) } },
  dma_write: { summary: 'the device writes through its DMA mapping or fixed buffer (gmemkit extension)', oneOf: ['data', 'bytes'], fields: { dma: req({ type: 'handle', kinds: ['dma', 'ring'] }), offset: opt(size, 0), ...data } },
  odirect_read: { summary: 'O_DIRECT read into the buffer, in flight until io_complete', produces: 'io', fields: { map: req(map), offset: opt(size, 0), length: req(size), data: opt(bytes), bytes: opt(bytes) } },
  odirect_write: { summary: 'O_DIRECT write from the buffer, in flight until io_complete', produces: 'io', fields: { map: req(map), offset: opt(size, 0), length: req(size) } },
  io_complete: { summary: 'the device completes an I/O (returns what a write sent)', fields: { io: req({ type: 'handle', kinds: ['io'] }) } },
  vmsplice: { summary: 'pipe2() + vmsplice()', produces: 'pipe', fields: { map: req(map), offset: opt(size, 0), length: req(size) } },
  pipe_read: { summary: 'read(2) from the pipe', fields: { pipe: req({ type: 'handle', kinds: ['pipe'] }), length: opt(size) } },
  vhost_user_set_mem_table: { summary: 'a vhost-user backend maps guest RAM (gmemkit extension)', produces: 'vhost', fields: { map: req(map), offset: opt(size, 0), length: opt(size) } },
  vhost_user_io: { summary: 'the vhost-user backend pins a range for I/O (gmemkit extension)', produces: 'io', fields: { vhost: req({ type: 'handle', kinds: ['vhost'] }), offset: opt(size, 0), length: req(size) } },
  convert: {
    summary: 'the conversion manager converts guest_memfd bytes',
    fields: { fd: req({ type: 'handle', kinds: ['gmem'], raw: 'number' }), offset: req(size), size: req(size), to: req(direction), policy: opt(policy, 'retry') },
  },
  request_start: {
    summary: 'a guest request the manager will serve step by step (gmemkit extension; see manager_step)', produces: 'request',
    fields: { vm: req(vm), gpa: req(size), size: req(size), to: req(direction), policy: opt(policy, 'retry'), max_retries: opt(size) },
  },
  manager_step: {
    summary: 'one action of the conversion manager; race_* runs a GUP-fast pin inside the conversion ioctl (model only)', produces: 'pin',
    fields: { request: req({ type: 'handle', kinds: ['request'] }), race_map: opt(map), race_offset: opt(size), race_longterm: opt(bool, true) },
  },
  map_gpa_range: {
    summary: 'the guest asks KVM_HC_MAP_GPA_RANGE; the manager converts (gmemkit extension)',
    fields: { vm: req(vm), gpa: req(size), size: req(size), to: req(direction), policy: opt(policy, 'retry') },
  },
};

export const ALL_OPS: Readonly<Record<string, OpSpec>> = { ...KERNEL_OPS, ...USERSPACE_OPS };

function fieldSchema(kind: FieldKind): z.ZodType<unknown> {
  const via = <T>(parse: (v: unknown) => Parsed<T>) =>
    z.unknown().transform((v, ctx) => {
      const r = parse(v);
      if (r.ok) return r.value;
      ctx.addIssue({ code: 'custom', message: r.message });
      return z.NEVER;
    });
  switch (kind.type) {
    case 'size': return via(parseSize);
    case 'bytes': return via(parseBytes);
    case 'bool': return via((v) => (typeof v === 'boolean' ? { ok: true, value: v } : { ok: false, message: `expected true or false, got ${show(v)}` }));
    case 'cap': return via((v): Parsed<unknown> => {
      if (typeof v === 'number' || typeof v === 'bigint') return { ok: true, value: BigInt(v) };
      const names = [...Object.keys(CAPS), 'GUEST_MEMFD_MEMORY_ATTRIBUTES'];
      if (typeof v === 'string' && names.includes(v.replace(/^KVM_CAP_/, ''))) return { ok: true, value: v };
      return { ok: false, message: `unknown capability ${show(v)}; allowed: ${names.join(', ')} or a number` };
    });
    case 'flags': return via((v) => parseFlags(v, kind.table, kind.what));
    case 'named': return via((v) => parseNamed(v, kind.table, kind.what));
    case 'choice': return via((v): Parsed<bigint> => (typeof v === 'string' && v in kind.table
      ? { ok: true, value: BigInt(kind.table[v]!) }
      : { ok: false, message: `unknown ${kind.what} ${show(v)}; allowed: ${Object.keys(kind.table).join(', ')}` }));
    case 'handle': return via((v): Parsed<HandleRef> => {
      if (typeof v === 'string') return { ok: true, value: { handle: v } };
      if (kind.raw && (typeof v === 'number' || typeof v === 'bigint')) return { ok: true, value: { raw: BigInt(v) } };
      if (kind.raw === 'number-or-null' && v === null) return { ok: true, value: { raw: 0n } };
      const also = kind.raw === 'number' ? ' or a number' : kind.raw === 'number-or-null' ? ', a number or null' : '';
      return { ok: false, message: `expected the name of a ${kind.kinds.join('/')} handle${also}, got ${show(v)}` };
    });
  }
}

/** The zod schema of an op's fields (op, as and expect are handled by the loader). */
export function opSchema(spec: OpSpec): z.ZodType<Record<string, unknown>> {
  const shape: Record<string, z.ZodType<unknown>> = {};
  // Presence of required fields is checked by the loader, which names them; here every field
  // is optional so a missing one is reported once.
  for (const [name, f] of Object.entries(spec.fields)) shape[name] = fieldSchema(f.kind).optional();
  return z.strictObject(shape) as unknown as z.ZodType<Record<string, unknown>>;
}

/** A parsed handle field: a reference to a named handle, or a raw number. */
export type HandleRef = { handle: string } | { raw: bigint };
