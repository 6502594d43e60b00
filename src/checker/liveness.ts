// Liveness of a response property  [] (pending -> <> !pending)  under weak fairness per
// process (SPIN's `pan -a -f`): a violation is a reachable cycle of pending states on which
// every process either moves or is disabled somewhere. Method: explore the whole graph
// (breadth-first, storing edges with their process), find the strongly connected components
// of the pending subgraph (iterative Tarjan), and test each for fairness (a weakly fair cycle
// exists inside an SCC iff each process is taken on an internal edge or disabled in one of
// its states). A pending state with no edge at all is reported as well.
// It must never use recursion (components can hold millions of states).
import { growTo, type MemoryAccount } from './memory.js';
import { checkRoots, type Control, type SearchStats, type Stop } from './search.js';
import { pathTo, type Space } from './space.js';

export type LiveStop =
  | Stop
  | { readonly kind: 'cycle'; readonly root: number; readonly ks: number[]; readonly cycleStart: number | undefined; readonly message: string };

interface Graph {
  n: number;
  off: Int32Array;
  tgt: Int32Array;
  proc: Uint8Array;
  pend: Uint8Array;
}

export function liveness(space: Space, ctl: Control, stats: SearchStats): LiveStop {
  const nProc = space.processes.length;
  if (nProc === 0 || space.livenessName === undefined) {
    throw new Error('liveness: the model declares no processes or no liveness property');
  }
  if (nProc > 31) throw new Error('liveness: at most 31 processes');
  const acct = ctl.acct;
  const g = explore(space, ctl, stats, acct);
  if ('kind' in g) return g;
  return findFairCycle(space, g, nProc, acct);
}

function explore(space: Space, ctl: Control, stats: SearchStats, acct: MemoryAccount): Graph | Stop {
  const bad = checkRoots(space, space.addInitial());
  if (bad) return bad;
  let off = new Int32Array(1024);
  let tgt = new Int32Array(1 << 16);
  let proc = new Uint8Array(1 << 16);
  let pend = new Uint8Array(1024);
  acct.add(off.byteLength + tgt.byteLength + proc.byteLength + pend.byteLength);
  let E = 0;
  let level = 0;
  let levelEnd = space.count;
  for (let id = 0; id < space.count; id++) {
    if (id === levelEnd) {
      level++;
      levelEnd = space.count;
    }
    if (id + 2 > off.length) {
      off = growTo(off, id + 2, Int32Array, acct);
      pend = growTo(pend, id + 2, Uint8Array, acct);
    }
    off[id] = E;
    pend[id] = space.pending(id) ? 1 : 0;
    space.truncate(0);
    const fail = space.expand(id);
    const n = space.top;
    stats.edges += n;
    if (fail) return { kind: 'step', code: fail, id, k: n - 1, pos: n - 1 };
    if (E + n > tgt.length) {
      tgt = growTo(tgt, E + n, Int32Array, acct);
      proc = growTo(proc, E + n, Uint8Array, acct);
    }
    for (let pos = 0; pos < n; pos++) {
      const r = space.intern(pos, id, pos);
      if (r >= 0) {
        stats.maxDepth = level + 1;
        const c = space.check(r);
        if (c) return { kind: 'invariant', code: c, id: r };
      }
      if (r === -1) throw new Error('liveness: the space keeps no ids');
      tgt[E] = r >= 0 ? r : -2 - r;
      proc[E] = space.processOf(pos);
      E++;
    }
    space.release(id);
    if (acct.exceeded) return { kind: 'memory' };
    ctl.tick(space, stats, level, space.count - id - 1);
  }
  off[space.count] = E;
  return { n: space.count, off, tgt, proc, pend };
}

function findFairCycle(space: Space, g: Graph, nProc: number, acct: MemoryAccount): LiveStop {
  const { n, off, tgt, pend } = g;
  // A pending state without any edge: the run stops with the request outstanding.
  for (let v = 0; v < n; v++) {
    if (pend[v] && off[v + 1] === off[v]) {
      const { root, ks } = pathTo(space, v);
      return { kind: 'cycle', root, ks, cycleStart: undefined, message: `${space.livenessName}: a state with the request outstanding has no enabled step` };
    }
  }
  const index = new Int32Array(n).fill(-1);
  const low = new Int32Array(n);
  const comp = new Int32Array(n).fill(-1);
  const onStack = new Uint8Array(n);
  const sstack = new Int32Array(n);
  const cnode = new Int32Array(n);
  const ccur = new Int32Array(n);
  acct.add(n * 25);
  let counter = 0;
  let ssp = 0;
  let ncomp = 0;
  const all = (1 << nProc) - 1;
  for (let s = 0; s < n; s++) {
    if (!pend[s] || index[s] !== -1) continue;
    let csp = 0;
    index[s] = low[s] = counter++;
    sstack[ssp++] = s;
    onStack[s] = 1;
    cnode[csp] = s;
    ccur[csp++] = off[s];
    while (csp > 0) {
      const v = cnode[csp - 1];
      const e = ccur[csp - 1];
      if (e < off[v + 1]) {
        ccur[csp - 1] = e + 1;
        const w = tgt[e];
        if (!pend[w]) continue;
        if (index[w] === -1) {
          index[w] = low[w] = counter++;
          sstack[ssp++] = w;
          onStack[w] = 1;
          cnode[csp] = w;
          ccur[csp++] = off[w];
        } else if (onStack[w] && index[w] < low[v]) {
          low[v] = index[w];
        }
        continue;
      }
      csp--;
      if (csp > 0) {
        const u = cnode[csp - 1];
        if (low[v] < low[u]) low[u] = low[v];
      }
      if (low[v] !== index[v]) continue;
      // v is the root of a component: pop it.
      const c = ncomp++;
      const members: number[] = [];
      for (;;) {
        const w = sstack[--ssp];
        onStack[w] = 0;
        comp[w] = c;
        members.push(w);
        if (w === v) break;
      }
      if (fairness(g, members, c, comp, all)) return lasso(space, g, members, c, comp, all);
    }
  }
  return { kind: 'done' };
}

/** Processes with an edge leaving state u (anywhere), as a bitmask. */
function enabledAt(g: Graph, u: number): number {
  let m = 0;
  for (let e = g.off[u]; e < g.off[u + 1]; e++) m |= 1 << g.proc[e];
  return m;
}

/** Does component c hold a weakly fair cycle: an internal edge, and every process taken on
 * an internal edge or disabled in one of its states? */
function fairness(g: Graph, members: number[], c: number, comp: Int32Array, all: number): boolean {
  const { off, tgt, proc } = g;
  let internal = false;
  let ok = 0;
  for (const u of members) {
    for (let e = off[u]; e < off[u + 1]; e++) {
      if (comp[tgt[e]] === c) {
        internal = true;
        ok |= 1 << proc[e];
      }
    }
    ok |= all & ~enabledAt(g, u);
  }
  return internal && (ok & all) === all;
}

/**
 * Prefix from the initial state to the component's entry (its state nearest the initial
 * state), then a cycle built greedily: go to the nearest edge of a process that has neither
 * moved nor been disabled yet, or the nearest state where one is disabled; then return.
 */
function lasso(space: Space, g: Graph, members: number[], c: number, comp: Int32Array, all: number): LiveStop {
  const { off, tgt, proc } = g;
  const entry = Math.min(...members);
  const { root, ks } = pathTo(space, entry);
  const cycle: number[] = [];
  let cur = entry;
  let need = all & enabledAt(g, entry);
  const follow = (edges: number[]): void => {
    for (const e of edges) {
      cycle.push(e);
      need &= ~(1 << proc[e]);
      cur = tgt[e];
      need &= enabledAt(g, cur);
    }
  };
  while (need !== 0) follow(nearest(g, cur, c, comp, need));
  follow(pathWithin(g, cur, entry, c, comp));
  if (cycle.length === 0) {
    // Every process is disabled at the entry state: take any internal edge and come back.
    for (let e = off[entry]; e < off[entry + 1]; e++) {
      if (comp[tgt[e]] === c) { follow([e]); break; }
    }
    follow(pathWithin(g, cur, entry, c, comp));
  }
  const cks: number[] = [];
  let at = entry;
  for (const e of cycle) {
    cks.push(e - off[at]);
    at = tgt[e];
  }
  return {
    kind: 'cycle', root, ks: [...ks, ...cks], cycleStart: ks.length + 1,
    message: `${space.livenessName}: a weakly fair cycle keeps the request outstanding forever`,
  };
}

/** Edges (inside component c) from a to the nearest edge of a process in `need`, or to the
 * nearest state where a process in `need` is disabled. */
function nearest(g: Graph, a: number, c: number, comp: Int32Array, need: number): number[] {
  const { off, tgt, proc } = g;
  const via = new Map<number, number>([[a, -1]]);
  const pathTo = (v: number): number[] => {
    const path: number[] = [];
    for (let x = v; x !== a;) {
      const pe = via.get(x) as number;
      path.push(pe);
      x = sourceOf(g, pe);
    }
    return path.reverse();
  };
  let frontier = [a];
  while (frontier.length > 0) {
    const next: number[] = [];
    for (const u of frontier) {
      if (need & ~enabledAt(g, u)) return pathTo(u);
      for (let e = off[u]; e < off[u + 1]; e++) {
        const v = tgt[e];
        if (comp[v] !== c) continue;
        if (need & (1 << proc[e])) return [...pathTo(u), e];
        if (via.has(v)) continue;
        via.set(v, e);
        next.push(v);
      }
    }
    frontier = next;
  }
  throw new Error('liveness: no waypoint in a fair component');
}

/** The state whose edge range holds edge e (binary search over off[0..n]). */
function sourceOf(g: Graph, e: number): number {
  const off = g.off;
  let lo = 0;
  let hi = g.n - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (off[mid] <= e) lo = mid; else hi = mid - 1;
  }
  return lo;
}

/** Edges of a shortest path from a to b that stays inside component c. */
function pathWithin(g: Graph, a: number, b: number, c: number, comp: Int32Array): number[] {
  if (a === b) return [];
  const { off, tgt } = g;
  const via = new Map<number, number>([[a, -1]]);
  let frontier = [a];
  while (frontier.length > 0) {
    const next: number[] = [];
    for (const u of frontier) {
      for (let e = off[u]; e < off[u + 1]; e++) {
        const v = tgt[e];
        if (comp[v] !== c || via.has(v)) continue;
        via.set(v, e);
        if (v === b) {
          const path: number[] = [];
          let x = b;
          while (x !== a) {
            const pe = via.get(x) as number;
            path.push(pe);
            x = sourceOf(g, pe);
          }
          return path.reverse();
        }
        next.push(v);
      }
    }
    frontier = next;
  }
  throw new Error('liveness: component is not strongly connected');
}
