// The clients of `gmemkit serve` against the real command over a Unix socket: the C client's
// TAP test (clients/c/test_client.c), the C example VMM conversion handler (examples/vmm-c)
// under each policy of the userspace half (src/userspace/policies.ts) and a deliberately wrong
// handler that the guest catches, and the Python client's unittest. The C programs are compiled
// with the machine's cc (-Wall -Wextra -Werror); without a C compiler those tests are skipped.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startServer, type Server } from './server-helpers.js';

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const CC = have('cc');
const PY = have('python3');
let server: Server;

before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

function compile(out: string, ...sources: string[]): string {
  const exe = join(server.dir, out);
  const r = spawnSync('cc', ['-std=c11', '-Wall', '-Wextra', '-Werror', '-o', exe, ...sources], { encoding: 'utf8' });
  assert.equal(r.status, 0, `cc: ${r.stderr}`);
  return exe;
}

const run = (exe: string, ...args: string[]) => spawnSync(exe, args, { encoding: 'utf8', timeout: 600_000 });

test('C client: the blocked conversion, bad requests and events (TAP)', { skip: CC ? false : 'no C compiler (cc)' }, () => {
  const r = run(compile('test_client', 'clients/c/test_client.c', 'clients/c/gmemkit.c'), server.socket);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.doesNotMatch(r.stdout, /^not ok/m);
  assert.match(r.stdout, /^ok 8 - error_offset names the pinned page$/m);
  assert.match(r.stdout, /^1\.\.19$/m);
});

test('C example VMM: the handler serves the CoCo guest under retry, preunmap and guest-retry; the wrong one is caught', { skip: CC ? false : 'no C compiler (cc)' }, () => {
  const vmm = compile('vmm', 'examples/vmm-c/vmm.c', 'examples/vmm-c/handler.c', 'clients/c/gmemkit.c');
  for (const policy of ['retry', 'preunmap', 'guest-retry']) {
    const r = run(vmm, server.socket, policy);
    assert.equal(r.status, 0, `${policy}:\n${r.stdout}${r.stderr}`);
    assert.doesNotMatch(r.stdout, /^not ok/m, policy);
    const m = /guest: (\d+) requests, (\d+) completed, 0 failed, 0 faults/.exec(r.stdout);
    assert.ok(m && m[1] === m[2], `${policy}: ${r.stdout}`);
  }
  const wrong = run(vmm, server.socket, 'wrong');
  assert.equal(wrong.status, 1, wrong.stdout);
  assert.match(wrong.stdout, /^not ok \d+ - the guest completed every request$/m);
  assert.match(wrong.stdout, /guest: \d+ requests, \d+ completed, [1-9]\d* failed, [1-9]\d* faults/);
});

test('Python client: unittest against the server', { skip: PY ? false : 'no python3' }, () => {
  const r = spawnSync('python3', ['clients/python/test_gmemkit.py', server.socket], { encoding: 'utf8', timeout: 600_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stderr, /Ran 4 tests/);
  assert.match(r.stderr, /\nOK\n?$/);
});
