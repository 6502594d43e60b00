// What `gmemkit view` shows, read from a trace file (or from the JSON of `gmemkit run --json`):
// tracks, slices, flows, counters and page-map snapshots per trace process, in a compact form
// the page's script draws. Input errors name the file and what was expected; never a throw.
import type { PageMap } from '../trace/page-map.js';
import { validateTrace } from '../trace/validate.js';

export interface ViewProcess {
  readonly pid: number;
  readonly name: string;
  readonly tracks: string[];
  /** [track index, ts, dur, name, args] */
  readonly slices: [number, number, number, string, Record<string, unknown>][];
  /** [from track, from ts, to track, to ts] */
  readonly flows: [number, number, number, number][];
  readonly counters: Record<string, [number, number][]>;
  readonly snapshots: { ts: number; step: number; maps: PageMap[] }[];
}

export interface ViewData { readonly title: string; readonly processes: ViewProcess[] }

interface Ev { name: string; ph: string; pid: number; tid: number; ts?: number; dur?: number; id?: number; cat?: string; args?: Record<string, unknown> }

export function viewDataOf(input: unknown, title: string): ViewData | { error: string } {
  const obj = input as { traceEvents?: unknown; scenarios?: unknown; otherData?: { pageMaps?: { pid: number; snapshots: ViewProcess['snapshots'] }[] } };
  if (obj && typeof obj === 'object' && Array.isArray(obj.scenarios)) return fromRunJson(obj.scenarios as RunScenario[], title);
  const { problems } = validateTrace(input, 5);
  if (problems.length) return { error: `not a valid trace-event file: ${problems.join('; ')}` };
  const events = (Array.isArray(input) ? input : obj.traceEvents) as Ev[];
  const procs = new Map<number, { name: string; trackOf: Map<number, number>; p: ViewProcess }>();
  const proc = (pid: number) => {
    let e = procs.get(pid);
    if (!e) {
      e = { name: `process ${pid}`, trackOf: new Map(), p: { pid, name: `process ${pid}`, tracks: [], slices: [], flows: [], counters: {}, snapshots: [] } };
      procs.set(pid, e);
    }
    return e;
  };
  const track = (pid: number, tid: number) => {
    const e = proc(pid);
    let i = e.trackOf.get(tid);
    if (i === undefined) { i = e.p.tracks.length; e.trackOf.set(tid, i); e.p.tracks.push(`thread ${tid}`); }
    return i;
  };
  const flowStarts = new Map<string, { pid: number; track: number; ts: number }>();
  for (const e of events) {
    if (e.ph === 'M') {
      if (e.name === 'process_name') { const p = proc(e.pid); p.p = { ...p.p, name: String(e.args?.name ?? p.name) }; }
      if (e.name === 'thread_name') proc(e.pid).p.tracks[track(e.pid, e.tid)] = String(e.args?.name ?? `thread ${e.tid}`);
      continue;
    }
    if (e.ph === 'X') proc(e.pid).p.slices.push([track(e.pid, e.tid), e.ts!, e.dur!, e.name, e.args ?? {}]);
    else if (e.ph === 'C') { const c = proc(e.pid).p.counters; for (const [k, v] of Object.entries(e.args ?? {})) (c[k === 'value' ? e.name : `${e.name} ${k}`] ??= []).push([e.ts!, v as number]); }
    else if (e.ph === 's') flowStarts.set(`${e.cat}:${e.id}`, { pid: e.pid, track: track(e.pid, e.tid), ts: e.ts! });
    else if (e.ph === 'f') {
      const s = flowStarts.get(`${e.cat}:${e.id}`);
      if (s && s.pid === e.pid) proc(e.pid).p.flows.push([s.track, s.ts, track(e.pid, e.tid), e.ts!]);
    }
  }
  for (const m of obj.otherData?.pageMaps ?? []) proc(m.pid).p.snapshots.push(...m.snapshots);
  return { title, processes: [...procs.values()].map((e) => e.p).filter((p) => p.slices.length || p.snapshots.length) };
}

interface RunScenario { name: string; profile: string; steps: { index: number; op: string; args: Record<string, unknown>; outcome: Record<string, unknown>; failure?: string }[] }

/** `gmemkit run --json`: one process per scenario run, its steps on one track (no page map: use run --trace for that). */
function fromRunJson(scenarios: RunScenario[], title: string): ViewData | { error: string } {
  if (!scenarios.every((s) => s && Array.isArray(s.steps))) return { error: 'not the JSON of gmemkit run --json: a scenario has no steps' };
  return {
    title,
    processes: scenarios.map((s, i) => ({
      pid: i + 1, name: `${s.name} [${s.profile}]`, tracks: ['steps'], flows: [], counters: {}, snapshots: [],
      slices: s.steps.map((st, k): [number, number, number, string, Record<string, unknown>] => [0, k * 1000, 900, `${st.index} ${st.op}`, { ...st.args, outcome: st.outcome, ...(st.failure ? { failure: st.failure } : {}) }]),
    })),
  };
}
