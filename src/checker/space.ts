// The engine's view of a model: a store of states numbered 0, 1, 2, ... in discovery order,
// a staging stack of successors, and the visited set. PackedSpace and ObjectSpace implement
// it; the search strategies (search.ts, liveness.ts) only talk to this interface.
// A Space must never decide search order, limits or results: that is the engine's job.
import type { TraceStep } from './types.js';

export interface Space {
  /** States stored so far; ids are 0 .. count-1 in discovery order. */
  readonly count: number;
  /** Staged edges on the staging stack. */
  readonly top: number;
  /** Interns the initial states (ids 0 .. n-1); returns n. */
  addInitial(): number;
  /**
   * Stages the initial states (from position 0) instead of interning them, for a search that
   * routes them itself (the parallel one); returns how many. Intern them with parent -1 and
   * k = their position: edgeIndexOf then tells which initial state a root is.
   */
  stageInitial(): number;
  /**
   * Stages the edges of state `id` on top of the staging stack (edge k of `id` is at
   * position top_before + k). Returns 0, or a step-property code for the last staged edge.
   */
  expand(id: number): number;
  /** Drops staged edges down to `top`. */
  truncate(top: number): void;
  /**
   * Interns the target of staged edge `pos`, the `k`-th edge of `parent`. Returns its new id;
   * or, if it was known: -1 when the space keeps no ids, else -2 - its id.
   */
  intern(pos: number, parent: number, k: number): number;
  /** State invariants of stored state `id`: 0, or the code of the first that fails. */
  check(id: number): number;
  /** All-violations mode: the codes of every invariant that fails in `id` (usually none). */
  checkAll(id: number): number[];
  /**
   * All-violations mode (a space made with `collect`): the step assertions that failed in the
   * last expand, as pairs (edge position, property code). Those edges have no target state;
   * expand then returns 0 and stages every other edge.
   */
  readonly failures: readonly number[];
  /** The state is expanded and no longer needed by the search (object states may be freed). */
  release(id: number): void;
  /** Liveness: process of staged edge `pos`; whether the state's request is outstanding. */
  processOf(pos: number): number;
  pending(id: number): boolean;
  readonly processes: readonly string[];
  readonly livenessName: string | undefined;
  propertyName(code: number): string;
  /** Why `code` fails in state `id` (invariant) or on staged edge `pos` of `id` (step). */
  explain(id: number, code: number, pos?: number): string;
  /** Parent id of `id` (-1 for an initial state) and the index of the edge from it. */
  parentOf(id: number): number;
  edgeIndexOf(id: number): number;
  /**
   * Replays edges `ks` from initial state `root` and describes each step; if `failLast`,
   * the last edge is a failing step (no state after it).
   */
  walk(root: number, ks: readonly number[], failLast: boolean): TraceStep[];
  /** Refreshes the memory account for parts it cannot count exactly (object states). */
  sampleMemory(): void;
}

/** Edge indices from the initial state to `id`, and that initial state. */
export function pathTo(space: Space, id: number): { root: number; ks: number[] } {
  const ks: number[] = [];
  let cur = id;
  for (;;) {
    const p = space.parentOf(cur);
    if (p < 0) break;
    ks.push(space.edgeIndexOf(cur));
    cur = p;
  }
  ks.reverse();
  return { root: cur, ks };
}
