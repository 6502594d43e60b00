// Checks a parsed trace file against the rules of the Chrome trace-event format that Perfetto
// relies on: known phases and their required fields, timestamps non-decreasing per track,
// complete slices properly nested, begin/end matched, every flow started before it ends and
// ended, counters numeric, metadata well formed. Returns the problems; [] means valid.
// Source: the Trace Event Format document (phases X, B/E, i, C, s/t/f, M; flow binding points).

const PHASES = new Set(['X', 'B', 'E', 'i', 'I', 'C', 's', 't', 'f', 'M']);
const METADATA = new Set(['process_name', 'thread_name', 'process_sort_index', 'thread_sort_index', 'process_labels']);

export interface TraceSummary {
  readonly events: number;
  readonly tracks: number;
  readonly slices: number;
  readonly flows: number;
  readonly counters: number;
  /** Counter series names. */
  readonly counterNames: readonly string[];
}

interface Ev { name?: unknown; ph?: unknown; pid?: unknown; tid?: unknown; ts?: unknown; dur?: unknown; id?: unknown; cat?: unknown; args?: unknown; bp?: unknown }

export function validateTrace(file: unknown, maxProblems = 20): { problems: string[]; summary: TraceSummary } {
  const problems: string[] = [];
  const say = (s: string) => { if (problems.length < maxProblems) problems.push(s); };
  const f = file as { traceEvents?: unknown };
  const events = Array.isArray(file) ? file : f && Array.isArray(f.traceEvents) ? f.traceEvents as unknown[] : undefined;
  const empty: TraceSummary = { events: 0, tracks: 0, slices: 0, flows: 0, counters: 0, counterNames: [] };
  if (!events) return { problems: ['not a trace: neither an array of events nor an object with traceEvents'], summary: empty };
  const lastTs = new Map<string, number>();
  const openX = new Map<string, number[]>(); // per track: end times of enclosing complete slices
  const stacks = new Map<string, { name: string; ts: number }[]>();
  const flows = new Map<string, number>(); // cat:id -> start ts
  const ended = new Set<string>();
  const named = new Set<string>();
  const counterNames = new Set<string>();
  let slices = 0;
  let counters = 0;
  events.forEach((raw, i) => {
    const e = raw as Ev;
    const at = `event ${i}`;
    if (typeof e !== 'object' || e === null) return say(`${at}: not an object`);
    if (typeof e.ph !== 'string' || !PHASES.has(e.ph)) return say(`${at}: unknown phase ${JSON.stringify(e.ph)}`);
    if (!Number.isInteger(e.pid) || !Number.isInteger(e.tid)) return say(`${at} (${e.ph}): pid and tid must be integers`);
    const track = `${e.pid}/${e.tid}`;
    if (e.ph === 'M') {
      if (typeof e.name !== 'string' || !METADATA.has(e.name)) return say(`${at}: unknown metadata ${JSON.stringify(e.name)}`);
      if (typeof e.args !== 'object' || e.args === null) return say(`${at}: metadata without args`);
      if (e.name === 'thread_name') named.add(track);
      return;
    }
    if (e.ph !== 'E' && typeof e.name !== 'string') return say(`${at} (${e.ph}): no name`);
    if (typeof e.ts !== 'number' || !Number.isFinite(e.ts) || e.ts < 0) return say(`${at} (${e.ph}): ts must be a non-negative number`);
    const ts = e.ts;
    if (e.ph !== 'C') {
      const prev = lastTs.get(track);
      if (prev !== undefined && ts < prev) say(`${at} (${e.ph} ${String(e.name)}): ts ${ts} goes back on track ${track} (after ${prev})`);
      lastTs.set(track, ts);
    }
    switch (e.ph) {
      case 'X': {
        if (typeof e.dur !== 'number' || !(e.dur >= 0)) return say(`${at} (X ${String(e.name)}): dur must be a number >= 0`);
        slices++;
        const open = openX.get(track) ?? [];
        while (open.length && open[open.length - 1]! <= ts) open.pop();
        if (open.length && ts + e.dur > open[open.length - 1]!) say(`${at} (X ${String(e.name)}): overlaps the enclosing slice on track ${track} without nesting`);
        open.push(ts + e.dur);
        openX.set(track, open);
        return;
      }
      case 'B': {
        const s = stacks.get(track) ?? [];
        s.push({ name: String(e.name), ts });
        stacks.set(track, s);
        slices++;
        return;
      }
      case 'E': {
        const s = stacks.get(track);
        if (!s || s.length === 0) return say(`${at}: E without a matching B on track ${track}`);
        s.pop();
        return;
      }
      case 'C':
        if (typeof e.args !== 'object' || e.args === null || Object.values(e.args).some((v) => typeof v !== 'number' || !Number.isFinite(v))) {
          return say(`${at} (C ${String(e.name)}): counter args must be finite numbers`);
        }
        counters++;
        counterNames.add(String(e.name));
        return;
      case 's': case 't': case 'f': {
        if (e.id === undefined) return say(`${at} (${e.ph}): flow event without id`);
        const key = `${String(e.cat)}:${String(e.id)}`;
        if (e.ph === 's') {
          if (flows.has(key)) return say(`${at}: flow ${key} started twice`);
          flows.set(key, ts);
          return;
        }
        const start = flows.get(key);
        if (start === undefined) return say(`${at} (${e.ph}): flow ${key} has no start before it`);
        if (ts < start) say(`${at} (${e.ph}): flow ${key} goes back in time`);
        if (e.ph === 'f') {
          if (ended.has(key)) say(`${at}: flow ${key} ended twice`);
          ended.add(key);
        }
        return;
      }
      default:
        return;
    }
  });
  for (const [track, s] of stacks) if (s.length) say(`track ${track}: ${s.length} B without E (first: ${s[0]!.name})`);
  for (const key of flows.keys()) if (!ended.has(key)) say(`flow ${key} never ends`);
  for (const track of lastTs.keys()) if (!named.has(track) && !track.endsWith('/0')) say(`track ${track} has no thread_name`);
  return {
    problems,
    summary: { events: events.length, tracks: named.size, slices, flows: ended.size, counters, counterNames: [...counterNames].sort() },
  };
}
