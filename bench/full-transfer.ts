// Measurement behind the full model's state transfer in the parallel search (checkParallel,
// src/checker/full/spec.ts): a state that goes to its owner is sent as its action path and
// replayed there, only when it is new to the owner. The alternative, sending the world itself,
// pays on every edge sent (the sender cannot know whether the state is new): a serializer
// walks the whole object graph like clone() does and the receiver builds a graph like clone()
// does, so it costs at least two clones per sent edge. This prints, over the first states of a
// breadth-first search of a configuration, the mean CPU cost of clone(), replay(path), encode()
// and a structured clone of the path, the edges per new state, and both costs per state.
//
//   node dist/bench/full-transfer.js [--pages N] [--holders K,K] [--requests C] [--states S]
import { FullModel, pathOf, type FullState } from '../src/checker/full/model.js';
import type { HolderKind } from '../src/checker/full/world.js';
import { IPC_V8 } from '../src/model/profile.js';
import { RETRY } from '../src/userspace/policies.js';

function opt(argv: string[], name: string, dflt: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : dflt;
}

/** Mean CPU µs of f over the items (user + system of this process; it has one thread). */
function cpuMicros<T>(items: readonly T[], f: (x: T) => unknown): number {
  let sink = 0;
  const u0 = process.cpuUsage();
  for (const x of items) sink ^= f(x) === undefined ? 0 : 1;
  const u = process.cpuUsage(u0);
  if (sink === 2) console.log('');
  return (u.user + u.system) / items.length;
}

function main(argv: string[]): number {
  const pages = Number(opt(argv, 'pages', '2'));
  const holders = opt(argv, 'holders', 'odirect').split(',').filter((x) => x !== '') as HolderKind[];
  const requests = Number(opt(argv, 'requests', '1'));
  const want = Number(opt(argv, 'states', '2000'));
  const model = new FullModel({ pages, holders, requests, profile: IPC_V8, policy: { ...RETRY, maxRetries: 2 }, fence: true, waitForIo: true });
  // A breadth-first search of the first `want` states (worlds kept for the measurement).
  const seen = new Set<string>();
  const states: FullState[] = [];
  const queue = model.initialStates();
  for (const s of queue) seen.add(model.encode(s));
  let edges = 0;
  for (let i = 0; i < queue.length && states.length < want; i++) {
    const s = queue[i]!;
    const world = s.world!.clone();
    states.push({ ...s, world });
    model.successors(s, (_a, t) => {
      edges++;
      if (seen.has(t.enc!)) return;
      seen.add(t.enc!);
      queue.push(t);
    });
  }
  const expanded = states.length;
  const perState = edges / expanded;
  const clone = cpuMicros(states, (s) => s.world!.clone());
  const replay = cpuMicros(states, (s) => model.replay(s.trail));
  const encode = cpuMicros(states, (s) => s.world!.encode());
  const sendPath = cpuMicros(states, (s) => structuredClone(pathOf(s.trail)));
  const depth = states.reduce((a, s) => a + pathOf(s.trail).length, 0) / expanded;
  // Two workers: half of the edges go to the other one; each new state is replayed once.
  const sent = perState / 2;
  const byPath = replay + sent * sendPath;
  const byWorld = sent * 2 * clone;
  console.log(`${model.name}: ${expanded} states expanded, ${edges} edges (${perState.toFixed(1)} per state), mean path ${depth.toFixed(1)} actions; node ${process.version}`);
  console.log('| per state (CPU µs) | clone() | replay(path) | encode() | structured clone of the path |');
  console.log('|---|---:|---:|---:|---:|');
  console.log(`| mean | ${clone.toFixed(0)} | ${replay.toFixed(0)} | ${encode.toFixed(0)} | ${sendPath.toFixed(1)} |`);
  console.log(`\nwith 2 workers (${sent.toFixed(1)} edges sent per state): by path ${byPath.toFixed(0)} µs per state `
    + `(one replay + the sent paths); by world at least ${byWorld.toFixed(0)} µs (two clones per sent edge): `
    + `${(byWorld / byPath).toFixed(1)}x the path's cost`);
  return 0;
}

process.exitCode = main(process.argv.slice(2));
