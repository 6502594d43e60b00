// An open-addressing (linear probing) hash set of fixed-width keys of W 32-bit words, stored
// inline in one Int32Array, optionally with a 32-bit id per key. This is the visited set of
// packed models: no objects, no strings, no allocation per insert.
// Keys must keep bit 31 of every word clear (the set uses it to mark occupied slots); it
// must never hold a reference to the caller's buffers.
import { allocate, type MemoryAccount } from './memory.js';

const OCCUPIED = 0x80000000 | 0;

export class WordSet {
  /** Number of keys. */
  size = 0;
  private table: Int32Array;
  private mask: number;
  private growAt: number;
  private readonly stride: number;

  /**
   * @param width words per key (1..8)
   * @param withIds also store an id per key, returned by `add` for keys already present
   * @param bits log2 of the initial number of slots
   */
  constructor(
    readonly width: number,
    readonly withIds: boolean,
    bits: number,
    private readonly acct: MemoryAccount,
    private readonly maxLoad = 0.6,
  ) {
    this.stride = width + (withIds ? 1 : 0);
    const slots = 1 << Math.max(10, Math.min(bits, 30));
    this.table = allocate(slots * this.stride, Int32Array, acct);
    this.mask = slots - 1;
    this.growAt = Math.floor(slots * maxLoad);
  }

  get capacity(): number {
    return this.mask + 1;
  }

  get bytes(): number {
    return this.table.byteLength;
  }

  /** The hash of the key `buf[off .. off+width)`, for touch() and addHashed(). */
  hash(buf: Uint32Array, off: number): number {
    return this.width === 2 ? hash2(buf[off] | 0, buf[off + 1] | 0) : hashN(buf, off, this.width);
  }

  /**
   * Reads the first slot of hash h and returns a word of it. Touching the slots of all
   * successors of a state before probing them lets the CPU overlap the cache misses.
   */
  touch(h: number): number {
    return this.table[(h & this.mask) * this.stride + this.width - 1];
  }

  /**
   * Adds the key `buf[off .. off+width)`. Returns `id` if the key was new. If it was present:
   * -1 without ids, or -2 - (the id it was added with) with ids.
   */
  add(buf: Uint32Array, off: number, id: number): number {
    return this.addHashed(buf, off, this.hash(buf, off), id);
  }

  /** add() with the key's hash already computed by hash(). */
  addHashed(buf: Uint32Array, off: number, hash: number, id: number): number {
    if (this.size >= this.growAt) this.grow();
    const W = this.width;
    const S = this.stride;
    const t = this.table;
    const m = this.mask;
    let i = hash & m;
    if (W === 2) {
      const a = buf[off] | 0;
      const last = buf[off + 1] | OCCUPIED;
      for (;;) {
        const s = i * S;
        const v = t[s + 1];
        if (v === 0) {
          t[s] = a;
          t[s + 1] = last;
          if (S === 3) t[s + 2] = id;
          this.size++;
          return id;
        }
        if (v === last && t[s] === a) return S === 3 ? -2 - t[s + 2] : -1;
        i = (i + 1) & m;
      }
    }
    const lastIdx = W - 1;
    const last = buf[off + lastIdx] | OCCUPIED;
    for (;;) {
      const s = i * S;
      const v = t[s + lastIdx];
      if (v === 0) {
        for (let k = 0; k < lastIdx; k++) t[s + k] = buf[off + k];
        t[s + lastIdx] = last;
        if (S > W) t[s + W] = id;
        this.size++;
        return id;
      }
      if (v === last) {
        let eq = true;
        for (let k = 0; k < lastIdx; k++) {
          if (t[s + k] !== (buf[off + k] | 0)) { eq = false; break; }
        }
        if (eq) return S > W ? -2 - t[s + W] : -1;
      }
      i = (i + 1) & m;
    }
  }

  /** Doubles the table if the account allows it; else keeps probing a fuller table. */
  private grow(): void {
    const slots = (this.mask + 1) * 2;
    const bytes = slots * this.stride * 4;
    if (!this.acct.allows(bytes) || slots > 1 << 30) {
      // Over the limit: mark it and keep going at a higher load until the engine stops.
      this.acct.exceeded = true;
      this.growAt = Math.floor((this.mask + 1) * 0.9);
      if (this.size < this.growAt) return;
      throw new Error('WordSet: hash table full and the memory limit forbids growing it');
    }
    const old = this.table;
    const S = this.stride;
    const W = this.width;
    const t = allocate(slots * S, Int32Array, this.acct);
    const m = slots - 1;
    const key = new Uint32Array(W);
    for (let s = 0; s < old.length; s += S) {
      const last = old[s + W - 1];
      if (last === 0) continue;
      for (let k = 0; k < W; k++) key[k] = old[s + k];
      key[W - 1] = last & 0x7fffffff;
      let i = this.hash(key, 0) & m;
      while (t[i * S + W - 1] !== 0) i = (i + 1) & m;
      for (let k = 0; k < S; k++) t[i * S + k] = old[s + k];
    }
    this.acct.add(-old.byteLength);
    this.table = t;
    this.mask = m;
    this.growAt = Math.floor(slots * this.maxLoad);
  }
}

/**
 * Which of `parts` partitions a key with hash `h` belongs to (the parallel search's owner).
 * The hash is mixed again, so the part does not depend on the bits a table's slot index uses.
 */
export function partOf(h: number, parts: number): number {
  let x = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  // Multiply-shift of the top 16 bits: small integers only (no modulo of a uint32 double).
  return (((x ^ (x >>> 16)) >>> 16) * parts) >>> 16;
}

/** Murmur3-style mix of two words. */
function hash2(a: number, b: number): number {
  let h = Math.imul(a, 0xcc9e2d51);
  h = (h << 15) | (h >>> 17);
  h = Math.imul(h, 0x1b873593) ^ b;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** Murmur3 (32-bit) over W words. */
function hashN(buf: Uint32Array, off: number, W: number): number {
  let h = 0x9747b28c;
  for (let k = 0; k < W; k++) {
    let x = Math.imul(buf[off + k] | 0, 0xcc9e2d51);
    x = (x << 15) | (x >>> 17);
    h ^= Math.imul(x, 0x1b873593);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  h ^= W;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}
