// The full model as a parallel-search model spec (parallel-protocol.ts): a FullConfig by the
// names of its parts (profile, policy, mutant), from which every worker thread builds the same
// model, and the model's state transfer between workers: a state is sent as its action path
// and its owner rebuilds the world by replaying the path (only for states new to it).
// Replaying is sound because a replayed world is the clone the sender held (clone.ts;
// test/checker-clone.test.ts); keys agree across workers because the encoding's shape numbers
// are handed out by the main thread there. It must never hold model logic.
import { findProfile } from '../../model/profile.js';
import { findPolicy } from '../../userspace/policies.js';
import { threadSharedNumbering, type ModelSpec } from '../parallel-protocol.js';
import { setShapeNumbering, setStringNumbering } from './canon.js';
import { FullModel, pathOf, trailOf, type FullState } from './model.js';
import { findMutant } from './mutants.js';
import type { Action, FullConfig, HolderKind } from './world.js';

/** A FullConfig by names (structured-cloneable); names are valid (the CLI checked them). */
export interface FullSpec {
  readonly vmType: 'sw_protected' | 'snp' | 'tdx';
  readonly pages: number;
  readonly holders: readonly HolderKind[];
  readonly requests: number;
  readonly profile: string;
  readonly policy: string;
  readonly maxRetries: number;
  readonly mutant?: string;
  /** Pages per huge page under a HugeTLB profile (FullConfig.hugepagePages). */
  readonly hugepagePages?: number;
}

export function fullConfigOf(s: FullSpec): FullConfig {
  const mutant = s.mutant === undefined ? undefined : findMutant(s.mutant);
  const profile = findProfile(s.profile);
  const policy = findPolicy(s.policy);
  if (!profile || !policy || (s.mutant !== undefined && !mutant)) {
    throw new Error(`full model spec: unknown profile '${s.profile}', policy '${s.policy}' or mutant '${s.mutant}'`);
  }
  return {
    vmType: s.vmType,
    pages: s.pages,
    holders: s.holders,
    requests: s.requests,
    profile: mutant?.profile ?? profile,
    policy: { ...policy, maxRetries: s.maxRetries },
    fence: mutant?.fence ?? true,
    waitForIo: mutant?.waitForIo ?? true,
    ...(mutant?.plant ? { plant: mutant.plant } : {}),
    ...(s.hugepagePages ? { hugepagePages: s.hugepagePages } : {}),
  };
}

/** The full model with state transfer for the parallel search. */
export class TransferFullModel extends FullModel {
  pack(s: FullState): readonly Action[] {
    return pathOf(s.trail);
  }

  unpack(data: unknown, key: string): FullState {
    const trail = trailOf(data as readonly Action[]);
    const world = this.replay(trail);
    return { trail, world, enc: key, violations: [], pending: world.task !== undefined && !world.task.terminal };
  }
}

export function fullSpec(s: FullSpec): ModelSpec {
  return { module: import.meta.url, factory: 'makeFullModel', arg: s };
}

/**
 * In a worker of the parallel search, the encoding's shape and string numbers (canon.ts) come from the
 * main thread, named by constructor and fields, so one state has one key in every worker.
 */
function numberShapesAlike(shared: (name: string) => number): void {
  const byName = new Map<string, Function>();
  setShapeNumbering((ctor, keys) => {
    const name = `${ctor.name}(${keys.join(',')})`;
    const other = byName.get(name);
    if (other !== undefined && other !== ctor) throw new Error(`full model: two classes named ${ctor.name} with the fields ${keys.join(', ')}; the parallel search needs their names to differ`);
    byName.set(name, ctor);
    return shared(name);
  });
  // Strings are numbered too (canon.ts); a NUL prefix keeps them apart from shape names.
  setStringNumbering((v) => shared(`\0${v}`));
}

export function makeFullModel(s: FullSpec): TransferFullModel {
  const shared = threadSharedNumbering();
  if (shared) numberShapesAlike(shared);
  return new TransferFullModel(fullConfigOf(s));
}
