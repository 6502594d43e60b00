// The userspace half on NO_DIRECT_MAP memory (profile no-direct-map): holders whose pin the
// kernel refuses (EFAULT: kernel-semantics.md §1.11 [DMR]) copy through bounce buffers. Rows:
// each holder kind bounces, its data reaches guest memory (or the device) by the copy, copies
// and bytes are counted and reported as events, and the manager waits for a bounced I/O in
// flight before making its page private. A fast-check property drives random holder and
// conversion sequences and checks that no guest page is ever referenced, every conversion
// completes without EAGAIN, and every copy the events report is counted by its holder.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { GMEM_FLAGS } from '../src/model/abi.js';
import { NEXT_7_4, NO_DIRECT_MAP } from '../src/model/profile.js';
import { ODirectIo, type Holder } from '../src/userspace/holders.js';
import { RETRY, PREUNMAP } from '../src/userspace/policies.js';
import { DEFAULT_SHAPE, runWorkload } from '../src/workload/coco-boot.js';
import { K, ran, recordEvents, str, text, World } from './userspace-world.js';

const S111 = 'kernel-semantics.md §1.11 [DMR]';
const ndmWorld = () => new World({ profile: NO_DIRECT_MAP, extraFlags: GMEM_FLAGS.NO_DIRECT_MAP });
const counts = (h: Holder) => ({ bounced: h.bounced, copies: h.copies, bytes: h.bytesCopied });

describe('holders on NO_DIRECT_MAP memory fall back to bounce buffers', () => {
  test(`O_DIRECT read: lands in the bounce buffer, copied into guest memory at completion  [${S111}]`, () => {
    const w = ndmWorld();
    const copied: string[] = [];
    w.us.events.on('bounced', (e) => copied.push(`bounced:${e.holder.name}`)).on('copied', (e) => copied.push(`copied:${e.bytes}→${e.to}`));
    const io = w.must(w.us.odirect(w.ram + 4 * K, 4 * K, 'read', text('disk'), 'rd')) as ODirectIo;
    assert.equal(io.state, 'in-flight');
    assert.deepEqual(counts(io), { bounced: true, copies: 0, bytes: 0 });
    assert.equal(str(w.must(w.hostRead(w.ram + 4 * K, 4))), '\0\0\0\0', 'nothing reached guest memory before completion');
    w.must(io.complete());
    assert.equal(str(w.must(w.hostRead(w.ram + 4 * K, 4))), 'disk');
    assert.deepEqual(counts(io), { bounced: true, copies: 1, bytes: 4 });
    assert.deepEqual(copied, ['bounced:rd', 'copied:4→guest']);
    w.noViolations();
    w.dispose();
  });

  test(`O_DIRECT write: guest memory copied out at submission; the device gets it at completion  [${S111}]`, () => {
    const w = ndmWorld();
    w.hostWrite(w.ram, 'payload');
    const io = w.must(w.us.odirect(w.ram, 7, 'write', undefined, 'wr')) as ODirectIo;
    assert.deepEqual(counts(io), { bounced: true, copies: 1, bytes: 7 });
    w.hostWrite(w.ram, 'changed');
    w.must(io.complete());
    assert.equal(str(io.data), 'payload', 'the device saw the data as it was at submission');
    w.noViolations();
    w.dispose();
  });

  test(`io_uring fixed buffers: the device reads and writes the bounce buffer, with a copy each way  [${S111}]`, () => {
    const w = ndmWorld();
    const ring = w.must(w.us.ioUringRegisterBuffers(w.ram + 8 * K, 8 * K, 'ring'));
    assert.ok(ring.bounced);
    w.must(ring.dma(100, 5, text('hello')));
    assert.equal(str(w.must(w.hostRead(w.ram + 8 * K + 100, 5))), 'hello');
    w.hostWrite(w.ram + 8 * K + 4 * K, 'guest');
    assert.equal(str(w.must(ring.dma(4 * K, 5))), 'guest');
    assert.deepEqual(counts(ring), { bounced: true, copies: 2, bytes: 10 });
    w.must(ring.close());
    w.noViolations();
    w.dispose();
  });

  test(`VFIO DMA mapping: bounced, the device's DMA reaches guest memory by the copy  [${S111}]`, () => {
    const w = ndmWorld();
    const dma = w.must(w.us.vfioDmaMap(w.ram, 16 * K, 0x1000n, 'dma'));
    assert.ok(dma.bounced);
    w.must(dma.dma(8 * K, 3, text('net')));
    assert.equal(str(w.must(w.guestRead(8 * K, 3))), 'net');
    assert.deepEqual(counts(dma), { bounced: true, copies: 1, bytes: 3 });
    w.noViolations();
    w.dispose();
  });

  test(`the same holders on ordinary memory pin and never copy  [kernel-semantics.md §1.11 (shared index)]`, () => {
    const w = new World({ profile: NO_DIRECT_MAP });
    const ring = w.must(w.us.ioUringRegisterBuffers(w.ram, 4 * K, 'ring'));
    const io = w.must(w.us.odirect(w.ram + 4 * K, 4 * K, 'read', text('disk')));
    w.must(ring.dma(0, 2, text('hi')));
    w.must(io.complete());
    assert.deepEqual([counts(ring), counts(io)], [{ bounced: false, copies: 0, bytes: 0 }, { bounced: false, copies: 0, bytes: 0 }]);
    w.dispose();
  });

  test(`a pin refused for another reason (a private page) is not bounced: EFAULT  [kernel-semantics.md §1.11 (private index)]`, () => {
    const w = ndmWorld();
    ran(w, w.us.convert(w.fd, 0, 4 * K, 'private', RETRY));
    const r = w.us.ioUringRegisterBuffers(w.ram, 4 * K, 'ring');
    assert.ok(!r.ok && 'errno' in r && r.errno === 'EFAULT', 'why' in r ? r.why : 'ok');
    w.dispose();
  });
});

describe('the manager and bounced holders', () => {
  test(`a bounced read in flight: the kernel sees nothing, the manager waits for it before to-private  [${S111}; design-discussion.md §2.4]`, () => {
    const w = ndmWorld();
    const log = recordEvents(w.us);
    const io = w.must(w.us.odirect(w.ram + 4 * K, 4 * K, 'read', text('late'), 'io')) as ODirectIo;
    const t = ran(w, w.us.convert(w.fd, 0, 16 * K, 'private', RETRY));
    assert.equal(t.phase, 'done');
    assert.equal(t.eagains, 0, 'the kernel blocked on nothing');
    assert.deepEqual(t.waited.map((h) => h.name), ['io']);
    assert.equal(io.state, 'completed');
    assert.deepEqual(log, ['released:io', 'completed']);
    assert.equal(str(w.must(w.guestRead(4 * K, 4))), 'late', 'its data was copied in while the page was still shared');
    w.noViolations();
    w.dispose();
  });

  test(`the same read on pinned memory blocks the conversion once (EAGAIN), then is waited for  [kernel-semantics.md §0.4]`, () => {
    const w = new World({ profile: NEXT_7_4 });
    w.must(w.us.odirect(w.ram + 4 * K, 4 * K, 'read', text('late'), 'io'));
    const t = ran(w, w.us.convert(w.fd, 0, 16 * K, 'private', RETRY));
    assert.deepEqual([t.eagains, t.retries, t.waited.map((h) => h.name)], [1, 1, ['io']]);
    w.dispose();
  });

  test(`preunmap: bounced holders are released and re-established around the conversion  [design-discussion.md §3.1]`, () => {
    const w = ndmWorld();
    const ring = w.must(w.us.ioUringRegisterBuffers(w.ram, 16 * K, 'ring'));
    ran(w, w.us.convert(w.fd, 0, 4 * K, 'private', PREUNMAP));
    assert.equal(ring.state, 'released');
    ran(w, w.us.convert(w.fd, 0, 4 * K, 'shared', PREUNMAP));
    assert.equal(ring.state, 'held');
    assert.ok(ring.bounced);
    w.noViolations();
    w.dispose();
  });
});

// ------------------------------------------------------------------ property

type Cmd =
  | { op: 'read' | 'write'; page: number }
  | { op: 'complete'; k: number }
  | { op: 'ring' | 'vfio'; page: number }
  | { op: 'dma'; k: number; page: number; write: boolean }
  | { op: 'close'; k: number }
  | { op: 'convert'; page: number; pages: number; toPrivate: boolean };

const PAGES = 16;
const page = fc.integer({ min: 0, max: PAGES - 1 });
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({ op: fc.constantFrom('read' as const, 'write' as const), page }),
  fc.record({ op: fc.constant('complete' as const), k: fc.nat() }),
  fc.record({ op: fc.constantFrom('ring' as const, 'vfio' as const), page }),
  fc.record({ op: fc.constant('dma' as const), k: fc.nat(), page: fc.integer({ min: 0, max: 0 }), write: fc.boolean() }),
  fc.record({ op: fc.constant('close' as const), k: fc.nat() }),
  fc.record({ op: fc.constant('convert' as const), page, pages: fc.integer({ min: 1, max: 4 }), toPrivate: fc.boolean() }),
);

describe('random holder and conversion sequences on NO_DIRECT_MAP memory', () => {
  const numRuns = Number(process.env.GMEMKIT_PROPERTY_RUNS ?? 100);
  test(`no guest page is ever referenced, no conversion meets EAGAIN, every copy is counted  [${S111}]`, () => {
    fc.assert(fc.property(fc.array(cmd, { minLength: 10, maxLength: 40 }), (cmds) => {
      const w = new World({ profile: NO_DIRECT_MAP, extraFlags: GMEM_FLAGS.NO_DIRECT_MAP, files: [{ size: PAGES * 4 * K, gpa: 0 }] });
      const ios: ODirectIo[] = [];
      const regs: Holder[] = [];
      let copies = 0;
      let bytes = 0;
      w.us.events.on('copied', (e) => { copies++; bytes += e.bytes; });
      const all = new Set<Holder>();
      const inode = w.b.kernel.gmemFile(w.fd)!.inode;
      for (const c of cmds) {
        const at = w.ram + (c.op === 'dma' || c.op === 'complete' || c.op === 'close' ? 0 : c.page * 4 * K);
        switch (c.op) {
          case 'read': case 'write': {
            const r = w.us.odirect(at, 4 * K, c.op, c.op === 'read' ? text('dev') : undefined);
            if (r.ok) { ios.push(r.value as ODirectIo); all.add(r.value); }
            break;
          }
          case 'complete': { const live = ios.filter((io) => io.state === 'in-flight'); if (live.length) live[c.k % live.length]!.complete(); break; }
          case 'ring': case 'vfio': {
            const r = c.op === 'ring' ? w.us.ioUringRegisterBuffers(at, 4 * K) : w.us.vfioDmaMap(at, 4 * K, BigInt(c.page) << 12n);
            if (r.ok) { regs.push(r.value); all.add(r.value); }
            break;
          }
          case 'dma': { const live = regs.filter((h) => h.holding); if (live.length) live[c.k % live.length]!.dma(0, 3, c.write ? text('dma') : undefined); break; }
          case 'close': { const live = regs.filter((h) => h.holding); if (live.length) live[c.k % live.length]!.close(); break; }
          case 'convert': {
            const pages = Math.min(c.pages, PAGES - c.page);
            const t = ran(w, w.us.convert(w.fd, c.page * 4 * K, pages * 4 * K, c.toPrivate ? 'private' : 'shared', RETRY));
            assert.equal(t.eagains, 0, 'a conversion met EAGAIN on memory nothing can pin');
            assert.equal(t.phase, 'done');
            break;
          }
        }
        w.noViolations(JSON.stringify(c));
        for (const seg of inode.pages.segments()) {
          const f = w.b.kernel.state.folios.get(seg.value)!;
          assert.equal(f.pinsShort + f.pinsLong + f.gets, 0, `a guest page got a reference after ${JSON.stringify(c)}`);
        }
        for (const h of all) assert.ok(h.bounced, `${h.name} pinned guest memory`);
      }
      assert.equal([...all].reduce((n, h) => n + h.copies, 0), copies);
      assert.equal([...all].reduce((n, h) => n + h.bytesCopied, 0), bytes);
      w.dispose();
    }), { numRuns, includeErrorInReport: true });
  });
});

describe('the compare workload measures the cost of bouncing', () => {
  const shape = { ...DEFAULT_SHAPE, bounceConversions: 8, maxSteps: 20_000 };
  test('no-direct-map: no EAGAIN, copies counted; next-7.4: EAGAINs, no copies  [kernel-semantics.md §1.11 [DMR], §0.4]', () => {
    const bounced = runWorkload(NO_DIRECT_MAP, RETRY, shape);
    const pinned = runWorkload(NEXT_7_4, RETRY, shape);
    assert.equal(bounced.eagains, 0);
    assert.ok(bounced.copies > 0, 'the O_DIRECT reads were copied');
    assert.equal(bounced.bytesCopied, bounced.copies * 4 * K, 'each copy is one 4 KiB O_DIRECT read');
    assert.equal(bounced.invariantViolations, 0);
    assert.equal(bounced.completed, bounced.requests);
    assert.deepEqual([pinned.copies, pinned.bytesCopied], [0, 0]);
    assert.ok(pinned.eagains > 0, 'the pinned run meets blocked conversions');
  });
});
