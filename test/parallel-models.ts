// Small object models for the parallel-search tests, in a module of their own because every
// worker thread imports it to build the model (a test file would run its tests there).
import type { EdgeLabel, ObjectModel } from '../src/checker/types.js';
import type { ModelSpec } from '../src/checker/parallel.js';

interface Cell { readonly x: number; readonly y: number }

/**
 * A size x size grid walked right and down, with a self-loop on every cell, from three initial
 * states (0,0), (0,0) again and (1,0). With `properties`: the invariant 'not at (3,0)' (shortest
 * trace: 2 steps, from (1,0)) and the step assertion 'no step down from (0,2)' (3 steps).
 */
export function makeGrid(arg: { size: number; properties: boolean }): ObjectModel<Cell, EdgeLabel> {
  const n = arg.size;
  return {
    kind: 'object',
    name: `grid ${n}x${n}`,
    initialStates: () => [{ x: 0, y: 0 }, { x: 0, y: 0 }, { x: 1, y: 0 }],
    successors(s, emit) {
      emit({ process: 'p', action: 'stay', params: {} }, { ...s });
      if (s.x < n - 1) emit({ process: 'p', action: 'right', params: { x: s.x + 1 } }, { x: s.x + 1, y: s.y });
      if (s.y < n - 1) emit({ process: 'p', action: 'down', params: { y: s.y + 1 } }, { x: s.x, y: s.y + 1 });
    },
    invariants: arg.properties ? [{ name: 'not at (3,0)', check: (s) => (s.x === 3 && s.y === 0 ? 'at (3,0)' : null) }] : [],
    stepAssertions: arg.properties
      ? [{ name: 'no step down from (0,2)', check: (f, l) => (f.x === 0 && f.y === 2 && l.action === 'down' ? 'down from (0,2)' : null) }]
      : [],
    encode: (s) => `${s.x},${s.y}`,
    describeEdge: (l) => l,
    describeState: (s) => ({ x: s.x, y: s.y }),
  };
}

export function gridSpec(size: number, properties: boolean): ModelSpec {
  return { module: import.meta.url, factory: 'makeGrid', arg: { size, properties } };
}
