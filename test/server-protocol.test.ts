// `gmemkit serve`, one session in process: the contract of docs/scenario-language.md §3
// (the additions table, `gmemkit serve`) and docs/server.md. A method is an op with the step's
// fields as params and its result is the outcome exactly as `run --json` prints it; bad JSON,
// an unknown method and a bad field are JSON-RPC 2.0 errors -32700, -32601, -32602 (JSON-RPC
// 2.0 §5.1) with the loader's message, and the session stays usable; events arrive as
// notifications; the guest of the CoCo workload waits for the client's conversions; a recorded
// session replays with `gmemkit run`.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadScenarioFile, parseScenario, ScenarioError } from '../src/scenario/load.js';
import { toJson } from '../src/scenario/report.js';
import { runScenario } from '../src/scenario/run.js';
import { GUEST_PATIENCE } from '../src/server/guest.js';
import { LineSplitter } from '../src/server/protocol.js';
import { Recorder } from '../src/server/record.js';
import { Session } from '../src/server/session.js';

type Msg = { jsonrpc: string; id?: unknown; result?: any; error?: { code: number; message: string; data?: any }; method?: string; params?: any };

/** A session and a way to talk to it: each call returns every line the session sent, parsed. */
function open(opts: ConstructorParameters<typeof Session>[1] = {}) {
  const out: string[] = [];
  const s = new Session((l) => out.push(l), opts);
  let id = 0;
  const raw = (line: string): Msg[] => { s.handleLine(line); return out.splice(0).map((l) => JSON.parse(l) as Msg); };
  // bigints (a loaded scenario's integers) go as numbers, as a client writes them
  const call = (method: string, params?: unknown): Msg[] => raw(JSON.stringify({ jsonrpc: '2.0', id: ++id, method, ...(params === undefined ? {} : { params }) },
    (_k, v) => (typeof v === 'bigint' ? Number(v) : v)));
  /** The reply (the last line) of a call. */
  const rpc = (method: string, params?: unknown): Msg => call(method, params).at(-1)!;
  return { s, raw, call, rpc };
}

const BLOCKED_SETUP: [string, Record<string, unknown>][] = [
  ['create_vm', { type: 'sw_protected', as: 'vm' }],
  ['create_guest_memfd', { vm: 'vm', size: '16K', flags: ['MMAP', 'INIT_SHARED'], as: 'gmem' }],
  ['mmap', { fd: 'gmem', length: '16K', as: 'map' }],
  ['pin_user_pages', { map: 'map', offset: '4K', length: '4K', longterm: true, as: 'pin' }],
];
const TO_PRIVATE = { fd: 'gmem', offset: 0, size: '16K', attributes: ['PRIVATE'] };

/** The loader's message for a one-step scenario (what `gmemkit run` would say of that step). */
function loaderMessage(step: Record<string, unknown>, before: Record<string, unknown>[] = []): string {
  try {
    parseScenario(JSON.stringify({ name: 'x', steps: [...before, step] }));
  } catch (e) {
    if (e instanceof ScenarioError) return e.errors.map((x) => x.message).join('; ');
    throw e;
  }
  throw new Error('the step is valid');
}

test('a client from the contract drives a blocked conversion to completion (kernel-semantics.md §4: EAGAIN + error_offset)', () => {
  const { rpc } = open();
  assert.deepEqual(rpc('session', { profile: 'ipc-v8' }).result.profile, 'ipc-v8');
  for (const [m, p] of BLOCKED_SETUP) assert.deepEqual(rpc(m, p).result, { kind: 'ok', handle: p.as });
  const blocked = rpc('set_memory_attributes2', TO_PRIVATE).result;
  assert.equal(blocked.kind, 'errno');
  assert.equal(blocked.errno, 'EAGAIN');
  assert.deepEqual(blocked.out, { error_offset: '4096' });
  assert.deepEqual(rpc('unpin_user_pages', { pin: 'pin' }).result, { kind: 'ok' });
  assert.deepEqual(rpc('set_memory_attributes2', TO_PRIVATE).result, { kind: 'ok' });
  assert.equal(rpc('read', { map: 'map', length: 1 }).result.signal, 'SIGBUS');
});

test('each result is the outcome exactly as run --json prints it (examples/01, step by step)', () => {
  const file = 'examples/01-pinned-page-blocks-conversion.yaml';
  const scenario = loadScenarioFile(file);
  const doc = toJson(runScenario(scenario)) as { scenarios: { steps: { outcome: unknown }[] }[] };
  const { rpc } = open();
  rpc('session', { profile: scenario.profiles[0] });
  scenario.steps.forEach((step, i) => {
    const r = rpc(step.op, { ...step.written, ...(step.as ? { as: step.as } : {}) });
    assert.deepEqual(r.result, doc.scenarios[0]!.steps[i]!.outcome, `step ${step.index} (${step.op})`);
  });
});

// Bad requests: the code of JSON-RPC 2.0 §5.1, the message the loader gives for the same step,
// and the session goes on (the blocked conversion still works afterwards).
const BAD: { name: string; line: string; code: number; message: string | RegExp }[] = [
  { name: 'not JSON', line: '{"jsonrpc":"2.0",', code: -32700, message: /^not valid JSON: / },
  { name: 'binary garbage', line: '\u0000\u00ff\u0001', code: -32700, message: /^not valid JSON: / },
  { name: 'a JSON scalar', line: '42', code: -32600, message: /^a request is an object/ },
  { name: 'no jsonrpc', line: '{"id":1,"method":"create_vm"}', code: -32600, message: 'jsonrpc: expected "2.0", got nothing' },
  { name: 'a method that is not a string', line: '{"jsonrpc":"2.0","id":1,"method":7}', code: -32600, message: /^method: expected a method name/ },
  { name: 'an id that is an object', line: '{"jsonrpc":"2.0","id":{},"method":"create_vm"}', code: -32600, message: /^id: expected a string, a number or null/ },
  { name: 'params by position', line: '{"jsonrpc":"2.0","id":1,"method":"create_vm","params":[1]}', code: -32602, message: /^params: expected an object/ },
  { name: 'an empty batch', line: '[]', code: -32600, message: /^an empty batch/ },
  { name: 'an unknown method', line: '{"jsonrpc":"2.0","id":1,"method":"create_vmm"}', code: -32601, message: `${loaderMessage({ op: 'create_vmm' })}; server methods: session, subscribe, guest_boot, vcpu_run` },
  { name: 'a prototype key as method', line: '{"jsonrpc":"2.0","id":1,"method":"__proto__"}', code: -32601, message: /^unknown op "__proto__"/ },
  { name: 'a bad field value', line: '{"jsonrpc":"2.0","id":1,"method":"create_vm","params":{"type":"bogus"}}', code: -32602, message: loaderMessage({ op: 'create_vm', type: 'bogus' }) },
  { name: 'an unknown field', line: '{"jsonrpc":"2.0","id":1,"method":"close","params":{"fd":3,"fdd":4}}', code: -32602, message: loaderMessage({ op: 'close', fd: 3, fdd: 4 }) },
  { name: 'a missing field', line: '{"jsonrpc":"2.0","id":1,"method":"set_memory_attributes2","params":{"fd":"gmem"}}', code: -32602, message: loaderMessage({ op: 'set_memory_attributes2', fd: 'gmem' }, [{ op: 'create_vm', as: 'vm' }, { op: 'create_guest_memfd', vm: 'vm', size: 4096, as: 'gmem' }]) },
  { name: 'a number beyond u64', line: '{"jsonrpc":"2.0","id":1,"method":"create_guest_memfd","params":{"vm":"vm","size":"2^64"}}', code: -32602, message: loaderMessage({ op: 'create_guest_memfd', vm: 'vm', size: '2^64' }, [{ op: 'create_vm', as: 'vm' }]) },
  { name: 'an inexact float', line: '{"jsonrpc":"2.0","id":1,"method":"create_guest_memfd","params":{"vm":"vm","size":18446744073709551615}}', code: -32602, message: /field 'size': expected an integer, got the float/ },
  { name: 'an undefined handle', line: '{"jsonrpc":"2.0","id":1,"method":"unpin_user_pages","params":{"pin":"nope"}}', code: -32602, message: /handle 'nope' is not defined \(defined so far: vm, gmem, map, pin\)/ },
  { name: 'a handle of the wrong kind', line: '{"jsonrpc":"2.0","id":1,"method":"unpin_user_pages","params":{"pin":"map"}}', code: -32602, message: /handle 'map' is a map handle \(step 3\); expected a pin handle/ },
  { name: 'an `as` already defined', line: '{"jsonrpc":"2.0","id":1,"method":"create_vm","params":{"as":"vm"}}', code: -32602, message: "(create_vm) as: handle 'vm' is already defined at step 1" },
  { name: 'an `op` in params', line: '{"jsonrpc":"2.0","id":1,"method":"create_vm","params":{"op":"close"}}', code: -32602, message: /'op' is not a field/ },
  { name: 'an `expect` in params', line: '{"jsonrpc":"2.0","id":1,"method":"create_vm","params":{"expect":"ok"}}', code: -32602, message: /'expect' is not a field/ },
  { name: 'a __proto__ field', line: '{"jsonrpc":"2.0","id":1,"method":"create_vm","params":{"__proto__":{"type":"tdx"}}}', code: -32602, message: /'__proto__' is not a field/ },
  { name: 'session after the first op', line: '{"jsonrpc":"2.0","id":1,"method":"session","params":{}}', code: -32000, message: /^session: must come before the first op/ },
  { name: 'vcpu_run without a guest', line: '{"jsonrpc":"2.0","id":1,"method":"vcpu_run","params":{"vm":"vm"}}', code: -32000, message: /no guest runs in 'vm'/ },
  { name: 'subscribe to an unknown event', line: '{"jsonrpc":"2.0","id":1,"method":"subscribe","params":{"events":["blockd"]}}', code: -32602, message: /^subscribe: events: expected "all" or a list of blocked, /, },
];

test('bad requests are JSON-RPC errors with the loader\'s message, and the session stays usable', () => {
  const { raw, rpc } = open();
  for (const [m, p] of BLOCKED_SETUP) rpc(m, p);
  for (const b of BAD) {
    const replies = raw(b.line);
    assert.equal(replies.length, 1, b.name);
    const e = replies[0]!.error!;
    assert.equal(e.code, b.code, `${b.name}: ${e.message}`);
    if (typeof b.message === 'string') assert.equal(e.message, b.message, b.name);
    else assert.match(e.message, b.message, b.name);
  }
  // Nothing the bad requests did changed the world: the blocked conversion still behaves.
  assert.equal(rpc('set_memory_attributes2', TO_PRIVATE).result.errno, 'EAGAIN');
  assert.deepEqual(rpc('unpin_user_pages', { pin: 'pin' }).result, { kind: 'ok' });
  assert.deepEqual(rpc('set_memory_attributes2', TO_PRIVATE).result, { kind: 'ok' });
});

test('a refused request names no handle; a step whose call fails does, as in a scenario', () => {
  const { rpc } = open();
  assert.equal(rpc('create_vm', { type: 'bogus', as: 'vm' }).error!.code, -32602);
  assert.deepEqual(rpc('create_vm', { as: 'vm' }).result, { kind: 'ok', handle: 'vm' }); // the name is still free
  assert.equal(rpc('create_guest_memfd', { vm: 'vm', size: 0, as: 'g' }).result.errno, 'EINVAL');
  assert.match(rpc('create_guest_memfd', { vm: 'vm', size: 4096, as: 'g' }).error!.message, /already defined at step 2/);
  assert.deepEqual(rpc('close', { fd: 'g' }).result, { kind: 'skipped', why: "handle 'g' was not created (step 2 did not succeed)" });
});

test('a refused op does not start the world: session is still possible after it', () => {
  const { rpc } = open();
  assert.equal(rpc('create_vm', { type: 'bogus' }).error!.code, -32602);
  assert.equal(rpc('session', { profile: 'rfc-2024' }).result.profile, 'rfc-2024');
  assert.match(rpc('session', {}).error!.message, /^session: must come before the first op/);
});

test('hostile nesting: every reply is a JSON-RPC error with a bounded message, never an internal error', () => {
  const deep = '['.repeat(5000) + ']'.repeat(5000);
  for (const line of [
    '['.repeat(200000) + ']'.repeat(200000),
    `{"jsonrpc":"2.0","id":1,"method":"create_vm","params":{"type":${deep}}}`,
    `{"jsonrpc":"2.0","id":1,"method":"session","params":{"profile":${deep}}}`,
    `{"jsonrpc":"2.0","id":1,"method":"session","params":{"manager":{"fence":${deep}}}}`,
    `{"jsonrpc":"2.0","id":1,"method":"subscribe","params":{"events":${deep}}}`,
    `{"jsonrpc":"2.0","id":1,"method":"guest_boot","params":{"vm":${deep}}}`,
    `{"jsonrpc":"2.0","id":${deep},"method":"create_vm"}`,
  ]) {
    const replies = open().raw(line);
    const errors = (Array.isArray(replies[0]) ? replies[0] : replies) as Msg[];
    for (const r of errors) {
      assert.ok(r.error && r.error.code !== -32603, JSON.stringify(r).slice(0, 200));
      assert.ok(r.error.message.length < 600, r.error.message.slice(0, 200));
    }
  }
});

test('a batch gets one array of replies; a notification (no id) gets none', () => {
  const { raw } = open();
  const replies = raw(JSON.stringify([
    { jsonrpc: '2.0', id: 'a', method: 'create_vm', params: { as: 'vm' } },
    { jsonrpc: '2.0', method: 'create_vm', params: { as: 'quiet' } },
    { jsonrpc: '2.0', id: 'c', method: 'nope' },
  ])) as unknown as Msg[][];
  assert.equal(replies.length, 1);
  assert.deepEqual(replies[0]!.map((r) => r.id), ['a', 'c']);
  assert.deepEqual(replies[0]![0]!.result, { kind: 'ok', handle: 'vm' });
  assert.equal(replies[0]![1]!.error!.code, -32601);
  assert.deepEqual(raw(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'close', params: { fd: 'quiet' } }))[0]!.result, { kind: 'ok' }); // the notification ran
});

test('session validates profile and machine with the loader\'s messages', () => {
  const bad = open().rpc('session', { profile: 'linux-9' }).error!;
  assert.equal(bad.code, -32602);
  assert.throws(() => parseScenario(JSON.stringify({ name: 'x', profile: 'linux-9', steps: [{ op: 'close', fd: -1 }] })),
    (e: ScenarioError) => bad.message === `session: ${e.errors[0]!.message}`);
  assert.match(bad.message, /^session: profile: unknown profile "linux-9"; allowed: /);
  assert.match(open().rpc('session', { machine: 'big' }).error!.message, /^session: machine: expected 'full' or 'probed'/);
  assert.match(open().rpc('session', { profile: ['ipc-v8', 'rfc-2024'] }).error!.message, /one profile per connection/);
  const probed = open();
  assert.deepEqual(probed.rpc('session', { profile: 'rfc-2024', machine: 'probed' }).result.backend.kernel, 'rfc-2024');
  // The probed machine has no SNP (kernel-probe.md): the session's machine is the one used.
  assert.notDeepEqual(probed.rpc('create_vm', { type: 'snp' }).result, { kind: 'ok' });
});

test('events: the userspace half\'s blocked, released, retried, completed as notifications before the reply', () => {
  const { rpc, call } = open();
  for (const [m, p] of BLOCKED_SETUP.slice(0, 3)) rpc(m, p);
  rpc('io_uring_register_buffers', { map: 'map', offset: '8K', length: '4K', as: 'ring' });
  assert.deepEqual(rpc('subscribe', { events: ['blocked', 'released', 'retried', 'completed', 'failed'] }).result.events.length, 5);
  const lines = call('convert', { fd: 'gmem', offset: 0, size: '16K', to: 'private', policy: 'retry' });
  assert.deepEqual(lines.map((l) => l.method ?? 'reply'), ['blocked', 'released', 'retried', 'completed', 'reply']);
  assert.deepEqual(lines[0]!.params, { request: 1, fd: 'gmem', offset: 8192, holders: ['ring'] });
  assert.deepEqual(lines[1]!.params, { request: 1, holder: 'ring', how: 'released' });
  assert.deepEqual(lines[3]!.params, { request: 1, retries: 1, released: ['ring'], waited: [] });
  assert.equal(lines[4]!.result.kind, 'ok');
  assert.equal(lines[4]!.result.conversion.retries, 1);
  // Unsubscribed: nothing but the reply.
  rpc('subscribe', { events: [] });
  assert.deepEqual(call('convert', { fd: 'gmem', offset: 0, size: '16K', to: 'shared' }).map((l) => l.method ?? 'reply'), ['reply']);
});

/** Serves the guest's exits through the session: converts, and on EAGAIN unpins (correct) or not. */
function runGuest(handler: 'correct' | 'wrong') {
  const { rpc, call } = open();
  rpc('create_vm', { type: 'tdx', as: 'vm' });
  rpc('create_guest_memfd', { vm: 'vm', size: '256K', flags: ['MMAP', 'INIT_SHARED'], as: 'gmem' });
  rpc('mmap', { fd: 'gmem', length: '256K', as: 'map' });
  rpc('set_user_memory_region2', { vm: 'vm', slot: 0, guest_phys_addr: 0, memory_size: '256K', userspace_addr: 'map', guest_memfd: 'gmem' });
  rpc('pin_user_pages', { map: 'map', offset: '16K', length: '4K', longterm: true, as: 'pin' });
  rpc('subscribe', { events: ['exit'] });
  assert.deepEqual(rpc('guest_boot', { vm: 'vm', ram: '256K', boot_private: '128K', boot_chunk: '64K', bounce_conversions: 4, bounce_size: '16K' }).result.bootPrivate, 131072);
  let pinned = true;
  let ret: number | undefined;
  const exits: any[] = [];
  for (let n = 0; n < 200; n++) {
    const lines = call('vcpu_run', { vm: 'vm', ...(ret === undefined ? {} : { ret }) });
    const exit = lines.at(-1)!.result;
    assert.deepEqual(lines[0]!.params, exit, 'the exit is also a notification');
    exits.push(exit);
    ret = undefined;
    if (exit.exit === 'SHUTDOWN') return { exit, exits };
    const r = rpc('set_memory_attributes2', { fd: 'gmem', offset: exit.gpa, size: exit.size, attributes: (exit.exit === 'HYPERCALL' ? exit.to === 'private' : exit.private) ? ['PRIVATE'] : [] }).result;
    let done = r.kind === 'ok';
    if (!done && r.errno === 'EAGAIN' && handler === 'correct' && pinned && r.out.error_offset === '16384') {
      rpc('unpin_user_pages', { pin: 'pin' });
      pinned = false;
      done = rpc('set_memory_attributes2', { fd: 'gmem', offset: exit.gpa, size: exit.size, attributes: ['PRIVATE'] }).result.kind === 'ok';
    }
    if (exit.exit === 'HYPERCALL') ret = done || handler === 'wrong' ? 0 : -11;
  }
  throw new Error('the guest never shut down');
}

test('the CoCo guest waits for the client\'s conversions: a correct handler completes every request', () => {
  const { exit, exits } = runGuest('correct');
  assert.deepEqual(exit, { exit: 'SHUTDOWN', requests: 6, completed: 6, failed: 0, faults: 0 });
  assert.deepEqual(exits[0], { exit: 'HYPERCALL', nr: 'KVM_HC_MAP_GPA_RANGE', request: 1, gpa: 0, size: 65536, to: 'private', attempt: 0 });
});

test('a handler that takes EAGAIN for success is caught: the guest faults on its page, then gives up', () => {
  const { exit, exits } = runGuest('wrong');
  assert.equal(exit.failed, 1);
  assert.equal(exit.completed, 5);
  const faults = exits.filter((e) => e.exit === 'MEMORY_FAULT');
  assert.equal(faults.length, GUEST_PATIENCE);
  assert.deepEqual(faults[0], { exit: 'MEMORY_FAULT', request: 1, gpa: 0, size: 4096, private: true });
});

test('vcpu_run: the hypercall needs its return value; -11 (EAGAIN) re-issues it, up to the guest\'s patience', () => {
  const { rpc } = open();
  rpc('create_vm', { type: 'tdx', as: 'vm' });
  rpc('guest_boot', { vm: 'vm', ram: '64K', boot_private: '64K', boot_chunk: '64K', bounce_conversions: 0 });
  assert.equal(rpc('vcpu_run', { vm: 'vm' }).result.attempt, 0);
  assert.match(rpc('vcpu_run', { vm: 'vm' }).error!.message, /field 'ret': required after a HYPERCALL exit/);
  assert.match(rpc('vcpu_run', { vm: 'vm', ret: 'yes' }).error!.message, /field 'ret': /);
  for (let a = 1; a <= GUEST_PATIENCE; a++) assert.equal(rpc('vcpu_run', { vm: 'vm', ret: a % 2 ? -11 : 'EAGAIN' }).result.attempt, a);
  assert.deepEqual(rpc('vcpu_run', { vm: 'vm', ret: -11 }).result, { exit: 'SHUTDOWN', requests: 1, completed: 0, failed: 1, faults: 0 });
  assert.match(rpc('guest_boot', { vm: 'vm' }).error!.message, /already running/);
  assert.match(open().rpc('guest_boot', { vm: 'nope' }).error!.message, /handle 'nope' is not defined/);
  const o = open();
  o.rpc('create_vm', { as: 'vm' });
  assert.match(o.rpc('guest_boot', { vm: 'vm', ram: '64K', boot_private: '128K', boot_chunk: '64K' }).error!.message, /field 'boot_private': must be at most ram/);
  assert.match(o.rpc('guest_boot', { vm: 'vm', ram: '6K' }).error!.message, /field 'ram': must be a positive multiple of 4K/);
});

test('--record: the session becomes a scenario that gmemkit run replays and passes, guest accesses included', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gmk-record-'));
  try {
    const file = join(dir, 'session.yaml');
    const { rpc, s } = open({ record: new Recorder(file) });
    rpc('session', { profile: 'ipc-v8' });
    for (const [m, p] of BLOCKED_SETUP) rpc(m, p);
    rpc('write', { map: 'map', data: 'A' });
    rpc('set_memory_attributes2', TO_PRIVATE);
    rpc('create_vm', { type: 'bogus' }); // refused: not recorded
    rpc('unpin_user_pages', { pin: 'pin' });
    rpc('convert', { fd: 'gmem', offset: 0, size: '16K', to: 'private' });
    rpc('read', { map: 'map', length: 1 });
    rpc('convert', { fd: 'gmem', offset: 0, size: '16K', to: 'shared' });
    rpc('read', { map: 'map', length: 1 });
    rpc('create_vm', { type: 'tdx', as: 'tvm' });
    rpc('create_guest_memfd', { vm: 'tvm', size: '16K', flags: ['MMAP', 'INIT_SHARED'], as: 'tg' });
    rpc('set_user_memory_region2', { vm: 'tvm', slot: 0, guest_phys_addr: 0, memory_size: '16K', guest_memfd: 'tg' });
    rpc('guest_boot', { vm: 'tvm', ram: '16K', boot_private: '16K', boot_chunk: '16K', bounce_conversions: 0 });
    rpc('vcpu_run', { vm: 'tvm' });
    assert.equal(rpc('vcpu_run', { vm: 'tvm', ret: 0 }).result.exit, 'MEMORY_FAULT'); // not converted: the guest's private access faults
    rpc('set_memory_attributes2', { fd: 'tg', offset: 0, size: '16K', attributes: ['PRIVATE'] }); // served as an implicit conversion
    assert.equal(rpc('vcpu_run', { vm: 'tvm' }).result.completed, 1);
    s.close();
    const text = readFileSync(file, 'utf8');
    assert.match(text, /"expect":\{"errno":"EAGAIN","error_offset":"4096"\}/);
    assert.match(text, /"expect":\{"signal":"SIGBUS"\}/);
    assert.match(text, /"op":"guest_read".*"expect":\{"exit":"MEMORY_FAULT"/);
    assert.match(text, /"op":"guest_read".*"expect":\{"fill":0\}/);
    const scenario = loadScenarioFile(file);
    assert.equal(scenario.steps.length, 17);
    const [res] = runScenario(scenario);
    assert.equal(res!.passed, true, res!.steps.map((x) => x.failure).filter(Boolean).join('\n'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lines: split on newlines across chunks; an overlong line is refused once and skipped', () => {
  const lines: string[] = [];
  let overlong = 0;
  const sp = new LineSplitter((l) => lines.push(l), () => overlong++, 16);
  sp.push(Buffer.from('ab'));
  sp.push(Buffer.from('c\nde'));
  sp.push(Buffer.from('f\n' + 'x'.repeat(10)));
  sp.push(Buffer.from('y'.repeat(10)));
  sp.push(Buffer.from('z'.repeat(10) + '\nok\nlast'));
  sp.end();
  assert.deepEqual(lines, ['abc', 'def', 'ok', 'last']);
  assert.equal(overlong, 1);
});
