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
import type { TraceWriter } from './trace-events.js';

const GUEST_OPS = new Set(['guest_read', 'guest_write', 'request_start', 'map_gpa_range']);
const MANAGER_OPS = new Set(['manager_step', 'convert']);
/** Ops whose `as:` names a holder, and the fields by which other ops name one. */
const HOLDER_OPS = new Set(['io_uring_register_buffers', 'vfio_dma_map', 'odirect_read', 'odirect_write', 'vmsplice', 'vhost_user_set_mem_table', 'vhost_user_io', 'pin_user_pages']);
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
    if (HOLDER_OPS.has(step.op) && step.as) {
      const track = `${step.op.split('_')[0]} ${step.as}`;
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
