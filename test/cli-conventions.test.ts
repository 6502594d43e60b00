// The conventions of a command-line tool, on the real `gmemkit` binary: --version, --help on
// every subcommand, unknown options and stray arguments rejected with the allowed ones named,
// the exit codes listed, every numeric option range-checked by the one shared parser (never a
// parser riddle like "ambiguous", never a stack trace), and the check defaults in --help equal
// to what a run uses.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { EXIT } from '../src/cli/args.js';
import { parseReferenceFlags, REFERENCE_SPEC } from '../src/cli/check-command.js';
import { FULL_SPEC, parseFullConfig } from '../src/cli/check-full.js';
import { COMPARE_SPEC } from '../src/cli/compare.js';
import { main } from '../src/cli/main.js';

const cli = (...args: string[]) => spawnSync(process.execPath, ['bin/gmemkit.js', ...args], { encoding: 'utf8' });

/** main() in this process, capturing stdout and stderr: the same code as the binary, without a spawn per case. */
async function inProcess(...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const ow = process.stdout.write.bind(process.stdout);
  const ew = process.stderr.write.bind(process.stderr);
  // Only text is the command's: main() awaits lazy imports, and meanwhile the test runner writes
  // its own (binary) reports to stdout.
  process.stdout.write = ((x: string | Uint8Array) => { if (typeof x === 'string') stdout += x; else ow(x); return true; }) as typeof process.stdout.write;
  process.stderr.write = ((x: string | Uint8Array) => { if (typeof x === 'string') stderr += x; else ew(x); return true; }) as typeof process.stderr.write;
  try {
    return { status: await main(args), stdout, stderr };
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
  }
}
const STACK = /at .*\.js:\d+|Error:|TypeError|ambiguous/;

test('--version and -V print the version of package.json, exit 0', () => {
  const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
  for (const flag of ['--version', '-V']) {
    const r = cli(flag);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `gmemkit ${version}\n`);
  }
});

// Every subcommand, and the options its help must list.
const COMMANDS: [string[], string[]][] = [
  [['run'], ['--backend', '--profile', '--json', '--no-invariants']],
  [['diff'], ['--profile', '--json']],
  [['conform'], ['--json']],
  [['compare'], COMPARE_SPEC.options.map((o) => `--${o.name}`)],
  [['check'], REFERENCE_SPEC.options.map((o) => `--${o.name}`)],
  [['check', '--model', 'full'], FULL_SPEC.options.map((o) => `--${o.name}`)],
  [['profiles'], []],
  [['ops'], []],
];

for (const [cmd, options] of COMMANDS) {
  test(`gmemkit ${cmd.join(' ')} --help / -h prints its options and exits 0`, async () => {
    for (const h of ['--help', '-h']) {
      const r = h === '--help' ? cli(...cmd, h) : await inProcess(...cmd, h);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, '');
      assert.match(r.stdout, new RegExp(`^usage: gmemkit ${cmd.join(' ')}`));
      for (const o of [...options, '--help']) assert.match(r.stdout, new RegExp(`^  ${o}\\b`, 'm'), `${o} in the help of ${cmd.join(' ')}`);
    }
  });

  test(`gmemkit ${cmd.join(' ')} rejects an unknown option, naming it and the allowed ones (exit 2)`, () => {
    const r = cli(...cmd, '--frobnicate');
    assert.equal(r.status, 2);
    assert.doesNotMatch(r.stderr, STACK);
    assert.match(r.stderr, /unknown argument '--frobnicate'/);
    for (const o of [...options, '--help']) assert.ok(r.stderr.includes(o), `${o} listed in: ${r.stderr}`);
  });
}

test('gmemkit help CMD is CMD --help', async () => {
  for (const cmd of ['run', 'diff', 'conform', 'compare', 'profiles', 'ops']) {
    const a = await inProcess('help', cmd);
    assert.equal(a.status, 0);
    assert.equal(a.stdout, (await inProcess(cmd, '--help')).stdout);
  }
  const check = cli('help', 'check');
  assert.ok(check.stdout.includes((await inProcess('check', '--help')).stdout) && check.stdout.includes((await inProcess('check', '--model', 'full', '--help')).stdout));
  const bad = await inProcess('help', 'frobnicate');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /unknown command 'frobnicate'; commands: run, /);
});

test('stray arguments are an error where a command takes none (profiles, compare)', () => {
  for (const args of [['profiles', 'foo'], ['compare', 'foo'], ['--version', 'x']]) {
    const r = cli(...args);
    assert.equal(r.status, 2, args.join(' '));
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^gmemkit: .*(unexpected argument 'foo'|takes no arguments)/);
  }
});

test('the top-level usage lists every exit code the tool uses, with its meaning', () => {
  const r = cli('help');
  assert.equal(r.status, 0);
  for (const code of Object.values(EXIT)) assert.match(r.stdout, new RegExp(`^  ${code}  \\w+`, 'm'), `exit ${code}`);
  assert.match(r.stdout, /^  3  check only: the search is incomplete \(--max-memory reached\)/m);
  // No command prints the usage and claims success: bare `gmemkit` is a usage error.
  const bare = cli();
  assert.equal(bare.status, 2);
  assert.match(bare.stderr, /^gmemkit — /);
});

/** The default each option's help shows, by option name. */
function helpDefaults(help: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of help.matchAll(/^  --([\w-]+)[^\n]*\((?:[^()]*; )?default ([^);]+)\)$/gm)) out.set(m[1]!, m[2]!);
  return out;
}

test('check --help shows the defaults a run of --model reference uses', () => {
  const shown = helpDefaults(cli('check', '--help').stdout);
  const f = parseReferenceFlags([]);
  assert.ok(typeof f === 'object');
  const used: Record<string, string> = {
    model: f.model, pages: String(f.params.pages), holders: String(f.params.holders), requests: String(f.params.requests),
    bug: String(f.params.bug), kinds: f.params.kinds.join(','), workers: String(f.search.workers),
  };
  assert.deepEqual(Object.fromEntries(shown), used);
});

test('check --model full --help shows the defaults a run of --model full uses', () => {
  const shown = helpDefaults(cli('check', '--model', 'full', '--help').stdout);
  const f = parseFullConfig(['--model', 'full']);
  assert.ok(typeof f === 'object');
  const c = f.config;
  const used: Record<string, string> = {
    'vm-type': String(c.vmType), pages: String(c.pages), holders: c.holders.join(','), requests: String(c.requests),
    profile: c.profile.name, policy: c.policy.name, 'max-retries': String(c.policy.maxRetries), workers: String(f.search.workers), out: f.out,
  };
  assert.deepEqual(Object.fromEntries(shown), used);
});

// Every numeric option of every subcommand, with values out of range or of the wrong type.
const NUMERIC: [string[], string, RegExp][] = [
  [['check'], 'pages', /--pages must be an integer in 1\.\.6/],
  [['check'], 'holders', /--holders must be an integer in 1\.\.3/],
  [['check'], 'requests', /--requests must be an integer in 0\.\.255/],
  [['check'], 'bug', /--bug must be an integer in 0\.\.4/],
  [['check'], 'max-memory', /--max-memory must be a positive number/],
  [['check', '--model', 'full'], 'pages', /--pages must be an integer in 1\.\.3/],
  [['check', '--model', 'full'], 'requests', /--requests must be an integer in 0\.\.2/],
  [['check', '--model', 'full'], 'max-retries', /--max-retries must be an integer in 0\.\.8/],
  [['check', '--model', 'full'], 'max-memory', /--max-memory must be a positive number/],
  [['compare'], 'seed', /--seed must be an integer >= 0/],
];
const BAD_NUMBERS = ['-1', '', 'NaN', 'abc', '1e3', '99999999999999999999', '0x10', 'Infinity'];

for (const [cmd, opt, msg] of NUMERIC) {
  test(`gmemkit ${cmd.join(' ')} --${opt}: out of range or not a number is a clean message (exit 2)`, async () => {
    // An integer option also refuses a fraction; a positive one refuses zero. The binary once
    // (the headline case, -1), then main() in this process for the rest.
    const spawned = cli(...cmd, `--${opt}`, '-1');
    assert.equal(spawned.status, 2);
    assert.doesNotMatch(spawned.stderr, STACK);
    assert.match(spawned.stderr, msg);
    for (const v of [...BAD_NUMBERS, opt === 'max-memory' ? '0' : '1.5']) {
      for (const args of [[`--${opt}`, v], [`--${opt}=${v}`]]) {
        const r = await inProcess(...cmd, ...args);
        assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
        assert.equal(r.stdout, '');
        assert.doesNotMatch(r.stderr, STACK);
        assert.match(r.stderr, msg, args.join(' '));
        assert.ok(r.stderr.includes(`(got '${v}')`), r.stderr);
      }
    }
    const missing = await inProcess(...cmd, `--${opt}`);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, new RegExp(`--${opt} needs a value`));
  });
}

test('a value option followed by another option says it needs a value', () => {
  const r = cli('run', '--profile', '--json', 'examples/');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^gmemkit: --profile needs a value/);
});
