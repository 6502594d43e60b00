// Property: random operation sequences on a HugeTLB guest_memfd under the hugetlb profile
// (scaled-down huge pages of 4 base pages, which the model takes as any power of two) never break
// an invariant I1–I13, return only documented errnos, and keep the shape the rules of
// kernel-semantics.md §2.3 [RFC25] promise: a block whose pages are all private is one huge
// folio (merged back), a huge SPTE maps a huge folio at its own order. fast-check prints the seed
// and the shrunk counterexample; GMEMKIT_PROPERTY_SEED=<seed> replays, GMEMKIT_PROPERTY_RUNS=<n> soaks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { BResult } from '../src/backend/backend.js';
import { ModelBackend } from '../src/backend/model-backend.js';
import { MADV, MAP_FLAGS, PROT, VM_TYPES, hugetlbFlags, type Errno } from '../src/model/abi.js';
import { HUGETLB, findProfile, type Profile } from '../src/model/profile.js';
import { INIT_SHARED, MMAP, PAGE } from './table.js';

const NR = 4; // pages per huge page
const BLOCKS = 3;
const PAGES = NR * BLOCKS;

/** Documented errnos per operation on this universe (every fd and range is valid unless the command says otherwise). */
const ALLOWED: Record<string, { readonly errnos: readonly Errno[]; readonly cite: string }> = {
  convert: { errnos: ['EINVAL', 'EAGAIN'], cite: 'kernel-semantics.md §1.10(b), §0.4 (range past i_size: EINVAL; in use: EAGAIN)' },
  punch: { errnos: ['EAGAIN'], cite: 'kernel-semantics.md §1.7 (RFC25, HugeTLB: unsafe refcount of a whole huge page)' },
  madvise: { errnos: ['EAGAIN'], cite: 'kernel-semantics.md §1.7; kernel-probe.md §3 (MADV_REMOVE acts as PUNCH_HOLE)' },
  fallocate: { errnos: ['EINVAL'], cite: 'kernel-semantics.md §1.6 (past i_size)' },
  pin: { errnos: ['EFAULT'], cite: 'kernel-semantics.md §1.11 (GUP of a private page)' },
  vmsplice: { errnos: ['EFAULT'], cite: 'kernel-semantics.md §1.11' },
  guest: { errnos: ['EFAULT'], cite: 'kernel-semantics.md §1.4' },
};

const pg = fc.nat(PAGES - 1);
const cmd = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('convert' as const), page: pg, pages: fc.integer({ min: 1, max: 6 }), toPrivate: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('host' as const), page: pg, write: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('pin' as const), page: pg, pages: fc.integer({ min: 1, max: 2 }), longterm: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('unpin' as const), i: fc.nat(5) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('vmsplice' as const), page: pg }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('closePipe' as const), i: fc.nat(5) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('guest' as const), page: pg, write: fc.boolean(), isPrivate: fc.option(fc.boolean(), { nil: undefined }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('punch' as const), page: pg, pages: fc.integer({ min: 1, max: 9 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('fallocate' as const), page: pg, pages: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('madvise' as const), page: pg, advice: fc.constantFrom(MADV.DONTNEED, MADV.REMOVE) }) },
);
type Cmd = typeof cmd extends fc.Arbitrary<infer T> ? T : never;

interface World { b: ModelBackend; vm: number; gmem: number; map: number; gpaBase: number; pins: number[]; pipes: number[] }

function setup(profile: Profile, vmType: 'sw_protected' | 'snp', initShared: boolean, misaligned: boolean): World {
  const b = new ModelBackend({ profile });
  const must = <T>(r: BResult<T>): T => { if (!r.ok) assert.fail(JSON.stringify(r)); return r.value; };
  const vm = must(b.createVm(VM_TYPES[vmType]));
  const gmem = must(b.createGuestMemfd(vm, PAGES * PAGE, MMAP | (initShared ? INIT_SHARED : 0n) | hugetlbFlags(NR * PAGE)));
  const gpaBase = misaligned ? PAGE : 0; // a memslot not aligned with the file: KVM maps 4 KiB only
  must(b.setUserMemoryRegion2(vm, { slot: 0, flags: 4n, guest_phys_addr: gpaBase, memory_size: PAGES * PAGE, userspace_addr: 0, guest_memfd: gmem, guest_memfd_offset: 0 }));
  const map = must(b.mmap({ fd: gmem, offset: 0, length: PAGES * PAGE, prot: PROT.READ | PROT.WRITE, flags: MAP_FLAGS.SHARED }));
  return { b, vm, gmem, map, gpaBase, pins: [], pipes: [] };
}

function run(w: World, c: Cmd): [string, BResult<unknown>] | undefined {
  const { b } = w;
  const pick = (xs: number[], i: number) => (xs.length ? xs.splice(i % xs.length, 1)[0] : undefined);
  switch (c.op) {
    case 'convert': return ['convert', b.setMemoryAttributes2(w.gmem, { offset: c.page * PAGE, size: c.pages * PAGE, attributes: c.toPrivate ? 8n : 0n, flags: 0n })];
    case 'host': return ['host', c.write ? b.hostWrite(w.map + c.page * PAGE, Uint8Array.of(0x68)) : b.hostRead(w.map + c.page * PAGE, 1)];
    case 'pin': {
      const r = b.pinUserPages(w.map + c.page * PAGE, c.pages * PAGE, c.longterm);
      if (r.ok) w.pins.push(r.value);
      return ['pin', r];
    }
    case 'unpin': { const p = pick(w.pins, c.i); return p === undefined ? undefined : ['unpin', b.unpinUserPages(p)]; }
    case 'vmsplice': {
      const r = b.vmsplice(w.map + c.page * PAGE, PAGE);
      if (r.ok) w.pipes.push(r.value);
      return ['vmsplice', r];
    }
    case 'closePipe': { const p = pick(w.pipes, c.i); return p === undefined ? undefined : ['close', b.close(p)]; }
    case 'guest': {
      const gpa = w.gpaBase + c.page * PAGE;
      return ['guest', c.write ? b.guestWrite(w.vm, gpa, Uint8Array.of(0x67), c.isPrivate) : b.guestRead(w.vm, gpa, 1, c.isPrivate)];
    }
    case 'punch': return ['punch', b.fallocate(w.gmem, 3, c.page * PAGE, c.pages * PAGE)];
    case 'fallocate': return ['fallocate', b.fallocate(w.gmem, 1, c.page * PAGE, c.pages * PAGE)];
    case 'madvise': return ['madvise', b.madvise(w.map + c.page * PAGE, PAGE, c.advice)];
  }
}

/** The shape §2.3 promises, read from the model's state. */
function checkShape(w: World): void {
  const k = w.b.kernel;
  const inode = k.gmemFile(w.gmem)!.inode;
  for (let blk = 0; blk < BLOCKS; blk++) {
    const lo = blk * NR;
    const present = inode.pages.count(lo, lo + NR);
    if (present === 0) continue;
    assert.equal(present, NR, `block ${blk}: allocated in part (${present} of ${NR} pages): allocation takes whole huge pages`);
    const allPrivate = inode.attributes.every(lo, lo + NR, (a) => a === 'private');
    const orders = new Set(inode.pages.segments(lo, lo + NR).flatMap((s) => k.state.folios.segments(s.value, s.value + (s.hi - s.lo)).map((f) => f.value.order)));
    assert.deepEqual([...orders], [allPrivate ? 2 : 0], `block ${blk}: ${allPrivate ? 'all private but not merged (rule 2)' : 'a shared page in a huge folio (rule 1)'}`);
  }
  const vm = k.vmOfFd(w.vm)!;
  for (const s of vm.sptes.segments()) {
    if (s.value.order === 0) continue;
    const folio = k.state.folios.get(s.value.id);
    assert.equal(folio?.order, s.value.order, `gfn ${s.lo}: a huge SPTE over a folio of order ${folio?.order}`);
    assert.equal(w.gpaBase, 0, 'a huge SPTE in a memslot that is not aligned with the file');
  }
}

const runs = Number(process.env.GMEMKIT_PROPERTY_RUNS ?? 150);
const seed = process.env.GMEMKIT_PROPERTY_SEED === undefined ? undefined : Number(process.env.GMEMKIT_PROPERTY_SEED);

/** The property on one profile: every step clean, documented, and of the promised shape. */
const property = (profile: Profile) => fc.property(
  fc.constantFrom('sw_protected' as const, 'snp' as const), fc.boolean(), fc.nat(4).map((n) => n === 0), fc.array(cmd, { maxLength: 40 }),
  (vmType, initShared, misaligned, cmds) => {
    const w = setup(profile, vmType, initShared, misaligned);
    for (const c of cmds) {
      const done = run(w, c);
      if (!done) continue;
      const [op, r] = done;
      const v = w.b.takeViolations();
      assert.deepEqual(v.map((x) => `${x.invariant}: ${x.detail}`), [], `after ${JSON.stringify(c)}`);
      if (!r.ok && 'errno' in r) {
        const allowed = ALLOWED[op];
        assert.ok(allowed?.errnos.includes(r.errno), `${op} returned ${r.errno} (${r.why}); documented: ${allowed?.errnos.join(', ') ?? 'none'} [${allowed?.cite ?? ''}]`);
        if (r.errno === 'EAGAIN' && op === 'convert') {
          assert.ok(c.op === 'convert' && c.toPrivate, 'EAGAIN on a to-shared conversion (I3)');
          const at = Number(r.out!.error_offset) / PAGE;
          assert.ok(c.op === 'convert' && at >= c.page && at < c.page + c.pages, `error_offset page ${at} outside the request`);
        }
      }
      checkShape(w);
    }
    w.b.dispose();
  },
);

test('hugetlb: random sequences keep I1–I13, documented errnos and the split/merge shape  [kernel-semantics.md §2.3, §3]', () => {
  fc.assert(property(HUGETLB), { numRuns: runs, ...(seed === undefined ? {} : { seed }) });
});

test('the same property finds each hugetlb mutant  [kernel-semantics.md §2.3, §3 I12, I13]', () => {
  for (const name of ['mutant-merge-while-shared', 'mutant-split-without-check']) {
    const r = fc.check(property(findProfile(name)!), { numRuns: 2000, seed: 1 });
    assert.ok(r.failed, `${name} survived ${r.numRuns} random sequences`);
  }
});
