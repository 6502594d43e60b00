// The Chrome trace-event format (the JSON that Perfetto UI and chrome://tracing open), as a
// small writer: processes and named tracks (threads), complete slices, counters and flow arrows.
// Time is whatever the caller passes in (simulated steps mapped to microseconds); the writer
// has no clock. It keeps the events in emission order and never reorders them.

/** The phases gmemkit writes: complete slice, begin/end, instant, counter, flow start/end, metadata. */
export type Phase = 'X' | 'B' | 'E' | 'i' | 'C' | 's' | 'f' | 'M';

export interface TraceEvent {
  name: string;
  ph: Phase;
  pid: number;
  tid: number;
  ts?: number;
  dur?: number;
  cat?: string;
  id?: number;
  /** Flow end binds to the enclosing slice ('e'). */
  bp?: 'e';
  /** Instant scope: thread. */
  s?: 't';
  args?: Record<string, unknown>;
}

export interface TraceFile {
  traceEvents: TraceEvent[];
  displayTimeUnit: 'ms';
  /** gmemkit's own data (Perfetto ignores it): what one simulated step is, and the page maps for `gmemkit view`. */
  otherData: Record<string, unknown>;
}

/** One simulated step in trace microseconds (shown as 1 ms). */
export const STEP_US = 1000;

export class TraceWriter {
  readonly events: TraceEvent[] = [];
  private nextPid = 1;
  private readonly tids = new Map<number, Map<string, number>>();
  private nextFlow = 1;
  readonly otherData: Record<string, unknown> = { stepMicroseconds: STEP_US, generator: 'gmemkit' };

  /** A new process (one scenario run or one simulation): its pid. */
  process(name: string): number {
    const pid = this.nextPid++;
    this.tids.set(pid, new Map());
    this.events.push({ name: 'process_name', ph: 'M', pid, tid: 0, args: { name } });
    this.events.push({ name: 'process_sort_index', ph: 'M', pid, tid: 0, args: { sort_index: pid } });
    return pid;
  }

  /** The track named `name` in process `pid` (created on first use, in order of first use). */
  track(pid: number, name: string): number {
    const m = this.tids.get(pid);
    if (!m) throw new Error(`gmemkit bug: trace process ${pid} does not exist`);
    let tid = m.get(name);
    if (tid === undefined) {
      tid = m.size + 1;
      m.set(name, tid);
      this.events.push({ name: 'thread_name', ph: 'M', pid, tid, args: { name } });
      this.events.push({ name: 'thread_sort_index', ph: 'M', pid, tid, args: { sort_index: tid } });
    }
    return tid;
  }

  tracks(pid: number): string[] { return [...(this.tids.get(pid)?.keys() ?? [])]; }

  slice(pid: number, tid: number, name: string, ts: number, dur: number, args?: Record<string, unknown>, cat = 'step'): void {
    this.events.push({ name, ph: 'X', pid, tid, ts, dur, cat, ...(args ? { args } : {}) });
  }

  instant(pid: number, tid: number, name: string, ts: number, args?: Record<string, unknown>): void {
    this.events.push({ name, ph: 'i', s: 't', pid, tid, ts, ...(args ? { args } : {}) });
  }

  counter(pid: number, name: string, ts: number, values: Record<string, number>): void {
    this.events.push({ name, ph: 'C', pid, tid: 0, ts, args: values });
  }

  /** A new flow id. */
  flow(): number { return this.nextFlow++; }

  /** Flow start inside the slice that encloses `ts` on that track. */
  flowStart(id: number, pid: number, tid: number, ts: number, name: string): void {
    this.events.push({ name, cat: 'flow', ph: 's', id, pid, tid, ts });
  }

  /** Flow end, bound to the slice that encloses `ts` on that track. */
  flowEnd(id: number, pid: number, tid: number, ts: number, name: string): void {
    this.events.push({ name, cat: 'flow', ph: 'f', bp: 'e', id, pid, tid, ts });
  }

  toJSON(): TraceFile {
    return { traceEvents: this.events, displayTimeUnit: 'ms', otherData: this.otherData };
  }

  /** The file's text, written event by event so a large trace needs no second copy as one string. */
  *chunks(): Generator<string> {
    yield '{"displayTimeUnit":"ms","otherData":';
    yield JSON.stringify(this.otherData, bigints);
    yield ',"traceEvents":[\n';
    for (let i = 0; i < this.events.length; i++) yield `${i ? ',\n' : ''}${JSON.stringify(this.events[i], bigints)}`;
    yield '\n]}\n';
  }
}

export const bigints = (_k: string, v: unknown): unknown => (typeof v === 'bigint' ? (v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : String(v)) : v);
