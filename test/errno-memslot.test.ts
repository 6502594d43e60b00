// KVM_SET_USER_MEMORY_REGION2: every row of kernel-probe.md §7 (default VM, probed machine),
// and the preconditions of kernel-semantics.md §1.9.
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { MEMSLOT_FLAGS } from '../src/model/abi.js';
import { PROBED_MACHINE } from '../src/model/platform.js';
import { IPC_V8, MAINLINE_6_18, RFC_2024, RFC_2025 } from '../src/model/profile.js';
import { G, INIT_SHARED, K, M, MMAP, region, table, type Ctx, type Row } from './table.js';

const probed = { profile: MAINLINE_6_18, machine: PROBED_MACHINE };
const P7 = 'kernel-probe.md §7';
const GM = MEMSLOT_FLAGS.GUEST_MEMFD;
type Region = ReturnType<typeof region>;

/** 2M gmem (MMAP|INIT_SHARED) mapped at `map`; slot 0 binds gpa 0, 1M, gmem[0,1M), uaddr = the mapping. */
const base = (c: Ctx) => { c.vm(); c.gmem(2 * M, MMAP | INIT_SHARED); c.mmap('gmem', 2 * M); };
const slot0 = (c: Ctx) => { base(c); c.slot(0, 0, 1 * M, 'gmem', 0, 'map'); };
const set = (f: (c: Ctx) => Region) => (c: Ctx) => c.b.setUserMemoryRegion2(c.h.vm!, f(c));
const with0 = (f: (r: Region) => Partial<Region>) => set((c) => ({ ...region(c, 0, 0, 1 * M, 'gmem', 0, 'map'), ...f(region(c, 0, 0, 1 * M, 'gmem', 0, 'map')) }));

describe('KVM_SET_USER_MEMORY_REGION2', () => {
  const rows: Row[] = [
    { name: 'bind slot0: gpa 0, 1M, gmem[0,1M), uaddr = gmem mmap', cite: P7, ...probed, setup: base,
      call: set((c) => region(c, 0, 0, 1 * M, 'gmem', 0, 'map')), expect: 'ok',
      then: (c) => {
        const slot = c.k.vmOfFd(c.h.vm!)!.memslots.get(0)!;
        assert.ok(slot.gmemOnly, 'a slot from an MMAP gmem is GMEM_ONLY (kernel-semantics §1.9 Effect)');
        assert.equal(c.k.gmemFile(c.h.gmem!)!.bindings.get(0), slot);
      } },
    { name: 'slot1 over gmem[512K,1.5M) (overlaps slot0 file range): EINVAL, not EEXIST', cite: `${P7}; kernel-semantics.md §1.9 Errors (M snapshot)`, ...probed, setup: slot0,
      call: set((c) => region(c, 1, 16 * M, 1 * M, 'gmem', 512 * K)), expect: { errno: 'EINVAL' } },
    { name: 'slot1 over gmem[0,4K) (same first page): EINVAL', cite: P7, ...probed, setup: slot0,
      call: set((c) => region(c, 1, 16 * M, 4 * K, 'gmem', 0)), expect: { errno: 'EINVAL' } },
    { name: 'slot1 over gmem[1M,2M) (adjacent): 0', cite: P7, ...probed, setup: slot0,
      call: set((c) => region(c, 1, 16 * M, 1 * M, 'gmem', 1 * M)), expect: 'ok' },
    { name: 'offset == file size: EINVAL', cite: P7, ...probed, setup: base, call: set((c) => region(c, 0, 0, 4 * K, 'gmem', 2 * M)), expect: { errno: 'EINVAL' } },
    { name: 'offset + size > file size: EINVAL', cite: P7, ...probed, setup: base, call: set((c) => region(c, 0, 0, 2 * M, 'gmem', 4 * K)), expect: { errno: 'EINVAL' } },
    { name: 'offset 2^63: EINVAL', cite: P7, ...probed, setup: base, call: set((c) => region(c, 0, 0, 4 * K, 'gmem', 1n << 63n)), expect: { errno: 'EINVAL' } },
    { name: 'offset + size overflows u64: EINVAL', cite: 'kernel-semantics.md §1.9 Preconditions (no overflow)', ...probed, setup: base,
      call: set((c) => region(c, 0, 0, 8 * K, 'gmem', (1n << 64n) - 4096n)), expect: { errno: 'EINVAL' } },
    { name: 'unaligned offset: EINVAL', cite: P7, ...probed, setup: base, call: with0(() => ({ guest_memfd_offset: 100 })), expect: { errno: 'EINVAL' } },
    { name: 'unaligned size: EINVAL', cite: P7, ...probed, setup: base, call: with0(() => ({ memory_size: 1 * M - 100 })), expect: { errno: 'EINVAL' } },
    { name: 'unaligned gpa: EINVAL', cite: P7, ...probed, setup: base, call: with0(() => ({ guest_phys_addr: 100 })), expect: { errno: 'EINVAL' } },
    { name: 'unaligned uaddr: EINVAL', cite: P7, ...probed, setup: base, call: with0((r) => ({ userspace_addr: BigInt(r.userspace_addr) + 100n })), expect: { errno: 'EINVAL' } },
    { name: 'GPA range overlapping another slot: EEXIST', cite: `${P7} (the only EEXIST case)`, ...probed, setup: slot0,
      call: set((c) => region(c, 1, 512 * K, 1 * M, 'gmem', 1 * M)), expect: { errno: 'EEXIST' } },
    { name: 'GPA overlap with a plain slot: EEXIST', cite: 'kernel-semantics.md §1.9 Errors', ...probed,
      setup: (c) => { base(c); c.anon(1 * M); c.slot(3, 4 * M, 1 * M, null, 0, 'anon'); },
      call: set((c) => region(c, 0, 4 * M, 4 * K, 'gmem', 0)), expect: { errno: 'EEXIST' } },
    { name: 'fd is a pipe (not a guest_memfd): EINVAL', cite: `${P7} (fd is a memfd)`, ...probed, setup: (c) => { base(c); c.vmsplice('map', 0, 1); },
      call: set((c) => ({ ...region(c, 0, 0, 4 * K, 'gmem'), guest_memfd: c.h.pipe! })), expect: { errno: 'EINVAL' } },
    { name: 'fd is a VM fd: EINVAL', cite: `${P7} (fd is the KVM device fd)`, ...probed, setup: base,
      call: set((c) => ({ ...region(c, 0, 0, 4 * K, 'gmem'), guest_memfd: c.h.vm! })), expect: { errno: 'EINVAL' } },
    { name: 'fd not open: EBADF', cite: P7, ...probed, setup: base,
      call: set((c) => ({ ...region(c, 0, 0, 4 * K, 'gmem'), guest_memfd: 99 })), expect: { errno: 'EBADF' } },
    { name: 'guest_memfd created on another VM: EINVAL', cite: P7, ...probed,
      setup: (c) => { base(c); c.vm('default', 'vm2'); }, call: (c) => c.b.setUserMemoryRegion2(c.h.vm2!, region(c, 0, 0, 4 * K, 'gmem')), expect: { errno: 'EINVAL' } },
    { name: 'flags GUEST_MEMFD|READONLY: EINVAL', cite: `${P7}; kernel-semantics.md §1.9 Preconditions`, ...probed, setup: base,
      call: with0(() => ({ flags: GM | MEMSLOT_FLAGS.READONLY })), expect: { errno: 'EINVAL' } },
    { name: 'flags GUEST_MEMFD|LOG_DIRTY_PAGES: EINVAL', cite: P7, ...probed, setup: base,
      call: with0(() => ({ flags: GM | MEMSLOT_FLAGS.LOG_DIRTY_PAGES })), expect: { errno: 'EINVAL' } },
    { name: 'unknown flag bit 1<<3: EINVAL', cite: 'kernel-semantics.md §1.9 Errors (invalid flags)', ...probed, setup: base,
      call: with0(() => ({ flags: GM | 8n })), expect: { errno: 'EINVAL' } },
    { name: 'gmem(flags=0) with uaddr = anon: 0', cite: P7, ...probed,
      setup: (c) => { c.vm(); c.gmem(1 * M, 0n); c.anon(1 * M); }, call: set((c) => region(c, 0, 0, 1 * M, 'gmem', 0, 'anon')), expect: 'ok',
      then: (c) => assert.equal(c.k.vmOfFd(c.h.vm!)!.memslots.get(0)!.gmemOnly, false) },
    { name: 'gmem(flags=0) with uaddr = NULL: 0', cite: P7, ...probed,
      setup: (c) => { c.vm(); c.gmem(1 * M, 0n); }, call: set((c) => region(c, 0, 0, 1 * M, 'gmem', 0, null)), expect: 'ok' },
    { name: 'gmem(MMAP, not shared) with uaddr = NULL: 0', cite: P7, ...probed,
      setup: (c) => { c.vm(); c.gmem(1 * M, MMAP); }, call: set((c) => region(c, 0, 0, 1 * M, 'gmem', 0, null)), expect: 'ok' },
    { name: 'uaddr = an unmapped user address 0xdead000: 0 (only access_ok)', cite: P7, ...probed, setup: base,
      call: set((c) => region(c, 0, 0, 1 * M, 'gmem', 0, 0xdead000)), expect: 'ok' },
    { name: 'uaddr = a kernel address: EINVAL', cite: P7, ...probed, setup: base,
      call: set((c) => region(c, 0, 0, 1 * M, 'gmem', 0, 0xffff888000000000n)), expect: { errno: 'EINVAL' } },
    { name: 'change an existing plain slot to GUEST_MEMFD: EINVAL', cite: P7, ...probed,
      setup: (c) => { base(c); c.anon(1 * M); c.slot(0, 0, 1 * M, null, 0, 'anon'); },
      call: set((c) => region(c, 0, 0, 1 * M, 'gmem', 0, 'anon')), expect: { errno: 'EINVAL' } },
    { name: 'gmem slot: identical re-set: EINVAL (immutable)', cite: `${P7}; kernel-semantics.md I10`, ...probed, setup: slot0,
      call: set((c) => region(c, 0, 0, 1 * M, 'gmem', 0, 'map')), expect: { errno: 'EINVAL' } },
    { name: 'gmem slot: drop the GUEST_MEMFD flag: EINVAL', cite: P7, ...probed, setup: slot0,
      call: with0(() => ({ flags: 0n })), expect: { errno: 'EINVAL' } },
    { name: 'gmem slot: move the GPA: EINVAL', cite: P7, ...probed, setup: slot0,
      call: with0(() => ({ guest_phys_addr: 8 * M })), expect: { errno: 'EINVAL' } },
    { name: 'gmem slot: toggle dirty logging (flag dropped): EINVAL', cite: P7, ...probed, setup: slot0,
      call: with0(() => ({ flags: MEMSLOT_FLAGS.LOG_DIRTY_PAGES })), expect: { errno: 'EINVAL' } },
    { name: 'delete (size 0): 0, binding removed', cite: P7, ...probed, setup: slot0,
      call: with0(() => ({ memory_size: 0 })), expect: 'ok',
      then: (c) => assert.equal(c.k.gmemFile(c.h.gmem!)!.bindings.runs, 0) },
    { name: 'delete, then rebind the same file range to a new slot: 0', cite: P7, ...probed,
      setup: (c) => { slot0(c); c.must(c.b.setUserMemoryRegion2(c.h.vm!, region(c, 0, 0, 0, 'gmem'))); },
      call: set((c) => region(c, 5, 64 * M, 1 * M, 'gmem', 0)), expect: 'ok' },
    { name: 'delete a slot that does not exist: EINVAL', cite: 'kernel-semantics.md §1.9 (kvm_set_memory_region)', ...probed, setup: base,
      call: set((c) => region(c, 7, 0, 0, 'gmem')), expect: { errno: 'EINVAL' } },
    { name: 'delete zaps the slot\'s guest mappings', cite: 'kernel-semantics.md §1.9 Effect', ...probed,
      setup: (c) => { slot0(c); c.guestWrite(0, 'x'); assert.equal(c.sptes(), 1); },
      call: with0(() => ({ memory_size: 0 })), expect: 'ok', then: (c) => assert.equal(c.sptes(), 0) },
    { name: 'bind a 64G sparse gmem at gpa 4G: 0', cite: P7, ...probed,
      setup: (c) => { c.vm(); c.gmem(64 * G, 0n); }, call: set((c) => region(c, 0, 4 * G, 64 * G, 'gmem', 0)), expect: 'ok' },
    { name: 'slot id 32767 (KVM_MEM_SLOTS_NUM): EINVAL', cite: 'kernel-semantics.md §1.9 Errors (slot id out of range)', ...probed, setup: base,
      call: set((c) => region(c, 32767, 0, 4 * K, 'gmem')), expect: { errno: 'EINVAL' } },
    { name: 'default VM, no SMM (the PVM hosts here): address space 1: EINVAL', cite: 'kernel-semantics.md §1.9 Errors (as_id out of range); measured by the linux backend (KVM_CAP_MULTI_ADDRESS_SPACE = 0)', ...probed, setup: base,
      call: set((c) => region(c, 1 << 16, 0, 4 * K, 'gmem')), expect: { errno: 'EINVAL' } },
    { name: 'default VM with SMM: address space 1 accepted', cite: 'kernel-semantics.md §1.9 Errors (as_id out of range)', profile: IPC_V8, setup: base,
      call: set((c) => region(c, 1 << 16, 0, 4 * K, 'gmem')), expect: 'ok' },
    { name: 'default VM: address space 2: EINVAL', cite: 'kernel-semantics.md §1.9 Errors (as_id out of range)', ...probed, setup: base,
      call: set((c) => region(c, 2 << 16, 0, 4 * K, 'gmem')), expect: { errno: 'EINVAL' } },
    { name: 'sw_protected VM: address space 1: EINVAL (one address space with private memory)', cite: 'kernel-semantics.md §1.9 Errors (as_id out of range)', profile: IPC_V8,
      setup: (c) => { c.vm('sw_protected'); c.gmem(16 * K, MMAP | INIT_SHARED); },
      call: set((c) => region(c, 1 << 16, 0, 4 * K, 'gmem')), expect: { errno: 'EINVAL' } },
    { name: 'gpa + size overflows: EINVAL', cite: 'kernel-semantics.md §1.9 Preconditions (no overflow)', ...probed, setup: base,
      call: set((c) => region(c, 0, (1n << 64n) - 4096n, 8 * K, 'gmem')), expect: { errno: 'EINVAL' } },
    { name: 'on a guest_memfd fd: ENOTTY', cite: 'kernel-probe.md §1 (the guest_memfd fd has no ioctls)', ...probed, setup: base,
      call: (c) => c.b.setUserMemoryRegion2(c.h.gmem!, region(c, 0, 0, 4 * K, 'gmem')), expect: { errno: 'ENOTTY' } },
    { name: 'on a closed VM fd: EBADF', cite: 'ioctl(2)', ...probed, setup: (c) => { base(c); c.must(c.b.close(c.h.vm!)); },
      call: set((c) => region(c, 0, 0, 4 * K, 'gmem')), expect: { errno: 'EBADF' } },
    { name: 'plain slot (no GUEST_MEMFD) with READONLY: 0', cite: 'kernel-semantics.md §1.9 Preconditions (READONLY only rejected with GUEST_MEMFD)', ...probed,
      setup: (c) => { c.vm(); c.anon(1 * M); },
      call: set((c) => ({ ...region(c, 0, 0, 1 * M, null, 0, 'anon'), flags: MEMSLOT_FLAGS.READONLY })), expect: 'ok' },
    ...[IPC_V8, RFC_2024, RFC_2025].map((profile): Row => ({
      name: `${profile.name}: overlapping file range still EINVAL`, cite: 'kernel-semantics.md §1.9 Errors (EEXIST only from 7.2)', profile,
      setup: (c) => { c.vm('sw_protected'); c.gmem(16 * K, MMAP | INIT_SHARED); c.slot(0, 0, 8 * K, 'gmem'); },
      call: set((c) => region(c, 1, 1 * M, 4 * K, 'gmem', 4 * K)), expect: { errno: 'EINVAL' },
    })),
  ];
  table(rows);
});
