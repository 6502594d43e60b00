// The documentation stands on its own: every citation of a docs/ file by section
// ("kernel-semantics.md §1.10(b)", "kernel-probe §6", "checker.md §4.2, §4.4") in the sources,
// tests, scenarios, examples, README and docs names a section that exists in that file, and
// nothing sends the reader to a document outside the repository (docs/*.md say that their
// section numbers are stable and cited by tests; README.md "Source documents").
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/test/docs-citations.test.js -> the repository root. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DOCS = ['kernel-semantics', 'kernel-probe', 'design-discussion', 'scenario-language', 'checker'] as const;
/** The research notes the docs replace, with the same section numbers. */
const ALIASES: Record<string, string> = { 'thread-and-userspace': 'design-discussion', 'scenario-format': 'scenario-language' };
const SCANNED = ['src', 'test', 'examples', 'conformance', 'bench', 'docs', 'README.md'];

/** Section ids of a doc: "1", "1.10", "1.10(b)" from its ##/###/#### headings. */
function sectionIds(doc: string): Set<string> {
  const ids = new Set<string>();
  let current: string | undefined;
  for (const line of readFileSync(join(ROOT, 'docs', `${doc}.md`), 'utf8').split('\n')) {
    const numbered = /^#{2,4} (\d+(?:\.\d+)*)\.?\s/.exec(line);
    if (numbered) {
      current = numbered[1]!;
      ids.add(current);
      continue;
    }
    const lettered = /^#### \(([a-z])\)/.exec(line);
    if (lettered && current) ids.add(`${current}(${lettered[1]})`);
  }
  return ids;
}

function textFiles(path: string): string[] {
  const full = join(ROOT, path);
  const st = statSync(full, { throwIfNoEntry: false });
  if (!st) return [];
  if (st.isFile()) return /\.(ts|js|ya?ml|json|md|pml)$/.test(path) ? [path] : [];
  return readdirSync(full).filter((e) => e !== 'node_modules' && e !== 'dist').flatMap((e) => textFiles(join(path, e)));
}

const CITATION = /(kernel-semantics|kernel-probe|design-discussion|scenario-language|checker|thread-and-userspace|scenario-format)(?:\.md)?\)?((?:[ ,;]*(?:and )?§ ?\d+(?:\.\d+)*(?:\([a-z]\))?)+)/g;

describe('docs/: citations resolve inside the repository', () => {
  const ids = Object.fromEntries(DOCS.map((d) => [d, sectionIds(d)]));
  const files = SCANNED.flatMap(textFiles);

  it('every docs/ file has numbered sections, and the scan finds the files that cite them', () => {
    for (const d of DOCS) assert.ok(ids[d]!.size >= 5, `docs/${d}.md has only ${ids[d]!.size} numbered sections`);
    assert.ok(files.some((f) => f.startsWith('test')) && files.some((f) => f.startsWith('src')), 'scanned no sources or tests');
  });

  it('every "FILE §N" citation names a section that exists (kernel-semantics, kernel-probe, design-discussion, scenario-language, checker)', () => {
    const bad: string[] = [];
    let count = 0;
    for (const f of files) {
      const text = readFileSync(join(ROOT, f), 'utf8');
      for (const m of text.matchAll(CITATION)) {
        const doc = ALIASES[m[1]!] ?? m[1]!;
        for (const s of m[2]!.matchAll(/§ ?(\d+(?:\.\d+)*(?:\([a-z]\))?)/g)) {
          count++;
          if (!ids[doc]!.has(s[1]!)) bad.push(`${relative(ROOT, join(ROOT, f))}: ${m[0].trim()} (no §${s[1]} in docs/${doc}.md)`);
        }
      }
    }
    assert.ok(count > 100, `found only ${count} citations: the pattern no longer matches how files cite`);
    assert.deepEqual(bad, []);
  });

  it('no file sends the reader to documents beside the repository', () => {
    const outside = ['..', 'shared', ''].join('/'); // spelled out so this file does not match itself
    const hits = files.filter((f) => readFileSync(join(ROOT, f), 'utf8').includes(outside));
    assert.deepEqual(hits, []);
  });
});
