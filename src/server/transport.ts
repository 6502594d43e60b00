// Transports of `gmemkit serve`: a byte stream pair (stdin/stdout) or a Unix socket with many
// concurrent connections, each its own Session (its own world). Lines in, lines out; reading
// pauses while the peer does not read its replies, so a slow client cannot grow our buffers.
import { existsSync, lstatSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { extname } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { errorReply, LineSplitter, MAX_LINE_BYTES, RPC } from './protocol.js';
import { Recorder } from './record.js';
import { Session, type SessionOptions } from './session.js';

export interface ServeOptions {
  /** Record each connection as a scenario file (with --socket: FILE-N.ext for connection N). */
  readonly record?: string;
  readonly invariants?: boolean;
}

/** Serve one connection over a readable and a writable stream; resolves when the input ends. */
export function serveStream(input: Readable, output: Writable, opts: SessionOptions = {}): Promise<void> {
  return new Promise((resolve) => {
    // Backpressure: while the peer does not read, stop reading its requests (one drain wait at a time).
    let draining = false;
    const send = (line: string) => {
      if (output.write(`${line}\n`) || draining) return;
      draining = true;
      input.pause();
      output.once('drain', () => {
        draining = false;
        input.resume();
      });
    };
    const session = new Session(send, opts);
    const lines = new LineSplitter((l) => session.handleLine(l), () => send(errorReply(null, {
      code: RPC.PARSE_ERROR, message: `a message longer than ${MAX_LINE_BYTES} bytes; it is skipped up to the next newline`,
    })));
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      lines.end();
      session.close();
      resolve();
    };
    input.on('data', (chunk: Buffer | string) => lines.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk));
    input.on('end', finish);
    input.on('close', finish);
    input.on('error', finish);
    output.on('error', finish); // the peer went away: nothing more to say
  });
}

/** The record file of connection `n` when several connections record: FILE-n.ext. */
export function recordFileOf(file: string, n: number): string {
  const ext = extname(file);
  return `${file.slice(0, file.length - ext.length)}-${n}${ext || '.yaml'}`;
}

/**
 * Listen on a Unix socket at `path` (a stale socket there is replaced; any other file is an
 * error). Each connection is a session; the server runs until closed.
 */
export function serveSocket(path: string, opts: ServeOptions = {}): Promise<Server> {
  if (existsSync(path)) {
    if (!lstatSync(path).isSocket()) throw new Error(`--socket: ${path} exists and is not a socket`);
    unlinkSync(path);
  }
  let connections = 0;
  const server = createServer((sock: Socket) => {
    const n = ++connections;
    let record: Recorder | undefined;
    if (opts.record) {
      const file = recordFileOf(opts.record, n);
      try { record = new Recorder(file); } catch (e) {
        process.stderr.write(`gmemkit serve: connection ${n} is not recorded: cannot write ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`);
      }
    }
    void serveStream(sock, sock, { ...(record ? { record } : {}), ...(opts.invariants === undefined ? {} : { invariants: opts.invariants }) })
      .then(() => sock.end());
    sock.on('error', () => sock.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
