// What `npm pack` ships: the package stands on its own. It holds the licence package.json
// declares, the README and the docs it cites, and the TypeScript sources every shipped source
// map points at (so stack traces map to files the user has); it ships no tests and no
// benchmarks. Reads `npm pack --dry-run --json --ignore-scripts` (the listing of the current
// build; scripts are skipped so packing never rebuilds dist/ under the running tests).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/test/package.test.js -> the repository root. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface PackEntry { path: string }
interface PackResult { files: PackEntry[]; entryCount: number }

function packListing(): Set<string> {
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  assert.equal(r.status, 0, `npm pack --dry-run failed (status ${r.status}):\n${r.stderr}`);
  const parsed = JSON.parse(r.stdout) as PackResult[];
  assert.equal(parsed.length, 1);
  return new Set(parsed[0]!.files.map((f) => f.path));
}

const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');

describe('npm pack: what the package ships', () => {
  const files = packListing();
  const pkg = JSON.parse(read('package.json')) as { license: string; main: string; types: string; bin: Record<string, string> };

  it('LICENSE: the MIT licence that package.json declares, for the gmemkit contributors', () => {
    assert.ok(files.has('LICENSE'), 'LICENSE is not in the package');
    assert.equal(pkg.license, 'MIT');
    const text = read('LICENSE');
    assert.match(text, /^MIT License\n/);
    assert.match(text, /Copyright \(c\) 2026 gmemkit contributors/);
    assert.match(text, /THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND/);
  });

  it('README.md and every docs/*.md it cites are shipped', () => {
    assert.ok(files.has('README.md'));
    const cited = [...new Set([...read('README.md').matchAll(/\(docs\/([\w-]+\.md)\)/g)].map((m) => m[1]!))];
    assert.ok(cited.length >= 5, `README links only ${cited.length} docs`);
    for (const d of ['kernel-semantics.md', 'kernel-probe.md', 'scenario-language.md', 'checker.md', 'design-discussion.md', ...cited]) {
      assert.ok(files.has(`docs/${d}`), `docs/${d} is not in the package`);
    }
  });

  it('main, types and the bin script are shipped', () => {
    for (const p of [pkg.main, pkg.types, ...Object.values(pkg.bin)]) assert.ok(files.has(normalize(p)), `${p} is not in the package`);
  });

  it('every shipped source map points only at shipped sources, and every shipped .js has its map', () => {
    const maps = [...files].filter((f) => f.endsWith('.map'));
    assert.ok(maps.length > 0, 'no source maps in the package (tsconfig sourceMap is on)');
    const missing: string[] = [];
    for (const m of maps) {
      const map = JSON.parse(read(m)) as { sources: string[]; sourceRoot?: string };
      for (const s of map.sources) {
        const target = normalize(join(dirname(m), map.sourceRoot ?? '', s));
        if (!files.has(target)) missing.push(`${m} -> ${target}`);
      }
    }
    assert.deepEqual(missing, []);
    const unmapped = [...files].filter((f) => f.endsWith('.js') && f.startsWith('dist/') && !files.has(`${f}.map`));
    assert.deepEqual(unmapped, []);
  });

  it('no tests, test scenarios or benchmarks, compiled or not', () => {
    const stray = [...files].filter((f) => /^(dist\/)?(test|bench)\//.test(f));
    assert.deepEqual(stray, []);
  });
});
