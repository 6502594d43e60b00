// The search strategies over a Space: breadth-first (the store order is the queue, so the
// first violation found is at the least depth) and iterative depth-first with an explicit
// stack of frames in typed arrays (no recursion, so million-deep paths are fine).
// It must never know what a state contains; everything goes through the Space.
import { growTo, type MemoryAccount } from './memory.js';
import type { Space } from './space.js';
import type { Progress } from './types.js';

/** Where a search stopped: a bad state, a bad edge, the memory limit, or the end. */
export type Stop =
  | { readonly kind: 'done' }
  | { readonly kind: 'memory' }
  | { readonly kind: 'invariant'; readonly code: number; readonly id: number }
  | { readonly kind: 'step'; readonly code: number; readonly id: number; readonly k: number; readonly pos: number };

export interface SearchStats {
  edges: number;
  maxDepth: number;
}

/** Progress reporting and the memory limit, shared by all strategies. */
export class Control {
  private readonly t0 = performance.now();
  private lastReport = this.t0;
  private tickCount = 0;

  constructor(
    readonly acct: MemoryAccount,
    private readonly onProgress: ((p: Progress) => void) | undefined,
    private readonly intervalMs: number,
  ) {}

  seconds(): number {
    return (performance.now() - this.t0) / 1000;
  }

  /** Called once per expanded state; cheap except every 1024th call. */
  tick(space: Space, stats: SearchStats, depth: number, queue: number): void {
    if ((++this.tickCount & 1023) !== 0) return;
    space.sampleMemory();
    if (!this.onProgress) return;
    const now = performance.now();
    if (now - this.lastReport < this.intervalMs) return;
    this.lastReport = now;
    const seconds = (now - this.t0) / 1000;
    this.onProgress({
      states: space.count, edges: stats.edges, statesPerSecond: space.count / seconds,
      depth, queue, memoryBytes: this.acct.bytes, seconds,
    });
  }
}

/** Checks the initial states; returns a stop if one is bad. */
export function checkRoots(space: Space, n: number): Stop | undefined {
  for (let id = 0; id < n; id++) {
    const c = space.check(id);
    if (c) return { kind: 'invariant', code: c, id };
  }
  return undefined;
}

/** A violation found by an all-violations search: enough to rebuild its counterexample. */
export interface Found {
  readonly kind: 'invariant' | 'step';
  readonly code: number;
  /** The bad state (invariant) or the state the failing edge leaves (step). */
  readonly id: number;
  /** The failing edge's index (step only). */
  readonly k: number;
  readonly message: string;
}

/** The first violation found of each property (breadth-first: the shortest), by code. */
export type Findings = Map<number, Found>;

function note(found: Findings, f: Found): void {
  if (!found.has(f.code)) found.set(f.code, f);
}

/** All-violations mode: notes every invariant that fails in state `id`. */
export function noteInvariants(space: Space, found: Findings, id: number, ref = id): void {
  for (const c of space.checkAll(id)) {
    if (!found.has(c)) note(found, { kind: 'invariant', code: c, id: ref, k: 0, message: space.explain(id, c) });
  }
}

/**
 * All-violations mode: notes the step failures of the last expand of `id` and returns the
 * positions of the failing edges (they have no target state), or undefined if there are none.
 */
export function noteStepFailures(space: Space, found: Findings, id: number, ref = id): Set<number> | undefined {
  const f = space.failures;
  if (f.length === 0) return undefined;
  const skip = new Set<number>();
  for (let i = 0; i < f.length; i += 2) {
    const pos = f[i]!;
    const code = f[i + 1]!;
    skip.add(pos);
    if (!found.has(code)) note(found, { kind: 'step', code, id: ref, k: pos, message: space.explain(id, code, pos) });
  }
  return skip;
}

/**
 * Breadth-first search. With `found` (all-violations mode, a space made with `collect`) it
 * does not stop at a violation: it notes the first of each property and searches on, not
 * following failing edges.
 */
export function bfs(space: Space, ctl: Control, stats: SearchStats, found?: Findings): Stop {
  const n0 = space.addInitial();
  if (found) {
    for (let id = 0; id < n0; id++) noteInvariants(space, found, id);
  } else {
    const bad = checkRoots(space, n0);
    if (bad) return bad;
  }
  let level = 0;
  let levelEnd = space.count;
  for (let id = 0; id < space.count; id++) {
    if (id === levelEnd) {
      level++;
      levelEnd = space.count;
    }
    space.truncate(0);
    const fail = space.expand(id);
    const n = space.top;
    stats.edges += n;
    if (fail) return { kind: 'step', code: fail, id, k: n - 1, pos: n - 1 };
    const skip = found ? noteStepFailures(space, found, id) : undefined;
    for (let pos = 0; pos < n; pos++) {
      if (skip?.has(pos)) continue;
      const nid = space.intern(pos, id, pos);
      if (nid >= 0) {
        stats.maxDepth = level + 1;
        if (found) {
          noteInvariants(space, found, nid);
          continue;
        }
        const c = space.check(nid);
        if (c) return { kind: 'invariant', code: c, id: nid };
      }
    }
    space.release(id);
    if (ctl.acct.exceeded) return { kind: 'memory' };
    ctl.tick(space, stats, level, space.count - id - 1);
  }
  return { kind: 'done' };
}

export function dfs(space: Space, ctl: Control, stats: SearchStats): Stop {
  const n0 = space.addInitial();
  const bad = checkRoots(space, n0);
  if (bad) return bad;
  let ids = new Int32Array(1024);
  let base = new Int32Array(1024);
  let end = new Int32Array(1024);
  let cursor = new Int32Array(1024);
  ctl.acct.add(4 * 4 * 1024);
  for (let root = 0; root < n0; root++) {
    space.truncate(0);
    let sp = 0;
    let stop: Stop | undefined;
    // push(root)
    const push = (id: number): Stop | undefined => {
      if (sp >= ids.length) {
        ids = growTo(ids, sp + 1, Int32Array, ctl.acct);
        base = growTo(base, sp + 1, Int32Array, ctl.acct);
        end = growTo(end, sp + 1, Int32Array, ctl.acct);
        cursor = growTo(cursor, sp + 1, Int32Array, ctl.acct);
      }
      const b = space.top;
      const fail = space.expand(id);
      const e = space.top;
      stats.edges += e - b;
      ids[sp] = id;
      base[sp] = b;
      end[sp] = e;
      cursor[sp] = b;
      if (sp > stats.maxDepth) stats.maxDepth = sp;
      sp++;
      if (fail) return { kind: 'step', code: fail, id, k: e - 1 - b, pos: e - 1 };
      return undefined;
    };
    stop = push(root);
    if (stop) return stop;
    while (sp > 0) {
      const f = sp - 1;
      const pos = cursor[f];
      if (pos < end[f]) {
        cursor[f] = pos + 1;
        const nid = space.intern(pos, ids[f], pos - base[f]);
        if (nid >= 0) {
          const c = space.check(nid);
          if (c) return { kind: 'invariant', code: c, id: nid };
          stop = push(nid);
          if (stop) return stop;
          if (ctl.acct.exceeded) return { kind: 'memory' };
          ctl.tick(space, stats, sp - 1, sp);
        }
      } else {
        space.truncate(base[f]);
        space.release(ids[f]);
        sp = f;
      }
    }
  }
  return { kind: 'done' };
}
