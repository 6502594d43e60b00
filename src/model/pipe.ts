// Pipes filled by vmsplice(): each buffer holds a FOLL_GET reference on a user page, so the
// page outlives a hole punch and the reader sees the old folio's contents (kernel-probe §6).
import { PAGE_SIZE } from './abi.js';
import { folioAddRefs, folioRead } from './folio.js';
import type { KernelState, Pipe } from './state.js';

export function pipeCreate(s: KernelState): Pipe {
  return { id: s.nextId++, buffers: [] };
}

/** vmsplice(SPLICE_F_GIFT=0): reference the pages (folio ids) of [addr, addr+length) into the pipe. */
export function pipeSplicePages(s: KernelState, pipe: Pipe, folios: readonly number[], addr: number, length: number): void {
  let at = addr;
  const end = addr + length;
  for (const folio of folios) {
    const offset = at % PAGE_SIZE;
    const n = Math.min(PAGE_SIZE - offset, end - at);
    folioAddRefs(s, folio, folio + 1, 'gets', 1);
    pipe.buffers.push({ folio, offset, length: n });
    at += n;
  }
}

/** Read up to `length` bytes (all when undefined), dropping each consumed page reference. */
export function pipeRead(s: KernelState, pipe: Pipe, length: number | undefined): Uint8Array {
  const total = pipe.buffers.reduce((n, b) => n + b.length, 0);
  const want = Math.min(length ?? total, total);
  const out = new Uint8Array(want);
  let done = 0;
  while (done < want) {
    const buf = pipe.buffers[0]!;
    const n = Math.min(buf.length, want - done);
    folioRead(s, buf.folio, buf.offset, out.subarray(done, done + n));
    done += n;
    buf.offset += n;
    buf.length -= n;
    if (buf.length === 0) {
      folioAddRefs(s, buf.folio, buf.folio + 1, 'gets', -1);
      pipe.buffers.shift();
    }
  }
  return out;
}

/** Close: drop every page reference still in the pipe. */
export function pipeRelease(s: KernelState, pipe: Pipe): void {
  for (const buf of pipe.buffers) folioAddRefs(s, buf.folio, buf.folio + 1, 'gets', -1);
  pipe.buffers.length = 0;
}
