// The language additions as the loader sees them (scenario-language.md §3, §2.1, §5): fstat,
// `expect: fails`, `expect: { bits }`, the fstat out-values, `write` with `fill` and `length`,
// `mmap` with `addr` (FIXED, FIXED_NOREPLACE).
// Good forms parse to what the runner needs; each mistake names the step, op, field and what
// is allowed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { opsListing } from '../src/cli/ops-listing.js';
import { parseExpect } from '../src/scenario/expect.js';
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

const HEAD = 'name: t\nsteps:\n  - { op: create_vm, as: vm }\n  - { op: create_guest_memfd, vm: vm, size: 16K, flags: [MMAP, INIT_SHARED], as: gmem }\n  - { op: mmap, fd: gmem, length: 16K, as: map }\n';

const BAD: { name: string; step: string; want: RegExp }[] = [
  { name: 'fill without length', step: '{ op: write, map: map, fill: 0xaa }', want: /^step 4: \(write\) field 'fill' needs 'length'/ },
  { name: 'length without fill', step: '{ op: write, map: map, data: "x", length: 4 }', want: /^step 4: \(write\) field 'length' goes with 'fill' only/ },
  { name: 'fill and data', step: '{ op: write, map: map, fill: 1, data: "x", length: 1 }', want: /^step 4: \(write\) exactly one of 'data' or 'bytes' or 'fill' is required$/ },
  { name: 'fill beyond a byte', step: '{ op: write, map: map, fill: 256, length: 1 }', want: /^step 4: \(write\) field 'fill': 256 does not fit u8 \(0 \.\. 255\)$/ },
  { name: 'fill length negative', step: '{ op: write, map: map, fill: 1, length: -1 }', want: /^step 4: \(write\) field 'length': -1 is negative and does not fit u64/ },
  { name: 'FIXED without addr', step: '{ op: mmap, fd: gmem, length: 4K, flags: [SHARED, FIXED] }', want: /^step 4: \(mmap\) flags FIXED and FIXED_NOREPLACE need 'addr'/ },
  { name: 'FIXED_NOREPLACE without addr', step: '{ op: mmap, fd: gmem, length: 4K, flags: [SHARED, FIXED_NOREPLACE] }', want: /need 'addr' \(a map handle, whose start address is used, or a number\)$/ },
  { name: 'addr_offset without addr', step: '{ op: mmap, fd: gmem, length: 4K, addr_offset: 4K }', want: /^step 4: \(mmap\) field 'addr_offset' needs 'addr'/ },
  { name: 'addr of the wrong handle kind', step: '{ op: mmap, fd: gmem, length: 4K, flags: [SHARED, FIXED], addr: gmem }', want: /^step 4: \(mmap\) field 'addr': handle 'gmem' is a gmem handle \(step 2\); expected a map handle$/ },
  { name: 'addr beyond u64', step: '{ op: mmap, fd: gmem, length: 4K, flags: [SHARED, FIXED], addr: "2^64" }', want: /field 'addr': "2\^64" \(= 18446744073709551616\) does not fit u64/ },
  { name: 'unknown mmap flag', step: '{ op: mmap, fd: gmem, length: 4K, flags: [SHARED, FIXD] }', want: /unknown mmap flag "FIXD"; allowed: SHARED, PRIVATE, FIXED, ANONYMOUS, POPULATE, FIXED_NOREPLACE or a number$/ },
  { name: 'fstat without fd', step: '{ op: fstat }', want: /^step 4: \(fstat\) missing field 'fd'$/ },
  { name: 'fstat unknown field', step: '{ op: fstat, fd: gmem, size: 4K }', want: /^step 4: \(fstat\) unknown field 'size'; allowed: fd, as, expect, known_difference$/ },
  { name: 'fstat returns no handle', step: '{ op: fstat, fd: gmem, as: st }', want: /^step 4: \(fstat\) as: this op returns no handle$/ },
  { name: 'expect: fail (a typo)', step: '{ op: fstat, fd: gmem, expect: fail }', want: /expect: expected ok, any, fails, or a mapping such as \{ errno: EINVAL \}, got "fail"$/ },
  { name: 'bits not a number', step: '{ op: check_extension, cap: GUEST_MEMFD_FLAGS, expect: { bits: MMAP } }', want: /expect: bits: expected a size like/ },
  { name: 'bits with value', step: '{ op: check_extension, cap: GUEST_MEMFD_FLAGS, expect: { bits: 1, value: 3 } }', want: /expect: unexpected field\(s\) value with bits; allowed: bits$/ },
  { name: 'blksize not a size', step: '{ op: fstat, fd: gmem, expect: { blksize: big } }', want: /expect: blksize: expected a size like/ },
  { name: 'stat field misspelt', step: '{ op: fstat, fd: gmem, expect: { size: 4K, blocksize: 4K } }', want: /expect: unknown expectation field\(s\) size, blocksize; allowed: .*bits, size, blksize/ },
];

for (const c of BAD) {
  test(`loader: ${c.name}`, () => {
    const errors = errorsOf(`${HEAD}  - ${c.step}\n`);
    assert.ok(errors.some((e) => c.want.test(e)), `no error matched ${c.want}:\n${errors.join('\n')}`);
  });
}

test('loader: the additions parse to the values the runner uses', () => {
  const s = parseScenario(`${HEAD}  - { op: write, map: map, offset: 4K, fill: 0xaa, length: 8K }
  - { op: mmap, fd: gmem, length: 4K, flags: [SHARED, FIXED], addr: map, addr_offset: 4K, as: m2 }
  - { op: mmap, fd: gmem, length: 4K, flags: [SHARED, FIXED_NOREPLACE], addr: 0x10000000, expect: fails }
  - { op: fstat, fd: gmem, expect: { size: 16K, blksize: 4K } }
  - { op: check_extension, cap: GUEST_MEMFD_FLAGS, expect: { bits: 3 } }
`);
  const [w, m, n, f, c] = s.steps.slice(3);
  assert.deepEqual([w!.args.fill, w!.args.length, w!.args.offset], [0xaan, 8192n, 4096n]);
  assert.deepEqual([m!.args.addr, m!.args.addr_offset, m!.args.flags], [{ handle: 'map' }, 4096n, 0x11n]);
  assert.deepEqual([n!.args.addr, n!.args.flags, n!.expect.base], [{ raw: 0x10000000n }, 0x100001n, { kind: 'fails' }]);
  assert.deepEqual(f!.expect.base, { kind: 'out', out: { size: 16384n, blksize: 4096n } });
  assert.deepEqual(c!.expect.base, { kind: 'bits', bits: 3n });
});

test('loader: a raw-number field written as a size string is a number, not a handle name', () => {
  const s = parseScenario(`${HEAD}  - { op: mmap, fd: gmem, length: 4K, flags: [SHARED, FIXED], addr: "0x7ffffffff000" }
  - { op: mmap, fd: gmem, length: 4K, flags: [SHARED, FIXED_NOREPLACE], addr: "2^40" }
  - { op: fstat, fd: "3" }
`);
  assert.deepEqual(s.steps.slice(3).map((st) => st.args.addr ?? st.args.fd), [{ raw: 0x7ffffffff000n }, { raw: 1n << 40n }, { raw: 3n }]);
});

test('gmemkit ops lists the rules between fields', () => {
  const text = opsListing(['write', 'mmap', 'fstat']);
  assert.match(text, /fill: byte 0\.\.255; optional/);
  assert.match(text, /'length' is required with 'fill', and only with it/);
  assert.match(text, /'addr' is required with FIXED or FIXED_NOREPLACE/);
  assert.match(text, /fstat\n +fstat\(2\): out-values size \(st_size\) and blksize \(st_blksize\)/);
});

test('expect: a profile-keyed mapping may use the additions', () => {
  const r = parseExpect({ 'mainline-6.18': 'fails', 'ipc-v8': { bits: 1 } });
  assert.ok(r.ok);
  assert.deepEqual(r.value.byProfile, { 'mainline-6.18': { kind: 'fails' }, 'ipc-v8': { kind: 'bits', bits: 1n } });
});
