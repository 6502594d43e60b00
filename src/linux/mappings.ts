// The user mappings this backend created, as a sorted list of [start, end) ranges of exact
// (bigint) addresses. The linux backend consults it before any host access, munmap, madvise or
// pin, so that a scenario can never reach memory the Node process itself uses. Every query is
// range-wise (cost per mapping, never per page), so a 2^40-byte or 2^64-wrapping range costs
// no more than a small one. Pure bookkeeping: it must never make a system call or touch the
// memory it describes.
import { PAGE_SIZE } from '../model/abi.js';

export interface Mapping {
  readonly start: bigint;
  readonly end: bigint;
  readonly prot: number;
  /** The fd mapped (null for anonymous memory) and the file offset of `start`. */
  readonly fd: number | null;
  readonly offset: bigint;
}

const PAGE = BigInt(PAGE_SIZE);

export class MappingTable {
  private list: Mapping[] = [];

  add(m: Mapping): void {
    this.list.push(m);
    this.list.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  }

  find(addr: bigint): Mapping | undefined {
    return this.list.find((m) => addr >= m.start && addr < m.end);
  }

  /**
   * The first byte of [lo, hi) not inside a mapping whose prot has every bit of `prot`
   * (0: any mapping), or null when all of it is. `why` says which of the two it is.
   */
  firstGap(lo: bigint, hi: bigint, prot = 0): { at: bigint; why: 'unmapped' | 'prot' } | null {
    let at = lo;
    for (const m of this.list) {
      if (at >= hi) return null;
      if (m.end <= at) continue;
      if (m.start > at) return { at, why: 'unmapped' };
      if ((m.prot & prot) !== prot) return { at, why: 'prot' };
      at = m.end;
    }
    return at >= hi ? null : { at, why: 'unmapped' };
  }

  /** Whether every byte of [lo, hi) lies in some mapping. */
  covers(lo: bigint, hi: bigint): boolean {
    return this.firstGap(lo, hi) === null;
  }

  /** The parts of [lo, hi) that lie in mappings, ascending. */
  pieces(lo: bigint, hi: bigint): [bigint, bigint][] {
    const out: [bigint, bigint][] = [];
    for (const m of this.list) {
      const a = lo > m.start ? lo : m.start;
      const b = hi < m.end ? hi : m.end;
      if (a < b) out.push([a, b]);
    }
    return out;
  }

  /** Forget [lo, hi) (after munmap), splitting mappings at the edges. */
  remove(lo: bigint, hi: bigint): void {
    const next: Mapping[] = [];
    for (const m of this.list) {
      if (m.end <= lo || m.start >= hi) {
        next.push(m);
        continue;
      }
      if (m.start < lo) next.push({ ...m, end: lo });
      if (m.end > hi) next.push({ ...m, start: hi, offset: m.offset + (hi - m.start) });
    }
    this.list = next;
  }

  all(): readonly Mapping[] {
    return this.list;
  }

  get size(): number {
    return this.list.length;
  }
}

export const pageFloor = (a: bigint): bigint => a - (a % PAGE);
export const pageCeil = (a: bigint): bigint => (a + PAGE - 1n) / PAGE * PAGE;
