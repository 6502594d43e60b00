// Loading scenario files: YAML or JSON text -> a validated Scenario, or every problem found,
// each naming the file, line, step, op and field and what is allowed. Nothing runs here.
// Hostile input is bounded: only regular files up to a size cap are read, text must be UTF-8,
// nesting depth is limited, YAML aliases are shared (never expanded) and every message built from
// a value is bounded, and validation is linear in the number of steps.
import { isUtf8 } from 'node:buffer';
import { closeSync, constants, fstatSync, openSync, readdirSync, readSync, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { DEFAULT_PROFILE, profileNames } from '../model/profile.js';
import { parseExpect, type StepExpect } from './expect.js';
import { ALL_OPS, parseField, type FieldSpec, type HandleKind, type HandleRef, type OpSpec } from './ops.js';
import { show } from './values.js';

export interface Step {
  /** 1-based position in the file. */
  readonly index: number;
  readonly line?: number;
  readonly op: string;
  /** Parsed arguments (sizes and flags as bigint, handles as HandleRef, data as bytes). */
  readonly args: Readonly<Record<string, unknown>>;
  /** The fields as written, for display. */
  readonly written: Readonly<Record<string, unknown>>;
  readonly as?: string;
  readonly expect: StepExpect;
  /**
   * gmemkit extension: the model (by the documentation) and the running kernel are known to
   * disagree on this step, and why; `gmemkit diff`/`conform` report it as marked, not as differing.
   */
  readonly knownDifference?: string;
}

export interface Scenario {
  readonly file: string;
  readonly name: string;
  readonly description?: string;
  /** Profiles to run under (`profile:` may be a list); the first is the default. */
  readonly profiles: readonly string[];
  /** The host the model imitates: `full` (every VM type) or `probed` (kernel-probe.md). */
  readonly machine: 'full' | 'probed';
  /** Options of the userspace half (the checker's manager mutants): pin fence, waiting for I/O. */
  readonly manager: { readonly fence: boolean; readonly waitForIo: boolean };
  readonly steps: readonly Step[];
}

/** One problem of a scenario file; `message` is the whole sentence after the file, line and step. */
export interface LoadError {
  readonly file: string;
  readonly line?: number;
  readonly step?: number;
  readonly op?: string;
  /** The field the problem is in (`size`, `expect`, `as`, or a top-level field such as `steps`). */
  readonly field?: string;
  readonly message: string;
}

/** A scenario file (or path) that cannot be used; `errors` lists every problem found. */
export class ScenarioError extends Error {
  constructor(readonly errors: readonly LoadError[]) {
    super(errors.map(formatLoadError).join('\n'));
    this.name = 'ScenarioError';
  }
}

export function formatLoadError(e: LoadError): string {
  return `${e.file}${e.line ? `:${e.line}` : ''}: ${e.step ? `step ${e.step}: ` : ''}${e.message}`;
}

/** Files larger than this are refused before they are read (the 100k-step benchmark file is under 8 MiB). */
export const MAX_FILE_BYTES = 64 * 1024 * 1024;
/** Deepest nesting of YAML collections accepted (a scenario needs about 5). */
export const MAX_DEPTH = 64;
/** Problems reported per file; the rest are counted. */
const MAX_ERRORS = 200;

const TOP_FIELDS = ['name', 'description', 'profile', 'machine', 'manager', 'steps'];
const STEP_KEYWORDS = ['as', 'expect', 'known_difference'];
const SCENARIO_FILE = /\.(ya?ml|json)$/;

const ERRNO_TEXT: Readonly<Record<string, string>> = {
  ENOENT: 'no such file or directory', EACCES: 'permission denied', EPERM: 'operation not permitted',
  ENOTDIR: 'a path component is not a directory', ELOOP: 'too many levels of symbolic links',
  ENAMETOOLONG: 'file name too long', EISDIR: 'is a directory', EIO: 'I/O error', EMFILE: 'too many open files',
};
const describeErrno = (e: unknown): string => {
  const code = (e as NodeJS.ErrnoException).code;
  return code ? `${ERRNO_TEXT[code] ?? 'error'} (${code})` : String(e);
};
const fileKind = (st: Stats): string =>
  st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() ? 'a character device' : st.isBlockDevice() ? 'a block device'
    : st.isSocket() ? 'a socket' : st.isDirectory() ? 'a directory' : 'not a regular file';

/**
 * Expand directories (their *.yaml, *.yml, *.json files, sorted, subdirectories too) into a file
 * list. A directory that cannot be read, or holds no scenario file at all, is a ScenarioError.
 */
export function expandPaths(paths: readonly string[]): string[] {
  const out: string[] = [];
  const errors: LoadError[] = [];
  for (const p of paths) {
    let st: Stats | undefined;
    try { st = statSync(p, { throwIfNoEntry: false }); } catch (e) {
      errors.push({ file: p, message: `cannot read: ${describeErrno(e)}` });
      continue;
    }
    if (!st?.isDirectory()) { out.push(p); continue; }
    const before = out.length;
    walkDirectory(p, out, errors);
    if (out.length === before && !errors.some((e) => e.file.startsWith(p))) {
      errors.push({ file: p, message: 'no scenario files (*.yaml, *.yml, *.json) in this directory or below' });
    }
  }
  if (errors.length) throw new ScenarioError(errors);
  return out;
}

function walkDirectory(dir: string, out: string[], errors: LoadError[]): void {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } catch (e) {
    errors.push({ file: dir, message: `cannot read the directory: ${describeErrno(e)}` });
    return;
  }
  for (const e of entries) if (e.isFile() && SCENARIO_FILE.test(e.name)) out.push(join(dir, e.name));
  for (const e of entries) if (e.isDirectory()) walkDirectory(join(dir, e.name), out, errors);
}

/** The bytes of a scenario file: a regular file, opened without blocking, at most MAX_FILE_BYTES. */
function readScenarioBytes(file: string): Buffer {
  const refuse = (message: string): never => { throw new ScenarioError([{ file, message }]); };
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    return refuse(`cannot read: ${describeErrno(e)}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return refuse(`cannot read: ${fileKind(st)}; a scenario is a regular .yaml, .yml or .json file`);
    if (st.size > MAX_FILE_BYTES) return refuse(`the file is ${st.size} bytes; a scenario file may have at most ${MAX_FILE_BYTES} bytes (${MAX_FILE_BYTES >> 20} MiB)`);
    const buf = Buffer.alloc(st.size);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
    }
    return buf.subarray(0, got);
  } catch (e) {
    if (e instanceof ScenarioError) throw e;
    return refuse(`cannot read: ${describeErrno(e)}`);
  } finally {
    closeSync(fd);
  }
}

/** Line (1-based) of byte `offset` of `buf`. */
const lineOfByte = (buf: Buffer, offset: number): number => {
  let line = 1;
  for (let i = buf.indexOf(10); i !== -1 && i < offset; i = buf.indexOf(10, i + 1)) line++;
  return line;
};

/** Decode UTF-8 text, refusing binary data and invalid sequences with the line they are on. */
function decodeText(buf: Buffer, file: string): string {
  const nul = buf.indexOf(0);
  if (nul !== -1) throw new ScenarioError([{ file, line: lineOfByte(buf, nul), message: 'binary data (a NUL byte); a scenario is a YAML or JSON text file' }]);
  if (!isUtf8(buf)) {
    let start = 0;
    let line = 1;
    for (;;) {
      const end = buf.indexOf(10, start);
      if (!isUtf8(buf.subarray(start, end === -1 ? buf.length : end)) || end === -1) break;
      start = end + 1;
      line++;
    }
    throw new ScenarioError([{ file, line, message: 'not UTF-8 text (an invalid byte sequence); a scenario is a YAML or JSON text file in UTF-8' }]);
  }
  return buf.toString('utf8');
}

export function loadScenarioFile(file: string): Scenario {
  return parseScenario(decodeText(readScenarioBytes(file), file), file);
}

/**
 * YAML 1.2 core schema with integers as exact bigints (so 99999999999999999999999 is that
 * number, refused by the type check, never a rounded float); floats, .nan and .inf stay numbers.
 */
const BIGINT = new yaml.Type('tag:yaml.org,2002:int', {
  kind: 'scalar',
  resolve: (s: string | null) => s !== null && /^(?:[-+]?[0-9]+|0x[0-9a-fA-F]+|0o[0-7]+)$/.test(s),
  construct: (s: string) => (s.startsWith('0o') ? BigInt(`0o${s.slice(2)}`) : s.startsWith('-') ? -BigInt(s.slice(1)) : BigInt(s.replace(/^\+/, ''))),
  predicate: (x: unknown) => typeof x === 'bigint',
  represent: (x: object) => String(x),
});
const SCHEMA = yaml.CORE_SCHEMA.extend({ implicit: [BIGINT] });

/** Line starts of `text`, for offset -> line by binary search. */
function lineTable(text: string): (offset: number) => number {
  const starts = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return (offset) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= offset) lo = mid; else hi = mid - 1;
    }
    return lo + 1;
  };
}

/** First offset at or after `pos` that is not blank, a line break or a comment. */
function skipBlank(text: string, pos: number): number {
  for (;;) {
    const c = text.charCodeAt(pos);
    if (c === 32 || c === 9 || c === 10 || c === 13) pos++;
    else if (c === 35) { const nl = text.indexOf('\n', pos); if (nl === -1) return text.length; pos = nl; } else return pos;
  }
}

interface ParsedYaml {
  readonly raw: Record<string, unknown>;
  /** Line of item i of a top-level list (the steps), when known. */
  readonly itemLine: (list: unknown, i: number) => number | undefined;
  /** Line of a top-level key. */
  readonly keyLine: (key: string) => number | undefined;
}

/**
 * The YAML (or JSON) text as plain values, with the lines of the steps. Nesting deeper than
 * MAX_DEPTH is refused by the parser; aliases are shared, not copied, so an alias bomb costs
 * nothing, and every message built from a value is bounded (`show`).
 */
function parseYaml(text: string, file: string): ParsedYaml {
  const lineOf = lineTable(text);
  // js-yaml reports 'open' and 'close' for every node it composes: note where each node starts,
  // and keep the starts of the top-level keys and values (depth 2) and of the items of each
  // top-level list (depth 3), i.e. of the steps.
  const opens: number[] = [];
  const rootChildren: [number, unknown][] = [];
  let items: number[] = [];
  const itemStarts = new Map<unknown, number[]>();
  let raw: unknown;
  try {
    raw = yaml.load(text, {
      schema: SCHEMA, filename: file, maxDepth: MAX_DEPTH,
      listener(event, state) {
        const depth = (state as unknown as { depth: number }).depth;
        if (event === 'open') {
          opens.push(state.position);
          if (depth === 2) items = [];
          return;
        }
        const start = opens.pop()!;
        if (depth === 3) items.push(start);
        else if (depth === 2) {
          rootChildren.push([start, state.result]);
          if (Array.isArray(state.result)) itemStarts.set(state.result, items);
        }
      },
    } as yaml.LoadOptions);
  } catch (e) {
    if (!(e instanceof yaml.YAMLException)) throw e;
    const reason = /maxDepth/.test(e.reason) ? `nested more than ${MAX_DEPTH} levels deep; scenario values nest only a few levels` : e.reason;
    // "expected a single document" has no mark: name the line of the second document.
    const second = e.mark ? undefined : [...text.matchAll(/^(?:---|\.\.\.)(?:[ \t]|$)/gm)].find((m) => text.slice(0, m.index).trim() !== '');
    const line = e.mark ? e.mark.line + 1 : second ? lineOf(second.index) : undefined;
    throw new ScenarioError([{ file, ...(line ? { line } : {}), message: `not valid YAML/JSON: ${reason}` }]);
  }
  if (raw === undefined || raw === null) {
    throw new ScenarioError([{ file, message: 'the file is empty; a scenario is a mapping with name: and steps:' }]);
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    const what = Array.isArray(raw) ? 'a list' : `a single value (${show(raw)})`;
    throw new ScenarioError([{ file, line: lineOf(skipBlank(text, 0)), message: `the top level is ${what}; a scenario is a mapping with name: and steps:` }]);
  }
  return {
    raw: raw as Record<string, unknown>,
    itemLine: (list, i) => {
      const starts = itemStarts.get(list);
      return starts && starts.length === (list as unknown[]).length ? lineOf(skipBlank(text, starts[i]!)) : undefined;
    },
    keyLine: (key) => {
      // Keys and values alternate; prefer a match in a key position.
      const at = rootChildren.findIndex(([, v], i) => i % 2 === 0 && v === key);
      const found = rootChildren[at === -1 ? rootChildren.findIndex(([, v]) => v === key) : at];
      return found ? lineOf(skipBlank(text, found[0])) : undefined;
    },
  };
}

/** Parse and validate scenario text; throws ScenarioError listing every problem. */
export function parseScenario(text: string, file = '<scenario>'): Scenario {
  const { raw: top, itemLine, keyLine } = parseYaml(text, file);
  const errors: LoadError[] = [];
  const topError = (field: string, message: string) => {
    const line = keyLine(field);
    errors.push({ file, ...(line ? { line } : {}), field, message: `${field}: ${message}` });
  };
  for (const k of Object.keys(top)) {
    if (!TOP_FIELDS.includes(k)) {
      const line = keyLine(k);
      errors.push({ file, ...(line ? { line } : {}), field: k, message: `unknown top-level field '${k}'; allowed: ${TOP_FIELDS.join(', ')}` });
    }
  }
  const name = top.name;
  if (typeof name !== 'string' || name === '') {
    if (name === undefined) errors.push({ file, field: 'name', message: 'name: required, a non-empty string' });
    else topError('name', name === '' ? 'must not be empty' : `expected a non-empty string, got ${show(name)}`);
  }
  if (top.description !== undefined && typeof top.description !== 'string') topError('description', `expected a string, got ${show(top.description)}`);
  let profiles: string[] = [DEFAULT_PROFILE.name];
  if (top.profile !== undefined) {
    const list = [top.profile].flat();
    if (list.length === 0 || !list.every((p): p is string => typeof p === 'string')) {
      topError('profile', `expected a profile name or a list of them, got ${show(top.profile)}`);
    } else {
      profiles = list;
      for (const p of list) if (!profileNames().includes(p)) topError('profile', `unknown profile ${show(p)}; allowed: ${profileNames().join(', ')}`);
    }
  }
  if (top.machine !== undefined && top.machine !== 'full' && top.machine !== 'probed') topError('machine', `expected 'full' or 'probed', got ${show(top.machine)}`);
  const manager = parseManager(top.manager, (m) => topError('manager', m));
  const rawSteps = top.steps;
  const steps: Step[] = [];
  if (!Array.isArray(rawSteps) || rawSteps.length === 0) {
    if (rawSteps === undefined) errors.push({ file, field: 'steps', message: 'steps: required, a list of steps (mappings with op:)' });
    else topError('steps', Array.isArray(rawSteps) ? 'must hold at least one step' : `expected a list of steps (mappings with op:), got ${show(rawSteps)}`);
  } else {
    const handles = new Map<string, { kind: HandleKind; step: number }>();
    let dropped = 0;
    const problems: Problem[] = [];
    for (let i = 0; i < rawSteps.length; i++) {
      const index = i + 1;
      const line = itemLine(rawSteps, i);
      problems.length = 0;
      const step = validateStep(rawSteps[i], handles, problems, index);
      for (const p of problems) {
        if (errors.length < MAX_ERRORS) errors.push({ file, ...(line ? { line } : {}), step: index, ...p });
        else dropped++;
      }
      if (step) steps.push(line ? { index, line, ...step } : { index, ...step });
    }
    if (dropped) errors.push({ file, message: `... and ${dropped} more problem(s) in later steps` });
  }
  if (errors.length) throw new ScenarioError(errors);
  return {
    file, name: name as string, profiles, machine: (top.machine as 'full' | 'probed' | undefined) ?? 'full', steps, manager,
    ...(typeof top.description === 'string' && top.description ? { description: top.description } : {}),
  };
}

function parseManager(v: unknown, report: (m: string) => void): Scenario['manager'] {
  const out = { fence: true, waitForIo: true };
  if (v === undefined) return out;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    report(`expected a mapping with fence and/or wait_for_io (true or false), got ${show(v)}`);
    return out;
  }
  for (const [k, x] of Object.entries(v)) {
    if (k !== 'fence' && k !== 'wait_for_io') report(`unknown field '${k}'; allowed: fence, wait_for_io`);
    else if (typeof x !== 'boolean') report(`${k}: expected true or false, got ${show(x)}`);
    else if (k === 'fence') out.fence = x;
    else out.waitForIo = x;
  }
  return out;
}

type StepBody = Omit<Step, 'index' | 'line'>;

/** Each op's field list, computed once (validation is per step, the table is per process). */
const FIELD_LISTS = new Map<OpSpec, [string, FieldSpec][]>();
const fieldsOf = (spec: OpSpec): [string, FieldSpec][] => {
  let list = FIELD_LISTS.get(spec);
  if (!list) FIELD_LISTS.set(spec, (list = Object.entries(spec.fields)));
  return list;
};
type Problem = { op?: string; field?: string; message: string };

/** Names of the first few handles, for "defined so far" (bounded so a long file stays linear). */
function someHandles(handles: Map<string, unknown>): string {
  const names: string[] = [];
  for (const k of handles.keys()) {
    if (names.length === 12) return `${names.join(', ')} and ${handles.size - 12} more`;
    names.push(k);
  }
  return names.join(', ');
}

function validateStep(
  rawStep: unknown, handles: Map<string, { kind: HandleKind; step: number }>, problems: Problem[], index: number,
): StepBody | undefined {
  if (typeof rawStep !== 'object' || rawStep === null || Array.isArray(rawStep)) {
    problems.push({ message: `a step is a mapping with op: and its fields, got ${show(rawStep)}` });
    return undefined;
  }
  const o = rawStep as Record<string, unknown>;
  const { op, as, expect, known_difference: knownDifference } = o;
  const fields: Record<string, unknown> = {};
  for (const k in o) if (k !== 'op' && k !== 'as' && k !== 'expect' && k !== 'known_difference') fields[k] = o[k];
  if (knownDifference !== undefined && (typeof knownDifference !== 'string' || knownDifference.trim() === '')) {
    problems.push({ field: 'known_difference', message: `known_difference: expected the reason as a non-empty string, got ${show(knownDifference)}` });
  }
  if (typeof op !== 'string') {
    problems.push({ field: 'op', message: op === undefined ? "missing field 'op'" : `op: expected an op name, got ${show(op)}` });
    return undefined;
  }
  const spec: OpSpec | undefined = Object.hasOwn(ALL_OPS, op) ? ALL_OPS[op] : undefined;
  if (!spec) {
    problems.push({ field: 'op', message: `unknown op ${show(op)}; allowed: ${Object.keys(ALL_OPS).join(', ')}` });
    return undefined;
  }
  const where = `(${op}) `;
  const bad = (field: string | undefined, message: string) => problems.push({ op, ...(field ? { field } : {}), message: `${where}${message}` });
  for (const f in fields) {
    if (!Object.hasOwn(spec.fields, f)) bad(f, `unknown field '${f}'; allowed: ${[...Object.keys(spec.fields), ...STEP_KEYWORDS].join(', ')}`);
  }
  if (spec.oneOf) {
    const present = spec.oneOf.filter((f) => fields[f] !== undefined);
    if (present.length !== 1) bad(spec.oneOf.join('/'), `exactly one of ${spec.oneOf.map((f) => `'${f}'`).join(' or ')} is required`);
  }
  const args: Record<string, unknown> = {};
  for (const [name, f] of fieldsOf(spec)) {
    const given = fields[name];
    if (given === undefined && f.required) { bad(name, `missing field '${name}'`); continue; }
    const v = given === undefined ? f.default : given;
    if (v === undefined) continue;
    const r = parseField(f.kind, v);
    if (!r.ok) { bad(name, `field '${name}': ${r.message}`); continue; }
    args[name] = r.value;
    if (f.kind.type !== 'handle') continue;
    const ref = r.value as HandleRef;
    if (!('handle' in ref)) continue;
    const h = handles.get(ref.handle);
    if (!h) {
      bad(name, `field '${name}': handle '${ref.handle}' is not defined${handles.size ? ` (defined so far: ${someHandles(handles)})` : ' (no handle is defined yet)'}`);
    } else if (!f.kind.kinds.includes(h.kind)) {
      bad(name, `field '${name}': handle '${ref.handle}' is a ${h.kind} handle (step ${h.step}); expected a ${f.kind.kinds.join('/')} handle`);
    }
  }
  if (as !== undefined) {
    if (typeof as !== 'string' || !/^[A-Za-z_][\w-]*$/.test(as)) bad('as', `as: expected a handle name (letters, digits, _ or -), got ${show(as)}`);
    else if (!spec.produces) bad('as', 'as: this op returns no handle');
    else if (handles.has(as)) bad('as', `as: handle '${as}' is already defined at step ${handles.get(as)!.step}`);
    else handles.set(as, { kind: spec.produces, step: index });
  }
  const e = parseExpect(expect);
  if (!e.ok) bad('expect', `expect: ${e.message}`);
  if (problems.length || !e.ok) return undefined;
  const body: { -readonly [K in keyof StepBody]: StepBody[K] } = { op, args, written: fields, expect: e.value };
  if (typeof as === 'string') body.as = as;
  if (typeof knownDifference === 'string') body.knownDifference = knownDifference;
  return body;
}
