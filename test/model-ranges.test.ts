// Ranges, not pages: the model's page cache, host PTEs, SPTEs and folio table are extents, so a
// 1 TiB guest that is preallocated, prefaulted and converted costs what its ranges cost; and an
// access too large to buffer ends as the kernel's would (its fault) or, when the kernel would
// complete it, as a clean "unsupported" naming the limit — never a RangeError.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { MAX_BUFFERED_ACCESS } from '../src/backend/backend.js';
import { ID_CODEC, ExtentMap } from '../src/model/extent-map.js';
import { FULL_MACHINE } from '../src/model/platform.js';
import { IPC_V8 } from '../src/model/profile.js';
import { loadScenarioFile, parseScenario } from '../src/scenario/load.js';
import { formatHuman } from '../src/scenario/report.js';
import { runScenario } from '../src/scenario/run.js';
import { Ctx, INIT_SHARED, K, MMAP } from './table.js';

const G = 1024 * 1024 * K;
const T = 1024 * G;

test('ExtentMap of folio ids agrees with an array under random set/delete, runs maximal', () => {
  const N = 48;
  const range = fc.tuple(fc.nat(N), fc.nat(N)).map(([a, b]) => (a <= b ? [a, b] : [b, a]) as [number, number]);
  const op = fc.oneof(fc.tuple(range, fc.nat(100)).map(([r, v]) => ({ set: true, r, v })), range.map((r) => ({ set: false, r, v: 0 })));
  fc.assert(fc.property(fc.array(op, { maxLength: 30 }), (seq) => {
    const m = new ExtentMap(ID_CODEC);
    const ref: (number | undefined)[] = new Array(N).fill(undefined);
    for (const { set, r: [lo, hi], v } of seq) {
      if (set) { m.set(lo, hi, v); for (let i = lo; i < hi; i++) ref[i] = v + (i - lo); } else { m.delete(lo, hi); for (let i = lo; i < hi; i++) ref[i] = undefined; }
    }
    for (let i = 0; i < N; i++) assert.equal(m.get(i), ref[i], `index ${i}`);
    const segs = m.segments();
    for (let k = 1; k < segs.length; k++) {
      const [a, b] = [segs[k - 1]!, segs[k]!];
      assert.ok(a.hi < b.lo || a.value + (a.hi - a.lo) !== b.value, `runs ${a.lo} and ${b.lo} should have merged`);
    }
  }));
});

test('scenario test/scenarios/scale/prealloc-1t.yaml: 1 TiB fallocate, mmap, POPULATE_WRITE, convert both ways, punch (invariants on)  [kernel-semantics.md §1.3, §1.6, §1.7, §1.10(b)]', () => {
  for (const r of runScenario(loadScenarioFile('test/scenarios/scale/prealloc-1t.yaml'))) {
    assert.ok(r.passed, formatHuman(r));
    assert.ok(r.steps.every((s) => s.violations.length === 0), formatHuman(r));
  }
});

test('a prefaulted 1 TiB guest is a handful of runs: page cache, PTEs, SPTEs and folio table  [ranges, not pages: the 1 TiB prealloc scenario]', () => {
  const c = new Ctx(IPC_V8, FULL_MACHINE);
  c.vm('sw_protected'); c.gmem(T, MMAP | INIT_SHARED); c.slot(0, 0, T, 'gmem');
  c.must(c.b.fallocate(c.h.gmem!, 1n, 0, T));
  c.mmap('gmem', T);
  c.must(c.b.madvise(c.h.map!, T, 23)); // POPULATE_WRITE
  c.guestWrite(5 * G, 'g');
  c.write('map', 7 * G, 'h');
  const inode = c.k.gmemFile(c.h.gmem!)!.inode;
  assert.equal(inode.pages.count(), T / (4 * K), 'every page is in the page cache');
  assert.equal(c.ptes('map'), T / (4 * K), 'every page is mapped');
  assert.equal(inode.pages.runs, 1);
  assert.equal(c.k.vmaAt(c.h.map!)!.ptes.runs, 1);
  assert.ok(c.k.state.folios.runs <= 3, `folio table: ${c.k.state.folios.runs} runs`);
  assert.equal(c.k.state.folioData.size, 2, 'content only for the two pages written');
  c.convert('gmem', 0, T, true);
  assert.equal(c.ptes('map'), 0);
  assert.ok(c.k.state.folios.runs <= 3, `folio table after conversion: ${c.k.state.folios.runs} runs`);
  c.must(c.b.fallocate(c.h.gmem!, 3n, G, G)); // PUNCH_HOLE | KEEP_SIZE
  assert.equal(inode.pages.count(), (T - G) / (4 * K));
  assert.equal(c.b.takeViolations().length, 0);
});

// kernel-probe.md §3 (faults past the mapping are SIGSEGV; private pages SIGBUS); the limit is
// MAX_BUFFERED_ACCESS of src/backend/backend.ts.
const big: { name: string; run: (c: Ctx) => unknown; expect: Record<string, unknown> }[] = [
  { name: 'read of 2^40 bytes on a 16K mapping: SIGSEGV at the end of the mapping',
    run: (c) => c.b.hostRead(c.h.map!, 2 ** 40), expect: { signal: 'SIGSEGV', at: 16 * K } },
  { name: 'read of 2^40 bytes starting on a private page: SIGBUS at once',
    run: (c) => { c.convert('gmem', 0, 4 * K, true); return c.b.hostRead(c.h.map!, 2 ** 40); }, expect: { signal: 'SIGBUS', at: 0 } },
  { name: 'guest read of 2^40 bytes from gpa 0 of a 16K slot: MMIO exit at the first gpa outside it',
    run: (c) => c.b.guestRead(c.h.vm!, 0, 2 ** 40), expect: { exit: 'MMIO', gpa: 16n * BigInt(K) } },
  { name: 'read of MAX_BUFFERED_ACCESS + 1 bytes of a fully mapped range: unsupported, naming the limit',
    run: (c) => { c.gmem(512 * 1024 * K, MMAP | INIT_SHARED, { as: 'big' }); c.mmap('big', 512 * 1024 * K, { as: 'bigmap' }); return c.b.hostRead(c.h.bigmap!, MAX_BUFFERED_ACCESS + 1); },
    expect: { unsupported: /kernel would complete it.*256 MiB.*MAX_BUFFERED_ACCESS/ } },
];

for (const row of big) {
  test(`${row.name}  [kernel-probe.md §3; MAX_BUFFERED_ACCESS]`, () => {
    const c = new Ctx(IPC_V8, FULL_MACHINE);
    c.vm('sw_protected'); c.gmem(16 * K, MMAP | INIT_SHARED); c.mmap('gmem', 16 * K); c.slot(0, 0, 16 * K, 'gmem');
    const r = row.run(c) as Record<string, unknown>;
    assert.equal(r.ok, false);
    if (row.expect.signal) { assert.equal(r.signal, row.expect.signal); assert.equal(r.address, c.h.map! + (row.expect.at as number)); }
    if (row.expect.exit) { assert.equal(r.exit, row.expect.exit); assert.equal(r.gpa, row.expect.gpa); }
    if (row.expect.unsupported) assert.match(String(r.unsupported), row.expect.unsupported as RegExp);
    assert.deepEqual(c.b.takeViolations(), []);
  });
}

test('scenario ops read and guest_read of length "2^40" on a 16K mapping: SIGSEGV / MMIO exit, no stack trace  [kernel-probe.md §3, §8]', () => {
  const yaml = `name: huge reads
steps:
  - { op: create_vm, type: sw_protected, as: vm }
  - { op: create_guest_memfd, vm: vm, size: 16K, flags: [MMAP, INIT_SHARED], as: gmem }
  - { op: mmap, fd: gmem, length: 16K, as: map }
  - { op: set_user_memory_region2, vm: vm, slot: 0, guest_phys_addr: 0, memory_size: 16K, guest_memfd: gmem }
  - { op: read, map: map, offset: 0, length: "2^40", expect: { signal: SIGSEGV } }
  - { op: guest_read, vm: vm, gpa: 0, length: "2^40", expect: { exit: MMIO, gpa: 16K } }
  - { op: read, map: map, offset: 0, length: 16K, expect: { fill: 0 } }
`;
  const [r] = runScenario(parseScenario(yaml, 'huge-reads.yaml'));
  assert.ok(r!.passed, formatHuman(r!));
});
