// Soak of `gmemkit serve` over a loopback Unix socket: 10^5 requests (valid ops, EAGAIN,
// bad JSON, unknown methods, bad fields with a name to define, batches, event notifications),
// first over many short connections (each its own world), then in one long connection. The
// heap after a full GC is sampled (the child runs with --expose-gc) and must stay flat: a bound
// on growth, not a timing. The child is this file, run again with GMK_SOAK_CHILD=1.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const TOTAL = 100_000;
const SHORT_CONNECTIONS = 10;
const PER_SHORT = 5_000; // 5 * 10^4 requests over short connections, 5 * 10^4 in the long one
const SAMPLE_EVERY = 5_000;
const BURST = 500;
/** Allowed heap growth from the first sample after warm-up to any later one. */
const BOUND = 4 * 1024 * 1024;

const req = (id: number, method: string, params?: unknown) => JSON.stringify({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) });

/** The request lines of one connection: setup, then a cycle of good and bad requests; and how many replies they get. */
function* requests(n: number): Generator<string> {
  let id = 0;
  yield req(++id, 'subscribe', { events: 'all' });
  yield req(++id, 'create_vm', { type: 'sw_protected', as: 'vm' });
  yield req(++id, 'create_guest_memfd', { vm: 'vm', size: '64K', flags: ['MMAP', 'INIT_SHARED'], as: 'gmem' });
  yield req(++id, 'mmap', { fd: 'gmem', length: '64K', as: 'map' });
  yield req(++id, 'pin_user_pages', { map: 'map', offset: '4K', length: '4K', longterm: true, as: 'pin' });
  for (let i = 5; i < n; i++) {
    switch (i % 8) {
      case 0: yield req(++id, 'set_memory_attributes2', { fd: 'gmem', offset: 0, size: '64K', attributes: ['PRIVATE'] }); break;
      case 1: yield '{"jsonrpc":"2.0","id":'; break;
      case 2: yield req(++id, 'no_such_method', { x: i }); break;
      case 3: yield req(++id, 'create_vm', { type: 'bogus', as: `never${i}` }); break;
      case 4: yield req(++id, 'write', { map: 'map', offset: '8K', data: `hello ${i}` }); break;
      case 5: yield req(++id, 'read', { map: 'map', offset: '8K', length: 16 }); break;
      case 6: yield req(++id, 'convert', { fd: 'gmem', offset: 0, size: '64K', to: 'private', policy: 'stop' }); break; // blocked, failed: events
      default: yield req(++id, 'close', { fd: 'nosuch' }); break;
    }
  }
}

async function child(): Promise<void> {
  const { serveSocket } = await import('../src/server/transport.js');
  const dir = mkdtempSync(join(tmpdir(), 'gmk-soak-'));
  const path = join(dir, 's.sock');
  const server = await serveSocket(path);
  const gc = (globalThis as { gc?: () => void }).gc!;
  const samples: { after: number; heap: number }[] = [];
  let sent = 0;
  const sample = () => {
    gc();
    gc();
    samples.push({ after: sent, heap: process.memoryUsage().heapUsed });
  };
  /** One connection: send `n` requests in bursts, wait for every reply of each burst. */
  const session = async (n: number, sampleInside: boolean) => {
    const sock: Socket = await new Promise((resolve) => { const s = connect(path, () => resolve(s)); });
    let buf = '';
    let replies = 0;
    let want = 0;
    let wake: (() => void) | undefined;
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl !== -1; nl = buf.indexOf('\n')) {
        const m = JSON.parse(buf.slice(0, nl)) as { id?: unknown };
        buf = buf.slice(nl + 1);
        if ('id' in m) replies++;
      }
      if (replies >= want) wake?.();
    });
    let burst: string[] = [];
    const flush = async () => {
      want += burst.length;
      const done = new Promise<void>((r) => { wake = r; });
      sock.write(`${burst.join('\n')}\n`);
      burst = [];
      if (replies < want) await done;
    };
    for (const line of requests(n)) {
      burst.push(line);
      sent++;
      if (burst.length === BURST) await flush();
      if (sampleInside && sent % SAMPLE_EVERY === 0) { await flush(); sample(); }
    }
    if (burst.length) await flush();
    await new Promise<void>((r) => { sock.once('close', () => r()); sock.end(); });
    await new Promise((r) => setImmediate(r));
  };
  for (let c = 0; c < SHORT_CONNECTIONS; c++) {
    await session(PER_SHORT, false);
    sample();
  }
  await session(TOTAL - SHORT_CONNECTIONS * PER_SHORT, true);
  sample();
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
  process.stdout.write(JSON.stringify({ sent, samples }));
}

if (process.env.GMK_SOAK_CHILD) {
  await child();
} else {
  test('soak: 10^5 requests over loopback keep the heap flat (after GC), across sessions and within one', () => {
    const r = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url)], {
      encoding: 'utf8', env: { ...process.env, GMK_SOAK_CHILD: '1' }, timeout: 600_000, maxBuffer: 1 << 20,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '', 'no warning (e.g. a listener added per reply under backpressure)');
    const { sent, samples } = JSON.parse(r.stdout) as { sent: number; samples: { after: number; heap: number }[] };
    assert.equal(sent, TOTAL);
    // Warm-up: the first two connections (JIT, the model's tables, caches).
    const base = samples[1]!.heap;
    const worst = samples.slice(2).reduce((m, s) => Math.max(m, s.heap - base), 0);
    const mib = (b: number) => (b / 2 ** 20).toFixed(2);
    for (const s of samples) process.stdout.write(`# after ${s.after} requests: heap ${mib(s.heap)} MiB\n`);
    assert.ok(worst < BOUND, `the heap grew by ${mib(worst)} MiB after warm-up (bound ${mib(BOUND)} MiB)`);
  });
}
