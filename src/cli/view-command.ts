// `gmemkit view FILE --out view.html`: a self-contained HTML page (no network) of a trace file
// written by --trace (or of `gmemkit run --json` output): page maps over time and the timeline.
import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { renderPage } from '../view/page.js';
import { viewDataOf } from '../view/data.js';
import { EXIT, type CommandSpec, type Parsed } from './args.js';
import { unwritable } from './out-file.js';
import { UsageError } from './usage.js';

export const VIEW_SPEC: CommandSpec = {
  name: 'view',
  brief: 'a self-contained HTML page of a trace: page maps of each guest_memfd over time and the timeline',
  synopsis: 'view FILE [--out view.html]',
  summary: 'Write a self-contained HTML page (inline script and style, no network) of a trace file\n'
    + 'written by --trace (or of the JSON of gmemkit run --json): the page map of each guest_memfd\n'
    + 'over time, by range, and the timeline of the trace, with the step under the cursor explained.',
  positionals: 'one trace file (.json)',
  options: [{ name: 'out', arg: 'FILE', kind: { type: 'string' }, default: 'view.html', help: 'where to write the page' }],
};

export function viewCommand(p: Parsed): number {
  if (p.positionals.length !== 1) throw new UsageError(`view: name exactly one trace file (got ${p.positionals.length})`);
  const file = p.positionals[0]!;
  const out = p.string('out')!;
  const bad = unwritable(out);
  if (bad) throw new UsageError(bad);
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch (e) { throw new UsageError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`); }
  let input: unknown;
  try { input = JSON.parse(text); } catch (e) { throw new UsageError(`${file}: not JSON (${(e as Error).message}); expected a trace written by --trace`); }
  const data = viewDataOf(input, basename(file));
  if ('error' in data) throw new UsageError(`${file}: ${data.error}`);
  writeFileSync(out, renderPage(data, basename(file)));
  const maps = data.processes.reduce((n, x) => n + x.snapshots.length, 0);
  console.log(`${out}: ${data.processes.length} runs, ${data.processes.reduce((n, x) => n + x.slices.length, 0)} slices, ${maps} page-map snapshots`);
  return EXIT.OK;
}
