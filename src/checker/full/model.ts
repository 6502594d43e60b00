// The full gmemkit model as an ObjectModel for the checker engine: a state is its world (held
// while the state is open: queued or on the DFS stack) and the action path from the initial
// world (for counterexamples); successors clone the world (clone.ts) and apply each enabled
// action to the copy with the real Kernel, ModelBackend and Userspace code.
// Every property is a step assertion, evaluated on every edge (into a new state, a visited one,
// or a self-loop): I1–I13 are checked by the ModelBackend around each kernel call of the
// action; the checker's own properties (no private data observed, no data lost, a failed
// conversion changes nothing, a cooperative request never fails) are recorded by World.apply.
import type { EdgeLabel, ObjectModel, StateInvariant, StepAssertion } from '../types.js';
import { hugePagesOf, PROPERTIES, World, type Action, type FullConfig, type Violation } from './world.js';

/** An action path as a list from its last action back (a successor adds one cell, copies nothing). */
export interface Trail {
  readonly prev: Trail | undefined;
  readonly action: Action;
}

/** The actions of a trail, first to last. */
export function pathOf(t: Trail | undefined): Action[] {
  const out: Action[] = [];
  for (let c = t; c; c = c.prev) out.push(c.action);
  return out.reverse();
}

/** The trail of an action path (pathOf's inverse). */
export function trailOf(path: readonly Action[]): Trail | undefined {
  let t: Trail | undefined;
  for (const action of path) t = { prev: t, action };
  return t;
}

export interface FullState {
  /** The action path from the initial world (undefined for it). */
  readonly trail: Trail | undefined;
  /** The state's world, until the state is expanded. */
  world?: World;
  /** The state's encoding, computed once its world is reached. */
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

  /**
   * `rebuild`: how a successor's world is made: 'clone' (the default) copies the state's world;
   * 'replay' rebuilds it from the initial world by replaying the path (the reference the clone
   * is tested against, and the bench's baseline).
   */
  constructor(readonly config: FullConfig, readonly rebuild: 'clone' | 'replay' = 'clone') {
    this.processes = ['host', ...config.holders.map((_k, h) => `holder ${h}`), 'guest', 'vmm'];
    this.name = `full(${config.vmType ?? 'sw_protected'}, ${config.profile.name}, ${config.policy.name}, pages ${config.pages}${hugePagesOf(config) ? ` (huge pages of ${hugePagesOf(config)})` : ''}, holders ${config.holders.join('+') || 'none'}, requests ${config.requests})`;
  }

  initialStates(): FullState[] {
    return [{ trail: undefined, world: new World(this.config), violations: [], pending: false }];
  }

  /** Rebuild the world of a path with the checks off (they ran when each step was first taken). */
  replay(trail: Trail | undefined): World {
    const w = new World(this.config);
    w.backend.checking = false;
    for (const a of pathOf(trail)) w.apply(a);
    return w;
  }

  /** One successor per enabled action, each applied to its own copy of this state's world. */
  successors(s: FullState, emit: (label: Action, next: FullState) => void): void {
    const w = s.world ?? this.replay(s.trail);
    s.world = undefined;
    const enabled = w.enabled();
    for (let i = 0; i < enabled.length; i++) {
      const a = enabled[i]!;
      // The last action may have the state's own world: nothing needs it afterwards.
      const c = i === enabled.length - 1 ? w : this.rebuild === 'clone' ? w.clone() : this.replay(s.trail);
      c.backend.checking = true;
      c.apply(a);
      c.backend.checking = false;
      emit(a, { trail: { prev: s.trail, action: a }, violations: c.violations, pending: c.task !== undefined && !c.task.terminal, enc: c.encode(), world: c });
    }
  }

  /** The state's encoding; under 'replay' a queued state keeps only its trail. */
  encode(s: FullState): string {
    s.enc ??= (s.world ??= this.replay(s.trail)).encode();
    if (this.rebuild === 'replay') s.world = undefined;
    return s.enc;
  }

  describeEdge(a: Action): EdgeLabel {
    return actionLabel(a);
  }

  processOf(a: Action): number {
    return this.processes.indexOf(actionLabel(a).process);
  }
}
