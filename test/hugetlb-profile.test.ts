// The hugetlb profile: guest_memfd backed by huge pages with the split/merge rules of the 1G page
// support RFC v2 (kernel-semantics.md §2.3 [RFC25]) on top of next-7.4. Rows: creation with
// GUEST_MEMFD_FLAG_HUGETLB and a huge page size, whole-huge-page allocation, split on to-shared
// and merge on to-private (after the check, all or nothing), the mapping level KVM uses, the
// punch of part of a huge page and of a whole one, folio_order's errnos, and that a split and a
// merge of a 1 GiB folio cost a few runs of the folio table, not 262,144 pages.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CAPS, GMEM_FLAGS, HUGETLB_SIZE_SHIFT, MADV, hugetlbFlags } from '../src/model/abi.js';
import { HUGETLB, NEXT_7_4 } from '../src/model/profile.js';
import { FLAG, modelPageMaps } from '../src/trace/page-map.js';
import { ModelBackend } from '../src/backend/model-backend.js';
import { attrs2, G, INIT_SHARED, K, M, MMAP, PAGE, table, type Ctx, type Row } from './table.js';

const S23 = 'kernel-semantics.md §2.3';
const S11 = 'kernel-semantics.md §1.1';
const S17 = 'kernel-semantics.md §1.7';
const huge = { profile: HUGETLB };
const H2 = hugetlbFlags(2 * M);
/** A sw_protected VM with a 4 MiB guest_memfd of 2 MiB pages (private), bound at GPA 0. */
const privateFile = (c: Ctx, flags = 0n) => { c.vm('sw_protected'); c.gmem(4 * M, MMAP | H2 | flags); c.slot(0, 0, 4 * M, 'gmem'); };
/** The same file all shared at first (INIT_SHARED) and mapped by the host. */
const sharedFile = (c: Ctx) => { privateFile(c, INIT_SHARED); c.mmap('gmem', 4 * M); };
const order = (c: Ctx, offset: number) => c.b.folioOrder(c.h.gmem!, offset);
const orderIs = (c: Ctx, offset: number, want: bigint) => assert.deepEqual(order(c, offset), { ok: true, value: want }, `folio order at ${offset}`);
const noFolio = (c: Ctx, offset: number) => { const r = order(c, offset); assert.ok(!r.ok && 'errno' in r && r.errno === 'ENOENT', `a folio at ${offset}`); };
const spteIs = (c: Ctx, gpa: number, want: bigint | 'none') => {
  const r = c.b.spteOrder(c.h.vm!, gpa);
  if (want === 'none') assert.ok(!r.ok && 'errno' in r && r.errno === 'ENOENT', `gpa ${gpa} is mapped: ${JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
  else assert.deepEqual(r, { ok: true, value: want }, `SPTE order at ${gpa}`);
};
const toShared = (offset: number, size: number) => (c: Ctx) => c.b.setMemoryAttributes2(c.h.gmem!, attrs2(offset, size, false));
const toPrivate = (offset: number, size: number) => (c: Ctx) => c.b.setMemoryAttributes2(c.h.gmem!, attrs2(offset, size, true));

describe('hugetlb: creating a guest_memfd of huge pages', () => {
  const rows: Row[] = [
    { name: 'HUGETLB with 2 MiB pages: a file of whole huge pages', cite: `${S23} [RFC25]; ${S11}`, ...huge,
      setup: (c) => c.vm('sw_protected'), call: (c) => c.b.createGuestMemfd(c.h.vm!, 4 * M, MMAP | H2), expect: { value: 4 } },
    { name: 'KVM_CAP_GUEST_MEMFD_FLAGS offers HUGETLB', cite: `${S11}; kernel-semantics.md §5.2`, ...huge,
      setup: (c) => c.vm('sw_protected'), call: (c) => c.b.checkExtension(CAPS.GUEST_MEMFD_FLAGS, c.h.vm), expect: { value: MMAP | INIT_SHARED | GMEM_FLAGS.HUGETLB } },
    { name: 'next-7.4 does not know HUGETLB: EINVAL as any unknown flag', cite: `${S11} (a flag bit that is not supported)`, profile: NEXT_7_4,
      setup: (c) => c.vm('sw_protected'), call: (c) => c.b.createGuestMemfd(c.h.vm!, 4 * M, MMAP | H2), expect: { errno: 'EINVAL' } },
    { name: 'HUGETLB without a huge page size: EINVAL', cite: `${S23} [RFC25] (the size is encoded in bits 58..63)`, ...huge,
      setup: (c) => c.vm('sw_protected'), call: (c) => c.b.createGuestMemfd(c.h.vm!, 4 * M, MMAP | GMEM_FLAGS.HUGETLB), expect: { errno: 'EINVAL' } },
    { name: 'a huge page size smaller than PAGE_SIZE: EINVAL', cite: `${S23} [RFC25]`, ...huge,
      setup: (c) => c.vm('sw_protected'), call: (c) => c.b.createGuestMemfd(c.h.vm!, 4 * M, MMAP | GMEM_FLAGS.HUGETLB | (11n << HUGETLB_SIZE_SHIFT)), expect: { errno: 'EINVAL' } },
    { name: 'a size that is not a multiple of the huge page size: EINVAL', cite: `${S23} [RFC25]`, ...huge,
      setup: (c) => c.vm('sw_protected'), call: (c) => c.b.createGuestMemfd(c.h.vm!, 2 * M + 4 * K, MMAP | H2), expect: { errno: 'EINVAL' } },
    { name: 'size bits without HUGETLB are unknown flags: EINVAL', cite: S11, ...huge,
      setup: (c) => c.vm('sw_protected'), call: (c) => c.b.createGuestMemfd(c.h.vm!, 4 * M, MMAP | (21n << HUGETLB_SIZE_SHIFT)), expect: { errno: 'EINVAL' } },
    { name: '1 GiB pages: a 4 KiB fallocate takes a whole order-18 folio, one run', cite: `${S23} [RFC25]; kernel-semantics.md §1.6`, ...huge,
      setup: (c) => { c.vm('sw_protected'); c.gmem(G, MMAP | hugetlbFlags(G)); },
      call: (c) => c.b.fallocate(c.h.gmem!, 1, 0, 4 * K), expect: 'ok',
      then: (c) => { orderIs(c, 512 * M, 18n); assert.equal(c.cached(), 262144); assert.equal(c.k.state.folios.runs, 1); } },
    { name: 'any power-of-two huge page size inside the model: 16 KiB pages are order 2', cite: `${S23} (the model's scaled-down huge pages)`, ...huge,
      setup: (c) => { c.vm('sw_protected'); c.gmem(64 * K, MMAP | hugetlbFlags(16 * K)); },
      call: (c) => c.b.fallocate(c.h.gmem!, 1, 20 * K, 4 * K), expect: 'ok',
      then: (c) => { orderIs(c, 16 * K, 2n); noFolio(c, 0); assert.equal(c.cached(), 4); } },
  ];
  table(rows);
});

describe('hugetlb: allocation takes whole huge pages', () => {
  const rows: Row[] = [
    { name: 'a guest fault allocates the whole huge page and maps it at the 2 MiB level', cite: `${S23}; kernel-semantics.md §1.4`, ...huge, setup: privateFile,
      call: (c) => c.b.guestWrite(c.h.vm!, 4 * K, Uint8Array.of(1), true), expect: 'ok',
      then: (c) => { assert.equal(c.cached(), 512); orderIs(c, 0, 9n); spteIs(c, 2 * M - PAGE, 9n); spteIs(c, 2 * M, 'none'); } },
    { name: 'a block with a shared page is allocated as 4 KiB folios (no huge folio is host-mapped)', cite: `${S23} (the model's choice of when to split); kernel-semantics.md §3 I12`, ...huge, setup: sharedFile,
      call: (c) => c.b.hostWrite(c.h.map! + 8 * K, Uint8Array.of(7)), expect: 'ok',
      then: (c) => { assert.equal(c.cached(), 512); orderIs(c, 0, 0n); orderIs(c, 2 * M - PAGE, 0n); noFolio(c, 2 * M); } },
    { name: 'the memslot is not aligned with the file: KVM maps the huge folio with 4 KiB SPTEs', cite: `${S23}; kernel-semantics.md §1.9`, ...huge,
      setup: (c) => { c.vm('sw_protected'); c.gmem(4 * M, MMAP | H2); c.slot(0, 4 * K, 4 * M - 4 * K, 'gmem'); },
      call: (c) => c.b.guestWrite(c.h.vm!, 4 * K, Uint8Array.of(1), true), expect: 'ok',
      then: (c) => { orderIs(c, 0, 9n); spteIs(c, 4 * K, 0n); } },
  ];
  table(rows);
});

describe('hugetlb: split on to-shared, merge on to-private (RFC25 rules 1-4)', () => {
  const faulted = (c: Ctx) => { privateFile(c); c.guestWrite(0, 'A', true); c.guestWrite(2 * M, 'B', true); };
  const bounce = (c: Ctx) => { faulted(c); c.convert('gmem', 8 * K, 4 * K, false); c.mmap('gmem', 4 * M); };
  const rows: Row[] = [
    { name: 'to-shared of one page splits its whole huge folio; the other huge page stays', cite: `${S23} [RFC25] rule 1`, ...huge, setup: faulted,
      call: toShared(8 * K, 4 * K), expect: 'ok',
      then: (c) => { orderIs(c, 0, 0n); orderIs(c, 2 * M - PAGE, 0n); orderIs(c, 2 * M, 9n); spteIs(c, 0, 'none'); spteIs(c, 2 * M, 9n); } },
    { name: 'the range is rounded out: a to-shared across a boundary splits both huge folios', cite: `${S23} [RFC25] rule 1 (range rounded out)`, ...huge, setup: faulted,
      call: toShared(2 * M - 4 * K, 8 * K), expect: 'ok',
      then: (c) => { orderIs(c, 0, 0n); orderIs(c, 4 * M - PAGE, 0n); } },
    { name: 'to-private of the last shared page merges the block back into one folio', cite: `${S23} [RFC25] rule 2`, ...huge, setup: bounce,
      call: toPrivate(8 * K, 4 * K), expect: 'ok',
      then: (c) => { orderIs(c, 0, 9n); assert.equal(new TextDecoder().decode(c.guestRead(0, 1, true)), 'A'); spteIs(c, 8 * K, 9n); } },
    { name: 'no merge while another page of the block is still shared', cite: `${S23} [RFC25] rule 2`, ...huge,
      setup: (c) => { bounce(c); c.convert('gmem', 12 * K, 4 * K, false); },
      call: toPrivate(8 * K, 4 * K), expect: 'ok',
      then: (c) => { orderIs(c, 0, 0n); assert.equal(c.attr('gmem', 12 * K), 'shared'); } },
    { name: 'a pinned page blocks its own conversion: EAGAIN at that page, and nothing is merged', cite: `${S23} [RFC25] rules 3, 4; kernel-semantics.md §0.4`, ...huge,
      setup: (c) => { bounce(c); c.convert('gmem', 16 * K, 4 * K, false); c.pin('map', 16 * K, 4 * K, false); },
      call: toPrivate(8 * K, 12 * K), expect: { errno: 'EAGAIN', out: { error_offset: 16384n } },
      then: (c) => { orderIs(c, 0, 0n); assert.equal(c.attr('gmem', 8 * K), 'shared'); assert.equal(c.ptes('map'), 0); } },
    { name: 'after the pin is gone the same call merges', cite: `${S23} [RFC25] rules 2, 3`, ...huge,
      setup: (c) => { bounce(c); c.pin('map', 8 * K, 4 * K, true); c.must(c.b.unpinUserPages(c.h.pin!)); },
      call: toPrivate(8 * K, 4 * K), expect: 'ok', then: (c) => orderIs(c, 0, 9n) },
    { name: 'to-shared never fails on references, also when it splits', cite: `${S23} [RFC25]; kernel-semantics.md §3 I3`, ...huge,
      setup: (c) => { bounce(c); c.pin('map', 8 * K, 4 * K, true); },
      call: toShared(2 * M, 2 * M), expect: 'ok', then: (c) => { orderIs(c, 2 * M, 0n); orderIs(c, 0, 0n); } },
    { name: 'a guest access to the split block maps 4 KiB', cite: `${S23} (KVM's mapping level follows the folio)`, ...huge, setup: bounce,
      call: (c) => c.b.guestRead(c.h.vm!, 0, 1, true), expect: { bytes: [0x41] }, then: (c) => spteIs(c, 0, 0n) },
  ];
  table(rows);
});

describe('hugetlb: PUNCH_HOLE of part of a huge page zeroes, of a whole one frees (RFC25 rule 5)', () => {
  const written = (c: Ctx) => { privateFile(c); c.guestWrite(0, 'AB', true); c.guestWrite(4 * K, 'CD', true); };
  const splitShared = (c: Ctx) => { privateFile(c); c.guestWrite(0, 'A', true); c.convert('gmem', 8 * K, 4 * K, false); c.mmap('gmem', 4 * M); c.write('map', 8 * K, 'S'); };
  const punch = (offset: number, length: number) => (c: Ctx) => c.b.fallocate(c.h.gmem!, 3, offset, length);
  const rows: Row[] = [
    { name: 'part of a huge page: zeroed in place, the folio stays', cite: `${S17} (RFC25, HugeTLB); ${S23} rule 5`, ...huge, setup: written,
      call: punch(0, 4 * K), expect: 'ok',
      then: (c) => { orderIs(c, 0, 9n); assert.equal(c.cached(), 512); assert.deepEqual([...c.guestRead(0, 2, true)], [0, 0]); assert.equal(new TextDecoder().decode(c.guestRead(4 * K, 2, true)), 'CD'); } },
    { name: 'part of a huge page zaps its huge SPTE whole', cite: `${S17}; ${S23}`, ...huge, setup: written,
      call: punch(4 * K, 4 * K), expect: 'ok', then: (c) => spteIs(c, 0, 'none') },
    { name: 'a whole huge page: freed', cite: `${S17} (RFC25, HugeTLB)`, ...huge, setup: written,
      call: punch(0, 2 * M), expect: 'ok', then: (c) => { noFolio(c, 0); assert.equal(c.cached(), 0); assert.equal(c.sptes(), 0); } },
    { name: 'a whole huge page with shared pages and no references: merged, then freed', cite: `${S17}; ${S23} rule 5`, ...huge, setup: splitShared,
      call: punch(0, 2 * M), expect: 'ok', then: (c) => { noFolio(c, 8 * K); assert.equal(c.ptes('map'), 0); } },
    { name: 'a whole huge page with a pinned shared page: EAGAIN, unmapped, nothing freed', cite: `${S17} (unsafe refcount: EAGAIN); ${S23} rule 5`, ...huge,
      setup: (c) => { splitShared(c); c.pin('map', 8 * K, 4 * K, true); },
      call: punch(0, 2 * M), expect: { errno: 'EAGAIN', noOut: true },
      then: (c) => { orderIs(c, 0, 0n); assert.equal(c.cached(), 512); assert.equal(c.ptes('map'), 0); } },
    { name: 'MADV_REMOVE of a whole huge page with a pinned page: EAGAIN as PUNCH_HOLE', cite: `${S17}; kernel-probe.md §3 (MADV_REMOVE acts as PUNCH_HOLE)`, ...huge,
      setup: (c) => { splitShared(c); c.pin('map', 8 * K, 4 * K, true); },
      call: (c) => c.b.madvise(c.h.map!, 2 * M, MADV.REMOVE), expect: { errno: 'EAGAIN' } },
    { name: 'a punch over one whole and one partial huge page frees one and zeroes the other', cite: `${S17}; ${S23} rule 5`, ...huge,
      setup: (c) => { written(c); c.guestWrite(2 * M, 'EF', true); },
      call: punch(0, 2 * M + 4 * K), expect: 'ok', then: (c) => { noFolio(c, 0); orderIs(c, 2 * M, 9n); assert.deepEqual([...c.guestRead(2 * M, 2, true)], [0, 0]); } },
  ];
  table(rows);
});

describe('hugetlb: folio_order and spte_order (model only)', () => {
  const rows: Row[] = [
    { name: 'no folio allocated there: ENOENT', cite: 'scenario-language.md §3 (folio_order)', ...huge, setup: (c) => privateFile(c),
      call: (c) => c.b.folioOrder(c.h.gmem!, 0), expect: { errno: 'ENOENT' } },
    { name: 'an offset past i_size: EINVAL', cite: 'scenario-language.md §3 (folio_order)', ...huge, setup: (c) => privateFile(c),
      call: (c) => c.b.folioOrder(c.h.gmem!, 4 * M), expect: { errno: 'EINVAL' } },
    { name: 'a closed fd: EBADF', cite: 'scenario-language.md §3 (folio_order)', ...huge, setup: (c) => privateFile(c),
      call: (c) => c.b.folioOrder(99, 0), expect: { errno: 'EBADF' } },
    { name: 'a VM fd is not a guest_memfd: ENOTTY', cite: 'scenario-language.md §3 (folio_order)', ...huge, setup: (c) => privateFile(c),
      call: (c) => c.b.folioOrder(c.h.vm!, 0), expect: { errno: 'ENOTTY' } },
    { name: 'a 4 KiB guest_memfd of next-7.4 holds order-0 folios', cite: 'kernel-semantics.md §2.3 (M and v8: order 0 only)', profile: NEXT_7_4,
      setup: (c) => { c.vm('sw_protected'); c.gmem(16 * K, MMAP); c.must(c.b.fallocate(c.h.gmem!, 1, 0, 16 * K)); },
      call: (c) => c.b.folioOrder(c.h.gmem!, 8 * K), expect: { value: 0n } },
    { name: 'an unmapped gpa has no SPTE: ENOENT', cite: 'scenario-language.md §3 (spte_order)', ...huge, setup: (c) => privateFile(c),
      call: (c) => c.b.spteOrder(c.h.vm!, 0), expect: { errno: 'ENOENT' } },
  ];
  table(rows);
});

describe('hugetlb: cost follows ranges', () => {
  const row: Row = {
    name: 'splitting a 1 GiB folio and merging it back touches a few runs of the folio table, not 262,144 pages', cite: S23, ...huge,
    setup: (c) => { c.vm('sw_protected'); c.gmem(2 * G, MMAP | hugetlbFlags(G)); c.must(c.b.fallocate(c.h.gmem!, 1, 0, 2 * G)); },
    call: (c) => {
      const runs: number[] = [c.k.state.folios.runs];
      c.convert('gmem', 4 * K, 4 * K, false);
      runs.push(c.k.state.folios.runs);
      const r = c.b.setMemoryAttributes2(c.h.gmem!, attrs2(4 * K, 4 * K, true));
      runs.push(c.k.state.folios.runs);
      return r.ok ? { ok: true, value: runs } : r;
    },
    // One run of two 1 GiB folios; split: the 4 KiB run of the first and the huge run of the second; merged: one run again.
    expect: { value: [1, 2, 1] },
    then: (c) => { orderIs(c, 0, 18n); orderIs(c, G, 18n); },
  };
  table([row]);
});

test('the page map marks the pages of huge folios (what gmemkit view outlines)  [kernel-semantics.md §2.3]', () => {
  const b = new ModelBackend({ profile: HUGETLB });
  const vm = b.createVm(1);
  assert.ok(vm.ok);
  const fd = b.createGuestMemfd(vm.value, 4 * M, MMAP | H2);
  assert.ok(fd.ok);
  assert.ok(b.fallocate(fd.value, 1, 0, 4 * M).ok);
  assert.ok(b.setMemoryAttributes2(fd.value, attrs2(2 * M, 4 * K, false)).ok); // splits the second huge page
  const [map] = modelPageMaps(b.kernel);
  const pages = (2 * M) / PAGE;
  assert.deepEqual(map!.runs, [[0, pages, FLAG.PRIVATE | FLAG.HUGE], [pages, pages + 1, 0], [pages + 1, 2 * pages, FLAG.PRIVATE]]);
  b.dispose();
});
