// The full gmemkit model as an ObjectModel for the checker engine: a state is the action path
// from the initial world (plus the world itself while it is needed); successors replay the
// path and apply each enabled action with the real Kernel, ModelBackend and Userspace code.
// Every property is a step assertion, evaluated on every edge (into a new state, a visited one,
// or a self-loop): I1–I11 are checked by the ModelBackend around each kernel call of the
// action; the checker's own properties (no private data observed, no data lost, a failed
// conversion changes nothing, a cooperative request never fails) are recorded by World.apply.
import type { EdgeLabel, ObjectModel, StateInvariant, StepAssertion } from '../types.js';
import { PROPERTIES, World, type Action, type FullConfig, type Violation } from './world.js';

export interface FullState {
  readonly path: readonly Action[];
  world?: World;
  /** The state's encoding when it is already known (a self-loop of its parent). */
  enc?: string;
  /** What the action into this state broke (the edge's result, not part of the state). */
  readonly violations: readonly Violation[];
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
  /** No state invariant: every property is about an action, so it is checked on each edge. */
  readonly invariants: readonly StateInvariant<FullState>[] = [];
  readonly stepAssertions: readonly StepAssertion<FullState, Action>[] = PROPERTIES.map((name) => ({
    name,
    check: (_from: FullState, _a: Action, to: FullState) => {
      const mine = to.violations.filter((v) => v.property === name);
      return mine.length ? mine.map((v) => v.message).join('; ') : null;
    },
  }));

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
