// `gmemkit export c` as text and as a command, without a compiler or /dev/kvm: every scenario
// op has an emitter (a new op must get one), the program reads like a selftest (a function
// named after the scenario, every step commented with its scenario line, guarded uapi
// definitions), what C cannot do is a SKIP with its reason, and bad arguments exit 2.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { C_OPS } from '../src/export/c-ops.js';
import { cFileName, exportC } from '../src/export/c.js';
import { cNum } from '../src/export/c-values.js';
import { expandPaths, loadScenarioFile, parseScenario } from '../src/scenario/load.js';
import { ALL_OPS } from '../src/scenario/ops.js';

const cli = (...args: string[]) => spawnSync(process.execPath, ['bin/gmemkit.js', ...args], { encoding: 'utf8' });

test('every scenario op has a C emitter (exported, or skipped with a reason)', () => {
  assert.deepEqual(Object.keys(ALL_OPS).filter((op) => !(op in C_OPS)), []);
});

test('the program: a function named after the scenario, each step commented with its file and line', () => {
  const s = loadScenarioFile('examples/01-pinned-page-blocks-conversion.yaml');
  const c = exportC(s);
  assert.match(c, /^static void a_pinned_page_blocks_conversion_until_it_is_unpinned\(void\)$/m);
  for (const st of s.steps) assert.ok(c.includes(`01-pinned-page-blocks-conversion.yaml:${st.line}`), `no comment for step ${st.index}`);
  assert.match(c, /set_memory_attributes2\(&gmem, 0, 16 \* KiB, KVM_MEMORY_ATTRIBUTE_PRIVATE, 0, 0\), FAILS_AT\(EAGAIN, 4 \* KiB\)\);/);
  assert.match(c, /#ifndef KVM_CREATE_GUEST_MEMFD\nstruct kvm_create_guest_memfd \{/);
  assert.match(c, /#ifndef KVM_CAP_GUEST_MEMFD\n#define KVM_CAP_GUEST_MEMFD 234\n#endif/);
  assert.doesNotMatch(c, /\/work\/|\/tmp\//, 'no path of this machine');
  assert.equal(cFileName(s), 'a-pinned-page-blocks-conversion-until-it-is-unpinned.c');
});

test('a scenario under several profiles: one function per profile, numbered on', () => {
  const s = loadScenarioFile('examples/06-blocked-conversion-rfc2024-vs-ipc-v8.yaml');
  const c = exportC(s);
  assert.match(c, /^static void the_same_blocked_conversion_under_rfc_2024_and_ipc_v8__rfc_2024\(void\)$/m);
  assert.match(c, /^static void the_same_blocked_conversion_under_rfc_2024_and_ipc_v8__ipc_v8\(void\)$/m);
  assert.match(c, new RegExp(`printf\\("1\\.\\.%d\\\\n", ${2 * s.steps.length}\\);`));
  // the per-profile expectation of step 8: rfc-2024 has no guest_memfd ioctl, v8 answers EAGAIN
  assert.match(c, /check\(22, "set_memory_attributes2 [^\n]*\n[^\n]*FAILS_AT\(EAGAIN, 8 \* KiB\)\);/);
});

test('userspace-half and checker-only ops are SKIP steps that say why', () => {
  const s = parseScenario(`name: manager
steps:
  - { op: create_vm, type: sw_protected, as: vm }
  - { op: create_guest_memfd, vm: vm, size: 4K, flags: [MMAP, INIT_SHARED], as: gmem }
  - { op: mmap, fd: gmem, length: 4K, as: ram }
  - { op: request_start, vm: vm, gpa: 0, size: 4K, to: private, as: req }
  - { op: manager_step, request: req }
  - { op: manager_step, request: req, race_map: ram, race_offset: 0 }
  - { op: map_gpa_range, vm: vm, gpa: 0, size: 4K, to: shared }
  - { op: guest_read, vm: vm, gpa: 0, length: 1, on_fault: retry }
`, 'manager.yaml');
  const c = exportC(s);
  assert.match(c, /not_exported\("the conversion manager is gmemkit's userspace half[^"]*", &vm, NULL\)/);
  assert.match(c, /not_exported\("the conversion manager[^"]*C", &req, NULL\)/);
  assert.match(c, /not_exported\("[^"]*GUP-fast pin raced inside the conversion ioctl[^"]*", &req, &ram\)/);
  assert.match(c, /not_exported\("on_fault: serving a memory-fault exit/);
});

test('the hugetlb example: HUGETLB with its size bits in C, folio_order and spte_order SKIP steps that say why', () => {
  // scenario-language.md §2.1 (folio_order, spte_order: model only); kernel-semantics.md §5.2 (the flag and its size encoding)
  const c = exportC(loadScenarioFile('examples/12-huge-page-split-by-bounce-buffer.yaml'));
  assert.match(c, /create_guest_memfd\(&vm, 4 \* MiB, GUEST_MEMFD_FLAG_MMAP \| GUEST_MEMFD_FLAG_HUGETLB \| \(21ULL << 58\) \/\* 2 \* MiB huge pages \*\/\)/);
  assert.match(c, /#define GUEST_MEMFD_FLAG_HUGETLB 0x8ULL\n/);
  assert.match(c, /not_exported\("folio_order reads gmemkit's model: no kernel interface reports the order of a guest_memfd folio[^"]*", &gmem, NULL\)/);
  assert.match(c, /not_exported\("spte_order reads gmemkit's model[^"]*", &vm, NULL\)/);
});

test('sizes read as sizes', () => {
  // scenario-format.md "Sizes": suffixes are powers of two; "2^63" style powers
  const rows: [bigint, string][] = [[0n, '0'], [4096n, '4 * KiB'], [16n << 10n, '16 * KiB'], [2n << 20n, '2 * MiB'], [1n << 62n, '(1ULL << 62)'],
    [(1n << 63n) - 4096n, '(1ULL << 63) - 4 * KiB'], [(1n << 64n) - 4096n, '0xfffffffffffff000ULL'], [-4096n, '-(4 * KiB)'], [0xdead000n, '0xdead000']];
  for (const [v, c] of rows) assert.equal(cNum(v), c, String(v));
});

test('gmemkit export c: stdout for one file, DIR/<name>.c with --out, exit 2 for bad arguments', () => {
  const one = cli('export', 'c', 'examples/03-punch-leaves-pin-with-stale-data.yaml');
  assert.equal(one.status, 0, one.stderr);
  assert.match(one.stdout, /^int main\(void\)$/m);
  const dir = mkdtempSync(join(tmpdir(), 'gmemkit-export-cli-'));
  try {
    const r = cli('export', 'c', '--out', dir, 'examples');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readdirSync(dir).filter((f) => f.endsWith('.c')).length, expandPaths(['examples']).length);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  for (const [args, message] of [
    [['export'], /name the format \(c\)/],
    [['export', 'rust', 'examples'], /unknown format 'rust'; allowed: c/],
    [['export', 'c'], /name at least one scenario/],
    [['export', 'c', 'examples'], /\d+ scenarios: name --out DIR/],
    [['export', 'c', '--frob', 'examples'], /unknown argument '--frob'; the options of gmemkit export: --out, --kselftest/],
    [['export', 'c', 'test/scenarios/failing/bad-handle.yaml'], /bad-handle\.yaml:\d+: step 2: \(mmap\) field 'fd': handle 'gmme' is not defined/],
  ] as const) {
    const r = cli(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
});
