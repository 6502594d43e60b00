// Benchmark: what QEMU's prealloc does to a guest_memfd, on the model with invariant checks ON:
// fallocate the whole file, mmap it, MADV_POPULATE_WRITE over 64 GiB (or the file, if smaller)
// and then over all of it, convert the whole file to private and back, touch a few bytes and
// punch a hole. Run for a 4 GiB and a 1 TiB file side by side. The claim under test: the page
// cache, PTEs, SPTEs and invariants are ranges, so the cost follows the runs, not the size.
import { MADV, MAP_FLAGS, MEMORY_ATTRIBUTES, PROT, VM_TYPES, GMEM_FLAGS, FALLOC_FLAGS } from '../src/model/abi.js';
import { ModelBackend } from '../src/backend/model-backend.js';
import type { BResult } from '../src/backend/backend.js';

const GiB = 1024 ** 3;

function must<T>(r: BResult<T>, what: string): T {
  if (!r.ok) throw new Error(`bench: ${what} failed: ${JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
  return r.value;
}

/** One full prealloc + prefault + convert round; returns milliseconds. */
function prealloc(size: number): number {
  const start = process.hrtime.bigint();
  const b = new ModelBackend(); // invariant checks on (the default)
  const vm = must(b.createVm(VM_TYPES.sw_protected), 'create_vm');
  const gmem = must(b.createGuestMemfd(vm, size, GMEM_FLAGS.MMAP | GMEM_FLAGS.INIT_SHARED), 'create_guest_memfd');
  must(b.setUserMemoryRegion2(vm, { slot: 0, flags: 4n, guest_phys_addr: 0, memory_size: size, userspace_addr: 0, guest_memfd: gmem, guest_memfd_offset: 0 }), 'memslot');
  must(b.fallocate(gmem, FALLOC_FLAGS.KEEP_SIZE, 0, size), 'fallocate');
  const map = must(b.mmap({ fd: gmem, offset: 0, length: size, prot: PROT.READ | PROT.WRITE, flags: MAP_FLAGS.SHARED }), 'mmap');
  must(b.madvise(map, Math.min(size, 64 * GiB), MADV.POPULATE_WRITE), 'POPULATE_WRITE 64G');
  must(b.madvise(map, size, MADV.POPULATE_WRITE), 'POPULATE_WRITE all');
  must(b.hostWrite(map + size / 2, Uint8Array.of(1, 2, 3)), 'write');
  must(b.setMemoryAttributes2(gmem, { offset: 0, size, attributes: MEMORY_ATTRIBUTES.PRIVATE, flags: 0 }), 'to private');
  must(b.guestWrite(vm, GiB / 2, Uint8Array.of(4, 5, 6)), 'guest write');
  must(b.setMemoryAttributes2(gmem, { offset: 0, size, attributes: 0, flags: 0 }), 'to shared');
  must(b.hostRead(map + GiB / 2, 3), 'read');
  must(b.fallocate(gmem, FALLOC_FLAGS.KEEP_SIZE | FALLOC_FLAGS.PUNCH_HOLE, GiB, GiB), 'punch');
  const violations = b.takeViolations();
  if (violations.length) throw new Error(`bench: invariants broken: ${JSON.stringify(violations)}`);
  b.dispose();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)]!;
}

prealloc(4 * GiB); // warm up
prealloc(1024 * GiB);
const a: number[] = [];
const b: number[] = [];
for (let rep = 0; rep < 11; rep++) { // alternate so drift hits both alike
  a.push(prealloc(4 * GiB));
  b.push(prealloc(1024 * GiB));
}
const ta = median(a);
const tb = median(b);
console.log('gmemkit bench: prealloc (fallocate, mmap, POPULATE_WRITE 64G then all), convert all to private and back, punch; invariant checks ON');
console.log(`node ${process.version}, median of 11 alternating runs`);
console.log('| guest_memfd | ms per prealloc + convert round |');
console.log('|---|---:|');
console.log(`| 4 GiB | ${ta.toFixed(2)} |`);
console.log(`| 1 TiB | ${tb.toFixed(2)} |`);
console.log(`ratio 1 TiB / 4 GiB = ${(tb / ta).toFixed(2)}`);
