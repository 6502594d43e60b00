// The next-7.4 profile: the in-place conversion series as applied to linux-next for 7.4
// (kernel-semantics.md §0.4). Rows: its capability number, the three "in use" tests before a
// to-private conversion with the reason naming the test that failed, and that it is the
// default profile. A fast-check property runs random sequences on next-7.4 and ipc-v8 side by
// side: for order-0 folios the in-use test blocks exactly what v8's exact refcount check blocks.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import type { BResult } from '../src/backend/backend.js';
import { ModelBackend } from '../src/backend/model-backend.js';
import { MAP_FLAGS, PROT, VM_TYPES } from '../src/model/abi.js';
import { inUseTest } from '../src/model/gmem.js';
import { DEFAULT_PROFILE, IPC_V8, NEXT_7_4, findProfile, type Profile } from '../src/model/profile.js';
import type { FolioRun } from '../src/model/state.js';
import { loadScenarioFile } from '../src/scenario/load.js';
import { formatHuman } from '../src/scenario/report.js';
import { runScenario } from '../src/scenario/run.js';
import { attrs2, INIT_SHARED, K, MMAP, table, type Ctx, type Row } from './table.js';

const S04 = 'kernel-semantics.md §0.4';
const S54 = 'kernel-semantics.md §5.4';
const next = { profile: NEXT_7_4 };
const shared = (c: Ctx) => { c.vm('sw_protected'); c.gmem(16 * K, MMAP | INIT_SHARED); c.mmap('gmem', 16 * K); };
const toPrivate = (c: Ctx) => c.b.setMemoryAttributes2(c.h.gmem!, attrs2(0, 16 * K, true));
const why = (r: BResult<unknown>) => (!r.ok && 'why' in r ? r.why : '');

describe('next-7.4: capability numbers', () => {
  const rows: Row[] = [
    { name: 'KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES = 252 answers PRIVATE', cite: `${S04}; ${S54}`, ...next,
      setup: (c) => c.vm('sw_protected'), call: (c) => c.b.checkExtension(252, c.h.vm), expect: { value: 8n } },
    { name: "v8's number 250 answers 0", cite: `${S54} (250 was v8's)`, ...next,
      setup: (c) => c.vm('sw_protected'), call: (c) => c.b.checkExtension(250, c.h.vm), expect: { value: 0n } },
    { name: 'ipc-v8 still answers on 250', cite: `${S54} (v8)`, profile: IPC_V8,
      setup: (c) => c.vm('sw_protected'), call: (c) => c.b.checkExtension(250, c.h.vm), expect: { value: 8n } },
    { name: 'on a default VM (no private memory): 0', cite: 'kernel-semantics.md §1.10(b) enablement', ...next,
      setup: (c) => c.vm('default'), call: (c) => c.b.checkExtension(252, c.h.vm), expect: { value: 0n } },
    { name: 'flags ≠ 0 is EINVAL (the content-mode flags are gone)', cite: `${S04} (flags must be 0)`, ...next, setup: shared,
      call: (c) => c.b.setMemoryAttributes2(c.h.gmem!, attrs2(0, 4 * K, true, { flags: 1n })), expect: { errno: 'EINVAL', noOut: true } },
  ];
  table(rows);
});

describe('next-7.4: the in-use test before a to-private conversion', () => {
  const rows: Row[] = [
    { name: 'a long-term pin: DMA-pinned, EAGAIN at its page', cite: `${S04} (folio_maybe_dma_pinned)`, ...next,
      setup: (c) => { shared(c); c.pin('map', 4 * K, 4 * K, true); }, call: toPrivate, expect: { errno: 'EAGAIN', out: { error_offset: 4096n } },
      then: (_c, r) => assert.match(why(r), /^page at offset 4096 is DMA-pinned \(folio_maybe_dma_pinned: 1 long-term pin\(s\)\)$/) },
    { name: 'a short-term pin (O_DIRECT in flight): DMA-pinned', cite: `${S04} (folio_maybe_dma_pinned)`, ...next,
      setup: (c) => { shared(c); c.pin('map', 8 * K, 4 * K, false); }, call: toPrivate, expect: { errno: 'EAGAIN', out: { error_offset: 8192n } },
      then: (_c, r) => assert.match(why(r), /is DMA-pinned .*1 short-term pin/) },
    { name: 'a FOLL_GET reference (vmsplice): refcount ≠ page cache + 1', cite: `${S04} (refcount test)`, ...next,
      setup: (c) => { shared(c); c.vmsplice('map', 12 * K, 4 * K); }, call: toPrivate, expect: { errno: 'EAGAIN', out: { error_offset: 12288n } },
      then: (_c, r) => assert.match(why(r), /^page at offset 12288 has refcount 3, not page cache 1 \+ 1 \(1 page reference\(s\)\)$/) },
    { name: 'the first page in use is reported (ascending order)', cite: `${S04} (the first page in use)`, ...next,
      setup: (c) => { shared(c); c.vmsplice('map', 4 * K, 4 * K); c.pin('map', 8 * K, 4 * K); }, call: toPrivate, expect: { errno: 'EAGAIN', out: { error_offset: 4096n } } },
    { name: 'host mappings do not block: the call unmaps them first', cite: `${S04} (unmaps every user mapping of the range first)`, ...next,
      setup: (c) => { shared(c); c.write('map', 0, 'A'); c.write('map', 8 * K, 'B'); }, call: toPrivate, expect: 'ok',
      then: (c) => assert.equal(c.ptes('map'), 0) },
    { name: 'a failed call leaves the host PTEs zapped and the range shared', cite: 'kernel-semantics.md §1.10(b) algorithm step 4', ...next,
      setup: (c) => { shared(c); c.write('map', 0, 'A'); c.pin('map', 4 * K, 4 * K); }, call: toPrivate, expect: { errno: 'EAGAIN', out: { error_offset: 4096n } },
      then: (c) => { assert.equal(c.ptes('map'), 0, 'every host PTE of the range is gone, the pinned page too'); assert.equal(c.attr('gmem', 0), 'shared'); } },
  ];
  table(rows);

  // The "still mapped" test cannot fire after the zap in any scenario; it is checked on the predicate itself.
  const run = (over: Partial<FolioRun>): FolioRun => ({ ino: 1, index: 0, order: 0, uptodate: true, inCache: true, mapCount: 0, gets: 0, pinsShort: 0, pinsLong: 0, ...over });
  const predicate: [string, FolioRun, RegExp | undefined][] = [
    ['free: only the page cache holds it', run({}), undefined],
    ['still mapped (folio_mapped)', run({ mapCount: 1 }), /^is still mapped \(folio_mapped: 1 host mapping\(s\)\)$/],
    ['DMA-pinned wins over mapped (the order of the tests)', run({ mapCount: 1, pinsLong: 1 }), /^is DMA-pinned/],
    ['1024 plain references look DMA-pinned (folio_maybe_dma_pinned is a refcount heuristic)', run({ gets: 1023 }), /^is DMA-pinned/],
    ['one plain reference: the refcount test', run({ gets: 1 }), /^has refcount 3, not page cache 1 \+ 1/],
  ];
  for (const [name, f, want] of predicate) {
    test(`inUseTest: ${name}  [${S04}]`, () => {
      const got = inUseTest(f);
      if (want === undefined) assert.equal(got, undefined);
      else assert.match(got ?? '(free)', want);
    });
  }
});

describe('next-7.4 is the default profile', () => {
  test(`DEFAULT_PROFILE is next-7.4, status linux-next  [${S04}; scenario-language.md §3]`, () => {
    assert.equal(DEFAULT_PROFILE, NEXT_7_4);
    assert.equal(NEXT_7_4.status, 'linux-next');
    assert.match(NEXT_7_4.title, /linux-next/);
    assert.ok(findProfile('ipc-v8'), 'ipc-v8 stays');
  });

  test('the README quick-start sample is what `gmemkit run` prints for example 01  [README.md Quick start]', () => {
    const readme = readFileSync('README.md', 'utf8');
    const sample = /```\n(▶ a pinned page blocks conversion[\s\S]*?)\n```/.exec(readme)?.[1];
    assert.ok(sample, 'the quick-start sample is missing');
    const [res] = runScenario(loadScenarioFile('examples/01-pinned-page-blocks-conversion.yaml'));
    assert.equal(res!.profile, 'next-7.4', 'example 01 runs under the default profile');
    assert.equal(sample, formatHuman(res!));
  });
});

// ------------------------------------------------------------------ next-7.4 ≡ ipc-v8 (order-0 folios)

type Cmd =
  | { op: 'pin'; page: number; pages: number; longterm: boolean }
  | { op: 'unpin'; k: number }
  | { op: 'vmsplice'; page: number }
  | { op: 'pipeRead'; k: number }
  | { op: 'write'; page: number; byte: number }
  | { op: 'read'; page: number }
  | { op: 'convert'; page: number; pages: number; toPrivate: boolean }
  | { op: 'punch'; page: number };

const PAGES = 8;
const page = fc.integer({ min: 0, max: PAGES - 1 });
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({ op: fc.constant('pin' as const), page, pages: fc.integer({ min: 1, max: 3 }), longterm: fc.boolean() }),
  fc.record({ op: fc.constant('unpin' as const), k: fc.nat() }),
  fc.record({ op: fc.constant('vmsplice' as const), page }),
  fc.record({ op: fc.constant('pipeRead' as const), k: fc.nat() }),
  fc.record({ op: fc.constant('write' as const), page, byte: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ op: fc.constant('read' as const), page }),
  fc.record({ op: fc.constant('convert' as const), page, pages: fc.integer({ min: 1, max: PAGES }), toPrivate: fc.boolean() }),
  fc.record({ op: fc.constant('punch' as const), page }),
);

/** Run the sequence on one profile; each step's result without its `why` (the wording differs). */
function trace(p: Profile, cmds: readonly Cmd[]): string[] {
  const b = new ModelBackend({ profile: p });
  const vm = (b.createVm(VM_TYPES.sw_protected) as { value: number }).value;
  const gmem = (b.createGuestMemfd(vm, PAGES * 4 * K, MMAP | INIT_SHARED) as { value: number }).value;
  const map = (b.mmap({ fd: gmem, offset: 0, length: PAGES * 4 * K, prot: PROT.READ | PROT.WRITE, flags: MAP_FLAGS.SHARED }) as { value: number }).value;
  const pins: number[] = [];
  const pipes: number[] = [];
  const out: string[] = [];
  const at = (pg: number) => map + pg * 4 * K;
  for (const c of cmds) {
    let r: BResult<unknown>;
    switch (c.op) {
      case 'pin': r = b.pinUserPages(at(c.page), Math.min(c.pages, PAGES - c.page) * 4 * K, c.longterm); if (r.ok) pins.push(r.value as number); break;
      case 'unpin': r = pins.length ? b.unpinUserPages(pins.splice(c.k % pins.length, 1)[0]!) : { ok: true, value: undefined }; break;
      case 'vmsplice': r = b.vmsplice(at(c.page), 4 * K); if (r.ok) pipes.push(r.value as number); break;
      case 'pipeRead': r = pipes.length ? b.fdRead(pipes.splice(c.k % pipes.length, 1)[0]!) : { ok: true, value: undefined }; break;
      case 'write': r = b.hostWrite(at(c.page), Uint8Array.of(c.byte)); break;
      case 'read': r = b.hostRead(at(c.page), 1); break;
      case 'convert': r = b.setMemoryAttributes2(gmem, attrs2(c.page * 4 * K, Math.min(c.pages, PAGES - c.page) * 4 * K, c.toPrivate)); break;
      case 'punch': r = b.fallocate(gmem, 3, c.page * 4 * K, 4 * K); break;
    }
    const { why: _why, ...rest } = r as BResult<unknown> & { why?: string };
    out.push(JSON.stringify(rest, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? [...v] : v)));
    assert.deepEqual(b.takeViolations(), [], `${p.name}: an invariant broke at ${JSON.stringify(c)}`);
  }
  b.dispose();
  return out;
}

describe('next-7.4 blocks exactly what ipc-v8 blocks (order-0 folios)', () => {
  const numRuns = Number(process.env.GMEMKIT_PROPERTY_RUNS ?? 150);
  test(`random sequences: the same results step by step, invariants kept on both  [${S04}: "equal in effect" to §1.10(b)]`, () => {
    fc.assert(fc.property(fc.array(cmd, { minLength: 10, maxLength: 40 }), (cmds) => {
      assert.deepEqual(trace(NEXT_7_4, cmds), trace(IPC_V8, cmds));
    }), { numRuns, includeErrorInReport: true });
  });
});
