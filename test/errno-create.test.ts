// KVM_CREATE_VM, KVM_CHECK_EXTENSION and KVM_CREATE_GUEST_MEMFD: argument validation, the
// capabilities per profile and VM type, and which flags each VM type accepts.
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { CAPS, GMEM_FLAGS, VM_TYPES, type VmTypeName } from '../src/model/abi.js';
import { FULL_MACHINE, PROBED_MACHINE } from '../src/model/platform.js';
import { IPC_V8, MAINLINE_6_18, RFC_2024, RFC_2025 } from '../src/model/profile.js';
import { G, INIT_SHARED, K, M, MMAP, PAGE, table, type Row } from './table.js';

const probed = { profile: MAINLINE_6_18, machine: PROBED_MACHINE };

describe('KVM_CREATE_VM', () => {
  const rows: Row[] = [
    { name: 'type 0 (default) on the probed machine', cite: 'kernel-probe.md §1', ...probed,
      call: (c) => c.b.createVm(0), expect: 'ok' },
    ...[1, 2, 3, 4, 5, 6, 0x100].map((t): Row => ({
      name: `type ${t} refused on the probed machine`, cite: 'kernel-probe.md §1', ...probed,
      call: (c) => c.b.createVm(t), expect: { errno: 'EINVAL' },
    })),
    ...(['default', 'sw_protected', 'snp', 'tdx'] as const).map((t): Row => ({
      name: `${t} accepted on a machine with every modelled type`, cite: 'kernel-semantics.md §5.2 (x86 VM types)',
      call: (c) => c.b.createVm(VM_TYPES[t]), expect: 'ok',
    })),
    ...(['sev', 'sev_es'] as const).map((t): Row => ({
      name: `${t} refused (no guest_memfd support; not modelled)`, cite: 'abi.ts MODELLED_VM_TYPES (model scope)',
      call: (c) => c.b.createVm(VM_TYPES[t]), expect: { errno: 'EINVAL' },
    })),
  ];
  table(rows);
});

describe('KVM_CHECK_EXTENSION', () => {
  const dev = (cap: number, value: bigint, extra: Partial<Row> & { name?: string; cite: string }): Row => ({
    name: `device: cap ${cap} = ${value}`, call: (c) => c.b.checkExtension(cap), expect: { value }, ...extra,
  });
  const onVm = (type: VmTypeName, cap: number, value: bigint, extra: Partial<Row> & { cite: string }): Row => ({
    name: `${type} VM: cap ${cap} = ${value}`, setup: (c) => { c.vm(type); },
    call: (c) => c.b.checkExtension(cap, c.h.vm), expect: { value }, ...extra,
  });
  const rows: Row[] = [
    // kernel-probe §1: the device answers on this machine.
    dev(CAPS.USER_MEMORY2, 1n, { cite: 'kernel-probe.md §1', ...probed }),
    dev(CAPS.MEMORY_FAULT_INFO, 1n, { cite: 'kernel-probe.md §1', ...probed }),
    dev(CAPS.MEMORY_ATTRIBUTES, 0n, { cite: 'kernel-probe.md §1', ...probed }),
    dev(CAPS.GUEST_MEMFD, 1n, { cite: 'kernel-probe.md §1', ...probed }),
    dev(CAPS.VM_TYPES, 1n, { cite: 'kernel-probe.md §1', ...probed }),
    dev(CAPS.PRE_FAULT_MEMORY, 0n, { cite: 'kernel-probe.md §1', ...probed }),
    dev(CAPS.GUEST_MEMFD_FLAGS, 3n, { cite: 'kernel-probe.md §1', ...probed }),
    onVm('default', CAPS.MEMORY_ATTRIBUTES, 0n, { name: 'probed VM fd: MEMORY_ATTRIBUTES = 0 (same as the device)', cite: 'kernel-probe.md §1', ...probed }),
    onVm('default', CAPS.GUEST_MEMFD_FLAGS, 3n, { name: 'probed VM fd: GUEST_MEMFD_FLAGS = 3 (same as the device)', cite: 'kernel-probe.md §1', ...probed }),
    dev(250, 0n, { name: 'probed, ipc-v8: cap 250 = 0 without a private-memory VM type', cite: 'kernel-semantics.md §1.10(b) Enablement', profile: IPC_V8, machine: PROBED_MACHINE }),

    // Full machine, mainline.
    dev(CAPS.VM_TYPES, 0x33n, { name: 'full machine: VM_TYPES = bits 0, 1, 4, 5', cite: 'kernel-semantics.md §5.3 (bit n = type n)', profile: MAINLINE_6_18 }),
    dev(CAPS.MEMORY_ATTRIBUTES, 8n, { name: 'mainline device: MEMORY_ATTRIBUTES = PRIVATE', cite: 'kernel-semantics.md §5.3 (8 on VMs with private mem)', profile: MAINLINE_6_18 }),
    onVm('sw_protected', CAPS.MEMORY_ATTRIBUTES, 8n, { cite: 'kernel-semantics.md §1.10(a), §5.3', profile: MAINLINE_6_18 }),
    onVm('default', CAPS.MEMORY_ATTRIBUTES, 0n, { cite: 'kernel-semantics.md §1.10(a) (PRIVATE only on VMs with private memory)', profile: MAINLINE_6_18 }),
    onVm('default', CAPS.GUEST_MEMFD_FLAGS, 3n, { name: 'mainline default VM: GUEST_MEMFD_FLAGS = MMAP|INIT_SHARED', cite: 'kernel-semantics.md §1.1 Supported flags (M)', profile: MAINLINE_6_18 }),
    ...(['sw_protected', 'snp', 'tdx'] as const).map((t) =>
      onVm(t, CAPS.GUEST_MEMFD_FLAGS, 1n, { name: `mainline ${t} VM: GUEST_MEMFD_FLAGS = MMAP only`, cite: 'kernel-semantics.md §1.1 Supported flags (M)', profile: MAINLINE_6_18 })),
    ...(['default', 'sw_protected', 'snp', 'tdx'] as const).map((t) =>
      onVm(t, CAPS.GUEST_MEMFD, 1n, { name: `mainline ${t} VM: GUEST_MEMFD = 1`, cite: 'kernel-semantics.md §1.1 Preconditions, §5.3', profile: MAINLINE_6_18 })),
    ...(['default', 'sw_protected', 'snp', 'tdx'] as const).map((t) =>
      onVm(t, CAPS.VM_TYPES, 0x33n, { name: `ipc-v8 ${t} VM: VM_TYPES = 0x33 (same on every fd)`, cite: 'kernel-semantics.md §5.3', profile: IPC_V8 })),
    onVm('sw_protected', 250, 0n, { name: 'mainline: cap 250 unknown = 0', cite: 'kernel-semantics.md §5.4 (in-flight numbers)', profile: MAINLINE_6_18 }),
    dev(9999, 0n, { name: 'unknown capability = 0', cite: 'kernel-semantics.md §5.3', profile: MAINLINE_6_18 }),

    // ipc-v8.
    onVm('sw_protected', CAPS.MEMORY_ATTRIBUTES, 0n, { name: 'ipc-v8 sw_protected VM: MEMORY_ATTRIBUTES = 0 (per-gmem tracking)', cite: 'kernel-semantics.md §1.10(a) IPC change', profile: IPC_V8 }),
    ...(['sw_protected', 'snp', 'tdx'] as const).map((t) =>
      onVm(t, 250, 8n, { name: `ipc-v8 ${t} VM: GUEST_MEMFD_MEMORY_ATTRIBUTES (250) = PRIVATE`, cite: 'kernel-semantics.md §1.10(b) Enablement, §5.4', profile: IPC_V8 })),
    onVm('default', 250, 0n, { name: 'ipc-v8 default VM: cap 250 = 0', cite: 'kernel-semantics.md §1.10(b) Enablement', profile: IPC_V8 }),
    ...(['sw_protected', 'snp', 'tdx'] as const).map((t) =>
      onVm(t, CAPS.GUEST_MEMFD_FLAGS, 3n, { name: `ipc-v8 ${t} VM: GUEST_MEMFD_FLAGS = MMAP|INIT_SHARED`, cite: 'kernel-semantics.md §1.1 Supported flags (IPC), v8 25/46', profile: IPC_V8 })),
    onVm('sw_protected', 250, 0n, { name: 'rfc-2025: cap 250 does not exist', cite: 'kernel-semantics.md §5.4', profile: RFC_2025 }),

    // fds that are not VMs.
    { name: 'on a guest_memfd fd: ENOTTY', cite: 'kernel-probe.md §1 (the guest_memfd fd has no ioctls)', ...probed,
      setup: (c) => { c.vm(); c.gmem(4 * K, 0n); }, call: (c) => c.b.checkExtension(CAPS.GUEST_MEMFD, c.h.gmem), expect: { errno: 'ENOTTY' } },
    { name: 'on a closed fd: EBADF', cite: 'ioctl(2)', ...probed,
      setup: (c) => { c.vm(); c.b.close(c.h.vm!); }, call: (c) => c.b.checkExtension(CAPS.GUEST_MEMFD, c.h.vm), expect: { errno: 'EBADF' } },
  ];
  table(rows);
});

describe('KVM_CREATE_GUEST_MEMFD: size (default VM, probed machine)', () => {
  const sizes: [string, bigint, 'ok' | 'EINVAL'][] = [
    ['0', 0n, 'EINVAL'], ['1', 1n, 'EINVAL'], ['4095', 4095n, 'EINVAL'], ['4097', 4097n, 'EINVAL'], ['6K', 6144n, 'EINVAL'],
    ['4K', 4096n, 'ok'], ['2M', BigInt(2 * M), 'ok'], ['1G', BigInt(G), 'ok'], ['64G', 64n * BigInt(G), 'ok'],
    ['1T', 1n << 40n, 'ok'], ['64T', 1n << 46n, 'ok'], ['1P', 1n << 50n, 'ok'], ['2^62', 1n << 62n, 'ok'],
    ['2^63 (negative loff_t)', 1n << 63n, 'EINVAL'], ['2^64-4K (negative loff_t)', (1n << 64n) - 4096n, 'EINVAL'],
  ];
  table(sizes.map(([name, size, want]): Row => ({
    name: `size ${name}`, cite: 'kernel-probe.md §2; selftest guest_memfd_test.c: test_create_guest_memfd_invalid_sizes', ...probed,
    setup: (c) => { c.vm(); },
    call: (c) => c.b.createGuestMemfd(c.h.vm!, size, 0n),
    expect: want === 'ok' ? 'ok' : { errno: want },
    then: want === 'ok' ? (c, r) => {
      const file = c.k.gmemFile((r as { value: number }).value)!;
      assert.equal(BigInt(file.inode.size), size, 'st_size equals the requested size');
      assert.equal(file.inode.pages.count(), 0, 'the file is sparse: nothing allocated');
    } : undefined,
  })));
});

describe('KVM_CREATE_GUEST_MEMFD: flags (default VM, probed machine)', () => {
  const rows: Row[] = [];
  for (let b = 0n; b < 64n; b++) {
    rows.push({
      name: `flags 1<<${b}`, cite: 'kernel-probe.md §2 (only bits 0 and 1 accepted); selftest guest_memfd_test.c: test_create_guest_memfd_invalid_flags', ...probed,
      setup: (c) => { c.vm(); }, call: (c) => c.b.createGuestMemfd(c.h.vm!, 4 * K, 1n << b),
      expect: b < 2n ? 'ok' : { errno: 'EINVAL' },
    });
  }
  const flagRows: [string, bigint, boolean][] = [
    ['0', 0n, true], ['MMAP', MMAP, true], ['MMAP|INIT_SHARED', MMAP | INIT_SHARED, true],
    ['INIT_SHARED without MMAP', INIT_SHARED, true], ['MMAP|INIT_SHARED|1<<2', MMAP | INIT_SHARED | 4n, false],
    ['1<<63 with MMAP', MMAP | (1n << 63n), false],
  ];
  for (const [name, flags, good] of flagRows) {
    rows.push({ name: `flags ${name}`, cite: 'kernel-probe.md §2', ...probed,
      setup: (c) => { c.vm(); }, call: (c) => c.b.createGuestMemfd(c.h.vm!, 16 * K, flags), expect: good ? 'ok' : { errno: 'EINVAL' } });
  }
  rows.push(
    { name: 'bad flags and bad size: EINVAL', cite: 'kernel-semantics.md §1.1 Errors', ...probed,
      setup: (c) => { c.vm(); }, call: (c) => c.b.createGuestMemfd(c.h.vm!, 1, 1n << 5n), expect: { errno: 'EINVAL' } },
    { name: 'the same ioctl on a guest_memfd fd: ENOTTY', cite: 'kernel-probe.md §2', ...probed,
      setup: (c) => { c.vm(); c.gmem(4 * K, 0n); }, call: (c) => c.b.createGuestMemfd(c.h.gmem!, 4 * K, 0n), expect: { errno: 'ENOTTY' } },
    { name: 'on a pipe fd: ENOTTY', cite: 'ioctl(2) (pipes have no KVM ioctls)',
      setup: (c) => { c.vm(); c.gmem(4 * K, MMAP | INIT_SHARED); c.mmap('gmem', 4 * K); c.vmsplice('map', 0, 1); },
      call: (c) => c.b.createGuestMemfd(c.h.pipe!, 4 * K, 0n), expect: { errno: 'ENOTTY' } },
    { name: 'on a closed VM fd: EBADF', cite: 'ioctl(2)', ...probed,
      setup: (c) => { c.vm(); c.b.close(c.h.vm!); }, call: (c) => c.b.createGuestMemfd(c.h.vm!, 4 * K, 0n), expect: { errno: 'EBADF' } },
    { name: 'two guest_memfds are distinct inodes with their own sizes', cite: 'kernel-probe.md §2', ...probed,
      setup: (c) => { c.vm(); c.gmem(16 * K, 0n, { as: 'a' }); },
      call: (c) => c.b.createGuestMemfd(c.h.vm!, 2 * M, 0n), expect: 'ok',
      then: (c, r) => {
        const a = c.k.gmemFile(c.h.a!)!.inode;
        const b = c.k.gmemFile((r as { value: number }).value)!.inode;
        assert.notEqual(a.ino, b.ino);
        assert.equal(a.size, 16 * K);
        assert.equal(b.size, 2 * M);
      } },
  );
  table(rows);
});

describe('KVM_CREATE_GUEST_MEMFD: INIT_SHARED per VM type and profile', () => {
  const rows: Row[] = [];
  const profiles = [MAINLINE_6_18, IPC_V8, RFC_2024, RFC_2025];
  for (const profile of profiles) {
    for (const type of ['default', 'sw_protected', 'snp', 'tdx'] as const) {
      const allowed = type === 'default' || profile.initSharedForPrivateVms;
      rows.push({
        name: `${profile.name} ${type}: MMAP|INIT_SHARED ${allowed ? 'accepted' : 'EINVAL'}`,
        cite: profile === MAINLINE_6_18 ? 'kernel-semantics.md §1.1 Supported flags (M)' : 'kernel-semantics.md §1.1 Supported flags (IPC), v8 25/46',
        profile, machine: FULL_MACHINE,
        setup: (c) => { c.vm(type); }, call: (c) => c.b.createGuestMemfd(c.h.vm!, 16 * K, MMAP | INIT_SHARED),
        expect: allowed ? 'ok' : { errno: 'EINVAL' },
      });
      rows.push({
        name: `${profile.name} ${type}: MMAP accepted, every page starts private`,
        cite: 'kernel-semantics.md §1.1 Initial per-page state', profile, machine: FULL_MACHINE,
        setup: (c) => { c.vm(type); }, call: (c) => c.b.createGuestMemfd(c.h.vm!, 16 * K, MMAP), expect: 'ok',
        then: (c, r) => {
          const inode = c.k.gmemFile((r as { value: number }).value)!.inode;
          assert.ok(inode.attributes.every(0, 4, (a) => a === 'private'));
        },
      });
    }
  }
  rows.push({
    name: 'INIT_SHARED: every page starts shared', cite: 'kernel-semantics.md §1.1 Initial per-page state (IPC)', profile: IPC_V8,
    setup: (c) => { c.vm('snp'); }, call: (c) => c.b.createGuestMemfd(c.h.vm!, 16 * K, MMAP | INIT_SHARED), expect: 'ok',
    then: (c, r) => {
      const inode = c.k.gmemFile((r as { value: number }).value)!.inode;
      assert.ok(inode.attributes.every(0, 4, (a) => a === 'shared'));
      assert.equal(inode.flags, GMEM_FLAGS.MMAP | GMEM_FLAGS.INIT_SHARED, 'the inode records its flags');
    },
  });
  rows.push({
    name: 'sizes are multiples of the page size', cite: 'kernel-semantics.md §1.1 Preconditions', profile: IPC_V8,
    setup: (c) => { c.vm('sw_protected'); }, call: (c) => c.b.createGuestMemfd(c.h.vm!, PAGE + 1, MMAP | INIT_SHARED), expect: { errno: 'EINVAL' },
  });
  table(rows);
});
