// The reference protocol against its SPIN/rumur anchor: exact state and edge counts, the
// shortest counterexamples of bug variants 1-4, liveness with and without cooperative
// userspace, symmetry reduction, and the `gmemkit check` command's arguments and output.
// Larger configurations ((4,2,2), (4,3,2)) belong to bench/check.ts, not here.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkCommand } from '../src/cli/check-command.js';
import { check, checkLiveness } from '../src/checker/engine.js';
import { MemoryAccount } from '../src/checker/memory.js';
import { PackedSpace } from '../src/checker/packed-space.js';
import { F } from '../src/checker/reference/layout.js';
import { ReferenceModel } from '../src/checker/reference/model.js';
import { referenceParams, type ReferenceParams } from '../src/checker/reference/params.js';
import { bfs, Control } from '../src/checker/search.js';
import type { EdgeSink, PackedModel } from '../src/checker/types.js';

const SPIN = 'docs/checker.md §4.1';
const model = (p: Partial<ReferenceParams>): ReferenceModel => new ReferenceModel(referenceParams(p));

/**
 * The same model with each state's edges in pan's order: processes from the highest pid down
 * (host, vmm, guest, holder H-1 .. holder 0), each process's edges in the model's own order.
 * A failing step assertion stays last, as the PackedModel contract requires.
 */
function panOrder(m: ReferenceModel): PackedModel {
  const W = m.words;
  const staged: EdgeSink = { words: new Uint32Array(m.maxEdges * W), codes: new Int32Array(m.maxEdges), top: 0 };
  return {
    kind: 'packed', name: `${m.name} (pan order)`, words: W, maxEdges: m.maxEdges, properties: m.properties,
    initial: (sink) => m.initial(sink),
    expand(st, off, sink) {
      staged.top = 0;
      const fail = m.expand(st, off, staged);
      const order = Array.from({ length: staged.top }, (_, k) => k);
      if (!fail) order.sort((a, b) => m.processOf(staged.codes[b]) - m.processOf(staged.codes[a]) || a - b);
      for (const k of order) {
        sink.codes[sink.top] = staged.codes[k];
        sink.words.set(staged.words.subarray(k * W, k * W + W), sink.top * W);
        sink.top++;
      }
      return fail;
    },
    check: (st, off) => m.check(st, off),
    explain: (st, off, code) => m.explain(st, off, code),
    describeEdge: (code) => m.describeEdge(code),
    describeState: (st, off) => m.describeState(st, off),
  };
}

describe('reference protocol: reachable states and edges equal SPIN NOREDUCE', () => {
  // edges = SPIN "transitions" - 1 (SPIN also counts the initial state) = rumur "rules fired".
  const rows = [
    { n: 2, h: 1, c: 1, states: 963, edges: 6903, bfsDepth: undefined, cite: `${SPIN}, correct model, (2,1,1) NOREDUCE` },
    { n: 3, h: 2, c: 2, states: 142435, edges: 1501513, bfsDepth: 14, cite: `${SPIN}, (3,2,2) NOREDUCE (BFS distance 14)` },
  ];
  for (const r of rows) {
    it(`(${r.n},${r.h},${r.c}) breadth-first: ${r.states} states, ${r.edges} edges [${r.cite}]`, () => {
      const res = check(model({ pages: r.n, holders: r.h, requests: r.c }));
      assert.equal(res.status, 'ok');
      assert.equal(res.states, r.states);
      assert.equal(res.edges, r.edges);
      if (r.bfsDepth !== undefined) assert.equal(res.maxDepth, r.bfsDepth);
    });
    it(`(${r.n},${r.h},${r.c}) depth-first: the same counts [${r.cite}]`, () => {
      const res = check(model({ pages: r.n, holders: r.h, requests: r.c }), { search: 'dfs' });
      assert.equal(res.status, 'ok');
      assert.equal(res.states, r.states);
      assert.equal(res.edges, r.edges);
    });
  }
});

describe('reference protocol: the word layout never changes the counts', () => {
  // 12 bits per word spreads (3,2,2) over 4 words: the generic multi-word hash and copy paths.
  it(`(3,2,2) in 4 words: 142435 states, 1501513 edges [${SPIN}, (3,2,2) NOREDUCE]`, () => {
    const m = new ReferenceModel(referenceParams({}), { wordBits: 12 });
    assert.equal(m.words, 4);
    const res = check(m);
    assert.equal(res.states, 142435);
    assert.equal(res.edges, 1501513);
    assert.equal(check(new ReferenceModel(referenceParams({ bug: 3 }), { wordBits: 12 })).counterexample?.depth, 4);
  });
});

describe('reference protocol: bug variants, breadth-first shortest counterexample at (3,2,2)', () => {
  // depth = SPIN's "at depth" (trail length); for the S3 step assertion the failing step is
  // one more (rumur counts it: 5), so the trace has depth + 1 steps.
  const BUGS = 'docs/checker.md §4.2, BFS rows (3,2,2); §4.4 (rumur)';
  const rows = [
    { bug: 1, property: 'S2 private page pinned', depth: 4, steps: 4, kind: 'invariant' },
    { bug: 2, property: 'S2 private page pinned', depth: 5, steps: 5, kind: 'invariant' },
    { bug: 3, property: 'S3 failed conversion changed priv', depth: 4, steps: 5, kind: 'step' },
    { bug: 4, property: 'S1 private page mapped', depth: 4, steps: 4, kind: 'invariant' },
  ];
  for (const r of rows) {
    it(`BUG ${r.bug}: ${r.property}, trail length ${r.depth} [${BUGS}]`, () => {
      const res = check(model({ bug: r.bug }));
      assert.equal(res.status, 'violation');
      const ce = res.counterexample!;
      assert.equal(ce.property, r.property);
      assert.equal(ce.kind, r.kind);
      assert.equal(ce.depth, r.depth);
      assert.equal(ce.steps.length, r.steps);
      assert.deepEqual(ce.steps.map((s) => s.step), Array.from({ length: r.steps }, (_, i) => i + 1));
    });
  }
  // SEMANTIC (only S4, S5, WF checked). At the shortest depth both an S4 and an S5 state
  // exist for BUG 1 and 2, so which property a BFS reports depends on the order of the edges.
  // pan expands a state's processes from the highest pid down (holder 0..H-1, monitor, guest,
  // vmm, host in gmem.pml's declaration order; no -DREVERSE), each in its source order:
  // explored in that order, this checker reports exactly SPIN's property at SPIN's depth.
  const semantic = [
    { bug: 1, property: 'S4 host can reach guest-private data', depth: 5 },
    { bug: 2, property: 'S4 host can reach guest-private data', depth: 6 },
    { bug: 4, property: 'S5 private content changed / lost', depth: 5 },
  ];
  for (const r of semantic) {
    it(`BUG ${r.bug} SEMANTIC, pan's edge order: ${r.property}, trail length ${r.depth} [docs/checker.md §4.2, SEMANTIC]`, () => {
      const res = check(panOrder(model({ bug: r.bug, semantic: true })));
      assert.equal(res.status, 'violation');
      const ce = res.counterexample!;
      assert.equal(ce.property, r.property);
      assert.equal(ce.kind, 'invariant');
      assert.equal(ce.depth, r.depth);
      assert.equal(ce.steps.length, r.depth);
    });
    it(`BUG ${r.bug} SEMANTIC, the checker's own edge order: the same shortest depth ${r.depth} [docs/checker.md §4.2, SEMANTIC]`, () => {
      // The shortest depth does not depend on the edge order (the property may: see above).
      const res = check(model({ bug: r.bug, semantic: true }));
      assert.equal(res.counterexample?.kind, 'invariant');
      assert.equal(res.counterexample?.depth, r.depth);
    });
  }
  it('pan\'s edge order changes neither the state nor the edge count (3,2,2) [' + SPIN + ', (3,2,2) NOREDUCE]', () => {
    const res = check(panOrder(model({})));
    assert.equal(res.states, 142435);
    assert.equal(res.edges, 1501513);
  });
  it('depth-first also finds BUG 2, with a longer trail', () => {
    const res = check(model({ bug: 2 }), { search: 'dfs' });
    assert.equal(res.counterexample?.property, 'S2 private page pinned');
    assert.ok(res.counterexample!.depth >= 5);
  });
});

/** Replays a counterexample's steps on the packed model, returning the state after each. */
function replay(m: ReferenceModel, texts: readonly string[]): Uint32Array[] {
  const W = m.words;
  const sink: EdgeSink = { words: new Uint32Array(m.maxEdges * W), codes: new Int32Array(m.maxEdges), top: 0 };
  m.initial(sink);
  let cur = sink.words.slice(0, W);
  const states = [cur];
  for (const t of texts) {
    sink.top = 0;
    m.expand(cur, 0, sink);
    const matches = Array.from({ length: sink.top }, (_, k) => k).filter((k) => {
      const l = m.describeEdge(sink.codes[k]);
      return `${l.process}: ${l.action}(${Object.entries(l.params).map(([a, v]) => `${a}=${v}`).join(', ')})` === t;
    });
    assert.equal(matches.length, 1, `step '${t}' is one enabled edge`);
    cur = sink.words.slice(matches[0] * W, matches[0] * W + W);
    states.push(cur);
  }
  return states;
}

describe('reference protocol: liveness, every request completes under weak fairness', () => {
  const LIVE = 'docs/checker.md §4.3';
  it(`COOP=1 (3,2,2): holds [${LIVE}]`, () => {
    const res = checkLiveness(model({ coop: true }));
    assert.equal(res.status, 'ok');
  });
  it(`COOP=0 (3,2,2): violated by a fair cycle that keeps the request outstanding [${LIVE}]`, () => {
    const m = model({});
    const res = checkLiveness(m);
    assert.equal(res.status, 'violation');
    const ce = res.counterexample!;
    assert.equal(ce.kind, 'cycle');
    assert.ok(ce.cycleStart !== undefined && ce.cycleStart <= ce.steps.length);
    const states = replay(m, ce.steps.map((s) => s.text));
    const start = states[ce.cycleStart! - 1];
    assert.deepEqual(states[states.length - 1], start, 'the cycle returns to where it started');
    for (const s of states.slice(ce.cycleStart! - 1)) assert.ok(m.liveness.pending(s, 0), 'request outstanding throughout');
    // Weak fairness: each process moves in the cycle or is disabled somewhere on it.
    const moved = new Set(ce.steps.slice(ce.cycleStart! - 1).map((s) => s.process));
    for (const p of m.processes) {
      if (moved.has(p)) continue;
      const disabled = states.slice(ce.cycleStart! - 1).some((s) => {
        const sink: EdgeSink = { words: new Uint32Array(m.maxEdges * m.words), codes: new Int32Array(m.maxEdges), top: 0 };
        m.expand(s, 0, sink);
        return !Array.from(sink.codes.subarray(0, sink.top)).some((c) => m.describeEdge(c).process === p);
      });
      assert.ok(disabled, `${p} neither moves nor is ever disabled on the cycle`);
    }
  });
});

describe('reference protocol: symmetry reduction over interchangeable holders', () => {
  it('(2,3,1): reduced states = orbits of the reachable states (IOU and VFIO swap)', () => {
    const p = { pages: 2, holders: 3, requests: 1 };
    const m = model(p);
    const acct = new MemoryAccount();
    const space = new PackedSpace(m, acct, { withIds: false, hashBits: 12 });
    bfs(space, new Control(acct, undefined, 1000), { edges: 0, maxDepth: 0 });
    const L = m.layout;
    const W = m.words;
    const orbits = new Set<string>();
    const st = (space as unknown as { store: Uint32Array }).store;
    for (let id = 0; id < space.count; id++) {
      const w = Array.from(st.subarray(id * W, id * W + W));
      const i = L.word[F.HPG];
      const hb = L.holderBits;
      const hp = (w[i] >>> L.shift[F.HPG]) & L.mask[F.HPG];
      const pins = [0, 1, 2].map((h) => (hp >>> (h * hb)) & ((1 << hb) - 1));
      const sorted = [pins[0], ...[pins[1], pins[2]].sort((a, b) => a - b)];
      const canon = sorted.reduce((acc, v, h) => acc | (v << (h * hb)), 0);
      w[i] = (w[i] & ~(L.mask[F.HPG] << L.shift[F.HPG])) | (canon << L.shift[F.HPG]);
      orbits.add(w.join(','));
    }
    const reduced = check(model({ ...p, symmetry: true }));
    assert.equal(reduced.status, 'ok');
    assert.equal(space.count, 6915);
    assert.equal(reduced.states, orbits.size);
    assert.ok(reduced.states < space.count);
  });
  it('symmetry keeps finding the bugs (BUG 2 at (3,3,2): S2, trail length 5)', () => {
    const res = check(model({ holders: 3, bug: 2, symmetry: true }));
    assert.equal(res.counterexample?.property, 'S2 private page pinned');
    assert.equal(res.counterexample?.depth, 5);
  });
});

/** Runs `gmemkit check` capturing stdout and stderr. */
async function runCheck(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const ow = process.stdout.write.bind(process.stdout);
  const ew = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string) => { out += s; return true; }) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => { err += s; return true; }) as typeof process.stderr.write;
  try {
    const code = await checkCommand(argv);
    return { code, out, err };
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
  }
}

describe('gmemkit check', () => {
  const base = ['--model', 'reference'];
  const bad: [string[], RegExp][] = [
    [['--pages', '7'], /--pages must be an integer in 1\.\.6/],
    [['--holders', 'x'], /--holders must be an integer in 1\.\.3/],
    [['--bug', '5'], /--bug must be an integer in 0\.\.4/],
    [['--requests'], /--requests needs a value/],
    [['--max-memory', '-3'], /--max-memory needs a value|--max-memory must be a positive number/],
    [['--kinds', 'ST,FOO'], /--kinds must list ST, IOU or VFIO/],
    [['--holders', '2', '--kinds', 'ST'], /one kind per holder/],
    [['--frobnicate'], /unknown argument '--frobnicate'/],
    [['--dfs', '--liveness'], /cannot be combined/],
  ];
  for (const [args, msg] of bad) {
    it(`rejects ${args.join(' ')} with exit 2`, async () => {
      const r = await runCheck([...base, ...args]);
      assert.equal(r.code, 2);
      assert.match(r.err, msg);
    });
  }
  it('--model full goes to the full-model checker, which names a bad flag (exit 2)', async () => {
    const r = await runCheck(['--model', 'full', '--holders', 'nvme']);
    assert.equal(r.code, 2);
    assert.match(r.err, /--holders: unknown kind 'nvme'; allowed: odirect, io_uring, vfio/);
  });
  it(`--json (2,1,1): states and edges as SPIN [${SPIN}]`, async () => {
    const r = await runCheck([...base, '--pages', '2', '--holders', '1', '--requests', '1', '--json']);
    assert.equal(r.code, 0);
    const j = JSON.parse(r.out) as { states: number; edges: number; status: string };
    assert.equal(j.states, 963);
    assert.equal(j.edges, 6903);
    assert.equal(j.status, 'ok');
  });
  it('a violation prints numbered steps and exits 1', async () => {
    const r = await runCheck([...base, '--pages', '3', '--holders', '2', '--requests', '2', '--bug', '4']);
    assert.equal(r.code, 1);
    assert.match(r.out, /VIOLATION of S1 private page mapped/);
    assert.match(r.out, /^ +1\. /m);
    assert.match(r.out, /^ +4\. /m);
  });
  it('--max-memory stops with the statistics so far (exit 3)', async () => {
    const r = await runCheck([...base, '--max-memory', '1']);
    assert.equal(r.code, 3);
    assert.match(r.out, /INCOMPLETE: memory limit of 1 MB reached .*stopped after \d+ states, \d+ edges, depth \d+/);
  });
});
