// The parallel safety search: level-synchronous breadth-first search over worker threads
// (parallel-worker.ts) with hash-partitioned ownership of states. Each worker owns the states
// whose hash falls to it (its part of the visited set) and expands them; successors go to their
// owner in batches. The main thread runs the levels: all workers expand depth d, exchange, and
// report before depth d+1 starts, so every state is first found at its least depth, the state
// and edge counts are those of the sequential search, and a violation found at depth d has a
// counterexample as short as the sequential one. It then rebuilds counterexamples by asking the
// owners for parents, and replays them on its own copy of the model.
// It must never print: progress goes to onProgress, the result is returned.
import { Worker } from 'node:worker_threads';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { counterexample, makeSpace, withViolations } from './engine.js';
import { MemoryAccount, mib } from './memory.js';
import {
  loadModel, type FromWorker, type LevelReport, type ModelSpec, type WorkerInit, type WorkerViolation,
} from './parallel-protocol.js';
import type { CheckOptions, CheckResult, Counterexample } from './types.js';

export type { ModelSpec } from './parallel-protocol.js';

export interface ParallelOptions extends Omit<CheckOptions, 'search'> {
  /** Worker threads, >= 1. */
  readonly workers: number;
}

/** The most workers a run may ask for. */
export const MAX_WORKERS = 64;

/** One worker thread with a queue of the replies it sent. */
class Peer {
  private readonly queue: FromWorker[] = [];
  private waiting: ((m: FromWorker) => void) | undefined;
  failure: Error | undefined;

  constructor(
    readonly worker: Worker, private readonly onProgress: (m: FromWorker & { t: 'progress' }) => void, onFail: (e: Error) => void,
    slot: Int32Array, numbers: Map<string, number>,
  ) {
    worker.on('message', (m: FromWorker) => {
      if (m.t === 'progress') { this.onProgress(m); return; }
      if (m.t === 'number') {
        let n = numbers.get(m.name);
        if (n === undefined) numbers.set(m.name, (n = numbers.size));
        slot[1] = n;
        Atomics.store(slot, 0, 1);
        Atomics.notify(slot, 0);
        return;
      }
      if (m.t === 'error') { onFail(new Error(`parallel search worker: ${m.message}`)); return; }
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = undefined;
        w(m);
      } else this.queue.push(m);
    });
    worker.on('error', onFail);
  }

  next(): Promise<FromWorker> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    return new Promise((r) => { this.waiting = r; });
  }
}

/**
 * Safety check on `workers` threads, breadth-first. Same verdict, states and edges as
 * check(model) for a complete search; a violation has a counterexample of the same length
 * (all-violations mode: the same properties, each with a trace of the same length).
 */
export async function checkParallel(spec: ModelSpec, opts: ParallelOptions): Promise<CheckResult> {
  const P = opts.workers;
  if (!Number.isInteger(P) || P < 1 || P > MAX_WORKERS) throw new Error(`checkParallel: workers must be an integer in 1..${MAX_WORKERS} (got ${P})`);
  const t0 = performance.now();
  const seconds = (): number => (performance.now() - t0) / 1000;
  const model = await loadModel(spec);
  // Progress: the latest counts of each worker within the level, on top of the levels done.
  let doneEdges = 0;
  let level = 0;
  const live = Array.from({ length: P }, () => ({ states: 0, edges: 0, queue: 0, memoryBytes: 0 }));
  let lastReport = t0;
  const interval = opts.progressIntervalMs ?? 1000;
  const progress = (i: number, m: { states: number; edges: number; queue: number; memoryBytes: number }): void => {
    live[i] = m;
    const now = performance.now();
    if (!opts.onProgress || now - lastReport < interval) return;
    lastReport = now;
    const states = live.reduce((a, x) => a + x.states, 0);
    const s = (now - t0) / 1000;
    opts.onProgress({
      states, edges: doneEdges + live.reduce((a, x) => a + x.edges, 0), statesPerSecond: states / s,
      depth: Math.max(0, level - 1), queue: live.reduce((a, x) => a + x.queue, 0),
      memoryBytes: live.reduce((a, x) => a + x.memoryBytes, 0), seconds: s,
    });
  };

  const ports: (MessagePort | undefined)[][] = Array.from({ length: P }, () => new Array<MessagePort | undefined>(P).fill(undefined));
  for (let i = 0; i < P; i++) {
    for (let j = i + 1; j < P; j++) {
      const ch = new MessageChannel();
      ports[i]![j] = ch.port1;
      ports[j]![i] = ch.port2;
    }
  }
  let fail: (e: Error) => void = () => {};
  const failed = new Promise<never>((_r, reject) => { fail = reject; });
  failed.catch(() => {});
  const numbers = new Map<string, number>();
  const peers = ports.map((mine, index) => {
    const numbering = new SharedArrayBuffer(8);
    const init: WorkerInit = {
      numbering,
      spec, index, workers: P, peers: mine, allViolations: opts.allViolations === true,
      ...(opts.maxMemoryMB !== undefined ? { maxMemoryMB: opts.maxMemoryMB } : {}),
      ...(opts.hashBits !== undefined ? { hashBits: opts.hashBits } : {}),
      progressIntervalMs: Math.min(interval, 1000),
    };
    const w = new Worker(new URL('./parallel-worker.js', import.meta.url), {
      workerData: init, transferList: mine.filter((p): p is MessagePort => p !== undefined),
    });
    return new Peer(w, (m) => progress(index, m), (e) => fail(e), new Int32Array(numbering), numbers);
  });
  const all = <T extends FromWorker>(): Promise<T[]> => Promise.race([Promise.all(peers.map((p) => p.next() as Promise<T>)), failed]);
  try {
    await all();
    let states = 0;
    let edges = 0;
    let maxDepth = 0;
    let memoryBytes = 0;
    let stop: 'done' | 'memory' | 'violation' = 'done';
    let first: WorkerViolation | undefined;
    const found = new Map<number, WorkerViolation>();
    for (;;) {
      for (const p of peers) p.worker.postMessage(level === 0 ? { t: 'roots' } : { t: 'level' });
      const reports = await all<LevelReport>();
      let fresh = 0;
      states = 0;
      memoryBytes = 0;
      for (const r of reports) {
        states += r.states;
        fresh += r.newStates;
        edges += r.edges;
        memoryBytes += r.memoryBytes;
        first ??= r.violation;
        for (const f of r.found) if (!found.has(f.code)) found.set(f.code, f);
      }
      doneEdges = edges;
      live.forEach((x, i) => { live[i] = { ...x, edges: 0 }; });
      if (fresh > 0 && level > 0) maxDepth = level;
      level++;
      if (first) { stop = 'violation'; break; }
      if (reports.some((r) => r.exceeded)) { stop = 'memory'; break; }
      if (fresh === 0) break;
    }
    // Counterexamples: parents from the owners, replayed on this thread's copy of the model.
    const space = makeSpace(model, new MemoryAccount(), {}, false);
    const n0 = space.addInitial();
    const rebuild = async (v: WorkerViolation): Promise<Counterexample> => {
      const ks: number[] = [];
      let cur = v.ref;
      let rootIndex = 0;
      for (;;) {
        const w = cur % P;
        peers[w]!.worker.postMessage({ t: 'parent', id: (cur - w) / P });
        const a = (await Promise.race([peers[w]!.next(), failed])) as { parent: number; k: number };
        if (a.parent < 0) { rootIndex = a.k; break; }
        ks.push(a.k);
        cur = a.parent;
      }
      ks.reverse();
      let root = 0;
      while (root < n0 - 1 && space.edgeIndexOf(root) !== rootIndex) root++;
      return counterexample(space, v.kind, v.code, v.message, root, ks, v.k);
    };
    const base = {
      model: model.name, search: 'bfs' as const, states, edges, maxDepth, seconds: seconds(), memoryBytes, workers: P,
    };
    let r: CheckResult;
    if (stop === 'memory') {
      r = {
        ...base, status: 'incomplete',
        stopReason: `memory limit of ${opts.maxMemoryMB} MB reached (search structures ${mib(memoryBytes)} MB over ${P} workers): `
          + `stopped after ${states} states, ${edges} edges, depth ${maxDepth}; the search is incomplete`,
      };
    } else if (first) {
      r = { ...base, status: 'violation', counterexample: await rebuild(first) };
    } else r = { ...base, status: 'ok' };
    if (!opts.allViolations) return r;
    const ces: Counterexample[] = [];
    for (const f of found.values()) ces.push(await rebuild(f));
    return withViolations(r, ces);
  } finally {
    await Promise.all(peers.map((p) => p.worker.terminate()));
  }
}
