// Space over an ObjectModel: the visited set maps each state's canonical encoding (a string,
// or bytes kept as a latin1 string) to its id. Object states are held only while open (in the
// BFS queue or on the DFS stack) and counterexamples are rebuilt by replaying edge indices.
// It must never keep a state object after release(), and never mutate a model state.
import { growTo, type MemoryAccount } from './memory.js';
import type { Space } from './space.js';
import { makeStep } from './trace.js';
import type { ObjectModel, TraceStep } from './types.js';

/** Rough heap cost of one Map entry besides its key characters. */
const ENTRY_OVERHEAD = 64;

export class ObjectSpace<S, L> implements Space {
  count = 0;
  top = 0;
  readonly processes: readonly string[];
  readonly livenessName: string | undefined;
  private readonly ids = new Map<string, number>();
  private readonly open: (S | undefined)[] = [];
  private parent = new Int32Array(1024);
  private pedge = new Int32Array(1024);
  private readonly roots: number[] = [];
  private stagedStates: S[] = [];
  private stagedLabels: L[] = [];
  private readonly nInv: number;
  private lastMessage = '';
  /** Messages of the last checkAll, by property code. */
  private invMessages: string[] = [];
  /** All-violations mode: (position, code) pairs of the last expand, and their messages. */
  readonly failures: number[] = [];
  private failMessages: string[] = [];
  private keyBytes = 0;
  private readonly heapAtStart: number;

  /** `collect`: all-violations mode (Space.failures). */
  constructor(private readonly model: ObjectModel<S, L>, private readonly acct: MemoryAccount, private readonly collect = false) {
    this.processes = model.processes ?? [];
    this.livenessName = model.liveness?.name;
    this.nInv = model.invariants.length;
    this.acct.add(this.parent.byteLength + this.pedge.byteLength);
    this.heapAtStart = process.memoryUsage().heapUsed;
  }

  addInitial(): number {
    const n = this.stageInitial();
    for (let pos = 0; pos < n; pos++) this.intern(pos, -1, pos);
    this.truncate(0);
    return this.count;
  }

  stageInitial(): number {
    this.truncate(0);
    for (const s of this.model.initialStates()) this.stagedStates[this.top++] = s;
    return this.top;
  }

  expand(id: number): number {
    const s = this.open[id];
    if (s === undefined) throw new Error(`object space: state ${id} was released before expansion`);
    const asserts = this.model.stepAssertions ?? [];
    let fail = 0;
    const collect = this.collect;
    if (collect) {
      this.failures.length = 0;
      this.failMessages.length = 0;
    }
    this.model.successors(s, (label, next) => {
      if (fail) return;
      const pos = this.top;
      this.stagedStates[pos] = next;
      this.stagedLabels[pos] = label;
      this.top++;
      for (let a = 0; a < asserts.length; a++) {
        const msg = asserts[a].check(s, label, next);
        if (msg === null) continue;
        if (collect) {
          this.failures.push(pos, this.nInv + a + 1);
          this.failMessages.push(msg);
          continue;
        }
        fail = this.nInv + a + 1;
        this.lastMessage = msg;
        return;
      }
    });
    return fail;
  }

  truncate(top: number): void {
    this.stagedStates.length = top;
    this.stagedLabels.length = top;
    this.top = top;
  }

  intern(pos: number, parent: number, k: number): number {
    return this.internKey(this.keyOf(pos), this.stagedStates[pos], parent, k);
  }

  /** The visited-set key of staged edge `pos`'s target (its encoding; bytes as latin1). */
  keyOf(pos: number): string {
    const e = this.model.encode(this.stagedStates[pos]);
    return typeof e === 'string' ? e : Buffer.from(e.buffer, e.byteOffset, e.byteLength).toString('latin1');
  }

  /** The target of staged edge `pos`, for a parallel search to send to its owner. */
  stagedState(pos: number): S {
    return this.stagedStates[pos];
  }

  /** The id of the state with key `key`, if it is known. */
  idOf(key: string): number | undefined {
    return this.ids.get(key);
  }

  /** intern() of state `s` with key `key` (from keyOf): also a parallel search's received states. */
  internKey(key: string, s: S, parent: number, k: number): number {
    const known = this.ids.get(key);
    if (known !== undefined) return -2 - known;
    const id = this.count;
    this.ids.set(key, id);
    const kb = key.length * 2 + ENTRY_OVERHEAD;
    this.keyBytes += kb;
    this.acct.add(kb);
    if (id >= this.parent.length) {
      this.parent = growTo(this.parent, id + 1, Int32Array, this.acct);
      this.pedge = growTo(this.pedge, id + 1, Int32Array, this.acct);
    }
    this.parent[id] = parent;
    this.pedge[id] = k;
    this.open[id] = s;
    if (parent < 0) this.roots[id] = k;
    this.count = id + 1;
    return id;
  }

  check(id: number): number {
    const s = this.open[id] as S;
    const inv = this.model.invariants;
    for (let i = 0; i < inv.length; i++) {
      const msg = inv[i].check(s);
      if (msg !== null) {
        this.lastMessage = msg;
        this.invMessages[i + 1] = msg;
        return i + 1;
      }
    }
    return 0;
  }

  checkAll(id: number): number[] {
    const s = this.open[id] as S;
    const out: number[] = [];
    this.model.invariants.forEach((inv, i) => {
      const msg = inv.check(s);
      if (msg === null) return;
      out.push(i + 1);
      this.invMessages[i + 1] = msg;
    });
    return out;
  }

  release(id: number): void {
    this.open[id] = undefined;
  }

  processOf(pos: number): number {
    const f = this.model.processOf;
    return f ? f.call(this.model, this.stagedLabels[pos]) : 0;
  }

  pending(id: number): boolean {
    const l = this.model.liveness;
    const s = this.open[id];
    return l !== undefined && s !== undefined ? l.pending(s) : false;
  }

  propertyName(code: number): string {
    if (code <= this.nInv) return this.model.invariants[code - 1].name;
    return this.model.stepAssertions?.[code - this.nInv - 1]?.name ?? `property ${code}`;
  }

  explain(_id: number, code: number, pos?: number): string {
    if (pos === undefined) return this.invMessages[code] ?? this.lastMessage;
    for (let i = 0; i < this.failures.length; i += 2) {
      if (this.failures[i] === pos && this.failures[i + 1] === code) return this.failMessages[i / 2]!;
    }
    return this.lastMessage;
  }

  parentOf(id: number): number {
    return this.parent[id];
  }

  edgeIndexOf(id: number): number {
    return this.pedge[id];
  }

  walk(root: number, ks: readonly number[], failLast: boolean): TraceStep[] {
    const m = this.model;
    let cur = m.initialStates()[this.roots[root]];
    const steps: TraceStep[] = [];
    ks.forEach((k, i) => {
      let n = 0;
      let picked: { label: L; next: S } | undefined;
      m.successors(cur, (label, next) => {
        if (n++ === k) picked = { label, next };
      });
      if (!picked) throw new Error(`trace replay: state has ${n} edges, wanted edge ${k}`);
      const last = failLast && i === ks.length - 1;
      const before = m.describeState?.(cur);
      const after = last ? undefined : m.describeState?.(picked.next);
      steps.push(makeStep(i + 1, m.describeEdge(picked.label), before, after));
      cur = picked.next;
    });
    return steps;
  }

  sampleMemory(): void {
    // Object states are not counted one by one: take the heap growth when it is larger.
    const heap = process.memoryUsage().heapUsed - this.heapAtStart;
    const typed = this.parent.byteLength + this.pedge.byteLength;
    const est = Math.max(heap, this.keyBytes + typed);
    this.acct.add(est - this.acct.bytes);
  }
}
