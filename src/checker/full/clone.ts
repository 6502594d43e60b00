// A structural clone of a full-model world, derived from its whole object graph like the
// canonical encoding (canon.ts): every object reachable from the World is copied once, sharing
// kept (an object reached twice is one copy), so the clone behaves exactly as the original
// world would from here on. It replaces replaying a state's action path from the initial world.
//
// How each kind of object is copied:
// - Plain objects, arrays, Maps, Sets and class instances: field by field (class instances keep
//   their prototype; plain objects are made as literals, the layout the model's own literals
//   have, by a copy function compiled once per shape); byte arrays are copied.
// - Extent maps: their O(1) copy-on-write clone; their values are immutable (extent-map.ts), so
//   sharing them is exact. Interval maps and B+ trees: their O(1) clone, then every object value
//   (a memslot, a VMA) replaced by its copy (those are mutable and have identity). Pages of the
//   folio table are shared: folioWrite replaces a page instead of writing it (folio.ts).
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
  constructor(private readonly shared: SharedObjects) {}

  value<T>(x: T): T {
    if (x === null || typeof x !== 'object') return x;
    const m = this.memo.get(x as object);
    if (m !== undefined) return m as T;
    const proto = Object.getPrototypeOf(x) as object | null;
    const info = PROTOS.get(proto) ?? protoInfo(x as object, proto);
    if (mayBeShared(info, this.shared) && this.shared.has(x as object)) return x;
    return this.object(x as object, info) as T;
  }

  /** Records `c` as the copy of `o` (before its fields are copied: cycles and sharing). */
  copyOf<T>(o: object, c: T): T {
    this.memo.set(o, c);
    return c;
  }

  private object(o: object, info: ProtoInfo): unknown {
    switch (info.kind) {
      case 'array': {
        const a = o as unknown[];
        const c = this.copyOf(o, new Array<unknown>(a.length));
        for (let i = 0; i < a.length; i++) c[i] = this.value(a[i]);
        return c;
      }
      case 'plain': return shapeOf(o, info).copy(this, o as Record<string, unknown>);
      case 'bytes': return this.copyOf(o, (o as Uint8Array).slice());
      case 'extents': return this.copyOf(o, (o as ExtentMap<unknown>).clone());
      case 'intervals': {
        const m = o as IntervalMap<unknown>;
        const c = this.copyOf(o, m.clone());
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
        const c = this.copyOf(o, t.clone());
        t.forEachPair((k, x) => {
          // A page of the folio table (the only tree of byte arrays): folioWrite replaces a page
          // rather than writing it (folio.ts), so pages are immutable and shared like extent values.
          if (x === null || typeof x !== 'object' || x instanceof Uint8Array) return;
          const v = this.value(x);
          if (v !== x) c.set(k, v);
        });
        return c;
      }
      case 'map': {
        const c = this.copyOf(o, new Map<unknown, unknown>());
        for (const [k, x] of o as Map<unknown, unknown>) c.set(this.value(k), this.value(x));
        return c;
      }
      case 'set': {
        const c = this.copyOf(o, new Set<unknown>());
        for (const x of o as Set<unknown>) c.add(this.value(x));
        return c;
      }
      case 'emitter': {
        if ((o as EventEmitter).eventNames().length > 0) throw new Error('world clone: an event emitter with listeners (closures over the original)');
        return this.copyOf(o, new EventEmitter());
      }
      case 'object': break;
    }
    if (isProxy(o)) throw new Error('world clone: a Proxy in the model state needs a rule');
    if (o instanceof Kernel || o instanceof Userspace) return this.special(o);
    return shapeOf(o, info).copy(this, o as Record<string, unknown>);
  }

  /** The Kernel (a planted override is planted again on the copy) and the Userspace (its tracking Proxy is rebuilt). */
  private special(o: Kernel | Userspace): unknown {
    const c = this.copyOf(o, Object.create(Object.getPrototypeOf(o) as object) as Record<string, unknown>);
    const r = o as unknown as Record<string, unknown>;
    const kernel = o instanceof Kernel;
    for (const k of Object.keys(r)) {
      const x = r[k];
      if (kernel && typeof x === 'function') continue; // a planted override: planted again on the copy
      if (!kernel && k === 'backend') { c[k] = undefined; continue; } // the tracking Proxy: rebuilt below (in its place: field order is kept)
      c[k] = this.value(x);
    }
    if (!kernel) c.backend = trackingBackend(c.kernel as Userspace['kernel'], c.memory as Userspace['memory']);
    return c;
  }
}

/** The objects a clone keeps as they are (a Map or Set of them). */
export interface SharedObjects { has(o: object): boolean; keys(): Iterable<object> }

/** One object shape (prototype and field names in order) and its copy function. */
interface Shape {
  readonly keys: readonly string[];
  /**
   * Copies an object of this shape field by field, compiled once per shape so that each field
   * access sees one object layout; plain objects are made as literals (the layout the model's
   * own literals have), class instances from their prototype.
   */
  readonly copy: (c: Cloner, o: Record<string, unknown>) => unknown;
}

function shapeOf(o: object, info: ProtoInfo): Shape {
  const keys = Object.keys(o);
  next: for (const sh of info.shapes) {
    const k = sh.keys;
    if (k.length !== keys.length) continue;
    for (let i = 0; i < k.length; i++) if (k[i] !== keys[i]) continue next;
    return sh;
  }
  if (keys.includes('__proto__')) throw new Error('world clone: a field named __proto__ needs a rule');
  const field = (k: string): string => `o[${JSON.stringify(k)}]`;
  const body = info.kind === 'plain'
    ? `const n = c.copyOf(o, {${keys.map((k) => `${JSON.stringify(k)}: undefined`).join(', ')}});\n${keys.map((k) => `n[${JSON.stringify(k)}] = c.value(${field(k)});`).join('\n')}\nreturn n;`
    : `const n = c.copyOf(o, Object.create(proto));\n${keys.map((k) => `n[${JSON.stringify(k)}] = c.value(${field(k)});`).join('\n')}\nreturn n;`;
  const copy = new Function('proto', `return (c, o) => {\n${body}\n};`)(info.proto) as Shape['copy'];
  const sh: Shape = { keys, copy };
  info.shapes.push(sh);
  return sh;
}

/** What is known of a prototype's instances, decided on its first instance. */
interface ProtoInfo {
  readonly proto: object | null;
  readonly kind: Kind;
  readonly shapes: Shape[];
  /** The shared map `mayBeShared` was computed for, and whether a shared object has this prototype. */
  sharedSeen: SharedObjects | undefined;
  mayBeShared: boolean;
}
const PROTOS = new Map<object | null, ProtoInfo>();

function protoInfo(o: object, proto: object | null): ProtoInfo {
  const info: ProtoInfo = { proto, kind: kindOf(o), shapes: [], sharedSeen: undefined, mayBeShared: false };
  PROTOS.set(proto, info);
  return info;
}

function mayBeShared(info: ProtoInfo, shared: SharedObjects): boolean {
  if (info.sharedSeen !== shared) {
    info.sharedSeen = shared;
    info.mayBeShared = false;
    for (const c of shared.keys()) if (Object.getPrototypeOf(c) === info.proto) { info.mayBeShared = true; break; }
  }
  return info.mayBeShared;
}

type Kind = 'array' | 'plain' | 'bytes' | 'extents' | 'intervals' | 'tree' | 'map' | 'set' | 'emitter' | 'object';

function kindOf(o: object): Kind {
  if (Array.isArray(o)) return 'array';
  const proto = Object.getPrototypeOf(o) as object | null;
  if (proto === Object.prototype) return 'plain';
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
