// A trace of scenario runs (`gmemkit run --trace`, `gmemkit check --trace`): one trace process
// per scenario and profile, each step a slice on its actor's track (guest/vCPU, VMM manager, the
// holder it acts on, or the VMM for plain system calls), the kernel calls under it, flows from
// blocked conversions to releases, counters and page maps taken from the model.
import type { Backend } from '../backend/backend.js';
import { ModelBackend } from '../backend/model-backend.js';
import type { Profile } from '../model/profile.js';
import { describeOutcome, type Outcome } from '../scenario/expect.js';
import type { Scenario, Step } from '../scenario/load.js';
import type { RunObserver } from '../scenario/run.js';
import type { Userspace } from '../userspace/userspace.js';
import { modelCounters, modelPageMaps } from './page-map.js';
import { TraceRecorder } from './recorder.js';
import { TraceWriter } from './trace-events.js';
import { writeTraceFile } from './write.js';
import { parseScenario } from '../scenario/load.js';
import { runScenario } from '../scenario/run.js';

const GUEST_OPS = new Set(['guest_read', 'guest_write', 'request_start', 'map_gpa_range']);
const MANAGER_OPS = new Set(['manager_step', 'convert']);
/** Ops whose `as:` names a holder, and the fields by which other ops name one. */
const HOLDER_OPS: Record<string, string> = {
  io_uring_register_buffers: 'io_uring', vfio_dma_map: 'VFIO', odirect_read: 'O_DIRECT', odirect_write: 'O_DIRECT', vmsplice: 'pipe',
  vhost_user_set_mem_table: 'vhost-user', vhost_user_io: 'vhost-user I/O', pin_user_pages: 'pin',
};
const HOLDER_FIELDS = ['ring', 'dma', 'io', 'pipe', 'vhost', 'pin'];

/** The observer factory for runScenario: every run it watches goes into `writer`. */
export function traceScenarioRuns(writer: TraceWriter): (profile: Profile, scenario: Scenario) => RunObserver {
  return (profile, scenario) => new ScenarioTrace(writer, `${scenario.name} [${profile.name}]`);
}

class ScenarioTrace implements RunObserver {
  private recorder?: TraceRecorder;
  private model?: ModelBackend;
  private readonly holderTracks = new Map<string, string>();
  constructor(private readonly writer: TraceWriter, private readonly title: string) {}

  wrap(b: Backend): Backend {
    this.model = b instanceof ModelBackend ? b : undefined;
    const model = this.model;
    this.recorder = new TraceRecorder(this.writer, this.title, {
      holderTrack: (h) => this.holderTracks.get(h.name) ?? `${h.kind} ${h.name}`,
      counters: () => this.counters(),
      ...(model ? { pageMaps: () => modelPageMaps(model.kernel) } : {}),
    });
    return this.recorder.wrap(b);
  }

  attach(us: Userspace): void {
    this.recorder!.attach(us);
  }

  beforeStep(step: Step): void {
    this.recorder!.begin(step.index, this.trackOf(step), `${step.index} ${step.op}`, { ...step.written, line: step.line ?? null });
  }

  afterStep(_step: Step, outcome: Outcome, violations: readonly { invariant: string }[]): void {
    this.recorder!.end(describeOutcome(outcome), violations.length ? { violations: violations.map((v) => v.invariant).join(', ') } : {});
  }

  finish(): void { this.recorder!.finish(); }

  private trackOf(step: Step): string {
    if (GUEST_OPS.has(step.op)) return 'guest vCPU 0';
    if (MANAGER_OPS.has(step.op)) return 'VMM conversion manager';
    if (HOLDER_OPS[step.op] && step.as) {
      const track = `${HOLDER_OPS[step.op]} ${step.as}`;
      this.holderTracks.set(step.as, track);
      return track;
    }
    for (const f of HOLDER_FIELDS) {
      const ref = step.written[f];
      if (typeof ref === 'string' && this.holderTracks.has(ref)) return this.holderTracks.get(ref)!;
    }
    return 'VMM';
  }

  /** Private pages, pinned pages (from the model where it is one) and conversions in flight. */
  private counters(): Record<string, number> {
    return { ...(this.model ? modelCounters(this.model.kernel) : {}), 'conversions in flight': this.recorder!.inFlight };
  }
}

/** `check --trace`: replay a counterexample scenario (its text) into a trace file; why not, or undefined. */
export function traceCounterexample(text: string, name: string, path: string): string | undefined {
  const w = new TraceWriter();
  runScenario(parseScenario(text, name), { observe: traceScenarioRuns(w) });
  return writeTraceFile(path, w);
}
