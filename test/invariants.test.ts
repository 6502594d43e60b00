// The invariant predicates I1–I11 (kernel-semantics.md §3) themselves: each row builds a healthy
// state through the backend, breaks it the way a model bug would (state surgery, or a step
// bracketed by beginStep/endStep), and asserts that exactly the named invariant reports it.
// A second table checks that every predicate is silent on healthy states of every profile.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  beginStep, bindingsUnique, checkState, endStep, foliosUnmoved, guestMappingsCurrent, noHostMappingOfPrivate,
  privatePagesExclusive, referenceDirection, zeroedBeforeExposure, type InvariantViolation,
} from '../src/model/invariants.js';
import { folioAlloc } from '../src/model/folio.js';
import { IPC_V8, MAINLINE_6_18, RFC_2024, RFC_2025, type Profile } from '../src/model/profile.js';
import { FULL_MACHINE } from '../src/model/platform.js';
import { Ctx, INIT_SHARED, K, MMAP } from './table.js';

interface InvRow {
  readonly name: string;
  readonly cite: string;
  readonly profile?: Profile;
  readonly setup: (c: Ctx) => void;
  /** Break the state and return what the invariant checks report. */
  readonly breakIt: (c: Ctx) => InvariantViolation[];
  readonly expect: readonly string[];
}

/** sw_protected VM, 16K gmem MMAP|INIT_SHARED mapped at `map`, bound at gpa 0 (uaddr NULL). */
const world = (type: 'sw_protected' | 'snp' = 'sw_protected') => (c: Ctx) => {
  c.vm(type); c.gmem(16 * K, MMAP | INIT_SHARED); c.mmap('gmem', 16 * K); c.slot(0, 0, 16 * K, 'gmem');
};
const inode = (c: Ctx) => c.k.gmemFile(c.h.gmem!)!.inode;
/** State surgery on the folio at page `page`: its id, and a change of its run state. */
const folioId = (c: Ctx, page: number) => inode(c).pages.get(page)!;
const unzero = (c: Ctx, page: number) => { const id = folioId(c, page); c.k.state.folios.update(id, id + 1, (r) => ({ ...r, uptodate: false })); };
const vm = (c: Ctx) => c.k.vmOfFd(c.h.vm!)!;
const intent = (c: Ctx, lo: number, hi: number, target: 'shared' | 'private') =>
  [{ inode: inode(c), vmType: vm(c).type, lo, hi, target }] as const;
const S3 = 'kernel-semantics.md §3';

const rows: InvRow[] = [
  { name: 'I1: a host PTE left on a page made private', cite: `${S3} I1`, setup: (c) => { world()(c); c.write('map', 0, 'x'); },
    breakIt: (c) => { inode(c).attributes.set(0, 1, 'private'); return noHostMappingOfPrivate(c.k); }, expect: ['I1'] },
  { name: 'I2: a pinned page made private', cite: `${S3} I2`, setup: (c) => { world()(c); c.pin('map', 4 * K, 4 * K); c.must(c.b.madvise(c.h.map!, 16 * K, 4)); },
    breakIt: (c) => { inode(c).attributes.set(1, 2, 'private'); return privatePagesExclusive(c.k); }, expect: ['I2'] },
  { name: 'I2: a vmspliced page made private', cite: `${S3} I2`, setup: (c) => { world()(c); c.vmsplice('map', 0, 1); c.must(c.b.madvise(c.h.map!, 16 * K, 4)); },
    breakIt: (c) => { inode(c).attributes.set(0, 1, 'private'); return privatePagesExclusive(c.k); }, expect: ['I2'] },
  { name: 'I3: a to-shared conversion that failed with EAGAIN', cite: `${S3} I3`, setup: world(),
    breakIt: (c) => endStep(beginStep(c.k, intent(c, 0, 4, 'shared')), false, 'EAGAIN'), expect: ['I3'] },
  { name: 'I4: a failed conversion that changed attributes', cite: `${S3} I4`, setup: world(),
    breakIt: (c) => { const ctx = beginStep(c.k, intent(c, 0, 4, 'private')); inode(c).attributes.set(0, 1, 'private'); return endStep(ctx, false, 'EAGAIN'); },
    expect: ['I4'] },
  { name: 'I4: a successful conversion that left part of the range', cite: `${S3} I4`, setup: world(),
    breakIt: (c) => { const ctx = beginStep(c.k, intent(c, 0, 4, 'private')); inode(c).attributes.set(0, 3, 'private'); return endStep(ctx, true); },
    expect: ['I4'] },
  { name: 'I4: a failed VM-ioctl conversion that changed per-VM attributes', cite: `${S3} I4`, profile: RFC_2024, setup: world(),
    breakIt: (c) => { const ctx = beginStep(c.k, intent(c, 0, 1, 'private')); vm(c).attributes.set(0, 1, 'private'); return endStep(ctx, false, 'EINVAL'); },
    expect: ['I4'] },
  { name: 'I5: attributes changed by a step that is not a conversion', cite: `${S3} I5`, setup: world(),
    breakIt: (c) => { const ctx = beginStep(c.k); inode(c).attributes.set(2, 3, 'private'); return endStep(ctx, true); }, expect: ['I5'] },
  { name: 'I6: a mapped folio never zeroed', cite: `${S3} I6`, setup: (c) => { world()(c); c.write('map', 0, 'x'); },
    breakIt: (c) => { unzero(c, 0); return zeroedBeforeExposure(c.k); }, expect: ['I6'] },
  { name: 'I6: a guest-mapped folio never zeroed', cite: `${S3} I6`, setup: (c) => { world()(c); c.guestWrite(8 * K, 'g'); c.must(c.b.munmap(c.h.map!, 16 * K)); },
    breakIt: (c) => { unzero(c, 2); return zeroedBeforeExposure(c.k); }, expect: ['I6'] },
  { name: 'I7: sw_protected content not preserved by a conversion', cite: `${S3} I7`, setup: (c) => { world()(c); c.write('map', 0, 'keep'); },
    breakIt: (c) => {
      const ctx = beginStep(c.k, intent(c, 0, 1, 'private'));
      c.must(c.b.madvise(c.h.map!, 4 * K, 4));
      inode(c).attributes.set(0, 1, 'private');
      c.k.state.folioData.delete(folioId(c, 0));
      return endStep(ctx, true);
    }, expect: ['I7'] },
  { name: 'I7: snp content not destroyed by a conversion', cite: `${S3} I7`, setup: (c) => { world('snp')(c); c.write('map', 0, 'leak'); },
    breakIt: (c) => {
      const ctx = beginStep(c.k, intent(c, 0, 1, 'private'));
      inode(c).attributes.set(0, 1, 'private');
      return endStep(ctx, true);
    }, expect: ['I7'] },
  { name: 'I8: a guest mapping of a folio no longer in the file', cite: `${S3} I8`, setup: (c) => { world()(c); c.guestWrite(0, 'g'); },
    breakIt: (c) => { inode(c).pages.delete(0, 1); return guestMappingsCurrent(c.k); }, expect: ['I8'] },
  { name: 'I8: a shared guest mapping of a page made private', cite: `${S3} I8`, setup: (c) => { world()(c); c.guestWrite(0, 'g'); c.must(c.b.munmap(c.h.map!, 16 * K)); },
    breakIt: (c) => { inode(c).attributes.set(0, 1, 'private'); return guestMappingsCurrent(c.k); }, expect: ['I8'] },
  { name: 'I8: a guest mapping that outlived its memslot', cite: `${S3} I8`, setup: (c) => { world()(c); c.guestWrite(0, 'g'); },
    breakIt: (c) => { const v = vm(c); v.gfnIndex[0].delete(0, 4); return guestMappingsCurrent(c.k); }, expect: ['I8'] },
  { name: 'I9: a folio found at another index', cite: `${S3} I9`, setup: (c) => { world()(c); c.write('map', 0, 'x'); },
    breakIt: (c) => { const i = inode(c); i.pages.set(3, 4, i.pages.get(0)!); return foliosUnmoved(c.k); }, expect: ['I9'] },
  { name: 'I9: a detached folio still in the page cache', cite: `${S3} I9`, setup: world(),
    breakIt: (c) => { const id = folioAlloc(c.k.state, inode(c).ino, 1, 1, { inCache: false }); inode(c).pages.set(1, 2, id); return foliosUnmoved(c.k); }, expect: ['I9'] },
  { name: 'I10: a binding not mirrored by its memslot', cite: `${S3} I10`, setup: world(),
    breakIt: (c) => { c.k.gmemFile(c.h.gmem!)!.bindings.delete(0, 1); return bindingsUnique(c.k); }, expect: ['I10'] },
  { name: 'I10: a binding past i_size', cite: `${S3} I10`, setup: world(),
    breakIt: (c) => { const f = c.k.gmemFile(c.h.gmem!)!; f.bindings.set(4, 6, f.bindings.get(0)!); return bindingsUnique(c.k); }, expect: ['I10'] },
  { name: 'I11: a file that outlived its VM', cite: `${S3} I11`, setup: world(),
    breakIt: (c) => { vm(c).destroyed = true; return referenceDirection(c.k); }, expect: ['I11'] },
  { name: 'I11: a file kept alive by nothing but a memslot', cite: `${S3} I11`, setup: (c) => { world()(c); c.must(c.b.munmap(c.h.map!, 16 * K)); },
    breakIt: (c) => { c.k.gmemFile(c.h.gmem!)!.fdRefs = 0; return referenceDirection(c.k); }, expect: ['I11'] },
  { name: 'I11: a VMA mapping a released file', cite: `${S3} I11`, setup: world(),
    breakIt: (c) => { c.k.gmemFile(c.h.gmem!)!.released = true; return referenceDirection(c.k); }, expect: ['I11'] },
];

describe('each invariant predicate catches its violation', () => {
  for (const row of rows) {
    test(`${row.name}  [${row.cite}]`, () => {
      const c = new Ctx(row.profile ?? IPC_V8, FULL_MACHINE);
      row.setup(c);
      assert.deepEqual(c.b.takeViolations(), [], 'the setup is healthy');
      assert.deepEqual(checkState(c.k), [], 'the setup is healthy');
      const seen = [...new Set(row.breakIt(c).map((v) => v.invariant))].sort();
      assert.deepEqual(seen, [...row.expect].sort());
    });
  }
});

describe('every predicate is silent on healthy workloads', () => {
  const workload = (c: Ctx, p: Profile) => {
    const type = p === MAINLINE_6_18 ? 'default' : 'sw_protected';
    c.vm(type); c.gmem(64 * K, MMAP | INIT_SHARED); c.mmap('gmem', 64 * K); c.slot(0, 0, 64 * K, 'gmem');
    c.write('map', 0, 'host'); c.guestWrite(4 * K, 'guest'); c.pin('map', 8 * K, 8 * K); c.vmsplice('map', 16 * K, 100);
    c.punch('gmem', 8 * K, 4 * K);
    if (p.conversion === 'gmem-ioctl') {
      c.convert('gmem', 24 * K, 8 * K, true);
      assert.equal(c.b.setMemoryAttributes2(c.h.gmem!, { offset: 0, size: 64 * K, attributes: 8n, flags: 0n }).ok, false);
      c.guestWrite(24 * K, 'priv');
      c.convert('gmem', 24 * K, 4 * K, false);
    } else if (p.conversion === 'vm-ioctl') {
      c.must(c.b.madvise(c.h.map!, 64 * K, 4));
      c.must(c.b.setMemoryAttributes(c.h.vm!, { address: 32 * K, size: 8 * K, attributes: 8n, flags: 0n }));
    }
    c.must(c.b.unpinUserPages(c.h.pin!));
    c.must(c.b.close(c.h.gmem!));
    c.must(c.b.munmap(c.h.map!, 64 * K));
  };
  for (const p of [MAINLINE_6_18, IPC_V8, RFC_2024, RFC_2025]) {
    test(`${p.name}: map, guest access, pin, vmsplice, punch, convert, close  [${S3}]`, () => {
      const c = new Ctx(p, FULL_MACHINE);
      workload(c, p);
      assert.deepEqual(c.b.takeViolations(), []);
      assert.deepEqual(checkState(c.k), []);
    });
  }
  test(`rfc-2025 and ipc-v8 agree on a blocked conversion's state  [kernel-semantics.md §1.10(c)]`, () => {
    for (const p of [IPC_V8, RFC_2025]) {
      const c = new Ctx(p, FULL_MACHINE);
      c.vm('snp'); c.gmem(16 * K, MMAP | INIT_SHARED); c.mmap('gmem', 16 * K); c.pin('map', 0, 4 * K);
      const r = c.b.setMemoryAttributes2(c.h.gmem!, { offset: 0, size: 16 * K, attributes: 8n, flags: 0n });
      assert.ok(!r.ok && 'errno' in r && r.errno === 'EAGAIN' && r.out?.error_offset === 0n);
      assert.deepEqual(c.b.takeViolations(), []);
    }
  });
});
