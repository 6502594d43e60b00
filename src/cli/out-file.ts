// Output-file options shared by the commands (--out, --trace): checked writable before anything
// runs, so a long run never ends in an unwritable path. A leaf module: the run path imports it
// without loading the commands that also use it (the checker, the simulator, the page-map view).
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { OptionSpec, Parsed } from './args.js';
import { UsageError } from './usage.js';

/** Why `path` cannot be written (naming it and the errno), or undefined if it can. */
export function unwritable(path: string): string | undefined {
  const why = (e: unknown, what: string) => `--out ${path}: cannot write ${what} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  if (path === '') return '--out needs a file name';
  try {
    if (existsSync(path)) {
      if (statSync(path).isDirectory()) return `--out ${path}: is a directory (EISDIR)`;
      accessSync(path, constants.W_OK);
      return undefined;
    }
  } catch (e) {
    return why(e, 'the file');
  }
  const dir = dirname(path);
  try {
    if (!statSync(dir).isDirectory()) return `--out ${path}: ${dir} is not a directory (ENOTDIR)`;
    accessSync(dir, constants.W_OK);
  } catch (e) {
    return why(e, `into the directory ${dir}`);
  }
  return undefined;
}

export const TRACE_OPTION: OptionSpec = { name: 'trace', arg: 'FILE', kind: { type: 'string' }, help: 'write a Chrome trace-event JSON of the run (open it in Perfetto UI, or gmemkit view)' };

/** The --trace file, checked writable before anything runs. */
export function traceTarget(p: Parsed): string | undefined {
  const path = p.string('trace');
  if (path === undefined) return undefined;
  const bad = unwritable(path);
  if (bad) throw new UsageError(bad.replace(/^--out/, '--trace'));
  return path;
}

