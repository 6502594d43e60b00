// The canonical encoding of a full-model world, derived from its whole object graph: every
// field reachable from the World (kernel state, ModelBackend, Userspace with its manager,
// registry, memory map and holders, the ghost state), not a hand-picked list. Two worlds get
// the same string iff they are the same up to the abstractions below, each of which is
// harmless for the reason given next to it (test/checker-canon.test.ts checks the result:
// equal encodings, equal behaviour of every enabled action).
//
// How the graph is written (as a byte string of tokens, each a tag byte and a self-delimiting
// operand, so it parses one way only; the World hands it on as a latin1 string):
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

const K: Desc = { id: 'k' };
const U: Desc = { id: 'u' };
const R: Desc = { id: 'r' };
/** Written as it is (a number that only looks like an id). */
const RAW: Desc = {};
const skip = (why: string): Desc => ({ skip: why });
const FRESH = 'a source of fresh ids: above every id in use, never read otherwise';

/**
 * A Desc in one object layout with a numeric kind: the encoder reads one on every field, and
 * reads of one layout stay fast where `'id' in d` over the several Desc layouts does not.
 */
class Rule {
  constructor(
    readonly op: number,
    readonly ns: Namespace,
    readonly keys: Rule | undefined,
    readonly values: Rule | undefined,
    readonly filter: ((v: unknown) => boolean) | undefined,
  ) {}
}
const OP_SKIP = 1, OP_ID = 2, OP_BLOCKS = 3, OP_TABLE = 4, OP_SUB = 5;
const COMPILED = new Map<Desc, Rule>();

function compile(d: Desc | undefined): Rule | undefined {
  if (d === undefined) return undefined;
  let r = COMPILED.get(d);
  if (r !== undefined) return r;
  if ('skip' in d) r = new Rule(OP_SKIP, 'k', undefined, undefined, undefined);
  else if ('id' in d) r = new Rule(OP_ID, d.id, undefined, undefined, undefined);
  else if ('blocks' in d) r = new Rule(OP_BLOCKS, d.blocks, undefined, undefined, undefined);
  else if ('folioTable' in d) r = new Rule(OP_TABLE, 'k', undefined, undefined, undefined);
  else r = new Rule(OP_SUB, 'k', compile(d.keys), compile(d.values), d.filter);
  COMPILED.set(d, r);
  return r;
}
const RULE_K = compile(K)!;

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

/** How one field of a shape is written (decided once per shape from its rule). */
const AS_IS = 0;
const AS_IS_ID_LIKE = 1;
const SKIPPED = 2;
const FOLIO_TABLE = 3;
const BY_RULE = 4;

/** The rules of one object shape (constructor and field names), computed once per shape. */
interface Shape {
  /** The shape's number, written in place of its constructor and field names. */
  readonly n: number;
  readonly keys: readonly string[];
  /** Per key: how it is written (AS_IS… above) and its rule. */
  readonly how: Uint8Array;
  readonly rules: readonly (Rule | undefined)[];
  /**
   * Writes the fields of an object of this shape (but the root's) by the rules: compiled once per
   * shape so that each field read sees one object layout (a generic `o[key]` loop sees dozens).
   */
  readonly writeFields: (e: Encoder, o: Record<string, unknown>, rules: readonly (Rule | undefined)[]) => void;
}

/**
 * An object's shape: its constructor and its field names, in order (the rules are a function of
 * both). A shape is written as its number (assigned once per process, so equal shapes are
 * written alike) in place of its constructor and field names.
 */
function shapeOf(o: object, list: Shape[]): Shape {
  const keys = Object.keys(o);
  next: for (const sh of list) {
    const k = sh.keys;
    if (k.length !== keys.length) continue;
    for (let i = 0; i < k.length; i++) if (k[i] !== keys[i]) continue next;
    return sh;
  }
  const rules = keys.map((k) => compile(rule(o, k)));
  const how = Uint8Array.from(keys, (k, i) => {
    const r = rules[i];
    if (r === undefined) return ID_LIKE.test(k) ? AS_IS_ID_LIKE : AS_IS;
    if (r.op === OP_SKIP) return SKIPPED;
    if (r.op === OP_TABLE) return FOLIO_TABLE;
    return BY_RULE;
  });
  const body = keys.map((k, i) => {
    const field = `o[${JSON.stringify(k)}]`;
    switch (how[i]) {
      case SKIPPED: return '';
      case FOLIO_TABLE: return 'e.table(o);';
      case AS_IS_ID_LIKE: return `{ const x = ${field}; if (typeof x === 'number') e.idLike(o, ${JSON.stringify(k)}); e.write(x, undefined); }`;
      case AS_IS: return `e.write(${field}, undefined);`;
      default: return `e.write(${field}, rules[${i}]);`;
    }
  }).join('\n');
  const writeFields = new Function('e', 'o', 'rules', body) as Shape['writeFields'];
  const ctor = (Object.getPrototypeOf(o) as { constructor?: Function } | null)?.constructor ?? Object;
  const sh: Shape = { n: numberShape(ctor, keys), keys, how, rules, writeFields };
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

/** Strings by number, assigned once per process: the model's strings are a small vocabulary. */
const STRINGS = new Map<string, number>();
let numberString: (v: string) => number = () => STRINGS.size;

/**
 * Makes new strings take their numbers from `f` instead of this thread's count, for the same
 * reason as setShapeNumbering: a string's number is part of the encoding. Call it before the
 * first encoding.
 */
export function setStringNumbering(f: (v: string) => number): void {
  numberString = f;
}

type Kind = 'object' | 'bytes' | 'extents' | 'intervals' | 'tree' | 'map' | 'set' | 'array';

/** What is known of a prototype's instances, decided on its first instance. */
interface ProtoInfo {
  readonly proto: object | null;
  /** How its instances are written. */
  readonly kind: Kind;
  /** The shapes seen of its instances ('object' kind). */
  readonly shapes: Shape[];
  /** The constants map `mayBeConstant` was computed for, and whether a constant has this prototype. */
  constantsSeen: ReadonlyMap<object, string> | undefined;
  mayBeConstant: boolean;
}
const PROTOS = new Map<object | null, ProtoInfo>();

function protoInfo(o: object, proto: object | null): ProtoInfo {
  const info: ProtoInfo = { proto, kind: kindOf(o), shapes: [], constantsSeen: undefined, mayBeConstant: false };
  PROTOS.set(proto, info);
  return info;
}

/** Whether instances of `info` may be constants (only those are looked up by name). */
function mayBeConstant(info: ProtoInfo, constants: ReadonlyMap<object, string>): boolean {
  if (info.constantsSeen !== constants) {
    info.constantsSeen = constants;
    info.mayBeConstant = false;
    for (const c of constants.keys()) if (Object.getPrototypeOf(c) === info.proto) { info.mayBeConstant = true; break; }
  }
  return info.mayBeConstant;
}

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

// The encoding is a byte string of tokens, each a tag byte and a fixed or self-delimiting
// operand, so it parses one way only: equal byte strings are equal token sequences.
const UNDEF = 1, TRUE = 2, FALSE = 3, NULL = 4, FN = 5;
const UINT = 6, NEG = 7, FLOAT = 8, NAN = 9; // operand: varint, varint, 8 bytes, none
const BIG = 10, BIGTEXT = 11; // varint; varint length + decimal digits
const STR = 12, CONST = 13, REF = 14; // varint: string number, constant's name number, first-visit number
const SHAPE = 15, END = 16; // an object: its shape number, its fields (each self-delimiting, none skipped per shape), END
const TREE = 17, MAP = 18, SET = 19, ARRAY = 20, EXTENTS = 21, INTERVALS = 22, LIST = 23, FOLIOS = 24, CLOSE = 25, BAR = 26;
const BYTES = 27; // varint length, then runs (byte value, varint count) summing to the length
const ID_K = 28, ID_R = 29, ID_U = 30; // renamed ids: varint first-visit number; u: 4 bytes, the rank (patched)

/** The output buffer, reused by every encoding (encodings do not nest). */
let buf = Buffer.allocUnsafe(1 << 16);
const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);

/** One encoding run: the output, the first-visit numbers, and the id placeholders. */
class Encoder {
  pos = 0;
  private readonly seen = new Map<object, number>();
  /** First-visit numbers of the renamed ids (k and r share one count). */
  private readonly kIds = new Map<number, number>();
  private readonly rIds = new Map<number, number>();
  /** Positions and raw values of the holder ids (renamed to their rank at the end). */
  readonly uPos: number[] = [];
  readonly uRaw: number[] = [];
  /** Above 0 while writing an immutable value (an extent-map value): no sharing recorded. */
  private byValue = 0;
  /** Kernel states whose folio table is written at the end (after every reference to a folio). */
  private readonly tables: KernelState[] = [];

  constructor(private readonly root: object, private readonly opts: EncodeOptions) {}

  private byte(b: number): void {
    if (this.pos === buf.length) grow(this.pos + 1);
    buf[this.pos++] = b;
  }

  private uint(v: number): void {
    while (v >= 128) {
      this.byte((v % 128) | 128);
      v = Math.floor(v / 128);
    }
    this.byte(v);
  }

  private num(v: number): void {
    if (Number.isSafeInteger(v)) {
      if (v >= 0) { this.byte(UINT); this.uint(v); } else { this.byte(NEG); this.uint(-v); }
    } else if (Number.isNaN(v)) {
      this.byte(NAN);
    } else {
      this.byte(FLOAT);
      f64[0] = v;
      for (let i = 0; i < 8; i++) this.byte(f64Bytes[i]!);
    }
  }

  private str(v: string): void {
    let n = STRINGS.get(v);
    if (n === undefined) STRINGS.set(v, (n = numberString(v)));
    this.uint(n);
  }

  private id(ns: Namespace, v: number): void {
    if (ns === 'u') {
      this.byte(ID_U);
      if (this.pos + 4 > buf.length) grow(this.pos + 4);
      this.uPos.push(this.pos);
      this.uRaw.push(v);
      this.pos += 4;
      return;
    }
    const ids = ns === 'k' ? this.kIds : this.rIds;
    let n = ids.get(v);
    if (n === undefined) ids.set(v, (n = this.kIds.size + this.rIds.size));
    this.byte(ns === 'k' ? ID_K : ID_R);
    this.uint(n);
  }

  write(v: unknown, d: Rule | undefined): void {
    if (d !== undefined) {
      const op = d.op;
      if (op === OP_SKIP) return;
      if (op === OP_ID && typeof v === 'number') return this.id(d.ns, v);
      if (op === OP_BLOCKS) return this.blocks(v as readonly FolioIds[], d.ns);
    }
    switch (typeof v) {
      case 'undefined': this.byte(UNDEF); return;
      case 'boolean': this.byte(v ? TRUE : FALSE); return;
      case 'number': this.num(v); return;
      case 'bigint': {
        if (v >= 0n && v <= 0xffffffffn) { this.byte(BIG); this.uint(Number(v)); return; }
        const t = String(v);
        this.byte(BIGTEXT);
        this.uint(t.length);
        for (let i = 0; i < t.length; i++) this.byte(t.charCodeAt(i));
        return;
      }
      case 'string': this.byte(STR); this.str(v); return;
      case 'function': this.byte(FN); return;
      case 'symbol': throw new Error('canonical encoding: a symbol in the model state');
      case 'object': break;
    }
    if (v === null) { this.byte(NULL); return; }
    const o = v as object;
    const proto = Object.getPrototypeOf(o) as object | null;
    const info = PROTOS.get(proto) ?? protoInfo(o, proto);
    if (mayBeConstant(info, this.opts.constants)) {
      const c = this.opts.constants.get(o);
      if (c !== undefined) { this.byte(CONST); this.str(c); return; }
    }
    if (this.byValue === 0) {
      const ref = this.seen.get(o);
      if (ref !== undefined) { this.byte(REF); this.uint(ref); return; }
      this.seen.set(o, this.seen.size);
    }
    const sub = d !== undefined && d.op !== OP_ID ? d : undefined;
    switch (info.kind) {
      case 'object': return this.fields(o, info);
      case 'bytes': return this.bytes(o as Uint8Array);
      case 'extents': return this.extents(o as ExtentMap<unknown>, sub);
      case 'intervals': return this.intervals(o as IntervalMap<unknown>, sub);
      case 'tree': {
        const t = o as unknown as { forEachPair(f: (k: unknown, v: unknown) => void): void };
        this.byte(TREE);
        const keys = sub?.keys;
        const values = sub?.values;
        t.forEachPair((k, x) => { this.write(k, keys); this.write(x, values); });
        this.byte(CLOSE);
        return;
      }
      case 'map': {
        this.byte(MAP);
        for (const [k, x] of o as Map<unknown, unknown>) {
          if (sub?.filter && !sub.filter(x)) continue;
          this.write(k, sub?.keys);
          this.write(x, sub?.values);
        }
        this.byte(CLOSE);
        return;
      }
      case 'set': {
        this.byte(SET);
        for (const x of o as Set<unknown>) this.write(x, sub?.values);
        this.byte(CLOSE);
        return;
      }
      case 'array': {
        const a = o as unknown[];
        this.byte(ARRAY);
        for (let i = 0; i < a.length; i++) this.write(a[i], sub?.values);
        this.byte(CLOSE);
        return;
      }
    }
  }

  /** A plain object or class instance: its shape, then its fields by the shape's rules. */
  private fields(o: object, info: ProtoInfo): void {
    if (isProxy(o)) throw new Error('canonical encoding: a Proxy in the model state needs a rule');
    const sh = shapeOf(o, info.shapes);
    this.byte(SHAPE);
    this.uint(sh.n);
    const rec = o as Record<string, unknown>;
    const { keys, how, rules } = sh;
    if (o !== this.root) sh.writeFields(this, rec, rules);
    else {
      for (let i = 0; i < keys.length; i++) {
        const h = how[i];
        const key = keys[i]!;
        if (h === SKIPPED || this.opts.skipRoot?.[key] !== undefined) continue;
        const x = rec[key];
        if (h === FOLIO_TABLE) { this.table(rec); continue; }
        if (h === AS_IS_ID_LIKE && typeof x === 'number') this.idLike(o, key);
        this.write(x, rules[i]);
      }
    }
    this.byte(END);
  }

  /** A kernel state's folio table: written at the end (finish). */
  table(o: object): void {
    this.tables.push(o as KernelState);
  }

  idLike(o: object, key: string): never {
    throw new Error(`canonical encoding: field '${key}' of ${(o.constructor as { name: string }).name} looks like an id; classify it in canon.ts`);
  }

  /** A list of blocks of ids, written id by id (the block boundaries are representation). */
  private blocks(list: readonly FolioIds[], ns: Namespace): void {
    this.byte(LIST);
    for (const b of list) for (let j = 0; j < b.nr; j++) this.id(ns, b.id + j);
    this.byte(CLOSE);
  }

  /**
   * An extent map, written index by index with the value at each index (runs are
   * representation: where they split depends on history). Values are immutable, so they are
   * written by value; values of ID_CODEC maps are folio ids.
   */
  private extents(m: ExtentMap<unknown>, d: Rule | undefined): void {
    const codec = (m as unknown as { codec: unknown }).codec;
    if (codec === FOLIO_CODEC) throw new Error('canonical encoding: a folio table outside a kernel state needs a rule');
    const values = codec === ID_CODEC ? RULE_K : d?.values;
    this.byte(EXTENTS);
    this.byValue++;
    for (const seg of m.segments()) {
      for (let i = seg.lo; i < seg.hi; i++) {
        this.num(i);
        this.write(m.get(i), values);
      }
    }
    this.byValue--;
    this.byte(CLOSE);
  }

  /**
   * The deferred folio tables, once every reference to a folio has named it: named folios in
   * the order of their names, then the ones nothing refers to (a bug could leave some) as a
   * sorted multiset, each with its state and contents.
   */
  finish(): void {
    for (const ks of this.tables) {
      const named: number[] = []; // by name: the folio id (names are distinct small numbers)
      const unnamed: number[] = [];
      for (const seg of ks.folios.segments()) {
        for (let id = seg.lo; id < seg.hi; id++) {
          const n = this.kIds.get(id);
          if (n === undefined) unnamed.push(id);
          else named[n] = id;
        }
      }
      this.byte(FOLIOS);
      for (let n = 0; n < named.length; n++) {
        const id = named[n];
        if (id === undefined) continue;
        this.byte(ID_K);
        this.uint(n);
        this.folio(ks, id);
      }
      this.byte(BAR);
      const rest = unnamed.map((id) => {
        const at = this.pos;
        this.folio(ks, id);
        const one = Buffer.from(buf.subarray(at, this.pos));
        this.pos = at;
        return one;
      }).sort(Buffer.compare);
      for (const one of rest) {
        if (this.pos + one.length > buf.length) grow(this.pos + one.length);
        buf.set(one, this.pos);
        this.pos += one.length;
      }
      this.byte(CLOSE);
    }
  }

  private folio(ks: KernelState, id: number): void {
    this.byValue++;
    this.write(ks.folios.get(id) as FolioRun, undefined);
    this.write(ks.folioData.get(id), undefined);
    this.byValue--;
  }

  private bytes(b: Uint8Array): void {
    // Run-length: (value, count) pairs, so a 4 KiB page holding one byte is a few bytes.
    const n = b.length;
    this.byte(BYTES);
    this.uint(n);
    for (let i = 0; i < n;) {
      if (b[i] === 0 && n - i <= ZEROS.length && Buffer.compare(b.subarray(i), ZEROS.subarray(0, n - i)) === 0) {
        this.byte(0);
        this.uint(n - i);
        break;
      }
      let j = i + 1;
      while (j < n && b[j] === b[i]) j++;
      this.byte(b[i]!);
      this.uint(j - i);
      i = j;
    }
  }

  private intervals(m: IntervalMap<unknown>, d: Rule | undefined): void {
    this.byte(INTERVALS);
    let lo = 0;
    let hi = -1;
    let value: unknown;
    const values = d?.values;
    for (const seg of m.segments()) {
      if (hi === seg.lo && value === seg.value) { hi = seg.hi; continue; }
      if (hi >= 0) { this.num(lo); this.num(hi); this.write(value, values); }
      lo = seg.lo;
      hi = seg.hi;
      value = seg.value;
    }
    if (hi >= 0) { this.num(lo); this.num(hi); this.write(value, values); }
    this.byte(CLOSE);
  }
}

function grow(atLeast: number): void {
  const next = Buffer.allocUnsafe(Math.max(atLeast, 2 * buf.length));
  buf.copy(next);
  buf = next;
}

/** The canonical byte string (as a latin1 string) of the object graph reachable from `root`. */
export function encodeGraph(root: object, opts: EncodeOptions): string {
  const e = new Encoder(root, opts);
  e.write(root, undefined);
  e.finish();
  const { uPos, uRaw } = e;
  if (uPos.length > 0) {
    // Rename holder ids to their rank (order-preserving).
    const sorted = [...new Set(uRaw)].sort((a, b) => a - b);
    for (let i = 0; i < uPos.length; i++) buf.writeUInt32BE(sorted.indexOf(uRaw[i]!), uPos[i]!);
  }
  return buf.toString("latin1", 0, e.pos);
}
