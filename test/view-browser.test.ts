// `gmemkit view` pages in a real headless Chromium (Debian's `chromium`, which .ci/run installs
// when missing): the page loads without errors or network requests, draws one range per page-map
// run (merged to at most MAX_RANGES for a TiB file of many runs), explains the step under the
// cursor, and a screenshot is produced. Skipped, with the reason, where no browser exists.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadScenarioFile } from '../src/scenario/load.js';
import { runScenario } from '../src/scenario/run.js';
import { traceScenarioRuns } from '../src/trace/scenario-trace.js';
import { TraceWriter } from '../src/trace/trace-events.js';
import { viewDataOf, type ViewData } from '../src/view/data.js';
import { MAX_RANGES, renderPage } from '../src/view/page.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `no browser: ${CHROMIUM} is missing (.ci/run installs Debian's chromium)`;

type Context = import('playwright-core').BrowserContext;
let ctx: Context | undefined;
let dir = '';

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'gmemkit-view-'));
  const { chromium } = await import('playwright-core');
  ctx = await chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
after(async () => {
  await ctx?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Load a page; every console error, page error and network request is collected. */
async function open(html: string, name: string) {
  const file = join(dir, `${name}.html`);
  writeFileSync(file, html);
  const page = await ctx!.newPage();
  const errors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (r) => { if (!r.url().startsWith('file:')) requests.push(r.url()); });
  await page.goto(`file://${file}`);
  await page.waitForSelector('body[data-ready="true"]');
  return { page, errors, requests };
}

function examplesView(): ViewData {
  const w = new TraceWriter();
  for (const f of ['examples/07-io-uring-buffers-released-and-reregistered.yaml', 'examples/08-odirect-in-flight-delays-conversion.yaml']) {
    runScenario(loadScenarioFile(f), { observe: traceScenarioRuns(w) });
  }
  const d = viewDataOf(JSON.parse(JSON.stringify(w.toJSON())), 'examples');
  if ('error' in d) throw new Error(d.error);
  return d;
}

test('the page of the examples\' trace loads without errors, draws one range per run of the last page map, explains the step under the cursor, and screenshots', { skip }, async () => {
  const data = examplesView();
  const { page, errors, requests } = await open(renderPage(data, 'examples'), 'examples');
  const last = data.processes[0]!.snapshots.at(-1)!;
  const expected = last.maps.reduce((n, m) => n + m.runs.length, 0);
  assert.ok(expected >= 2, 'the example has more than one run in its page map');
  assert.equal(await page.locator('#maps .range').count(), expected);
  assert.equal(await page.locator('#maps .range.private').count(), last.maps.reduce((n, m) => n + m.runs.filter((r) => r[2] & 1).length, 0));
  const box = (await page.locator('#timeline').boundingBox())!;
  // Hover the first kernel slice: it is explained.
  const p = data.processes[0]!;
  const k = p.tracks.indexOf('kernel');
  const slice = p.slices.find((s) => s[0] === k)!;
  const t0 = Math.min(...p.slices.map((s) => s[1]));
  const t1 = Math.max(...p.slices.map((s) => s[1] + s[2]));
  const x = 190 + (box.width - 200) * (slice[1] + slice[2] / 2 - t0) / (t1 - t0);
  const counters = Object.keys(p.counters).length;
  const y = 20 + counters * 26 + k * 22 + 11;
  await page.mouse.move(box.x + x, box.y + y);
  assert.match(await page.locator('#explain').textContent() ?? '', new RegExp(`kernel — ${slice[3]}`));
  const shot = join(dir, 'examples.png');
  await page.screenshot({ path: shot, fullPage: true });
  const png = readFileSync(shot);
  assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]); // "PNG"
  assert.ok(png.length > 10_000);
  assert.deepEqual(errors, []);
  assert.deepEqual(requests, []);
  await page.close();
});

test('a 1 TiB guest_memfd with 100,000 runs draws at most MAX_RANGES merged ranges, without errors', { skip }, async () => {
  const pages = 2 ** 28;
  const runs: [number, number, number][] = [];
  const n = 100_000;
  const step = pages / n;
  for (let i = 0; i < n; i++) runs.push([i * step, (i + 1) * step, i % 2]);
  const data: ViewData = { title: '1 TiB', processes: [{ pid: 1, name: 'synthetic', tracks: ['guest vCPU 0'], slices: [[0, 0, 900, 'MapGPA', { outcome: 'ok' }]], flows: [], counters: {}, snapshots: [{ ts: 0, step: 0, maps: [{ name: 'guest_memfd 1T', pages, runs }] }] }] };
  const { page, errors } = await open(renderPage(data, '1 TiB'), 'tib');
  const drawn = await page.locator('#maps .range').count();
  assert.ok(drawn > 0 && drawn <= MAX_RANGES + 1, `drawn ${drawn}`);
  assert.ok((await page.locator('#maps .range.mixed').count()) > 0, 'alternating runs merge into mixed ranges');
  assert.deepEqual(errors, []);
  await page.close();
});
