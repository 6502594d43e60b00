// A structural clone of a full-model world, derived from its whole object graph like the
// canonical encoding (canon.ts): every object reachable from the World is copied once, sharing
// kept (an object reached twice is one copy), so the clone behaves exactly as the original
// world would from here on. It replaces replaying a state's action path from the initial world.
//
// How each kind of object is copied:
// - Plain objects, arrays, Maps, Sets and class instances: field by field (class instances keep
//   their prototype); byte arrays are copied (the model writes pages in place).
// - Extent maps: their O(1) copy-on-write clone; their values are immutable (extent-map.ts), so
//   sharing them is exact. Interval maps and B+ trees: their O(1) clone, then every object value
//   (a memslot, a VMA, a page) replaced by its copy (those are mutable and have identity).
// - Constants of the run (the configuration, the profile, the machine) and functions (code, the
//   same in every world) are shared, not copied.
// - Rebuilt, not copied: the userspace half's tracking backend (a Proxy over the ModelBackend
//   and the MemoryMap: made again over their copies), a planted bug (own function fields of the
//   Kernel: the world plants it again on the copy, bound to the copy), and the event emitter
//   (a fresh one; the world has no listeners, and a clone of one with listeners is refused:
//   they would be closures over the original).
// Anything else is refused: a Proxy elsewhere, a symbol-keyed field.
import { EventEmitter } from 'node:events';
import { isProxy } from 'node:util/types';
import { newTree } from '../../model/btree.js';
import { ExtentMap } from '../../model/extent-map.js';
import { IntervalMap } from '../../model/interval-map.js';
import { Kernel } from '../../model/kernel.js';
import { trackingBackend } from '../../userspace/memory-map.js';
import { Userspace } from '../../userspace/userspace.js';

const BTree = newTree<number, unknown>().constructor as new () => unknown;
type Tree = { clone(): Tree; forEachPair(f: (k: unknown, v: unknown) => void): void; set(k: unknown, v: unknown): void };

export class Cloner {
  private readonly memo = new Map<object, unknown>();

  /** `shared`: objects kept as they are (constants of the run). */
  constructor(private readonly shared: { has(o: object): boolean }) {}

  value<T>(x: T): T {
    if (x === null || typeof x !== 'object') return x;
    const m = this.memo.get(x as object);
    if (m !== undefined) return m as T;
    if (this.shared.has(x as object)) return x;
    return this.object(x as object) as T;
  }

  private object(o: object): unknown {
    if (Array.isArray(o)) {
      const a = new Array<unknown>(o.length);
      this.memo.set(o, a);
      for (let i = 0; i < o.length; i++) a[i] = this.value(o[i]);
      return a;
    }
    const proto = Object.getPrototypeOf(o) as object | null;
    if (proto === Object.prototype) {
      const c: Record<string, unknown> = {};
      this.memo.set(o, c);
      const r = o as Record<string, unknown>;
      for (const k in r) c[k] = this.value(r[k]);
      return c;
    }
    let kind = KINDS.get(proto);
    if (kind === undefined) KINDS.set(proto, (kind = kindOf(o)));
    switch (kind) {
      case 'bytes': {
        const c = (o as Uint8Array).slice();
        this.memo.set(o, c);
        return c;
      }
      case 'extents': {
        const c = (o as ExtentMap<unknown>).clone();
        this.memo.set(o, c);
        return c;
      }
      case 'intervals': {
        const m = o as IntervalMap<unknown>;
        const c = m.clone();
        this.memo.set(o, c);
        for (const seg of m.segments(Number.MIN_SAFE_INTEGER)) {
          if (seg.value === null || typeof seg.value !== 'object') continue;
          const v = this.value(seg.value);
          if (v !== seg.value) c.set(seg.lo, seg.hi, v);
        }
        c.version = m.version;
        return c;
      }
      case 'tree': {
        const t = o as unknown as Tree;
        const c = t.clone();
        this.memo.set(o, c);
        t.forEachPair((k, x) => {
          if (x === null || typeof x !== 'object') return;
          const v = this.value(x);
          if (v !== x) c.set(k, v);
        });
        return c;
      }
      case 'map': {
        const c = new Map<unknown, unknown>();
        this.memo.set(o, c);
        for (const [k, x] of o as Map<unknown, unknown>) c.set(this.value(k), this.value(x));
        return c;
      }
      case 'set': {
        const c = new Set<unknown>();
        this.memo.set(o, c);
        for (const x of o as Set<unknown>) c.add(this.value(x));
        return c;
      }
      case 'emitter': {
        if ((o as EventEmitter).eventNames().length > 0) throw new Error('world clone: an event emitter with listeners (closures over the original)');
        const c = new EventEmitter();
        this.memo.set(o, c);
        return c;
      }
      case 'object': break;
    }
    if (isProxy(o)) throw new Error('world clone: a Proxy in the model state needs a rule');
    const c = Object.create(proto) as Record<string, unknown>;
    this.memo.set(o, c);
    const r = o as Record<string, unknown>;
    const kernel = o instanceof Kernel;
    const us = o instanceof Userspace;
    for (const k of Object.keys(r)) {
      const x = r[k];
      if (kernel && typeof x === 'function') continue; // a planted override: planted again on the copy
      if (us && k === 'backend') { c[k] = undefined; continue; } // the tracking Proxy: rebuilt below (in its place: field order is kept)
      c[k] = this.value(x);
    }
    if (us) c.backend = trackingBackend(c.kernel as Userspace['kernel'], c.memory as Userspace['memory']);
    return c;
  }
}

type Kind = 'bytes' | 'extents' | 'intervals' | 'tree' | 'map' | 'set' | 'emitter' | 'object';
/** How instances of a prototype are copied, decided on its first instance. */
const KINDS = new Map<object | null, Kind>();

function kindOf(o: object): Kind {
  if (o instanceof Uint8Array) return 'bytes';
  if (o instanceof ExtentMap) return 'extents';
  if (o instanceof IntervalMap) return 'intervals';
  if (o instanceof BTree) return 'tree';
  if (o instanceof Map) return 'map';
  if (o instanceof Set) return 'set';
  if (o instanceof EventEmitter) return 'emitter';
  if (ArrayBuffer.isView(o)) throw new Error(`world clone: a ${o.constructor.name} needs a rule`);
  if (Object.getOwnPropertySymbols(o).length > 0) throw new Error(`world clone: symbol-keyed fields on ${o.constructor?.name}`);
  return 'object';
}
