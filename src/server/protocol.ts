// JSON-RPC 2.0 framing for `gmemkit serve`: the error codes, message shapes, and a line
// splitter that bounds how much a client can make the server buffer. No kernel semantics here.

/** JSON-RPC 2.0 error codes (the specification's, and one server error of ours). */
export const RPC = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  /** A request that is well formed but not allowed now (e.g. `session` after the first op). */
  BAD_STATE: -32000,
} as const;

export type Id = string | number | null;

export interface RpcError { code: number; message: string; data?: unknown }

export const reply = (id: Id, result: unknown): string => JSON.stringify({ jsonrpc: '2.0', id, result });
export const errorReply = (id: Id, e: RpcError): string => JSON.stringify({ jsonrpc: '2.0', id, error: e });
export const notification = (method: string, params: unknown): string => JSON.stringify({ jsonrpc: '2.0', method, params });

/** Longest message accepted (a 2 MiB write as a byte list fits); longer lines are refused and skipped. */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;

/**
 * Splits a byte stream into lines. A line longer than `max` is reported once (as `overlong`)
 * and its bytes are dropped up to the next newline, so a client cannot grow the buffer.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  private skipping = false;

  constructor(private readonly onLine: (line: string) => void, private readonly onOverlong: () => void, private readonly max = MAX_LINE_BYTES) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      this.take(chunk.subarray(start, nl));
      const line = this.skipping ? undefined : Buffer.concat(this.parts, this.size).toString('utf8');
      this.parts = [];
      this.size = 0;
      this.skipping = false;
      if (line !== undefined) this.onLine(line);
      start = nl + 1;
    }
    this.take(chunk.subarray(start));
  }

  /** The stream ended: a last line without a newline still counts. */
  end(): void {
    if (this.size > 0 && !this.skipping) this.onLine(Buffer.concat(this.parts, this.size).toString('utf8'));
    this.parts = [];
    this.size = 0;
  }

  private take(b: Buffer): void {
    if (this.skipping || b.length === 0) return;
    if (this.size + b.length > this.max) {
      this.skipping = true;
      this.parts = [];
      this.size = 0;
      this.onOverlong();
      return;
    }
    this.parts.push(Buffer.from(b)); // a copy: the chunk's memory is not kept alive
    this.size += b.length;
  }
}
