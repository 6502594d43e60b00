// Loading scenario files: YAML or JSON text -> a validated Scenario, or every problem found,
// each naming the file, line, step, op and field and what is allowed. Nothing runs here.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isMap, isSeq, LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { DEFAULT_PROFILE, profileNames } from '../model/profile.js';
import { parseExpect, type StepExpect } from './expect.js';
import { ALL_OPS, opSchema, type HandleKind, type HandleRef, type OpSpec } from './ops.js';
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

export interface LoadError { readonly file: string; readonly line?: number; readonly step?: number; readonly message: string }

export class ScenarioError extends Error {
  constructor(readonly errors: readonly LoadError[]) {
    super(errors.map(formatLoadError).join('\n'));
  }
}

export function formatLoadError(e: LoadError): string {
  return `${e.file}${e.line ? `:${e.line}` : ''}: ${e.step ? `step ${e.step}: ` : ''}${e.message}`;
}

const FileSchema = z.strictObject({
  name: z.string({ error: 'name: required, a non-empty string' }).min(1, { error: 'name: must not be empty' }),
  description: z.string({ error: 'description: expected a string' }).optional(),
  profile: z.union([z.string(), z.array(z.string()).min(1)], { error: 'profile: expected a profile name or a list of them' }).optional(),
  machine: z.enum(['full', 'probed'], { error: "machine: expected 'full' or 'probed'" }).optional(),
  manager: z.strictObject({
    fence: z.boolean({ error: 'manager.fence: expected true or false' }).optional(),
    wait_for_io: z.boolean({ error: 'manager.wait_for_io: expected true or false' }).optional(),
  }, { error: 'manager: expected a mapping with fence and/or wait_for_io (true or false)' }).optional(),
  steps: z.array(z.record(z.string(), z.unknown()), { error: 'steps: required, a list of steps (mappings with op:)' }).min(1, { error: 'steps: must hold at least one step' }),
});

/** Expand directories (their *.yaml, *.yml, *.json files, sorted, subdirectories too) into a file list. */
export function expandPaths(paths: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    if (statSync(p, { throwIfNoEntry: false })?.isDirectory()) {
      const entries = readdirSync(p, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name));
      out.push(...entries.filter((e) => e.isFile() && /\.(ya?ml|json)$/.test(e.name)).map((e) => join(p, e.name)));
      out.push(...expandPaths(entries.filter((e) => e.isDirectory()).map((e) => join(p, e.name))));
    } else {
      out.push(p);
    }
  }
  return out;
}

export function loadScenarioFile(file: string): Scenario {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ScenarioError([{ file, message: `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}` }]);
  }
  return parseScenario(text, file);
}

/** Parse and validate scenario text; throws ScenarioError listing every problem. */
export function parseScenario(text: string, file = '<scenario>'): Scenario {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, intAsBigInt: true, uniqueKeys: true });
  if (doc.errors.length) {
    throw new ScenarioError(doc.errors.map((e) => ({ file, line: e.linePos?.[0]?.line, message: `not valid YAML/JSON: ${e.message.split('\n')[0]}` })));
  }
  const raw = doc.toJS({ mapAsMap: false }) as unknown;
  const top = FileSchema.safeParse(raw);
  if (!top.success) {
    const isObj = typeof raw === 'object' && raw !== null;
    throw new ScenarioError(top.error.issues.map((i) => ({
      file,
      message: !isObj ? 'a scenario is a mapping with name: and steps:'
        : i.code === 'unrecognized_keys' ? `unknown ${i.path.length ? `${i.path.join('.')} ` : 'top-level '}field(s) ${i.keys.join(', ')}; allowed: ${i.path.length ? 'fence, wait_for_io' : 'name, description, profile, machine, manager, steps'}`
        : i.message,
    })));
  }
  const errors: LoadError[] = [];
  const profiles = top.data.profile === undefined ? [DEFAULT_PROFILE.name] : [top.data.profile].flat();
  for (const p of profiles) {
    if (!profileNames().includes(p)) errors.push({ file, message: `profile: unknown profile ${show(p)}; allowed: ${profileNames().join(', ')}` });
  }
  const stepNodes = doc.get('steps', true);
  const lineOf = (i: number): number | undefined => {
    if (!isSeq(stepNodes)) return undefined;
    const node = stepNodes.items[i];
    const offset = isMap(node) || node ? (node as { range?: [number, number, number] }).range?.[0] : undefined;
    return offset === undefined ? undefined : lines.linePos(offset).line;
  };
  const handles = new Map<string, { kind: HandleKind; step: number }>();
  const steps: Step[] = [];
  top.data.steps.forEach((rawStep, i) => {
    const index = i + 1;
    const line = lineOf(i);
    const problems: string[] = [];
    const step = validateStep(rawStep, handles, problems, index);
    for (const message of problems) errors.push({ file, line, step: index, message });
    if (step) steps.push({ ...step, index, ...(line ? { line } : {}) });
  });
  if (errors.length) throw new ScenarioError(errors);
  return {
    file, name: top.data.name, profiles, machine: top.data.machine ?? 'full', steps,
    manager: { fence: top.data.manager?.fence ?? true, waitForIo: top.data.manager?.wait_for_io ?? true },
    ...(top.data.description ? { description: top.data.description } : {}),
  };
}

type StepBody = Omit<Step, 'index' | 'line'>;

function validateStep(
  rawStep: Record<string, unknown>, handles: Map<string, { kind: HandleKind; step: number }>, problems: string[], index: number,
): StepBody | undefined {
  const { op, as, expect, known_difference: knownDifference, ...fields } = rawStep;
  if (knownDifference !== undefined && (typeof knownDifference !== 'string' || knownDifference.trim() === '')) {
    problems.push(`known_difference: expected the reason as a non-empty string, got ${show(knownDifference)}`);
  }
  if (typeof op !== 'string') {
    problems.push(op === undefined ? "missing field 'op'" : `op: expected an op name, got ${show(op)}`);
    return undefined;
  }
  const spec: OpSpec | undefined = ALL_OPS[op];
  const where = `(${op}) `;
  if (!spec) {
    problems.push(`unknown op ${show(op)}; allowed: ${Object.keys(ALL_OPS).join(', ')}`);
    return undefined;
  }
  const allowed = Object.keys(spec.fields);
  for (const f of Object.keys(fields)) {
    if (!allowed.includes(f)) problems.push(`${where}unknown field '${f}'; allowed: ${[...allowed, 'as', 'expect', 'known_difference'].join(', ')}`);
  }
  for (const [name, f] of Object.entries(spec.fields)) {
    if (f.required && fields[name] === undefined) problems.push(`${where}missing field '${name}'`);
  }
  if (spec.oneOf) {
    const present = spec.oneOf.filter((f) => fields[f] !== undefined);
    if (present.length !== 1) problems.push(`${where}exactly one of ${spec.oneOf.map((f) => `'${f}'`).join(' or ')} is required`);
  }
  const withDefaults: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(spec.fields)) {
    const v = fields[name] ?? f.default;
    if (v !== undefined && allowed.includes(name)) withDefaults[name] = v;
  }
  const parsed = opSchema(spec).safeParse(withDefaults);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(`${where}field '${issue.path.join('.')}': ${issue.message}`);
  }
  const args = parsed.success ? parsed.data : {};
  for (const [name, f] of Object.entries(spec.fields)) {
    const ref = args[name] as HandleRef | undefined;
    if (f.kind.type !== 'handle' || !ref || !('handle' in ref)) continue;
    const h = handles.get(ref.handle);
    if (!h) {
      const known = [...handles.keys()];
      problems.push(`${where}field '${name}': handle '${ref.handle}' is not defined${known.length ? ` (defined so far: ${known.join(', ')})` : ' (no handle is defined yet)'}`);
    } else if (!f.kind.kinds.includes(h.kind)) {
      problems.push(`${where}field '${name}': handle '${ref.handle}' is a ${h.kind} handle (step ${h.step}); expected a ${f.kind.kinds.join('/')} handle`);
    }
  }
  if (as !== undefined) {
    if (typeof as !== 'string' || !/^[A-Za-z_][\w-]*$/.test(as)) problems.push(`${where}as: expected a handle name (letters, digits, _ or -), got ${show(as)}`);
    else if (!spec.produces) problems.push(`${where}as: this op returns no handle`);
    else if (handles.has(as)) problems.push(`${where}as: handle '${as}' is already defined at step ${handles.get(as)!.step}`);
    else handles.set(as, { kind: spec.produces, step: index });
  }
  const e = parseExpect(expect);
  if (!e.ok) problems.push(`${where}expect: ${e.message}`);
  if (problems.length) return undefined;
  return {
    op, args, written: fields, expect: e.ok ? e.value : { base: { kind: 'ok' }, violations: [] },
    ...(typeof as === 'string' ? { as } : {}),
    ...(typeof knownDifference === 'string' ? { knownDifference } : {}),
  };
}

