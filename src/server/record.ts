// `gmemkit serve --record FILE`: a session written as a scenario file that `gmemkit run`
// replays. Each step is the request as the client sent it (its fields and `as`), expecting the
// outcome it had, so a VMM's test run becomes a regression scenario. Written as it goes (one
// line per step), so a session that ends abruptly still leaves a loadable file.
import { closeSync, openSync, writeSync } from 'node:fs';
import type { Outcome } from '../scenario/expect.js';
import type { Step } from '../scenario/load.js';
import type { StepResult } from '../scenario/run.js';

/** Bytes read: a fill when they are all one value (a guest's whole-range read of fresh memory), else the list. */
function dataExpect(d: Uint8Array): Record<string, unknown> {
  return d.length > 1 && d.every((b) => b === d[0]) ? { fill: d[0] } : { bytes: [...d] };
}

/** The `expect:` that the outcome meets (undefined: the step is left out, it did nothing). */
export function expectOf(r: StepResult): unknown {
  const o: Outcome = r.outcome;
  let e: Record<string, unknown>;
  switch (o.kind) {
    case 'skipped': return undefined;
    case 'unsupported': case 'error': return 'any';
    case 'ok':
      e = o.data ? dataExpect(o.data) : o.value !== undefined ? { value: String(o.value) } : {};
      break;
    case 'errno':
      e = { errno: o.errno, ...(o.out?.error_offset !== undefined ? { error_offset: String(o.out.error_offset) } : {}) };
      break;
    case 'signal': e = { signal: o.signal }; break;
    case 'exit': e = { exit: o.exit, gpa: String(o.gpa), size: String(o.size), private: o.private }; break;
  }
  const conv = o.kind === 'ok' || o.kind === 'errno' ? o.conversion : undefined;
  if (conv) Object.assign(e, { retries: conv.retries, eagains: conv.eagains, released: conv.released, waited: conv.waited });
  if (r.violations.length) e.violations = [...new Set(r.violations.map((v) => v.invariant))];
  return Object.keys(e).length ? e : 'ok';
}

export interface RecordHeader { readonly profile: string; readonly machine: string; readonly manager: { fence: boolean; waitForIo: boolean } }

export class Recorder {
  private fd: number | undefined;
  /** The header, written before the first step (a session where nothing ran records no scenario). */
  private pending?: string;
  private steps = 0;

  /** Opens (truncates) `file`; throws the fs error when it cannot (the command reports it). */
  constructor(readonly file: string) {
    this.fd = openSync(file, 'w');
  }

  header(h: RecordHeader, name: string): void {
    const manager = h.manager.fence && h.manager.waitForIo ? '' : `manager: { fence: ${h.manager.fence}, wait_for_io: ${h.manager.waitForIo} }\n`;
    this.pending = (`# Recorded by gmemkit serve: one step per request, each expecting the outcome it had.\n`
      + `# Replay with: gmemkit run ${this.file}\n`
      + `name: ${JSON.stringify(name)}\nprofile: ${h.profile}\nmachine: ${h.machine}\n${manager}steps:\n`);
  }

  step(step: Step, r: StepResult): void {
    const expect = expectOf(r);
    if (expect === undefined) {
      this.comment(`${step.op} skipped (${r.outcome.kind === 'skipped' ? r.outcome.why : ''}): left out, it did nothing`);
      return;
    }
    const body = { op: step.op, ...step.written, ...(step.as ? { as: step.as } : {}), ...(expect === 'ok' ? {} : { expect }) };
    this.flushHeader();
    this.write(`  - ${JSON.stringify(body)}\n`);
    this.steps++;
  }

  /** A comment line among the steps (before the first step it waits with the header). */
  comment(text: string): void {
    const line = `  # ${text.replace(/\n/g, ' ')}\n`;
    if (this.pending !== undefined) this.pending += line;
    else this.write(line);
  }

  close(): void {
    if (this.fd !== undefined && this.steps === 0) {
      this.pending = undefined;
      this.write('# Recorded by gmemkit serve: no step ran in this session, so there is nothing to replay.\n');
    }
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private flushHeader(): void {
    if (this.pending === undefined) return;
    this.write(this.pending);
    this.pending = undefined;
  }

  private write(s: string): void {
    if (this.fd !== undefined) writeSync(this.fd, s);
  }
}
