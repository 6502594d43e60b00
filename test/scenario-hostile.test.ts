// Hostile and broken scenario input: every case is a message naming the file (and line where
// there is one) with exit 2 — never a stack trace, never a hang (scenario-language.md §1.2: a
// bad file is a scenario error reported before anything runs). Run through the CLI in a child
// process where the exit code matters; a hang would trip the child's timeout.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ScenarioError as ExportedScenarioError } from '../src/index.js';
import { MAX_DEPTH, MAX_FILE_BYTES, parseScenario, ScenarioError } from '../src/scenario/load.js';

const SOURCE = 'scenario-language.md §1.2 (scenario errors before anything runs) and §4.1 (numbers)';
const dir = mkdtempSync(join(tmpdir(), 'gmemkit-hostile-'));
after(() => {
  chmodSync(dir, 0o755);
  for (const sub of ['locked']) try { chmodSync(join(dir, sub), 0o755); } catch { /* not created */ }
  rmSync(dir, { recursive: true, force: true });
});

const write = (name: string, content: string | Buffer): string => {
  const f = join(dir, name);
  writeFileSync(f, content);
  return f;
};

function cli(args: string[], opts: { uid?: number } = {}) {
  const r = spawnSync(process.execPath, ['bin/gmemkit.js', ...args], { encoding: 'utf8', timeout: 30_000, ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.uid } : {}) });
  assert.equal(r.error, undefined, `the CLI did not finish: ${String(r.error)}`);
  return r;
}

/** `gmemkit run` of `target`: exit 2, no stack trace, and the message. */
function refused(target: string, want: RegExp, opts: { uid?: number } = {}): void {
  const r = cli(['run', target], opts);
  assert.equal(r.status, 2, `exit ${r.status}\n${r.stdout}${r.stderr}`);
  assert.doesNotMatch(r.stderr, /\n\s+at |Error:/, `a stack trace:\n${r.stderr}`);
  assert.match(r.stderr, want);
}

const laughs = (): string => {
  const lines = ['name: laughs', 'lol: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  let prev = 'a';
  for (const c of 'bcdefghi') { lines.push(`${c}: &${c} [${Array(9).fill(`*${prev}`).join(',')}]`); prev = c; }
  lines.push('steps:', '  - *i', '  - { op: create_vm, expect: *i }', '  - { op: create_vm, type: *i }');
  return `${lines.join('\n')}\n`;
};

const CASES: { name: string; file: () => string; want: RegExp }[] = [
  { name: 'an alias bomb (billion laughs)', file: () => write('laughs.yaml', laughs()), want: /laughs\.yaml:\d+: step 1: a step is a mapping with op: and its fields, got \[\[\[.*\.\.\.$/m },
  { name: '3000-deep flow nesting', file: () => write('deep-flow.yaml', `name: x\nsteps: ${'['.repeat(3000)}${']'.repeat(3000)}\n`), want: new RegExp(`deep-flow\\.yaml:2: not valid YAML/JSON: nested more than ${MAX_DEPTH} levels deep`) },
  { name: '3000-deep block nesting', file: () => write('deep-block.yaml', `name: x\nsteps:\n${Array.from({ length: 3000 }, (_, i) => `${' '.repeat(i)}- `).join('\n')}x\n`), want: /deep-block\.yaml:\d+: not valid YAML\/JSON: nested more than 64 levels deep/ },
  { name: '3000-deep JSON', file: () => write('deep.json', `{"name":"x","steps":[{"op":"create_vm","expect":${'{"a":'.repeat(3000)}1${'}'.repeat(3000)}}]}`), want: /deep\.json:1: not valid YAML\/JSON: nested more than 64 levels deep/ },
  { name: 'binary garbage', file: () => write('garbage.yaml', Buffer.from([0x6e, 0x61, 0x0a, 0x00, 0xff, 0xfe, 0x13, 0x37])), want: /garbage\.yaml:2: binary data \(a NUL byte\)/ },
  { name: 'text that is not UTF-8', file: () => write('latin1.yaml', Buffer.concat([Buffer.from('name: caf'), Buffer.from([0xe9]), Buffer.from('\nsteps: []\n')])), want: /latin1\.yaml:1: not UTF-8 text/ },
  { name: 'invalid UTF-8 on a later line', file: () => write('latin1-later.yaml', Buffer.concat([Buffer.from('name: x\nsteps:\n  - { op: create_vm, as: "v'), Buffer.from([0xc3, 0x28]), Buffer.from('" }\n')])), want: /latin1-later\.yaml:3: not UTF-8 text/ },
  { name: 'an empty file', file: () => write('empty.yaml', ''), want: /empty\.yaml: the file is empty; a scenario is a mapping with name: and steps:/ },
  { name: 'a file of comments only', file: () => write('comments.yaml', '# nothing\n\n# here\n'), want: /comments\.yaml: the file is empty/ },
  { name: 'a top-level list', file: () => write('list.yaml', '\n- { op: create_vm }\n'), want: /list\.yaml:2: the top level is a list; a scenario is a mapping with name: and steps:/ },
  { name: 'a top-level scalar', file: () => write('scalar.yaml', 'hello\n'), want: /scalar\.yaml:1: the top level is a single value \("hello"\)/ },
  { name: 'duplicate keys in YAML', file: () => write('dup.yaml', 'name: x\nsteps:\n  - op: create_vm\n    type: default\n    type: snp\n'), want: /dup\.yaml:5: not valid YAML\/JSON: duplicated mapping key/ },
  { name: 'duplicate keys in JSON', file: () => write('dup.json', '{\n  "name": "x",\n  "name": "y",\n  "steps": [{"op": "create_vm"}]\n}\n'), want: /dup\.json:3: not valid YAML\/JSON: duplicated mapping key/ },
  { name: 'a JSON syntax error', file: () => write('syntax.json', '{\n  "name": "x",\n  "steps": [\n    {"op": "create_vm" "as": "vm"}\n  ]\n}\n'), want: /syntax\.json:4: not valid YAML\/JSON: / },
  { name: 'two YAML documents', file: () => write('two.yaml', 'name: x\nsteps: [{ op: create_vm }]\n---\nname: y\n'), want: /two\.yaml:3: not valid YAML\/JSON: expected a single document/ },
  { name: 'a step that is not a mapping', file: () => write('scalar-step.yaml', 'name: x\nsteps:\n  - { op: create_vm }\n  - create_vm\n'), want: /scalar-step\.yaml:4: step 2: a step is a mapping with op: and its fields, got "create_vm"/ },
  { name: 'a FIFO', file: () => { const f = join(dir, 'fifo.yaml'); assert.equal(spawnSync('mkfifo', [f]).status, 0); return f; }, want: /fifo\.yaml: cannot read: a FIFO; a scenario is a regular \.yaml, \.yml or \.json file/ },
  { name: '/dev/zero', file: () => '/dev/zero', want: /\/dev\/zero: cannot read: a character device/ },
  { name: 'a file above the size cap', file: () => { const f = write('huge.yaml', ''); truncateSync(f, MAX_FILE_BYTES + 1); return f; }, want: new RegExp(`huge\\.yaml: the file is ${MAX_FILE_BYTES + 1} bytes; a scenario file may have at most ${MAX_FILE_BYTES} bytes`) },
  { name: 'a file that does not exist', file: () => join(dir, 'missing.yaml'), want: /missing\.yaml: cannot read: no such file or directory \(ENOENT\)/ },
  { name: 'a directory without scenarios', file: () => { mkdirSync(join(dir, 'nothing/deeper'), { recursive: true }); write('nothing/readme.txt', 'hi'); return join(dir, 'nothing'); }, want: /nothing: no scenario files \(\*\.yaml, \*\.yml, \*\.json\) in this directory or below/ },
];

for (const c of CASES) {
  test(`hostile input: ${c.name} exits 2 with a message  [${SOURCE}]`, () => refused(c.file(), c.want));
}

test(`hostile input: an unreadable directory is reported, not a stack trace  [${SOURCE}]`, () => {
  const locked = join(dir, 'locked');
  mkdirSync(locked);
  writeFileSync(join(locked, 'a.yaml'), 'name: x\nsteps: [{ op: create_vm }]\n');
  chmodSync(locked, 0);
  chmodSync(dir, 0o755);
  // root reads any directory, so as root the CLI runs as nobody to meet the EACCES.
  const asUser = process.getuid?.() === 0 ? { uid: 65534 } : {};
  refused(locked, /locked: cannot read the directory: permission denied \(EACCES\)/, asUser);
});

test('hostile input: a directory that holds no scenarios is named even next to good ones', () => {
  mkdirSync(join(dir, 'empty-dir'), { recursive: true });
  refused(join(dir, 'empty-dir'), /empty-dir: no scenario files/);
  const r = cli(['run', 'examples/01-pinned-page-blocks-conversion.yaml', join(dir, 'empty-dir')]);
  assert.equal(r.status, 2);
  assert.equal(r.stdout, '', 'nothing runs');
});

// ---- --json: a validation error is JSON on stdout
test('run --json: a validation error is JSON with file, line, step, op, field and message (exit 2)', () => {
  const f = write('json-error.yaml', 'name: x\nsteps:\n  - { op: create_vm, as: vm }\n  - { op: create_guest_memfd, vm: vm, size: "2^64+4K" }\n');
  const r = cli(['run', '--json', f]);
  assert.equal(r.status, 2, r.stderr);
  const doc = JSON.parse(r.stdout) as { error: string; errors: Record<string, unknown>[] };
  assert.equal(doc.errors.length, 1);
  const { text, ...e } = doc.errors[0]!;
  assert.deepEqual(e, {
    file: f, line: 4, step: 2, op: 'create_guest_memfd', field: 'size',
    message: "(create_guest_memfd) field 'size': \"2^64+4K\" (= 18446744073709555712) does not fit u64 (0 .. 2^64-1)",
  });
  assert.equal(text, `${f}:4: step 2: ${String(e.message)}`);
});

test('run --json: a file-level error is JSON too', () => {
  const r = cli(['run', '--json', '/dev/zero']);
  assert.equal(r.status, 2);
  const doc = JSON.parse(r.stdout) as { errors: { file: string; message: string }[] };
  assert.equal(doc.errors[0]!.file, '/dev/zero');
  assert.match(doc.errors[0]!.message, /a character device/);
});

// ---- the library API and the bounds that keep validation linear
test('the error types a library user catches are exported from the package entry', () => {
  assert.equal(ExportedScenarioError, ScenarioError);
  assert.throws(() => parseScenario('name: x\nsteps: [{ op: nope }]\n', 'a.yaml'), (e: unknown) => e instanceof ExportedScenarioError && e.errors[0]!.field === 'op');
});

test('a long file with a problem in every step: reports stay bounded (a cap, and a bounded handle list)', () => {
  const steps = Array.from({ length: 1000 }, (_, i) => `  - { op: create_vm, as: v${i} }\n  - { op: read, map: v${i}, length: 1 }\n`).join('');
  try {
    parseScenario(`name: x\nsteps:\n${steps}`, 'long.yaml');
    assert.fail('accepted');
  } catch (e) {
    assert.ok(e instanceof ScenarioError);
    assert.equal(e.errors.length, 201);
    assert.match(e.errors.at(-1)!.message, /^\.\.\. and 800 more problem\(s\) in later steps$/);
    assert.match(e.errors[199]!.message, /handle 'v199' is a vm handle/);
    const dangling = parseScenarioErrors(`${steps}  - { op: read, map: nothere, length: 1 }\n`);
    assert.ok(dangling.some((m) => /handle 'nothere' is not defined \(defined so far: v0, v1, .*, v11 and 988 more\)$/.test(m)), dangling.at(-1));
  }
});

function parseScenarioErrors(steps: string): string[] {
  try {
    parseScenario(`name: x\nsteps:\n${steps.split('\n').filter((l) => !/op: read, map: v/.test(l)).join('\n')}`, 'long.yaml');
  } catch (e) {
    if (e instanceof ScenarioError) return e.errors.map((x) => x.message);
    throw e;
  }
  return [];
}
