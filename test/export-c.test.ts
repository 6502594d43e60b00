// `gmemkit export c` on the running kernel: every bundled example and conformance scenario (and
// a checker counterexample) is exported, compiled with cc -Wall -Wextra -Werror -O1 and run, and
// its TAP verdict per step equals the linux backend's (`gmemkit run --backend linux`): pass,
// skip (the backend's "unsupported") or fail. A wrong expectation fails in C where it fails on
// the backend. Skips with the reason printed when cc or a usable /dev/kvm is missing.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { linuxBackendFactory } from '../src/cli/kernel-commands.js';
import { cFileName, exportC } from '../src/export/c.js';
import { LinuxBackend } from '../src/linux/linux-backend.js';
import { expandPaths, loadScenarioFile, parseScenario, type Scenario } from '../src/scenario/load.js';
import { runScenario } from '../src/scenario/run.js';

const run = promisify(execFile);
const CFLAGS = ['-Wall', '-Wextra', '-Werror', '-O1'];
const hasCc = spawnSync('cc', ['--version']).status === 0;
const probe = LinuxBackend.probe();
const why = !hasCc ? 'no C compiler (cc) on this machine' : !probe.usable ? `/dev/kvm is not usable here: ${probe.reason}` : undefined;

type Verdict = 'ok' | 'skip' | 'not ok';
interface Program { scenario: Scenario; exe: string }

let dir = '';
before(() => { dir = mkdtempSync(join(tmpdir(), 'gmemkit-export-')); });
after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

/** Write and compile the programs, at most four compilers at a time. */
async function build(scenarios: readonly Scenario[], opts: { kselftest?: boolean; include?: string } = {}): Promise<Program[]> {
  const programs = scenarios.map((scenario, i) => ({ scenario, exe: join(dir, `${opts.kselftest ? 'k' : 'p'}${i}-${cFileName(scenario).replace(/\.c$/, '')}`) }));
  for (const p of programs) writeFileSync(`${p.exe}.c`, exportC(p.scenario, opts));
  const queue = [...programs];
  const worker = async () => {
    for (let p = queue.shift(); p; p = queue.shift()) {
      await run('cc', [...CFLAGS, ...(opts.include ? ['-I', opts.include] : []), '-o', p.exe, `${p.exe}.c`]).catch((e: { stderr?: string }) => {
        throw new Error(`${p.scenario.file}: cc failed:\n${e.stderr ?? String(e)}`);
      });
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return programs;
}

function exec(exe: string): { status: number; stdout: string } {
  const r = spawnSync(exe, [], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status ?? -1, stdout: r.stdout };
}

/** The TAP verdict of every numbered step, checking plan and numbering. */
function tapVerdicts(stdout: string): Verdict[] {
  const plan = /^1\.\.(\d+)$/m.exec(stdout);
  assert.ok(plan, `no TAP plan in:\n${stdout}`);
  const out: Verdict[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^(ok|not ok) (\d+) - /.exec(line);
    if (!m) continue;
    assert.equal(Number(m[2]), out.length + 1, `TAP numbering at: ${line}`);
    out.push(m[1] === 'not ok' ? 'not ok' : / # SKIP /.test(line.replace(/\\#/g, '')) ? 'skip' : 'ok');
  }
  assert.equal(out.length, Number(plan[1]), 'TAP plan and lines');
  return out;
}

/** What `gmemkit run --backend linux` says of every step, profile after profile. */
function linuxVerdicts(s: Scenario): Verdict[] {
  return runScenario(s, { backend: linuxBackendFactory() }).flatMap((r) => r.steps.map((st): Verdict => (
    st.failure !== undefined ? 'not ok' : st.outcome.kind === 'unsupported' ? 'skip' : 'ok')));
}

function sameAsLinux(p: Program): void {
  const { status, stdout } = exec(p.exe);
  const c = tapVerdicts(stdout);
  const linux = linuxVerdicts(p.scenario);
  const differ = c.map((v, i) => (v === linux[i] ? '' : `step ${i + 1}: C ${v}, linux backend ${linux[i]}`)).filter(Boolean);
  assert.deepEqual(differ, [], `${p.scenario.file}:\n${stdout}`);
  assert.equal(c.length, linux.length, p.scenario.file);
  const expected = linux.includes('not ok') ? 1 : /^# SKIP /m.test(stdout) ? 4 : 0;
  assert.equal(status, expected, `${p.scenario.file}: exit ${status}\n${stdout}`);
  if (linux.every((v) => v === 'skip')) assert.equal(status, 4, `${p.scenario.file}: nothing ran, so the program skips`);
}

test('every bundled example and conformance scenario: C verdicts equal the linux backend step by step', async (t) => {
  if (why) return t.skip(why);
  const scenarios = expandPaths(['examples', 'conformance']).map(loadScenarioFile);
  assert.ok(scenarios.length >= 25, `only ${scenarios.length} bundled scenarios`);
  const programs = await build(scenarios);
  let steps = 0, skipped = 0;
  for (const p of programs) {
    sameAsLinux(p);
    const v = linuxVerdicts(p.scenario);
    steps += v.length;
    skipped += v.filter((x) => x === 'skip').length;
  }
  t.diagnostic(`${programs.length} programs, ${steps} steps, ${steps - skipped} run on this kernel, ${skipped} skipped`);
  assert.ok(steps - skipped >= 500, 'most conformance steps run for real');
});

test('a wrong expectation fails in C at the same step as on the linux backend (exit 1)', async (t) => {
  if (why) return t.skip(why);
  // examples/03: the long-term pin keeps the old folio, so the device reads "A", not "Z".
  const text = spawnSync('cat', ['examples/03-punch-leaves-pin-with-stale-data.yaml'], { encoding: 'utf8' }).stdout
    .replace(/(op: pin_read(?:[^\n]*\n){4}\s*expect: \{ data: )"?A"?/, '$1"Z"');
  assert.match(text, /data: "Z"/);
  const s = parseScenario(text, resolve('examples/03-punch-leaves-pin-with-stale-data.yaml'));
  const [p] = await build([s]);
  const { status, stdout } = exec(p!.exe);
  assert.equal(status, 1, stdout);
  assert.match(stdout, /^not ok 11 - pin_read pin=pin offset=0 length=1 # expected 1 bytes of data, got data \[0x41\]/m);
  assert.deepEqual(tapVerdicts(stdout), linuxVerdicts(s));
});

test('a checker counterexample exports, compiles and runs as the linux backend runs it', async (t) => {
  if (why) return t.skip(why);
  const file = join(dir, 'counterexample.yaml');
  const r = spawnSync(process.execPath, ['bin/gmemkit.js', 'check', '--model', 'full', '--mutant', 'no-rollback', '--out', file], { encoding: 'utf8' });
  assert.equal(r.status, 1, r.stderr);
  const s = loadScenarioFile(file);
  assert.ok(s.steps.some((st) => st.op === 'manager_step' && st.args.race_map !== undefined), 'the trace races a GUP-fast pin into the conversion');
  const [p] = await build([s]);
  sameAsLinux(p!);
});

test('--kselftest output compiles and runs against the harness conventions', async (t) => {
  if (why) return t.skip(why);
  const scenarios = ['examples/03-punch-leaves-pin-with-stale-data.yaml', 'examples/01-pinned-page-blocks-conversion.yaml'].map(loadScenarioFile);
  const [pass, skip] = await build(scenarios, { kselftest: true, include: resolve('test/fixtures') });
  let r = exec(pass!.exe);
  assert.equal(r.status, 0, r.stdout);
  assert.match(r.stdout, /^ok 1 - punching_a_pinned_page_leaves_the_pin_with_stale_data$/m);
  r = exec(skip!.exe);
  assert.match(r.stdout, /^ok 1 - a_pinned_page_blocks_conversion_until_it_is_unpinned # SKIP$/m);
  assert.match(r.stdout, /^# SKIP VM type sw_protected is not offered by this kernel/m);
});
