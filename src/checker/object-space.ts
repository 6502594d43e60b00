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
  private keyBytes = 0;
  private readonly heapAtStart: number;

  constructor(private readonly model: ObjectModel<S, L>, private readonly acct: MemoryAccount) {
    this.processes = model.processes ?? [];
    this.livenessName = model.liveness?.name;
    this.nInv = model.invariants.length;
    this.acct.add(this.parent.byteLength + this.pedge.byteLength);
    this.heapAtStart = process.memoryUsage().heapUsed;
  }

  addInitial(): number {
    this.model.initialStates().forEach((s, i) => {
      this.stagedStates[0] = s;
      this.top = 1;
      const id = this.intern(0, -1, 0);
      if (id >= 0) this.roots[id] = i;
    });
    this.top = 0;
    this.stagedStates = [];
    return this.count;
  }

  expand(id: number): number {
    const s = this.open[id];
    if (s === undefined) throw new Error(`object space: state ${id} was released before expansion`);
    const asserts = this.model.stepAssertions ?? [];
    let fail = 0;
    this.model.successors(s, (label, next) => {
      if (fail) return;
      this.stagedStates[this.top] = next;
      this.stagedLabels[this.top] = label;
      this.top++;
      for (let a = 0; a < asserts.length; a++) {
        const msg = asserts[a].check(s, label, next);
        if (msg !== null) {
          fail = this.nInv + a + 1;
          this.lastMessage = msg;
          return;
        }
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
    const s = this.stagedStates[pos];
    const e = this.model.encode(s);
    const key = typeof e === 'string' ? e : Buffer.from(e.buffer, e.byteOffset, e.byteLength).toString('latin1');
    const known = this.ids.get(key);
    if (known !== undefined) return -2 - known;
    const id = this.count;
    this.ids.set(key, id);
    const kb = key.length * (typeof e === 'string' ? 2 : 1) + ENTRY_OVERHEAD;
    this.keyBytes += kb;
    this.acct.add(kb);
    if (id >= this.parent.length) {
      this.parent = growTo(this.parent, id + 1, Int32Array, this.acct);
      this.pedge = growTo(this.pedge, id + 1, Int32Array, this.acct);
    }
    this.parent[id] = parent;
    this.pedge[id] = k;
    this.open[id] = s;
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
        return i + 1;
      }
    }
    return 0;
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

  explain(): string {
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
