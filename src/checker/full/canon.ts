// The canonical encoding of a full-model world, derived from its whole object graph: every
// field reachable from the World (kernel state, ModelBackend, Userspace with its manager,
// registry, memory map and holders, the ghost state), not a hand-picked list. Two worlds get
// the same string iff they are the same up to the abstractions below, each of which is
// harmless for the reason given next to it (test/checker-canon.test.ts checks the result:
// equal encodings, equal behaviour of every enabled action).
//
// How the graph is written:
// - Sharing is kept: the first visit of an object writes it in full, later visits write a
//   back-reference to its first-visit number (so "the guest maps the folio now in the page
//   cache" and "the guest maps a detached folio" differ). The traversal order is a function of
//   the graph alone (fields in definition order, Maps and Sets in insertion order, trees by
//   key), so the numbering is canonical.
// - Ordered trees (B+ trees) are written by their entries in key order, never by node layout;
//   IntervalMaps by their segments, with adjacent segments holding the very same value merged
//   (so a map that keeps runs split and one that merges them encode alike).
// - Extent maps (the page cache, PTEs, SPTEs: runs of folio ids) are written index by index,
//   each index with its value (folio ids renamed as below): where runs split or merge depends on
//   history, what each page maps does not. Values of extent maps are immutable, so they are
//   written by value (no sharing recorded). Lists of id blocks (Pin.folios) are written id by id.
// - The folio table (KernelState.folios, with folioData: the folios' state and contents, keyed
//   by folio id) is written last, folio by folio in the order of the folios' renamed ids, once
//   every reference has named them; folios nothing refers to (only a bug leaves one) follow as
//   a sorted multiset. So neither folio-id numbering nor run boundaries reach the encoding.
// - Byte arrays are run-length encoded; content is already abstracted by the model's users
//   (ZERO, PUB, SEC), nothing here abstracts it further.
// - Constants of the run (the configuration: profile, policy, machine) are written by name.
//
// Abstractions (each a rule in RULES, with its proof):
// - Object ids from counters are renamed. The kernel's (KernelState.nextId: VMs, files,
//   inodes, folios, pins, imports) and the manager's request ids are only ever compared for
//   equality or used as Map keys (Maps are written in their insertion order, which is what
//   iteration sees): they are renamed k0, k1, ... / r0, r1, ... in first-visit order. The
//   userspace's holder ids are also sorted (the registry keeps them ascending and the manager
//   releases holders in that order): they are renamed to their rank, an order-preserving
//   renaming. Either renaming commutes with everything the model does with ids, and the
//   counters themselves are left out: a fresh id is above every id in use, and its value is
//   never read otherwise, so renamed-equal worlds take the same steps to renamed-equal worlds.
//   Folio ids are also offset within a run (id + d is the d-th folio of a block allocated or
//   mapped together): every operation on a range of folio ids acts on each folio alike, run by
//   run, so two worlds with the same per-folio facts behave alike however their ids are blocked.
//   fd numbers are not renamed: the kernel hands out the lowest free fd, a function of the
//   open set.
// - Skipped, not state: functions (behaviour, the same code in every world; the conversion
//   hook `preemptionPoint` is set only during one action), the tracking backend (a Proxy whose
//   state is the MemoryMap and the ModelBackend, both written), the event emitter (listeners
//   only observe), per-call outputs (the backend's and the world's collected violations: the
//   checker reads them on the edge that produced them), the checker's own `checking` switch,
//   holders' display names and bounce-buffer statistics (`copies`, `bytesCopied`: only
//   counted and reported), the manager's statistics (`stalled`, `eagains`: only counted
//   and reported, never read by a decision; eagains picks whether a 'retried' event is emitted).
// - Userspace's index of every holder ever created keeps only holders that can still act
//   (holding, or queued behind a fence): every reader of that index filters by exactly that
//   (holdersAt/holdersOver: holding; unfence: queued; remapRevocable: holding), and a
//   released holder that can come back is reachable from releasedFor, where it is written.
import { isProxy } from 'node:util/types';
import { EventEmitter } from 'node:events';
import { newTree } from '../../model/btree.js';
import { ExtentMap, ID_CODEC } from '../../model/extent-map.js';
import { IntervalMap } from '../../model/interval-map.js';
import { FOLIO_CODEC, type FolioIds, type FolioRun, type KernelState } from '../../model/state.js';
import { Holder } from '../../userspace/holders.js';
import { ConversionManager, ConversionTask } from '../../userspace/manager.js';
import { PinRegistry } from '../../userspace/registry.js';
import { Userspace } from '../../userspace/userspace.js';
import { ModelBackend } from '../../backend/model-backend.js';
import { Kernel } from '../../model/kernel.js';

const BTree = newTree<number, unknown>().constructor as new () => unknown;

/** How a field's value is written: an id namespace (for numbers, Map keys/values, elements), or skipped. */
type Desc =
  | { readonly id: Namespace }
  | { readonly blocks: Namespace }
  | { readonly folioTable: true }
  | { readonly keys?: Desc; readonly values?: Desc; readonly filter?: (v: unknown) => boolean }
  | { readonly skip: string };
type Namespace = 'k' | 'u' | 'r';
type Sub = { readonly keys?: Desc; readonly values?: Desc; readonly filter?: (v: unknown) => boolean };

const K: Desc = { id: 'k' };
const U: Desc = { id: 'u' };
const R: Desc = { id: 'r' };
/** Written as it is (a number that only looks like an id). */
const RAW: Desc = {};
const skip = (why: string): Desc => ({ skip: why });
const FRESH = 'a source of fresh ids: above every id in use, never read otherwise';

const isKernelState = (o: object): boolean => 'nextId' in o && 'fds' in o && 'pins' in o;
const isMemslot = (o: object): boolean => 'baseGfn' in o && 'asId' in o;
const isRequest = (o: object): boolean => 'segments' in o && 'origin' in o && 'policy' in o;
const isPin = (o: object): boolean => 'address' in o && 'longterm' in o && 'folios' in o;
const liveHolder = (h: unknown): boolean => {
  const s = (h as Holder).state;
  return s === 'held' || s === 'in-flight' || s === 'queued';
};

/**
 * The rule for field `key` of `owner`, or undefined for the default (write it as it is).
 * Kernel objects are plain objects (state.ts): told apart by their fields.
 */
function rule(owner: object, key: string): Desc | undefined {
  if (owner instanceof Holder) {
    if (key === 'id') return U;
    if (key === 'pin' || key === 'importId') return K;
    if (key === 'name') return skip('a display name (kind#id), used in messages only');
    if (key === 'copies' || key === 'bytesCopied') return skip('bounce-buffer statistics, never read by a decision');
    return undefined;
  }
  if (owner instanceof Userspace) {
    if (key === 'ids') return skip(FRESH);
    if (key === 'holders') return { keys: U, filter: liveHolder };
    // Indexes of `holders` by kind, kept so a long run scans few holders: every holder in them is
    // in `holders` (written there when it can still act); a dead one never acts, so it is no state.
    if (key === 'queuedIo' || key === 'mappers' || key === 'dmaMappings') return skip('an index of holders by kind; the live ones are written through holders');
    if (key === 'fences') return { keys: R };
    if (key === 'backend') return skip('the tracking Proxy over the ModelBackend and the MemoryMap, both written');
    if (key === 'events') return skip('listeners only observe');
    return undefined;
  }
  if (owner instanceof PinRegistry) return key === 'byFd' ? { values: { values: { values: U } } } : undefined;
  if (owner instanceof ConversionManager) return key === 'nextRequest' ? skip(FRESH) : undefined;
  if (owner instanceof ConversionTask) {
    if (key === 'stalled' || key === 'eagains') return skip('statistics, never read by a decision');
    if (key === 'nextGpa') return RAW;
    return undefined;
  }
  if (owner instanceof ModelBackend) {
    if (key === 'checking') return skip("the checker's switch");
    if (key === 'violations') return skip('per-call output, read on the edge that produced it');
    return undefined;
  }
  if (owner instanceof Kernel) {
    if (key === 'profile' || key === 'machine') return skip('constant of the run');
    return undefined;
  }
  if (owner instanceof EventEmitter) return skip('listeners only observe');
  if (Object.getPrototypeOf(owner) === Object.prototype) {
    if (isKernelState(owner)) {
      if (key === 'nextId') return skip(FRESH);
      if (key === 'pins' || key === 'imports') return { keys: K };
      if (key === 'folios') return { folioTable: true };
      if (key === 'folioData') return skip('written with the folio table (the contents of its folios)');
      if (key === 'preemptionPoint') return skip('set only during one action');
      return undefined;
    }
    if (isMemslot(owner)) return key === 'id' || key === 'asId' ? RAW : undefined; // slot numbers are the VMM's
    if (key === 'id') return isRequest(owner) ? R : K;
    if (key === 'ino') return K;
    if (key === 'folio') return K; // a pipe buffer's folio id
    if (key === 'folios' && isPin(owner)) return { blocks: 'k' };
    if (key === 'racePin') return K; // the checker world's raw GUP-fast pin (world.ts)
  }
  return undefined;
}

/** Field names that hold ids unless a rule says otherwise: an unclassified one is a bug here. */
const ID_LIKE = /^(id|ino|pin|ids|folio)$|Id$|Pin$|^next[A-Z]/;

/** Objects written by name: the run's constants (reachable from the configuration). */
export function constantsOf(roots: Record<string, unknown>): Map<object, string> {
  const out = new Map<object, string>();
  const visit = (v: unknown, name: string): void => {
    if (v === null || typeof v !== 'object' || out.has(v)) return;
    out.set(v, name);
    for (const [k, x] of Object.entries(v)) visit(x, `${name}.${k}`);
  };
  for (const [k, v] of Object.entries(roots)) visit(v, k);
  return out;
}

export interface EncodeOptions {
  /** Objects written by name instead of by content. */
  readonly constants: ReadonlyMap<object, string>;
  /** Fields of the root to leave out (with the reason). */
  readonly skipRoot?: Readonly<Record<string, string>>;
}

/** The rules of one object shape (constructor and field names), computed once per shape. */
interface Shape {
  /** `{N|`: the shape's number. */
  readonly prefix: string;
  readonly keys: readonly string[];
  /** Per key: its rule (undefined: as it is), and whether a number there would look like an id. */
  readonly rules: readonly (Desc | undefined)[];
  readonly idLike: readonly boolean[];
}

const shapes = new Map<Function, Shape[]>();

/**
 * An object's shape: its constructor and its field names, in order (the rules are a function of
 * both). A shape is written as its number (assigned once per process, so equal shapes are
 * written alike) in place of its constructor and field names.
 */
function shapeOf(o: object): Shape {
  const keys = Object.keys(o);
  const ctor = (o.constructor ?? Object) as Function;
  let list = shapes.get(ctor);
  if (!list) shapes.set(ctor, (list = []));
  next: for (const sh of list) {
    const k = sh.keys;
    if (k.length !== keys.length) continue;
    for (let i = 0; i < k.length; i++) if (k[i] !== keys[i]) continue next;
    return sh;
  }
  const sh: Shape = {
    prefix: `{${numberShape(ctor, keys)}|`,
    keys,
    rules: keys.map((k) => rule(o, k)),
    idLike: keys.map((k) => ID_LIKE.test(k)),
  };
  list.push(sh);
  return sh;
}
let shapeCount = 0;
let numberShape: (ctor: Function, keys: readonly string[]) => number = () => shapeCount++;

/**
 * Makes new shapes take their numbers from `f` instead of this thread's counter: the parallel
 * search's workers number them alike (full/spec.ts), so one state has one encoding in every
 * thread. Call it before the first encoding.
 */
export function setShapeNumbering(f: (ctor: Function, keys: readonly string[]) => number): void {
  numberShape = f;
}

/** Strings as written (quoted), cached: the model's strings are a small vocabulary. */
const QUOTED = new Map<string, string>();

type Kind = 'object' | 'bytes' | 'extents' | 'intervals' | 'tree' | 'map' | 'set' | 'array';
/** How instances of a prototype are written, decided on its first instance. */
const KINDS = new Map<object | null, Kind>();

function kindOf(o: object): Kind {
  if (o instanceof Uint8Array) return 'bytes';
  if (o instanceof ExtentMap) return 'extents';
  if (o instanceof IntervalMap) return 'intervals';
  if (o instanceof BTree) return 'tree';
  if (o instanceof Map) return 'map';
  if (o instanceof Set) return 'set';
  if (Array.isArray(o)) return 'array';
  if (ArrayBuffer.isView(o)) throw new Error(`canonical encoding: a ${o.constructor.name} needs a rule`);
  return 'object';
}

const ZEROS = new Uint8Array(1 << 16);

/** One encoding run: the output, the first-visit numbers, and the id placeholders. */
class Encoder {
  out = '';
  private readonly seen = new Map<object, number>();
  readonly idPos: number[] = [];
  readonly idNs: Namespace[] = [];
  readonly idRaw: number[] = [];

  constructor(private readonly root: object, private readonly opts: EncodeOptions) {}

  /** First-visit numbers of the renamed ids, by namespace and id. */
  private readonly firstVisit = new Map<string, number>();
  /** Above 0 while writing an immutable value (an extent-map value): no sharing recorded. */
  private byValue = 0;
  /** Kernel states whose folio table is written at the end (after every reference to a folio). */
  private readonly tables: KernelState[] = [];

  private id(ns: Namespace, v: number): void {
    if (ns !== 'u') {
      const key = `${ns}${v}`;
      let n = this.firstVisit.get(key);
      if (n === undefined) this.firstVisit.set(key, (n = this.firstVisit.size));
      this.out += `${ns}${n},`;
      return;
    }
    this.idPos.push(this.out.length);
    this.idNs.push(ns);
    this.idRaw.push(v);
  }

  write(v: unknown, d: Desc | undefined): void {
    if (d !== undefined) {
      if ('skip' in d) return;
      if ('id' in d && typeof v === 'number') return this.id(d.id, v);
      if ('blocks' in d) return this.blocks(v as readonly FolioIds[], d.blocks);
    }
    switch (typeof v) {
      case 'undefined': this.out += 'u'; return;
      case 'boolean': this.out += v ? 't' : 'f'; return;
      case 'number': this.out += v; this.out += ','; return;
      case 'bigint': this.out += `${v}n`; return;
      case 'string': {
        let q = QUOTED.get(v);
        if (q === undefined) QUOTED.set(v, (q = JSON.stringify(v)));
        this.out += q;
        return;
      }
      case 'function': this.out += 'fn'; return;
      case 'symbol': throw new Error('canonical encoding: a symbol in the model state');
      case 'object': break;
    }
    if (v === null) { this.out += 'n'; return; }
    const o = v as object;
    const c = this.opts.constants.get(o);
    if (c !== undefined) { this.out += `$${c}`; return; }
    if (this.byValue === 0) {
      const ref = this.seen.get(o);
      if (ref !== undefined) { this.out += `@${ref}`; return; }
      this.seen.set(o, this.seen.size);
    }
    const sub = d !== undefined && !('id' in d) ? d as Sub : undefined;
    const proto = Object.getPrototypeOf(o) as object | null;
    let kind = KINDS.get(proto);
    if (kind === undefined) KINDS.set(proto, (kind = kindOf(o)));
    if (kind === 'object') return this.fields(o);
    if (kind === 'bytes') return this.bytes(o as Uint8Array);
    if (kind === 'extents') return this.extents(o as ExtentMap<unknown>, sub);
    if (kind === 'intervals') return this.intervals(o as IntervalMap<unknown>, sub);
    if (kind === 'tree') {
      const t = o as unknown as { forEachPair(f: (k: unknown, v: unknown) => void): void };
      this.out += 'T[';
      t.forEachPair((k, x) => { this.write(k, sub?.keys); this.out += ':'; this.write(x, sub?.values); this.out += ','; });
      this.out += ']';
      return;
    }
    if (kind === 'map') {
      const m = o as Map<unknown, unknown>;
      this.out += 'M[';
      for (const [k, x] of m) {
        if (sub?.filter && !sub.filter(x)) continue;
        this.write(k, sub?.keys); this.out += ':'; this.write(x, sub?.values); this.out += ',';
      }
      this.out += ']';
      return;
    }
    if (kind === 'set') {
      this.out += 'S[';
      for (const x of o as Set<unknown>) { this.write(x, sub?.values); this.out += ','; }
      this.out += ']';
      return;
    }
    if (kind === 'array') {
      const a = o as unknown[];
      this.out += '[';
      for (let i = 0; i < a.length; i++) { this.write(a[i], sub?.values); this.out += ','; }
      this.out += ']';
      return;
    }
    this.fields(o);
  }

  /** A plain object or class instance: its shape, then its fields by the shape's rules. */
  private fields(o: object): void {
    if (isProxy(o)) throw new Error('canonical encoding: a Proxy in the model state needs a rule');
    const sh = shapeOf(o);
    this.out += sh.prefix;
    const top = o === this.root;
    const rec = o as Record<string, unknown>;
    for (let i = 0; i < sh.keys.length; i++) {
      const key = sh.keys[i]!;
      const x = rec[key];
      const r = sh.rules[i];
      if (r !== undefined && 'skip' in r) continue;
      if (top && this.opts.skipRoot?.[key] !== undefined) continue;
      if (r !== undefined && 'folioTable' in r) { this.tables.push(rec as unknown as KernelState); continue; }
      if (r === undefined && sh.idLike[i] && typeof x === 'number') {
        throw new Error(`canonical encoding: field '${key}' of ${(o.constructor as { name: string }).name} looks like an id; classify it in canon.ts`);
      }
      this.write(x, r);
      this.out += ';';
    }
    this.out += '}';
  }

  /** A list of blocks of ids, written id by id (the block boundaries are representation). */
  private blocks(list: readonly FolioIds[], ns: Namespace): void {
    this.out += 'L[';
    for (const b of list) for (let j = 0; j < b.nr; j++) this.id(ns, b.id + j);
    this.out += ']';
  }

  /**
   * An extent map, written index by index with the value at each index (runs are
   * representation: where they split depends on history). Values are immutable, so they are
   * written by value; values of ID_CODEC maps are folio ids.
   */
  private extents(m: ExtentMap<unknown>, d: Sub | undefined): void {
    const codec = (m as unknown as { codec: unknown }).codec;
    if (codec === FOLIO_CODEC) throw new Error('canonical encoding: a folio table outside a kernel state needs a rule');
    const values = codec === ID_CODEC ? K : d?.values;
    this.out += 'E[';
    this.byValue++;
    for (const seg of m.segments()) {
      for (let i = seg.lo; i < seg.hi; i++) {
        this.out += `${i}:`;
        this.write(m.get(i), values);
        this.out += ',';
      }
    }
    this.byValue--;
    this.out += ']';
  }

  /**
   * The deferred folio tables, once every reference to a folio has named it: named folios in
   * the order of their names, then the ones nothing refers to (a bug could leave some) as a
   * sorted multiset, each with its state and contents.
   */
  finish(): void {
    for (const ks of this.tables) {
      const named: [number, number][] = [];
      const unnamed: number[] = [];
      for (const seg of ks.folios.segments()) {
        for (let id = seg.lo; id < seg.hi; id++) {
          const n = this.firstVisit.get(`k${id}`);
          if (n === undefined) unnamed.push(id);
          else named.push([n, id]);
        }
      }
      named.sort((a, b) => a[0] - b[0]);
      this.out += 'F[';
      for (const [n, id] of named) { this.out += `k${n}:`; this.folio(ks, id); this.out += ','; }
      const rest = unnamed.map((id) => {
        const saved = this.out;
        this.out = '';
        this.folio(ks, id);
        const one = this.out;
        this.out = saved;
        return one;
      }).sort();
      this.out += `|${rest.join(',')}]`;
    }
  }

  private folio(ks: KernelState, id: number): void {
    this.byValue++;
    this.write(ks.folios.get(id) as FolioRun, undefined);
    this.write(ks.folioData.get(id), undefined);
    this.byValue--;
  }

  private bytes(b: Uint8Array): void {
    // Run-length: value*count, so a 4 KiB page holding one byte is a few characters.
    let s = `B${b.length}<`;
    const n = b.length;
    for (let i = 0; i < n;) {
      if (b[i] === 0 && n - i <= ZEROS.length && Buffer.compare(b.subarray(i), ZEROS.subarray(0, n - i)) === 0) {
        s += `0*${n - i},`;
        break;
      }
      let j = i + 1;
      while (j < n && b[j] === b[i]) j++;
      s += j - i === 1 ? `${b[i]},` : `${b[i]}*${j - i},`;
      i = j;
    }
    this.out += `${s}>`;
  }

  private intervals(m: IntervalMap<unknown>, d: Sub | undefined): void {
    this.out += 'I[';
    let lo = 0;
    let hi = -1;
    let value: unknown;
    const flush = (): void => {
      if (hi < 0) return;
      this.out += `${lo}-${hi}:`;
      this.write(value, d?.values);
      this.out += ',';
    };
    for (const seg of m.segments()) {
      if (hi === seg.lo && value === seg.value) { hi = seg.hi; continue; }
      flush();
      lo = seg.lo;
      hi = seg.hi;
      value = seg.value;
    }
    flush();
    this.out += ']';
  }
}

/** The canonical string of the object graph reachable from `root`. */
export function encodeGraph(root: object, opts: EncodeOptions): string {
  const e = new Encoder(root, opts);
  e.write(root, undefined);
  e.finish();
  const { out, idPos, idNs, idRaw } = e;
  if (idPos.length === 0) return out;
  // Rename holder ids to their rank (order-preserving).
  const rank = new Map<string, number>();
  [...new Set(idRaw)].sort((a, b) => a - b).forEach((x, i) => rank.set(`u${x}`, i));
  let s = '';
  let at = 0;
  for (let i = 0; i < idPos.length; i++) {
    s += out.slice(at, idPos[i]) + idNs[i] + rank.get(`${idNs[i]}${idRaw[i]}`) + ',';
    at = idPos[i]!;
  }
  return s + out.slice(at);
}
