// The explicit-state model-checking engine: `check` (safety: state invariants and step
// assertions, breadth-first or depth-first) and `checkLiveness` (a response property under
// weak fairness) for any model, packed (word-encoded) or object (string/bytes-encoded).
// It turns a search's stop into a result with statistics and a numbered counterexample.
// It must never print, exit or read the clock for anything but the statistics.
import { liveness, type LiveStop } from './liveness.js';
import { MemoryAccount, mib } from './memory.js';
import { ObjectSpace } from './object-space.js';
import { PackedSpace } from './packed-space.js';
import { bfs, Control, dfs, type Findings, type SearchStats } from './search.js';
import { pathTo, type Space } from './space.js';
import type { AnyModel, CheckOptions, CheckResult, Counterexample } from './types.js';

export type { AnyModel, CheckOptions, CheckResult, Counterexample } from './types.js';

export function makeSpace(model: AnyModel, acct: MemoryAccount, opts: CheckOptions, withIds: boolean): Space {
  const collect = opts.allViolations === true;
  if (model.kind === 'packed') {
    return new PackedSpace(model, acct, { withIds, hashBits: opts.hashBits ?? 16, collect });
  }
  return new ObjectSpace(model, acct, collect);
}

export function setup(opts: CheckOptions): { acct: MemoryAccount; ctl: Control } {
  const limit = opts.maxMemoryMB !== undefined ? opts.maxMemoryMB * 1024 * 1024 : Infinity;
  const acct = new MemoryAccount(limit);
  const ctl = new Control(acct, opts.onProgress, opts.progressIntervalMs ?? 1000);
  return { acct, ctl };
}

/** Safety check: every reachable state satisfies the invariants, every edge the assertions. */
export function check(model: AnyModel, opts: CheckOptions = {}): CheckResult {
  const { acct, ctl } = setup(opts);
  const search = opts.search ?? 'bfs';
  if (opts.allViolations && search !== 'bfs') throw new Error('check: allViolations needs the breadth-first search');
  const space = makeSpace(model, acct, opts, false);
  const stats: SearchStats = { edges: 0, maxDepth: 0 };
  const found: Findings | undefined = opts.allViolations ? new Map() : undefined;
  const stop = search === 'dfs' ? dfs(space, ctl, stats) : bfs(space, ctl, stats, found);
  const r = finish(model.name, search, space, ctl, stats, stop, opts);
  if (!found) return r;
  const violations = [...found.values()].map((f) => {
    const { root, ks } = pathTo(space, f.id);
    return counterexample(space, f.kind, f.code, f.message, root, ks, f.k);
  });
  return withViolations(r, violations);
}

/** An all-violations result: status violation if any property failed (unless incomplete). */
export function withViolations(r: CheckResult, violations: Counterexample[]): CheckResult {
  const status = r.status === 'incomplete' ? r.status : violations.length ? 'violation' : 'ok';
  return { ...r, status, violations, ...(violations.length ? { counterexample: violations[0] } : {}) };
}

/**
 * The numbered counterexample of a violation: `ks` are the edges from initial state `root`
 * to the bad state (invariant) or to the state whose edge `k` fails (step).
 */
export function counterexample(
  space: Space, kind: 'invariant' | 'step', code: number, message: string, root: number, ks: readonly number[], k: number,
): Counterexample {
  return {
    property: space.propertyName(code), kind, message, depth: ks.length,
    steps: kind === 'step' ? space.walk(root, [...ks, k], true) : space.walk(root, ks, false),
  };
}

/**
 * Liveness check of the model's response property under weak fairness per process. Explores
 * the whole state graph first (edges are stored), so it needs more memory than `check`.
 */
export function checkLiveness(model: AnyModel, opts: CheckOptions = {}): CheckResult {
  const { acct, ctl } = setup(opts);
  const space = makeSpace(model, acct, opts, true);
  const stats: SearchStats = { edges: 0, maxDepth: 0 };
  const stop = liveness(space, ctl, stats);
  return finish(model.name, 'liveness', space, ctl, stats, stop, opts);
}

export function finish(
  name: string, search: CheckResult['search'], space: Space, ctl: Control, stats: SearchStats,
  stop: LiveStop, opts: CheckOptions,
): CheckResult {
  const seconds = ctl.seconds();
  space.sampleMemory();
  const base = {
    model: name, search, states: space.count, edges: stats.edges, maxDepth: stats.maxDepth,
    seconds, memoryBytes: ctl.acct.bytes,
  };
  switch (stop.kind) {
    case 'done':
      return { ...base, status: 'ok' };
    case 'memory':
      return {
        ...base, status: 'incomplete',
        stopReason: `memory limit of ${opts.maxMemoryMB} MB reached (search structures ${mib(ctl.acct.bytes)} MB): `
          + `stopped after ${space.count} states, ${stats.edges} edges, depth ${stats.maxDepth}; the search is incomplete`,
      };
    case 'invariant': {
      const { root, ks } = pathTo(space, stop.id);
      const ce = counterexample(space, 'invariant', stop.code, space.explain(stop.id, stop.code), root, ks, 0);
      return { ...base, status: 'violation', counterexample: ce };
    }
    case 'step': {
      const { root, ks } = pathTo(space, stop.id);
      const ce = counterexample(space, 'step', stop.code, space.explain(stop.id, stop.code, stop.pos), root, ks, stop.k);
      return { ...base, status: 'violation', counterexample: ce };
    }
    case 'cycle': {
      const ce: Counterexample = {
        property: space.livenessName ?? 'liveness', kind: 'cycle', message: stop.message,
        depth: stop.ks.length, steps: space.walk(stop.root, stop.ks, false),
        ...(stop.cycleStart !== undefined ? { cycleStart: stop.cycleStart } : {}),
      };
      return { ...base, status: 'violation', counterexample: ce };
    }
  }
}
