// The full gmemkit model as an ObjectModel for the checker engine: a state is the action path
// from the initial world (plus the world itself while it is needed); successors replay the
// path and apply each enabled action with the real Kernel, ModelBackend and Userspace code.
// Invariants I1–I11 are checked by the ModelBackend on the last action of every path; the
// checker's own properties (no private data observed, no data lost, a failed conversion changes
// nothing, a cooperative request never fails) are recorded by World.apply.
import type { EdgeLabel, ObjectModel, StateInvariant } from '../types.js';
import { World, type Action, type FullConfig } from './world.js';

export interface FullState {
  readonly path: readonly Action[];
  world?: World;
  /** The state's encoding when it is already known (a self-loop of its parent). */
  enc?: string;
  readonly violations: readonly string[];
  /** A guest request is outstanding (for the liveness property). */
  readonly pending: boolean;
}

export function actionLabel(a: Action): EdgeLabel {
  switch (a.who) {
    case 'host': return { process: 'host', action: a.what, params: { page: a.page } };
    case 'holder': return { process: `holder ${a.h}`, action: a.what, params: 'page' in a ? { page: a.page } : {} };
    case 'guest': return { process: 'guest', action: a.what, params: a.what === 'request' ? { lo: a.lo, hi: a.hi, to: a.to } : { page: a.page } };
    case 'vmm': return { process: 'vmm', action: a.race ? 'step with GUP-fast race' : 'step', params: a.race ? { holder: a.race.h, page: a.race.page } : {} };
  }
}

export class FullModel implements ObjectModel<FullState, Action> {
  readonly kind = 'object' as const;
  readonly name: string;
  readonly invariants: readonly StateInvariant<FullState>[] = [{
    name: 'I1–I11 and the manager’s properties',
    check: (s) => (s.violations.length ? s.violations.join('; ') : null),
  }];

  /** Liveness: every request completes, under weak fairness of these processes. */
  readonly processes: readonly string[];
  readonly liveness = { name: 'every guest request completes', pending: (s: FullState) => s.pending };

  constructor(readonly config: FullConfig) {
    this.processes = ['host', ...config.holders.map((_k, h) => `holder ${h}`), 'guest', 'vmm'];
    this.name = `full(${config.vmType ?? 'sw_protected'}, ${config.profile.name}, ${config.policy.name}, pages ${config.pages}, holders ${config.holders.join('+') || 'none'}, requests ${config.requests})`;
  }

  initialStates(): FullState[] {
    return [{ path: [], world: new World(this.config), violations: [], pending: false }];
  }

  /** Rebuild the world of a path with the checks off (they ran when each step was first taken). */
  private replay(path: readonly Action[]): World {
    const w = new World(this.config);
    w.backend.checking = false;
    for (const a of path) w.apply(a);
    return w;
  }

  /**
   * One world per successor, rebuilt by replay, except that an action that left the world as it
   * was (same canonical encoding: a self-loop, e.g. a host load that got SIGBUS) hands the
   * unchanged world on to the next action instead of paying for another replay.
   */
  successors(s: FullState, emit: (label: Action, next: FullState) => void): void {
    let w: World | undefined = s.world ?? this.replay(s.path);
    s.world = undefined;
    const here = s.enc ?? w.encode();
    for (const a of w.enabled()) {
      w ??= this.replay(s.path);
      w.backend.checking = true;
      w.apply(a);
      const enc = w.encode();
      const next = { path: [...s.path, a], violations: w.violations, pending: w.task !== undefined && !w.task.terminal, enc };
      if (enc === here) {
        emit(a, next); // the world is still this state's: keep using it
      } else {
        emit(a, { ...next, world: w });
        w = undefined;
      }
    }
  }

  /** Encode, then let the world go: a queued state keeps only its path (it is replayed when expanded). */
  encode(s: FullState): string {
    const w = s.world;
    s.world = undefined;
    return s.enc ?? (w ?? this.replay(s.path)).encode();
  }

  describeEdge(a: Action): EdgeLabel {
    return actionLabel(a);
  }

  processOf(a: Action): number {
    return this.processes.indexOf(actionLabel(a).process);
  }
}
