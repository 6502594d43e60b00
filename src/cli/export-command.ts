// `gmemkit export c FILE|DIR... [--out DIR] [--kselftest]`: each scenario as a C program
// (src/export/c.ts). One file without --out goes to stdout; otherwise DIR/<scenario-name>.c.
// Bad arguments and scenarios that cannot be exported are UsageErrors (exit 2).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cFileName, exportC, ExportError } from '../export/c.js';
import { loadAll } from './load-all.js';
import type { CommandSpec, Parsed } from './args.js';
import { UsageError } from './usage.js';

export const EXPORT_SPEC: CommandSpec = {
  name: 'export',
  brief: 'each scenario as a standalone C program with TAP output (export c)',
  synopsis: 'export c [options] FILE|DIR...',
  summary: "Each scenario as a standalone C program (libc and the kernel's uapi headers only) that\n"
    + 'performs its steps with real system calls and prints TAP (exit 0 pass, 1 fail, 4 skip).',
  positionals: "the format 'c', then scenario files or directories",
  options: [
    { name: 'out', arg: 'DIR', kind: { type: 'string' }, defaultText: 'stdout (one scenario only)', help: 'write DIR/<scenario-name>.c (required for more than one scenario)' },
    { name: 'kselftest', kind: { type: 'bool' }, help: 'use kselftest_harness.h (TEST, ASSERT_TRUE, SKIP) for tools/testing/selftests/kvm' },
  ],
};

export function exportCommand(p: Parsed): number {
  const values = { out: p.string('out'), kselftest: p.bool('kselftest') };
  const positionals = [...p.positionals];
  const [format, ...paths] = positionals;
  if (format !== 'c') throw new UsageError(format === undefined ? 'export: name the format (c) and at least one scenario file or directory' : `export: unknown format '${format}'; allowed: c`);
  if (values.out === '') throw new UsageError('export c: --out needs a directory');
  const scenarios = loadAll('export c', paths);
  if (values.out === undefined && scenarios.length > 1) throw new UsageError(`export c: ${scenarios.length} scenarios: name --out DIR to write one .c file each`);
  const programs: { name: string; text: string }[] = [];
  const used = new Set<string>();
  for (const s of scenarios) {
    let text: string;
    try {
      text = exportC(s, { kselftest: values.kselftest });
    } catch (e) {
      if (e instanceof ExportError) throw new UsageError(`export c: ${e.message}`);
      throw e;
    }
    let name = cFileName(s);
    for (let i = 2; used.has(name); i++) name = cFileName(s).replace(/\.c$/, `-${i}.c`);
    used.add(name);
    programs.push({ name, text });
  }
  if (values.out === undefined) {
    process.stdout.write(programs[0]!.text);
    return 0;
  }
  try {
    mkdirSync(values.out, { recursive: true });
    for (const p of programs) writeFileSync(join(values.out, p.name), p.text);
  } catch (e) {
    throw new UsageError(`export c: cannot write to ${values.out}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  for (const p of programs) console.log(join(values.out, p.name));
  return 0;
}
