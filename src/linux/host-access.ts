// Host loads and stores through the backend's mappings without ever letting Node take a
// SIGBUS or SIGSEGV: each range is first checked against the mapping table, range-wise and in
// exact (bigint) arithmetic, then the mapped part is probed with madvise(MADV_POPULATE_READ/
// WRITE), whose answers were measured here: EFAULT where a touch would raise SIGBUS (private
// gmem, past EOF; kernel-probe §3), ENOMEM for no VMA and EINVAL for a missing permission (both
// SIGSEGV). A page past the mapped part is asked of the kernel too when it lies at or above
// TASK_SIZE_MAX (no process memory can be there); below it, the SIGSEGV comes from the table and
// is marked `guarded`. Only after a successful probe are the bytes copied through a koffi view.
// A load larger than MAX_BUFFERED_ACCESS whose first MAX_BUFFERED_ACCESS bytes are all
// faultable is refused as unsupported (nothing is allocated for it).
// It must never dereference a page that has not just been populated. (The probe and the copy
// are not atomic: another process punching the page in between could still raise SIGBUS.)
import { errnoName, LIMITS, MADV, PAGE_SIZE, PROT } from '../model/abi.js';
import { fail, ok, OK, signal, type ErrnoFailure, type Ok, type SignalFailure } from '../model/result.js';
import { MAX_BUFFERED_ACCESS, unsupported, type Guarded, type Unsupported } from '../backend/backend.js';
import { guarded } from './errors.js';
import * as libc from './libc.js';
import { pageCeil, pageFloor, type MappingTable } from './mappings.js';

const EFAULT = 14, ENOMEM = 12, EINVAL = 22, EHWPOISON = 133;
const PAGE = BigInt(PAGE_SIZE);
const TWO_64 = 1n << 64n;
const MAX = BigInt(MAX_BUFFERED_ACCESS);
const hex = (n: bigint): string => `0x${n.toString(16)}`;

type Refusal = ((SignalFailure | ErrnoFailure) & Guarded) | Unsupported;
export type HostResult<T> = (Ok<T> & Guarded) | Refusal;

/** The kernel's answer to madvise(POPULATE) of one page as the signal a touch would raise. */
function classify(page: bigint, errno: number, at: bigint, write: boolean): Refusal {
  const what = `madvise(MADV_POPULATE_${write ? 'WRITE' : 'READ'}) at ${hex(page)}`;
  const name = errnoName(errno);
  if (errno === EFAULT || errno === EHWPOISON) return signal('SIGBUS', Number(at), `${what} returned ${name}: a touch would raise SIGBUS`);
  if (errno === ENOMEM || errno === EINVAL) return signal('SIGSEGV', Number(at), `${what} returned ${name}: no mapping or no permission`);
  const why = `${what} failed with errno ${name ?? errno}, which says nothing about what a touch would do`;
  return name ? guarded(fail(name, why), why) : unsupported(why);
}

/**
 * The first page of [lo, hi) the kernel refuses to populate, found by bisection (populating is
 * sequential, so "some page of [lo, x) is refused" is monotone in x); null when none is.
 */
function firstRefused(lo: bigint, hi: bigint, advice: number): { page: bigint; errno: number } | null {
  const whole = libc.madvise(lo, hi - lo, advice);
  if (whole.ok) return null;
  let good = lo; // every page below is accepted
  let bad = hi; // some page below is refused
  let errno = whole.errno;
  while (bad - good > PAGE) {
    const mid = pageFloor(good + (bad - good) / 2n);
    const r = libc.madvise(good, mid - good, advice);
    if (r.ok) good = mid;
    else {
      bad = mid;
      errno = r.errno;
    }
  }
  const last = libc.madvise(good, PAGE, advice);
  return { page: good, errno: last.ok ? errno : last.errno };
}

/**
 * Probe [addr, addr+length) for a load or store. Returns null when every byte is faultable,
 * else the refusal and how many bytes from `addr` lie before the refused page (a store like
 * memset writes those before it faults; kernel-probe §3, test_fault_overflow).
 */
function probe(table: MappingTable, addr: bigint, length: bigint, write: boolean): { refusal: Refusal; good: bigint } | null {
  const end = addr + length;
  const gap = table.firstGap(addr, end, Number(write ? PROT.WRITE : PROT.READ));
  const advice = write ? MADV.POPULATE_WRITE : MADV.POPULATE_READ;
  const lo = pageFloor(addr);
  // The pages before the gap (its own page is not this backend's, or lacks the permission).
  const hi = gap ? pageFloor(gap.at) : pageCeil(end);
  // A load never needs more than its first MAX bytes probed: beyond them it is refused anyway.
  const limit = write ? hi : pageCeil(addr + MAX);
  const probeHi = hi < limit ? hi : limit;
  if (probeHi > lo) {
    const bad = firstRefused(lo, probeHi, advice);
    if (bad) {
      const at = addr > bad.page ? addr : bad.page;
      return { refusal: classify(bad.page, bad.errno, at, write), good: at - addr };
    }
  }
  if (gap && (write || gap.at - addr <= MAX)) {
    const page = pageFloor(gap.at);
    if (gap.why === 'unmapped' && page >= LIMITS.taskSizeMax && page < TWO_64) {
      // No mapping of any process lies at or above TASK_SIZE_MAX: the kernel can be asked
      // (an address past 2^64 cannot even be passed to it).
      const r = libc.madvise(page, PAGE, advice);
      if (!r.ok) return { refusal: classify(page, r.errno, gap.at, write), good: gap.at - addr };
    }
    const why = gap.why === 'unmapped' ? `no mapping of this backend at ${hex(gap.at)}` : `mapping at ${hex(gap.at)} is not ${write ? 'writable' : 'readable'}`;
    return { refusal: guarded(signal('SIGSEGV', Number(gap.at), why), `${why} (the backend's mapping table)`), good: gap.at - addr };
  }
  if (!write && length > MAX) {
    return {
      refusal: unsupported(`a load of ${length} bytes: the first ${MAX_BUFFERED_ACCESS} bytes are faultable, and gmemkit buffers at most MAX_BUFFERED_ACCESS (${MAX_BUFFERED_ACCESS} bytes)`),
      good: 0n,
    };
  }
  return null;
}

export function hostRead(table: MappingTable, addr: bigint, length: bigint): HostResult<Uint8Array> {
  if (length <= 0n) return guarded(ok(new Uint8Array(0)), 'a load of 0 bytes touches no memory');
  const bad = probe(table, addr, length, false);
  if (bad) return bad.refusal;
  return ok(Uint8Array.from(libc.memView(addr, Number(length))));
}

/** A store: the bytes before a refused page are written, as a CPU store loop would have. */
export function hostWrite(table: MappingTable, addr: bigint, data: Uint8Array): HostResult<void> {
  if (data.length === 0) return guarded(OK, 'a store of 0 bytes touches no memory');
  const bad = probe(table, addr, BigInt(data.length), true);
  const n = bad ? Number(bad.good) : data.length;
  if (n > 0) libc.memView(addr, n).set(data.subarray(0, n));
  return bad ? bad.refusal : OK;
}
