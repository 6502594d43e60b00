// GUP users of a guest_memfd mapping: pin_user_pages (FOLL_PIN, short- and long-term: O_DIRECT,
// io_uring fixed buffers, VFIO), device access through a pin, and vmsplice (FOLL_GET).
// kernel-probe.md §6 and kernel-semantics.md §1.11.
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { PROT } from '../src/model/abi.js';
import { PROBED_MACHINE } from '../src/model/platform.js';
import { IPC_V8, MAINLINE_6_18 } from '../src/model/profile.js';
import { bytes, INIT_SHARED, K, MMAP, table, type Ctx, type Row } from './table.js';

const probed = { profile: MAINLINE_6_18, machine: PROBED_MACHINE };
const P6 = 'kernel-probe.md §6';
const S111 = 'kernel-semantics.md §1.11';
const shared = (size = 64 * K) => (c: Ctx) => { c.vm(); c.gmem(size, MMAP | INIT_SHARED); c.mmap('gmem', size); };
const notShared = (c: Ctx) => { c.vm(); c.gmem(16 * K, MMAP); c.mmap('gmem', 16 * K); };
const folio = (c: Ctx, page: number) => c.folio('gmem', page);

describe('pin_user_pages', () => {
  const rows: Row[] = [
    { name: 'a never-faulted page: ok, GUP faults it in', cite: `${P6} (O_DIRECT pread into a page never faulted)`, ...probed, setup: shared(),
      call: (c) => c.b.pinUserPages(c.h.map!, 4 * K, false), expect: 'ok',
      then: (c) => { assert.equal(c.ptes('map'), 1); assert.equal(folio(c, 0)!.pinsShort, 1); } },
    { name: 'DMA through the pin lands in the gmem page', cite: `${P6} (the DMA lands in the gmem page)`, ...probed,
      setup: (c) => { shared()(c); c.pin('map', 0, 4 * K, false); },
      call: (c) => c.b.pinAccess(c.h.pin!, 100, 3, bytes('dma')), expect: 'ok',
      then: (c) => assert.equal(new TextDecoder().decode(c.read('map', 100, 3)), 'dma') },
    { name: 'a 56K multi-page pin: ok', cite: `${P6} (56K multi-page)`, ...probed, setup: shared(),
      call: (c) => c.b.pinUserPages(c.h.map! + 4 * K, 56 * K, false), expect: 'ok' },
    { name: 'an unaligned pin covers every page it touches', cite: 'kernel-semantics.md §1.11', ...probed, setup: shared(),
      call: (c) => c.b.pinUserPages(c.h.map! + 4 * K - 1, 2, true), expect: 'ok',
      then: (c) => { assert.equal(folio(c, 0)!.pinsLong, 1); assert.equal(folio(c, 1)!.pinsLong, 1); } },
    { name: 'long-term pin (io_uring REGISTER_BUFFERS) over 64K: allowed', cite: `${P6}; ${S111} (FOLL_LONGTERM allowed)`, ...probed, setup: shared(),
      call: (c) => c.b.pinUserPages(c.h.map!, 64 * K, true), expect: 'ok',
      then: (c) => assert.equal(folio(c, 15)!.pinsLong, 1) },
    { name: 'unpin (unregister): ok, references gone', cite: `${P6} (VmPin back to 0 after unregister)`, ...probed,
      setup: (c) => { shared()(c); c.pin('map', 0, 64 * K); }, call: (c) => c.b.unpinUserPages(c.h.pin!), expect: 'ok',
      then: (c) => assert.equal(folio(c, 15)!.pinsLong, 0) },
    { name: 'unpin twice: EINVAL', cite: 'model API (a pin id is released once)', ...probed,
      setup: (c) => { shared()(c); c.pin('map', 0, 4 * K); c.must(c.b.unpinUserPages(c.h.pin!)); },
      call: (c) => c.b.unpinUserPages(c.h.pin!), expect: { errno: 'EINVAL' } },
    { name: 'MMAP (not shared) mapping, short-term: EFAULT', cite: `${P6} (O_DIRECT / buffered pread into a non-shared mapping)`, ...probed, setup: notShared,
      call: (c) => c.b.pinUserPages(c.h.map!, 4 * K, false), expect: { errno: 'EFAULT' } },
    { name: 'MMAP (not shared) mapping, long-term: EFAULT', cite: `${P6} (REGISTER_BUFFERS on a non-shared mapping)`, ...probed, setup: notShared,
      call: (c) => c.b.pinUserPages(c.h.map!, 4 * K, true), expect: { errno: 'EFAULT' } },
    { name: 'past EOF: EFAULT', cite: `${S111} (GUP on a SIGBUS case fails with EFAULT)`, ...probed,
      setup: (c) => { c.vm(); c.gmem(16 * K, MMAP | INIT_SHARED); c.mmap('gmem', 32 * K); },
      call: (c) => c.b.pinUserPages(c.h.map! + 12 * K, 8 * K, true), expect: { errno: 'EFAULT' } },
    { name: 'an unmapped address: EFAULT', cite: 'get_user_pages(): no VMA', ...probed, setup: shared(),
      call: (c) => c.b.pinUserPages(c.h.map! + 64 * K, 4 * K, true), expect: { errno: 'EFAULT' } },
    { name: 'a write pin of a read-only mapping: EFAULT', cite: 'get_user_pages(): FOLL_WRITE on a read-only VMA', ...probed,
      setup: (c) => { c.vm(); c.gmem(16 * K, MMAP | INIT_SHARED); c.mmap('gmem', 16 * K, { prot: PROT.READ }); },
      call: (c) => c.b.pinUserPages(c.h.map!, 4 * K, true), expect: { errno: 'EFAULT' } },
    { name: 'a read pin of a read-only mapping: ok', cite: 'get_user_pages() without FOLL_WRITE', ...probed,
      setup: (c) => { c.vm(); c.gmem(16 * K, MMAP | INIT_SHARED); c.mmap('gmem', 16 * K, { prot: PROT.READ }); },
      call: (c) => c.b.pinUserPages(c.h.map!, 4 * K, true, false), expect: 'ok' },
    { name: 'length 0: EINVAL', cite: 'model API (pin of an empty range)', ...probed, setup: shared(),
      call: (c) => c.b.pinUserPages(c.h.map!, 0, true), expect: { errno: 'EINVAL' } },
    { name: 'device access outside the pinned range: EINVAL', cite: 'model API (DMA bounds)', ...probed,
      setup: (c) => { shared()(c); c.pin('map', 0, 4 * K); }, call: (c) => c.b.pinAccess(c.h.pin!, 4 * K - 1, 2), expect: { errno: 'EINVAL' } },
    { name: 'ipc-v8: pin of a private page: EFAULT', cite: `${S111} (private index: fault → SIGBUS → EFAULT)`, profile: IPC_V8,
      setup: (c) => { c.vm('sw_protected'); c.gmem(16 * K, MMAP | INIT_SHARED); c.mmap('gmem', 16 * K); c.convert('gmem', 4 * K, 4 * K, true); },
      call: (c) => c.b.pinUserPages(c.h.map!, 8 * K, true), expect: { errno: 'EFAULT' } },
    { name: 'ipc-v8: a long-term pin of a shared page is allowed', cite: `${S111} (the slow path allows it)`, profile: IPC_V8,
      setup: (c) => { c.vm('snp'); c.gmem(16 * K, MMAP | INIT_SHARED); c.mmap('gmem', 16 * K); },
      call: (c) => c.b.pinUserPages(c.h.map!, 16 * K, true), expect: 'ok' },
    { name: 'pin of anonymous memory: ok', cite: 'get_user_pages()', ...probed, setup: (c) => { c.anon(8 * K); },
      call: (c) => c.b.pinUserPages(c.h.anon!, 8 * K, true), expect: 'ok' },
  ];
  table(rows);
});

describe('vmsplice', () => {
  const rows: Row[] = [
    { name: 'vmsplice of a gmem page: ok, the pipe holds a page reference', cite: P6, ...probed, setup: shared(),
      call: (c) => c.b.vmsplice(c.h.map!, 4 * K), expect: 'ok', then: (c) => assert.equal(folio(c, 0)!.gets, 1) },
    { name: 'the pipe sees writes made after the vmsplice', cite: `${P6} (including writes made after the vmsplice)`, ...probed,
      setup: (c) => { shared()(c); c.vmsplice('map', 0, 4); c.write('map', 0, 'late'); },
      call: (c) => c.b.fdRead(c.h.pipe!), expect: { data: 'late' } },
    { name: 'reading the pipe drops the reference', cite: 'pipe(7)', ...probed,
      setup: (c) => { shared()(c); c.vmsplice('map', 0, 4 * K); }, call: (c) => c.b.fdRead(c.h.pipe!), expect: { fill: 0, length: 4 * K },
      then: (c) => assert.equal(folio(c, 0)!.gets, 0) },
    { name: 'a partial read keeps the rest', cite: 'pipe(7)', ...probed,
      setup: (c) => { shared()(c); c.write('map', 0, 'abcdef'); c.vmsplice('map', 0, 6); c.must(c.b.fdRead(c.h.pipe!, 2)); },
      call: (c) => c.b.fdRead(c.h.pipe!), expect: { data: 'cdef' } },
    { name: 'vmsplice from a non-shared (flags=MMAP) mapping: EFAULT', cite: P6, ...probed, setup: notShared,
      call: (c) => c.b.vmsplice(c.h.map!, 4 * K), expect: { errno: 'EFAULT' } },
    { name: 'vmsplice of an unmapped address: EFAULT', cite: 'vmsplice(2)', ...probed, setup: shared(),
      call: (c) => c.b.vmsplice(c.h.map! + 64 * K, 4 * K), expect: { errno: 'EFAULT' } },
    { name: 'vmsplice length 0: EINVAL', cite: 'model API (empty iovec)', ...probed, setup: shared(),
      call: (c) => c.b.vmsplice(c.h.map!, 0), expect: { errno: 'EINVAL' } },
    { name: 'vmsplice of a read-only mapping: ok (read reference)', cite: 'vmsplice(2) (user pages are read)', ...probed,
      setup: (c) => { c.vm(); c.gmem(16 * K, MMAP | INIT_SHARED); c.mmap('gmem', 16 * K, { prot: PROT.READ }); },
      call: (c) => c.b.vmsplice(c.h.map!, 4 * K), expect: 'ok' },
    { name: 'the pipe fd is not a guest_memfd: mmap ENODEV', cite: 'mmap(2) (file without ->mmap)', ...probed,
      setup: (c) => { shared()(c); c.vmsplice('map', 0, 4); },
      call: (c) => c.b.mmap({ fd: c.h.pipe!, offset: 0, length: 4 * K, prot: 3n, flags: 1n }), expect: { errno: 'ENODEV' } },
  ];
  table(rows);
});
