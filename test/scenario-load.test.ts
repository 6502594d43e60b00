// Bad scenario files: each mistake is reported before anything runs, naming the step, the
// field and what is allowed (scenario-language.md §1: handles, ops, fields, types).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseScenario, ScenarioError } from '../src/scenario/load.js';

function errorsOf(text: string): string[] {
  try {
    parseScenario(text, 'bad.yaml');
  } catch (e) {
    assert.ok(e instanceof ScenarioError, `expected a ScenarioError, got ${String(e)}`);
    return e.errors.map((x) => `${x.step ? `step ${x.step}: ` : ''}${x.message}`);
  }
  assert.fail('the scenario was accepted');
}

const VM = '  - { op: create_vm, type: sw_protected, as: vm }\n';
const GMEM = '  - { op: create_guest_memfd, vm: vm, size: 16K, flags: [MMAP, INIT_SHARED], as: gmem }\n';

const CASES: { name: string; steps: string; want: RegExp }[] = [
  { name: 'unknown op', steps: '  - { op: create_vmm }\n', want: /^step 1: unknown op "create_vmm"; allowed: create_vm, check_extension/ },
  { name: 'userspace op with a handle of the wrong kind', steps: `${VM}  - { op: convert, fd: vm, offset: 0, size: 4K, to: private }\n`, want: /^step 2: \(convert\) field 'fd': handle 'vm' is a vm handle \(step 1\); expected a gmem handle$/ },
  { name: 'unknown policy', steps: `${VM}  - { op: map_gpa_range, vm: vm, gpa: 0, size: 4K, to: private, policy: retyr }\n`, want: /field 'policy': unknown policy "retyr"; allowed: retry, preunmap, guest-retry, stop$/ },
  { name: 'missing field', steps: `${VM}  - { op: create_guest_memfd, vm: vm }\n`, want: /^step 2: \(create_guest_memfd\) missing field 'size'$/ },
  { name: 'unknown field', steps: `${VM}  - { op: create_guest_memfd, vm: vm, size: 4K, colour: red }\n`, want: /^step 2: \(create_guest_memfd\) unknown field 'colour'; allowed: vm, size, flags, hugepage_size, hugepage_pages, as, expect, known_difference$/ },
  { name: 'wrong type', steps: `${VM}${GMEM}  - { op: mmap, fd: gmem, length: true }\n`, want: /^step 3: \(mmap\) field 'length': expected a size \(an integer, or a string like "16K"\), got true$/ },
  { name: 'dangling handle', steps: `${VM}  - { op: mmap, fd: gmme, length: 4K }\n`, want: /^step 2: \(mmap\) field 'fd': handle 'gmme' is not defined \(defined so far: vm\)$/ },
  { name: 'handle of the wrong kind', steps: `${VM}  - { op: read, map: vm, length: 1 }\n`, want: /^step 2: \(read\) field 'map': handle 'vm' is a vm handle \(step 1\); expected a map handle$/ },
  { name: 'bad size string', steps: `${VM}  - { op: create_guest_memfd, vm: vm, size: 16Q }\n`, want: /^step 2: \(create_guest_memfd\) field 'size': expected a size like "16K", "0x1000" or "2\^63", got "16Q"$/ },
  { name: 'unknown flag name', steps: `${VM}  - { op: create_guest_memfd, vm: vm, size: 4K, flags: [MAP] }\n`, want: /field 'flags': unknown guest_memfd flag "MAP"; allowed: MMAP, INIT_SHARED, NO_DIRECT_MAP, HUGETLB or a number$/ },
  // scenario-language.md §2.1, §3 (hugepage_size, required with HUGETLB)
  { name: 'HUGETLB without hugepage_size', steps: `${VM}  - { op: create_guest_memfd, vm: vm, size: 4M, flags: [MMAP, HUGETLB] }\n`, want: /^step 2: \(create_guest_memfd\) flag HUGETLB needs 'hugepage_size' \(allowed: 2M, 1G\) or, model only, 'hugepage_pages'$/ },
  { name: 'unknown hugepage_size', steps: `${VM}  - { op: create_guest_memfd, vm: vm, size: 4M, flags: [HUGETLB], hugepage_size: 4M }\n`, want: /^step 2: \(create_guest_memfd\) field 'hugepage_size': unknown huge page size "4M"; allowed: 2M, 1G$/ },
  { name: 'hugepage_size without HUGETLB', steps: `${VM}  - { op: create_guest_memfd, vm: vm, size: 4M, hugepage_size: 2M }\n`, want: /^step 2: \(create_guest_memfd\) field 'hugepage_size' goes with flag HUGETLB only$/ },
  { name: 'unknown errno', steps: `${VM}  - { op: close, fd: vm, expect: { errno: EWHAT } }\n`, want: /^step 2: \(close\) expect: errno: expected one of EPERM, .*got "EWHAT"$/ },
  { name: 'handle defined twice', steps: `${VM}  - { op: create_vm, as: vm }\n`, want: /^step 2: \(create_vm\) as: handle 'vm' is already defined at step 1$/ },
  { name: 'as on an op without result', steps: `${VM}  - { op: close, fd: vm, as: x }\n`, want: /^step 2: \(close\) as: this op returns no handle$/ },
  { name: 'data and bytes both given', steps: `${VM}${GMEM}  - { op: mmap, fd: gmem, length: 4K, as: m }\n  - { op: write, map: m, data: "a", bytes: [1] }\n`, want: /^step 4: \(write\) exactly one of 'data' or 'bytes' or 'fill' is required$/ },
  { name: 'unknown capability', steps: '  - { op: check_extension, cap: GUEST_MEMFD_FLAG }\n', want: /unknown capability "GUEST_MEMFD_FLAG"; allowed: USER_MEMORY2/ },
  { name: 'bad expectation mix', steps: `${VM}  - { op: close, fd: vm, expect: { errno: EBADF, signal: SIGBUS } }\n`, want: /unexpected field\(s\) signal with errno/ },
];

for (const c of CASES) {
  test(`bad scenario: ${c.name}`, () => {
    const errors = errorsOf(`name: t\nsteps:\n${c.steps}`);
    assert.ok(errors.some((e) => c.want.test(e)), `no message matches ${c.want}:\n${errors.join('\n')}`);
  });
}

test('bad scenario: unknown profile names the allowed ones', () => {
  const errors = errorsOf(`name: t\nprofile: ipc-v9\nsteps:\n${VM}`);
  assert.match(errors[0]!, /^profile: unknown profile "ipc-v9"; allowed: mainline-6\.18, next-7\.4, ipc-v8, rfc-2024, rfc-2025/);
});

test('bad scenario: missing name and unknown top-level field', () => {
  const errors = errorsOf(`steps:\n${VM}extra: 1\n`);
  assert.ok(errors.includes('name: required, a non-empty string'), errors.join('\n'));
  assert.ok(errors.some((e) => /^unknown top-level field 'extra'; allowed: name, description, profile, machine, manager, steps$/.test(e)), errors.join('\n'));
});

test('bad scenario: invalid YAML reports the line', () => {
  assert.throws(() => parseScenario('name: t\nsteps:\n  - { op: create_vm\n', 'x.yaml'), (e: unknown) => e instanceof ScenarioError && e.errors[0]!.line !== undefined && /not valid YAML/.test(e.errors[0]!.message));
});

test('every problem of a file is reported, each with its line', () => {
  try {
    parseScenario(`name: t\nsteps:\n  - { op: nope }\n  - { op: create_vm, as: vm }\n  - { op: mmap, fd: nothere, length: 4K }\n`, 'f.yaml');
    assert.fail('accepted');
  } catch (e) {
    assert.ok(e instanceof ScenarioError);
    assert.deepEqual(e.errors.map((x) => [x.step, x.line]), [[1, 3], [3, 5]]);
  }
});

test('sizes: suffixes are powers of two, expressions and hex are accepted', () => {
  const s = parseScenario(`name: t\nsteps:\n${VM}  - { op: create_guest_memfd, vm: vm, size: "2^64-4K" }\n  - { op: create_guest_memfd, vm: vm, size: 0x2000 }\n  - { op: create_guest_memfd, vm: vm, size: 1G }\n`);
  assert.deepEqual(s.steps.slice(1).map((x) => x.args.size), [(1n << 64n) - 4096n, 0x2000n, 1n << 30n]);
});
