// Shared machinery of the server tests: start `gmemkit serve --socket` as a child process in a
// temporary directory, and a line client over a Unix socket. This file holds no tests of its own.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Server { readonly dir: string; readonly socket: string; readonly child: ChildProcess; stop(): Promise<void> }

/** `gmemkit serve --socket DIR/gmk.sock [...extra]`, resolved once it listens. */
export async function startServer(extra: (dir: string) => string[] = () => []): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), 'gmk-serve-'));
  const socket = join(dir, 'gmk.sock');
  const child = spawn(process.execPath, ['bin/gmemkit.js', 'serve', '--socket', socket, ...extra(dir)], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('listening on')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`gmemkit serve exited ${code}: ${err}`)));
  });
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  return { dir, socket, child, stop };
}

/** A JSON-RPC line client: `rpc` sends a request and resolves with its reply; notifications are kept. */
export class LineClient {
  readonly notifications: { method: string; params: unknown }[] = [];
  private buf = '';
  private waiting: ((m: any) => void)[] = [];
  private id = 0;
  private constructor(readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      for (let nl = this.buf.indexOf('\n'); nl !== -1; nl = this.buf.indexOf('\n')) {
        const m = JSON.parse(this.buf.slice(0, nl));
        this.buf = this.buf.slice(nl + 1);
        if (m.id === undefined) this.notifications.push(m);
        else this.waiting.shift()!(m);
      }
    });
  }

  static open(path: string): Promise<LineClient> {
    return new Promise((resolve, reject) => {
      const s = connect(path, () => resolve(new LineClient(s)));
      s.once('error', reject);
    });
  }

  /** Send a raw line that gets one reply. */
  raw(line: string): Promise<any> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.sock.write(`${line}\n`);
    });
  }

  rpc(method: string, params?: unknown): Promise<any> {
    return this.raw(JSON.stringify({ jsonrpc: '2.0', id: ++this.id, method, ...(params === undefined ? {} : { params }) }));
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.sock.once('close', () => resolve());
      this.sock.end();
    });
  }
}
