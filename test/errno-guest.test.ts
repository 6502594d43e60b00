// Guest (vCPU) accesses: memory-fault exits on an access-type mismatch (kernel-semantics.md
// §1.4), MMIO outside memslots, and the guest view versus the host view of kernel-probe.md §8
// (variants A–E, 64-bit CPL3 column: the guest_memfd fault path).
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { PROBED_MACHINE } from '../src/model/platform.js';
import { IPC_V8, MAINLINE_6_18, RFC_2025 } from '../src/model/profile.js';
import { bytes, fill, INIT_SHARED, K, M, MMAP, table, type Ctx, type Row } from './table.js';

const S14 = 'kernel-semantics.md §1.4';
const P8 = 'kernel-probe.md §8';
const probed = { profile: MAINLINE_6_18, machine: PROBED_MACHINE };
const text = (u: Uint8Array) => new TextDecoder().decode(u);

/** VM of `type`, 16K gmem MMAP|INIT_SHARED mapped at `map`, bound at gpa 0 (slot 0, uaddr NULL); page 1 private. */
const coco = (type: 'snp' | 'tdx' | 'sw_protected') => (c: Ctx) => {
  c.vm(type); c.gmem(16 * K, MMAP | INIT_SHARED); c.mmap('gmem', 16 * K); c.slot(0, 0, 16 * K, 'gmem');
  c.convert('gmem', 4 * K, 4 * K, true);
};

describe('guest accesses: memory-fault exits', () => {
  const rows: Row[] = [];
  for (const t of ['snp', 'tdx'] as const) {
    rows.push(
      { name: `${t}: shared access to a shared page: ok`, cite: S14, profile: IPC_V8, setup: coco(t),
        call: (c) => c.b.guestWrite(c.h.vm!, 8 * K, bytes('s'), false), expect: 'ok',
        then: (c) => assert.equal(text(c.read('map', 8 * K, 1)), 's', 'the host sees it') },
      { name: `${t}: private access to a private page: ok`, cite: S14, profile: IPC_V8, setup: coco(t),
        call: (c) => c.b.guestWrite(c.h.vm!, 4 * K + 8, bytes('p'), true), expect: 'ok' },
      { name: `${t}: private access to a shared page: MEMORY_FAULT, PRIVATE flag set`, cite: `${S14} Mismatch`, profile: IPC_V8, setup: coco(t),
        call: (c) => c.b.guestRead(c.h.vm!, 8 * K + 5, 1, true), expect: { exit: 'MEMORY_FAULT', gpa: 8192n, size: 4096n, private: true, flags: 8n } },
      { name: `${t}: shared access to a private page: MEMORY_FAULT, flags 0`, cite: `${S14} Mismatch`, profile: IPC_V8, setup: coco(t),
        call: (c) => c.b.guestWrite(c.h.vm!, 4 * K, bytes('x'), false), expect: { exit: 'MEMORY_FAULT', gpa: 4096n, size: 4096n, private: false, flags: 0n } },
      { name: `${t}: an access spanning pages exits at the first mismatching page`, cite: `${S14} Mismatch`, profile: IPC_V8, setup: coco(t),
        call: (c) => c.b.guestRead(c.h.vm!, 4 * K - 2, 4, false), expect: { exit: 'MEMORY_FAULT', gpa: 4096n, private: false } },
      { name: `${t}: after to-shared, the shared access works`, cite: `${S14}; kernel-semantics.md §6 (implicit conversion on MEMORY_FAULT)`, profile: IPC_V8,
        setup: (c) => { coco(t)(c); c.convert('gmem', 4 * K, 4 * K, false); },
        call: (c) => c.b.guestRead(c.h.vm!, 4 * K, 1, false), expect: { bytes: [0] } },
      { name: `${t}: private access outside every memslot: MEMORY_FAULT (no memslot = shared)`, cite: `${S14} IPC (no memslot treated as shared)`, profile: IPC_V8, setup: coco(t),
        call: (c) => c.b.guestRead(c.h.vm!, 1 * M, 1, true), expect: { exit: 'MEMORY_FAULT', gpa: BigInt(M), private: true } },
      { name: `${t}: shared access outside every memslot: MMIO`, cite: `${S14} IPC ([v8] 46/46: emulated MMIO)`, profile: IPC_V8, setup: coco(t),
        call: (c) => c.b.guestRead(c.h.vm!, 1 * M, 1, false), expect: { exit: 'MMIO', gpa: BigInt(M) } },
    );
  }
  rows.push(
    { name: 'sw_protected: the access type is the attribute: a "private" access to a shared page works', cite: `${S14} (SW_PROTECTED: no mismatch exit)`, profile: IPC_V8,
      setup: coco('sw_protected'), call: (c) => c.b.guestWrite(c.h.vm!, 8 * K, bytes('a'), true), expect: 'ok',
      then: (c) => assert.equal(text(c.read('map', 8 * K, 1)), 'a', 'served as shared: the host sees it') },
    { name: 'sw_protected: a "shared" access to a private page works', cite: `${S14} (SW_PROTECTED: no mismatch exit)`, profile: IPC_V8,
      setup: coco('sw_protected'), call: (c) => c.b.guestWrite(c.h.vm!, 4 * K, bytes('b'), false), expect: 'ok',
      then: (c) => assert.equal(c.k.vmOfFd(c.h.vm!)!.sptes.get(1)!.private, true) },
    { name: 'sw_protected: outside every memslot: MMIO', cite: `${S14} IPC`, profile: IPC_V8, setup: coco('sw_protected'),
      call: (c) => c.b.guestRead(c.h.vm!, 1 * M, 1), expect: { exit: 'MMIO' } },
    { name: 'default VM: outside every memslot: MMIO', cite: `${P8} (variant E, emulated: KVM_EXIT_MMIO)`, ...probed, setup: (c) => { c.vm(); },
      call: (c) => c.b.guestRead(c.h.vm!, 0, 1), expect: { exit: 'MMIO', gpa: 0n } },
    { name: 'rfc-2025: the same mismatch exit', cite: `${S14}; kernel-semantics.md §1.10(c) [RFC25]`, profile: RFC_2025, setup: coco('snp'),
      call: (c) => c.b.guestRead(c.h.vm!, 0, 1, true), expect: { exit: 'MEMORY_FAULT', gpa: 0n, private: true } },
    { name: 'mainline snp: per-VM PRIVATE attribute decides; shared access to it exits', cite: `${S14} (M: per-VM KVM_MEMORY_ATTRIBUTE_PRIVATE)`, profile: MAINLINE_6_18,
      setup: (c) => { c.vm('snp'); c.gmem(16 * K, MMAP); c.slot(0, 0, 16 * K, 'gmem'); c.must(c.b.setMemoryAttributes(c.h.vm!, { address: 0, size: 4 * K, attributes: 8n, flags: 0n })); },
      call: (c) => c.b.guestRead(c.h.vm!, 0, 1, false), expect: { exit: 'MEMORY_FAULT', private: false } },
    { name: 'mainline snp: private access to a per-VM private gfn served from gmem', cite: `${S14} (M: private faults from guest_memfd)`, profile: MAINLINE_6_18,
      setup: (c) => { c.vm('snp'); c.gmem(16 * K, 0n); c.anon(16 * K); c.slot(0, 0, 16 * K, 'gmem', 0, 'anon'); c.must(c.b.setMemoryAttributes(c.h.vm!, { address: 0, size: 4 * K, attributes: 8n, flags: 0n })); },
      call: (c) => c.b.guestWrite(c.h.vm!, 0, bytes('q'), true), expect: 'ok',
      then: (c) => {
        assert.deepEqual([...c.read('anon', 0, 1)], [0], 'the shared backing (userspace_addr) is untouched');
        assert.equal(c.k.vmOfFd(c.h.vm!)!.sptes.get(0)!.backing, 'gmem');
      } },
    { name: 'mainline snp: shared access on a non-MMAP gmem slot goes to userspace_addr', cite: `${S14} (M, gmem without MMAP: classic two-backing model)`, profile: MAINLINE_6_18,
      setup: (c) => { c.vm('snp'); c.gmem(16 * K, 0n); c.anon(16 * K); c.slot(0, 0, 16 * K, 'gmem', 0, 'anon'); },
      call: (c) => c.b.guestWrite(c.h.vm!, 4 * K, bytes('u'), false), expect: 'ok',
      then: (c) => assert.equal(text(c.read('anon', 4 * K, 1)), 'u') },
    { name: 'a failed userspace_addr fault: EFAULT', cite: `${S14} Mismatch / failure (gmem cannot supply the pfn: EFAULT)`, ...probed,
      setup: (c) => { c.vm(); c.gmem(16 * K, 0n); c.slot(0, 0, 16 * K, 'gmem', 0, 0xdead000); },
      call: (c) => c.b.guestRead(c.h.vm!, 0, 1), expect: { errno: 'EFAULT' } },
    { name: 'a closed VM fd: EBADF', cite: 'ioctl(2) (KVM_RUN on a closed fd)', ...probed, setup: (c) => { c.vm(); c.must(c.b.close(c.h.vm!)); },
      call: (c) => c.b.guestRead(c.h.vm!, 0, 1), expect: { errno: 'EBADF' } },
    { name: 'a fresh page reads zero (zeroed before first exposure)', cite: 'kernel-semantics.md I6', profile: IPC_V8, setup: coco('snp'),
      call: (c) => c.b.guestRead(c.h.vm!, 4 * K, 4 * K, true), expect: { fill: 0, length: 4 * K } },
    { name: 'slot at a non-zero gmem offset translates gfn → index', cite: `${S14} Translation`, profile: IPC_V8,
      setup: (c) => { c.vm('sw_protected'); c.gmem(16 * K, MMAP | INIT_SHARED); c.mmap('gmem', 16 * K); c.slot(0, 1 * M, 8 * K, 'gmem', 8 * K); c.write('map', 12 * K, 'T'); },
      call: (c) => c.b.guestRead(c.h.vm!, 1 * M + 4 * K, 1), expect: { data: 'T' } },
  );
  table(rows);
});

describe('guest view vs host view: kernel-probe §8 variants (probed machine, 64-bit CPL3 column)', () => {
  /** gmem of `flags`, mapped if MMAP; slot 0 at gpa 0 with uaddr `uaddr`. */
  const variant = (flags: bigint, uaddr: 'gmem' | 'null' | 'anon') => (c: Ctx) => {
    c.vm(); c.gmem(16 * K, flags);
    if (flags & MMAP) c.mmap('gmem', 16 * K);
    if (uaddr === 'anon') c.anon(16 * K);
    c.slot(0, 0, 16 * K, 'gmem', 0, uaddr === 'gmem' ? 'map' : uaddr === 'anon' ? 'anon' : null);
  };
  const guestWrites = (c: Ctx) => { c.guestWrite(0, fill(256, 0xab)); c.guestWrite(4 * K, fill(1, 0x5a)); };
  const rows: Row[] = [];
  for (const [v, uaddr] of [['A', 'gmem'], ['B', 'null']] as const) {
    const setup = variant(MMAP | INIT_SHARED, uaddr);
    rows.push(
      { name: `${v}: the host sees the guest's 0xAB/0x5A through the gmem mmap`, cite: `${P8} variant ${v}`, ...probed,
        setup: (c) => { setup(c); guestWrites(c); }, call: (c) => c.b.hostRead(c.h.map!, 256), expect: { fill: 0xab, length: 256 },
        then: (c) => assert.deepEqual([...c.read('map', 4 * K, 1)], [0x5a]) },
      { name: `${v}: punch → the guest reads 0x00`, cite: `${P8} variant ${v}`, ...probed,
        setup: (c) => { setup(c); guestWrites(c); c.punch('gmem', 0, 4 * K); }, call: (c) => c.b.guestRead(c.h.vm!, 0, 256), expect: { fill: 0, length: 256 } },
      { name: `${v}: host writes 0x99 → the guest reads 0x99`, cite: `${P8} variant ${v}`, ...probed,
        setup: (c) => { setup(c); guestWrites(c); c.write('map', 0, fill(16, 0x99)); }, call: (c) => c.b.guestRead(c.h.vm!, 0, 16), expect: { fill: 0x99, length: 16 } },
    );
  }
  rows.push(
    { name: 'C: uaddr = other anon memory: the guest uses the gmem', cite: `${P8} variant C (userspace_addr ignored for an MMAP gmem slot)`, ...probed,
      setup: (c) => { variant(MMAP | INIT_SHARED, 'anon')(c); c.write('anon', 0, fill(4, 0xcd)); c.write('map', 0, fill(4, 0x11)); },
      call: (c) => c.b.guestRead(c.h.vm!, 0, 4), expect: { fill: 0x11, length: 4 } },
    { name: 'C: guest writes land in the gmem; the anon copy is untouched', cite: `${P8} variant C`, ...probed,
      setup: (c) => { variant(MMAP | INIT_SHARED, 'anon')(c); c.write('anon', 0, fill(4, 0xcd)); guestWrites(c); },
      call: (c) => c.b.hostRead(c.h.anon!, 4), expect: { fill: 0xcd, length: 4 },
      then: (c) => assert.deepEqual([...c.read('map', 0, 1)], [0xab]) },
    { name: 'D: gmem flags=0, uaddr = anon: the guest uses the anon memory', cite: `${P8} variant D`, ...probed,
      setup: (c) => { variant(0n, 'anon')(c); guestWrites(c); }, call: (c) => c.b.hostRead(c.h.anon!, 256), expect: { fill: 0xab, length: 256 } },
    { name: 'D: punching the gmem has no effect on the guest', cite: `${P8} variant D`, ...probed,
      setup: (c) => { variant(0n, 'anon')(c); guestWrites(c); c.punch('gmem', 0, 16 * K); }, call: (c) => c.b.guestRead(c.h.vm!, 0, 256), expect: { fill: 0xab, length: 256 } },
    { name: 'E: MMAP (not shared), uaddr NULL: the guest reads and writes fine', cite: `${P8} variant E`, ...probed,
      setup: (c) => { variant(MMAP, 'null')(c); guestWrites(c); }, call: (c) => c.b.guestRead(c.h.vm!, 0, 256), expect: { fill: 0xab, length: 256 } },
    { name: 'E: the host gets SIGBUS on it', cite: `${P8} variant E`, ...probed,
      setup: (c) => { variant(MMAP, 'null')(c); guestWrites(c); }, call: (c) => c.b.hostRead(c.h.map!, 1), expect: { signal: 'SIGBUS' } },
    { name: 'E: punch → the guest reads 0', cite: `${P8} variant E`, ...probed,
      setup: (c) => { variant(MMAP, 'null')(c); guestWrites(c); c.punch('gmem', 0, 4 * K); }, call: (c) => c.b.guestRead(c.h.vm!, 0, 256), expect: { fill: 0, length: 256 } },
    { name: 'L-A: vmsplice-ref, punch: the guest re-reads 0x00', cite: `${P8} Extra (L-A, L-B)`, ...probed,
      setup: (c) => { variant(MMAP | INIT_SHARED, 'gmem')(c); guestWrites(c); c.vmsplice('map', 0, 256); c.punch('gmem', 0, 4 * K); },
      call: (c) => c.b.guestRead(c.h.vm!, 0, 256), expect: { fill: 0, length: 256 } },
    { name: 'L-A: vmsplice-ref, punch: the pipe still returns the old 0xAB bytes', cite: `${P8} Extra (L-A, L-B)`, ...probed,
      setup: (c) => { variant(MMAP | INIT_SHARED, 'gmem')(c); guestWrites(c); c.vmsplice('map', 0, 256); c.punch('gmem', 0, 4 * K); },
      call: (c) => c.b.fdRead(c.h.pipe!), expect: { fill: 0xab, length: 256 } },
    { name: 'L-B: the same with uaddr NULL', cite: `${P8} Extra (L-A, L-B)`, ...probed,
      setup: (c) => { variant(MMAP | INIT_SHARED, 'null')(c); guestWrites(c); c.vmsplice('map', 0, 256); c.punch('gmem', 0, 4 * K); },
      call: (c) => c.b.fdRead(c.h.pipe!), expect: { fill: 0xab, length: 256 },
      then: (c) => assert.deepEqual([...c.guestRead(0, 4)], [0, 0, 0, 0]) },
    { name: 'a plain slot whose userspace_addr maps a guest_memfd: punch → the guest reads 0', cite: `${P8} variant A, emulated column (accesses through userspace_addr: "same result")`, ...probed,
      setup: (c) => {
        c.vm(); c.gmem(16 * K, MMAP | INIT_SHARED); c.mmap('gmem', 16 * K); c.slot(0, 0, 16 * K, null, 0, 'map');
        c.guestWrite(0, fill(4, 0xab)); c.punch('gmem', 0, 4 * K);
      },
      call: (c) => c.b.guestRead(c.h.vm!, 0, 4), expect: { fill: 0, length: 4 } },
    { name: 'a plain slot whose userspace_addr maps a guest_memfd: host writes are seen', cite: `${P8} variant A, emulated column`, ...probed,
      setup: (c) => {
        c.vm(); c.gmem(16 * K, MMAP | INIT_SHARED); c.mmap('gmem', 16 * K); c.slot(0, 0, 16 * K, null, 0, 'map');
        c.guestWrite(0, fill(4, 0xab)); c.must(c.b.madvise(c.h.map!, 4 * K, 4)); c.write('map', 0, fill(4, 0x99));
      },
      call: (c) => c.b.guestRead(c.h.vm!, 0, 4), expect: { fill: 0x99, length: 4 } },
  );
  table(rows);
});

describe('guest access through userspace_addr after a conversion (ipc-v8)', () => {
  table([
    { name: 'a plain slot mapping a guest_memfd: after to-private the guest cannot reach the page (EFAULT)',
      cite: 'kernel-semantics.md I1, I8 (mmu notifier zaps the shared mapping; the re-fault SIGBUSes → EFAULT)', profile: IPC_V8,
      setup: (c) => {
        c.vm('sw_protected'); c.gmem(16 * K, MMAP | INIT_SHARED); c.mmap('gmem', 16 * K);
        c.vm('sw_protected', 'vm2'); c.anon(16 * K); c.slot(0, 0, 16 * K, null, 0, 'map', 'vm2');
        c.guestWrite(0, 'leak', undefined, 'vm2'); c.convert('gmem', 0, 4 * K, true);
      },
      call: (c) => c.b.guestRead(c.h.vm2!, 0, 4), expect: { errno: 'EFAULT' } },
  ]);
});
