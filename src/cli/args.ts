// The one command-line parser every subcommand uses: a table of options per command gives the
// parsing (unknown options and stray arguments are errors naming the allowed ones; a value may
// start with '-', so `--seed -1` is a range error, not a parser riddle), the typed values with
// their defaults, and the `--help` text, so the help cannot drift from what a run uses.
import { UsageError } from './usage.js';

export type OptionKind =
  | { readonly type: 'bool' }
  /** A free string, or one of `choices` (checked here when given). */
  | { readonly type: 'string'; readonly choices?: readonly string[] }
  /** An integer in min..max (inclusive). */
  | { readonly type: 'int'; readonly min: number; readonly max: number }
  /** A number greater than zero and at most max (e.g. megabytes). */
  | { readonly type: 'positive'; readonly max: number };

export interface OptionSpec {
  readonly name: string;
  readonly kind: OptionKind;
  /** Placeholder of the value in the help (N, FILE, ...). */
  readonly arg?: string;
  readonly help: string;
  /** The value a run uses when the option is absent; shown in the help. */
  readonly default?: string | number | boolean;
  /** How the help shows the default when it is not the plain value. */
  readonly defaultText?: string;
}

export interface CommandSpec {
  readonly name: string;
  /** The synopsis after `gmemkit `, e.g. `run [options] FILE|DIR...`. */
  readonly synopsis: string;
  readonly summary: string;
  /** One line for the top-level usage (default: the summary's first line). */
  readonly brief?: string;
  readonly options: readonly OptionSpec[];
  /** What positional arguments mean; absent: none are allowed. */
  readonly positionals?: string;
  /** Extra help text after the options. */
  readonly notes?: string;
}

export const HELP_OPTION: OptionSpec = { name: 'help', kind: { type: 'bool' }, help: 'print this help and exit 0 (also -h)' };

/** The largest --max-memory in MB (1 TiB): beyond it the limit is no limit. */
export const MAX_MEMORY_MB = 1 << 20;

/** The exit codes of every gmemkit command. */
export const EXIT = { OK: 0, FAILED: 1, USAGE: 2, INCOMPLETE: 3 } as const;
export const EXIT_TEXT = `exit status:
  0  success: nothing failed (no expectation failed, no difference, no violation; unsupported steps are counted, not failed)
  1  a failure: an expectation failed (run), model and kernel differ (diff, conform), a violation was found (check)
  2  bad input: an unknown command or option, a bad option value, an invalid scenario file, an unwritable --out
  3  check only: the search is incomplete (--max-memory reached), so nothing is proven`;

export class Parsed {
  constructor(
    readonly spec: CommandSpec,
    private readonly raw: ReadonlyMap<string, string | true>,
    readonly positionals: readonly string[],
  ) {}

  has(name: string): boolean { return this.raw.has(name); }

  private option(name: string): OptionSpec {
    const o = this.spec.options.find((x) => x.name === name);
    if (!o) throw new Error(`gmemkit bug: ${this.spec.name} has no option --${name}`);
    return o;
  }

  bool(name: string): boolean {
    const o = this.option(name);
    return this.raw.has(name) || o.default === true;
  }

  /** The string value, or the option's default. */
  string(name: string): string | undefined {
    const v = this.raw.get(name);
    if (typeof v === 'string') return v;
    const d = this.option(name).default;
    return d === undefined ? undefined : String(d);
  }

  /** The numeric value (validated at parse time), or the option's default. */
  number(name: string): number | undefined {
    const v = this.raw.get(name);
    if (typeof v === 'string') return Number(v);
    const d = this.option(name).default;
    return typeof d === 'number' ? d : undefined;
  }
}

/** Checks a value against its kind; a message naming the option and the allowed values. */
export function checkValue(flag: string, kind: OptionKind, v: string): string | undefined {
  switch (kind.type) {
    case 'bool': return undefined;
    case 'string':
      if (kind.choices && !kind.choices.includes(v)) return `${flag} must be one of ${kind.choices.join(', ')} (got '${v}')`;
      return undefined;
    case 'int': {
      const range = kind.max === Number.MAX_SAFE_INTEGER ? `>= ${kind.min}` : `in ${kind.min}..${kind.max}`;
      if (!/^-?\d+$/.test(v) || !Number.isSafeInteger(Number(v)) || Number(v) < kind.min || Number(v) > kind.max) {
        return `${flag} must be an integer ${range} (got '${v}')`;
      }
      return undefined;
    }
    case 'positive':
      if (!/^\d+(\.\d+)?$/.test(v) || !(Number(v) > 0) || Number(v) > kind.max) return `${flag} must be a positive number up to ${kind.max} (got '${v}')`;
      return undefined;
  }
}

function allowedText(spec: CommandSpec): string {
  return [...spec.options, HELP_OPTION].map((o) => `--${o.name}`).join(', ');
}

/**
 * Parses `argv` against `spec`: `--name value`, `--name=value`, `-h`. Throws UsageError for an
 * unknown option, a missing or bad value, or positionals where none are allowed.
 */
export function parseCommand(spec: CommandSpec, argv: readonly string[]): Parsed | 'help' {
  const raw = new Map<string, string | true>();
  const positionals: string[] = [];
  const where = `gmemkit ${spec.name}`;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') return 'help';
    if (a === '--') { positionals.push(...argv.slice(i + 1)); break; }
    if (!a.startsWith('-') || a === '-') { positionals.push(a); continue; }
    const eq = a.indexOf('=');
    const name = a.startsWith('--') ? a.slice(2, eq > 0 ? eq : undefined) : '';
    const o = spec.options.find((x) => x.name === name);
    if (!o) throw new UsageError(`unknown argument '${a}'; the options of ${where}: ${allowedText(spec)}`);
    const flag = `--${o.name}`;
    if (o.kind.type === 'bool') {
      if (eq > 0) throw new UsageError(`${flag} takes no value`);
      raw.set(o.name, true);
      continue;
    }
    let v: string;
    if (eq > 0) v = a.slice(eq + 1);
    else {
      // The next argument is the value even when it starts with a single '-' (a negative number).
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new UsageError(`${flag} needs a value${o.arg ? ` (${o.arg})` : ''}`);
      v = next;
      i++;
    }
    const bad = checkValue(flag, o.kind, v);
    if (bad) throw new UsageError(bad);
    raw.set(o.name, v);
  }
  if (positionals.length && !spec.positionals) {
    throw new UsageError(`unexpected argument '${positionals[0]}': ${where} takes no arguments, only the options ${allowedText(spec)}`);
  }
  return new Parsed(spec, raw, positionals);
}

function kindText(o: OptionSpec): string {
  if (o.kind.type === 'bool') return '';
  if (o.arg) return ` ${o.arg}`;
  if (o.kind.type === 'string' && o.kind.choices) return ` ${o.kind.choices.join('|')}`;
  return o.kind.type === 'int' ? ' N' : ' X';
}

/** The `--help` text of a command, with every option's range and default from its spec. */
export function helpText(spec: CommandSpec): string {
  const rows = [...spec.options, HELP_OPTION].map((o) => {
    const range = o.kind.type === 'int' ? (o.kind.max === Number.MAX_SAFE_INTEGER ? `>= ${o.kind.min}` : `${o.kind.min}..${o.kind.max}`)
      : o.kind.type === 'positive' ? `> 0, up to ${o.kind.max}` : undefined;
    const dflt = o.defaultText ?? (o.default === undefined || o.default === false ? undefined : String(o.default));
    const paren = [range, dflt === undefined ? undefined : `default ${dflt}`].filter((x) => x !== undefined).join('; ');
    return [`--${o.name}${kindText(o)}`, `${o.help}${paren ? ` (${paren})` : ''}`] as const;
  });
  const width = Math.max(...rows.map(([l]) => l.length)) + 2;
  const lines = [`usage: gmemkit ${spec.synopsis}`, '', `${spec.summary}`, ''];
  if (spec.positionals) lines.push(`arguments: ${spec.positionals}`, '');
  lines.push('options:', ...rows.map(([l, r]) => `  ${l.padEnd(width)}${r.replace(/\n/g, `\n  ${''.padEnd(width)}`)}`));
  if (spec.notes) lines.push('', spec.notes);
  lines.push('', EXIT_TEXT);
  return lines.join('\n');
}

/** A progress sink for long commands: stderr, and only when it is a terminal and not under --json. */
export function progressSink(json: boolean, stream: { isTTY?: boolean; write(s: string): unknown } = process.stderr): ((line: string) => void) | undefined {
  if (json || !stream.isTTY) return undefined;
  return (line) => { stream.write(`${line}\n`); };
}
