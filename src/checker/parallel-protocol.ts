// The messages between the parallel search's main thread (parallel.ts) and its workers
// (parallel-worker.ts), and how both build the model: from a spec naming a module and its
// factory, since a model object (with functions) cannot be sent to a thread.
// Types and the model loader only; it must never hold search logic.
import type { MessagePort } from 'node:worker_threads';
import type { AnyModel } from './types.js';

/**
 * How to build a model in any thread: `module` (a file: URL) exports `factory(arg)`, which
 * returns the model; `arg` must be structured-cloneable. Every thread builds the same model.
 */
export interface ModelSpec {
  readonly module: string;
  readonly factory: string;
  readonly arg: unknown;
}

export async function loadModel(spec: ModelSpec): Promise<AnyModel> {
  const mod = (await import(spec.module)) as Record<string, unknown>;
  const f = mod[spec.factory];
  if (typeof f !== 'function') throw new Error(`model spec: ${spec.module} exports no function ${spec.factory}`);
  return (f as (arg: unknown) => AnyModel)(spec.arg);
}

/**
 * In a worker of the parallel search: numbers that are the same in every thread for the same
 * name (the main thread hands them out in first-asked order; the worker blocks for the answer).
 * Undefined outside such a worker. A model whose encoding numbers things per thread uses it.
 */
let sharedNumbering: ((name: string) => number) | undefined;

export function threadSharedNumbering(): ((name: string) => number) | undefined {
  return sharedNumbering;
}

export function setThreadSharedNumbering(f: (name: string) => number): void {
  sharedNumbering = f;
}

export interface WorkerInit {
  readonly spec: ModelSpec;
  readonly index: number;
  readonly workers: number;
  /** peers[j]: the port to worker j (undefined for this worker itself). */
  readonly peers: (MessagePort | undefined)[];
  readonly allViolations: boolean;
  readonly maxMemoryMB?: number;
  readonly hashBits?: number;
  readonly progressIntervalMs: number;
  /** [answered flag, number]: the reply slot of threadSharedNumbering. */
  readonly numbering: SharedArrayBuffer;
}

export type ToWorker =
  /** Intern the initial states (worker 0 stages and routes them). */
  | { readonly t: 'roots' }
  /** Expand the states of the current depth. */
  | { readonly t: 'level' }
  /** The parent ref and edge index of local state `id`. */
  | { readonly t: 'parent'; readonly id: number };

/** A violation a worker found: `ref` is the bad state (invariant) or the failing edge's source. */
export interface WorkerViolation {
  readonly kind: 'invariant' | 'step';
  readonly code: number;
  readonly ref: number;
  readonly k: number;
  readonly message: string;
}

export interface LevelReport {
  readonly t: 'level';
  /** States this worker owns in all. */
  readonly states: number;
  readonly newStates: number;
  readonly edges: number;
  readonly memoryBytes: number;
  readonly exceeded: boolean;
  /** The first violation (stop-at-first mode). */
  readonly violation?: WorkerViolation;
  /** All-violations mode: the first violation of each property in this level. */
  readonly found: readonly WorkerViolation[];
}

export type FromWorker =
  | { readonly t: 'ready' }
  | LevelReport
  | { readonly t: 'progress'; readonly states: number; readonly edges: number; readonly queue: number; readonly memoryBytes: number }
  | { readonly t: 'parent'; readonly parent: number; readonly k: number }
  | { readonly t: 'error'; readonly message: string }
  /** A number for `name` (threadSharedNumbering), to be written into the worker's slot. */
  | { readonly t: 'number'; readonly name: string };
