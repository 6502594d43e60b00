// The no-direct-map profile's kernel half: GUEST_MEMFD_FLAG_NO_DIRECT_MAP (direct-map removal,
// a posted series, not merged) on top of next-7.4. Rows: which profile and VM type accept the
// flag and report it, and every GUP path of the model refused with EFAULT on such a mapping
// while host loads and stores and guest accesses keep working (kernel-semantics.md §1.11
// [DMR], §5.2, §7 item 7).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { capabilityGate } from '../src/backend/capability-gate.js';
import { ModelBackend } from '../src/backend/model-backend.js';
import { exportC } from '../src/export/c.js';
import { CAPS, GMEM_FLAGS, MADV, VM_TYPES } from '../src/model/abi.js';
import { FULL_MACHINE } from '../src/model/platform.js';
import { loadScenarioFile } from '../src/scenario/load.js';
import { IPC_V8, MAINLINE_6_18, NEXT_7_4, NO_DIRECT_MAP } from '../src/model/profile.js';
import { attrs2, INIT_SHARED, K, MMAP, table, type Ctx, type Row } from './table.js';

const S111 = 'kernel-semantics.md §1.11 [DMR]';
const S52 = 'kernel-semantics.md §5.2';
const S77 = 'kernel-semantics.md §7 item 7';
const NDM = GMEM_FLAGS.NO_DIRECT_MAP;
const ndm = { profile: NO_DIRECT_MAP };
const create = (type: Parameters<Ctx['vm']>[0]) => ({ setup: (c: Ctx) => c.vm(type), call: (c: Ctx) => c.b.createGuestMemfd(c.h.vm!, 16 * K, MMAP | INIT_SHARED | NDM) });
const flagsCap = (type: Parameters<Ctx['vm']>[0]) => ({ setup: (c: Ctx) => c.vm(type), call: (c: Ctx) => c.b.checkExtension(CAPS.GUEST_MEMFD_FLAGS, c.h.vm) });
/** A shared NO_DIRECT_MAP guest_memfd of 16K, mapped, bound at GPA 0, page 0 written by the host. */
const world = (c: Ctx) => {
  c.vm('sw_protected'); c.gmem(16 * K, MMAP | INIT_SHARED | NDM); c.mmap('gmem', 16 * K); c.slot(0, 0, 16 * K, 'gmem'); c.write('map', 0, 'host');
};
const noRefs = (c: Ctx) => { for (let p = 0; p < 4; p++) { const f = c.folio('gmem', p); assert.ok(!f || f.pinsLong + f.pinsShort + f.gets === 0, `page ${p} got a reference`); } };

describe('NO_DIRECT_MAP: which profile and VM type accept it', () => {
  const rows: Row[] = [
    { name: 'no-direct-map, sw_protected VM: created', cite: `${S111}; ${S52}`, ...ndm, ...create('sw_protected'), expect: 'ok' },
    { name: 'no-direct-map, default VM: created (secret hiding without CoCo)', cite: `${S111}`, ...ndm, ...create('default'), expect: 'ok' },
    { name: 'no-direct-map, SNP VM: created', cite: `${S111}`, ...ndm, ...create('snp'), expect: 'ok' },
    { name: 'no-direct-map, TDX VM: EINVAL (TDX clears pages through the direct map)', cite: `${S77}; ${S111}`, ...ndm, ...create('tdx'), expect: { errno: 'EINVAL' } },
    { name: 'next-7.4: an unknown flag, EINVAL', cite: 'kernel-semantics.md §1.1 errors (unsupported flag bit)', profile: NEXT_7_4, ...create('sw_protected'), expect: { errno: 'EINVAL' } },
    { name: 'ipc-v8: an unknown flag, EINVAL', cite: 'kernel-semantics.md §1.1 errors', profile: IPC_V8, ...create('sw_protected'), expect: { errno: 'EINVAL' } },
    { name: 'mainline-6.18: an unknown flag, EINVAL', cite: 'kernel-semantics.md §0.1 (not merged); kernel-probe.md §2', profile: MAINLINE_6_18, ...create('default'), expect: { errno: 'EINVAL' } },
    { name: 'GUEST_MEMFD_FLAGS on a sw_protected VM reports it', cite: `${S52} (reported through KVM_CAP_GUEST_MEMFD_FLAGS)`, ...ndm, ...flagsCap('sw_protected'), expect: { value: MMAP | INIT_SHARED | NDM } },
    { name: 'GUEST_MEMFD_FLAGS on a default VM reports it', cite: `${S52}`, ...ndm, ...flagsCap('default'), expect: { value: MMAP | INIT_SHARED | NDM } },
    { name: 'GUEST_MEMFD_FLAGS on a TDX VM does not', cite: `${S77}`, ...ndm, ...flagsCap('tdx'), expect: { value: MMAP | INIT_SHARED } },
    { name: 'GUEST_MEMFD_FLAGS under next-7.4 does not', cite: 'kernel-semantics.md §0.4 (DMR still unmerged)', profile: NEXT_7_4, ...flagsCap('sw_protected'), expect: { value: MMAP | INIT_SHARED } },
    { name: 'without MMAP: created too (the flag is about the direct map, not the user mapping)', cite: `${S111}`, ...ndm,
      setup: (c) => c.vm('sw_protected'), call: (c) => c.b.createGuestMemfd(c.h.vm!, 16 * K, NDM), expect: 'ok' },
  ];
  table(rows);
});

describe('NO_DIRECT_MAP: every GUP is EFAULT, host and guest access keep working', () => {
  const rows: Row[] = [
    { name: 'pin_user_pages (slow path, short-term: O_DIRECT): EFAULT', cite: `${S111} (check_vma_flags)`, ...ndm, setup: world,
      call: (c) => c.b.pinUserPages(c.h.map!, 4 * K, false), expect: { errno: 'EFAULT' }, then: noRefs },
    { name: 'pin_user_pages FOLL_LONGTERM (io_uring registration, VFIO DMA map): EFAULT', cite: `${S111}`, ...ndm, setup: world,
      call: (c) => c.b.pinUserPages(c.h.map!, 16 * K, true), expect: { errno: 'EFAULT' }, then: noRefs },
    { name: 'a read-only GUP (FOLL_GET without FOLL_WRITE): EFAULT', cite: `${S111} (all GUP)`, ...ndm, setup: world,
      call: (c) => c.b.pinUserPages(c.h.map!, 4 * K, false, false), expect: { errno: 'EFAULT' } },
    { name: 'pin_user_pages_fast on a present PTE: EFAULT (GUP-fast rejects, and so does the slow path)', cite: `${S111} (GUP-fast rejects)`, ...ndm, setup: world,
      call: (c) => c.b.pinUserPagesFast(c.h.map!, 4 * K, true), expect: { errno: 'EFAULT' }, then: noRefs },
    { name: 'vmsplice: EFAULT', cite: `${S111} (all GUP)`, ...ndm, setup: world,
      call: (c) => c.b.vmsplice(c.h.map!, 4 * K), expect: { errno: 'EFAULT' }, then: noRefs },
    { name: 'MADV_POPULATE_READ (GUP by faultin_page_range): EFAULT', cite: `${S111} (all GUP)`, ...ndm, setup: world,
      call: (c) => c.b.madvise(c.h.map!, 4 * K, MADV.POPULATE_READ), expect: { errno: 'EFAULT' } },
    { name: 'MADV_POPULATE_WRITE: EFAULT', cite: `${S111} (all GUP)`, ...ndm, setup: world,
      call: (c) => c.b.madvise(c.h.map!, 4 * K, MADV.POPULATE_WRITE), expect: { errno: 'EFAULT' } },
    { name: 'a GUP of the ordinary guest_memfd next to it still pins', cite: 'kernel-semantics.md §1.11 (shared index)', ...ndm,
      setup: (c) => { world(c); c.gmem(16 * K, MMAP | INIT_SHARED, { as: 'plain' }); c.mmap('plain', 16 * K, { as: 'pm' }); },
      call: (c) => c.b.pinUserPages(c.h.pm!, 4 * K, true), expect: 'ok' },
    { name: 'a host load through the mapping: ok', cite: `${S111} (host access through the mmap keeps working)`, ...ndm, setup: world,
      call: (c) => c.b.hostRead(c.h.map!, 4), expect: { data: 'host' } },
    { name: 'a host store of a never-touched page: ok', cite: `${S111}`, ...ndm, setup: world,
      call: (c) => c.b.hostWrite(c.h.map! + 12 * K, new TextEncoder().encode('x')), expect: 'ok' },
    { name: 'a guest read (kvm_gmem_get_pfn, no GUP): sees the host data', cite: 'kernel-semantics.md §1.11 (KVM itself)', ...ndm, setup: world,
      call: (c) => c.b.guestRead(c.h.vm!, 0, 4), expect: { data: 'host' } },
    { name: 'to-private conversion: nothing can block it', cite: 'kernel-semantics.md §0.4 (in-use test)', ...ndm, setup: world,
      call: (c) => c.b.setMemoryAttributes2(c.h.gmem!, attrs2(0, 16 * K, true)), expect: 'ok' },
    { name: 'a private page: the host access is SIGBUS, as without the flag', cite: 'kernel-semantics.md §1.3', ...ndm,
      setup: (c) => { world(c); c.convert('gmem', 0, 4 * K, true); }, call: (c) => c.b.hostRead(c.h.map!, 1), expect: { signal: 'SIGBUS' } },
  ];
  table(rows);
});

describe('NO_DIRECT_MAP on a kernel without it: unsupported where the profile offers it, the kernel answer elsewhere', () => {
  // A kernel backend that lacks the flag: the model under next-7.4 stands in for it.
  const gated = () => {
    const inner = new ModelBackend({ profile: NEXT_7_4 });
    return { inner, b: capabilityGate(inner, NO_DIRECT_MAP, FULL_MACHINE) };
  };
  test('sw_protected: the step is unsupported, not failed  [scenario-language.md §8; kernel-semantics.md §1.11]', () => {
    const { inner, b } = gated();
    const vm = b.createVm(VM_TYPES.sw_protected);
    assert.ok(vm.ok);
    const r = b.createGuestMemfd(vm.value, 16 * K, MMAP | NDM);
    assert.ok(!r.ok && 'unsupported' in r, JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)));
    inner.dispose();
  });
  test(`TDX: the kernel's EINVAL passes through (the profile refuses it there too)  [${S77}]`, () => {
    const { inner, b } = gated();
    const vm = b.createVm(VM_TYPES.tdx);
    assert.ok(vm.ok);
    const r = b.createGuestMemfd(vm.value, 16 * K, MMAP | NDM);
    assert.ok(!r.ok && 'errno' in r && r.errno === 'EINVAL');
    inner.dispose();
  });
  test('the exported C program carries the same decision: the VM types that offer the flag  [kernel-semantics.md §1.11]', () => {
    const c = exportC(loadScenarioFile('examples/14-odirect-pinned-vs-no-direct-map.yaml'));
    const bits = (1 << VM_TYPES.default) | (1 << VM_TYPES.sw_protected) | (1 << VM_TYPES.snp);
    assert.match(c, new RegExp(`\\.no_direct_map_vm_types = ${bits},`));
    assert.match(c, /#define GUEST_MEMFD_FLAG_NO_DIRECT_MAP 0x4/);
  });
});
