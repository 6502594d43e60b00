// The user mappings this backend created, as a sorted list of [start, end) ranges. The linux
// backend consults it before any host access, munmap, madvise or pin, so that a scenario can
// never reach memory the Node process itself uses. Pure bookkeeping: it must never make a
// system call or touch the memory it describes.
import { PAGE_SIZE } from '../model/abi.js';

export interface Mapping {
  readonly start: number;
  readonly end: number;
  readonly prot: number;
  /** The fd mapped (null for anonymous memory) and the file offset of `start`. */
  readonly fd: number | null;
  readonly offset: bigint;
}

export class MappingTable {
  private list: Mapping[] = [];

  add(m: Mapping): void {
    this.list.push(m);
    this.list.sort((a, b) => a.start - b.start);
  }

  find(addr: number): Mapping | undefined {
    return this.list.find((m) => addr >= m.start && addr < m.end);
  }

  /** Whether every byte of [lo, hi) lies in some mapping. */
  covers(lo: number, hi: number): boolean {
    let at = lo;
    for (const m of this.list) {
      if (m.end <= at) continue;
      if (m.start > at) return false;
      at = m.end;
      if (at >= hi) return true;
    }
    return at >= hi;
  }

  /** The parts of [lo, hi) that lie in mappings, ascending. */
  pieces(lo: number, hi: number): [number, number][] {
    const out: [number, number][] = [];
    for (const m of this.list) {
      const a = Math.max(lo, m.start);
      const b = Math.min(hi, m.end);
      if (a < b) out.push([a, b]);
    }
    return out;
  }

  /** Forget [lo, hi) (after munmap), splitting mappings at the edges. */
  remove(lo: number, hi: number): void {
    const next: Mapping[] = [];
    for (const m of this.list) {
      if (m.end <= lo || m.start >= hi) {
        next.push(m);
        continue;
      }
      if (m.start < lo) next.push({ ...m, end: lo });
      if (m.end > hi) next.push({ ...m, start: hi, offset: m.offset + BigInt(hi - m.start) });
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

export const pageFloor = (a: number): number => a - (a % PAGE_SIZE);
export const pageCeil = (a: number): number => Math.ceil(a / PAGE_SIZE) * PAGE_SIZE;
