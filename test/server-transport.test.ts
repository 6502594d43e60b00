// `gmemkit serve` as a command (docs/scenario-language.md §3, the additions table; docs/server.md):
// over stdin/stdout, and over a Unix socket where concurrent connections are separate worlds;
// `--record` there writes one scenario per connection that `gmemkit run` replays; bad command
// lines are exit 2 with a message, never a stack trace.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { LineClient, startServer } from './server-helpers.js';

const cli = (args: string[], input?: string) => spawnSync(process.execPath, ['bin/gmemkit.js', ...args], { encoding: 'utf8', ...(input === undefined ? {} : { input }) });
const STACK = /at .*\.js:\d+|Error:/;
const req = (id: number, method: string, params?: unknown) => JSON.stringify({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) });

test('over stdin/stdout: one reply line per request, bad lines answered, the last line needs no newline', () => {
  const input = [
    req(1, 'create_vm', { type: 'sw_protected', as: 'vm' }),
    '{oops',
    req(2, 'create_guest_memfd', { vm: 'vm', size: '16K', flags: ['MMAP', 'INIT_SHARED'], as: 'gmem' }),
    req(3, 'mmap', { fd: 'gmem', length: '16K', as: 'map' }),
    req(4, 'pin_user_pages', { map: 'map', offset: '8K', length: '4K', longterm: true, as: 'pin' }),
    req(5, 'set_memory_attributes2', { fd: 'gmem', offset: 0, size: '16K', attributes: ['PRIVATE'] }),
  ].join('\n');
  const r = cli(['serve'], input);
  assert.equal(r.status, 0, r.stderr);
  const out = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(out.map((m) => m.id), [1, null, 2, 3, 4, 5]);
  assert.equal(out[1].error.code, -32700);
  assert.deepEqual(out[5].result.out, { error_offset: '8192' });
  assert.equal(r.stderr, '');
});

test('serve: bad command lines are exit 2 with a message', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gmk-serve-cli-'));
  try {
    const file = join(dir, 'plain');
    writeFileSync(file, 'x');
    for (const [args, msg] of [
      [['serve', '--socket'], /--socket needs a value \(PATH\)/],
      [['serve', 'extra'], /takes no arguments/],
      [['serve', '--record', join(dir, 'no', 'such', 'x.yaml')], /--record: cannot write .*ENOENT/],
      [['serve', '--socket', file], /--socket: cannot listen on .*exists and is not a socket/],
    ] as const) {
      const r = cli([...args], '');
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, msg);
      assert.doesNotMatch(r.stderr, STACK);
    }
    const help = cli(['serve', '--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /usage: gmemkit serve \[--socket PATH\] \[--record FILE\]/);
    assert.match(cli(['help']).stdout, /gmemkit serve \[--socket PATH\]/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('over a Unix socket: concurrent connections are separate worlds, each recorded as a scenario that replays', async () => {
  const server = await startServer((dir) => ['--record', join(dir, 'session.yaml')]);
  try {
    const [a, b] = await Promise.all([LineClient.open(server.socket), LineClient.open(server.socket)]);
    // The same handle names on both: each connection has its own.
    const setup = async (c: LineClient) => {
      assert.deepEqual((await c.rpc('create_vm', { type: 'sw_protected', as: 'vm' })).result, { kind: 'ok', handle: 'vm' });
      await c.rpc('create_guest_memfd', { vm: 'vm', size: '16K', flags: ['MMAP', 'INIT_SHARED'], as: 'gmem' });
      await c.rpc('mmap', { fd: 'gmem', length: '16K', as: 'map' });
    };
    await Promise.all([setup(a), setup(b)]);
    await a.rpc('pin_user_pages', { map: 'map', length: '4K', longterm: true, as: 'pin' });
    const conv = { fd: 'gmem', offset: 0, size: '16K', attributes: ['PRIVATE'] };
    const [ra, rb] = await Promise.all([a.rpc('set_memory_attributes2', conv), b.rpc('set_memory_attributes2', conv)]);
    assert.equal(ra.result.errno, 'EAGAIN'); // a's pin
    assert.deepEqual(rb.result, { kind: 'ok' }); // b has no pin
    assert.equal((await b.rpc('nope')).error.code, -32601);
    await Promise.all([a.close(), b.close()]);
    const c = await LineClient.open(server.socket); // a new connection: a new world, with no 'vm'
    assert.match((await c.rpc('close', { fd: 'vm' })).error.message, /handle 'vm' is not defined \(no handle is defined yet\)/);
    await c.close();
    for (const n of [1, 2]) {
      const file = join(server.dir, `session-${n}.yaml`);
      assert.ok(existsSync(file), file);
      const run = cli(['run', file]);
      assert.equal(run.status, 0, run.stdout);
      assert.match(run.stdout, /passed \((4|5) steps\)/);
    }
  } finally {
    await server.stop();
  }
});
