// Executing one scenario step on a backend: resolve the step's handles to fds, addresses and
// pin ids, make the call, and say what handle (if any) the result is. One entry per op.
import type { Backend, BResult } from '../backend/backend.js';
import { CAPS, PAGE_SIZE } from '../model/abi.js';
import type { Profile } from '../model/profile.js';
import type { HandleRef } from './ops.js';

export interface MapHandle { readonly addr: number; readonly length: number }
export type HandleValue = number | MapHandle;

/** Resolves handle references; a handle whose creating step failed raises HandleMissing. */
export interface ExecContext {
  readonly backend: Backend;
  readonly profile: Profile;
  num(ref: unknown): number;
  map(ref: unknown): MapHandle;
}

export class HandleMissing extends Error {}

type Args = Readonly<Record<string, unknown>>;
type Exec = (a: Args, c: ExecContext) => { result: BResult<unknown>; handle?: HandleValue };

const big = (v: unknown): bigint => v as bigint;
const int = (v: unknown): number => Number(v as bigint);
const bytesOf = (a: Args): Uint8Array => (a.data ?? a.bytes) as Uint8Array;
const call = (result: BResult<unknown>) => ({ result });
const produce = (result: BResult<number>) => ({ result, ...(result.ok ? { handle: result.value } : {}) });

/** Address of `offset` within a mapping handle. */
const at = (c: ExecContext, a: Args): number => c.map(a.map).addr + int(a.offset ?? 0n);

/** Capability names resolve per profile (the in-place cap moved between versions: §5.4). */
function capNumber(cap: unknown, profile: Profile): bigint {
  if (typeof cap === 'number' || typeof cap === 'bigint') return BigInt(cap);
  const name = String(cap).replace(/^KVM_CAP_/, '');
  if (name === 'GUEST_MEMFD_MEMORY_ATTRIBUTES') return BigInt(profile.gmemAttributesCap ?? 250);
  return BigInt((CAPS as Record<string, number>)[name]!);
}

export const EXEC: Readonly<Record<string, Exec>> = {
  create_vm: (a, c) => produce(c.backend.createVm(big(a.type))),
  check_extension: (a, c) => call(c.backend.checkExtension(capNumber(a.cap, c.profile), a.vm === undefined ? undefined : c.num(a.vm))),
  create_guest_memfd: (a, c) => produce(c.backend.createGuestMemfd(c.num(a.vm), big(a.size), big(a.flags))),
  close: (a, c) => call(c.backend.close(c.num(a.fd))),
  mmap: (a, c) => {
    const r = c.backend.mmap({ fd: a.fd === undefined ? null : c.num(a.fd), offset: big(a.offset), length: big(a.length), prot: big(a.prot), flags: big(a.flags) });
    const length = Math.ceil(int(a.length) / PAGE_SIZE) * PAGE_SIZE;
    return r.ok ? { result: r, handle: { addr: r.value, length } } : { result: r };
  },
  munmap: (a, c) => {
    const m = c.map(a.map);
    const off = int(a.offset ?? 0n);
    return call(c.backend.munmap(m.addr + off, a.length === undefined ? BigInt(m.length - off) : big(a.length)));
  },
  read: (a, c) => call(c.backend.hostRead(at(c, a), int(a.length))),
  write: (a, c) => call(c.backend.hostWrite(at(c, a), bytesOf(a))),
  madvise: (a, c) => {
    const m = c.map(a.map);
    const off = int(a.offset ?? 0n);
    return call(c.backend.madvise(m.addr + off, a.length === undefined ? BigInt(m.length - off) : big(a.length), int(a.advice)));
  },
  fallocate: (a, c) => call(c.backend.fallocate(c.num(a.fd), big(a.mode), big(a.offset), big(a.length))),
  ftruncate: (a, c) => call(c.backend.ftruncate(c.num(a.fd), big(a.length))),
  fd_read: (a, c) => call(c.backend.fdRead(c.num(a.fd), a.length === undefined ? undefined : big(a.length))),
  fd_write: (a, c) => call(c.backend.fdWrite(c.num(a.fd), bytesOf(a))),
  pread: (a, c) => call(c.backend.pread(c.num(a.fd), big(a.length), big(a.offset))),
  pwrite: (a, c) => call(c.backend.pwrite(c.num(a.fd), bytesOf(a), big(a.offset))),
  lseek: (a, c) => call(c.backend.lseek(c.num(a.fd), big(a.offset), int(a.whence))),
  set_user_memory_region2: (a, c) => {
    const ua = a.userspace_addr as HandleRef;
    const uaddr = 'raw' in ua ? ua.raw : BigInt(c.map(ua).addr);
    const flags = a.flags ?? (a.guest_memfd !== undefined ? 4n : 0n); // KVM_MEM_GUEST_MEMFD when a guest_memfd is named
    return call(c.backend.setUserMemoryRegion2(c.num(a.vm), {
      slot: big(a.slot), flags: big(flags), guest_phys_addr: big(a.guest_phys_addr), memory_size: big(a.memory_size),
      userspace_addr: uaddr, guest_memfd: a.guest_memfd === undefined ? -1 : c.num(a.guest_memfd), guest_memfd_offset: big(a.guest_memfd_offset),
    }));
  },
  set_memory_attributes: (a, c) => call(c.backend.setMemoryAttributes(c.num(a.vm), {
    address: big(a.address), size: big(a.size), attributes: big(a.attributes), flags: big(a.flags),
  })),
  set_memory_attributes2: (a, c) => call(c.backend.setMemoryAttributes2(c.num(a.fd), {
    offset: big(a.offset), size: big(a.size), attributes: big(a.attributes), flags: big(a.flags),
    ...(a.reserved === undefined ? {} : { reserved: [big(a.reserved)] }),
  })),
  guest_read: (a, c) => call(c.backend.guestRead(c.num(a.vm), big(a.gpa), int(a.length), a.private as boolean | undefined)),
  guest_write: (a, c) => call(c.backend.guestWrite(c.num(a.vm), big(a.gpa), bytesOf(a), a.private as boolean | undefined)),
  pin_user_pages: (a, c) => produce(c.backend.pinUserPages(at(c, a), int(a.length), a.longterm as boolean, a.write as boolean)),
  unpin_user_pages: (a, c) => call(c.backend.unpinUserPages(c.num(a.pin))),
  pin_read: (a, c) => call(c.backend.pinAccess(c.num(a.pin), int(a.offset), int(a.length))),
  pin_write: (a, c) => call(c.backend.pinAccess(c.num(a.pin), int(a.offset), bytesOf(a).length, bytesOf(a))),
  vmsplice: (a, c) => produce(c.backend.vmsplice(at(c, a), int(a.length))),
  pipe_read: (a, c) => call(c.backend.fdRead(c.num(a.pipe), a.length === undefined ? undefined : big(a.length))),
};
