// Space over a PackedModel: states are W-word keys in a WordSet, copied in discovery order
// into one dense Uint32Array (which is also the BFS queue), with a parent id and edge index
// per state for counterexamples. Nothing on the per-edge path allocates.
// It must never call the model outside expand/check/initial on the hot path.
import { allocate, growTo, type MemoryAccount } from './memory.js';
import type { Space } from './space.js';
import { makeStep } from './trace.js';
import type { EdgeSink, PackedModel, TraceStep } from './types.js';
import { partOf, WordSet } from './word-set.js';

export interface PackedSpaceOptions {
  /** Keep ids in the visited set (needed by liveness). */
  readonly withIds: boolean;
  readonly hashBits: number;
  /** All-violations mode: record failing step assertions and go on (Space.failures). */
  readonly collect?: boolean;
  /**
   * Parallel search: this space holds part `me` of `parts` (word-set.ts partOf). expand() then
   * records each staged target's part (partOfStaged) and touches only the slots of its own.
   */
  readonly part?: { readonly me: number; readonly parts: number };
}

export class PackedSpace implements Space {
  count = 0;
  readonly processes: readonly string[];
  readonly livenessName: string | undefined;
  private readonly W: number;
  private readonly set: WordSet;
  private store: Uint32Array;
  private parent: Int32Array;
  private pedge: Uint16Array;
  private cap: number;
  private readonly sink: EdgeSink;
  /** Hash of each staged edge's target, computed (and its slot touched) at expansion. */
  private hashes: Int32Array;
  /** Sink for the touched words, so the loads are not optimised away. */
  private touched = 0;
  /** Parallel search: the part of each staged edge's target. */
  private parts: Uint8Array | undefined;
  private readonly me: number;
  private readonly nParts: number;

  constructor(private readonly model: PackedModel, private readonly acct: MemoryAccount, opts: PackedSpaceOptions) {
    const W = model.words;
    if (!(W >= 1 && W <= 8)) throw new Error(`packed model ${model.name}: words must be 1..8, got ${W}`);
    if (!(model.maxEdges >= 1 && model.maxEdges <= 65535)) {
      throw new Error(`packed model ${model.name}: maxEdges must be 1..65535, got ${model.maxEdges}`);
    }
    this.W = W;
    this.processes = model.processes ?? [];
    this.livenessName = model.liveness?.name;
    this.set = new WordSet(W, opts.withIds, opts.hashBits, acct);
    this.cap = 1 << 12;
    this.store = allocate(this.cap * W, Uint32Array, acct);
    this.parent = allocate(this.cap, Int32Array, acct);
    this.pedge = allocate(this.cap, Uint16Array, acct);
    this.sink = {
      words: allocate(model.maxEdges * 4 * W, Uint32Array, acct),
      codes: allocate(model.maxEdges * 4, Int32Array, acct),
      top: 0,
      ...(opts.collect ? { failures: [] } : {}),
    };
    this.hashes = allocate(model.maxEdges * 4, Int32Array, acct);
    this.me = opts.part?.me ?? 0;
    this.nParts = opts.part?.parts ?? 1;
    if (opts.part) this.parts = allocate(model.maxEdges * 4, Uint8Array, acct);
  }

  get failures(): readonly number[] {
    return this.sink.failures ?? [];
  }

  get top(): number {
    return this.sink.top;
  }

  addInitial(): number {
    const n = this.stageInitial();
    for (let pos = 0; pos < n; pos++) this.intern(pos, -1, pos);
    this.sink.top = 0;
    return this.count;
  }

  stageInitial(): number {
    this.sink.top = 0;
    this.model.initial(this.sink);
    const n = this.sink.top;
    if (n > this.hashes.length) this.hashes = growTo(this.hashes, n, Int32Array, this.acct);
    this.hashStaged(0, n);
    return n;
  }

  expand(id: number): number {
    const sink = this.sink;
    const need = sink.top + this.model.maxEdges;
    if (need > sink.codes.length) sink.codes = growTo(sink.codes, need, Int32Array, this.acct);
    if (need * this.W > sink.words.length) sink.words = growTo(sink.words, need * this.W, Uint32Array, this.acct);
    if (need > this.hashes.length) this.hashes = growTo(this.hashes, need, Int32Array, this.acct);
    const from = sink.top;
    if (sink.failures) sink.failures.length = 0;
    const r = this.model.expand(this.store, id * this.W, sink);
    this.hashStaged(from, sink.top);
    return r;
  }

  /**
   * Hashes staged edges from..to-1 and touches their slots now: the loads are independent, so
   * the CPU overlaps their cache misses, and the probes in intern() then mostly hit the cache.
   */
  private hashStaged(from: number, to: number): void {
    const set = this.set;
    const hs = this.hashes;
    const words = this.sink.words;
    const W = this.W;
    let x = 0;
    const parts = this.parts;
    if (parts) {
      // Parallel: only the targets this part owns are probed here; the others are sent.
      if (to > parts.length) this.parts = growTo(parts, to, Uint8Array, this.acct);
      const ps = this.parts!;
      for (let pos = from; pos < to; pos++) {
        const h = set.hash(words, pos * W);
        hs[pos] = h;
        const p = partOf(h, this.nParts);
        ps[pos] = p;
        if (p === this.me) x ^= set.touch(h);
      }
    } else {
      for (let pos = from; pos < to; pos++) {
        const h = set.hash(words, pos * W);
        hs[pos] = h;
        x ^= set.touch(h);
      }
    }
    this.touched ^= x;
  }

  truncate(top: number): void {
    this.sink.top = top;
  }

  intern(pos: number, parent: number, k: number): number {
    return this.internWords(this.sink.words, pos * this.W, this.hashes[pos], parent, k);
  }

  /** The staged edge words (edge `pos` at `pos * words`) and the hash of edge `pos`'s target. */
  get staged(): Uint32Array {
    return this.sink.words;
  }

  hashOf(pos: number): number {
    return this.hashes[pos];
  }

  /** Parallel search: the part that owns staged edge `pos`'s target. */
  partOfStaged(pos: number): number {
    return this.parts ? this.parts[pos] : 0;
  }

  /** Touches the first slot of hash `h` (see expand), for a batch about to be interned. */
  touchHash(h: number): void {
    this.touched ^= this.set.touch(h);
  }

  /** intern() of a state held elsewhere (`buf[s .. s + words)`, hash `h`): a parallel search's batch. */
  internWords(src: Uint32Array, s: number, h: number, parent: number, k: number): number {
    const W = this.W;
    const id = this.count;
    const r = this.set.addHashed(src, s, h, id);
    if (r !== id) return r;
    if (id >= this.cap) this.growStore(id + 1);
    const dst = this.store;
    const d = id * W;
    for (let i = 0; i < W; i++) dst[d + i] = src[s + i];
    this.parent[id] = parent;
    this.pedge[id] = k;
    this.count = id + 1;
    return id;
  }

  private growStore(need: number): void {
    this.store = growTo(this.store, need * this.W, Uint32Array, this.acct);
    this.parent = growTo(this.parent, need, Int32Array, this.acct);
    this.pedge = growTo(this.pedge, need, Uint16Array, this.acct);
    this.cap = this.parent.length;
  }

  check(id: number): number {
    return this.model.check(this.store, id * this.W);
  }

  checkAll(id: number): number[] {
    const m = this.model;
    const mask = m.checkAll ? m.checkAll(this.store, id * this.W) : (1 << m.check(this.store, id * this.W)) & ~1;
    const out: number[] = [];
    for (let c = 1; c < 32; c++) if ((mask >>> c) & 1) out.push(c);
    return out;
  }

  release(): void {
    // Packed states stay in the dense store: they are the queue and the trace source.
  }

  processOf(pos: number): number {
    const f = this.model.processOf;
    return f ? f.call(this.model, this.sink.codes[pos]) : 0;
  }

  pending(id: number): boolean {
    const l = this.model.liveness;
    return l ? l.pending(this.store, id * this.W) : false;
  }

  propertyName(code: number): string {
    return this.model.properties[code - 1] ?? `property ${code}`;
  }

  explain(id: number, code: number): string {
    return this.model.explain(this.store, id * this.W, code);
  }

  parentOf(id: number): number {
    return this.parent[id];
  }

  edgeIndexOf(id: number): number {
    return this.pedge[id];
  }

  walk(root: number, ks: readonly number[], failLast: boolean): TraceStep[] {
    const m = this.model;
    const W = this.W;
    const sink: EdgeSink = {
      words: new Uint32Array(m.maxEdges * W), codes: new Int32Array(m.maxEdges), top: 0,
    };
    let cur = this.store.slice(root * W, root * W + W);
    const steps: TraceStep[] = [];
    ks.forEach((k, i) => {
      sink.top = 0;
      m.expand(cur, 0, sink);
      if (k >= sink.top) throw new Error(`trace replay: state has ${sink.top} edges, wanted edge ${k}`);
      const label = m.describeEdge(sink.codes[k]);
      const last = failLast && i === ks.length - 1;
      const next = sink.words.slice(k * W, k * W + W);
      steps.push(makeStep(i + 1, label, m.describeState(cur, 0), last ? undefined : m.describeState(next, 0)));
      cur = next;
    });
    return steps;
  }

  sampleMemory(): void {
    // Everything is in accounted typed arrays.
  }
}
