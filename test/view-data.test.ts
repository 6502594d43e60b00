// What `gmemkit view` reads: a trace written by --trace (tracks, slices, flows, counters, page
// maps), the JSON of `gmemkit run --json` (steps on one track), and nothing else (exit 2 with
// the file named); the page is self-contained (no URL to fetch). Page-map runs are merged by
// range (src/trace/page-map.ts sweep), never per page.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { sweep } from '../src/trace/page-map.js';

const dir = mkdtempSync(join(tmpdir(), 'gmemkit-view-data-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const cli = (...args: string[]) => spawnSync(process.execPath, ['bin/gmemkit.js', ...args], { encoding: 'utf8' });

// Overlapping marks become disjoint runs covering the file; equal neighbours merge.
const SWEEPS: [string, [number, number, number][], number, [number, number, number][]][] = [
  ['nothing marked: one shared run', [], 8, [[0, 8, 0]]],
  ['a private range inside a mapping', [[0, 8, 4], [2, 4, 1]], 8, [[0, 2, 4], [2, 4, 5], [4, 8, 4]]],
  ['two adjacent private marks merge', [[0, 2, 1], [2, 5, 1]], 6, [[0, 5, 1], [5, 6, 0]]],
  ['a pin over a TiB file costs one run', [[2 ** 27, 2 ** 27 + 1, 2]], 2 ** 28, [[0, 2 ** 27, 0], [2 ** 27, 2 ** 27 + 1, 2], [2 ** 27 + 1, 2 ** 28, 0]]],
];
for (const [what, marks, pages, runs] of SWEEPS) test(`page map: ${what}`, () => assert.deepEqual(sweep(marks, pages), runs));

test('gmemkit view of a run --trace and of a run --json writes a self-contained page; anything else is exit 2', () => {
  const trace = join(dir, 't.json');
  const ex = 'examples/01-pinned-page-blocks-conversion.yaml';
  assert.equal(cli('run', ex, '--trace', trace).status, 0);
  const html = join(dir, 'v.html');
  const r = cli('view', trace, '--out', html);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /1 runs, \d+ slices, [1-9]\d* page-map snapshots/);
  const page = readFileSync(html, 'utf8');
  assert.doesNotMatch(page, /(src|href)=["']?(https?:)?\/\//);
  assert.match(page, /Content-Security-Policy/);
  const json = join(dir, 'run.json');
  writeFileSync(json, cli('run', '--json', ex).stdout);
  const j = cli('view', json, '--out', join(dir, 'j.html'));
  assert.equal(j.status, 0, j.stderr);
  assert.match(j.stdout, /1 runs, 9 slices, 0 page-map snapshots/);
  writeFileSync(join(dir, 'bad.json'), '{"traceEvents":[{"ph":"Q","pid":1,"tid":1,"ts":0}]}');
  for (const [args, msg] of [
    [[join(dir, 'bad.json')], /bad.json: not a valid trace-event file: event 0: unknown phase "Q"/],
    [[join(dir, 'missing.json')], /missing.json: cannot read \(ENOENT\)/],
    [[], /view: name exactly one trace file/],
  ] as [string[], RegExp][]) {
    const b = cli('view', ...args, '--out', join(dir, 'x.html'));
    assert.equal(b.status, 2, args.join(' '));
    assert.match(b.stderr, msg);
  }
});
