// Numbers in scenarios fit the C type of their field, never wrapped or truncated
// (scenario-language.md §4.1 (numbers); the C types are those of
// kernel-semantics.md §5.5 and the syscall prototypes), and every flag, prot, mode and
// attribute list takes names and plain numbers ("Additions", "Expectations"; the list rule of
// "File").
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseScenario, ScenarioError } from '../src/scenario/load.js';
import { ALL_OPS, parseField } from '../src/scenario/ops.js';
import { runScenario } from '../src/scenario/run.js';

const NUMBERS = 'scenario-language.md §4.1 (numbers)';
const VM = '  - { op: create_vm, type: sw_protected, as: vm }\n';
const GMEM = '  - { op: create_guest_memfd, vm: vm, size: 16K, flags: [MMAP, INIT_SHARED], as: gmem }\n';
const MAP = '  - { op: mmap, fd: gmem, length: 16K, as: m }\n';

function errorsOf(steps: string): { step?: number; field?: string; message: string }[] {
  try {
    parseScenario(`name: t\nsteps:\n${steps}`, 'n.yaml');
  } catch (e) {
    assert.ok(e instanceof ScenarioError, `expected a ScenarioError, got ${String(e)}`);
    return e.errors.map((x) => ({ ...(x.step ? { step: x.step } : {}), ...(x.field ? { field: x.field } : {}), message: x.message }));
  }
  assert.fail('the scenario was accepted');
}

const REFUSED: { name: string; steps: string; step: number; field: string; want: RegExp }[] = [
  { name: 'a size expression above 2^64-1 (u64 size)', steps: `${VM}  - { op: create_guest_memfd, vm: vm, size: "2^64+4K" }\n`, step: 2, field: 'size', want: /field 'size': "2\^64\+4K" \(= 18446744073709555712\) does not fit u64 \(0 \.\. 2\^64-1\)$/ },
  { name: 'a flag number above 2^64-1 (u64 flags)', steps: `${VM}  - { op: create_guest_memfd, vm: vm, size: 4K, flags: ["2^64+1"] }\n`, step: 2, field: 'flags', want: /field 'flags': guest_memfd flag "2\^64\+1" \(= 18446744073709551617\) does not fit u64/ },
  { name: 'an unquoted integer above 2^64-1, parsed exactly', steps: `${VM}  - { op: create_guest_memfd, vm: vm, size: 99999999999999999999999 }\n`, step: 2, field: 'size', want: /field 'size': 99999999999999999999999 does not fit u64/ },
  { name: 'an unquoted 2^64 (one past the u64 range)', steps: `${VM}  - { op: create_guest_memfd, vm: vm, size: 18446744073709551616 }\n`, step: 2, field: 'size', want: /18446744073709551616 does not fit u64/ },
  { name: '.nan is NaN, not null', steps: `${VM}  - { op: create_guest_memfd, vm: vm, size: .nan }\n`, step: 2, field: 'size', want: /field 'size': expected an integer, got NaN$/ },
  { name: '.inf', steps: `${VM}  - { op: create_guest_memfd, vm: vm, size: .inf }\n`, step: 2, field: 'size', want: /got infinity$/ },
  { name: '-.inf', steps: `${VM}  - { op: create_guest_memfd, vm: vm, size: -.inf }\n`, step: 2, field: 'size', want: /got -infinity$/ },
  { name: 'a fraction', steps: `${VM}  - { op: create_guest_memfd, vm: vm, size: 4096.5 }\n`, step: 2, field: 'size', want: /got the fraction 4096\.5$/ },
  { name: 'a float too large to be exact', steps: `${VM}  - { op: create_guest_memfd, vm: vm, size: 1e30 }\n`, step: 2, field: 'size', want: /got the float 1e\+30, which is not exact/ },
  { name: 'a negative value for an unsigned field (u64 size)', steps: `${VM}  - { op: create_guest_memfd, vm: vm, size: -4K }\n`, step: 2, field: 'size', want: /"-4K" \(= -4096\) is negative and does not fit u64/ },
  { name: 'memslot slot beyond __u32', steps: `${VM}  - { op: set_user_memory_region2, vm: vm, slot: "2^32", guest_phys_addr: 0, memory_size: 4K }\n`, step: 2, field: 'slot', want: /field 'slot': "2\^32" \(= 4294967296\) does not fit u32/ },
  { name: 'memslot flags beyond __u32', steps: `${VM}  - { op: set_user_memory_region2, vm: vm, slot: 0, flags: ["2^32"], guest_phys_addr: 0, memory_size: 4K }\n`, step: 2, field: 'flags', want: /memslot flag "2\^32" \(= 4294967296\) does not fit u32/ },
  { name: 'mmap prot beyond int', steps: `${VM}${GMEM}  - { op: mmap, fd: gmem, length: 4K, prot: [0x100000000] }\n`, step: 3, field: 'prot', want: /prot 4294967296 does not fit u32/ },
  { name: 'a negative raw bit in a flag list', steps: `${VM}${GMEM}  - { op: fallocate, fd: gmem, mode: [-1], offset: 0, length: 4K }\n`, step: 3, field: 'mode', want: /fallocate mode -1 is negative and does not fit u32/ },
  { name: 'an off_t beyond 2^63-1 (pread offset)', steps: `${VM}${GMEM}  - { op: pread, fd: gmem, length: 1, offset: "2^63" }\n`, step: 3, field: 'offset', want: /does not fit s64 \(-2\^63 \.\. 2\^63-1\)/ },
  { name: 'an fd beyond int', steps: '  - { op: close, fd: 2147483648 }\n', step: 1, field: 'fd', want: /field 'fd': 2147483648 does not fit int/ },
  { name: 'a capability beyond long', steps: '  - { op: check_extension, cap: 9223372036854775808 }\n', step: 1, field: 'cap', want: /does not fit s64/ },
  { name: 'madvise advice beyond int', steps: `${VM}${GMEM}${MAP}  - { op: madvise, map: m, advice: 2147483648 }\n`, step: 4, field: 'advice', want: /does not fit int/ },
  { name: 'error_offset beyond __u64', steps: `${VM}  - { op: close, fd: vm, expect: { errno: EAGAIN, error_offset: "2^64" } }\n`, step: 2, field: 'expect', want: /expect: error_offset: "2\^64" \(= 18446744073709551616\) does not fit u64/ },
  { name: 'fill beyond a byte', steps: `${VM}${GMEM}${MAP}  - { op: read, map: m, length: 1, expect: { fill: 256 } }\n`, step: 4, field: 'expect', want: /fill: expected a byte value 0\.\.255: 256 does not fit u8/ },
  { name: 'a byte list item beyond a byte', steps: `${VM}${GMEM}${MAP}  - { op: write, map: m, bytes: [1, 256] }\n`, step: 4, field: 'bytes', want: /item 2: 256 does not fit u8/ },
  { name: 'a huge power', steps: `${VM}  - { op: create_guest_memfd, vm: vm, size: "2^99999999" }\n`, step: 2, field: 'size', want: /is far beyond any C type/ },
];

for (const c of REFUSED) {
  test(`numbers: ${c.name} is refused with step and field  [${NUMBERS}]`, () => {
    const errors = errorsOf(c.steps);
    const e = errors.find((x) => c.want.test(x.message));
    assert.ok(e, `no message matches ${c.want}:\n${errors.map((x) => x.message).join('\n')}`);
    assert.equal(e.step, c.step);
    assert.equal(e.field, c.field);
  });
}

test(`numbers: the edges of each type are accepted exactly  [${NUMBERS}]`, () => {
  const s = parseScenario(`name: t\nsteps:\n${VM}  - { op: create_guest_memfd, vm: vm, size: 18446744073709551615, flags: ["2^64-1"], expect: any }
  - { op: create_guest_memfd, vm: vm, size: "2^64-4K", expect: any }
  - { op: create_guest_memfd, vm: vm, size: 4096.0, expect: any }
  - { op: set_user_memory_region2, vm: vm, slot: 4294967295, guest_phys_addr: 0, memory_size: 0, expect: any }
  - { op: close, fd: -1, expect: { errno: EBADF } }
`);
  assert.deepEqual(s.steps.slice(1, 4).map((x) => x.args.size), [(1n << 64n) - 1n, (1n << 64n) - 4096n, 4096n]);
  assert.equal(s.steps[1]!.args.flags, (1n << 64n) - 1n);
  assert.equal(s.steps[4]!.args.slot, (1n << 32n) - 1n);
  assert.deepEqual(s.steps[5]!.args.fd, { raw: -1n });
});

// kernel-semantics.md §1 (pread/pwrite on guest_memfd) and conformance/edges-beyond-probe.yaml:
// ksys_pread64/ksys_pwrite64 check pos < 0 first, so a negative off_t must reach the backend.
test('numbers: negative values of signed fields reach the backend (pread/pwrite offset -1 is EINVAL)  [ksys_pread64: pos < 0]', () => {
  const s = parseScenario(`name: t\nsteps:\n${VM}${GMEM}  - { op: pread, fd: gmem, length: 1, offset: -1, expect: { errno: EINVAL } }
  - { op: pwrite, fd: gmem, data: "x", offset: "-4K", expect: { errno: EINVAL } }
  - { op: ftruncate, fd: gmem, length: -4K, expect: { errno: EINVAL } }
`);
  assert.equal(s.steps[2]!.args.offset, -1n);
  assert.equal(s.steps[3]!.args.offset, -4096n);
  const [r] = runScenario(s);
  assert.ok(r!.passed, r!.steps.map((x) => x.failure ?? 'ok').join('\n'));
});

test(`numbers: gmemkit run exits 2 naming file, line, step and field; nothing wraps  [${NUMBERS}]`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'gmemkit-numbers-'));
  const file = join(dir, 'wrap.yaml');
  writeFileSync(file, `name: wrap\nsteps:\n${VM}  - { op: create_guest_memfd, vm: vm, size: "2^64+4K", as: gmem }\n  - { op: create_guest_memfd, vm: vm, size: 4K, flags: ["2^64+1"] }\n  - { op: create_guest_memfd, vm: vm, size: 99999999999999999999999 }\n  - { op: create_guest_memfd, vm: vm, size: .nan }\n`);
  const r = spawnSync(process.execPath, ['bin/gmemkit.js', 'run', file], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 2, r.stdout + r.stderr);
  assert.equal(r.stdout, '');
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 4, r.stderr);
  assert.match(lines[0]!, /wrap\.yaml:4: step 2: \(create_guest_memfd\) field 'size': .*does not fit u64/);
  assert.match(lines[1]!, /wrap\.yaml:5: step 3: \(create_guest_memfd\) field 'flags': .*does not fit u64/);
  assert.match(lines[2]!, /wrap\.yaml:6: step 4: \(create_guest_memfd\) field 'size': 99999999999999999999999 does not fit u64/);
  assert.match(lines[3]!, /wrap\.yaml:7: step 5: \(create_guest_memfd\) field 'size': expected an integer, got NaN/);
});

// ---- lists: names and plain numbers everywhere (every flags-kind field of every op)
const LISTS = 'scenario-language.md §4.2 (the list rule)';
const LIST_FIELDS = Object.entries(ALL_OPS).flatMap(([op, spec]) =>
  Object.entries(spec.fields).filter(([, f]) => f.kind.type === 'flags').map(([field, f]) => ({ op, field, kind: f.kind as Extract<typeof f.kind, { type: 'flags' }> })));

test('lists: the audit covers the list fields of the contract', () => {
  const names = LIST_FIELDS.map((x) => `${x.op}.${x.field}`);
  for (const f of ['create_guest_memfd.flags', 'mmap.prot', 'mmap.flags', 'fallocate.mode', 'set_user_memory_region2.flags', 'set_memory_attributes.attributes', 'set_memory_attributes.flags', 'set_memory_attributes2.attributes', 'set_memory_attributes2.flags']) {
    assert.ok(names.includes(f), `${f} is not a list field`);
  }
});

for (const { op, field, kind } of LIST_FIELDS) {
  test(`lists: ${op} ${field} takes names and plain numbers  [${LISTS}]`, () => {
    const first = Object.keys(kind.table)[0];
    const cases: [unknown, bigint][] = [[[1n], 1n], [[], 0n], [1n, 1n], [['0x4'], 4n], [[1n, 2n], 3n]];
    if (first) cases.push([[first], kind.table[first]!], [[first, 1n << 20n], kind.table[first]! | (1n << 20n)]);
    for (const [v, want] of cases) {
      const r = parseField(kind, v);
      assert.ok(r.ok, `${JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}` : x))}: ${r.ok ? '' : r.message}`);
      assert.equal(r.value, want);
    }
    const typo = parseField(kind, ['NO_SUCH_NAME']);
    assert.ok(!typo.ok && /allowed: .*a number$/.test(typo.message), typo.ok ? 'accepted' : typo.message);
  });
}

test('lists: set_memory_attributes2 flags: [1] loads and reaches the model (v8: flags must be 0, EINVAL)  [kernel-semantics.md §1.10 (b) Validation errors: flags≠0]', () => {
  const s = parseScenario(`name: t\nsteps:\n${VM}${GMEM}  - { op: set_memory_attributes2, fd: gmem, offset: 0, size: 4K, attributes: [PRIVATE], flags: [1], expect: { errno: EINVAL } }
  - { op: set_memory_attributes2, fd: gmem, offset: 0, size: 4K, attributes: [8], flags: [] }
`);
  assert.equal(s.steps[2]!.args.flags, 1n);
  assert.equal(s.steps[3]!.args.attributes, 8n);
  const [r] = runScenario(s);
  assert.ok(r!.passed, r!.steps.map((x) => x.failure ?? 'ok').join('\n'));
});
