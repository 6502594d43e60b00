// One connection of `gmemkit serve`: its own world (a model backend, the userspace half, the
// handles named so far), fed one JSON-RPC line at a time. A request whose method is a scenario
// op is validated by the scenario loader (the same messages) and executed by the scenario
// runner's World, and its result is the outcome as `run --json` prints it. The server methods
// (`session`, `subscribe`, `guest_boot`, `vcpu_run`) only choose the world, route events and
// drive the guest of the CoCo workload; the kernel's behaviour is all in the model.
import { ModelBackend } from '../backend/model-backend.js';
import { FULL_MACHINE, PROBED_MACHINE } from '../model/platform.js';
import { DEFAULT_PROFILE, findProfile } from '../model/profile.js';
import { parseScenario, ScenarioError, validateStep, type Problem, type Scenario, type Step } from '../scenario/load.js';
import { ALL_OPS, type HandleKind } from '../scenario/ops.js';
import { toJson } from '../scenario/report.js';
import { World, type StepResult } from '../scenario/run.js';
import { parseSize, show } from '../scenario/values.js';
import type { Holder } from '../userspace/holders.js';
import { CocoGuest, type GuestExit } from './guest.js';
import { errorReply, notification, reply, RPC, type Id, type RpcError } from './protocol.js';
import type { Recorder } from './record.js';

/** The events a client may subscribe to. */
export const EVENTS = ['blocked', 'released', 'retried', 'completed', 'failed', 'exit', 'violation'] as const;
export type EventName = (typeof EVENTS)[number];

const SERVER_METHODS = ['session', 'subscribe', 'guest_boot', 'vcpu_run'];
/** Keys of a request's params that are scenario keywords, not fields. */
const NOT_FIELDS = ['op', 'expect', 'known_difference', '__proto__'];

/** A JSON-RPC error to reply with (not an Error: a refused request needs no stack trace). */
class RpcFailure {
  constructor(readonly rpc: RpcError) {}
}
const failure = (code: number, message: string, data?: unknown): RpcFailure => new RpcFailure({ code, message, ...(data === undefined ? {} : { data }) });

export interface SessionOptions {
  /** Where to record the session as a scenario, if anywhere. */
  readonly record?: Recorder;
  /** The name of the recorded scenario. */
  readonly name?: string;
  /** Check the model's invariants after every step (default true). */
  readonly invariants?: boolean;
}

type Params = Record<string, unknown>;

export class Session {
  private world?: World;
  private setup: Pick<Scenario, 'machine' | 'manager'> & { profile: string } = {
    profile: DEFAULT_PROFILE.name, machine: 'full', manager: { fence: true, waitForIo: true },
  };
  private readonly kinds = new Map<string, { kind: HandleKind; step: number }>();
  private steps = 0;
  private readonly subscribed = new Set<EventName>();
  private readonly guests = new Map<string, CocoGuest>();
  private closed = false;

  constructor(private readonly send: (line: string) => void, private readonly opts: SessionOptions = {}) {}

  /** Handle one line of input; replies and notifications go to `send`, in order. */
  handleLine(line: string): void {
    if (this.closed || line.trim() === '') return;
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch (e) {
      this.send(errorReply(null, { code: RPC.PARSE_ERROR, message: `not valid JSON: ${(e as Error).message}` }));
      return;
    }
    if (Array.isArray(msg)) {
      if (msg.length === 0) { this.send(errorReply(null, { code: RPC.INVALID_REQUEST, message: 'an empty batch; a batch is a non-empty list of requests' })); return; }
      const out = msg.map((m) => this.dispatch(m)).filter((x): x is string => x !== undefined);
      if (out.length) this.send(`[${out.join(',')}]`);
      return;
    }
    const out = this.dispatch(msg);
    if (out !== undefined) this.send(out);
  }

  /** The connection ended: the world goes, the recording is closed. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.world?.dispose();
    this.world = undefined;
    this.opts.record?.close();
  }

  private dispatch(msg: unknown): string | undefined {
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
      return errorReply(null, { code: RPC.INVALID_REQUEST, message: `a request is an object with jsonrpc, method, params and id, got ${show(msg)}` });
    }
    const m = msg as Record<string, unknown>;
    const id = m.id;
    const validId = id === undefined || id === null || typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id));
    const rid: Id = validId && id !== undefined ? (id as Id) : null;
    const invalid = (message: string) => errorReply(rid, { code: RPC.INVALID_REQUEST, message });
    if (m.jsonrpc !== '2.0') return invalid(`jsonrpc: expected "2.0", got ${show(m.jsonrpc)}`);
    if (!validId) return invalid(`id: expected a string, a number or null, got ${show(id)}`);
    if (typeof m.method !== 'string') return invalid(`method: expected a method name (an op, or ${SERVER_METHODS.join(', ')}), got ${show(m.method)}`);
    const isNotification = id === undefined;
    try {
      const params = this.paramsOf(m.params);
      const result = this.call(m.method, params);
      return isNotification ? undefined : reply(rid, result);
    } catch (e) {
      if (!(e instanceof RpcFailure)) {
        // A gmemkit bug: say so, keep the connection (the world may be inconsistent from here on).
        process.stderr.write(`gmemkit serve: internal error on ${show(m.method)}: ${(e as Error)?.stack ?? String(e)}\n`);
        return isNotification ? undefined : errorReply(rid, { code: RPC.INTERNAL_ERROR, message: `internal error (a gmemkit bug): ${(e as Error)?.message ?? String(e)}` });
      }
      return isNotification ? undefined : errorReply(rid, e.rpc);
    }
  }

  private paramsOf(p: unknown): Params {
    if (p === undefined) return {};
    if (typeof p !== 'object' || p === null || Array.isArray(p)) {
      throw failure(RPC.INVALID_PARAMS, `params: expected an object of the step's fields (by name), got ${show(p)}`);
    }
    return p as Params;
  }

  private call(method: string, params: Params): unknown {
    switch (method) {
      case 'session': return this.sessionMethod(params);
      case 'subscribe': return this.subscribe(params);
      case 'guest_boot': return this.guestBoot(params);
      case 'vcpu_run': return this.vcpuRun(params);
    }
    if (!Object.hasOwn(ALL_OPS, method)) {
      const problems: Problem[] = [];
      validateStep({ op: method }, new Map(), problems, 1); // the loader's "unknown op ...; allowed: ..."
      throw failure(RPC.METHOD_NOT_FOUND, `${problems[0]!.message}; server methods: ${SERVER_METHODS.join(', ')}`);
    }
    return this.op(method, params).outcome;
  }

  // ------------------------------------------------------------ ops

  private op(method: string, params: Params, fromGuest = false): { outcome: unknown; result: StepResult } {
    for (const k of NOT_FIELDS) {
      if (Object.hasOwn(params, k)) {
        throw failure(RPC.INVALID_PARAMS, `(${method}) '${k}' is not a field: the method is the op, the reply is the outcome`, { op: method, field: k });
      }
    }
    const as = params.as;
    const had = typeof as === 'string' && this.kinds.has(as);
    const problems: Problem[] = [];
    const body = validateStep({ op: method, ...params }, this.kinds, problems, this.steps + 1);
    if (!body) {
      if (typeof as === 'string' && !had) this.kinds.delete(as); // a refused request names nothing
      const first = problems[0]!;
      throw failure(RPC.INVALID_PARAMS, problems.map((p) => p.message).join('; '), {
        op: method, ...(first.field ? { field: first.field } : {}), problems: problems.map((p) => p.message),
      });
    }
    const world = this.ensureWorld(); // only now: a refused request leaves `session` still possible
    const step: Step = { index: ++this.steps, ...body };
    const result = world.step(step);
    this.opts.record?.step(step, result);
    if (result.outcome.kind === 'exit' && !fromGuest) this.notify('exit', outcomeJson(result, this.setup));
    if (result.violations.length) this.notify('violation', { step: step.index, op: method, violations: outcomeJson(result, this.setup, 'violations') });
    return { outcome: fromGuest ? undefined : outcomeJson(result, this.setup), result };
  }

  private ensureWorld(): World {
    if (this.world) return this.world;
    const profile = findProfile(this.setup.profile)!;
    const backend = new ModelBackend({ profile, machine: this.setup.machine === 'probed' ? PROBED_MACHINE : FULL_MACHINE, checkInvariants: this.opts.invariants ?? true });
    const world = (this.world = new World(backend, profile, this.setup.manager));
    this.opts.record?.header(this.setup, this.opts.name ?? 'recorded gmemkit serve session');
    const ev = world.us.events;
    const names = (hs: readonly Holder[]) => hs.map((h) => h.name);
    ev.on('blocked', (e) => this.notify('blocked', { request: e.request.id, fd: this.fdName(e.fd), offset: e.offset, holders: names(e.holders) }));
    ev.on('released', (e) => this.notify('released', { request: e.request.id, holder: e.holder.name, how: e.how }));
    ev.on('retried', (e) => this.notify('retried', { request: e.request.id, attempt: e.attempt }));
    ev.on('completed', (e) => this.notify('completed', { request: e.request.id, retries: e.retries, released: names(e.released), waited: names(e.waited) }));
    ev.on('failed', (e) => this.notify('failed', { request: e.request.id, reason: e.reason }));
    return world;
  }

  /** A guest_memfd's handle name (events name handles, as scenarios do), or its number. */
  private fdName(fd: number): string | number {
    for (const [name, v] of this.world!.handles) if (v === fd && this.kinds.get(name)?.kind === 'gmem') return name;
    return fd;
  }

  private notify(event: EventName, params: unknown): void {
    if (this.subscribed.has(event)) this.send(notification(event, params));
  }

  // ------------------------------------------------------------ server methods

  /** `session { profile, machine, manager }`: validated by the scenario loader, before the first op. */
  private sessionMethod(params: Params): unknown {
    if (this.world) throw failure(RPC.BAD_STATE, `session: must come before the first op (${this.steps} step(s) have run on this connection; a new connection is a new world)`);
    const allowed = ['profile', 'machine', 'manager'];
    for (const k of Object.keys(params)) if (!allowed.includes(k)) throw failure(RPC.INVALID_PARAMS, `session: unknown field '${k}'; allowed: ${allowed.join(', ')}`, { field: k });
    let s: Scenario;
    try {
      s = parseScenario(JSON.stringify({ name: 'session', ...params, steps: [{ op: 'close', fd: -1 }] }), 'session');
    } catch (e) {
      if (e instanceof RangeError) throw failure(RPC.INVALID_PARAMS, `session: params nested too deeply; allowed: profile (a name), machine (full or probed), manager ({ fence, wait_for_io })`);
      if (!(e instanceof ScenarioError)) throw e;
      throw failure(RPC.INVALID_PARAMS, `session: ${e.errors.map((x) => x.message).join('; ')}`, { field: e.errors[0]?.field });
    }
    if (s.profiles.length !== 1) throw failure(RPC.INVALID_PARAMS, 'session: profile: one profile per connection (a list runs a scenario under each; open a connection per profile)', { field: 'profile' });
    this.setup = { profile: s.profiles[0]!, machine: s.machine, manager: s.manager };
    const world = this.ensureWorld();
    return { profile: this.setup.profile, machine: this.setup.machine, backend: world.backend.identity() };
  }

  private subscribe(params: Params): unknown {
    for (const k of Object.keys(params)) if (k !== 'events') throw failure(RPC.INVALID_PARAMS, `subscribe: unknown field '${k}'; allowed: events`, { field: k });
    const ev = params.events ?? 'all';
    const list = ev === 'all' ? [...EVENTS] : ev;
    if (!Array.isArray(list) || !list.every((x): x is EventName => typeof x === 'string' && (EVENTS as readonly string[]).includes(x))) {
      throw failure(RPC.INVALID_PARAMS, `subscribe: events: expected "all" or a list of ${EVENTS.join(', ')}, got ${show(ev)}`, { field: 'events' });
    }
    this.subscribed.clear();
    for (const e of list) this.subscribed.add(e);
    return { events: [...this.subscribed] };
  }

  private vmHandle(method: string, params: Params): string {
    const vm = params.vm;
    if (typeof vm !== 'string') throw failure(RPC.INVALID_PARAMS, `(${method}) field 'vm': expected the name of a vm handle, got ${show(vm)}`, { field: 'vm' });
    const k = this.kinds.get(vm);
    if (!k) throw failure(RPC.INVALID_PARAMS, `(${method}) field 'vm': handle '${vm}' is not defined`, { field: 'vm' });
    if (k.kind !== 'vm') throw failure(RPC.INVALID_PARAMS, `(${method}) field 'vm': handle '${vm}' is a ${k.kind} handle (step ${k.step}); expected a vm handle`, { field: 'vm' });
    return vm;
  }

  /** `guest_boot { vm, ram, boot_private, boot_chunk, bounce_conversions, bounce_size, seed }`: the guest of the CoCo workload. */
  private guestBoot(params: Params): unknown {
    const fields: Record<string, { key: keyof GuestShapeIn; dflt: number; ctype: 'u64' | 'u32' }> = {
      ram: { key: 'ram', dflt: 16 << 20, ctype: 'u64' },
      boot_private: { key: 'bootPrivate', dflt: 12 << 20, ctype: 'u64' },
      boot_chunk: { key: 'bootChunk', dflt: 512 << 10, ctype: 'u64' },
      bounce_conversions: { key: 'bounceConversions', dflt: 48, ctype: 'u32' },
      bounce_size: { key: 'bounceSize', dflt: 64 << 10, ctype: 'u64' },
      seed: { key: 'seed', dflt: 1, ctype: 'u32' },
    };
    const bad = (field: string, message: string) => failure(RPC.INVALID_PARAMS, `(guest_boot) field '${field}': ${message}`, { field });
    for (const k of Object.keys(params)) {
      if (k !== 'vm' && !Object.hasOwn(fields, k)) throw failure(RPC.INVALID_PARAMS, `(guest_boot) unknown field '${k}'; allowed: vm, ${Object.keys(fields).join(', ')}`, { field: k });
    }
    const vm = this.vmHandle('guest_boot', params);
    if (this.guests.has(vm)) throw failure(RPC.BAD_STATE, `guest_boot: the guest of '${vm}' is already running`);
    const shape: GuestShapeIn = { ram: 0, bootPrivate: 0, bootChunk: 0, bounceConversions: 0, bounceSize: 0, seed: 0 };
    for (const [name, f] of Object.entries(fields)) {
      const r = parseSize(params[name] ?? f.dflt, f.ctype);
      if (!r.ok) throw bad(name, r.message);
      if (r.value > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(name, `${r.value} is larger than the model's guest memory can be`);
      shape[f.key] = Number(r.value);
    }
    const page = 4096;
    for (const name of ['ram', 'boot_chunk', 'bounce_size']) if (shape[fields[name]!.key] <= 0 || shape[fields[name]!.key] % page) throw bad(name, 'must be a positive multiple of 4K');
    if (shape.bootPrivate > shape.ram) throw bad('boot_private', `must be at most ram (${shape.ram})`);
    if (shape.bootPrivate % shape.bootChunk) throw bad('boot_private', `must be a multiple of boot_chunk (${shape.bootChunk})`);
    if ((shape.ram - shape.bootPrivate) % shape.bounceSize) throw bad('bounce_size', `must divide ram - boot_private (${shape.ram - shape.bootPrivate})`);
    if (shape.bounceConversions > 0 && shape.ram === shape.bootPrivate) throw bad('bounce_conversions', 'needs ram beyond boot_private for bounce buffers');
    if (shape.bounceConversions > 1_000_000) throw bad('bounce_conversions', 'at most 1000000');
    this.ensureWorld();
    this.opts.record?.comment(`guest_boot vm=${vm}: the guest of the CoCo workload ${JSON.stringify(shape)}`);
    this.guests.set(vm, new CocoGuest(shape, (gpa, size, isPrivate) => this.op('guest_read', { vm, gpa, length: size, private: isPrivate }, true).result.outcome));
    return { vm, ...shape };
  }

  /** `vcpu_run { vm, ret }`: KVM_RUN for the guest; the result is the next exit. */
  private vcpuRun(params: Params): GuestExit {
    for (const k of Object.keys(params)) if (k !== 'vm' && k !== 'ret') throw failure(RPC.INVALID_PARAMS, `(vcpu_run) unknown field '${k}'; allowed: vm, ret`, { field: k });
    const vm = this.vmHandle('vcpu_run', params);
    const guest = this.guests.get(vm);
    if (!guest) throw failure(RPC.BAD_STATE, `vcpu_run: no guest runs in '${vm}'; start it with guest_boot`);
    let ret: number | undefined;
    if (params.ret !== undefined) {
      const r = params.ret === 'EAGAIN' ? { ok: true as const, value: -11n } : parseSize(params.ret, 's64');
      if (!r.ok) throw failure(RPC.INVALID_PARAMS, `(vcpu_run) field 'ret': ${r.message}; the hypercall's return value: 0, or a negative errno (-11 or "EAGAIN": try again)`, { field: 'ret' });
      ret = Number(r.value);
    }
    if (guest.pendingHypercall && ret === undefined) {
      throw failure(RPC.INVALID_PARAMS, "(vcpu_run) field 'ret': required after a HYPERCALL exit: 0 when the range is converted, -11 (\"EAGAIN\") to have the guest try again, another negative errno to fail it", { field: 'ret' });
    }
    const exit = guest.run(ret);
    this.opts.record?.comment(`vcpu_run vm=${vm}${ret === undefined ? '' : ` ret=${ret}`} -> ${JSON.stringify(exit)}`);
    this.notify('exit', exit);
    return exit;
  }
}

type GuestShapeIn = { -readonly [K in keyof import('./guest.js').GuestShape]: number };

/** A step's outcome (or its violations) exactly as `run --json` prints it. */
function outcomeJson(r: StepResult, setup: { profile: string; machine: Scenario['machine']; manager: Scenario['manager'] }, part: 'outcome' | 'violations' = 'outcome'): unknown {
  const scenario: Scenario = { file: '', name: '', profiles: [setup.profile], machine: setup.machine, manager: setup.manager, steps: [] };
  const doc = toJson([{ scenario, profile: setup.profile, identity: { backend: 'model', kernel: '', flavour: '' } as never, steps: [r], passed: true, unsupported: 0 }]) as {
    scenarios: { steps: Record<string, unknown>[] }[];
  };
  return doc.scenarios[0]!.steps[0]![part];
}
