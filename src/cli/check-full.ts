// `gmemkit check --model full`: the checker over the full gmemkit model (the same Kernel,
// ModelBackend and Userspace code as `gmemkit run`) for a bounded configuration, optionally
// with a seeded mutant. Prints progress on stderr, a summary or JSON on stdout, the
// counterexample as numbered steps, and writes it as a scenario that `gmemkit run` replays.
import { writeFileSync } from 'node:fs';
import { checkLiveness } from '../checker/engine.js';
import { FullModel } from '../checker/full/model.js';
import { findMutant, MUTANTS } from '../checker/full/mutants.js';
import { counterexampleScenario } from '../checker/full/scenario-writer.js';
import { fullConfigOf, fullSpec, type FullSpec } from '../checker/full/spec.js';
import { HUGEPAGE_PAGES, type FullConfig, type HolderKind } from '../checker/full/world.js';
import type { Counterexample, Progress } from '../checker/types.js';
import { DEFAULT_PROFILE, findProfile, offersNoDirectMap, PROFILES, type Profile } from '../model/profile.js';
import { POLICIES } from '../userspace/policies.js';
import { reported, runSearch, SEARCH_OPTIONS, searchFlags, violationLines, type SearchFlags } from './check-search.js';
import { EXIT, helpText, MAX_MEMORY_MB, parseCommand, progressSink, type CommandSpec } from './args.js';
import { UsageError } from './usage.js';
import { unwritable } from './out-file.js';
import { traceCounterexample } from '../trace/scenario-trace.js';

const KINDS: readonly HolderKind[] = ['odirect', 'io_uring', 'vfio'];
const CONVERTING = PROFILES.filter((p) => p.conversion === 'gmem-ioctl').map((p) => p.name);
const MAX_PAGES = 3;
const HUGE_PROFILES = PROFILES.filter((p) => p.hugetlb).map((p) => p.name);

/** What a run uses when an option is absent (the help prints these same values). */
export const FULL_DEFAULTS = {
  vmType: 'sw_protected', pages: 2, holders: ['odirect'] as readonly HolderKind[], requests: 1,
  profile: DEFAULT_PROFILE.name, policy: 'retry', maxRetries: 2, out: 'counterexample.yaml',
} as const;

export const FULL_SPEC: CommandSpec = {
  name: 'check --model full',
  synopsis: 'check --model full [options]',
  summary: 'Exhaustive model checking of the full gmemkit model (the Kernel, ModelBackend and userspace\n'
    + 'code of gmemkit run) for a bounded configuration, optionally with a seeded mutant.',
  options: [
    { name: 'model', arg: 'full', kind: { type: 'string', choices: ['full'] }, help: "'full' here; 'gmemkit check --help' for --model reference" },
    { name: 'vm-type', arg: 'T', kind: { type: 'string', choices: ['sw_protected', 'snp', 'tdx'] }, default: FULL_DEFAULTS.vmType, help: 'sw_protected (content kept across conversions), snp or tdx (content destroyed)' },
    { name: 'pages', kind: { type: 'int', min: 1, max: MAX_PAGES }, default: FULL_DEFAULTS.pages, help: 'guest_memfd pages' },
    { name: 'hugepage-pages', arg: 'K', kind: { type: 'int', min: 2, max: Number.MAX_SAFE_INTEGER }, defaultText: `${HUGEPAGE_PAGES} with a HugeTLB profile`, help: `pages per huge page of a HugeTLB profile's guest_memfd (${HUGE_PROFILES.join(', ')}):\na scaled-down huge page, a power of two >= 2 that divides --pages` },
    { name: 'holders', arg: 'K,K', kind: { type: 'string' }, default: FULL_DEFAULTS.holders.join(','), help: `pin holders by kind, at most 3: ${KINDS.join(', ')} ('' for none)` },
    { name: 'requests', arg: 'C', kind: { type: 'int', min: 0, max: 2 }, default: FULL_DEFAULTS.requests, help: 'conversion requests the guest may make' },
    { name: 'profile', arg: 'P', kind: { type: 'string', choices: CONVERTING }, default: FULL_DEFAULTS.profile, help: `kernel profile with a guest_memfd conversion ioctl: ${CONVERTING.join(', ')}` },
    { name: 'policy', arg: 'P', kind: { type: 'string', choices: POLICIES.map((p) => p.name) }, default: FULL_DEFAULTS.policy, help: `manager policy: ${POLICIES.map((p) => p.name).join(', ')}` },
    { name: 'max-retries', arg: 'R', kind: { type: 'int', min: 0, max: 8 }, default: FULL_DEFAULTS.maxRetries, help: "the policy's retry budget (the default keeps traces short)" },
    { name: 'mutant', arg: 'NAME', kind: { type: 'string', choices: MUTANTS.map((m) => m.name) }, help: `a seeded bug: ${MUTANTS.map((m) => m.name).join(', ')}\n(PLANTED ones exist only in the checker: their scenario does not replay)` },
    { name: 'dfs', kind: { type: 'bool' }, help: 'iterative depth-first search (default breadth-first: shortest counterexample);\neach open state holds a world (breadth-first: the whole frontier)' },
    { name: 'liveness', kind: { type: 'bool' }, help: "check 'every guest request completes' under weak fairness per process" },
    { name: 'max-memory', arg: 'MB', kind: { type: 'positive', max: MAX_MEMORY_MB }, help: 'stop with the statistics so far once the search needs more than MB (exit 3)' },
    ...SEARCH_OPTIONS,
    { name: 'json', kind: { type: 'bool' }, help: 'print the result as JSON (no progress on stderr)' },
    { name: 'out', arg: 'FILE', kind: { type: 'string' }, default: FULL_DEFAULTS.out, help: 'where to write the counterexample scenario, checked writable before the search (--all-violations: FILE.<property>.yaml per property)' },
    { name: 'trace', arg: 'FILE', kind: { type: 'string' }, help: 'write the counterexample, replayed, as a Chrome trace-event JSON (Perfetto UI, gmemkit view)' },
  ],
  notes: `Properties, on every edge: invariants I1-I13 around every kernel call, plus: a failed conversion changes no
attribute; neither the host nor a device observes data the guest wrote while private; a
private page keeps what the guest expects; with cooperative userspace every request
completes (a request that fails is a violation); on NO_DIRECT_MAP memory (a profile that offers
the flag, e.g. no-direct-map) nothing is ever pinned and no conversion is ever blocked.
Progress goes to stderr, only when it is a terminal. If the counterexample cannot be written
after all, the summary is printed, then the error, and the exit status stays 1.`,
};

export const FULL_USAGE = helpText(FULL_SPEC);

export interface FullFlags { config: FullConfig; spec: FullSpec; mutant?: string; dfs: boolean; liveness: boolean; maxMemoryMB?: number; json: boolean; out: string; trace?: string; search: SearchFlags }

/** The parsed options, 'help', or a UsageError naming the option and its allowed values. */
export function parseFullConfig(argv: readonly string[]): FullFlags | 'help' {
  const v = parseCommand(FULL_SPEC, argv);
  if (v === 'help') return 'help';
  const mutantName = v.string('mutant');
  const mutant = mutantName === undefined ? undefined : findMutant(mutantName)!;
  const holders = (v.has('holders') ? v.string('holders')! : mutant?.holders?.join(',') ?? v.string('holders')!).split(',').filter((x) => x !== '');
  for (const h of holders) if (!(KINDS as readonly string[]).includes(h)) throw new UsageError(`--holders: unknown kind '${h}'; allowed: ${KINDS.join(', ')}`);
  if (holders.length > 3) throw new UsageError(`--holders: at most 3 holders (got ${holders.length})`);
  const vmType = v.string('vm-type') as FullSpec['vmType'];
  const profile = mutant?.profile ?? findProfile(v.string('profile')!)!;
  if (profile.noDirectMap && !offersNoDirectMap(profile, vmType)) {
    throw new UsageError(`--vm-type ${vmType}: profile ${profile.name} offers NO_DIRECT_MAP only for ${profile.noDirectMap.vmTypes.join(', ')} VMs (kernel-semantics.md §1.11, §7 item 7)`);
  }
  const hugepagePages = hugePagesOption(profile, mutant?.name, v.number('pages')!, v.number('hugepage-pages'));
  const spec: FullSpec = {
    vmType, pages: v.number('pages')!, holders: holders as HolderKind[],
    requests: v.number('requests')!, profile: v.string('profile')!, policy: v.string('policy')!,
    maxRetries: v.number('max-retries')!, ...(mutant ? { mutant: mutant.name } : {}),
    ...(hugepagePages ? { hugepagePages } : {}),
  };
  const config = fullConfigOf(spec);
  const dfs = v.bool('dfs');
  const liveness = v.bool('liveness');
  if (dfs && liveness) throw new UsageError('--dfs and --liveness exclude each other');
  const search = searchFlags(v, dfs, liveness);
  const maxMemoryMB = v.number('max-memory');
  return { config, spec, search, ...(mutant ? { mutant: mutant.name } : {}), dfs, liveness, ...(maxMemoryMB !== undefined ? { maxMemoryMB } : {}), json: v.bool('json'), out: v.string('out')!, ...(v.string('trace') !== undefined ? { trace: v.string('trace')! } : {}) };
}

/**
 * --hugepage-pages against the profile and --pages: the pages per huge page of a HugeTLB world
 * (the default when absent), undefined without huge pages; a UsageError naming the allowed values.
 */
function hugePagesOption(profile: Profile, mutant: string | undefined, pages: number, given: number | undefined): number | undefined {
  const which = mutant ? `--mutant ${mutant}` : `--profile ${profile.name}`;
  if (!profile.hugetlb) {
    if (given !== undefined) throw new UsageError(`--hugepage-pages: ${which} has no huge pages; it goes with a HugeTLB profile (--profile ${HUGE_PROFILES.join(', ')}) or mutant (--mutant ${MUTANTS.filter((m) => m.profile?.hugetlb).map((m) => m.name).join(', ')})`);
    return undefined;
  }
  const k = given ?? HUGEPAGE_PAGES;
  if (k < 2 || !Number.isInteger(Math.log2(k))) throw new UsageError(`--hugepage-pages must be a power of two >= 2 that divides --pages (got ${k})`);
  if (pages % k === 0) return k;
  const fitting = Array.from({ length: MAX_PAGES }, (_x, i) => i + 1).filter((n) => n % k === 0);
  const sizes: number[] = [];
  for (let x = 2; x <= pages; x *= 2) if (pages % x === 0) sizes.push(x);
  throw new UsageError(`--pages ${pages}: ${which} backs the guest_memfd with whole huge pages of ${k} pages (--hugepage-pages ${k}), which do not divide it; `
    + `allowed: --pages ${fitting.length ? fitting.join(', ') : `none up to ${MAX_PAGES}`}${sizes.length ? `, or --hugepage-pages ${sizes.join(', ')}` : ''}`);
}

export async function checkFullCommand(argv: string[]): Promise<number> {
  let f;
  try {
    f = parseFullConfig(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`gmemkit check: ${e.message}\nRun 'gmemkit check --model full --help' for the options.\n`);
    return EXIT.USAGE;
  }
  if (f === 'help') {
    process.stdout.write(`${FULL_USAGE}\n`);
    return EXIT.OK;
  }
  const bad = unwritable(f.out) ?? (f.trace === undefined ? undefined : unwritable(f.trace)?.replace(/^--out/, '--trace'));
  if (bad) {
    process.stderr.write(`gmemkit check: ${bad}; nothing was searched\n`);
    return EXIT.USAGE;
  }
  const model = new FullModel(f.config);
  const sink = progressSink(f.json);
  const onProgress = (p: Progress): void => {
    sink?.(`  ${p.states.toLocaleString('en')} states, ${Math.round(p.statesPerSecond).toLocaleString('en')} states/s, depth ${p.depth}, queue ${p.queue.toLocaleString('en')}, ${(p.memoryBytes / 2 ** 20).toFixed(0)} MB`);
  };
  const opts = { search: f.dfs ? 'dfs' as const : 'bfs' as const, ...(sink ? { onProgress } : {}), ...(f.maxMemoryMB ? { maxMemoryMB: f.maxMemoryMB } : {}) };
  const r = f.liveness ? checkLiveness(model, opts) : await runSearch(model, () => fullSpec(f.spec), f.search, opts);
  const files: { property: string; file: string }[] = [];
  let writeError: string | undefined;
  const ces = reported(r);
  ces.forEach((ce: Counterexample, i) => {
    const file = r.violations ? propertyFile(f.out, ce.property) : f.out;
    const text = counterexampleScenario(f.config, ce.steps.map((s) => ({ process: s.process, action: s.action, params: s.params })), ce.property, ce.message);
    try {
      writeFileSync(file, text);
      files.push({ property: ce.property, file });
    } catch (e) {
      writeError ??= `--out ${file}: cannot write the counterexample scenario (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); the trace is above`;
    }
    if (i === 0 && f.trace !== undefined) writeError ??= traceCounterexample(text, file, f.trace);
  });
  const written = r.violations ? undefined : files[0]?.file;
  if (f.json) {
    const scenarios = r.violations ? { counterexampleScenarios: files } : { counterexampleScenario: written ?? null };
    process.stdout.write(`${JSON.stringify({ ...r, mutant: f.mutant ?? null, ...scenarios, ...(writeError ? { counterexampleError: writeError } : {}) }, null, 2)}\n`);
  } else {
    const out = [
      `model:     ${model.name}${f.mutant ? `, mutant ${f.mutant}` : ''}`,
      `search:    ${r.search}${r.workers ? ` on ${r.workers} worker threads` : ''}${r.violations ? ', every violated property' : ''}, ${r.states.toLocaleString('en')} states, ${r.edges.toLocaleString('en')} edges, depth ${r.maxDepth}, ${r.seconds.toFixed(1)} s`,
    ];
    if (r.status === 'ok') out.push('result:    no violation (every property holds in every reachable state)');
    else if (r.status === 'incomplete') out.push(`result:    INCOMPLETE: ${r.stopReason}`);
    if (ces.length) out.push(...violationLines(r));
    const replay = (file: string) => (f.config.plant ? `${file} (a planted bug: the model has no profile for it, so it does not replay)` : `${file} (replay: gmemkit run ${file})`);
    if (written) out.push(`scenario:  ${replay(written)}`);
    else if (files.length) out.push('scenarios:', ...files.map((x) => `  ${x.property}: ${replay(x.file)}`));
    process.stdout.write(`${out.join('\n')}\n`);
  }
  if (writeError) process.stderr.write(`gmemkit check: ${writeError}\n`);
  return r.status === 'ok' ? EXIT.OK : r.status === 'violation' ? EXIT.FAILED : EXIT.INCOMPLETE;
}

/** --all-violations: the scenario file of one property, `FILE` with the property's slug before its extension. */
export function propertyFile(out: string, property: string): string {
  const full = property.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  // Long names are cut at a word boundary.
  const slug = full.length <= 48 ? full : full.slice(0, 49).replace(/-[^-]*$/, '');
  const dot = out.lastIndexOf('.');
  return dot > out.lastIndexOf('/') ? `${out.slice(0, dot)}.${slug}${out.slice(dot)}` : `${out}.${slug}`;
}
