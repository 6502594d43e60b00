// The explicit-state model-checking engine: `check` (safety: state invariants and step
// assertions, breadth-first or depth-first) and `checkLiveness` (a response property under
// weak fairness) for any model, packed (word-encoded) or object (string/bytes-encoded).
// It turns a search's stop into a result with statistics and a numbered counterexample.
// It must never print, exit or read the clock for anything but the statistics.
import { liveness, type LiveStop } from './liveness.js';
import { MemoryAccount, mib } from './memory.js';
import { ObjectSpace } from './object-space.js';
import { PackedSpace } from './packed-space.js';
import { bfs, Control, dfs, type SearchStats } from './search.js';
import { pathTo, type Space } from './space.js';
import type { AnyModel, CheckOptions, CheckResult, Counterexample } from './types.js';

export type { AnyModel, CheckOptions, CheckResult, Counterexample } from './types.js';

function makeSpace(model: AnyModel, acct: MemoryAccount, opts: CheckOptions, withIds: boolean): Space {
  if (model.kind === 'packed') {
    return new PackedSpace(model, acct, { withIds, hashBits: opts.hashBits ?? 16 });
  }
  return new ObjectSpace(model, acct);
}

function setup(opts: CheckOptions): { acct: MemoryAccount; ctl: Control } {
  const limit = opts.maxMemoryMB !== undefined ? opts.maxMemoryMB * 1024 * 1024 : Infinity;
  const acct = new MemoryAccount(limit);
  const ctl = new Control(acct, opts.onProgress, opts.progressIntervalMs ?? 1000);
  return { acct, ctl };
}

/** Safety check: every reachable state satisfies the invariants, every edge the assertions. */
export function check(model: AnyModel, opts: CheckOptions = {}): CheckResult {
  const { acct, ctl } = setup(opts);
  const search = opts.search ?? 'bfs';
  const space = makeSpace(model, acct, opts, false);
  const stats: SearchStats = { edges: 0, maxDepth: 0 };
  const stop = search === 'dfs' ? dfs(space, ctl, stats) : bfs(space, ctl, stats);
  return finish(model.name, search, space, ctl, stats, stop, opts);
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

function finish(
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
      const ce: Counterexample = {
        property: space.propertyName(stop.code), kind: 'invariant',
        message: space.explain(stop.id, stop.code), depth: ks.length,
        steps: space.walk(root, ks, false),
      };
      return { ...base, status: 'violation', counterexample: ce };
    }
    case 'step': {
      const { root, ks } = pathTo(space, stop.id);
      const ce: Counterexample = {
        property: space.propertyName(stop.code), kind: 'step',
        message: space.explain(stop.id, stop.code, stop.pos), depth: ks.length,
        steps: space.walk(root, [...ks, stop.k], true),
      };
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
