// The language additions on the model (scenario-language.md §3): fstat's size and blksize,
// MAP_FIXED / MAP_FIXED_NOREPLACE and the mmap hint, memset-style fills with their
// MAX_BUFFERED_ACCESS bound, and how `fails` / `bits` / the out-values match outcomes. Rows
// cite the measurement they reproduce: conformance/language-additions.yaml (run on 6.18 by
// `gmemkit diff`) or the selftest guest_memfd_test.c test_file_size. The VMM's memory map
// (src/userspace/memory-map.ts) follows MAP_FIXED replacement.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_BUFFERED_ACCESS } from '../src/backend/backend.js';
import { ModelBackend } from '../src/backend/model-backend.js';
import { MAP_FLAGS, PROT } from '../src/model/abi.js';
import { PROBED_MACHINE } from '../src/model/platform.js';
import { MAINLINE_6_18 } from '../src/model/profile.js';
import { mismatch, toOutcome, type Expect } from '../src/scenario/expect.js';
import { sameOutcome } from '../src/scenario/diff.js';
import { MemoryMap } from '../src/userspace/memory-map.js';

const K = 1024;
const RW = PROT.READ | PROT.WRITE;
const { SHARED, PRIVATE, FIXED, FIXED_NOREPLACE, ANONYMOUS } = MAP_FLAGS;
const MEASURED = 'conformance/language-additions.yaml';

function world() {
  const b = new ModelBackend({ profile: MAINLINE_6_18, machine: PROBED_MACHINE });
  const vm = b.createVm(0);
  assert.ok(vm.ok);
  const gmem = b.createGuestMemfd(vm.value, 16 * K, 3n);
  const plain = b.createGuestMemfd(vm.value, 16 * K, 0n);
  assert.ok(gmem.ok && plain.ok);
  const mm = (fd: number | null, length: number, flags: bigint, addr?: number, offset = 0, prot = RW) =>
    b.mmap({ fd, offset, length, prot, flags, ...(addr === undefined ? {} : { addr }) });
  const resv = mm(null, 64 * K, PRIVATE | ANONYMOUS, undefined, 0, 0n);
  assert.ok(resv.ok);
  return { b, vm: vm.value, gmem: gmem.value, plain: plain.value, mm, resv: resv.value };
}
const errnoOf = (r: { ok: boolean }) => ('errno' in r ? (r as { errno: string }).errno : r.ok ? 'ok' : 'signal' in r ? (r as { signal: string }).signal : 'other');

test('fstat: st_size and st_blksize per fd kind (test_file_size; measured for VM fd, pipe)', () => {
  const w = world();
  const rows: [string, number, bigint, bigint][] = [['guest_memfd 16K', w.gmem, 16384n, 4096n], ['VM fd', w.vm, 0n, 4096n]];
  const m = w.mm(w.gmem, 4 * K, SHARED);
  assert.ok(m.ok);
  const pipe = w.b.vmsplice(m.value, 4 * K);
  assert.ok(pipe.ok);
  rows.push(['pipe', pipe.value, 0n, 4096n]);
  for (const [name, fd, size, blksize] of rows) {
    const r = w.b.fstat(fd);
    assert.ok(r.ok, name);
    assert.deepEqual(r.value, { size, blksize }, name);
  }
  assert.equal(errnoOf(w.b.fstat(999)), 'EBADF');
});

test(`MAP_FIXED and MAP_FIXED_NOREPLACE: errnos and placement (${MEASURED})`, () => {
  const rows: { name: string; run: (w: ReturnType<typeof world>) => { ok: boolean }; want: string }[] = [
    { name: 'FIXED into the reservation', run: (w) => w.mm(w.gmem, 16 * K, SHARED | FIXED, w.resv), want: 'ok' },
    { name: 'NOREPLACE over the reservation: EEXIST', run: (w) => w.mm(w.gmem, 4 * K, SHARED | FIXED_NOREPLACE, w.resv + 32 * K), want: 'EEXIST' },
    { name: 'NOREPLACE partly over: EEXIST', run: (w) => w.mm(w.gmem, 8 * K, SHARED | FIXED_NOREPLACE, w.resv - 4 * K), want: 'EEXIST' },
    { name: 'FIXED unaligned: EINVAL', run: (w) => w.mm(w.gmem, 4 * K, SHARED | FIXED, w.resv + 1), want: 'EINVAL' },
    { name: 'NOREPLACE unaligned: EINVAL', run: (w) => w.mm(w.gmem, 4 * K, SHARED | FIXED_NOREPLACE, w.resv + 1), want: 'EINVAL' },
    { name: 'FIXED beyond TASK_SIZE: ENOMEM', run: (w) => w.mm(w.gmem, 8 * K, SHARED | FIXED, 0x7ffffffff000), want: 'ENOMEM' },
    { name: 'FIXED length 0: EINVAL', run: (w) => w.mm(w.gmem, 0, SHARED | FIXED, w.resv), want: 'EINVAL' },
    { name: 'FIXED PROT_EXEC: EPERM', run: (w) => w.mm(w.gmem, 4 * K, SHARED | FIXED, w.resv, 0, RW | PROT.EXEC), want: 'EPERM' },
    { name: 'FIXED of a VM fd: ENODEV', run: (w) => w.mm(w.vm, 4 * K, SHARED | FIXED, w.resv), want: 'ENODEV' },
    { name: 'FIXED without MMAP over a mapping: ENODEV', run: (w) => w.mm(w.plain, 4 * K, SHARED | FIXED, w.resv), want: 'ENODEV' },
    { name: 'FIXED MAP_PRIVATE over a mapping: EINVAL', run: (w) => w.mm(w.gmem, 4 * K, PRIVATE | FIXED, w.resv), want: 'EINVAL' },
  ];
  for (const row of rows) assert.equal(errnoOf(row.run(world())), row.want, row.name);
});

test(`MAP_FIXED replaces; a refusal by guest_memfd's mmap leaves a hole, earlier ones do not (${MEASURED})`, () => {
  const w = world();
  const m = w.mm(w.gmem, 16 * K, SHARED | FIXED, w.resv);
  assert.ok(m.ok && m.value === w.resv);
  assert.ok(w.b.hostWrite(w.resv, new Uint8Array([7])).ok);
  assert.equal(errnoOf(w.b.hostRead(w.resv + 16 * K, 1)), 'SIGSEGV'); // the rest stays PROT_NONE
  assert.equal(errnoOf(w.mm(w.gmem, 4 * K, SHARED | FIXED, w.resv, 0, RW | PROT.EXEC)), 'EPERM');
  assert.deepEqual(w.b.hostRead(w.resv, 1), { ok: true, value: new Uint8Array([7]) });
  assert.equal(errnoOf(w.mm(w.plain, 4 * K, SHARED | FIXED, w.resv)), 'ENODEV');
  assert.equal(errnoOf(w.b.hostRead(w.resv, 1)), 'SIGSEGV'); // the hole
  assert.equal(errnoOf(w.b.hostRead(w.resv + 4 * K, 1)), 'ok');
  const again = w.mm(w.gmem, 4 * K, SHARED | FIXED_NOREPLACE, w.resv); // into the hole
  assert.ok(again.ok && again.value === w.resv);
  assert.deepEqual(w.b.hostRead(w.resv, 1), { ok: true, value: new Uint8Array([7]) });
});

test('an mmap hint is used when that range is free, else the mapping goes elsewhere (measured hint behaviour)', () => {
  const w = world();
  const free = w.resv - 1024 * K;
  const h = w.mm(w.gmem, 4 * K, SHARED, free + 1); // rounded down to the page
  assert.ok(h.ok);
  assert.equal(h.value, free);
  const taken = w.mm(w.gmem, 4 * K, SHARED, w.resv);
  assert.ok(taken.ok);
  assert.notEqual(taken.value, w.resv);
});

test('fill: a memset; beyond MAX_BUFFERED_ACCESS only the first MAX bytes are faulted (backend.ts hostFill)', () => {
  const w = world();
  const m = w.mm(w.gmem, 32 * K, SHARED);
  assert.ok(m.ok);
  assert.ok(w.b.hostFill(m.value, 16 * K, 0xaa).ok);
  assert.deepEqual(w.b.hostRead(m.value + 16 * K - 1, 1), { ok: true, value: new Uint8Array([0xaa]) });
  // Past EOF after 4K: SIGBUS, the 4K before written.
  assert.equal(errnoOf(w.b.hostFill(m.value + 12 * K, 8 * K, 0x55)), 'SIGBUS');
  assert.deepEqual(w.b.hostRead(m.value + 16 * K - 1, 1), { ok: true, value: new Uint8Array([0x55]) });
  // 2^40 bytes from a 16K mapping of the reservation's neighbour: ends at the first refusal, no 1 TiB buffer.
  const huge = w.b.hostFill(m.value, 1n << 40n, 1);
  assert.equal(errnoOf(huge), 'SIGBUS');
  assert.deepEqual(w.b.hostRead(m.value + 16 * K - 1, 1), { ok: true, value: new Uint8Array([1]) });
  // Every page of the first MAX bytes accessible: unsupported, nothing written.
  const anon = w.mm(null, MAX_BUFFERED_ACCESS + 4 * K, SHARED | ANONYMOUS);
  assert.ok(anon.ok);
  const big = w.b.hostFill(anon.value, BigInt(MAX_BUFFERED_ACCESS + 1), 9);
  assert.ok(!big.ok && 'unsupported' in big, JSON.stringify(big));
  assert.deepEqual(w.b.hostRead(anon.value, 1), { ok: true, value: new Uint8Array([0]) });
});

test('expectations fails, bits and the out-values match outcomes as the contract says', () => {
  const ok3 = toOutcome({ ok: true, value: 3n });
  const stat = toOutcome({ ok: true, value: { size: 16384n, blksize: 4096n } });
  const einval = toOutcome({ ok: false, errno: 'EINVAL', why: 'x' });
  const sigbus = toOutcome({ ok: false, signal: 'SIGBUS', address: 0, why: 'x' });
  const rows: [string, Expect, typeof ok3, boolean][] = [
    ['fails: an errno', { kind: 'fails' }, einval, true],
    ['fails: success is not', { kind: 'fails' }, ok3, false],
    ['fails: a signal is not', { kind: 'fails' }, sigbus, false],
    ['bits 1 of 3', { kind: 'bits', bits: 1n }, ok3, true],
    ['bits 3 of 3', { kind: 'bits', bits: 3n }, ok3, true],
    ['bits 4 of 3', { kind: 'bits', bits: 4n }, ok3, false],
    ['bits on an errno', { kind: 'bits', bits: 1n }, einval, false],
    ['size and blksize', { kind: 'out', out: { size: 16384n, blksize: 4096n } }, stat, true],
    ['blksize only', { kind: 'out', out: { blksize: 4096n } }, stat, true],
    ['wrong size', { kind: 'out', out: { size: 4096n } }, stat, false],
    ['out-values of a call without them', { kind: 'out', out: { size: 0n } }, ok3, false],
  ];
  for (const [name, e, got, pass] of rows) assert.equal(mismatch(e, got) === undefined, pass, name);
  assert.match(mismatch({ kind: 'bits', bits: 5n }, ok3)!, /missing 0x4$/);
  // diff compares the out-values
  assert.ok(sameOutcome(stat, toOutcome({ ok: true, value: { size: 16384n, blksize: 4096n } })));
  assert.ok(!sameOutcome(stat, toOutcome({ ok: true, value: { size: 16384n, blksize: 8192n } })));
});

test('the VMM\'s memory map follows a MAP_FIXED that replaces part of a mapping (the userspace half translates through it)', () => {
  const m = new MemoryMap();
  m.recordMmap(0x100000, { fd: 5, offset: 0, length: 16 * K, prot: RW, flags: SHARED });
  m.recordMmap(0x101000, { fd: 6, offset: 8 * K, length: 4 * K, prot: RW, flags: SHARED | FIXED, addr: 0x101000 });
  assert.deepEqual(m.addressToGmem(0x100000, 4 * K), { fd: 5, lo: 0, hi: 1 });
  assert.deepEqual(m.addressToGmem(0x101000, 4 * K), { fd: 6, lo: 2, hi: 3 });
  assert.deepEqual(m.addressToGmem(0x102000, 8 * K), { fd: 5, lo: 2, hi: 4 });
});
