// The per-op emitter table of `gmemkit export c`: for each scenario op, the C support blocks
// it needs and the C call that performs it (as src/scenario/exec.ts does on a backend), or the
// reason it is not exported (then the step is a TAP `# SKIP` with that reason). A new op gets
// one entry here; an op without an entry is refused by the exporter with a clear message.
import type { Profile } from '../model/profile.js';
import { CAPS } from '../model/abi.js';
import { hugepageFlagBits, type HandleRef } from '../scenario/ops.js';
import { C_FLAGS, cAdvice, cBytes, cNum, cVmType, cWhence } from './c-values.js';

type Args = Readonly<Record<string, unknown>>;

export interface EmitContext {
  /** A handle field as a C argument: `&name`, `RAW(n)`, or NULL when absent. */
  ref(v: unknown): string;
  readonly profile: Profile;
}

export type OpEmitter =
  | { readonly needs: readonly string[]; readonly call: (a: Args, x: EmitContext) => string }
  /** Not exported: the step skips with `reason` (after the handles in `uses` are checked). */
  | { readonly reason: string | ((a: Args) => string); readonly uses: readonly string[] };

const big = (v: unknown): bigint => v as bigint;
const n = (v: unknown): string => cNum(big(v));
const data = (a: Args): string => {
  const b = (a.data ?? a.bytes) as Uint8Array;
  return `${cBytes(b)}, ${b.length}`;
};
const len = (a: Args, field = 'length'): string => (a[field] === undefined ? '-1' : n(a[field]));
/** munmap/madvise without a length cover the rest of the mapping from the offset. */
const restOf = (a: Args, x: EmitContext): string => (a.length === undefined ? `${x.ref(a.map).replace(/^&/, '')}.length - ${n(a.offset ?? 0n)}` : n(a.length));

function cap(v: unknown, profile: Profile): string {
  if (typeof v === 'bigint') return cNum(v);
  const name = String(v).replace(/^KVM_CAP_/, '');
  if (name === 'GUEST_MEMFD_MEMORY_ATTRIBUTES') {
    return profile.gmemAttributesCap === undefined ? '250 /* KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES: no number in this profile */'
      : `${profile.gmemAttributesCap} /* KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES in ${profile.name} */`;
  }
  return name in CAPS ? `KVM_CAP_${name}` : String(v);
}

const MANAGER = 'the conversion manager is gmemkit\'s userspace half (src/userspace/manager.ts), not a system call; export does not translate it to C';
const MODEL_ONLY = (op: string, what: string) => `${op} reads gmemkit's model: no kernel interface reports ${what} to userspace, so export does not translate it to C`;
const kernel = (op: string, call: (a: Args, x: EmitContext) => string, more: readonly string[] = []): OpEmitter => ({ needs: [`op:${op}`, ...more], call });

export const C_OPS: Readonly<Record<string, OpEmitter>> = {
  create_vm: kernel('create_vm', (a) => `create_vm(${cVmType(big(a.type))})`),
  check_extension: kernel('check_extension', (a, x) => `check_extension(${cap(a.cap, x.profile)}, ${x.ref(a.vm)})`),
  create_guest_memfd: kernel('create_guest_memfd', (a, x) => `create_guest_memfd(${x.ref(a.vm)}, ${n(a.size)}, ${C_FLAGS.gmem(big(a.flags) | hugepageFlagBits(a))})`),
  close: kernel('close', (a, x) => `close_fd(${x.ref(a.fd)})`),
  mmap: kernel('mmap', (a, x) => `map_memory(${x.ref(a.fd)}, ${n(a.offset)}, ${n(a.length)}, ${C_FLAGS.prot(big(a.prot))}, ${C_FLAGS.mapFlags(big(a.flags))}, ${x.ref(a.addr)}, ${n(a.addr_offset ?? 0n)})`),
  munmap: kernel('munmap', (a, x) => `unmap(${x.ref(a.map)}, ${n(a.offset ?? 0n)}, ${restOf(a, x)})`),
  read: { needs: ['host'], call: (a, x) => `host_read(${x.ref(a.map)}, ${n(a.offset ?? 0n)}, ${n(a.length)})` },
  write: {
    needs: ['host'],
    call: (a, x) => (a.fill === undefined ? `host_write(${x.ref(a.map)}, ${n(a.offset ?? 0n)}, ${data(a)})`
      : `host_fill(${x.ref(a.map)}, ${n(a.offset ?? 0n)}, 0x${big(a.fill).toString(16).padStart(2, '0')}, ${n(a.length)})`),
  },
  madvise: kernel('madvise', (a, x) => `advise(${x.ref(a.map)}, ${n(a.offset ?? 0n)}, ${restOf(a, x)}, ${cAdvice(big(a.advice))})`),
  fallocate: kernel('fallocate', (a, x) => `falloc(${x.ref(a.fd)}, ${C_FLAGS.falloc(big(a.mode))}, ${n(a.offset)}, ${n(a.length)})`),
  ftruncate: kernel('ftruncate', (a, x) => `truncate_fd(${x.ref(a.fd)}, ${n(a.length)})`),
  fd_read: kernel('fd_read', (a, x) => `fd_read(${x.ref(a.fd)}, ${len(a)})`, ['readlimit']),
  fd_write: kernel('fd_write', (a, x) => `fd_write(${x.ref(a.fd)}, ${data(a)})`),
  pread: kernel('pread', (a, x) => `pread_fd(${x.ref(a.fd)}, ${n(a.length)}, ${n(a.offset)})`, ['readlimit']),
  pwrite: kernel('pwrite', (a, x) => `pwrite_fd(${x.ref(a.fd)}, ${data(a)}, ${n(a.offset)})`),
  fstat: kernel('fstat', (a, x) => `stat_fd(${x.ref(a.fd)})`),
  lseek: kernel('lseek', (a, x) => `seek(${x.ref(a.fd)}, ${n(a.offset)}, ${cWhence(big(a.whence))})`),
  set_user_memory_region2: kernel('set_user_memory_region2', (a, x) => {
    const flags = a.flags ?? (a.guest_memfd !== undefined ? 4n : 0n); // KVM_MEM_GUEST_MEMFD when a guest_memfd is named
    const ua = a.userspace_addr as HandleRef;
    const uaddr = 'raw' in ua ? (ua.raw === 0n ? 'NULL' : `RAW(${cNum(ua.raw)})`) : x.ref(ua);
    return `set_user_memory_region2(${x.ref(a.vm)}, ${n(a.slot)}, ${C_FLAGS.memslot(big(flags))}, ${n(a.guest_phys_addr)}, ${n(a.memory_size)}, ${uaddr}, ${x.ref(a.guest_memfd)}, ${n(a.guest_memfd_offset)})`;
  }, ['useraddr']),
  set_memory_attributes: kernel('set_memory_attributes', (a, x) => `set_memory_attributes(${x.ref(a.vm)}, ${n(a.address)}, ${n(a.size)}, ${C_FLAGS.attributes(big(a.attributes))}, ${n(a.flags)})`),
  set_memory_attributes2: kernel('set_memory_attributes2', (a, x) => `set_memory_attributes2(${x.ref(a.fd)}, ${n(a.offset)}, ${n(a.size)}, ${C_FLAGS.attributes(big(a.attributes))}, ${n(a.flags)}, ${a.reserved === undefined ? '0' : n(a.reserved)})`),
  guest_read: { needs: ['guest'], call: (a, x) => `guest_read(${x.ref(a.vm)}, ${n(a.gpa)}, ${n(a.length)})` },
  guest_write: { needs: ['guest'], call: (a, x) => `guest_write(${x.ref(a.vm)}, ${n(a.gpa)}, ${data(a)})` },
  pin_user_pages: { needs: ['pins'], call: (a, x) => `pin_user_pages(${x.ref(a.map)}, ${n(a.offset ?? 0n)}, ${n(a.length)}, ${a.longterm}, ${a.write})` },
  unpin_user_pages: { needs: ['pins'], call: (a, x) => `unpin_user_pages(${x.ref(a.pin)})` },
  pin_read: { needs: ['pins'], call: (a, x) => `pin_read(${x.ref(a.pin)}, ${n(a.offset ?? 0n)}, ${n(a.length)})` },
  pin_write: { needs: ['pins'], call: (a, x) => `pin_write(${x.ref(a.pin)}, ${n(a.offset ?? 0n)}, ${data(a)})` },
  // ------------------------------------------------ the userspace half: what it asks of the kernel
  io_uring_register_buffers: { needs: ['pins'], call: (a, x) => `pin_user_pages(${x.ref(a.map)}, ${n(a.offset ?? 0n)}, ${n(a.length)}, true, true)` },
  io_uring_unregister_buffers: { needs: ['holders'], call: (a, x) => `release_holder(${x.ref(a.ring)})` },
  // No VFIO device here: the DMA mapping takes its long-term pin as the linux backend does (io_uring).
  vfio_dma_map: { needs: ['pins'], call: (a, x) => `pin_user_pages(${x.ref(a.map)}, ${n(a.offset ?? 0n)}, ${n(a.length)}, true, true)` },
  vfio_dma_unmap: { needs: ['holders'], call: (a, x) => `release_holder(${x.ref(a.dma)})` },
  dma_read: { needs: ['holders'], call: (a, x) => `holder_dma(${x.ref(a.dma)}, ${n(a.offset ?? 0n)}, ${n(a.length)}, NULL)` },
  dma_write: { needs: ['holders'], call: (a, x) => { const b = (a.data ?? a.bytes) as Uint8Array; return `holder_dma(${x.ref(a.dma)}, ${n(a.offset ?? 0n)}, ${b.length}, ${cBytes(b)})`; } },
  odirect_read: { needs: ['odirect'], call: (a, x) => `odirect(${x.ref(a.map)}, ${n(a.offset ?? 0n)}, ${n(a.length)}, ${((a.data ?? a.bytes) as Uint8Array | undefined)?.length ?? 0})` },
  odirect_write: { needs: ['odirect'], call: (a, x) => `odirect(${x.ref(a.map)}, ${n(a.offset ?? 0n)}, ${n(a.length)}, 0)` },
  io_complete: { needs: ['odirect'], call: (a, x) => `io_complete(${x.ref(a.io)})` },
  vmsplice: { needs: ['pipes'], call: (a, x) => `splice_pages(${x.ref(a.map)}, ${n(a.offset ?? 0n)}, ${n(a.length)})` },
  pipe_read: kernel('fd_read', (a, x) => `fd_read(${x.ref(a.pipe)}, ${len(a)})`, ['readlimit']),
  vhost_user_set_mem_table: { reason: 'a vhost-user backend (its own mapping of the guest_memfd and its I/O pins) is gmemkit\'s userspace half; export does not translate it to C', uses: ['map'] },
  vhost_user_io: { reason: 'a vhost-user backend (its own mapping of the guest_memfd and its I/O pins) is gmemkit\'s userspace half; export does not translate it to C', uses: ['vhost'] },
  folio_order: { reason: MODEL_ONLY('folio_order', 'the order of a guest_memfd folio'), uses: ['fd'] },
  spte_order: { reason: MODEL_ONLY('spte_order', 'the level of a guest mapping'), uses: ['vm'] },
  convert: { reason: MANAGER, uses: ['fd'] },
  map_gpa_range: { reason: MANAGER, uses: ['vm'] },
  request_start: { reason: MANAGER, uses: ['vm'] },
  manager_step: {
    reason: (a) => (a.race_map === undefined ? MANAGER
      : `${MANAGER}; and a GUP-fast pin raced inside the conversion ioctl (race_map) exists only in the model checker: no C program can place it there deterministically`),
    uses: ['request', 'race_map'],
  },
};

/** Guest accesses that serve a memory-fault exit (`on_fault`) run the conversion manager. */
export const ON_FAULT_REASON = `on_fault: serving a memory-fault exit by converting needs ${MANAGER}`;
