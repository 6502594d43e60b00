// Public types of the explicit-state checker: the two model interfaces a model implements
// (ObjectModel for object states with a string/bytes encoding, PackedModel for fixed-width
// word-packed states), the options of a run and its result.
// This module holds types only; it must never contain search logic or model knowledge.

/** A parameter value in an edge or state description. */
export type Value = number | string | boolean;

/** What one edge did: the action and its parameters, for traces. */
export interface EdgeLabel {
  /** The actor (process) taking the step, e.g. `holder 0`, `guest`, `vmm`, `host`. */
  readonly process: string;
  /** The action, e.g. `pin`, `request`, `check_commit`. */
  readonly action: string;
  readonly params: Readonly<Record<string, Value>>;
}

/** A named state predicate. Returns null when it holds, else a message saying why not. */
export interface StateInvariant<S> {
  readonly name: string;
  check(s: S): string | null;
}

/** A named predicate on one edge (from, label, to). Returns null when it holds. */
export interface StepAssertion<S, L> {
  readonly name: string;
  check(from: S, label: L, to: S): string | null;
}

/**
 * A model with object states (the full gmemkit kernel model plugs in here).
 * The engine interns `encode(s)` (a canonical string or byte string: equal encodings mean
 * the same state) and never looks inside S. `successors` must be deterministic: the engine
 * rebuilds counterexamples by replaying edge indices from an initial state.
 */
export interface ObjectModel<S, L = EdgeLabel> {
  readonly kind: 'object';
  readonly name: string;
  initialStates(): readonly S[];
  /**
   * Calls `emit` once per enabled (action, parameters) pair, in a fixed order. Self-loops and
   * parallel edges are separate calls. `next` must be a fresh state that does not alias `s`.
   */
  successors(s: S, emit: (label: L, next: S) => void): void;
  readonly invariants: readonly StateInvariant<S>[];
  readonly stepAssertions?: readonly StepAssertion<S, L>[];
  encode(s: S): string | Uint8Array;
  describeEdge(label: L): EdgeLabel;
  /** Optional, for traces: the state's variables (used to print what each step changed). */
  describeState?(s: S): Readonly<Record<string, Value>>;
  /** Liveness only: processes in fairness order, and which process takes an edge. */
  readonly processes?: readonly string[];
  processOf?(label: L): number;
  /**
   * Parallel search only: a state as structured-cloneable data, to send it to the worker that
   * owns it, and the state rebuilt from that data (`key` is its encoding). Without them the
   * state itself is structured-cloned (fine for plain-data states).
   */
  pack?(s: S): unknown;
  unpack?(data: unknown, key: string): S;
  /** Liveness only: the response property [] (pending -> <> !pending). */
  readonly liveness?: { readonly name: string; pending(s: S): boolean };
}

/**
 * The staging area a PackedModel writes successors into: edge i occupies
 * `words[i*W .. i*W+W)` and `codes[i]`; `top` is the number of staged edges. The engine
 * guarantees room for `maxEdges` more edges before each call.
 */
export interface EdgeSink {
  words: Uint32Array;
  codes: Int32Array;
  top: number;
  /**
   * All-violations mode only (else absent): the model records each failing step assertion here
   * as a pair (edge position, property code) and goes on staging the state's other edges.
   */
  failures?: number[];
}

/**
 * A model whose states are W 32-bit words (bit 31 of every word must be 0). This is the fast
 * path: no allocation per state or edge. The reference protocol implements it.
 */
export interface PackedModel {
  readonly kind: 'packed';
  readonly name: string;
  /** Words per state, 1..8. */
  readonly words: number;
  /** An upper bound on the edges leaving any state. */
  readonly maxEdges: number;
  /** Property names; property code c (>= 1) is properties[c - 1]. */
  readonly properties: readonly string[];
  /** Stages the initial states, at most maxEdges of them (codes ignored). */
  initial(sink: EdgeSink): void;
  /**
   * Stages one edge per enabled (action, parameters) pair of the state at `state[off..]`,
   * appending at `sink.top`. Returns 0, or the code of a step assertion that failed: then
   * the failing edge is the last staged one (its words are unspecified) and no more follow.
   * If `sink.failures` is present, a failing edge is recorded there instead (its words are
   * unspecified), the other edges follow as usual, and the return value is 0.
   */
  expand(state: Uint32Array, off: number, sink: EdgeSink): number;
  /** Checks the state invariants: 0, or the code of the first that fails. */
  check(state: Uint32Array, off: number): number;
  /**
   * All-violations mode: every invariant that fails, as a bit mask (bit c for property code c).
   * Without it the mode sees only the first failing invariant of each state.
   */
  checkAll?(state: Uint32Array, off: number): number;
  /** Why property `code` fails in this state (or on the failing edge), for reports. */
  explain(state: Uint32Array, off: number, code: number): string;
  describeEdge(code: number): EdgeLabel;
  describeState(state: Uint32Array, off: number): Readonly<Record<string, Value>>;
  /** Liveness only: processes in fairness order, and which process takes edge `code`. */
  readonly processes?: readonly string[];
  processOf?(code: number): number;
  /** Liveness only: the response property [] (pending -> <> !pending). */
  readonly liveness?: { readonly name: string; pending(state: Uint32Array, off: number): boolean };
}

export type AnyModel = PackedModel | ObjectModel<unknown, unknown>;

/** Progress of a long run, reported about once a second. */
export interface Progress {
  readonly states: number;
  readonly edges: number;
  readonly statesPerSecond: number;
  readonly depth: number;
  /** States discovered and not yet expanded (BFS) or stack frames (DFS). */
  readonly queue: number;
  readonly memoryBytes: number;
  readonly seconds: number;
}

export interface CheckOptions {
  /** Breadth-first (default; shortest counterexamples) or iterative depth-first. */
  readonly search?: 'bfs' | 'dfs';
  /** Stop, with the statistics so far, once the search structures would exceed this. */
  readonly maxMemoryMB?: number;
  readonly onProgress?: (p: Progress) => void;
  /** Default 1000. */
  readonly progressIntervalMs?: number;
  /** log2 of the initial hash-table size (packed models); the table grows as needed. */
  readonly hashBits?: number;
  /**
   * Breadth-first only: go on after a violation and report each violated property once, with
   * its shortest counterexample (the first found in breadth-first order).
   */
  readonly allViolations?: boolean;
}

/** One step of a counterexample, numbered from 1. */
export interface TraceStep {
  readonly step: number;
  readonly process: string;
  readonly action: string;
  readonly params: Readonly<Record<string, Value>>;
  /** `process: action(k=v, ...)` */
  readonly text: string;
  /** Variables this step changed, `name: before -> after` (empty for a failing step). */
  readonly changes: readonly string[];
}

export interface Counterexample {
  readonly property: string;
  /** invariant: a bad state; step: a bad edge (the last step); cycle: a fair lasso. */
  readonly kind: 'invariant' | 'step' | 'cycle';
  readonly message: string;
  /**
   * SPIN's "at depth": steps from the initial state to the bad state, or to the state the
   * failing step starts from (so a step assertion has steps.length = depth + 1).
   */
  readonly depth: number;
  readonly steps: readonly TraceStep[];
  /** Lassos only: steps[cycleStart - 1 ..] repeat forever. */
  readonly cycleStart?: number;
}

export interface CheckResult {
  readonly model: string;
  readonly search: 'bfs' | 'dfs' | 'liveness';
  /** ok: exhaustive, no violation; violation: see counterexample; incomplete: see stopReason. */
  readonly status: 'ok' | 'violation' | 'incomplete';
  readonly states: number;
  readonly edges: number;
  /** BFS: greatest distance from an initial state; DFS: deepest stack. */
  readonly maxDepth: number;
  readonly seconds: number;
  /** Bytes held by the search structures at the end (accounted, not RSS). */
  readonly memoryBytes: number;
  /** The first (shortest) counterexample found. */
  readonly counterexample?: Counterexample;
  /**
   * allViolations only: one counterexample per violated property, in the order found (so by
   * length), each the shortest for its property; empty when none is violated.
   */
  readonly violations?: readonly Counterexample[];
  /** Parallel search only: the number of worker threads. */
  readonly workers?: number;
  readonly stopReason?: string;
}
