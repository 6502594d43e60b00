// Benchmark: a split and a merge of one huge folio on the hugetlb profile, for a 2 MiB and a
// 1 GiB folio side by side, with invariant checks ON. One round: the guest shares one 4 KiB page
// (to-shared splits the huge folio around it) and takes it back (to-private merges the block).
// The claim under test (kernel-semantics.md §2.3): split and merge change the order of a run of
// the folio table, so a 1 GiB folio (262,144 pages) costs what a 2 MiB one (512 pages) costs.
// CPU time of this process (the machine is shared), median of alternating batches.
import { GMEM_FLAGS, MEMORY_ATTRIBUTES, VM_TYPES, FALLOC_FLAGS, hugetlbFlags } from '../src/model/abi.js';
import { ModelBackend } from '../src/backend/model-backend.js';
import type { BResult } from '../src/backend/backend.js';
import { HUGETLB } from '../src/model/profile.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const ROUNDS = 1000;

function must<T>(r: BResult<T>, what: string): T {
  if (!r.ok) throw new Error(`bench: ${what} failed: ${JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
  return r.value;
}

/** A file of four huge pages of `huge` bytes, allocated and mapped by the guest; then ROUNDS split+merge rounds. µs of CPU per round. */
function splitMerge(huge: number): number {
  const b = new ModelBackend({ profile: HUGETLB }); // invariant checks on (the default)
  const vm = must(b.createVm(VM_TYPES.sw_protected), 'create_vm');
  const size = 4 * huge;
  const gmem = must(b.createGuestMemfd(vm, size, GMEM_FLAGS.MMAP | hugetlbFlags(huge)), 'create_guest_memfd');
  must(b.setUserMemoryRegion2(vm, { slot: 0, flags: 4n, guest_phys_addr: 0, memory_size: size, userspace_addr: 0, guest_memfd: gmem, guest_memfd_offset: 0 }), 'memslot');
  must(b.fallocate(gmem, FALLOC_FLAGS.KEEP_SIZE, 0, size), 'fallocate');
  const at = huge + 8192; // a page inside the second huge folio
  const start = process.cpuUsage();
  for (let i = 0; i < ROUNDS; i++) {
    must(b.guestWrite(vm, at, Uint8Array.of(i & 0xff), true), 'guest write (maps the huge folio)');
    must(b.setMemoryAttributes2(gmem, { offset: at, size: 4096, attributes: 0, flags: 0 }), 'to shared (split)');
    must(b.setMemoryAttributes2(gmem, { offset: at, size: 4096, attributes: MEMORY_ATTRIBUTES.PRIVATE, flags: 0 }), 'to private (merge)');
  }
  const used = process.cpuUsage(start);
  if (must(b.folioOrder(gmem, at), 'folio_order') !== BigInt(Math.log2(huge) - 12)) throw new Error('bench: the folio was not merged back');
  const violations = b.takeViolations();
  if (violations.length) throw new Error(`bench: invariants broken: ${JSON.stringify(violations)}`);
  b.dispose();
  return (used.user + used.system) / ROUNDS;
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)]!;
}

splitMerge(2 * MiB); // warm up
splitMerge(GiB);
const a: number[] = [];
const g: number[] = [];
for (let rep = 0; rep < 11; rep++) { // alternate so drift hits both alike
  a.push(splitMerge(2 * MiB));
  g.push(splitMerge(GiB));
}
const ta = median(a);
const tg = median(g);
console.log('gmemkit bench: hugetlb split + merge of one huge folio (guest write, to-shared of 4 KiB, to-private of it), invariant checks ON');
console.log(`node ${process.version}, CPU time, median of 11 alternating batches of ${ROUNDS} rounds`);
console.log('| huge folio | pages in it | CPU µs per split + merge round |');
console.log('|---|---:|---:|');
console.log(`| 2 MiB | 512 | ${ta.toFixed(1)} |`);
console.log(`| 1 GiB | 262144 | ${tg.toFixed(1)} |`);
console.log(`ratio 1 GiB / 2 MiB = ${(tg / ta).toFixed(2)} (the folio is 512 times larger)`);
