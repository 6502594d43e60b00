// fallocate(2) on a guest_memfd: allocation and PUNCH_HOLE, every row of kernel-probe.md §5
// (16K file, MMAP|INIT_SHARED, probed machine), plus punching pinned or vmspliced pages (§6).
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { FALLOC_FLAGS as F } from '../src/model/abi.js';
import { PROBED_MACHINE } from '../src/model/platform.js';
import { IPC_V8, MAINLINE_6_18 } from '../src/model/profile.js';
import { INIT_SHARED, K, MMAP, table, type Ctx, type Row } from './table.js';

const probed = { profile: MAINLINE_6_18, machine: PROBED_MACHINE };
const P5 = 'kernel-probe.md §5';
const P6 = 'kernel-probe.md §6';
const KEEP = F.KEEP_SIZE;
const PUNCH = F.PUNCH_HOLE | F.KEEP_SIZE;
const gm = (c: Ctx) => { c.vm(); c.gmem(16 * K, MMAP | INIT_SHARED); };
const mapped = (c: Ctx) => { gm(c); c.mmap('gmem', 16 * K); };
const fa = (mode: bigint, offset: number | bigint, len: number | bigint) => (c: Ctx) => c.b.fallocate(c.h.gmem!, mode, offset, len);
const pages = (c: Ctx) => c.cached();
const text = (c: Ctx, map: string, off: number) => new TextDecoder().decode(c.read(map, off, 1));

describe('fallocate: allocate (KEEP_SIZE)', () => {
  const rows: Row[] = [
    { name: 'mode 0 (no KEEP_SIZE): EOPNOTSUPP', cite: `${P5}; kernel-semantics.md §1.6 Errors`, ...probed, setup: gm, call: fa(0n, 0, 16 * K), expect: { errno: 'EOPNOTSUPP' } },
    { name: 'KEEP_SIZE [0,16K): 0, pages allocated, not zeroed yet', cite: `${P5}; kernel-semantics.md §1.6 Effect`, ...probed, setup: gm, call: fa(KEEP, 0, 16 * K), expect: 'ok',
      then: (c) => {
        assert.equal(pages(c), 4);
        assert.ok(Array.from({ length: pages(c) }, (_x, i) => c.folio('gmem', i)!).every((f) => !f.uptodate), 'zeroing is deferred to first use');
      } },
    { name: 'KEEP_SIZE [0,16K) again: 0 (idempotent)', cite: P5, ...probed, setup: (c) => { gm(c); c.must(fa(KEEP, 0, 16 * K)(c)); }, call: fa(KEEP, 0, 16 * K), expect: 'ok',
      then: (c) => assert.equal(pages(c), 4) },
    { name: 'KEEP_SIZE straddling EOF [12K,20K): EINVAL', cite: P5, ...probed, setup: gm, call: fa(KEEP, 12 * K, 8 * K), expect: { errno: 'EINVAL' } },
    { name: 'KEEP_SIZE at EOF [16K,20K): EINVAL', cite: P5, ...probed, setup: gm, call: fa(KEEP, 16 * K, 4 * K), expect: { errno: 'EINVAL' } },
    { name: 'KEEP_SIZE beyond EOF [32K,36K): EINVAL', cite: P5, ...probed, setup: gm, call: fa(KEEP, 32 * K, 4 * K), expect: { errno: 'EINVAL' } },
    { name: 'KEEP_SIZE unaligned offset: EINVAL', cite: P5, ...probed, setup: gm, call: fa(KEEP, 100, 4 * K), expect: { errno: 'EINVAL' } },
    { name: 'KEEP_SIZE unaligned length: EINVAL', cite: P5, ...probed, setup: gm, call: fa(KEEP, 0, 100), expect: { errno: 'EINVAL' } },
    { name: 'KEEP_SIZE length 0: EINVAL', cite: P5, ...probed, setup: gm, call: fa(KEEP, 0, 0), expect: { errno: 'EINVAL' } },
    { name: 'KEEP_SIZE negative offset: EINVAL', cite: P5, ...probed, setup: gm, call: fa(KEEP, -4096, 4 * K), expect: { errno: 'EINVAL' } },
    { name: 'KEEP_SIZE does not change attributes', cite: 'kernel-semantics.md §1.6 Effect', profile: IPC_V8,
      setup: (c) => { c.vm('sw_protected'); c.gmem(16 * K, MMAP | INIT_SHARED); c.convert('gmem', 0, 4 * K, true); },
      call: fa(KEEP, 0, 16 * K), expect: 'ok',
      then: (c) => { assert.equal(c.attr('gmem', 0), 'private'); assert.equal(c.attr('gmem', 4 * K), 'shared'); } },
    { name: 'KEEP_SIZE on a range bound to a memslot: 0', cite: P5, ...probed, setup: (c) => { gm(c); c.slot(0, 0, 16 * K, 'gmem'); }, call: fa(KEEP, 0, 16 * K), expect: 'ok' },
    { name: 'KEEP_SIZE of 64 MiB allocates 16384 pages', cite: `${P5} (fallocate 64 MiB: Cached +65500 kB)`, ...probed,
      setup: (c) => { c.vm(); c.gmem(64 * 1024 * K, 0n); }, call: fa(KEEP, 0, 64 * 1024 * K), expect: 'ok',
      then: (c) => assert.equal(pages(c), 16384) },
    { name: 'offset+len past the maximum file size: EFBIG', cite: 'fallocate(2) (vfs_fallocate)', ...probed, setup: gm,
      call: fa(KEEP, (1n << 63n) - 4096n, 8192), expect: { errno: 'EFBIG' } },
    { name: 'fd not open: EBADF', cite: 'fallocate(2)', ...probed, call: fa(KEEP, 0, 4 * K), expect: { errno: 'EBADF' } },
    { name: 'on a VM fd: ENODEV', cite: 'fallocate(2) (not a regular file)', ...probed, setup: (c) => { c.vm(); },
      call: (c) => c.b.fallocate(c.h.vm!, KEEP, 0, 4 * K), expect: { errno: 'ENODEV' } },
    { name: 'on the read end of a pipe: EBADF (FMODE_WRITE is checked before S_ISFIFO)', cite: 'fallocate(2); measured by the linux backend', ...probed, setup: (c) => { mapped(c); c.vmsplice('map', 0, 1); },
      call: (c) => c.b.fallocate(c.h.pipe!, KEEP, 0, 4 * K), expect: { errno: 'EBADF' } },
  ];
  for (const [name, mode] of [['ZERO_RANGE', F.ZERO_RANGE], ['ZERO_RANGE|KEEP_SIZE', F.ZERO_RANGE | KEEP], ['COLLAPSE_RANGE', F.COLLAPSE_RANGE],
    ['INSERT_RANGE', F.INSERT_RANGE], ['UNSHARE_RANGE', F.UNSHARE_RANGE]] as const) {
    rows.push({ name: `${name}: EOPNOTSUPP`, cite: `${P5}; kernel-semantics.md §1.6 Errors`, ...probed, setup: gm, call: fa(mode, 0, 4 * K), expect: { errno: 'EOPNOTSUPP' } });
  }
  table(rows);
});

describe('fallocate: PUNCH_HOLE', () => {
  const rows: Row[] = [
    { name: 'PUNCH_HOLE without KEEP_SIZE: EOPNOTSUPP', cite: `${P5}; kernel-semantics.md §1.7 Errors`, ...probed, setup: gm, call: fa(F.PUNCH_HOLE, 0, 4 * K), expect: { errno: 'EOPNOTSUPP' } },
    { name: 'PUNCH|KEEP unaligned offset: EINVAL', cite: P5, ...probed, setup: gm, call: fa(PUNCH, 100, 4 * K), expect: { errno: 'EINVAL' } },
    { name: 'PUNCH|KEEP unaligned length: EINVAL', cite: P5, ...probed, setup: gm, call: fa(PUNCH, 0, 100), expect: { errno: 'EINVAL' } },
    { name: 'PUNCH|KEEP at EOF: 0 (no-op)', cite: P5, ...probed, setup: gm, call: fa(PUNCH, 16 * K, 4 * K), expect: 'ok' },
    { name: 'PUNCH|KEEP beyond EOF: 0 (no-op)', cite: `${P5}; kernel-semantics.md §1.7 Preconditions`, ...probed, setup: gm, call: fa(PUNCH, 64 * K, 4 * K), expect: 'ok' },
    { name: 'PUNCH|KEEP straddling EOF [12K,20K): 0, the in-file part is zeroed', cite: P5, ...probed,
      setup: (c) => { mapped(c); c.write('map', 12 * K, 'e'); }, call: fa(PUNCH, 12 * K, 8 * K), expect: 'ok',
      then: (c) => assert.deepEqual([...c.read('map', 12 * K, 1)], [0]) },
    { name: 'PUNCH|KEEP of a mapped, dirty page: zapped, reads zero, neighbours kept', cite: `${P5}; kernel-semantics.md §1.7 Effect (M)`, ...probed,
      setup: (c) => { mapped(c); for (let i = 0; i < 4; i++) c.write('map', i * 4 * K, String(i)); assert.equal(c.ptes('map'), 4); },
      call: fa(PUNCH, 4 * K, 4 * K), expect: 'ok',
      then: (c) => {
        assert.equal(c.ptes('map'), 3, 'smaps Rss 16 → 12 kB');
        assert.deepEqual([...c.read('map', 4 * K, 1)], [0]);
        assert.equal(text(c, 'map', 0), '0');
        assert.equal(text(c, 'map', 8 * K), '2');
      } },
    { name: 'PUNCH|KEEP then a new write faults in a fresh page', cite: P5, ...probed,
      setup: (c) => { mapped(c); c.write('map', 4 * K, 'a'); c.must(fa(PUNCH, 4 * K, 4 * K)(c)); c.write('map', 4 * K + 1, 'b'); },
      call: (c) => c.b.hostRead(c.h.map! + 4 * K, 2), expect: { bytes: [0, 98] } },
    { name: 'PUNCH|KEEP of the whole file: all zero, size unchanged', cite: P5, ...probed,
      setup: (c) => { mapped(c); c.write('map', 0, new Uint8Array(16 * K).fill(0xee)); }, call: fa(PUNCH, 0, 16 * K), expect: 'ok',
      then: (c) => {
        assert.equal(pages(c), 0, 'the page cache is empty again');
        assert.ok(c.read('map', 0, 16 * K).every((x) => x === 0));
        assert.equal(c.k.gmemFile(c.h.gmem!)!.inode.size, 16 * K);
      } },
    { name: 'PUNCH|KEEP on a range bound to a memslot: 0, guest mappings zapped', cite: `${P5}; kernel-semantics.md §1.7 Effect (M)`, ...probed,
      setup: (c) => { mapped(c); c.slot(0, 0, 16 * K, 'gmem'); c.guestWrite(0, 'g'); assert.equal(c.sptes(), 1); },
      call: fa(PUNCH, 0, 16 * K), expect: 'ok',
      then: (c) => { assert.equal(c.sptes(), 0); assert.deepEqual([...c.guestRead(0, 1)], [0], 'the guest gets a fresh zero page'); } },
    { name: 'ipc-v8: PUNCH keeps attributes', cite: 'kernel-semantics.md §1.7 Effect (IPC), I5', profile: IPC_V8,
      setup: (c) => { c.vm('sw_protected'); c.gmem(16 * K, MMAP | INIT_SHARED); c.convert('gmem', 0, 8 * K, true); },
      call: fa(PUNCH, 0, 16 * K), expect: 'ok',
      then: (c) => { assert.equal(c.attr('gmem', 0), 'private'); assert.equal(c.attr('gmem', 4 * K), 'private'); assert.equal(c.attr('gmem', 8 * K), 'shared'); } },
    { name: 'MADV_REMOVE on a bound range zaps guest mappings too', cite: `kernel-probe.md §3 (acts as PUNCH_HOLE); ${P5}`, ...probed,
      setup: (c) => { mapped(c); c.slot(0, 0, 16 * K, 'gmem'); c.guestWrite(0, 'g'); },
      call: (c) => c.b.madvise(c.h.map!, 4 * K, 9), expect: 'ok', then: (c) => assert.equal(c.sptes(), 0) },
  ];
  table(rows);
});

describe('punch while pinned or vmspliced', () => {
  const pinned = (c: Ctx) => { mapped(c); c.write('map', 0, 'A'); c.pin('map', 0, 4 * K); };
  const rows: Row[] = [
    { name: 'PUNCH of a long-term pinned page: 0, not refused', cite: `${P6}; kernel-semantics.md §1.7 Effect (pins do not block)`, ...probed,
      setup: pinned, call: fa(PUNCH, 0, 4 * K), expect: 'ok' },
    { name: 'after the punch the mapping reads a new zero page', cite: P6, ...probed,
      setup: (c) => { pinned(c); c.must(fa(PUNCH, 0, 4 * K)(c)); }, call: (c) => c.b.hostRead(c.h.map!, 1), expect: { bytes: [0] } },
    { name: 'WRITE_FIXED from the pinned buffer writes the old contents', cite: P6, ...probed,
      setup: (c) => { pinned(c); c.must(fa(PUNCH, 0, 4 * K)(c)); c.write('map', 0, 'B'); },
      call: (c) => c.b.pinAccess(c.h.pin!, 0, 1), expect: { data: 'A' },
      then: (c) => assert.equal(text(c, 'map', 0), 'B', 'the mapping holds B') },
    { name: 'READ_FIXED into the pinned buffer lands in the detached folio', cite: P6, ...probed,
      setup: (c) => { pinned(c); c.must(fa(PUNCH, 0, 4 * K)(c)); c.write('map', 0, 'B'); },
      call: (c) => c.b.pinAccess(c.h.pin!, 0, 1, new TextEncoder().encode('D')), expect: 'ok',
      then: (c) => {
        assert.equal(text(c, 'map', 0), 'B', 'the mapping still shows B');
        assert.equal(new TextDecoder().decode(c.must(c.b.pinAccess(c.h.pin!, 0, 1))), 'D');
      } },
    { name: 'an un-punched pinned page stays coherent with the mapping', cite: P6, ...probed,
      setup: (c) => { pinned(c); c.pin('map', 4 * K, 4 * K, true, 'pin2'); c.must(fa(PUNCH, 0, 4 * K)(c)); c.write('map', 4 * K, 'C'); },
      call: (c) => c.b.pinAccess(c.h.pin2!, 0, 1), expect: { data: 'C' } },
    { name: 'MADV_REMOVE of a pinned page: 0, same divergence', cite: `${P6} (pin semantics: PUNCH_HOLE or MADV_REMOVE)`, ...probed,
      setup: (c) => { pinned(c); c.must(c.b.madvise(c.h.map!, 4 * K, 9)); c.write('map', 0, 'B'); },
      call: (c) => c.b.pinAccess(c.h.pin!, 0, 1), expect: { data: 'A' } },
    { name: 'short-term pin: PUNCH not refused either', cite: 'kernel-semantics.md §1.7, §1.11', ...probed,
      setup: (c) => { mapped(c); c.pin('map', 0, 4 * K, false); }, call: fa(PUNCH, 0, 4 * K), expect: 'ok' },
    { name: 'vmsplice, write M, PUNCH: punch 0', cite: P6, ...probed,
      setup: (c) => { mapped(c); c.vmsplice('map', 0, 4 * K); c.write('map', 0, 'M'); }, call: fa(PUNCH, 0, 4 * K), expect: 'ok' },
    { name: 'vmsplice, write M, PUNCH: the mapping reads 0', cite: P6, ...probed,
      setup: (c) => { mapped(c); c.vmsplice('map', 0, 4 * K); c.write('map', 0, 'M'); c.must(fa(PUNCH, 0, 4 * K)(c)); },
      call: (c) => c.b.hostRead(c.h.map!, 1), expect: { bytes: [0] } },
    { name: 'vmsplice, write M, PUNCH: the pipe returns M (the old page)', cite: P6, ...probed,
      setup: (c) => { mapped(c); c.vmsplice('map', 0, 4 * K); c.write('map', 0, 'M'); c.must(fa(PUNCH, 0, 4 * K)(c)); },
      call: (c) => c.b.fdRead(c.h.pipe!, 1), expect: { data: 'M' } },
    { name: 'ipc-v8 too: PUNCH of a pinned page is never refused', cite: 'kernel-semantics.md §1.7, §1.11 (pins do not block PUNCH_HOLE)', profile: IPC_V8,
      setup: (c) => { c.vm('sw_protected'); c.gmem(16 * K, MMAP | INIT_SHARED); c.mmap('gmem', 16 * K); c.pin('map', 0, 16 * K); },
      call: fa(PUNCH, 0, 16 * K), expect: 'ok' },
  ];
  table(rows);
});
