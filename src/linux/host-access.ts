// Host loads and stores through the backend's mappings without ever letting Node take a
// SIGBUS or SIGSEGV: each range is first checked against the mapping table (no mapping or no
// permission = SIGSEGV, as the model says), then probed with madvise(MADV_POPULATE_READ/WRITE),
// whose answers were measured here: EFAULT where a touch would raise SIGBUS (private gmem,
// past EOF; kernel-probe §3), ENOMEM for no VMA and EINVAL for a missing permission (both
// SIGSEGV). Only after a successful probe are the bytes copied through a koffi view.
// It must never dereference a page that has not just been populated. (The probe and the copy
// are not atomic: another process punching the page in between could still raise SIGBUS.)
import { errnoName, MADV, PAGE_SIZE, PROT } from '../model/abi.js';
import { fail, ok, OK, signal, type AccessResult, type ErrnoFailure, type SignalFailure } from '../model/result.js';
import * as libc from './libc.js';
import { pageCeil, pageFloor, type MappingTable } from './mappings.js';

const EFAULT = 14, ENOMEM = 12, EINVAL = 22, EHWPOISON = 133;
const hex = (n: number): string => `0x${n.toString(16)}`;

/** The first page of [addr, addr+length) this backend has not mapped with the needed permission. */
function firstUnmapped(table: MappingTable, addr: number, length: number, write: boolean): { at: number; why: string } | null {
  const need = Number(write ? PROT.WRITE : PROT.READ);
  for (let page = pageFloor(addr); page < addr + length; page += PAGE_SIZE) {
    const m = table.find(page);
    const at = Math.max(addr, page);
    if (!m) return { at, why: `no mapping at ${hex(at)}` };
    if ((m.prot & need) === 0) return { at, why: `mapping is not ${write ? 'writable' : 'readable'}` };
  }
  return null;
}

/** madvise(POPULATE) of [lo, hi) page by page, to find the first page the kernel refuses. */
function firstRefused(lo: number, hi: number, advice: number): { page: number; errno: number } | null {
  for (let page = lo; page < hi; page += PAGE_SIZE) {
    const r = libc.madvise(page, BigInt(PAGE_SIZE), advice);
    if (!r.ok) return { page, errno: r.errno };
  }
  return null;
}

type Refusal = SignalFailure | ErrnoFailure;

/**
 * Probe [addr, addr+length) for a load or store. Returns null when every page is faultable,
 * else the refusal and how many bytes from `addr` lie before the refused page (a store like
 * memset writes those before it faults; kernel-probe §3, test_fault_overflow).
 */
function probe(table: MappingTable, addr: number, length: number, write: boolean): { refusal: Refusal; good: number } | null {
  const hole = firstUnmapped(table, addr, length, write);
  const lo = pageFloor(addr);
  const hi = hole ? pageFloor(hole.at) : pageCeil(addr + length);
  const advice = write ? MADV.POPULATE_WRITE : MADV.POPULATE_READ;
  if (hi > lo && !libc.madvise(lo, BigInt(hi - lo), advice).ok) {
    const bad = firstRefused(lo, hi, advice);
    if (bad) {
      const at = Math.max(addr, bad.page);
      const what = `madvise(MADV_POPULATE_${write ? 'WRITE' : 'READ'}) at ${hex(bad.page)}`;
      const name = errnoName(bad.errno);
      const refusal = bad.errno === EFAULT || bad.errno === EHWPOISON
        ? signal('SIGBUS', at, `${what} returned ${name}: a touch would raise SIGBUS`)
        : bad.errno === ENOMEM || bad.errno === EINVAL
          ? signal('SIGSEGV', at, `${what} returned ${name}: no mapping or no permission`)
          : fail(name ?? 'EIO', `${what} failed with errno ${name ?? bad.errno}`);
      return { refusal, good: at - addr };
    }
  }
  return hole ? { refusal: signal('SIGSEGV', hole.at, hole.why), good: hole.at - addr } : null;
}

export function hostRead(table: MappingTable, addr: number, length: number): AccessResult<Uint8Array> {
  if (length <= 0) return ok(new Uint8Array(0));
  const bad = probe(table, addr, length, false);
  if (bad) return bad.refusal;
  return ok(Uint8Array.from(libc.memView(addr, length)));
}

/** A store: the bytes before a refused page are written, as a CPU store loop would have. */
export function hostWrite(table: MappingTable, addr: number, data: Uint8Array): AccessResult<void> {
  if (data.length === 0) return OK;
  const bad = probe(table, addr, data.length, true);
  const n = bad ? bad.good : data.length;
  if (n > 0) libc.memView(addr, n).set(data.subarray(0, n));
  return bad ? bad.refusal : OK;
}
