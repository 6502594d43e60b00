// Records a run of the userspace half as a trace: each step is a slice on the track of the actor
// that took it (guest/vCPU, VMM manager, a holder, ...); the kernel calls made during the step are
// slices on the kernel track; a blocked conversion starts a flow that ends at the release of each
// holder at error_offset (and, when the release means waiting for I/O, a second flow ends at that
// I/O's completion); counters are sampled after every step; page maps are kept for `gmemkit view`.
// Time is the caller's step number (simulated time); nothing here reads a clock.
import type { Backend } from '../backend/backend.js';
import { decorate } from '../backend/decorate.js';
import type { Holder } from '../userspace/holders.js';
import type { Userspace } from '../userspace/userspace.js';
import type { PageMap } from './page-map.js';
import { bigints, STEP_US, TraceWriter } from './trace-events.js';

/** Backend methods that are system calls (the rest is bookkeeping: identity, violations, dispose). */
const SYSCALLS = new Set([
  'createVm', 'checkExtension', 'createGuestMemfd', 'close', 'mmap', 'munmap', 'hostRead', 'hostWrite', 'madvise',
  'fallocate', 'ftruncate', 'fdRead', 'fdWrite', 'pread', 'pwrite', 'lseek', 'setUserMemoryRegion2', 'setMemoryAttributes',
  'setMemoryAttributes2', 'guestRead', 'guestWrite', 'pinUserPages', 'unpinUserPages', 'pinAccess', 'vmsplice',
  'pinUserPagesFast', 'gmemImport', 'gmemUnimport', 'importAccess',
]);

type Item =
  | { kind: 'kernel'; name: string; args: Record<string, unknown>; outcome: string }
  | { kind: 'holder'; track: string; name: string; args: Record<string, unknown>; flowIn?: number[]; flowOut?: { id: number; holder: Holder } }
  | { kind: 'blocked'; flows: number[] };

export interface RecorderOptions {
  /** The track a holder's actions go on (default: one track per holder). */
  readonly holderTrack?: (h: Holder) => string;
  /** Sampled after each step; a series is written when its value changed. */
  readonly counters?: () => Record<string, number>;
  /** The page maps after a step (for `gmemkit view`); taken at most every `pageMapEvery` steps. */
  readonly pageMaps?: () => PageMap[];
  readonly pageMapEvery?: number;
}

export class TraceRecorder {
  readonly pid: number;
  private open?: { k: number; track: string; name: string; args: Record<string, unknown> };
  private items: Item[] = [];
  private readonly waiting = new Map<Holder, number[]>();
  private lastCounters: Record<string, number> = {};
  private lastK = -1;
  private lastMapK = -Infinity;
  private lastMapText = '';
  private started = 0;
  private ended = 0;
  /** Conversion requests made and not yet completed or failed. */
  get inFlight(): number { return this.started - this.ended; }
  readonly snapshots: { ts: number; step: number; maps: PageMap[] }[] = [];

  constructor(readonly writer: TraceWriter, processName: string, private readonly opts: RecorderOptions = {}) {
    this.pid = writer.process(processName);
  }

  holderTrack(h: Holder): string {
    return this.opts.holderTrack?.(h) ?? `${h.kind} ${h.name}`;
  }

  /** Wrap a backend so that its system calls are recorded on the kernel track. */
  wrap(b: Backend): Backend {
    const overrides: Record<string, unknown> = {};
    for (const name of SYSCALLS) {
      const f = (b as unknown as Record<string, unknown>)[name];
      if (typeof f !== 'function') continue;
      overrides[name] = (...a: unknown[]) => {
        const r = (f as (...x: unknown[]) => { ok: boolean }).apply(b, a);
        this.items.push({ kind: 'kernel', name, args: argsOf(a), outcome: outcomeOf(r) });
        return r;
      };
    }
    return decorate(b, overrides as Partial<Backend>);
  }

  /** Watch the conversion events of a userspace half (blocked → released flows). */
  attach(us: Userspace): void {
    // Requests made (the manager has no event for a new request: count its calls) and ended.
    const request = us.manager.request.bind(us.manager);
    us.manager.request = (...a: Parameters<typeof request>) => { this.started++; return request(...a); };
    const pendingByRequest = new Map<number, Map<Holder, number>>();
    // Flows to holders that were never released end at a 'not released' mark on their track.
    const settle = (request: number, why: string) => {
      for (const [h, id] of pendingByRequest.get(request) ?? []) {
        this.items.push({ kind: 'holder', track: this.holderTrack(h), name: 'not released', args: { holder: h.name, why, request }, flowIn: [id] });
      }
      pendingByRequest.delete(request);
    };
    us.events.on('blocked', (e) => {
      settle(e.request.id, 'blocked again before it was released');
      const flows = new Map<Holder, number>();
      for (const h of e.holders) flows.set(h, this.writer.flow());
      pendingByRequest.set(e.request.id, flows);
      this.items.push({ kind: 'blocked', flows: [...flows.values()] });
      this.note('blocked', { offset: e.offset, holders: e.holders.map((h) => h.name).join(', ') || 'none known', request: e.request.id });
    });
    us.events.on('released', (e) => {
      const flows = pendingByRequest.get(e.request.id);
      const id = flows?.get(e.holder);
      flows?.delete(e.holder);
      const waits = e.how.startsWith('waiting');
      this.items.push({
        kind: 'holder', track: this.holderTrack(e.holder), name: waits ? 'release: wait for I/O' : 'release',
        args: { holder: e.holder.name, kind: e.holder.kind, how: e.how, request: e.request.id },
        ...(id !== undefined ? { flowIn: [id] } : {}), ...(waits ? { flowOut: { id: this.writer.flow(), holder: e.holder } } : {}),
      });
    });
    us.events.on('retried', (e) => this.note('retried', { request: e.request.id, attempt: e.attempt }));
    us.events.on('completed', (e) => { this.ended++; settle(e.request.id, 'the request completed'); this.note('completed', { request: e.request.id, retries: e.retries }); });
    us.events.on('failed', (e) => { this.ended++; settle(e.request.id, 'the request failed'); this.note('failed', { request: e.request.id, reason: e.reason }); });
  }

  private note(event: string, args: Record<string, unknown>): void {
    if (!this.open) return;
    const list = (this.open.args.events ??= []) as unknown[];
    list.push({ event, ...args });
  }

  /** Start step `k` (non-decreasing) of `track`. Kernel calls and events until end() belong to it. */
  begin(k: number, track: string, name: string, args: Record<string, unknown> = {}): void {
    if (this.open) this.end('(unfinished)');
    this.open = { k: Math.max(k, this.lastK + 1), track, name, args: { ...args } };
  }

  /** End the open step with its outcome (and a name, when known only now); writes its slices, flows, counters and page map. */
  end(outcome: string, args: Record<string, unknown> = {}, name?: string): void {
    const o = this.open;
    if (!o) return;
    this.open = undefined;
    const w = this.writer;
    const t0 = o.k * STEP_US;
    this.lastK = o.k;
    // Waited-for I/O that is no longer in flight completed during this step.
    for (const [h, ids] of this.waiting) {
      if (h.state === 'in-flight') continue;
      this.waiting.delete(h);
      this.items.push({ kind: 'holder', track: this.holderTrack(h), name: 'I/O completed', args: { holder: h.name, state: h.state }, flowIn: ids });
    }
    const items = this.items;
    this.items = [];
    const span = STEP_US * 0.9;
    const slot = span / Math.max(items.length, 1);
    const actor = w.track(this.pid, o.track);
    w.slice(this.pid, actor, name ?? o.name, t0, span, JSON.parse(JSON.stringify({ ...o.args, ...args, outcome }, bigints)) as Record<string, unknown>);
    items.forEach((it, i) => {
      const ts = t0 + i * slot + slot * 0.05;
      const dur = slot * 0.9;
      if (it.kind === 'kernel') {
        w.slice(this.pid, w.track(this.pid, 'kernel'), it.name, ts, dur, { ...it.args, outcome: it.outcome }, 'syscall');
      } else if (it.kind === 'blocked') {
        for (const id of it.flows) w.flowStart(id, this.pid, actor, ts, 'blocked conversion → release');
      } else {
        const tid = w.track(this.pid, it.track);
        w.slice(this.pid, tid, it.name, ts, dur, it.args, 'holder');
        for (const id of it.flowIn ?? []) w.flowEnd(id, this.pid, tid, ts + dur / 2, 'blocked conversion → release');
        if (it.flowOut) {
          w.flowStart(it.flowOut.id, this.pid, tid, ts + dur / 2, 'blocked conversion → release');
          this.waiting.set(it.flowOut.holder, [...(this.waiting.get(it.flowOut.holder) ?? []), it.flowOut.id]);
        }
      }
    });
    const c = this.opts.counters?.();
    if (c) {
      for (const [name, v] of Object.entries(c)) {
        if (this.lastCounters[name] !== v) w.counter(this.pid, name, t0, { value: v });
      }
      this.lastCounters = c;
    }
    if (this.opts.pageMaps && o.k - this.lastMapK >= (this.opts.pageMapEvery ?? 1)) this.snapshot(o.k);
  }

  /** Take a page map now (also the final one), if it changed. */
  snapshot(k = this.lastK): void {
    const maps = this.opts.pageMaps?.();
    if (!maps) return;
    this.lastMapK = k;
    const text = JSON.stringify(maps);
    if (text === this.lastMapText) return;
    this.lastMapText = text;
    this.snapshots.push({ ts: k * STEP_US, step: k, maps });
  }

  /** Close every flow still waiting for an I/O that never completed, and hand over the page maps. */
  finish(): void {
    if (this.open) this.end('(unfinished)');
    if (this.waiting.size) {
      this.begin(this.lastK + 1, 'VMM', 'end of run');
      for (const [h, ids] of this.waiting) this.items.push({ kind: 'holder', track: this.holderTrack(h), name: 'still in flight at the end', args: { holder: h.name }, flowIn: ids });
      this.waiting.clear();
      this.end('ok');
    }
    this.snapshot();
    const all = (this.writer.otherData.pageMaps ??= []) as unknown[];
    all.push({ pid: this.pid, snapshots: this.snapshots });
  }
}

function argsOf(a: readonly unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  a.forEach((v, i) => {
    if (v instanceof Uint8Array) out[`arg${i}`] = `${v.length} bytes`;
    else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) out[k] = x instanceof Uint8Array ? `${x.length} bytes` : typeof x === 'bigint' ? `0x${x.toString(16)}` : x;
    else out[`arg${i}`] = typeof v === 'bigint' ? `0x${v.toString(16)}` : v;
  });
  return out;
}

function outcomeOf(r: unknown): string {
  const x = r as { ok: boolean; note?: string; errno?: string; signal?: string; exit?: string; unsupported?: string; out?: Record<string, bigint> };
  if (!x || typeof x !== 'object') return String(r);
  if (x.ok) return x.note ? `ok: ${x.note}` : 'ok'; // e.g. the level of a huge guest mapping (hugetlb)
  if (x.errno) return x.out?.error_offset !== undefined ? `${x.errno} error_offset=${x.out.error_offset}` : x.errno;
  return x.signal ?? x.exit ?? (x.unsupported ? 'unsupported' : 'failed');
}
