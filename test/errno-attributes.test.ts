// KVM_SET_MEMORY_ATTRIBUTES (VM ioctl) and KVM_SET_MEMORY_ATTRIBUTES2 (guest_memfd ioctl):
// validation (kernel-semantics.md §1.10(a), (b)), the EAGAIN + error_offset protocol (§4), the
// effects of a conversion (§2.2, I1–I7) and the earlier series' variants (§1.10(c)).
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { MADV } from '../src/model/abi.js';
import { FULL_MACHINE, PROBED_MACHINE } from '../src/model/platform.js';
import { IPC_V8, MAINLINE_6_18, RFC_2024, RFC_2025 } from '../src/model/profile.js';
import { attrs2, bytes, INIT_SHARED, K, M, MMAP, table, type Ctx, type Row } from './table.js';

const B = 'kernel-semantics.md §1.10(b)';
const probed = { profile: MAINLINE_6_18, machine: PROBED_MACHINE };
const vmAttrs = (address: number | bigint, size: number | bigint, attributes: bigint, flags = 0n) => ({ address, size, attributes, flags });
const setVm = (a: ReturnType<typeof vmAttrs>) => (c: Ctx) => c.b.setMemoryAttributes(c.h.vm!, a);
const set2 = (a: ReturnType<typeof attrs2>, fd = 'gmem') => (c: Ctx) => c.b.setMemoryAttributes2(c.h[fd]!, a);
/** sw_protected VM (or `type`), 16K gmem MMAP|INIT_SHARED mapped at `map`. */
const world = (type: 'sw_protected' | 'snp' | 'tdx' | 'default' = 'sw_protected') => (c: Ctx) => {
  c.vm(type); c.gmem(16 * K, MMAP | INIT_SHARED); c.mmap('gmem', 16 * K);
};
const sw = world();

describe('KVM_SET_MEMORY_ATTRIBUTES (per-VM)', () => {
  const rows: Row[] = [
    { name: 'probed machine: PRIVATE: ENOTTY', cite: 'kernel-probe.md §1', ...probed, setup: (c) => { c.vm(); },
      call: setVm(vmAttrs(0, 4 * K, 8n)), expect: { errno: 'ENOTTY' } },
    { name: 'probed machine: attributes 0: ENOTTY', cite: 'kernel-probe.md §1', ...probed, setup: (c) => { c.vm(); },
      call: setVm(vmAttrs(0, 4 * K, 0n)), expect: { errno: 'ENOTTY' } },
    { name: 'ipc-v8: PRIVATE: EINVAL (per-gmem tracking)', cite: 'kernel-semantics.md §1.10(a) IPC change', profile: IPC_V8, setup: (c) => { c.vm('sw_protected'); },
      call: setVm(vmAttrs(0, 4 * K, 8n)), expect: { errno: 'EINVAL' } },
    { name: 'mainline sw_protected: PRIVATE: ok, GPA need not be covered by memslots', cite: 'kernel-semantics.md §1.10(a) Preconditions', profile: MAINLINE_6_18,
      setup: (c) => { c.vm('sw_protected'); }, call: setVm(vmAttrs(1 * M, 8 * K, 8n)), expect: 'ok',
      then: (c) => assert.equal(c.k.vmOfFd(c.h.vm!)!.attributes.get(256), 'private') },
    { name: 'mainline default VM: PRIVATE: EINVAL (no private memory)', cite: 'kernel-semantics.md §1.10(a) Preconditions', profile: MAINLINE_6_18,
      setup: (c) => { c.vm('default'); }, call: setVm(vmAttrs(0, 4 * K, 8n)), expect: { errno: 'EINVAL' } },
    { name: 'mainline: flags != 0: EINVAL', cite: 'kernel-semantics.md §1.10(a)', profile: MAINLINE_6_18, setup: (c) => { c.vm('sw_protected'); },
      call: setVm(vmAttrs(0, 4 * K, 8n, 1n)), expect: { errno: 'EINVAL' } },
    { name: 'mainline: unknown attribute bit 1<<0: EINVAL', cite: 'kernel-semantics.md §1.10(a)', profile: MAINLINE_6_18, setup: (c) => { c.vm('sw_protected'); },
      call: setVm(vmAttrs(0, 4 * K, 1n)), expect: { errno: 'EINVAL' } },
    { name: 'mainline: size 0: EINVAL', cite: 'kernel-semantics.md §1.10(a)', profile: MAINLINE_6_18, setup: (c) => { c.vm('sw_protected'); },
      call: setVm(vmAttrs(0, 0, 8n)), expect: { errno: 'EINVAL' } },
    { name: 'mainline: address + size overflows: EINVAL', cite: 'kernel-semantics.md §1.10(a)', profile: MAINLINE_6_18, setup: (c) => { c.vm('sw_protected'); },
      call: setVm(vmAttrs((1n << 64n) - 4096n, 8 * K, 8n)), expect: { errno: 'EINVAL' } },
    { name: 'mainline: unaligned address: EINVAL', cite: 'kernel-semantics.md §1.10(a)', profile: MAINLINE_6_18, setup: (c) => { c.vm('sw_protected'); },
      call: setVm(vmAttrs(100, 4 * K, 8n)), expect: { errno: 'EINVAL' } },
    { name: 'mainline: unaligned size: EINVAL', cite: 'kernel-semantics.md §1.10(a)', profile: MAINLINE_6_18, setup: (c) => { c.vm('sw_protected'); },
      call: setVm(vmAttrs(0, 100, 8n)), expect: { errno: 'EINVAL' } },
    { name: 'mainline: does not look at host mappings or pins', cite: 'kernel-semantics.md §1.10(a) Effect', profile: MAINLINE_6_18,
      setup: (c) => { c.vm('sw_protected'); c.anon(16 * K); c.slot(0, 0, 16 * K, null, 0, 'anon'); c.pin('anon', 0, 16 * K); },
      call: setVm(vmAttrs(0, 16 * K, 8n)), expect: 'ok' },
    { name: 'mainline: zaps guest mappings of the range', cite: 'kernel-semantics.md §1.10(a) Effect', profile: MAINLINE_6_18,
      setup: (c) => { c.vm('sw_protected'); c.gmem(16 * K, MMAP); c.slot(0, 0, 16 * K, 'gmem'); c.guestWrite(0, 'x'); assert.equal(c.sptes(), 1); },
      call: setVm(vmAttrs(0, 4 * K, 8n)), expect: 'ok', then: (c) => assert.equal(c.sptes(), 0) },
    { name: 'on a guest_memfd fd: ENOTTY', cite: 'kernel-probe.md §1 (the guest_memfd fd has no ioctls)', profile: MAINLINE_6_18,
      setup: (c) => { c.vm('sw_protected'); c.gmem(16 * K, MMAP); }, call: (c) => c.b.setMemoryAttributes(c.h.gmem!, vmAttrs(0, 4 * K, 8n)), expect: { errno: 'ENOTTY' } },
    { name: 'on a closed fd: EBADF', cite: 'ioctl(2)', profile: MAINLINE_6_18,
      setup: (c) => { c.vm('sw_protected'); c.must(c.b.close(c.h.vm!)); }, call: setVm(vmAttrs(0, 4 * K, 8n)), expect: { errno: 'EBADF' } },
  ];
  table(rows);
});

describe('KVM_SET_MEMORY_ATTRIBUTES2: validation', () => {
  const rows: Row[] = [
    { name: 'mainline: ENOTTY (no guest_memfd ioctls)', cite: 'kernel-probe.md §1 (sweep of 0xd0..0xdf: ENOTTY)', ...probed,
      setup: (c) => { c.vm(); c.gmem(16 * K, MMAP | INIT_SHARED); }, call: set2(attrs2(0, 4 * K, true)), expect: { errno: 'ENOTTY' } },
    { name: 'rfc-2024: ENOTTY (conversion is the VM ioctl)', cite: 'kernel-semantics.md §1.10(c) [RFC24]', profile: RFC_2024, setup: sw,
      call: set2(attrs2(0, 4 * K, true)), expect: { errno: 'ENOTTY' } },
    { name: 'on a VM fd: ENOTTY', cite: `${B} (issued on the gmem fd), §5.1`, profile: IPC_V8, setup: sw,
      call: set2(attrs2(0, 4 * K, true), 'vm'), expect: { errno: 'ENOTTY' } },
    { name: 'on a closed fd: EBADF', cite: 'ioctl(2)', profile: IPC_V8, setup: (c) => { sw(c); c.must(c.b.close(c.h.gmem!)); },
      call: set2(attrs2(0, 4 * K, true)), expect: { errno: 'EBADF' } },
    { name: 'flags = 1: EINVAL, no error_offset', cite: `${B} Validation errors`, profile: IPC_V8, setup: sw,
      call: set2(attrs2(0, 4 * K, true, { flags: 1n })), expect: { errno: 'EINVAL', noOut: true } },
    { name: 'flags = 1<<63: EINVAL', cite: `${B} Validation errors`, profile: IPC_V8, setup: sw,
      call: set2(attrs2(0, 4 * K, true, { flags: 1n << 63n })), expect: { errno: 'EINVAL', noOut: true } },
    ...[0, 5, 10].map((i): Row => ({
      name: `reserved[${i}] != 0: EINVAL`, cite: `${B} Validation errors; §5.5 kvm_memory_attributes2`, profile: IPC_V8, setup: sw,
      call: set2(attrs2(0, 4 * K, true, { reserved: Array.from({ length: 11 }, (_, j) => (j === i ? 1n : 0n)) })), expect: { errno: 'EINVAL', noOut: true },
    })),
    { name: 'reserved all zero: ok', cite: `${B} Input`, profile: IPC_V8, setup: sw,
      call: set2(attrs2(0, 4 * K, true, { reserved: new Array<bigint>(11).fill(0n) })), expect: 'ok' },
    { name: 'default VM (no private memory): EINVAL', cite: `${B} Validation errors`, profile: IPC_V8, setup: world('default'),
      call: set2(attrs2(0, 4 * K, true)), expect: { errno: 'EINVAL', noOut: true } },
    { name: 'default VM, to shared: EINVAL too', cite: `${B} Validation errors`, profile: IPC_V8, setup: world('default'),
      call: set2(attrs2(0, 4 * K, false)), expect: { errno: 'EINVAL' } },
    ...[1n, 1n << 4n, 1n << 63n, 8n | 1n].map((bits): Row => ({
      name: `unknown attribute bits 0x${bits.toString(16)}: EINVAL`, cite: `${B} Validation errors`, profile: IPC_V8, setup: sw,
      call: set2(attrs2(0, 4 * K, true, { attributes: bits })), expect: { errno: 'EINVAL', noOut: true },
    })),
    { name: 'size 0: EINVAL', cite: `${B} Validation errors`, profile: IPC_V8, setup: sw, call: set2(attrs2(0, 0, true)), expect: { errno: 'EINVAL', noOut: true } },
    { name: 'offset + size overflows: EINVAL', cite: `${B} Validation errors`, profile: IPC_V8, setup: sw,
      call: set2(attrs2((1n << 64n) - 4096n, 8 * K, true)), expect: { errno: 'EINVAL', noOut: true } },
    { name: 'unaligned offset: EINVAL', cite: `${B} Validation errors`, profile: IPC_V8, setup: sw, call: set2(attrs2(100, 4 * K, true)), expect: { errno: 'EINVAL', noOut: true } },
    { name: 'unaligned size: EINVAL', cite: `${B} Validation errors`, profile: IPC_V8, setup: sw, call: set2(attrs2(0, 100, true)), expect: { errno: 'EINVAL', noOut: true } },
    { name: 'offset == i_size: EINVAL', cite: `${B} Validation errors`, profile: IPC_V8, setup: sw, call: set2(attrs2(16 * K, 4 * K, true)), expect: { errno: 'EINVAL', noOut: true } },
    { name: 'offset + size > i_size: EINVAL', cite: `${B} Validation errors`, profile: IPC_V8, setup: sw, call: set2(attrs2(12 * K, 8 * K, true)), expect: { errno: 'EINVAL', noOut: true } },
    { name: 'a failed validation changes nothing and zaps nothing', cite: `${B} Validation errors`, profile: IPC_V8,
      setup: (c) => { sw(c); c.write('map', 0, 'v'); }, call: set2(attrs2(0, 20 * K, true)), expect: { errno: 'EINVAL' },
      then: (c) => { assert.equal(c.ptes('map'), 1); assert.equal(c.attr('gmem', 0), 'shared'); } },
    { name: 'whole file to private: ok', cite: `${B} Algorithm`, profile: IPC_V8, setup: sw, call: set2(attrs2(0, 16 * K, true)), expect: 'ok',
      then: (c) => assert.ok([0, 4, 8, 12].every((p) => c.attr('gmem', p * K) === 'private')) },
    { name: 'rfc-2025: size 0 is a successful no-op', cite: 'kernel-semantics.md §1.10(c) [RFC25]', profile: RFC_2025, setup: sw,
      call: set2(attrs2(0, 0, true)), expect: 'ok', then: (c) => assert.equal(c.attr('gmem', 0), 'shared') },
    { name: 'rfc-2025: unaligned offset still EINVAL', cite: 'kernel-semantics.md §1.10(c) [RFC25]', profile: RFC_2025, setup: sw,
      call: set2(attrs2(100, 4 * K, true)), expect: { errno: 'EINVAL' } },
  ];
  table(rows);
});

describe('KVM_SET_MEMORY_ATTRIBUTES2: blocked conversions (EAGAIN + error_offset)', () => {
  const S4 = 'kernel-semantics.md §4; §1.10(b) Algorithm step 4';
  const rows: Row[] = [
    { name: 'long-term pin on page 1: EAGAIN, error_offset 4K', cite: `${S4}; selftest guest_memfd_conversions_test (elevated refcount, v8 39/46)`, profile: IPC_V8,
      setup: (c) => { sw(c); c.pin('map', 4 * K, 4 * K); }, call: set2(attrs2(0, 16 * K, true)), expect: { errno: 'EAGAIN', out: { error_offset: 4096n } } },
    { name: 'pins on pages 1 and 3: error_offset is the first, 4K', cite: S4, profile: IPC_V8,
      setup: (c) => { sw(c); c.pin('map', 12 * K, 4 * K, true, 'p3'); c.pin('map', 4 * K, 4 * K, true, 'p1'); },
      call: set2(attrs2(0, 16 * K, true)), expect: { errno: 'EAGAIN', out: { error_offset: 4096n } } },
    { name: 'pins on pages 1 and 3, range [8K,16K): error_offset 12K', cite: S4, profile: IPC_V8,
      setup: (c) => { sw(c); c.pin('map', 12 * K, 4 * K, true, 'p3'); c.pin('map', 4 * K, 4 * K, true, 'p1'); },
      call: set2(attrs2(8 * K, 8 * K, true)), expect: { errno: 'EAGAIN', out: { error_offset: 12288n } } },
    { name: 'short-term pin: EAGAIN', cite: 'kernel-semantics.md §1.11 (short-term pins make the page unsafe)', profile: IPC_V8,
      setup: (c) => { sw(c); c.pin('map', 0, 4 * K, false); }, call: set2(attrs2(0, 4 * K, true)), expect: { errno: 'EAGAIN', out: { error_offset: 0n } } },
    { name: 'vmsplice (FOLL_GET) reference: EAGAIN', cite: 'kernel-semantics.md I2 (any reference besides the page cache)', profile: IPC_V8,
      setup: (c) => { sw(c); c.vmsplice('map', 8 * K, 4 * K); }, call: set2(attrs2(0, 16 * K, true)), expect: { errno: 'EAGAIN', out: { error_offset: 8192n } } },
    { name: 'a page that is only mapped: ok (the mapping is zapped first)', cite: `${B} Algorithm step 4`, profile: IPC_V8,
      setup: (c) => { sw(c); c.write('map', 0, 'm'); }, call: set2(attrs2(0, 16 * K, true)), expect: 'ok', then: (c) => assert.equal(c.ptes('map'), 0) },
    { name: 'EAGAIN leaves every attribute unchanged', cite: 'kernel-semantics.md I4', profile: IPC_V8,
      setup: (c) => { sw(c); c.pin('map', 8 * K, 4 * K); }, call: set2(attrs2(0, 16 * K, true)), expect: { errno: 'EAGAIN' },
      then: (c) => assert.ok([0, 4, 8, 12].every((p) => c.attr('gmem', p * K) === 'shared')) },
    { name: 'host mappings are zapped even when the call fails', cite: 'kernel-semantics.md I4, §1.10(b) Algorithm step 4', profile: IPC_V8,
      setup: (c) => { sw(c); c.write('map', 0, 'a'); c.write('map', 4 * K, 'b'); c.pin('map', 8 * K, 4 * K); assert.equal(c.ptes('map'), 3); },
      call: set2(attrs2(0, 16 * K, true)), expect: { errno: 'EAGAIN' },
      then: (c) => {
        assert.equal(c.ptes('map'), 0, 'all PTEs of the range were zapped');
        assert.equal(new TextDecoder().decode(c.read('map', 0, 1)), 'a', 'they re-fault: the attribute is still SHARED');
      } },
    { name: 'v8 leaves guest mappings untouched when the call fails', cite: `${B} Algorithm step 4 (SPTEs untouched, v8)`, profile: IPC_V8,
      setup: (c) => { sw(c); c.slot(0, 0, 16 * K, 'gmem'); c.guestWrite(0, 'g'); c.pin('map', 4 * K, 4 * K); },
      call: set2(attrs2(0, 16 * K, true)), expect: { errno: 'EAGAIN' }, then: (c) => assert.equal(c.sptes(), 1) },
    { name: 'after unpinning, the retry succeeds', cite: `${B} Userspace contract`, profile: IPC_V8,
      setup: (c) => { sw(c); c.pin('map', 4 * K, 4 * K); assert.ok(!c.b.setMemoryAttributes2(c.h.gmem!, attrs2(0, 16 * K, true)).ok); c.must(c.b.unpinUserPages(c.h.pin!)); },
      call: set2(attrs2(0, 16 * K, true)), expect: 'ok' },
    { name: 'after reading the pipe (dropping its references), the retry succeeds', cite: `${B} Userspace contract`, profile: IPC_V8,
      setup: (c) => { sw(c); c.vmsplice('map', 0, 4 * K); c.must(c.b.fdRead(c.h.pipe!)); },
      call: set2(attrs2(0, 16 * K, true)), expect: 'ok' },
    { name: 'a pinned page outside the range does not block', cite: `${B} Algorithm step 4`, profile: IPC_V8,
      setup: (c) => { sw(c); c.pin('map', 12 * K, 4 * K); }, call: set2(attrs2(0, 12 * K, true)), expect: 'ok' },
    { name: 'a detached (punched) pinned folio does not block', cite: 'kernel-probe.md §6 (the punched folio leaves the file); §1.10(b) step 4', profile: IPC_V8,
      setup: (c) => { sw(c); c.pin('map', 0, 4 * K); c.punch('gmem', 0, 4 * K); }, call: set2(attrs2(0, 4 * K, true)), expect: 'ok' },
    { name: 'to shared is never blocked (I3): a pinned shared page in the range', cite: 'kernel-semantics.md I3; §1.10(b) Algorithm step 5', profile: IPC_V8,
      setup: (c) => { sw(c); c.convert('gmem', 4 * K, 4 * K, true); c.pin('map', 0, 4 * K); },
      call: set2(attrs2(0, 16 * K, false)), expect: 'ok', then: (c) => assert.equal(c.attr('gmem', 4 * K), 'shared') },
    { name: 'no-op when nothing changes: no zap, no check', cite: `${B} Algorithm step 2`, profile: IPC_V8,
      setup: (c) => { sw(c); c.write('map', 0, 'n'); c.pin('map', 4 * K, 4 * K); },
      call: set2(attrs2(0, 16 * K, false)), expect: 'ok', then: (c) => assert.equal(c.ptes('map'), 2) },
    { name: 'already private: ok', cite: `${B} Algorithm step 2`, profile: IPC_V8,
      setup: (c) => { sw(c); c.convert('gmem', 0, 16 * K, true); }, call: set2(attrs2(0, 16 * K, true)), expect: 'ok' },
    { name: 'unallocated pages: the conversion is recorded', cite: `${B} Unallocated pages ("before_allocation")`, profile: IPC_V8,
      setup: (c) => { c.vm('sw_protected'); c.gmem(16 * K, MMAP | INIT_SHARED); }, call: set2(attrs2(4 * K, 8 * K, true)), expect: 'ok',
      then: (c) => {
        assert.equal(c.cached(), 0);
        assert.deepEqual([0, 4, 8, 12].map((p) => c.attr('gmem', p * K)), ['shared', 'private', 'private', 'shared']);
      } },
    { name: 'a successful conversion zaps guest mappings', cite: `${B} Algorithm step 5; I8`, profile: IPC_V8,
      setup: (c) => { sw(c); c.slot(0, 0, 16 * K, 'gmem'); c.guestWrite(0, 'g'); c.guestWrite(8 * K, 'h'); },
      call: set2(attrs2(0, 4 * K, true)), expect: 'ok', then: (c) => assert.equal(c.sptes(), 1) },
    { name: 'rfc-2025: pinned page: EAGAIN + error_offset', cite: 'kernel-semantics.md §4 [RFC25], §1.10(c)', profile: RFC_2025,
      setup: (c) => { sw(c); c.pin('map', 8 * K, 4 * K); }, call: set2(attrs2(0, 16 * K, true)), expect: { errno: 'EAGAIN', out: { error_offset: 8192n } } },
    { name: 'rfc-2025: a failed conversion also zaps guest mappings', cite: 'kernel-semantics.md §1.10(c) [RFC25] (zapped before the check)', profile: RFC_2025,
      setup: (c) => { sw(c); c.slot(0, 0, 16 * K, 'gmem'); c.guestWrite(0, 'g'); c.pin('map', 4 * K, 4 * K); },
      call: set2(attrs2(0, 16 * K, true)), expect: { errno: 'EAGAIN' }, then: (c) => assert.equal(c.sptes(), 0) },
  ];
  table(rows);
});

describe('KVM_SET_MEMORY_ATTRIBUTES2: what conversions preserve', () => {
  const I7 = 'kernel-semantics.md I7';
  const rows: Row[] = [
    { name: 'attributes survive PUNCH_HOLE', cite: 'kernel-semantics.md I5, §1.7 Effect (IPC)', profile: IPC_V8,
      setup: (c) => { sw(c); c.convert('gmem', 0, 8 * K, true); }, call: (c) => c.b.fallocate(c.h.gmem!, 3, 0, 16 * K), expect: 'ok',
      then: (c) => assert.deepEqual([0, 4, 8].map((p) => c.attr('gmem', p * K)), ['private', 'private', 'shared']) },
    { name: 'attributes survive memslot delete', cite: 'kernel-semantics.md I5, §1.9 Effect', profile: IPC_V8,
      setup: (c) => { sw(c); c.slot(0, 0, 16 * K, 'gmem'); c.convert('gmem', 4 * K, 4 * K, true); },
      call: (c) => c.b.setUserMemoryRegion2(c.h.vm!, { slot: 0, flags: 4n, guest_phys_addr: 0, memory_size: 0, userspace_addr: 0, guest_memfd: c.h.gmem!, guest_memfd_offset: 0 }),
      expect: 'ok', then: (c) => assert.equal(c.attr('gmem', 4 * K), 'private') },
    { name: 'attributes survive a new binding at another GPA', cite: 'kernel-semantics.md I5', profile: IPC_V8,
      setup: (c) => { sw(c); c.convert('gmem', 4 * K, 4 * K, true); c.slot(0, 0, 16 * K, 'gmem'); },
      call: (c) => c.b.guestRead(c.h.vm!, 4 * K, 1), expect: { bytes: [0] },
      then: (c) => assert.equal(c.k.vmOfFd(c.h.vm!)!.sptes.get(1)!.private, true, 'the guest maps it private') },
    ...(['sw_protected'] as const).map((t): Row => ({
      name: `${t}: content preserved to private and back`, cite: `${I7} (SW_PROTECTED: preserved both ways)`, profile: IPC_V8,
      setup: (c) => { world(t)(c); c.write('map', 0, 'keep'); c.convert('gmem', 0, 4 * K, true); c.convert('gmem', 0, 4 * K, false); },
      call: (c) => c.b.hostRead(c.h.map!, 4), expect: { data: 'keep' },
    })),
    { name: 'sw_protected: the guest sees the host\'s data after to-private', cite: `${I7}`, profile: IPC_V8,
      setup: (c) => { sw(c); c.slot(0, 0, 16 * K, 'gmem'); c.write('map', 0, 'host'); c.convert('gmem', 0, 4 * K, true); },
      call: (c) => c.b.guestRead(c.h.vm!, 0, 4), expect: { data: 'host' } },
    ...(['snp', 'tdx'] as const).flatMap((t): Row[] => [
      { name: `${t}: to private destroys the content (reads zero in the guest)`, cite: `${I7} (SNP/TDX destructive; the model shows zeros)`, profile: IPC_V8,
        setup: (c) => { world(t)(c); c.slot(0, 0, 16 * K, 'gmem'); c.write('map', 0, 'gone'); c.convert('gmem', 0, 4 * K, true); },
        call: (c) => c.b.guestRead(c.h.vm!, 0, 4, true), expect: { fill: 0, length: 4 } },
      { name: `${t}: to shared destroys the content (host reads zero)`, cite: `${I7}`, profile: IPC_V8,
        setup: (c) => { world(t)(c); c.slot(0, 0, 16 * K, 'gmem'); c.convert('gmem', 0, 4 * K, true); c.guestWrite(0, 'secret', true); c.convert('gmem', 0, 4 * K, false); },
        call: (c) => c.b.hostRead(c.h.map!, 6), expect: { fill: 0, length: 6 } },
      { name: `${t}: in a mixed range, pages whose attribute does not change keep their content`, cite: `${I7}`, profile: IPC_V8,
        setup: (c) => { world(t)(c); c.convert('gmem', 0, 4 * K, true); c.write('map', 4 * K, 'stay'); c.convert('gmem', 0, 8 * K, false); },
        call: (c) => c.b.hostRead(c.h.map! + 4 * K, 4), expect: { data: 'stay' } },
    ]),
  ];
  table(rows);
});

describe('rfc-2024: conversion through KVM_SET_MEMORY_ATTRIBUTES', () => {
  const R = 'kernel-semantics.md §1.10(c) [RFC24]';
  const bound = (c: Ctx) => { sw(c); c.slot(0, 0, 16 * K, 'gmem', 0, 'map'); };
  const rows: Row[] = [
    { name: 'unmapped, unpinned range to private: ok, host faultability flipped', cite: R, profile: RFC_2024, setup: bound,
      call: setVm(vmAttrs(0, 16 * K, 8n)), expect: 'ok',
      then: (c) => {
        assert.equal(c.attr('gmem', 0), 'private');
        const r = c.b.hostRead(c.h.map!, 1);
        assert.ok(!r.ok && 'signal' in r && r.signal === 'SIGBUS');
      } },
    { name: 'a mapped page: EINVAL without error_offset (no auto zap)', cite: `${R}; kernel-semantics.md §4 [RFC24]`, profile: RFC_2024,
      setup: (c) => { bound(c); c.write('map', 4 * K, 'm'); }, call: setVm(vmAttrs(0, 16 * K, 8n)), expect: { errno: 'EINVAL', noOut: true },
      then: (c) => { assert.equal(c.ptes('map'), 1, 'mapped pages are not auto-unmapped'); assert.equal(c.attr('gmem', 0), 'shared'); } },
    { name: 'a pinned page: EINVAL', cite: R, profile: RFC_2024,
      setup: (c) => { bound(c); c.pin('map', 0, 4 * K); c.must(c.b.madvise(c.h.map!, 16 * K, MADV.DONTNEED)); },
      call: setVm(vmAttrs(0, 16 * K, 8n)), expect: { errno: 'EINVAL', noOut: true } },
    { name: 'after MADV_DONTNEED, the mapped page converts', cite: `${R} (userspace was expected to MADV_DONTNEED first)`, profile: RFC_2024,
      setup: (c) => { bound(c); c.write('map', 4 * K, 'm'); c.must(c.b.madvise(c.h.map!, 16 * K, MADV.DONTNEED)); },
      call: setVm(vmAttrs(0, 16 * K, 8n)), expect: 'ok' },
    { name: 'vmsplice FOLL_GET references are not detected: the conversion succeeds and breaks I2', cite: `${R} (plain FOLL_GET refs were not detected); kernel-semantics.md I2`, profile: RFC_2024,
      setup: (c) => { bound(c); c.vmsplice('map', 0, 4 * K); c.must(c.b.madvise(c.h.map!, 16 * K, MADV.DONTNEED)); },
      call: setVm(vmAttrs(0, 16 * K, 8n)), expect: 'ok', violations: ['I2'],
      then: (c) => assert.equal(c.attr('gmem', 0), 'private') },
    { name: 'to shared makes the pages host-faultable again', cite: R, profile: RFC_2024,
      setup: (c) => { bound(c); c.must(c.b.setMemoryAttributes(c.h.vm!, vmAttrs(0, 16 * K, 8n))); },
      call: setVm(vmAttrs(0, 16 * K, 0n)), expect: 'ok', then: (c) => assert.deepEqual([...c.read('map', 0, 1)], [0]) },
    { name: 'the per-VM attribute is what the guest sees', cite: `${R}; kernel-semantics.md §1.4`, profile: RFC_2024,
      setup: (c) => { world('snp')(c); c.slot(0, 0, 16 * K, 'gmem'); c.must(c.b.setMemoryAttributes(c.h.vm!, vmAttrs(0, 4 * K, 8n))); },
      call: (c) => c.b.guestRead(c.h.vm!, 0, 1, false), expect: { exit: 'MEMORY_FAULT', gpa: 0n, private: false } },
    { name: 'a range with no memslot only changes the per-VM attribute', cite: `${R}; §1.10(a) (GPA need not be covered)`, profile: RFC_2024, setup: bound,
      call: setVm(vmAttrs(1 * M, 16 * K, 8n)), expect: 'ok', then: (c) => assert.equal(c.attr('gmem', 0), 'shared') },
  ];
  table(rows);
});

describe('host view after conversions (ipc-v8)', () => {
  table([
    { name: 'GUP (pin) of a private page: EFAULT', cite: 'kernel-semantics.md §1.11 (private index: fault → SIGBUS → GUP fails)', profile: IPC_V8,
      setup: (c) => { sw(c); c.convert('gmem', 0, 4 * K, true); }, call: (c) => c.b.pinUserPages(c.h.map!, 4 * K, true), expect: { errno: 'EFAULT' } },
    { name: 'a host write after to-shared faults in the page again', cite: 'kernel-semantics.md §2.2 (host fault guard: attr SHARED)', profile: IPC_V8,
      setup: (c) => { sw(c); c.convert('gmem', 0, 4 * K, true); c.convert('gmem', 0, 4 * K, false); },
      call: (c) => c.b.hostWrite(c.h.map!, bytes('w')), expect: 'ok' },
    { name: 'machine without private VM types: ipc-v8 conversion of a default-VM gmem is EINVAL', cite: `${B} Validation errors (VM without private memory)`,
      profile: IPC_V8, machine: PROBED_MACHINE, setup: (c) => { c.vm(); c.gmem(16 * K, MMAP | INIT_SHARED); },
      call: set2(attrs2(0, 4 * K, true)), expect: { errno: 'EINVAL' } },
    { name: 'full machine is the default for the other rows', cite: 'platform.ts FULL_MACHINE', profile: IPC_V8, machine: FULL_MACHINE,
      setup: (c) => { c.vm('tdx'); }, call: (c) => c.b.checkExtension(250, c.h.vm), expect: { value: 8n } },
  ]);
});
