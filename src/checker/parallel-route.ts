// How the parallel search (parallel.ts) moves successors between its workers: each state has
// one owner, chosen by a hash of its encoding, which alone keeps it in its visited set and
// expands it. A worker interns the successors it owns at once and batches the others per owner:
// packed states as their words in one transferred Uint32Array, object states as their key and
// the model's pack()ed data (structured-cloned), rebuilt by the owner only when they are new.
// It must never decide search order or results; it only moves edges and interns them.
import type { MessagePort } from 'node:worker_threads';
import type { ObjectSpace } from './object-space.js';
import type { PackedSpace } from './packed-space.js';
import type { Space } from './space.js';
import type { ObjectModel } from './types.js';
import { partOf } from './word-set.js';

/** Routes staged edges to their owners and interns the batches received from the others. */
export interface Router {
  readonly space: Space;
  /**
   * Staged edge `pos` (edge `k` of the state with global ref `parent`; -1 and the initial
   * state's index for a root): interned here if this worker owns it (returns the new id, or a
   * negative number if it was known), else queued for its owner (returns -1).
   */
  route(pos: number, parent: number, k: number): number;
  /** Posts every queued batch. */
  flush(): void;
  /** Interns a batch from a peer; `onNew` gets the id of each state that is new. */
  receive(batch: unknown, onNew: (id: number) => void): void;
}

/** Edges per batch before it is posted. */
const PACKED_BATCH = 8192;
const OBJECT_BATCH = 64;
/** Received keys whose slots are touched before they are probed. */
const TOUCH_CHUNK = 32;

export class PackedRouter implements Router {
  private readonly stride: number;
  private readonly out: (Uint32Array | undefined)[];
  private readonly fill: number[];

  constructor(
    readonly space: PackedSpace, private readonly words: number, private readonly me: number,
    private readonly peers: readonly (MessagePort | undefined)[],
  ) {
    this.stride = words + 3;
    this.out = peers.map(() => undefined);
    this.fill = peers.map(() => 0);
  }

  route(pos: number, parent: number, k: number): number {
    const o = this.space.partOfStaged(pos);
    if (o === this.me) return this.space.intern(pos, parent, k);
    const h = this.space.hashOf(pos);
    const W = this.words;
    const buf = (this.out[o] ??= new Uint32Array(PACKED_BATCH * this.stride));
    const src = this.space.staged;
    let d = this.fill[o]! * this.stride;
    const s = pos * W;
    for (let i = 0; i < W; i++) buf[d++] = src[s + i]!;
    buf[d++] = h >>> 0;
    buf[d++] = parent >>> 0;
    buf[d] = k;
    if (++this.fill[o]! === PACKED_BATCH) this.post(o);
    return -1;
  }

  private post(o: number): void {
    const buf = this.out[o];
    const n = this.fill[o]!;
    if (!buf || n === 0) return;
    const data = n === PACKED_BATCH ? buf : buf.slice(0, n * this.stride);
    this.peers[o]!.postMessage({ t: 'batch', data }, [data.buffer as ArrayBuffer]);
    this.out[o] = undefined;
    this.fill[o] = 0;
  }

  flush(): void {
    for (let o = 0; o < this.peers.length; o++) if (o !== this.me) this.post(o);
  }

  receive(batch: unknown, onNew: (id: number) => void): void {
    const data = (batch as { data: Uint32Array }).data;
    const S = this.stride;
    const W = this.words;
    const sp = this.space;
    // In chunks: touch the first slot of every key, then probe (the cache misses overlap, as
    // in PackedSpace.expand).
    for (let c = 0; c < data.length; c += TOUCH_CHUNK * S) {
      const end = Math.min(data.length, c + TOUCH_CHUNK * S);
      for (let d = c; d < end; d += S) sp.touchHash(data[d + W]! | 0);
      for (let d = c; d < end; d += S) {
        const id = sp.internWords(data, d, data[d + W]! | 0, data[d + W + 1]! | 0, data[d + W + 2]!);
        if (id >= 0) onNew(id);
      }
    }
  }
}

/** FNV-1a over the UTF-16 code units of a key. */
function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h;
}

interface ObjectBatch { keys: string[]; data: unknown[]; parents: number[]; ks: number[] }

export class ObjectRouter<S, L> implements Router {
  private readonly out: (ObjectBatch | undefined)[];

  constructor(
    readonly space: ObjectSpace<S, L>, private readonly model: ObjectModel<S, L>, private readonly me: number,
    private readonly peers: readonly (MessagePort | undefined)[],
  ) {
    this.out = peers.map(() => undefined);
  }

  route(pos: number, parent: number, k: number): number {
    const key = this.space.keyOf(pos);
    const o = partOf(hashKey(key), this.peers.length);
    const s = this.space.stagedState(pos);
    if (o === this.me) return this.space.internKey(key, s, parent, k);
    const b = (this.out[o] ??= { keys: [], data: [], parents: [], ks: [] });
    b.keys.push(key);
    b.data.push(this.model.pack ? this.model.pack(s) : s);
    b.parents.push(parent);
    b.ks.push(k);
    if (b.keys.length === OBJECT_BATCH) this.post(o);
    return -1;
  }

  private post(o: number): void {
    const b = this.out[o];
    if (!b) return;
    this.peers[o]!.postMessage({ t: 'batch', ...b });
    this.out[o] = undefined;
  }

  flush(): void {
    for (let o = 0; o < this.peers.length; o++) if (o !== this.me) this.post(o);
  }

  receive(batch: unknown, onNew: (id: number) => void): void {
    const b = batch as ObjectBatch;
    const sp = this.space;
    const m = this.model;
    for (let i = 0; i < b.keys.length; i++) {
      const key = b.keys[i]!;
      if (sp.idOf(key) !== undefined) continue;
      const s = m.unpack ? m.unpack(b.data[i], key) : (b.data[i] as S);
      onNew(sp.internKey(key, s, b.parents[i]!, b.ks[i]!));
    }
  }
}
