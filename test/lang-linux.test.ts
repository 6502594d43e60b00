// The language additions on the linux backend: fstat, MAP_FIXED (only inside the scenario's
// own mappings: a MAP_FIXED over the Node process's memory would crash it), the table of
// mappings after a MAP_FIXED replaced or (measured) unmapped a range, and fills beyond
// MAX_BUFFERED_ACCESS. The case that would kill Node without the guard runs in a child process.
// Expected answers: conformance/language-additions.yaml as measured on 6.18; mmap(2).
// Skips with the probe's reason where /dev/kvm or guest_memfd is missing.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MAP_FLAGS, PROT } from '../src/model/abi.js';
import { LinuxBackend } from '../src/linux/linux-backend.js';

const probe = LinuxBackend.probe();
const skip = probe.usable ? false : probe.reason;
const K = 1024;
const RW = PROT.READ | PROT.WRITE;
const { SHARED, PRIVATE, FIXED, FIXED_NOREPLACE, ANONYMOUS } = MAP_FLAGS;
const kind = (r: { ok: boolean }) => ('errno' in r ? (r as { errno: string }).errno : 'signal' in r ? (r as { signal: string }).signal : 'unsupported' in r ? 'unsupported' : 'ok');

function world() {
  const b = new LinuxBackend();
  const vm = b.createVm(0);
  assert.ok(vm.ok);
  const gmem = b.createGuestMemfd(vm.value, 16 * K, 3n);
  const plain = b.createGuestMemfd(vm.value, 16 * K, 0n);
  assert.ok(gmem.ok && plain.ok);
  const mm = (fd: number | null, length: number, flags: bigint, addr?: number | bigint, prot = RW) =>
    b.mmap({ fd, offset: 0, length, prot, flags, ...(addr === undefined ? {} : { addr: BigInt(addr) }) });
  const resv = mm(null, 64 * K, PRIVATE | ANONYMOUS, undefined, 0n);
  assert.ok(resv.ok);
  return { b, vm: vm.value, gmem: gmem.value, plain: plain.value, mm, resv: resv.value };
}

test('linux: fstat of a guest_memfd, a VM fd; EBADF for an fd it did not open', { skip }, () => {
  const w = world();
  try {
    assert.deepEqual(w.b.fstat(w.gmem), { ok: true, value: { size: 16384n, blksize: 4096n } });
    assert.deepEqual(w.b.fstat(w.vm), { ok: true, value: { size: 0n, blksize: 4096n } });
    const bad = w.b.fstat(0);
    assert.equal(kind(bad), 'EBADF');
    assert.ok('guarded' in bad && bad.guarded, 'decided by the backend, not the kernel');
  } finally { w.b.dispose(); }
});

test('linux: MAP_FIXED into the scenario\'s reservation; the table follows replacement and the measured hole', { skip }, () => {
  const w = world();
  try {
    const m = w.mm(w.gmem, 16 * K, SHARED | FIXED, w.resv);
    assert.ok(m.ok && m.value === w.resv);
    assert.ok(w.b.hostWrite(w.resv, new Uint8Array([7])).ok);
    assert.equal(kind(w.mm(w.gmem, 4 * K, SHARED | FIXED_NOREPLACE, w.resv + 32 * K)), 'EEXIST');
    assert.equal(kind(w.mm(w.gmem, 4 * K, SHARED | FIXED, w.resv + 1)), 'EINVAL');
    // guest_memfd without MMAP refuses after MAP_FIXED unmapped the page: the table forgets it.
    assert.equal(kind(w.mm(w.plain, 4 * K, SHARED | FIXED, w.resv)), 'ENODEV');
    const hole = w.b.hostRead(w.resv, 1);
    assert.equal(kind(hole), 'SIGSEGV');
    assert.ok('guarded' in hole && hole.guarded, 'the hole is no longer the backend\'s mapping');
    assert.equal(kind(w.b.hostRead(w.resv + 4 * K, 1)), 'ok');
    // so a MAP_FIXED there is refused (something else may have been mapped there since)
    assert.equal(kind(w.mm(w.gmem, 4 * K, SHARED | FIXED, w.resv)), 'unsupported');
    const again = w.mm(w.gmem, 4 * K, SHARED | FIXED_NOREPLACE, w.resv);
    assert.ok(again.ok && again.value === w.resv);
    assert.deepEqual(w.b.hostRead(w.resv, 1), { ok: true, value: new Uint8Array([7]) });
  } finally { w.b.dispose(); }
});

test('linux: a fill of 2^40 bytes ends at the first refused page, without a 2^40-byte buffer', { skip }, () => {
  const w = world();
  try {
    const m = w.mm(w.gmem, 16 * K, SHARED);
    assert.ok(m.ok);
    assert.equal(kind(w.b.hostFill(m.value, 1n << 40n, 0x5a)), 'SIGSEGV');
    assert.deepEqual(w.b.hostRead(m.value + 16 * K - 1, 1), { ok: true, value: new Uint8Array([0x5a]) });
  } finally { w.b.dispose(); }
});

const HERE = dirname(fileURLToPath(import.meta.url));
const CHILD = `
import { readFileSync } from 'node:fs';
import { LinuxBackend } from ${JSON.stringify(join(HERE, '..', 'src', 'linux', 'linux-backend.js'))};
// The first mapping of this process: the node binary's own text.
const addr = BigInt('0x' + /^([0-9a-f]+)-/.exec(readFileSync('/proc/self/maps', 'utf8'))[1]);
const b = new LinuxBackend();
const vm = b.createVm(0);
const gmem = b.createGuestMemfd(vm.value, 16384, 3n);
const r = b.mmap({ fd: gmem.value, offset: 0, length: 16384, prot: 3n, flags: 0x11n, addr });
console.log('RESULT ' + JSON.stringify(r));
b.dispose();
`;

test('linux: MAP_FIXED over memory of the Node process is refused as unsupported (it would crash it)', { skip }, () => {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `the child died (signal ${r.signal}):\n${r.stderr}`);
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  assert.ok(line, r.stdout + r.stderr);
  const res = JSON.parse(line.slice(7)) as { ok: boolean; unsupported?: string };
  assert.equal(res.ok, false);
  assert.match(res.unsupported ?? '', /MAP_FIXED at \[0x[0-9a-f]+, 0x[0-9a-f]+\) could replace memory the Node process uses/);
});
