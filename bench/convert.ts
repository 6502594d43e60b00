// Benchmark: cost of a 2 MiB shared<->private conversion in a 4 GiB and in a 1 TiB guest_memfd,
// with long-term pins scattered over the whole file, measured side by side in one run. The
// claim under test: the cost follows the range touched, not the file size (ratio near 1).
// Invariant checks are off: this measures the model's operations, not its self-checks.
import { GMEM_FLAGS, MAP_FLAGS, MEMORY_ATTRIBUTES, PAGE_SIZE, PROT, VM_TYPES } from '../src/model/abi.js';
import { Kernel } from '../src/model/kernel.js';

const MiB = 1 << 20;
const GiB = 1024 * MiB;
const RANGE = 2 * MiB;
const PINS = 4096;

interface Setup { kernel: Kernel; gmem: number; offset: number; label: string }

/** A deterministic LCG so both files get the same pin pattern relative to their size. */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

function setup(label: string, size: number): Setup {
  const k = new Kernel();
  const ok = <T>(r: { ok: boolean; value?: T }, what: string): T => {
    if (!r.ok) throw new Error(`bench setup: ${what} failed: ${JSON.stringify(r)}`);
    return r.value as T;
  };
  const vm = ok(k.createVm(VM_TYPES.sw_protected), 'create_vm');
  const gmem = ok(k.createGuestMemfd(vm, size, GMEM_FLAGS.MMAP | GMEM_FLAGS.INIT_SHARED), 'create_guest_memfd');
  const map = ok<number>(k.mmap({ fd: gmem, offset: 0, length: size, prot: PROT.READ | PROT.WRITE, flags: MAP_FLAGS.SHARED }), 'mmap');
  const offset = Math.floor(size / 2 / RANGE) * RANGE; // the converted range, in the middle
  const rand = lcg(42);
  for (let i = 0; i < PINS; i++) {
    let page = Math.floor(rand() * (size / PAGE_SIZE));
    if (page * PAGE_SIZE >= offset && page * PAGE_SIZE < offset + RANGE) page = (page + RANGE / PAGE_SIZE) % (size / PAGE_SIZE);
    ok(k.pinUserPages(map + page * PAGE_SIZE, PAGE_SIZE, true), 'pin_user_pages');
  }
  ok(k.hostWrite(map + offset, new Uint8Array(RANGE).fill(0x5a)), 'touch the range'); // allocate + map every page of the range
  return { kernel: k, gmem, offset, label };
}

function convertRound(s: Setup, rounds: number): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) {
    for (const attributes of [MEMORY_ATTRIBUTES.PRIVATE, 0n]) {
      const r = s.kernel.setMemoryAttributes2(s.gmem, { offset: s.offset, size: RANGE, attributes, flags: 0 });
      if (!r.ok) throw new Error(`conversion failed in ${s.label}: ${JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
    }
  }
  return Number(process.hrtime.bigint() - start) / 1e3 / (2 * rounds); // µs per conversion
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const small = setup('4 GiB', 4 * GiB);
const large = setup('1 TiB', 1024 * GiB);
const rounds = 200;
convertRound(small, 20); // warm up both before measuring
convertRound(large, 20);
const a: number[] = [];
const b: number[] = [];
for (let rep = 0; rep < 15; rep++) { // alternate so drift hits both alike
  a.push(convertRound(small, rounds));
  b.push(convertRound(large, rounds));
}
const ta = median(a);
const tb = median(b);
console.log(`gmemkit bench: ${RANGE / MiB} MiB conversion back and forth, ${PINS} long-term pins scattered over the file, invariant checks off`);
console.log(`node ${process.version}, ${15 * rounds * 2} conversions per file, median of 15 alternating batches`);
console.log('| guest_memfd | µs per conversion |');
console.log('|---|---:|');
console.log(`| ${small.label} | ${ta.toFixed(1)} |`);
console.log(`| ${large.label} | ${tb.toFixed(1)} |`);
console.log(`ratio 1 TiB / 4 GiB = ${(tb / ta).toFixed(2)} (goal ≤ 1.5)`);
