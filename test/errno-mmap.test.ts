// mmap(2) of a guest_memfd, host loads and stores through the mapping, and madvise(2).
// Rows reproduce kernel-probe.md §3 on the probed machine (mainline 6.18, default VM).
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { MADV, MAP_FLAGS, PROT, type MadviseName } from '../src/model/abi.js';
import { PROBED_MACHINE } from '../src/model/platform.js';
import { IPC_V8, MAINLINE_6_18 } from '../src/model/profile.js';
import { bytes, fill, INIT_SHARED, K, MMAP, RW, SHARED, table, type Ctx, type Row } from './table.js';

const probed = { profile: MAINLINE_6_18, machine: PROBED_MACHINE };
const P3 = 'kernel-probe.md §3';
const gmem = (flags: bigint, size = 16 * K) => (c: Ctx) => { c.vm(); c.gmem(size, flags); };
const mmapOf = (c: Ctx, length: number, prot: bigint, flags: bigint, offset = 0) =>
  c.b.mmap({ fd: c.h.gmem!, offset, length, prot, flags });
const shared = (c: Ctx) => { c.vm(); c.gmem(16 * K, MMAP | INIT_SHARED); c.mmap('gmem', 16 * K); };
const notShared = (c: Ctx) => { c.vm(); c.gmem(16 * K, MMAP); c.mmap('gmem', 16 * K); };

describe('mmap of a guest_memfd', () => {
  const rows: Row[] = [
    { name: 'flags=0, MAP_SHARED RW: ENODEV', cite: P3, ...probed, setup: gmem(0n), call: (c) => mmapOf(c, 16 * K, RW, SHARED), expect: { errno: 'ENODEV' } },
    { name: 'flags=0, MAP_SHARED R: ENODEV', cite: P3, ...probed, setup: gmem(0n), call: (c) => mmapOf(c, 16 * K, PROT.READ, SHARED), expect: { errno: 'ENODEV' } },
    { name: 'flags=0, MAP_PRIVATE: ENODEV', cite: P3, ...probed, setup: gmem(0n), call: (c) => mmapOf(c, 16 * K, RW, MAP_FLAGS.PRIVATE), expect: { errno: 'ENODEV' } },
    { name: 'INIT_SHARED without MMAP: ENODEV', cite: 'kernel-probe.md §2, §3', ...probed, setup: gmem(INIT_SHARED), call: (c) => mmapOf(c, 16 * K, RW, SHARED), expect: { errno: 'ENODEV' } },
    { name: 'MMAP, MAP_SHARED: ok, nothing populated', cite: `${P3}; kernel-semantics.md §1.2 Effect`, ...probed, setup: gmem(MMAP),
      call: (c) => mmapOf(c, 16 * K, RW, SHARED), expect: 'ok',
      then: (c) => assert.equal(c.cached(), 0) },
    { name: 'MMAP, MAP_PRIVATE RW: EINVAL', cite: `${P3}; kernel-semantics.md §1.2 Errors`, ...probed, setup: gmem(MMAP), call: (c) => mmapOf(c, 16 * K, RW, MAP_FLAGS.PRIVATE), expect: { errno: 'EINVAL' } },
    { name: 'MMAP, MAP_PRIVATE R: EINVAL', cite: P3, ...probed, setup: gmem(MMAP), call: (c) => mmapOf(c, 16 * K, PROT.READ, MAP_FLAGS.PRIVATE), expect: { errno: 'EINVAL' } },
    { name: 'MMAP|INIT_SHARED, MAP_PRIVATE RW: EINVAL', cite: P3, ...probed, setup: gmem(MMAP | INIT_SHARED), call: (c) => mmapOf(c, 16 * K, RW, MAP_FLAGS.PRIVATE), expect: { errno: 'EINVAL' } },
    { name: 'MMAP|INIT_SHARED, MAP_PRIVATE R: EINVAL', cite: P3, ...probed, setup: gmem(MMAP | INIT_SHARED), call: (c) => mmapOf(c, 16 * K, PROT.READ, MAP_FLAGS.PRIVATE), expect: { errno: 'EINVAL' } },
    { name: 'MAP_SHARED with PROT_EXEC: EPERM (noexec mount)', cite: P3, ...probed, setup: gmem(MMAP | INIT_SHARED), call: (c) => mmapOf(c, 16 * K, RW | PROT.EXEC, SHARED), expect: { errno: 'EPERM' } },
    { name: 'unaligned offset 100: EINVAL', cite: P3, ...probed, setup: gmem(MMAP | INIT_SHARED), call: (c) => mmapOf(c, 4 * K, RW, SHARED, 100), expect: { errno: 'EINVAL' } },
    { name: 'length 0: EINVAL', cite: 'mmap(2)', ...probed, setup: gmem(MMAP | INIT_SHARED), call: (c) => mmapOf(c, 0, RW, SHARED), expect: { errno: 'EINVAL' } },
    { name: 'neither SHARED nor PRIVATE: EINVAL', cite: 'mmap(2)', ...probed, setup: gmem(MMAP | INIT_SHARED), call: (c) => mmapOf(c, 4 * K, RW, 0n), expect: { errno: 'EINVAL' } },
    { name: 'fd not open: EBADF', cite: 'mmap(2)', ...probed, call: (c) => c.b.mmap({ fd: 42, offset: 0, length: 4 * K, prot: RW, flags: SHARED }), expect: { errno: 'EBADF' } },
    { name: 'a VM fd has no mmap: ENODEV', cite: 'mmap(2) (file without ->mmap)', ...probed, setup: (c) => { c.vm(); },
      call: (c) => c.b.mmap({ fd: c.h.vm!, offset: 0, length: 4 * K, prot: RW, flags: SHARED }), expect: { errno: 'ENODEV' } },
    { name: 'MMAP|INIT_SHARED: fresh pages read 0x00', cite: P3, ...probed, setup: shared,
      call: (c) => c.b.hostRead(c.h.map!, 16 * K), expect: { fill: 0, length: 16 * K } },
    { name: 'MMAP|INIT_SHARED: a write reads back', cite: P3, ...probed, setup: (c) => { shared(c); c.write('map', 5000, 'hello'); },
      call: (c) => c.b.hostRead(c.h.map! + 5000, 5), expect: { data: 'hello' } },
    { name: 'a second mapping at offset 4K is coherent with the first', cite: P3, ...probed,
      setup: (c) => { shared(c); c.mmap('gmem', 8 * K, { as: 'map2', offset: 4 * K }); c.write('map2', 0, 'X'); },
      call: (c) => c.b.hostRead(c.h.map! + 4 * K, 1), expect: { data: 'X' } },
    { name: 'a mapping that starts at EOF: mmap ok', cite: P3, ...probed, setup: gmem(MMAP | INIT_SHARED),
      call: (c) => mmapOf(c, 4 * K, RW, SHARED, 16 * K), expect: 'ok' },
    { name: 'a mapping that starts at EOF: any access SIGBUS', cite: P3, ...probed,
      setup: (c) => { c.vm(); c.gmem(16 * K, MMAP | INIT_SHARED); c.mmap('gmem', 4 * K, { offset: 16 * K }); },
      call: (c) => c.b.hostRead(c.h.map!, 1), expect: { signal: 'SIGBUS' } },
    { name: '32K mapping over 16K: the last in-file page is fine', cite: P3, ...probed,
      setup: (c) => { c.vm(); c.gmem(16 * K, MMAP | INIT_SHARED); c.mmap('gmem', 32 * K); },
      call: (c) => c.b.hostWrite(c.h.map! + 12 * K, bytes('z')), expect: 'ok' },
    { name: '32K mapping over 16K: read of the first page past EOF SIGBUS', cite: P3, ...probed,
      setup: (c) => { c.vm(); c.gmem(16 * K, MMAP | INIT_SHARED); c.mmap('gmem', 32 * K); },
      call: (c) => c.b.hostRead(c.h.map! + 16 * K, 1), expect: { signal: 'SIGBUS' } },
    { name: '32K mapping over 16K: write of the first page past EOF SIGBUS', cite: `${P3}; kernel-semantics.md §1.3`, ...probed,
      setup: (c) => { c.vm(); c.gmem(16 * K, MMAP | INIT_SHARED); c.mmap('gmem', 32 * K); },
      call: (c) => c.b.hostWrite(c.h.map! + 16 * K, bytes('z')), expect: { signal: 'SIGBUS' } },
    { name: 'munmap, then mmap again: contents kept', cite: P3, ...probed,
      setup: (c) => { shared(c); c.write('map', 0, 'keep'); c.must(c.b.munmap(c.h.map!, 16 * K)); c.mmap('gmem', 16 * K); },
      call: (c) => c.b.hostRead(c.h.map!, 4), expect: { data: 'keep' } },
    { name: 'MMAP (not shared): read SIGBUS', cite: `${P3}; kernel-semantics.md §1.3`, ...probed, setup: notShared,
      call: (c) => c.b.hostRead(c.h.map!, 1), expect: { signal: 'SIGBUS' } },
    { name: 'MMAP (not shared): write SIGBUS', cite: P3, ...probed, setup: notShared,
      call: (c) => c.b.hostWrite(c.h.map!, bytes('x')), expect: { signal: 'SIGBUS' } },
    { name: 'MMAP (not shared): SIGBUS also after fallocate allocated the page', cite: P3, ...probed,
      setup: (c) => { notShared(c); c.must(c.b.fallocate(c.h.gmem!, 1, 0, 4 * K)); },
      call: (c) => c.b.hostRead(c.h.map!, 1), expect: { signal: 'SIGBUS' } },
    { name: 'PROT_READ mapping: a write SIGSEGVs', cite: `${P3} (mprotect(R) then write)`, ...probed,
      setup: (c) => { c.vm(); c.gmem(16 * K, MMAP | INIT_SHARED); c.mmap('gmem', 16 * K, { prot: PROT.READ }); },
      call: (c) => c.b.hostWrite(c.h.map!, bytes('x')), expect: { signal: 'SIGSEGV' } },
    { name: 'an unmapped address SIGSEGVs', cite: 'mm: no VMA', ...probed, setup: shared,
      call: (c) => c.b.hostRead(c.h.map! + 64 * K, 1), expect: { signal: 'SIGSEGV' } },
    { name: 'ipc-v8: a private page SIGBUSes after conversion', cite: 'kernel-semantics.md §1.3 (IPC), I1', profile: IPC_V8,
      setup: (c) => { c.vm('sw_protected'); c.gmem(16 * K, MMAP | INIT_SHARED); c.mmap('gmem', 16 * K); c.convert('gmem', 4 * K, 4 * K, true); },
      call: (c) => c.b.hostRead(c.h.map! + 4 * K, 1), expect: { signal: 'SIGBUS' } },
    { name: 'ipc-v8: the neighbour of a private page still works', cite: 'kernel-semantics.md §1.3 (IPC)', profile: IPC_V8,
      setup: (c) => { c.vm('sw_protected'); c.gmem(16 * K, MMAP | INIT_SHARED); c.mmap('gmem', 16 * K); c.convert('gmem', 4 * K, 4 * K, true); },
      call: (c) => c.b.hostWrite(c.h.map! + 8 * K, bytes('n')), expect: 'ok' },
  ];
  table(rows);
});

describe('munmap', () => {
  table([
    { name: 'unaligned address: EINVAL', cite: 'munmap(2)', ...probed, setup: shared, call: (c) => c.b.munmap(c.h.map! + 1, 4 * K), expect: { errno: 'EINVAL' } },
    { name: 'length 0: EINVAL', cite: 'munmap(2)', ...probed, setup: shared, call: (c) => c.b.munmap(c.h.map!, 0), expect: { errno: 'EINVAL' } },
    { name: 'partial munmap keeps the rest mapped', cite: 'munmap(2)', ...probed,
      setup: (c) => { shared(c); c.write('map', 12 * K, 'r'); c.must(c.b.munmap(c.h.map!, 4 * K)); },
      call: (c) => c.b.hostRead(c.h.map! + 12 * K, 1), expect: { data: 'r' } },
    { name: 'the unmapped part SIGSEGVs', cite: 'munmap(2)', ...probed,
      setup: (c) => { shared(c); c.must(c.b.munmap(c.h.map! + 4 * K, 4 * K)); },
      call: (c) => c.b.hostRead(c.h.map! + 4 * K, 1), expect: { signal: 'SIGSEGV' } },
  ]);
});

describe('madvise on a guest_memfd mapping', () => {
  const ok: MadviseName[] = ['PAGEOUT', 'COLD', 'HUGEPAGE', 'DONTFORK', 'DOFORK', 'MERGEABLE', 'WILLNEED', 'POPULATE_WRITE'];
  const einval: MadviseName[] = ['WIPEONFORK', 'FREE', 'COLLAPSE'];
  const rows: Row[] = [
    { name: 'DONTNEED: ok, PTEs zapped', cite: `${P3}; kernel-semantics.md §1.2 Related`, ...probed,
      setup: (c) => { shared(c); c.write('map', 0, 'D'); },
      call: (c) => c.b.madvise(c.h.map!, 16 * K, MADV.DONTNEED), expect: 'ok', then: (c) => assert.equal(c.ptes('map'), 0) },
    { name: 'DONTNEED keeps the content (re-faults from the file)', cite: P3, ...probed,
      setup: (c) => { shared(c); c.write('map', 0, 'D'); c.must(c.b.madvise(c.h.map!, 16 * K, MADV.DONTNEED)); },
      call: (c) => c.b.hostRead(c.h.map!, 1), expect: { data: 'D' } },
    { name: 'REMOVE: ok, acts as PUNCH_HOLE', cite: P3, ...probed,
      setup: (c) => { shared(c); c.write('map', 0, 'R'); c.write('map', 4 * K, 'S'); },
      call: (c) => c.b.madvise(c.h.map!, 4 * K, MADV.REMOVE), expect: 'ok',
      then: (c) => {
        assert.deepEqual([...c.read('map', 0, 1)], [0], 'the removed page reads 0');
        assert.equal(new TextDecoder().decode(c.read('map', 4 * K, 1)), 'S', 'the neighbour keeps its data');
      } },
    { name: 'REMOVE on a read-only shared mapping: ok (VM_MAYWRITE: the fd is O_RDWR), the page reads 0', cite: 'conformance/edges-found-by-hand.yaml (measured on 6.18 kvm_pvm); madvise_remove checks VM_MAYWRITE', ...probed,
      setup: (c) => { c.vm(); c.gmem(16 * K, MMAP | INIT_SHARED); c.mmap('gmem', 16 * K, { as: 'rw' }); c.write('rw', 0, 'x'); c.mmap('gmem', 16 * K, { prot: PROT.READ }); },
      call: (c) => c.b.madvise(c.h.map!, 4 * K, MADV.REMOVE), expect: 'ok',
      then: (c) => assert.deepEqual([...c.read('map', 0, 1)], [0]) },
    { name: 'munmap by a stale address unmaps the mapping that reused the range (top-down placement)', cite: 'conformance/edges-found-by-hand.yaml (measured on 6.18 kvm_pvm)', ...probed,
      setup: (c) => { c.vm(); c.gmem(32 * K, MMAP | INIT_SHARED); c.mmap('gmem', 16 * K, { as: 'old' }); c.must(c.b.munmap(c.h.old!, 16 * K)); c.mmap('gmem', 16 * K, { as: 'new', offset: 16 * K }); },
      call: (c) => c.b.munmap(c.h.old!, 16 * K), expect: 'ok',
      then: (c) => { assert.equal(c.h.new, c.h.old, 'the new mapping reused the address'); assert.equal(c.k.vmaAt(c.h.new!), undefined); } },
    { name: 'REMOVE on private anonymous memory: EINVAL (no file behind it)', cite: 'conformance/edges-found-by-hand.yaml (measured on 6.18 kvm_pvm)', ...probed,
      setup: (c) => { c.h.map = c.must(c.b.mmap({ fd: null, offset: 0, length: 16 * K, prot: RW, flags: MAP_FLAGS.PRIVATE | MAP_FLAGS.ANONYMOUS }), 'mmap'); },
      call: (c) => c.b.madvise(c.h.map!, 4 * K, MADV.REMOVE), expect: { errno: 'EINVAL' } },
    { name: 'REMOVE on shared anonymous memory (shmem): ok, the page reads 0, its neighbour keeps its data', cite: 'conformance/edges-found-by-hand.yaml (measured on 6.18 kvm_pvm)', ...probed,
      setup: (c) => { c.anon(16 * K); c.write('anon', 0, 'a'); c.write('anon', 4 * K, 'b'); },
      call: (c) => c.b.madvise(c.h.anon!, 4 * K, MADV.REMOVE), expect: 'ok',
      then: (c) => { assert.deepEqual([...c.read('anon', 0, 1)], [0]); assert.equal(new TextDecoder().decode(c.read('anon', 4 * K, 1)), 'b'); } },
    ...ok.map((a): Row => ({
      name: `${a}: ok, data survives`, cite: P3, ...probed, setup: (c) => { shared(c); c.write('map', 0, 'k'); },
      call: (c) => c.b.madvise(c.h.map!, 16 * K, MADV[a]), expect: 'ok',
      then: (c) => assert.equal(new TextDecoder().decode(c.read('map', 0, 1)), 'k'),
    })),
    ...einval.map((a): Row => ({
      name: `${a}: EINVAL`, cite: `${P3}; kernel-semantics.md §1.2 Related (COLLAPSE)`, ...probed, setup: shared,
      call: (c) => c.b.madvise(c.h.map!, 16 * K, MADV[a]), expect: { errno: 'EINVAL' },
    })),
    { name: 'POPULATE_READ on a shared gmem: ok, pages faulted in', cite: P3, ...probed, setup: shared,
      call: (c) => c.b.madvise(c.h.map!, 16 * K, MADV.POPULATE_READ), expect: 'ok', then: (c) => assert.equal(c.ptes('map'), 4) },
    { name: 'POPULATE_READ on MMAP (not shared): EFAULT', cite: P3, ...probed, setup: notShared,
      call: (c) => c.b.madvise(c.h.map!, 4 * K, MADV.POPULATE_READ), expect: { errno: 'EFAULT' } },
    { name: 'POPULATE_WRITE on MMAP (not shared): EFAULT', cite: P3, ...probed, setup: notShared,
      call: (c) => c.b.madvise(c.h.map!, 4 * K, MADV.POPULATE_WRITE), expect: { errno: 'EFAULT' } },
    { name: 'POPULATE_READ past EOF: EFAULT', cite: `${P3}; kernel-semantics.md §1.3 (SIGBUS → EFAULT)`, ...probed,
      setup: (c) => { c.vm(); c.gmem(16 * K, MMAP | INIT_SHARED); c.mmap('gmem', 32 * K); },
      call: (c) => c.b.madvise(c.h.map!, 32 * K, MADV.POPULATE_READ), expect: { errno: 'EFAULT' } },
    { name: 'ipc-v8: POPULATE_WRITE on a private page: EFAULT', cite: 'kernel-semantics.md §1.3, §1.11', profile: IPC_V8,
      setup: (c) => { c.vm('sw_protected'); c.gmem(16 * K, MMAP | INIT_SHARED); c.mmap('gmem', 16 * K); c.convert('gmem', 0, 4 * K, true); },
      call: (c) => c.b.madvise(c.h.map!, 4 * K, MADV.POPULATE_WRITE), expect: { errno: 'EFAULT' } },
    { name: 'unmapped range: ENOMEM', cite: 'madvise(2)', ...probed, setup: shared,
      call: (c) => c.b.madvise(c.h.map!, 32 * K, MADV.DONTNEED), expect: { errno: 'ENOMEM' } },
    { name: 'unaligned address: EINVAL', cite: 'madvise(2)', ...probed, setup: shared,
      call: (c) => c.b.madvise(c.h.map! + 1, 4 * K, MADV.DONTNEED), expect: { errno: 'EINVAL' } },
    { name: 'unknown advice: EINVAL', cite: 'madvise(2)', ...probed, setup: shared,
      call: (c) => c.b.madvise(c.h.map!, 4 * K, 77), expect: { errno: 'EINVAL' } },
    { name: 'DONTNEED keeps a pinned page coherent', cite: 'kernel-probe.md §6 (un-punched pinned page stays coherent)', ...probed,
      setup: (c) => { shared(c); c.pin('map', 0, 4 * K); c.must(c.b.madvise(c.h.map!, 4 * K, MADV.DONTNEED)); c.write('map', 0, 'P'); },
      call: (c) => c.b.pinAccess(c.h.pin!, 0, 1), expect: { data: 'P' } },
  ];
  table(rows);
});

describe('anonymous memory', () => {
  table([
    { name: 'MAP_SHARED|MAP_ANONYMOUS: ok, reads zero, writes read back', cite: 'mmap(2)', ...probed,
      setup: (c) => { c.anon(8 * K); c.write('anon', 4 * K, fill(3, 7)); },
      call: (c) => c.b.hostRead(c.h.anon! + 4 * K - 1, 5), expect: { bytes: [0, 7, 7, 7, 0] } },
  ]);
});
