// Reports for the reference protocol: a state decoded into gmem.pml's variables, the changes
// shown in counterexample steps, edge labels, and why a property fails in a state.
// Only for traces and messages (it allocates freely); it must never be on the search path.
import type { EdgeLabel, Value } from '../types.js';
import { F, field, type Layout } from './layout.js';
import {
  A, ACTION_NAMES, CONTENT_NAMES, DIR_NAMES, P, PH_NAMES, PROPERTIES, SEC, ZERO,
} from './vocab.js';

export interface Decoded {
  readonly priv: number[];
  readonly alloc: number[];
  readonly mapped: number[];
  readonly gsnap: number[];
  readonly content: number[];
  readonly gv: number[];
  readonly hpg: number[];
  readonly left: number;
  readonly ph: number;
  readonly lo: number;
  readonly hi: number;
  readonly dir: number;
  readonly blk: number;
  readonly cur: number;
}

export function decodeState(layout: Layout, n: number, h: number, st: Uint32Array, off: number): Decoded {
  const get = (f: number): number => field(layout, st, off, f);
  const bits = (f: number): number[] => Array.from({ length: n }, (_, p) => (get(f) >>> p) & 1);
  const pairs = (f: number): number[] => Array.from({ length: n }, (_, p) => (get(f) >>> (2 * p)) & 3);
  const hb = layout.holderBits;
  return {
    priv: bits(F.PRIV), alloc: bits(F.ALLOC), mapped: bits(F.MAPPED), gsnap: bits(F.GSNAP),
    content: pairs(F.CONTENT), gv: pairs(F.GV),
    hpg: Array.from({ length: h }, (_, i) => (get(F.HPG) >>> (i * hb)) & ((1 << hb) - 1)),
    left: get(F.LEFT), ph: get(F.PH), lo: get(F.LO), hi: get(F.HI), dir: get(F.DIR),
    blk: get(F.BLK), cur: get(F.CUR),
  };
}

/** gmem.pml's variables; per-page arrays as `[p0 p1 ...]`. */
export function describeDecoded(s: Decoded, withCur: boolean): Readonly<Record<string, Value>> {
  const list = (a: (number | string)[]): string => `[${a.join(' ')}]`;
  const r: Record<string, Value> = {
    priv: list(s.priv), alloc: list(s.alloc), mapped: list(s.mapped),
    content: list(s.content.map((c) => CONTENT_NAMES[c])), gv: list(s.gv.map((c) => CONTENT_NAMES[c])),
    hpg: list(s.hpg), left: s.left, ph: PH_NAMES[s.ph], lo: s.lo, hi: s.hi, dir: DIR_NAMES[s.dir],
    blk: s.blk, gsnap: list(s.gsnap),
  };
  if (withCur) r.cur = s.cur;
  return r;
}

export function describeCode(code: number, bug: number, processes: readonly string[]): EdgeLabel {
  const a = code & 31;
  const x = (code >>> 5) & 15;
  const y = (code >>> 9) & 15;
  const d = (code >>> 13) & 1;
  const action = ACTION_NAMES[a] ?? `action${a}`;
  if (a <= A.UNREGISTER) return { process: processes[x], action, params: a === A.PIN ? { page: y } : {} };
  if (a === A.WRITE) return { process: 'guest', action, params: { page: y } };
  if (a === A.REQUEST) return { process: 'guest', action, params: { lo: x, hi: y, dir: DIR_NAMES[d] } };
  if (a === A.RELEASE) return { process: 'vmm', action, params: { holder: x } };
  if (a >= A.FAULT_IN) return { process: 'host', action, params: { page: y } };
  // The VMM steps that the bug variants change are named after what they do there.
  const name = a === A.LOCK && bug === 2 ? 'lock_check'
    : a === A.COMMIT && bug === 2 ? 'unmap_commit'
      : a === A.COMMIT && bug === 3 ? 'convert_next_page' : action;
  return { process: 'vmm', action: name, params: {} };
}

/** Why property `code` fails in state s (pinned: bitmask of pinned pages). */
export function explainViolation(s: Decoded, pinned: number, code: number): string {
  const pages = (pred: (p: number) => boolean): string =>
    s.priv.map((_, p) => p).filter(pred).join(', ');
  const isPriv = (p: number): boolean => s.priv[p] === 1;
  const isPinned = (p: number): boolean => ((pinned >>> p) & 1) === 1;
  switch (code) {
    case P.S1: return `page ${pages((p) => isPriv(p) && s.mapped[p] === 1)} is PRIVATE and mapped in host userspace`;
    case P.S2: return `page ${pages((p) => isPriv(p) && isPinned(p))} is PRIVATE and pinned`;
    case P.S3: return `the conversion of [${s.lo},${s.hi}] failed (-EAGAIN) but priv [${s.priv.join(' ')}] `
      + `differs from priv at request time [${s.gsnap.join(' ')}]`;
    case P.S4: return `page ${pages((p) => s.content[p] === SEC && (s.mapped[p] === 1 || isPinned(p)))} `
      + 'holds guest-private data (SEC) and is reachable by the host';
    case P.S5: return `PRIVATE page ${pages((p) => isPriv(p) && s.alloc[p] === 1 && s.content[p] !== s.gv[p])} `
      + 'does not hold what the guest expects';
    case P.WF: return `hole ${pages((p) => s.alloc[p] === 0 && (s.content[p] !== ZERO || s.gv[p] !== ZERO || s.mapped[p] === 1))} `
      + 'is not ZERO, unmapped and unexpected';
    case P.S5_TO_SHARED: return `converting [${s.lo},${s.hi}] to shared hands over page `
      + `${pages((p) => s.lo <= p && p <= s.hi && isPriv(p) && s.alloc[p] === 1 && s.content[p] !== s.gv[p])} `
      + 'whose content is not what the guest expects';
    default: return PROPERTIES[code - 1] ?? `property ${code}`;
  }
}
