// Known-bad variants the checker must catch (`gmemkit check --mutant NAME`): the kernel mutants
// are profiles (src/model/profile.ts MUTANT_PROFILES; version differences are data), the manager
// mutants are options of the userspace half. None is a design anyone proposed: they are seeded bugs.
import { findProfile, type Profile } from '../../model/profile.js';

export interface Mutant {
  readonly name: string;
  readonly title: string;
  readonly profile?: Profile;
  readonly fence?: false;
  readonly waitForIo?: false;
}

const kernel = (name: string): Mutant => {
  const profile = findProfile(`mutant-${name}`)!;
  return { name, title: profile.title.replace(/^MUTANT \([^)]*\): /, ''), profile };
};

export const MUTANTS: readonly Mutant[] = [
  kernel('no-refcount-check'),
  kernel('check-before-unmap'),
  kernel('no-rollback'),
  kernel('fault-accepts-private'),
  { name: 'retry-without-waiting', title: 'the manager retries without waiting for in-flight I/O', waitForIo: false },
  { name: 'no-pin-fence', title: 'no pin fence: new pins in a range being made private are allowed', fence: false },
];

export function findMutant(name: string): Mutant | undefined {
  return MUTANTS.find((m) => m.name === name);
}
