// Writing a trace file: event by event (a simulated TiB guest's trace can be large), with an
// error naming the file and the errno instead of an exception.
import { closeSync, openSync, writeSync } from 'node:fs';
import type { TraceWriter } from './trace-events.js';

/** Writes the trace to `path`; returns why it could not, or undefined. */
export function writeTraceFile(path: string, writer: TraceWriter): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'w');
  } catch (e) {
    return `--trace ${path}: cannot write the trace (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  }
  try {
    let buf = '';
    for (const c of writer.chunks()) {
      buf += c;
      if (buf.length > 1 << 20) { writeSync(fd, buf); buf = ''; }
    }
    writeSync(fd, buf);
    return undefined;
  } catch (e) {
    return `--trace ${path}: cannot write the trace (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  } finally {
    closeSync(fd);
  }
}
