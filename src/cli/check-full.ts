// `gmemkit check --model full`: the checker over the full gmemkit model (the same Kernel,
// ModelBackend and Userspace code as `gmemkit run`) for a bounded configuration, optionally
// with a seeded mutant. Prints progress on stderr, a summary or JSON on stdout, the
// counterexample as numbered steps, and writes it as a scenario that `gmemkit run` replays.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { check, checkLiveness } from '../checker/engine.js';
import { FullModel } from '../checker/full/model.js';
import { findMutant, MUTANTS } from '../checker/full/mutants.js';
import { counterexampleScenario } from '../checker/full/scenario-writer.js';
import type { FullConfig, HolderKind } from '../checker/full/world.js';
import { formatCounterexample } from '../checker/trace.js';
import type { Progress } from '../checker/types.js';
import { findProfile, PROFILES } from '../model/profile.js';
import { findPolicy, POLICIES } from '../userspace/policies.js';

const KINDS: readonly HolderKind[] = ['odirect', 'io_uring', 'vfio'];
const CONVERTING = PROFILES.filter((p) => p.conversion === 'gmem-ioctl').map((p) => p.name);

export const FULL_USAGE = `usage: gmemkit check --model full [--vm-type T] [--pages N] [--holders K,K] [--requests C]
                     [--profile P] [--policy P] [--max-retries R] [--mutant NAME]
                     [--dfs | --liveness] [--max-memory MB] [--json] [--out FILE]

  --vm-type T      sw_protected (content kept across conversions; default), snp or tdx (content destroyed)
  --pages N        guest_memfd pages, 1..3 (default 2)
  --holders K,K    pin holders by kind: ${KINDS.join(', ')} (default odirect; '' for none)
  --requests C     conversion requests the guest may make, 0..2 (default 1)
  --profile P      kernel profile with a guest_memfd conversion ioctl: ${CONVERTING.join(', ')} (default ipc-v8)
  --policy P       manager policy: ${POLICIES.map((p) => p.name).join(', ')} (default retry)
  --max-retries R  the policy's retry budget, 0..8 (default 2: keeps traces short)
  --mutant NAME    a seeded bug: ${MUTANTS.map((m) => m.name).join(', ')}
                   (PLANTED ones exist only in the checker: their scenario does not replay)
  --dfs            iterative depth-first search (default breadth-first: shortest counterexample);
                   slower here, since a state is rebuilt by replaying its path and DFS paths are long
  --liveness       check 'every guest request completes' under weak fairness per process
  --max-memory MB  stop with the statistics so far once the search needs more than MB
  --json           print the result as JSON
  --out FILE       where to write the counterexample scenario (default counterexample.yaml)

Properties, on every edge: invariants I1-I11 around every kernel call, plus: a failed conversion changes no
attribute; neither the host nor a device observes data the guest wrote while private; a
private page keeps what the guest expects; with cooperative userspace every request
completes (a request that fails is a violation).
exit status: 0 no violation, 1 violation found, 2 bad usage, 3 search incomplete`;

class FlagError extends Error {}

function intFlag(name: string, v: string | undefined, dflt: number, lo: number, hi: number): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v) || Number(v) < lo || Number(v) > hi) throw new FlagError(`--${name} must be an integer in ${lo}..${hi} (got '${v}')`);
  return Number(v);
}

export function parseFullConfig(argv: string[]): { config: FullConfig; mutant?: string; dfs: boolean; liveness: boolean; maxMemoryMB?: number; json: boolean; out: string } {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv, strict: true, allowPositionals: false,
      options: {
        model: { type: 'string' }, 'vm-type': { type: 'string' }, pages: { type: 'string' }, holders: { type: 'string' }, requests: { type: 'string' },
        profile: { type: 'string' }, policy: { type: 'string' }, 'max-retries': { type: 'string' }, mutant: { type: 'string' },
        dfs: { type: 'boolean' }, liveness: { type: 'boolean' }, 'max-memory': { type: 'string' }, json: { type: 'boolean' }, out: { type: 'string' }, help: { type: 'boolean' },
      },
    });
  } catch (e) {
    throw new FlagError((e as Error).message.replace(/\. To specify.*$/s, ''));
  }
  const v = parsed.values;
  const mutant = v.mutant === undefined ? undefined : findMutant(v.mutant);
  if (v.mutant !== undefined && !mutant) throw new FlagError(`--mutant must be one of ${MUTANTS.map((m) => m.name).join(', ')} (got '${v.mutant}')`);
  const holders = (v.holders ?? mutant?.holders?.join(',') ?? 'odirect').split(',').filter((x) => x !== '');
  for (const h of holders) if (!(KINDS as readonly string[]).includes(h)) throw new FlagError(`--holders: unknown kind '${h}'; allowed: ${KINDS.join(', ')}`);
  if (holders.length > 3) throw new FlagError('--holders: at most 3 holders');
  const profile = findProfile(v.profile ?? 'ipc-v8');
  if (!profile || !CONVERTING.includes(profile.name)) throw new FlagError(`--profile must be one of ${CONVERTING.join(', ')} (got '${v.profile}')`);
  const basePolicy = findPolicy(v.policy ?? 'retry');
  if (!basePolicy) throw new FlagError(`--policy must be one of ${POLICIES.map((p) => p.name).join(', ')} (got '${v.policy}')`);
  const vmType = v['vm-type'] ?? 'sw_protected';
  if (vmType !== 'sw_protected' && vmType !== 'snp' && vmType !== 'tdx') throw new FlagError(`--vm-type must be one of sw_protected, snp, tdx (got '${vmType}')`);
  const config: FullConfig = {
    vmType,
    pages: intFlag('pages', v.pages, 2, 1, 3),
    holders: holders as HolderKind[],
    requests: intFlag('requests', v.requests, 1, 0, 2),
    profile: mutant?.profile ?? profile,
    policy: { ...basePolicy, maxRetries: intFlag('max-retries', v['max-retries'], 2, 0, 8) },
    fence: mutant?.fence ?? true,
    waitForIo: mutant?.waitForIo ?? true,
    ...(mutant?.plant ? { plant: mutant.plant } : {}),
  };
  const maxMemoryMB = v['max-memory'] === undefined ? undefined : intFlag('max-memory', v['max-memory'], 0, 1, 1 << 20);
  if (v.dfs && v.liveness) throw new FlagError('--dfs and --liveness exclude each other');
  return { config, ...(mutant ? { mutant: mutant.name } : {}), dfs: v.dfs ?? false, liveness: v.liveness ?? false, ...(maxMemoryMB ? { maxMemoryMB } : {}), json: v.json ?? false, out: v.out ?? 'counterexample.yaml' };
}

export async function checkFullCommand(argv: string[]): Promise<number> {
  if (argv.includes('--help')) {
    process.stdout.write(`${FULL_USAGE}\n`);
    return 0;
  }
  let f;
  try {
    f = parseFullConfig(argv);
  } catch (e) {
    if (!(e instanceof FlagError)) throw e;
    process.stderr.write(`gmemkit check: ${e.message}\n${FULL_USAGE}\n`);
    return 2;
  }
  const model = new FullModel(f.config);
  const onProgress = (p: Progress): void => {
    process.stderr.write(`  ${p.states.toLocaleString('en')} states, ${Math.round(p.statesPerSecond).toLocaleString('en')} states/s, depth ${p.depth}, queue ${p.queue.toLocaleString('en')}, ${(p.memoryBytes / 2 ** 20).toFixed(0)} MB\n`);
  };
  const r = (f.liveness ? checkLiveness : check)(model, { search: f.dfs ? 'dfs' : 'bfs', onProgress, ...(f.maxMemoryMB ? { maxMemoryMB: f.maxMemoryMB } : {}) });
  let written: string | undefined;
  if (r.counterexample) {
    const ce = r.counterexample;
    writeFileSync(f.out, counterexampleScenario(f.config, ce.steps.map((s) => ({ process: s.process, action: s.action, params: s.params })), ce.property, ce.message));
    written = f.out;
  }
  if (f.json) {
    process.stdout.write(`${JSON.stringify({ ...r, mutant: f.mutant ?? null, counterexampleScenario: written ?? null }, null, 2)}\n`);
  } else {
    const out = [
      `model:     ${model.name}${f.mutant ? `, mutant ${f.mutant}` : ''}`,
      `search:    ${r.search}, ${r.states.toLocaleString('en')} states, ${r.edges.toLocaleString('en')} edges, depth ${r.maxDepth}, ${r.seconds.toFixed(1)} s`,
    ];
    if (r.status === 'ok') out.push('result:    no violation (every property holds in every reachable state)');
    else if (r.status === 'incomplete') out.push(`result:    INCOMPLETE: ${r.stopReason}`);
    else {
      out.push(`result:    VIOLATION`, ...formatCounterexample(r.counterexample!));
      out.push(f.config.plant ? `scenario:  ${written} (a planted bug: the model has no profile for it, so it does not replay)` : `scenario:  ${written} (replay: gmemkit run ${written})`);
    }
    process.stdout.write(`${out.join('\n')}\n`);
  }
  return r.status === 'ok' ? 0 : r.status === 'violation' ? 1 : 3;
}

