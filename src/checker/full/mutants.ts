// Known-bad variants the checker must catch (`gmemkit check --mutant NAME`). Kernel mutants are
// profiles derived from ipc-v8 (version differences are data); manager mutants are options of
// the userspace half. None of them is a design anyone proposed: they are seeded bugs.
import { IPC_V8, type Profile } from '../../model/profile.js';

export interface Mutant {
  readonly name: string;
  readonly title: string;
  readonly profile?: Profile;
  readonly fence?: false;
  readonly waitForIo?: false;
}

const kernelMutant = (name: string, title: string, change: Omit<Partial<Profile>, 'toPrivate'> & { toPrivate?: Partial<Profile['toPrivate']> }): Mutant => ({
  name, title,
  profile: { ...IPC_V8, ...change, name: `mutant-${name}`, title: `MUTANT: ${title}`, status: 'variant', toPrivate: { ...IPC_V8.toPrivate, ...change.toPrivate } },
});

export const MUTANTS: readonly Mutant[] = [
  kernelMutant('no-refcount-check', 'to-private never checks references', { toPrivate: { blockers: 'none' } }),
  kernelMutant('check-before-unmap', 'references are checked before host mappings are zapped (GUP-fast slips in)', { toPrivate: { checkBeforeZap: true } }),
  kernelMutant('no-rollback', 'conversion page by page, keeping the pages before the blocked one', { toPrivate: { rollback: false } }),
  kernelMutant('fault-accepts-private', 'the host fault path serves private pages', { faultAcceptsPrivate: true }),
  { name: 'retry-without-waiting', title: 'the manager retries without waiting for in-flight I/O', waitForIo: false },
  { name: 'no-pin-fence', title: 'no pin fence: new pins in a range being made private are allowed', fence: false },
];

export function findMutant(name: string): Mutant | undefined {
  return MUTANTS.find((m) => m.name === name);
}
