// The fast YAML reader (src/scenario/fast-yaml.ts) against js-yaml: on every text it accepts it
// must give js-yaml's values (bigints, nulls, strings, nesting, key order) and the lines js-yaml's
// listener gives for the top-level keys and the steps; on every text js-yaml refuses it must
// decline (so the error message is js-yaml's). Checked on every scenario file of the project,
// on hand-written edge cases, and on random documents and random mutations of them.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { readFastYaml } from '../src/scenario/fast-yaml.js';
import { MAX_DEPTH, parseYaml, resolvePlain } from '../src/scenario/load.js';

const ROOT = new URL('../../', import.meta.url).pathname;

function yamlFiles(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) yamlFiles(p, out);
    else if (/\.ya?ml$/.test(e)) out.push(p);
  }
  return out;
}

/** js-yaml's reading, or its error. */
function slow(text: string): { raw?: unknown; lines?: unknown; error?: string } {
  try {
    const p = parseYaml(text, 't.yaml', false);
    return { raw: p.raw, lines: linesOf(p) };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

function linesOf(p: ReturnType<typeof parseYaml>): unknown {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p.raw)) {
    out[k] = { key: p.keyLine(k), items: Array.isArray(v) ? v.map((_, i) => p.itemLine(v, i)) : undefined };
  }
  return out;
}

/** Either the fast reader declines, or it agrees with js-yaml exactly. Returns whether it accepted. */
function agrees(text: string): boolean {
  const fast = readFastYaml(text, resolvePlain, MAX_DEPTH / 2);
  if (!fast) return false;
  const s = slow(text);
  assert.equal(s.error, undefined, `fast reader accepted what js-yaml refuses:\n${text}`);
  assert.deepStrictEqual(fast.value, s.raw, `values differ for:\n${text}`);
  assert.deepStrictEqual(linesOf(parseYaml(text, 't.yaml')), s.lines, `lines differ for:\n${text}`);
  return true;
}

describe('fast YAML reader', () => {
  it('reads every scenario file of the project as js-yaml does (and takes most of them)', () => {
    const files = ['examples', 'conformance', 'test/scenarios'].flatMap((d) => yamlFiles(join(ROOT, d)));
    assert.ok(files.length > 20);
    let taken = 0;
    for (const f of files) if (agrees(readFileSync(f, 'utf8'))) taken++;
    assert.ok(taken >= files.length * 0.8, `fast reader took only ${taken} of ${files.length} files`);
  });

  const cases: [string, boolean][] = [
    ['name: x\nsteps:\n  - { op: create_vm, as: vm }\n', true],
    ['name: x\nsteps:\n- { op: a }\n- op: b\n  fd: 3\n', true],
    ['name: "q"\ndescription: |\n  one\n\n  two\n    three\n\nsteps: []\n', true],
    ['name: x\ndescription: |-\n  one\n  two\nsteps: [1, -2, 0x10, 0o7, 1.5, .inf, ~, null, Null, true, False, "3", \'4\', 2^63, 1_000, +5, 007]\n', true],
    ['a: { b: [ ], c: {}, d: [[1], {e: f g}] }   # comment\n# c\n  # c\nz: 1 # c\n', true],
    ['a: b#c\nd: e #f\n', true],
    ['a:\n  b:\n    c: 1\n  d: 2\ne:\n', true],
    ['a: 1\na: 2\n', false], // duplicate key
    ['a: &x 1\nb: *x\n', false], // anchors
    ['a: !!str 1\n', false], // tags
    ['a: "x\\ny"\n', false], // escapes
    ["a: 'it''s'\n", false],
    ['a: b\n  c\n', false], // multi-line plain scalar
    ['a: [1,\n  2]\n', false], // multi-line flow
    ['a: b: c\n', false],
    ['a:\tb\n', false],
    ['a: b\r\n', false],
    ['---\na: b\n', false],
    ['a: {b: 1,}\n', false],
    ['a: |\n  x', false], // no final line break
    ['- a\n', false], // top level not a mapping
    ['true: 1\n', false],
    ['__proto__: 1\n', false],
    ['a:\n- 1\n- 2\nb: 3\n', true],
    ['a:\n  - 1\n - 2\n', false],
    ['a: [a:b]\n', false],
  ];
  for (const [text, taken] of cases) {
    it(`${taken ? 'takes' : 'declines'} ${JSON.stringify(text)}`, () => {
      assert.equal(agrees(text), taken);
    });
  }

  it('agrees with js-yaml on random documents and on random mutations of them', () => {
    const scalar = fc.constantFrom('x', 'vm', 'EINVAL', '4K', '2^63', '-1', '0x1f', '1.5', '~', 'null', 'true', 'False', '""', "'a b'",
      '"q#"', 'a b', 'a#b', '0o17', '+3', '.nan', '1e3', '-', '--x', 'é§', '[]', '{}', 'yes', "'x'");
    const key = fc.constantFrom('op', 'as', 'fd', 'size', 'expect', 'errno', 'a-b', 'x_1', 'true', 'on');
    const flowNode: fc.Arbitrary<string> = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: 'small' }, scalar, tie('map'), tie('seq')),
      map: fc.array(fc.tuple(key, tie('node')), { maxLength: 4 }).map((kv) => `{ ${kv.map(([k, v]) => `${k}: ${v}`).join(', ')} }`),
      seq: fc.array(tie('node'), { maxLength: 4 }).map((xs) => `[${xs.join(', ')}]`),
    })).node as fc.Arbitrary<string>;
    const item = fc.oneof(flowNode.map((v) => `  - ${v}`),
      fc.array(fc.tuple(key, flowNode), { minLength: 1, maxLength: 3 }).map((kv) => kv.map(([k, v], i) => `${i ? '    ' : '  - '}${k}: ${v}`).join('\n')));
    const doc = fc.tuple(scalar, fc.option(fc.constantFrom('|\n  text\n\n  more\n', '|-\n  t\n', 'plain words')), fc.array(item, { maxLength: 6 }))
      .map(([name, desc, items]) => `name: ${name}\n${desc ? `description: ${desc}\n` : ''}steps:\n${items.join('\n')}\n`);
    const mutation = fc.tuple(fc.nat(), fc.constantFrom('', ' ', '\n', '#', ':', ',', '-', '{', '}', '[', ']', '"', "'", '|', '&', '*', '!', '  ', '\n  ', 'a: 1\n', '\\'), fc.nat({ max: 3 }));
    fc.assert(fc.property(doc, fc.array(mutation, { maxLength: 3 }), (text, muts) => {
      agrees(text);
      let t = text;
      for (const [at, ins, del] of muts) {
        const i = at % (t.length + 1);
        t = t.slice(0, i) + ins + t.slice(i + del);
        agrees(t);
      }
    }), { numRuns: 3000 });
  });
});
