// The checker engine on small synthetic models: a million-deep chain for the iterative
// depth-first search, an object model with string encodings (the interface the full kernel
// model will use), counterexample replay, step assertions, and the memory limit.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { check, checkLiveness } from '../src/checker/engine.js';
import { ReferenceModel } from '../src/checker/reference/model.js';
import { referenceParams } from '../src/checker/reference/params.js';
import type { EdgeLabel, ObjectModel } from '../src/checker/types.js';

/** 0 -> 1 -> ... -> length, with a self-loop on every state: 2 edges per state but the last. */
function chain(length: number, bad?: number): ObjectModel<number, EdgeLabel> {
  return {
    kind: 'object',
    name: `chain ${length}`,
    initialStates: () => [0],
    successors(s, emit) {
      emit({ process: 'p', action: 'stay', params: {} }, s);
      if (s < length) emit({ process: 'p', action: 'next', params: { to: s + 1 } }, s + 1);
    },
    invariants: [{ name: 'not bad', check: (s) => (s === bad ? `reached ${s}` : null) }],
    encode: (s) => s.toString(36),
    describeEdge: (l) => l,
    describeState: (s) => ({ s }),
  };
}

describe('engine: iterative depth-first search', () => {
  it('walks a chain 1,000,000 deep without recursion', () => {
    const n = 1_000_000;
    const r = check(chain(n), { search: 'dfs' });
    assert.equal(r.status, 'ok');
    assert.equal(r.states, n + 1);
    assert.equal(r.edges, 2 * n + 1);
    assert.ok(r.maxDepth >= 1_000_000, `max depth ${r.maxDepth}`);
  });
  it('breadth-first on the same model: depth = length, same counts', () => {
    const r = check(chain(100_000));
    assert.equal(r.states, 100_001);
    assert.equal(r.edges, 200_001);
    assert.equal(r.maxDepth, 100_000);
  });
});

describe('engine: object models (string encoding)', () => {
  it('a bad state deep in the chain: counterexample replayed as numbered steps', () => {
    const r = check(chain(1000, 700), { search: 'dfs' });
    assert.equal(r.status, 'violation');
    const ce = r.counterexample!;
    assert.equal(ce.property, 'not bad');
    assert.equal(ce.message, 'reached 700');
    assert.equal(ce.depth, 700);
    assert.equal(ce.steps.length, 700);
    assert.equal(ce.steps[699].text, 'p: next(to=700)');
    assert.deepEqual(ce.steps[0].changes, ['s: 0 -> 1']);
  });
  it('a failing step assertion is the last step, one past the depth', () => {
    const m: ObjectModel<number, EdgeLabel> = {
      ...chain(10),
      stepAssertions: [{ name: 'no step to 5', check: (_f, _l, to) => (to === 5 ? 'stepped to 5' : null) }],
    };
    const r = check(m);
    const ce = r.counterexample!;
    assert.equal(ce.kind, 'step');
    assert.equal(ce.depth, 4);
    assert.equal(ce.steps.length, 5);
    assert.equal(ce.steps[4].text, 'p: next(to=5)');
  });
  it('liveness on an object model: a pending state that loops forever', () => {
    const m: ObjectModel<number, EdgeLabel> = {
      ...chain(3),
      processes: ['p'],
      processOf: () => 0,
      liveness: { name: 'leaves 3', pending: (s) => s === 3 },
    };
    const r = checkLiveness(m);
    assert.equal(r.status, 'violation');
    assert.equal(r.counterexample?.cycleStart, 4);
    assert.equal(r.counterexample?.steps.length, 4);
  });
});

describe('engine: memory limit', () => {
  it('stops with a clear message and the statistics so far', () => {
    const m = new ReferenceModel(referenceParams({ pages: 3, holders: 2, requests: 2 }));
    const r = check(m, { maxMemoryMB: 2 });
    assert.equal(r.status, 'incomplete');
    assert.ok(r.states > 0 && r.states < 142435);
    assert.ok(r.edges > 0);
    assert.match(r.stopReason ?? '', /^memory limit of 2 MB reached \(search structures [\d.]+ MB\): stopped after \d+ states, \d+ edges, depth \d+; the search is incomplete$/);
  });
  it('reports progress for long runs', () => {
    const seen: number[] = [];
    const m = new ReferenceModel(referenceParams({ pages: 3, holders: 2, requests: 2 }));
    check(m, { progressIntervalMs: 0, onProgress: (p) => seen.push(p.states) });
    assert.ok(seen.length > 10);
    assert.ok(seen.every((s, i) => i === 0 || s >= seen[i - 1]));
  });
});

// Issue "Sound verdicts": a property must be looked at on every edge, also on a self-loop and on
// an edge into a state seen before (a device read changes nothing, so its edge is a self-loop).
describe('engine: step assertions on every edge', () => {
  /** 0 <-> 1 (back and forth), a self-loop 'look' on each; the assertion fails on `badEdge`. */
  function ring(badEdge: (s: number, action: string) => boolean): ObjectModel<number, EdgeLabel> {
    return {
      kind: 'object', name: 'ring', initialStates: () => [0],
      successors(s, emit) {
        emit({ process: 'p', action: 'look', params: {} }, s);
        emit({ process: 'p', action: 'flip', params: {} }, 1 - s);
      },
      invariants: [],
      stepAssertions: [{ name: 'edge ok', check: (s, l) => (badEdge(s, l.action) ? `bad ${l.action} at ${s}` : null) }],
      encode: (s) => String(s), describeEdge: (l) => l,
    };
  }
  for (const search of ['bfs', 'dfs'] as const) {
    it(`${search}: a failing self-loop is reported`, () => {
      const r = check(ring((s, a) => s === 1 && a === 'look'), { search });
      assert.equal(r.status, 'violation');
      assert.equal(r.counterexample!.kind, 'step');
      assert.deepEqual(r.counterexample!.steps.map((x) => x.action), ['flip', 'look']);
    });
    it(`${search}: a failing edge into a visited state is reported`, () => {
      const r = check(ring((s, a) => s === 1 && a === 'flip'), { search });
      assert.equal(r.status, 'violation');
      assert.deepEqual(r.counterexample!.steps.map((x) => x.action), ['flip', 'flip']);
    });
  }
  it('no failing edge: ok, with every edge counted', () => {
    const r = check(ring(() => false));
    assert.equal(r.status, 'ok');
    assert.equal(r.states, 2);
    assert.equal(r.edges, 4);
  });
});
