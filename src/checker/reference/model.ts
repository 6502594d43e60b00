// The reference protocol of docs/checker.md §3 (bench/spin/gmem.pml) as a PackedModel: one
// edge per enabled (action, parameters) pair with exactly the guards and effects of its §3.3,
// so that states and edges equal SPIN's "states stored" and "transitions" - 1 (NOREDUCE).
// State variables are bit fields in 31-bit words (layout.ts); expand() decodes them once and
// writes each successor as a copy of the state words with one or a few fields replaced.
// It must never allocate in expand() or check(), and never drift from the transition table:
// every guard below cites the row it implements.
import type { EdgeLabel, EdgeSink, PackedModel, Value } from '../types.js';
import { decodeState, describeCode, describeDecoded, explainViolation, type Decoded } from './describe.js';
import { F, makeLayout, type Layout } from './layout.js';
import { BUG_NAMES, validateReferenceParams, type ReferenceParams } from './params.js';
import {
  A, FAILED, IDLE, LOCKED, P, PENDING, PROPERTIES, PUB, SEC, TOPRIV, TOSHARED,
} from './vocab.js';

export class ReferenceModel implements PackedModel {
  readonly kind = 'packed';
  readonly name: string;
  readonly words: number;
  readonly maxEdges: number;
  readonly properties = PROPERTIES;
  readonly processes: readonly string[];
  readonly liveness = {
    name: 'live: every request completes ([] (ph != IDLE -> <> ph == IDLE))',
    pending: (st: Uint32Array, off: number): boolean => this.get(st, off, F.PH) !== IDLE,
  };
  readonly layout: Layout;
  private readonly N: number;
  private readonly H: number;
  private readonly C: number;
  private readonly bug: number;
  private readonly coop: boolean;
  private readonly semantic: boolean;
  private readonly all: number;
  private readonly hb: number;
  private readonly hm: number;
  /** Per holder: 1 if longterm (IOU, VFIO), 0 if short-term (ST). */
  private readonly longterm: Int32Array;
  /** HPG group value -> canonical value (identity without symmetry reduction). */
  private readonly canonHp: Int32Array;
  /** Page bitmask -> the same pages as 2-bit groups (for content/gv comparisons). */
  private readonly spread: Int32Array;
  private readonly fw: Int32Array;
  private readonly fs: Int32Array;
  private readonly fm: Int32Array;

  /** `wordBits` (default 31) only changes how the state is spread over words, never the counts. */
  constructor(readonly params: ReferenceParams, opts: { readonly wordBits?: number } = {}) {
    const err = validateReferenceParams(params);
    if (err) throw new Error(`reference model: ${err}`);
    const { pages: N, holders: H, requests: C, bug } = params;
    this.N = N;
    this.H = H;
    this.C = C;
    this.bug = bug;
    this.coop = params.coop;
    this.semantic = params.semantic;
    this.all = (1 << N) - 1;
    this.layout = makeLayout(N, H, C, bug === 3, opts.wordBits ?? 31);
    this.words = this.layout.words;
    this.fw = this.layout.word;
    this.fs = this.layout.shift;
    this.fm = this.layout.mask;
    this.hb = this.layout.holderBits;
    this.hm = (1 << this.hb) - 1;
    this.longterm = Int32Array.from(params.kinds, (k) => (k === 'ST' ? 0 : 1));
    this.canonHp = this.makeCanon(params.symmetry);
    this.spread = new Int32Array(1 << N);
    for (let m = 0; m < 1 << N; m++) {
      for (let p = 0; p < N; p++) if (m & (1 << p)) this.spread[m] |= 3 << (2 * p);
    }
    this.maxEdges = H * Math.max(N, 2) + N + N * (N + 1) + 1 + H + 5 * N;
    this.processes = [...params.kinds.map((k, h) => `holder ${h} (${k})`), 'guest', 'vmm', 'host'];
    const flags = [params.coop ? 'COOP' : '', params.semantic ? 'SEMANTIC' : '', params.symmetry ? 'symmetry' : '']
      .filter((s) => s).join(',');
    this.name = `reference N=${N} H=${H} C=${C} BUG=${bug}${bug ? ` ${BUG_NAMES[bug]}` : ''}`
      + ` kinds=${params.kinds.join(',')}${flags ? ` ${flags}` : ''}`;
  }

  /**
   * Symmetry: holders of the same behaviour (ST, or longterm: IOU and VFIO act alike here)
   * are interchangeable, so the canonical HPG value sorts the pins within each class.
   */
  private makeCanon(symmetry: boolean): Int32Array {
    const size = 1 << (this.H * this.hb);
    const t = new Int32Array(size);
    for (let v = 0; v < size; v++) {
      if (!symmetry) { t[v] = v; continue; }
      const pins = Array.from({ length: this.H }, (_, h) => (v >>> (h * this.hb)) & this.hm);
      let out = 0;
      for (const cls of [0, 1]) {
        const idx = pins.map((_, h) => h).filter((h) => this.longterm[h] === cls);
        const vals = idx.map((h) => pins[h]).sort((a, b) => a - b);
        idx.forEach((h, i) => { out |= vals[i] << (h * this.hb); });
      }
      t[v] = out;
    }
    return t;
  }

  private get(st: Uint32Array, off: number, f: number): number {
    return (st[off + this.fw[f]] >>> this.fs[f]) & this.fm[f];
  }

  private put(out: Uint32Array, o: number, f: number, v: number): void {
    const i = o + this.fw[f];
    const s = this.fs[f];
    out[i] = (out[i] & ~(this.fm[f] << s)) | (v << s);
  }

  /** Copies the state into staged edge t with code `code`; returns its word offset. */
  private edge(st: Uint32Array, off: number, sink: EdgeSink, t: number, code: number): number {
    const W = this.words;
    const o = t * W;
    const out = sink.words;
    for (let i = 0; i < W; i++) out[o + i] = st[off + i];
    sink.codes[t] = code;
    return o;
  }

  /** reset: lo, hi, dir, blk := 0; gsnap := 0; ph := IDLE (cur is not touched). */
  private reset(out: Uint32Array, o: number): void {
    this.put(out, o, F.LO, 0);
    this.put(out, o, F.HI, 0);
    this.put(out, o, F.DIR, 0);
    this.put(out, o, F.BLK, 0);
    this.put(out, o, F.GSNAP, 0);
    this.put(out, o, F.PH, IDLE);
  }

  initial(sink: EdgeSink): void {
    const o = sink.top * this.words;
    for (let i = 0; i < this.words; i++) sink.words[o + i] = 0;
    this.put(sink.words, o, F.LEFT, this.C);
    sink.codes[sink.top++] = 0;
  }

  expand(st: Uint32Array, off: number, sink: EdgeSink): number {
    const N = this.N;
    const H = this.H;
    const hb = this.hb;
    const hm = this.hm;
    const all = this.all;
    const canon = this.canonHp;
    const out = sink.words;
    const priv = this.get(st, off, F.PRIV);
    const alloc = this.get(st, off, F.ALLOC);
    const mapped = this.get(st, off, F.MAPPED);
    const ct = this.get(st, off, F.CONTENT);
    const gv = this.get(st, off, F.GV);
    const hp = this.get(st, off, F.HPG);
    const ph = this.get(st, off, F.PH);
    const lo = this.get(st, off, F.LO);
    const hi = this.get(st, off, F.HI);
    const dir = this.get(st, off, F.DIR);
    const locked = ph === LOCKED;
    const rmask = ((1 << (hi + 1)) - 1) & ~((1 << lo) - 1);
    let pinmask = 0;
    for (let h = 0; h < H; h++) {
      const pg = (hp >>> (h * hb)) & hm;
      if (pg !== 0) pinmask |= 1 << (pg - 1);
    }
    // FAULTOK(p): the fault / GUP slow path refuses PRIVATE pages (BUG 4: it does not).
    const faultOk = this.bug === 4 ? all : ~priv & all;
    let t = sink.top;
    let o: number;

    // ---- holder h. pin(p): hpg[h]=0 ∧ coop(p) ∧ (mapped[p] ∨ (¬locked ∧ FAULTOK(p)))
    // coop(p) is false only if COOP ∧ ph≠IDLE ∧ dir=TOPRIV ∧ p∈R.
    const coopBlock = this.coop && ph !== IDLE && dir === TOPRIV ? rmask : 0;
    const pinnable = (mapped | (locked ? 0 : faultOk)) & ~coopBlock & all;
    for (let h = 0; h < H; h++) {
      const sh = h * hb;
      const pg = (hp >>> sh) & hm;
      if (pg === 0) {
        for (let p = 0; p < N; p++) {
          if (!((pinnable >>> p) & 1)) continue;
          o = this.edge(st, off, sink, t++, A.PIN | (h << 5) | (p << 9));
          this.put(out, o, F.MAPPED, mapped | (1 << p));
          this.put(out, o, F.ALLOC, alloc | (1 << p));
          this.put(out, o, F.HPG, canon[hp | ((p + 1) << sh)]);
        }
        continue;
      }
      const p = pg - 1;
      const unpinned = canon[hp & ~(hm << sh)];
      const ctPub = (ct & ~(3 << (2 * p))) | (PUB << (2 * p));
      if (this.longterm[h] === 0) {
        // ST: I/O done, device wrote: content[p] := PUB; hpg[h] := 0
        o = this.edge(st, off, sink, t++, A.IO_WROTE | (h << 5));
        this.put(out, o, F.CONTENT, ctPub);
        this.put(out, o, F.HPG, unpinned);
        // ST: I/O done, device read: hpg[h] := 0
        o = this.edge(st, off, sink, t++, A.IO_READ | (h << 5));
        this.put(out, o, F.HPG, unpinned);
      } else {
        // IOU/VFIO: device DMA write: content[p] := PUB (a self-loop if it already is)
        o = this.edge(st, off, sink, t++, A.DMA_WRITE | (h << 5));
        this.put(out, o, F.CONTENT, ctPub);
        // IOU/VFIO: userspace unregisters: hpg[h] := 0
        o = this.edge(st, off, sink, t++, A.UNREGISTER | (h << 5));
        this.put(out, o, F.HPG, unpinned);
      }
    }

    // ---- guest: write(p) and request(l, r, d), both only while ph = IDLE
    if (ph === IDLE) {
      for (let p = 0; p < N; p++) {
        o = this.edge(st, off, sink, t++, A.WRITE | (p << 9));
        this.put(out, o, F.ALLOC, alloc | (1 << p));
        const v = (priv >>> p) & 1 ? SEC : PUB;
        this.put(out, o, F.CONTENT, (ct & ~(3 << (2 * p))) | (v << (2 * p)));
        if (v === SEC) this.put(out, o, F.GV, (gv & ~(3 << (2 * p))) | (SEC << (2 * p)));
      }
      const left = this.get(st, off, F.LEFT);
      if (left > 0) {
        for (let r = 0; r < N; r++) {
          for (let l = 0; l <= r; l++) {
            for (let d = 0; d < 2; d++) {
              o = this.edge(st, off, sink, t++, A.REQUEST | (l << 5) | (r << 9) | (d << 13));
              this.put(out, o, F.LEFT, left - 1);
              this.put(out, o, F.LO, l);
              this.put(out, o, F.HI, r);
              this.put(out, o, F.DIR, d);
              this.put(out, o, F.GSNAP, priv);
              this.put(out, o, F.PH, PENDING);
            }
          }
        }
      }
    }

    // ---- VMM vCPU thread
    if (ph === PENDING && dir === TOSHARED) {
      // convert to shared: for p∈R with priv[p]: priv[p]:=0, SEC→PUB, gv[p]:=0; reset.
      // Asserts that the content handed over is what the guest expects.
      o = this.edge(st, off, sink, t++, A.TO_SHARED);
      const conv = rmask & priv;
      const sp = this.spread[conv];
      const allocConv = this.spread[conv & alloc];
      if (((ct ^ gv) & allocConv) !== 0) {
        if (this.stepFails(sink, t, P.S5_TO_SHARED)) return P.S5_TO_SHARED;
      } else {
        // SEC (0b10) -> PUB (0b01) within the converted pages; ZERO and PUB stay.
        const secHi = ct & sp & 0xaaaaaaa;
        this.put(out, o, F.PRIV, priv & ~conv);
        this.put(out, o, F.CONTENT, (ct & ~secHi) | (secHi >>> 1));
        this.put(out, o, F.GV, gv & ~sp);
        this.reset(out, o);
      }
    } else if (ph === PENDING) {
      o = this.edge(st, off, sink, t++, A.LOCK);
      if (this.bug !== 2) {
        // lock + unmap: mapped[p] := 0 for p∈R; ph := LOCKED (BUG 3: cur := lo)
        this.put(out, o, F.MAPPED, mapped & ~rmask);
        if (this.bug === 3) this.put(out, o, F.CUR, lo);
        this.put(out, o, F.PH, LOCKED);
      } else {
        // BUG 2 TOCTOU: lock and check pins before unmapping; fail or go on to LOCKED
        const tm = pinmask & rmask;
        if (tm !== 0) {
          if (this.fail(st, off, out, o, tm)) { if (this.stepFails(sink, t, P.S3)) return P.S3; }
        } else {
          this.put(out, o, F.PH, LOCKED);
        }
      }
    } else if (locked) {
      o = this.edge(st, off, sink, t++, A.COMMIT);
      const bug = this.bug;
      if (bug === 0 || bug === 4) {
        // check + commit: any pin in R fails the whole range, else commit
        const tm = pinmask & rmask;
        if (tm !== 0) {
          if (this.fail(st, off, out, o, tm)) { if (this.stepFails(sink, t, P.S3)) return P.S3; }
        } else {
          this.commit(out, o, priv, ct, gv, rmask);
        }
      } else if (bug === 1) {
        this.commit(out, o, priv, ct, gv, rmask);
      } else if (bug === 2) {
        this.put(out, o, F.MAPPED, mapped & ~rmask);
        this.commit(out, o, priv, ct, gv, rmask);
      } else {
        // BUG 3 NOROLLBACK: page by page from cur; no rollback when a pinned page is met
        const cur = this.get(st, off, F.CUR);
        if ((pinmask >>> cur) & 1) {
          this.put(out, o, F.CUR, 0);
          if (this.fail(st, off, out, o, 1 << cur)) { if (this.stepFails(sink, t, P.S3)) return P.S3; }
        } else {
          if (!((priv >>> cur) & 1)) {
            this.put(out, o, F.PRIV, priv | (1 << cur));
            const c = (ct >>> (2 * cur)) & 3;
            this.put(out, o, F.GV, (gv & ~(3 << (2 * cur))) | (c << (2 * cur)));
          }
          if (cur === hi) {
            this.put(out, o, F.CUR, 0);
            this.reset(out, o);
          } else {
            this.put(out, o, F.CUR, cur + 1);
          }
        }
      }
    } else if (ph === FAILED) {
      const blk = this.get(st, off, F.BLK);
      // retry: ph=FAILED ∧ ¬pinned(blk): blk := 0; ph := PENDING
      if (!((pinmask >>> blk) & 1)) {
        o = this.edge(st, off, sink, t++, A.RETRY);
        this.put(out, o, F.BLK, 0);
        this.put(out, o, F.PH, PENDING);
      }
      // release holder h (IOU/VFIO): ph=FAILED ∧ hpg[h]=blk+1: hpg[h] := 0
      for (let h = 0; h < H; h++) {
        const sh = h * hb;
        if (this.longterm[h] === 0 || ((hp >>> sh) & hm) !== blk + 1) continue;
        o = this.edge(st, off, sink, t++, A.RELEASE | (h << 5));
        this.put(out, o, F.HPG, canon[hp & ~(hm << sh)]);
      }
    }

    // ---- host userspace, per page
    for (let p = 0; p < N; p++) {
      const bit = 1 << p;
      const isMapped = (mapped & bit) !== 0;
      const isAlloc = (alloc & bit) !== 0;
      // fault in: ¬locked ∧ FAULTOK(p) ∧ ¬mapped[p]: mapped[p] := 1; alloc[p] := 1
      if (!locked && (faultOk & bit) && !isMapped) {
        o = this.edge(st, off, sink, t++, A.FAULT_IN | (p << 9));
        this.put(out, o, F.MAPPED, mapped | bit);
        this.put(out, o, F.ALLOC, alloc | bit);
      }
      if (isMapped) {
        // munmap: mapped[p] := 0
        o = this.edge(st, off, sink, t++, A.MUNMAP | (p << 9));
        this.put(out, o, F.MAPPED, mapped & ~bit);
        // store: content[p] := PUB
        o = this.edge(st, off, sink, t++, A.STORE | (p << 9));
        this.put(out, o, F.CONTENT, (ct & ~(3 << (2 * p))) | (PUB << (2 * p)));
      }
      if (!locked && !isAlloc) {
        // fallocate: alloc[p] := 1
        o = this.edge(st, off, sink, t++, A.FALLOCATE | (p << 9));
        this.put(out, o, F.ALLOC, alloc | bit);
      }
      if (!locked && isAlloc && !(pinmask & bit)) {
        // punch hole: mapped[p], alloc[p], content[p], gv[p] := 0
        o = this.edge(st, off, sink, t++, A.PUNCH | (p << 9));
        this.put(out, o, F.MAPPED, mapped & ~bit);
        this.put(out, o, F.ALLOC, alloc & ~bit);
        this.put(out, o, F.CONTENT, ct & ~(3 << (2 * p)));
        this.put(out, o, F.GV, gv & ~(3 << (2 * p)));
      }
    }
    sink.top = t;
    return 0;
  }

  /**
   * A step assertion failed on the edge just staged (the last before `t`): true to stop there
   * (sink.top = t, the caller returns the code); in all-violations mode it is recorded in
   * sink.failures and the other edges follow.
   */
  private stepFails(sink: EdgeSink, t: number, code: number): boolean {
    if (!sink.failures) {
      sink.top = t;
      return true;
    }
    sink.failures.push(t - 1, code);
    return false;
  }

  /** COMMIT: for p∈R with ¬priv[p]: priv[p] := 1; gv[p] := content[p]; then reset. */
  private commit(out: Uint32Array, o: number, priv: number, ct: number, gv: number, rmask: number): void {
    const flip = rmask & ~priv;
    const sp = this.spread[flip];
    this.put(out, o, F.PRIV, priv | flip);
    this.put(out, o, F.GV, (gv & ~sp) | (ct & sp));
    this.reset(out, o);
  }

  /**
   * FAIL (-EAGAIN): blk := the least page of tm; assert S3 (priv = gsnap); ph := FAILED.
   * Returns true if the S3 assertion fails.
   */
  private fail(st: Uint32Array, off: number, out: Uint32Array, o: number, tm: number): boolean {
    this.put(out, o, F.BLK, 31 - Math.clz32(tm & -tm));
    if (this.get(st, off, F.PRIV) !== this.get(st, off, F.GSNAP)) return true;
    this.put(out, o, F.PH, FAILED);
    return false;
  }

  /** The state invariants in the monitor's order: S1, S2, S4, S5, WF (SEMANTIC: S4, S5, WF). */
  check(st: Uint32Array, off: number): number {
    const m = this.failing(st, off, false);
    return m === 0 ? 0 : 31 - Math.clz32(m);
  }

  checkAll(st: Uint32Array, off: number): number {
    return this.failing(st, off, true);
  }

  /** Bit c set for each failing invariant c; unless `all`, only the first in the monitor's order. */
  private failing(st: Uint32Array, off: number, all: boolean): number {
    const priv = this.get(st, off, F.PRIV);
    const alloc = this.get(st, off, F.ALLOC);
    const mapped = this.get(st, off, F.MAPPED);
    const ct = this.get(st, off, F.CONTENT);
    const gv = this.get(st, off, F.GV);
    const pinmask = this.pinmask(st, off);
    let m = 0;
    if (!this.semantic) {
      if (mapped & priv) { m |= 1 << P.S1; if (!all) return m; }
      if (pinmask & priv) { m |= 1 << P.S2; if (!all) return m; }
    }
    // S4: a page reachable by the host (mapped or pinned) never holds SEC (0b10).
    if (ct & this.spread[mapped | pinmask] & 0xaaaaaaa) { m |= 1 << P.S4; if (!all) return m; }
    // S5: an allocated PRIVATE page holds exactly gv.
    if ((ct ^ gv) & this.spread[priv & alloc]) { m |= 1 << P.S5; if (!all) return m; }
    // WF: a hole is ZERO, unmapped, and gv = 0.
    const holes = ~alloc & this.all;
    if ((mapped & holes) || ((ct | gv) & this.spread[holes])) m |= 1 << P.WF;
    return m;
  }

  private pinmask(st: Uint32Array, off: number): number {
    const hp = this.get(st, off, F.HPG);
    let m = 0;
    for (let h = 0; h < this.H; h++) {
      const pg = (hp >>> (h * this.hb)) & this.hm;
      if (pg !== 0) m |= 1 << (pg - 1);
    }
    return m;
  }

  explain(st: Uint32Array, off: number, code: number): string {
    return explainViolation(this.decode(st, off), this.pinmask(st, off), code);
  }

  /** The state's variables as plain arrays and numbers. */
  decode(st: Uint32Array, off: number): Decoded {
    return decodeState(this.layout, this.N, this.H, st, off);
  }

  describeState(st: Uint32Array, off: number): Readonly<Record<string, Value>> {
    return describeDecoded(this.decode(st, off), this.bug === 3);
  }

  describeEdge(code: number): EdgeLabel {
    return describeCode(code, this.bug, this.processes);
  }

  /** Processes as in gmem.pml (without the monitor, never enabled in a good state). */
  processOf(code: number): number {
    const a = code & 31;
    if (a <= A.UNREGISTER) return (code >>> 5) & 15;
    if (a <= A.REQUEST) return this.H;
    if (a <= A.RELEASE) return this.H + 1;
    return this.H + 2;
  }
}
