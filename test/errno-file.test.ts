// File syscalls on a guest_memfd fd (kernel-probe.md §4, kernel-semantics.md §1.5, §1.8), and
// close(2) with the lifetimes of the objects it releases (kernel-semantics.md §1.12, I11).
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { PROBED_MACHINE } from '../src/model/platform.js';
import { IPC_V8, MAINLINE_6_18 } from '../src/model/profile.js';
import { bytes, INIT_SHARED, K, M, MMAP, region, table, type Ctx, type Row } from './table.js';

const probed = { profile: MAINLINE_6_18, machine: PROBED_MACHINE };
const P4 = 'kernel-probe.md §4';
const gm = (c: Ctx) => { c.vm(); c.gmem(16 * K, MMAP | INIT_SHARED); };
const closed = (c: Ctx) => { gm(c); c.must(c.b.close(c.h.gmem!)); };
const sizeUnchanged = (c: Ctx) => assert.equal(c.k.gmemFile(c.h.gmem!)!.inode.size, 16 * K, 'the size never changes');

describe('file syscalls on a guest_memfd', () => {
  const rows: Row[] = [
    { name: 'read(): EINVAL', cite: `${P4}; kernel-semantics.md §1.5`, ...probed, setup: gm, call: (c) => c.b.fdRead(c.h.gmem!, 16), expect: { errno: 'EINVAL' } },
    { name: 'write(): EINVAL', cite: `${P4}; kernel-semantics.md §1.5`, ...probed, setup: gm, call: (c) => c.b.fdWrite(c.h.gmem!, bytes('x')), expect: { errno: 'EINVAL' } },
    { name: 'pread(): ESPIPE', cite: P4, ...probed, setup: gm, call: (c) => c.b.pread(c.h.gmem!, 16, 0), expect: { errno: 'ESPIPE' } },
    { name: 'pwrite(): ESPIPE', cite: P4, ...probed, setup: gm, call: (c) => c.b.pwrite(c.h.gmem!, bytes('x'), 0), expect: { errno: 'ESPIPE' } },
    ...([['SET', 0], ['CUR', 1], ['END', 2], ['DATA', 3], ['HOLE', 4]] as const).map(([w, n]): Row => ({
      name: `lseek(${w}): ESPIPE`, cite: P4, ...probed, setup: gm, call: (c) => c.b.lseek(c.h.gmem!, 0, n), expect: { errno: 'ESPIPE' },
    })),
    { name: 'lseek with an invalid whence: EINVAL', cite: 'lseek(2)', ...probed, setup: gm, call: (c) => c.b.lseek(c.h.gmem!, 0, 9), expect: { errno: 'EINVAL' } },
    ...([['the same size', 16 * K], ['a larger size', 32 * K], ['a smaller size', 4 * K], ['0', 0]] as const).map(([what, n]): Row => ({
      name: `ftruncate to ${what}: EINVAL, size unchanged`, cite: `${P4}; kernel-semantics.md §1.8`, ...probed, setup: gm,
      call: (c) => c.b.ftruncate(c.h.gmem!, n), expect: { errno: 'EINVAL' }, then: sizeUnchanged,
    })),
    { name: 'ftruncate to a negative length: EINVAL', cite: 'ftruncate(2)', ...probed, setup: gm, call: (c) => c.b.ftruncate(c.h.gmem!, -1), expect: { errno: 'EINVAL' } },
    { name: 'write() on the read end of a vmsplice pipe: EBADF', cite: 'write(2) (fd not open for writing)', ...probed,
      setup: (c) => { gm(c); c.mmap('gmem', 16 * K); c.vmsplice('map', 0, 1); }, call: (c) => c.b.fdWrite(c.h.pipe!, bytes('x')), expect: { errno: 'EBADF' } },
    { name: 'read() on a VM fd: EINVAL', cite: 'read(2) (no FMODE_CAN_READ)', ...probed, setup: gm, call: (c) => c.b.fdRead(c.h.vm!, 1), expect: { errno: 'EINVAL' } },
    { name: 'read() of a closed fd: EBADF', cite: 'read(2)', ...probed, setup: closed, call: (c) => c.b.fdRead(c.h.gmem!, 1), expect: { errno: 'EBADF' } },
    { name: 'write() of a closed fd: EBADF', cite: 'write(2)', ...probed, setup: closed, call: (c) => c.b.fdWrite(c.h.gmem!, bytes('x')), expect: { errno: 'EBADF' } },
    { name: 'pread() of a closed fd: EBADF', cite: 'pread(2)', ...probed, setup: closed, call: (c) => c.b.pread(c.h.gmem!, 1, 0), expect: { errno: 'EBADF' } },
    { name: 'pwrite() of a closed fd: EBADF', cite: 'pwrite(2)', ...probed, setup: closed, call: (c) => c.b.pwrite(c.h.gmem!, bytes('x'), 0), expect: { errno: 'EBADF' } },
    { name: 'lseek() of a closed fd: EBADF', cite: 'lseek(2)', ...probed, setup: closed, call: (c) => c.b.lseek(c.h.gmem!, 0, 0), expect: { errno: 'EBADF' } },
    { name: 'ftruncate() of a closed fd: EBADF', cite: 'ftruncate(2)', ...probed, setup: closed, call: (c) => c.b.ftruncate(c.h.gmem!, 0), expect: { errno: 'EBADF' } },
  ];
  table(rows);
});

describe('close and lifetimes', () => {
  const rows: Row[] = [
    { name: 'close a VM fd: ok', cite: 'close(2)', ...probed, setup: (c) => { c.vm(); }, call: (c) => c.b.close(c.h.vm!), expect: 'ok',
      then: (c) => assert.equal(c.k.state.vms.length, 0, 'a VM with no fd and no guest_memfd is destroyed') },
    { name: 'close twice: EBADF', cite: 'close(2)', ...probed, setup: closed, call: (c) => c.b.close(c.h.gmem!), expect: { errno: 'EBADF' } },
    { name: 'VM fd closed: the guest_memfd can still be mmapped', cite: 'kernel-probe.md §2', ...probed,
      setup: (c) => { gm(c); c.must(c.b.close(c.h.vm!)); },
      call: (c) => c.b.mmap({ fd: c.h.gmem!, offset: 0, length: 16 * K, prot: 3n, flags: 1n }), expect: 'ok',
      then: (c) => assert.equal(c.k.state.vms.length, 1, 'the file pins the VM (I11)') },
    { name: 'VM fd closed: the mapping can be written', cite: 'kernel-probe.md §2', ...probed,
      setup: (c) => { gm(c); c.mmap('gmem', 16 * K); c.must(c.b.close(c.h.vm!)); },
      call: (c) => c.b.hostWrite(c.h.map!, bytes('w')), expect: 'ok' },
    { name: 'VM fd closed: fallocate works', cite: 'kernel-probe.md §2', ...probed,
      setup: (c) => { gm(c); c.must(c.b.close(c.h.vm!)); },
      call: (c) => c.b.fallocate(c.h.gmem!, 1, 0, 16 * K), expect: 'ok' },
    { name: 'VM fd closed: closing the last guest_memfd destroys the VM', cite: 'kernel-semantics.md §1.1 Effect, §1.12, I11', ...probed,
      setup: (c) => { gm(c); c.must(c.b.close(c.h.vm!)); assert.equal(c.k.state.vms.length, 1, 'the file pins the VM'); },
      call: (c) => c.b.close(c.h.gmem!), expect: 'ok', then: (c) => assert.equal(c.k.state.vms.length, 0) },
    { name: 'gmem fd closed while mapped: the mapping keeps working (the VMA pins the file)', cite: 'kernel-semantics.md §1.2 Effect, I11', ...probed,
      setup: (c) => { gm(c); c.mmap('gmem', 16 * K); c.write('map', 0, 'v'); c.must(c.b.close(c.h.gmem!)); },
      call: (c) => c.b.hostRead(c.h.map!, 1), expect: { data: 'v' },
      then: (c) => assert.equal(c.k.state.inodes.size, 1, 'the inode lives on') },
    { name: 'gmem fd closed while mapped: munmap releases the file and evicts the inode', cite: 'kernel-semantics.md §1.12', ...probed,
      setup: (c) => { gm(c); c.mmap('gmem', 16 * K); c.must(c.b.close(c.h.gmem!)); },
      call: (c) => c.b.munmap(c.h.map!, 16 * K), expect: 'ok', then: (c) => assert.equal(c.k.state.inodes.size, 0) },
    { name: 'gmem fd closed while bound: ok, the memslot does not pin the file', cite: 'kernel-probe.md §7; kernel-semantics.md §1.9 Effect, I11', ...probed,
      setup: (c) => { gm(c); c.slot(0, 0, 16 * K, 'gmem'); },
      call: (c) => c.b.close(c.h.gmem!), expect: 'ok',
      then: (c) => {
        assert.equal(c.k.state.inodes.size, 0, 'file released, inode evicted');
        assert.equal(c.k.vmOfFd(c.h.vm!)!.memslots.size, 1, 'the memslot remains');
      } },
    { name: 'gmem closed while bound: a guest access exits with MEMORY_FAULT', cite: 'kernel-semantics.md §1.12 Effect, §1.4 (file closed → EFAULT)', ...probed,
      setup: (c) => { gm(c); c.slot(0, 0, 16 * K, 'gmem'); c.must(c.b.close(c.h.gmem!)); },
      call: (c) => c.b.guestRead(c.h.vm!, 4 * K, 1), expect: { exit: 'MEMORY_FAULT', gpa: 4096n, size: 4096n } },
    { name: 'gmem closed while bound: deleting the slot afterwards returns 0', cite: 'kernel-probe.md §7', ...probed,
      setup: (c) => { gm(c); c.slot(0, 0, 16 * K, 'gmem'); c.must(c.b.close(c.h.gmem!)); },
      call: (c) => c.b.setUserMemoryRegion2(c.h.vm!, region(c, 0, 0, 0, 'gmem')), expect: 'ok' },
    { name: 'gmem closed while bound: a new guest_memfd binds next to the dead slot', cite: 'kernel-probe.md §7', ...probed,
      setup: (c) => { gm(c); c.slot(0, 0, 16 * K, 'gmem'); c.must(c.b.close(c.h.gmem!)); c.gmem(16 * K, MMAP | INIT_SHARED, { as: 'g2' }); },
      call: (c) => c.b.setUserMemoryRegion2(c.h.vm!, region(c, 1, 1 * M, 16 * K, 'g2')), expect: 'ok' },
    { name: 'a pin outlives munmap and close of the gmem fd', cite: 'kernel-probe.md §6 (WRITE_FIXED after munmap and close)', ...probed,
      setup: (c) => { gm(c); c.mmap('gmem', 16 * K); c.write('map', 0, 'A'); c.pin('map', 0, 4 * K);
        c.must(c.b.munmap(c.h.map!, 16 * K)); c.must(c.b.close(c.h.gmem!)); },
      call: (c) => c.b.pinAccess(c.h.pin!, 0, 1), expect: { data: 'A' },
      then: (c) => assert.equal(c.k.state.inodes.size, 0, 'the inode is gone; the pinned folio lives on, detached') },
    { name: 'closing a pipe drops its page references', cite: 'kernel-probe.md §6 (vmsplice)', ...probed,
      setup: (c) => { gm(c); c.mmap('gmem', 16 * K); c.vmsplice('map', 0, 4 * K); },
      call: (c) => c.b.close(c.h.pipe!), expect: 'ok',
      then: (c) => assert.equal(c.folio('gmem', 0)!.gets, 0) },
    { name: 'ipc-v8: closing the VM fd keeps the attributes and the guest_memfd', cite: 'kernel-semantics.md I5, I11', profile: IPC_V8,
      setup: (c) => { c.vm('sw_protected'); c.gmem(16 * K, MMAP | INIT_SHARED); c.convert('gmem', 0, 4 * K, true); c.must(c.b.close(c.h.vm!)); },
      call: (c) => c.b.setMemoryAttributes2(c.h.gmem!, { offset: 4 * K, size: 4 * K, attributes: 8n, flags: 0n }), expect: 'ok',
      then: (c) => { assert.equal(c.attr('gmem', 0), 'private'); assert.equal(c.attr('gmem', 4 * K), 'private'); } },
  ];
  table(rows);
});
