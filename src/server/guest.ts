// The guest side of the bundled CoCo workload (src/workload/coco-boot.ts), run by `gmemkit
// serve` against a VMM under test: the guest issues the workload's MapGPA requests one KVM exit
// at a time (`vcpu_run`), the client converts (or not) and sets the hypercall's return value,
// and the guest then touches the first and last page of the range as it expects them (a private
// or shared access). A page in the wrong state is a KVM_EXIT_MEMORY_FAULT to the client, as the
// kernel gives it. The guest never converts anything itself: its only kernel calls are those
// accesses, made as `guest_read` steps so that a recording replays them.
import type { Outcome } from '../scenario/expect.js';
import { plan, type GuestRequest } from '../workload/coco-boot.js';
import { mulberry32 } from '../workload/rng.js';

/** The hypercall's return values a guest tells apart: success, "try again" (TDX RETRY), anything else fails. */
const EAGAIN = -11;
/** Hypercall retries, and memory faults on one verification, before the guest gives the request up. */
export const GUEST_PATIENCE = 3;

export interface GuestShape {
  readonly ram: number;
  readonly bootPrivate: number;
  readonly bootChunk: number;
  readonly bounceConversions: number;
  readonly bounceSize: number;
  readonly seed: number;
}

/** A KVM exit as the server reports it (or the end of the guest). */
export type GuestExit =
  | { exit: 'HYPERCALL'; nr: 'KVM_HC_MAP_GPA_RANGE'; request: number; gpa: number; size: number; to: 'private' | 'shared'; attempt: number }
  | { exit: 'MEMORY_FAULT'; request: number; gpa: number; size: number; private: boolean }
  | { exit: 'SHUTDOWN'; requests: number; completed: number; failed: number; faults: number };

/** A guest access the server makes for the guest, as a scenario step: returns its outcome. */
export type Access = (gpa: number, size: number, isPrivate: boolean) => Outcome;

export class CocoGuest {
  private readonly requests: readonly GuestRequest[];
  private next = 0;
  /** The request in progress: waiting for the hypercall's return, or being verified. */
  private current?: { req: GuestRequest; index: number; attempts: number; faults: number; phase: 'hypercall' | 'verify' };
  completed = 0;
  failed = 0;
  faults = 0;

  constructor(shape: GuestShape, private readonly access: Access) {
    this.requests = plan(shape, mulberry32(shape.seed));
  }

  get pendingHypercall(): boolean { return this.current?.phase === 'hypercall'; }

  /** One KVM_RUN: `ret` is the return value of the last hypercall exit (required after one). */
  run(ret: number | undefined): GuestExit {
    const c = this.current;
    if (c?.phase === 'hypercall') {
      if (ret === EAGAIN && ++c.attempts <= GUEST_PATIENCE) return this.hypercall();
      if (ret !== 0) return this.give(false);
      c.phase = 'verify';
    }
    if (this.current?.phase === 'verify') return this.verify();
    if (this.next >= this.requests.length) {
      return { exit: 'SHUTDOWN', requests: this.requests.length, completed: this.completed, failed: this.failed, faults: this.faults };
    }
    this.current = { req: this.requests[this.next]!, index: ++this.next, attempts: 0, faults: 0, phase: 'hypercall' };
    return this.hypercall();
  }

  private hypercall(): GuestExit {
    const c = this.current!;
    return { exit: 'HYPERCALL', nr: 'KVM_HC_MAP_GPA_RANGE', request: c.index, gpa: c.req.gpa, size: c.req.size, to: c.req.to, attempt: c.attempts };
  }

  /** The guest reads the whole range as it now expects it (accepting it); a fault goes to the VMM. */
  private verify(): GuestExit {
    const c = this.current!;
    const o = this.access(c.req.gpa, c.req.size, c.req.to === 'private');
    if (o.kind === 'ok') return this.give(true);
    if (o.kind === 'exit' && o.exit === 'MEMORY_FAULT' && ++c.faults <= GUEST_PATIENCE) {
      this.faults++;
      return { exit: 'MEMORY_FAULT', request: c.index, gpa: Number(o.gpa), size: Number(o.size), private: o.private };
    }
    return this.give(false);
  }

  /** The request is over (verified, or given up); the guest goes on with the next. */
  private give(ok: boolean): GuestExit {
    if (ok) this.completed++;
    else this.failed++;
    this.current = undefined;
    return this.run(undefined);
  }
}
