// One worker thread of the parallel search (parallel.ts): it builds the model from its spec,
// owns the states whose hash falls to it (its own visited set and store), and runs the level
// the main thread asks for: expand every state it owns at the current depth, intern the
// successors it owns and send the others to their owners (parallel-route.ts), then intern
// what the peers sent until each peer has said 'end', and report. It answers parent queries
// for counterexamples afterwards. It must never decide when the search stops: the main
// thread does, from every worker's report.
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { makeSpace } from './engine.js';
import { MemoryAccount } from './memory.js';
import type { ObjectSpace } from './object-space.js';
import { PackedSpace } from './packed-space.js';
import { loadModel, setThreadSharedNumbering, type LevelReport, type ToWorker, type WorkerInit, type WorkerViolation } from './parallel-protocol.js';
import { ObjectRouter, PackedRouter, type Router } from './parallel-route.js';
import { noteInvariants, noteStepFailures, type Findings } from './search.js';

const init = workerData as WorkerInit;
const P = init.workers;
const me = init.index;
const all = init.allViolations;
const slot = new Int32Array(init.numbering);
setThreadSharedNumbering((name) => {
  Atomics.store(slot, 0, 0);
  parentPort!.postMessage({ t: 'number', name });
  Atomics.wait(slot, 0, 0);
  return slot[1]!;
});
const model = await loadModel(init.spec);
const acct = new MemoryAccount(init.maxMemoryMB !== undefined ? (init.maxMemoryMB * 1024 * 1024) / P : Infinity);
const space = model.kind === 'packed'
  ? new PackedSpace(model, acct, { withIds: false, hashBits: init.hashBits ?? 16, collect: all, part: { me, parts: P } })
  : makeSpace(model, acct, { allViolations: all }, false);
const peers: (MessagePort | undefined)[] = init.peers;
const router: Router = model.kind === 'packed'
  ? new PackedRouter(space as PackedSpace, model.words, me, peers)
  : new ObjectRouter(space as ObjectSpace<unknown, unknown>, model, me, peers);
const main = parentPort!;

/** Progress is looked at every progressMask + 1 expansions (object states are slow to expand). */
const progressMask = model.kind === 'packed' ? 255 : 0;
const yieldMask = model.kind === 'packed' ? 1023 : 7;

/** The global ref of local state `id` (unique over all workers). */
const ref = (id: number): number => id * P + me;

// What the current level has found so far (reset at each report).
let newStates = 0;
let edges = 0;
let violation: WorkerViolation | undefined;
let found: Findings = new Map();

function onNew(id: number): void {
  newStates++;
  if (all) {
    noteInvariants(space, found, id, ref(id));
    return;
  }
  if (violation) return;
  const c = space.check(id);
  if (c) violation = { kind: 'invariant', code: c, ref: ref(id), k: 0, message: space.explain(id, c) };
}

let ends = 0;
let wake: (() => void) | undefined;
for (const port of peers) {
  port?.on('message', (m: { t: string }) => {
    if (m.t === 'batch') router.receive(m, onNew);
    else if (++ends === P - 1) wake?.();
  });
}

/** Sends the queued batches and 'end' to every peer, then waits for theirs. */
async function exchange(): Promise<void> {
  router.flush();
  for (const p of peers) p?.postMessage({ t: 'end' });
  if (ends < P - 1) await new Promise<void>((r) => { wake = r; });
  wake = undefined;
  ends = 0;
}

/** The states this worker owns at the depth being expanded: ids frontier[0] .. frontier[1]-1. */
let frontier: [number, number] = [0, 0];

/**
 * Expands the frontier. Every yieldMask + 1 states it lets the event loop run, so the batches
 * peers send meanwhile are interned now (they are states of the next depth, like the ones
 * found here) instead of piling up in memory until the level ends.
 */
async function expandLevel(): Promise<void> {
  const [from, to] = frontier;
  let lastReport = performance.now();
  for (let id = from; id < to; id++) {
    space.truncate(0);
    const fail = space.expand(id);
    const n = space.top;
    edges += n;
    if (fail) {
      violation ??= { kind: 'step', code: fail, ref: ref(id), k: n - 1, message: space.explain(id, fail, n - 1) };
      return;
    }
    const skip = all ? noteStepFailures(space, found, id, ref(id)) : undefined;
    const parent = ref(id);
    for (let pos = 0; pos < n; pos++) {
      if (skip?.has(pos)) continue;
      const nid = router.route(pos, parent, pos);
      if (nid >= 0) onNew(nid);
    }
    space.release(id);
    if (violation || acct.exceeded) return;
    if (((id - from) & yieldMask) === yieldMask) await new Promise((r) => setImmediate(r));
    if (((id - from) & progressMask) === progressMask) {
      space.sampleMemory();
      const now = performance.now();
      if (now - lastReport >= init.progressIntervalMs) {
        lastReport = now;
        main.postMessage({ t: 'progress', states: space.count, edges, queue: to - id - 1, memoryBytes: acct.bytes });
      }
    }
  }
}

function report(): void {
  space.sampleMemory();
  const r: LevelReport = {
    t: 'level', states: space.count, newStates, edges, memoryBytes: acct.bytes, exceeded: acct.exceeded,
    ...(violation ? { violation } : {}),
    found: [...found.values()].map((f) => ({ kind: f.kind, code: f.code, ref: f.id, k: f.k, message: f.message })),
  };
  // States that arrive from now on were found at the next depth: they are the next frontier's.
  frontier = [frontier[1], space.count];
  newStates = 0;
  edges = 0;
  violation = undefined;
  found = new Map();
  main.postMessage(r);
}

main.on('message', (m: ToWorker) => {
  void (async () => {
    if (m.t === 'roots') {
      if (me === 0) {
        const n = space.stageInitial();
        for (let pos = 0; pos < n; pos++) {
          const id = router.route(pos, -1, pos);
          if (id >= 0) onNew(id);
        }
        space.truncate(0);
      }
      await exchange();
      frontier = [0, 0];
      report();
    } else if (m.t === 'level') {
      await expandLevel();
      await exchange();
      report();
    } else if (m.t === 'parent') {
      main.postMessage({ t: 'parent', parent: space.parentOf(m.id), k: space.edgeIndexOf(m.id) });
    }
  })().catch((e: unknown) => {
    main.postMessage({ t: 'error', message: e instanceof Error ? e.stack ?? e.message : String(e) });
  });
});
main.postMessage({ t: 'ready' });
