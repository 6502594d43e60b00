// The two seeded bugs of the huge-page rules, as mutant profiles of hugetlb (kernel-semantics.md
// §2.3, §3 I12, I13): each scenario below passes with no invariant broken on the hugetlb
// profile, and its mutant is caught by the model's own invariants at the step where the bug
// acts. (The full checker finds both in its HugeTLB world too: test/checker-huge.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findProfile } from '../src/model/profile.js';
import { parseScenario } from '../src/scenario/load.js';
import { formatHuman } from '../src/scenario/report.js';
import { runScenario } from '../src/scenario/run.js';

const HEAD = `
  - { op: create_vm, type: sw_protected, as: vm }
  - { op: create_guest_memfd, vm: vm, size: 4M, flags: [MMAP, HUGETLB], hugepage_size: 2M, as: gmem }
  - { op: set_user_memory_region2, vm: vm, slot: 0, guest_phys_addr: 0, memory_size: 4M, guest_memfd: gmem }
  - { op: guest_write, vm: vm, gpa: 0, data: "private", private: true }
  - { op: mmap, fd: gmem, length: 2M, as: map }
  - { op: set_memory_attributes2, fd: gmem, offset: 8K, size: 8K, attributes: [] }
  - { op: write, map: map, offset: 12K, data: "bounce" }`;

interface Case { mutant: string; why: string; steps: string; step: number; breaks: readonly string[] }

const CASES: readonly Case[] = [
  {
    mutant: 'mutant-merge-while-shared', why: `${'kernel-semantics.md §2.3'} [RFC25] rule 2: merge only when no page is shared`,
    // Page 2 goes back to private while page 3 is still shared and host-mapped.
    steps: `${HEAD}
  - { op: set_memory_attributes2, fd: gmem, offset: 8K, size: 4K, attributes: [PRIVATE] }
  - { op: folio_order, fd: gmem, offset: 0, expect: { hugetlb: { value: 0 }, mutant-merge-while-shared: { value: 9 } } }`,
    step: 8, breaks: ['I12', 'I13'],
  },
  {
    mutant: 'mutant-split-without-check', why: `${'kernel-semantics.md §2.3'} [RFC25] rules 3, 4: re-shape only after the refcount check`,
    // Both shared pages go back; page 3 is pinned, so the call fails, after the mutant merged.
    steps: `${HEAD}
  - { op: pin_user_pages, map: map, offset: 12K, length: 4K, longterm: true, as: pin }
  - { op: set_memory_attributes2, fd: gmem, offset: 8K, size: 8K, attributes: [PRIVATE], expect: { errno: EAGAIN, error_offset: 12K } }
  - { op: folio_order, fd: gmem, offset: 0, expect: { hugetlb: { value: 0 }, mutant-split-without-check: { value: 9 } } }`,
    step: 9, breaks: ['I12', 'I13'],
  },
];

for (const c of CASES) {
  test(`${c.mutant} is caught by ${c.breaks.join(' and ')}; the same steps are clean on hugetlb  [${c.why}]`, () => {
    assert.ok(findProfile(c.mutant)?.status === 'mutant');
    const text = `name: ${c.mutant}\nprofile: [hugetlb, ${c.mutant}]\nsteps:${c.steps}\n`;
    const [good, bad] = runScenario(parseScenario(text, `${c.mutant}.yaml`));
    assert.equal(good!.profile, 'hugetlb');
    assert.ok(good!.passed, formatHuman(good!));
    assert.ok(good!.steps.every((s) => s.violations.length === 0), formatHuman(good!));
    const broken = bad!.steps.filter((s) => s.violations.length > 0);
    assert.ok(broken.length > 0, `${c.mutant} broke no invariant:\n${formatHuman(bad!)}`);
    assert.equal(broken[0]!.step.index, c.step, `first broken at step ${broken[0]!.step.index}`);
    assert.deepEqual([...new Set(broken[0]!.violations.map((v) => v.invariant))].sort(), [...c.breaks]);
  });
}
