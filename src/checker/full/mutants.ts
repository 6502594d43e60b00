// Known-bad variants the checker must catch (`gmemkit check --mutant NAME`): the kernel mutants
// are profiles (src/model/profile.ts MUTANT_PROFILES; version differences are data), the manager
// mutants are options of the userspace half. None is a design anyone proposed: they are seeded bugs.
import { FALLOC_FLAGS, GMEM_FLAGS, PAGE_SIZE } from '../../model/abi.js';
import { folioGet, folioRead, folioWrite, folioZero } from '../../model/folio.js';
import { gmemFirstBlocker } from '../../model/gmem.js';
import type { Kernel, MemoryAttributes2Args, U64 } from '../../model/kernel.js';
import { findProfile, NO_DIRECT_MAP, type Profile } from '../../model/profile.js';
import { fail, ok } from '../../model/result.js';
import { withRun, type Folio } from '../../model/state.js';
import { OWN_PROPERTIES as OWN, type HolderKind } from './world.js';

/**
 * A planted bug: replaces one of a world's Kernel methods by a wrong one built from the
 * model's own operations. Planted variants exist only in the checker (no profile has them), so
 * their counterexamples do not replay under `gmemkit run`.
 */
export type Plant = (k: Kernel) => void;

export interface Mutant {
  readonly name: string;
  readonly title: string;
  readonly profile?: Profile;
  readonly fence?: false;
  readonly waitForIo?: false;
  readonly plant?: Plant;
  /** The property it breaks (the first one the checker reports). */
  readonly breaks: string;
  /** Holders it needs to show (the CLI's default when --holders is not given). */
  readonly holders?: readonly HolderKind[];
}

const kernel = (name: string, breaks: string): Mutant => {
  const profile = findProfile(`mutant-${name}`)!;
  return { name, title: profile.title.replace(/^MUTANT \([^)]*\): /, ''), profile, breaks };
};

type Method<N extends keyof Kernel> = Kernel[N] extends (...a: infer A) => infer R ? (...a: A) => R : never;

/** Replace kernel method `name` by `wrap(original)` on this kernel only. */
function around<N extends keyof Kernel>(k: Kernel, name: N, wrap: (orig: Method<N>) => Method<N>): void {
  const orig = (k[name] as Function).bind(k) as Method<N>;
  (k as unknown as Record<string, unknown>)[name] = wrap(orig);
}

const punching = (mode: U64): boolean => (BigInt(mode) & FALLOC_FLAGS.PUNCH_HOLE) !== 0n;
const pagesOf = (offset: U64, len: U64): [number, number] => [Number(offset) / PAGE_SIZE, (Number(offset) + Number(len)) / PAGE_SIZE];
const inodeOf = (k: Kernel, fd: number) => k.gmemFile(fd)?.inode;
/** The id of the folio at page `index` of a guest_memfd's page cache, if any. */
const folioIdAt = (k: Kernel, fd: number, index: number): number | undefined => inodeOf(k, fd)?.pages.get(index);
/** Replace the run state of the single folio `id` (the table splits the run around it). */
const setFolio = (k: Kernel, id: number, f: (r: Folio) => Folio): void => {
  const r = f(folioGet(k.state, id)!);
  k.state.folios.set(id, id + 1, withRun(r, r.index, r.inCache, r.uptodate, r.mapCount, r.gets, r.pinsShort, r.pinsLong));
};
/** The guest_memfd page behind a user address (through its VMA), if any. */
function pageAt(k: Kernel, addr: number): { fd: number; index: number } | undefined {
  const vma = k.vmaAt(addr);
  if (!vma?.file) return undefined;
  for (const [fd, e] of k.state.fds) if (e.kind === 'gmem' && e.file === vma.file) return { fd, index: vma.pgoff + Math.floor((addr - vma.start) / PAGE_SIZE) };
  return undefined;
}
const P = (name: string) => name; // property names, as World reports them

export const MUTANTS: readonly Mutant[] = [
  kernel('no-refcount-check', P('I2 a private page carries no reference besides the page cache')),
  kernel('check-before-unmap', P('I2 a private page carries no reference besides the page cache')),
  kernel('no-rollback', P('I4 a conversion changes the whole range or nothing')),
  kernel('fault-accepts-private', P('I1 no host userspace mapping of private memory')),
  // The hugetlb mutants (kernel-semantics.md §2.3, §3): their profile has huge pages, so the world's guest_memfd has them.
  kernel('merge-while-shared', P('I12 no huge folio spans pages of different attributes')),
  kernel('split-without-check', P('I13 a huge folio is merged (and stays) only while no page of it carries extra references or a host mapping')),
  kernel('no-host-zap', OWN.noDirectMapUnblocked),
  { name: 'retry-without-waiting', title: 'the manager retries without waiting for in-flight I/O', waitForIo: false, breaks: OWN.cooperativeCompletes },
  { name: 'no-pin-fence', title: 'no pin fence: new pins in a range being made private are allowed', fence: false, breaks: OWN.cooperativeCompletes },
  {
    name: 'punch-keeps-guest-mappings', title: 'PLANTED: PUNCH_HOLE skips the guest zap (stale SPTEs of the punched folios stay)',
    breaks: P('I8 KVM never keeps using a removed or converted folio'),
    plant: (k) => around(k, 'fallocate', (orig) => (fd, mode, offset, len) => {
      if (!punching(mode)) return orig(fd, mode, offset, len);
      const saved = k.state.vms.map((vm) => vm.sptes.clone());
      const r = orig(fd, mode, offset, len);
      k.state.vms.forEach((vm, i) => { (vm as { sptes: unknown }).sptes = saved[i]; });
      return r;
    }),
  },
  {
    name: 'to-shared-blocks-on-pins', title: 'PLANTED: a to-shared conversion fails with EAGAIN while a page of the range is pinned',
    breaks: P('I3 a to-shared conversion never fails on references'),
    plant: (k) => around(k, 'setMemoryAttributes2', (orig) => (fd: number, args: MemoryAttributes2Args) => {
      const inode = inodeOf(k, fd);
      if (!inode || BigInt(args.attributes) !== 0n) return orig(fd, args);
      const [lo, hi] = pagesOf(args.offset, args.size);
      const pinned = gmemFirstBlocker(k.state, inode, lo, hi, { ...k.profile.toPrivate, blockers: 'extra-refs' }, true);
      return pinned ? fail('EAGAIN', 'planted: pinned page in a to-shared conversion') : orig(fd, args);
    }),
  },
  {
    name: 'punch-resets-attributes', title: 'PLANTED: PUNCH_HOLE resets the punched range to shared',
    breaks: P('I5 attributes belong to the inode and change only by conversion'),
    plant: (k) => around(k, 'fallocate', (orig) => (fd, mode, offset, len) => {
      const r = orig(fd, mode, offset, len);
      if (r.ok && punching(mode)) inodeOf(k, fd)?.attributes.set(...pagesOf(offset, len), 'shared');
      return r;
    }),
  },
  {
    name: 'fault-skips-uptodate', title: 'PLANTED: the host fault path leaves the folio not uptodate (never marked zeroed)',
    breaks: P('I6 a folio is zeroed before its first exposure'),
    plant: (k) => around(k, 'hostRead', (orig) => (addr, length) => {
      const r = orig(addr, length);
      const at = pageAt(k, addr);
      const id = at && folioIdAt(k, at.fd, at.index);
      if (r.ok && id !== undefined) setFolio(k, id, (f) => ({ ...f, uptodate: false }));
      return r;
    }),
  },
  {
    name: 'to-private-destroys-content', title: 'PLANTED: a to-private conversion zeroes the pages even on sw_protected VMs',
    breaks: P('I7 content across a conversion follows the platform'),
    plant: (k) => around(k, 'setMemoryAttributes2', (orig) => (fd: number, args: MemoryAttributes2Args) => {
      const r = orig(fd, args);
      const inode = inodeOf(k, fd);
      if (r.ok && inode && BigInt(args.attributes) !== 0n) {
        for (const seg of inode.pages.segments(...pagesOf(args.offset, args.size))) folioZero(k.state, seg.value, seg.value + (seg.hi - seg.lo));
      }
      return r;
    }),
  },
  {
    name: 'allocate-misplaces-folio', title: 'PLANTED: fallocate records the folio it allocates under the next index',
    breaks: P('I9 folios never move'),
    plant: (k) => around(k, 'fallocate', (orig) => (fd, mode, offset, len) => {
      const had = new Set<number | undefined>();
      const [lo, hi] = pagesOf(offset, len);
      for (let i = lo; i < hi; i++) had.add(folioIdAt(k, fd, i));
      const r = orig(fd, mode, offset, len);
      for (let i = lo; i < hi; i++) {
        const id = folioIdAt(k, fd, i);
        if (r.ok && id !== undefined && !had.has(id)) setFolio(k, id, (f) => ({ ...f, index: i + 1 }));
      }
      return r;
    }),
  },
  {
    name: 'punch-drops-binding', title: "PLANTED: PUNCH_HOLE drops the file's memslot binding of the punched range",
    breaks: P('I10 binding uniqueness'),
    plant: (k) => around(k, 'fallocate', (orig) => (fd, mode, offset, len) => {
      const r = orig(fd, mode, offset, len);
      if (r.ok && punching(mode)) k.gmemFile(fd)?.bindings.delete(...pagesOf(offset, len));
      return r;
    }),
  },
  {
    name: 'munmap-releases-file', title: 'PLANTED: munmap releases the mapped guest_memfd file although its fd is open',
    breaks: P('I11 reference direction: file pins VM, VMA pins file, memslot pins nothing'),
    plant: (k) => around(k, 'munmap', (orig) => (addr, length) => {
      const file = k.vmaAt(addr)?.file;
      const r = orig(addr, length);
      if (r.ok && file) file.released = true;
      return r;
    }),
  },
  {
    name: 'private-write-lost', title: 'PLANTED: a guest write to a private page does not reach the page (the store is dropped)',
    breaks: OWN.contentKept,
    plant: (k) => around(k, 'guestWrite', (orig) => (vmFd, gpa, data, isPrivate) => {
      const vm = k.vmOfFd(vmFd);
      const gfn = Math.floor(Number(gpa) / PAGE_SIZE);
      const slot = vm?.gfnIndex[0].get(gfn);
      const inode = slot?.gmem?.file?.inode;
      const index = slot ? gfn - slot.baseGfn + slot.gmem!.pgoff : -1;
      const id = inode?.attributes.get(index) === 'private' ? inode.pages.get(index) : undefined;
      const before = id === undefined ? undefined : k.state.folioData.get(id)?.slice();
      const r = orig(vmFd, gpa, data, isPrivate);
      if (r.ok && id !== undefined) {
        if (before) folioWrite(k.state, id, 0, before);
        else folioZero(k.state, id, id + 1);
      }
      return r;
    }),
  },
  {
    name: 'host-reads-private', title: 'PLANTED: a host read of a private page is served (without leaving a mapping)',
    breaks: OWN.hostNeverObserves,
    plant: (k) => around(k, 'hostRead', (orig) => (addr, length) => {
      const at = pageAt(k, addr);
      const inode = at && inodeOf(k, at.fd);
      if (!at || !inode || inode.attributes.get(at.index) !== 'private') return orig(addr, length);
      inode.attributes.set(at.index, at.index + 1, 'shared');
      const r = orig(addr, length);
      k.madvise(addr - (addr % PAGE_SIZE), PAGE_SIZE, 4 /* DONTNEED */);
      inode.attributes.set(at.index, at.index + 1, 'private');
      return r;
    }),
  },
  {
    name: 'dma-reads-page-cache', title: "PLANTED: a device read through a pin reads the file's current page, not the pinned one",
    breaks: OWN.deviceNeverObserves, holders: ['io_uring'],
    plant: (k) => around(k, 'pinAccess', (orig) => (pin, offset, length, store) => {
      const p = k.state.pins.get(pin);
      const at = p && pageAt(k, p.address);
      if (store || !at) return orig(pin, offset, length, store);
      const id = folioIdAt(k, at.fd, at.index);
      const out = new Uint8Array(length);
      if (id !== undefined) folioRead(k.state, id, offset, out);
      return ok(out);
    }),
  },
  {
    name: 'gup-ignores-no-direct-map', title: 'PLANTED: pin_user_pages pins NO_DIRECT_MAP guest memory (check_vma_flags skipped; profile no-direct-map)',
    breaks: OWN.noDirectMapUnpinned, profile: NO_DIRECT_MAP,
    plant: (k) => around(k, 'pinUserPages', (orig) => (addr, length, longterm, write) => {
      const inode = k.vmaAt(addr)?.file?.inode as { flags: bigint } | undefined;
      const flags = inode?.flags;
      if (inode) inode.flags &= ~GMEM_FLAGS.NO_DIRECT_MAP;
      try {
        return orig(addr, length, longterm, write);
      } finally {
        if (inode) inode.flags = flags!;
      }
    }),
  },
];

export function findMutant(name: string): Mutant | undefined {
  return MUTANTS.find((m) => m.name === name);
}
