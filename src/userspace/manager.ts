// The conversion manager: turns a guest's conversion request (already translated to guest_memfd
// page ranges) into conversion ioctls, and when the kernel says EAGAIN finds the holders at
// error_offset, has them release (waiting for I/O in flight, never cancelling it) and retries,
// as the policy says. While a to-private conversion runs, new pins in its range are fenced.
// A request is a ConversionTask: an explicit state machine advanced one manager action per
// step(), so that a checker or simulator can interleave it with everything else; run() drives
// it to the end with a cooperative environment (the device completes what is awaited).
import type { Unsupported } from '../backend/backend.js';
import { MEMORY_ATTRIBUTES, PAGE_SIZE } from '../model/abi.js';
import type { Segment } from '../model/interval-map.js';
import { fail, type Failure } from '../model/result.js';
import type { Holder } from './holders.js';
import type { Attribute, GmemRange } from './memory-map.js';
import type { Policy } from './policies.js';
import type { Userspace } from './userspace.js';

export type Direction = 'private' | 'shared';
export type TaskPhase = 'start' | 'call' | 'wait' | 'backoff' | 'bounced' | 'done' | 'failed';

export interface ConversionRequest {
  readonly id: number;
  readonly segments: readonly GmemRange[];
  readonly to: Direction;
  readonly policy: Policy;
  /** Where the request came from: a VMM call, a MapGPA hypercall or a memory-fault exit. */
  readonly origin: string;
  /** For guest requests: VM fd and first GPA, so a bounce can name the next GPA. */
  readonly vmFd?: number;
}

export class ConversionTask {
  phase: TaskPhase = 'start';
  /** Index of the segment the next ioctl converts. */
  seg = 0;
  retries = 0;
  eagains = 0;
  /** Steps spent waiting (for I/O, backoff, or a guest retry). */
  stalled = 0;
  /** Per segment, the attributes the VMM knew before converting it (for the rollback). */
  readonly before: Segment<Attribute | undefined>[][] = [];
  readonly released: Holder[] = [];
  readonly waited: Holder[] = [];
  awaiting: Holder[] = [];
  backoff = 0;
  /** Guest-retry: attempts in a row that made no progress, and the GPA the guest resumes at. */
  noProgress = 0;
  nextGpa?: number;
  /** Why the request failed: a kernel failure, or a backend that cannot do the conversion at all. */
  failure?: Failure | Unsupported;
  vmStopped = false;
  constructor(readonly request: ConversionRequest) {}
  get terminal(): boolean { return this.phase === 'done' || this.phase === 'failed'; }
}

export interface ManagerOptions {
  /** Fence new pins in a range while it is being made private (default true). */
  readonly fence: boolean;
  /** Wait for in-flight I/O before retrying (default true); false is a mutant for the checker. */
  readonly waitForIo?: boolean;
}

/** The environment a task waits on: who completes in-flight I/O, and what users do meanwhile. */
export interface Environment {
  /** The device completes this I/O (data moves, pin dropped). */
  complete(io: Holder): void;
}

export class ConversionManager {
  private nextRequest = 1;
  constructor(private readonly us: Userspace, readonly options: ManagerOptions) {}

  request(segments: readonly GmemRange[], to: Direction, policy: Policy, origin: string, vmFd?: number): ConversionTask {
    return new ConversionTask({ id: this.nextRequest++, segments, to, policy, origin, ...(vmFd === undefined ? {} : { vmFd }) });
  }

  /** Advance the task by one manager action. */
  step(t: ConversionTask): void {
    switch (t.phase) {
      case 'start': return this.begin(t);
      case 'call': return this.call(t);
      case 'wait':
        for (const h of t.awaiting) if (h.state !== 'in-flight' && !t.waited.includes(h)) t.waited.push(h);
        t.awaiting = t.awaiting.filter((h) => h.state === 'in-flight');
        if (t.awaiting.length === 0) this.resume(t);
        else t.stalled++;
        return;
      case 'backoff':
        t.stalled++;
        if (--t.backoff <= 0) this.resume(t);
        return;
      case 'bounced': case 'done': case 'failed':
        return;
    }
  }

  /** Drive a task to its end with a cooperative environment. Guest bounces are retried by the guest. */
  run(t: ConversionTask, env: Environment, maxSteps = 10_000): ConversionTask {
    for (let n = 0; !t.terminal; n++) {
      if (n >= maxSteps) {
        this.fail(t, fail('EBUSY', `no progress after ${maxSteps} steps`));
        break;
      }
      // The device completes what the manager awaits, also while a bounced guest is away.
      if (t.phase === 'wait' || t.phase === 'bounced') {
        for (const io of t.awaiting) if (io.state === 'in-flight') env.complete(io);
      }
      if (t.phase === 'bounced') this.guestRetry(t);
      else this.step(t);
    }
    return t;
  }

  /** The guest re-issues a bounced request (TDX: MapGPA again from the next GPA). */
  guestRetry(t: ConversionTask): void {
    if (t.phase !== 'bounced') return;
    t.stalled++;
    for (const h of t.awaiting) if (h.state !== 'in-flight' && !t.waited.includes(h)) t.waited.push(h);
    t.awaiting = t.awaiting.filter((h) => h.state === 'in-flight');
    this.us.events.emit('retried', { request: t.request, attempt: t.retries + 1 });
    t.retries++;
    t.phase = 'call';
  }

  private begin(t: ConversionTask): void {
    const { to, policy, segments } = t.request;
    if (to === 'private' && this.options.fence) this.us.fence(t.request.id, segments);
    if (to === 'private' && policy.releaseBefore) {
      for (const range of segments) for (const h of this.us.holdersOver(range)) this.releaseHolder(t, h, range);
    }
    t.phase = t.awaiting.length ? 'wait' : 'call';
  }

  private releaseHolder(t: ConversionTask, h: Holder, range: GmemRange): void {
    if (!h.holding || t.awaiting.includes(h)) return; // an I/O already awaited is not released again
    const answer = h.release(range);
    if (!t.released.includes(h)) t.released.push(h);
    if (answer === 'wait') t.awaiting.push(h);
    if (t.request.policy.reestablishAfter && h.reestablishable) this.us.rememberReleased(range, h);
    this.us.events.emit('released', { request: t.request, holder: h, how: answer === 'wait' ? 'waiting for its I/O to complete' : 'released' });
  }

  private resume(t: ConversionTask): void {
    // After a preunmap wait nothing was called yet: the first call is no retry.
    if (t.eagains > 0) this.us.events.emit('retried', { request: t.request, attempt: t.retries });
    t.phase = 'call';
  }

  private call(t: ConversionTask): void {
    const range = t.request.segments[t.seg]!;
    t.before[t.seg] ??= this.us.memory.attributesOf(range);
    const r = this.us.backend.setMemoryAttributes2(range.fd, {
      offset: BigInt(range.lo * PAGE_SIZE), size: BigInt((range.hi - range.lo) * PAGE_SIZE),
      attributes: t.request.to === 'private' ? MEMORY_ATTRIBUTES.PRIVATE : 0n, flags: 0n,
    });
    if (r.ok) {
      t.noProgress = 0;
      if (++t.seg === t.request.segments.length) this.finish(t);
      return;
    }
    if (!('errno' in r) || r.errno !== 'EAGAIN') return this.fail(t, r);
    t.eagains++;
    const offset = Number(r.out?.error_offset ?? BigInt(range.lo * PAGE_SIZE));
    const holders = this.us.holdersAt(range.fd, Math.floor(offset / PAGE_SIZE));
    this.us.events.emit('blocked', { request: t.request, fd: range.fd, offset, holders });
    const policy = t.request.policy;
    if (policy.onBlocked === 'stop-vm') {
      t.vmStopped = true;
      return this.fail(t, fail('EAGAIN', `conversion blocked at offset ${offset}; the VMM stops the VM`));
    }
    // Out of budget: fail without releasing anything more (there is no next attempt to clear the way for).
    if (policy.onBlocked === 'bounce-to-guest') {
      if (++t.noProgress > policy.maxRetries) {
        return this.fail(t, fail('EAGAIN', `the guest gave up after ${policy.maxRetries} retries without progress at offset ${offset}`));
      }
      for (const h of holders) this.releaseHolder(t, h, range);
      t.nextGpa = t.request.vmFd === undefined ? undefined : this.us.memory.gmemToGpa(t.request.vmFd, range.fd, range.lo);
      t.phase = 'bounced';
      return;
    }
    if (t.retries >= policy.maxRetries) {
      return this.fail(t, fail('EAGAIN', `gave up after ${t.retries} retries: offset ${offset} is still blocked${holders.length ? '' : ' by a reference no known holder owns'}`));
    }
    for (const h of holders) this.releaseHolder(t, h, range);
    t.retries++;
    if (t.awaiting.length && this.options.waitForIo !== false) t.phase = 'wait';
    else if (holders.length === 0) { t.backoff = 2 ** Math.min(t.retries, 6); t.phase = 'backoff'; }
    else this.resume(t);
  }

  private finish(t: ConversionTask): void {
    this.us.unfence(t.request.id);
    if (t.request.to === 'shared') {
      for (const range of t.request.segments) {
        if (t.request.policy.reestablishAfter) this.us.reestablishReleased(range);
        this.us.remapRevocable(range); // importers whose mapping a to-private conversion revoked
      }
    }
    t.phase = 'done';
    this.us.events.emit('completed', { request: t.request, retries: t.retries, released: t.released, waited: t.waited });
  }

  /**
   * A request that cannot complete leaves no attribute changed: converted segments roll back to
   * what they were (runs that already had the target stay; unknown runs get the opposite).
   */
  private fail(t: ConversionTask, failure: Failure | Unsupported): void {
    const back: Attribute = t.request.to === 'private' ? 'shared' : 'private';
    for (let i = t.seg - 1; i >= 0; i--) {
      const range = t.request.segments[i]!;
      for (const run of t.before[i] ?? [{ lo: range.lo, hi: range.hi, value: undefined }]) {
        if (run.value === t.request.to) continue;
        this.us.backend.setMemoryAttributes2(range.fd, {
          offset: BigInt(run.lo * PAGE_SIZE), size: BigInt((run.hi - run.lo) * PAGE_SIZE),
          attributes: (run.value ?? back) === 'private' ? MEMORY_ATTRIBUTES.PRIVATE : 0n, flags: 0n,
        });
      }
    }
    t.seg = 0;
    this.us.unfence(t.request.id);
    // Holders released before the ioctl (preunmap) come back: the range is still shared.
    if (t.request.to === 'private' && t.request.policy.reestablishAfter) {
      for (const range of t.request.segments) this.us.reestablishReleased(range, t.released);
    }
    t.failure = failure;
    t.phase = 'failed';
    this.us.events.emit('failed', { request: t.request, reason: 'why' in failure ? failure.why : 'unsupported' in failure ? failure.unsupported : String(failure) });
  }
}
