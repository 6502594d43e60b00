// Benchmark: scenario loading and running. (1) Validation must be linear in the number of
// steps: a generated scenario of 10k and of 100k steps is parsed and validated in one process,
// and the ratio of their per-step costs is printed (goal: near 1). (2) The runner's throughput
// on the model with invariants on, start-up included: `gmemkit run` of a 12,000-step scenario
// in a child process, wall time from spawn to exit (goal: at least 20,000 steps/s).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseScenario } from '../src/scenario/load.js';
import { runScenario } from '../src/scenario/run.js';

const HEAD = `name: generated
description: a long scenario for the load benchmark
steps:
  - { op: create_vm, type: sw_protected, as: vm }
  - { op: create_guest_memfd, vm: vm, size: 64K, flags: [MMAP, INIT_SHARED], as: gmem }
  - { op: mmap, fd: gmem, length: 64K, as: map }
`;

/**
 * A scenario of about `steps` steps: rounds of a write, a read checking it, a pin that blocks
 * to-private (EAGAIN + error_offset), unpin, the conversion, SIGBUS on the now-private page,
 * and the way back. Every round names a fresh pin handle, so handle lookups grow with the file.
 */
export function generateScenario(steps: number): string {
  const parts = [HEAD];
  const rounds = Math.ceil((steps - 3) / 9);
  for (let i = 0; i < rounds; i++) {
    const page = (i % 16) * 4;
    parts.push(`  - { op: write, map: map, offset: ${page}K, data: "r${i % 10}" }
  - { op: read, map: map, offset: ${page}K, length: 2, expect: { data: "r${i % 10}" } }
  - { op: pin_user_pages, map: map, offset: ${page}K, length: 4K, longterm: true, as: pin${i} }
  - op: set_memory_attributes2
    fd: gmem
    offset: 0
    size: 64K
    attributes: [PRIVATE]
    expect: { errno: EAGAIN, error_offset: ${page}K }
  - { op: unpin_user_pages, pin: pin${i} }
  - { op: set_memory_attributes2, fd: gmem, offset: ${page}K, size: 4K, attributes: [PRIVATE] }
  - { op: read, map: map, offset: ${page}K, length: 1, expect: { signal: SIGBUS } }
  - { op: set_memory_attributes2, fd: gmem, offset: ${page}K, size: 4K, attributes: [] }
  - { op: guest_read, vm: vm, gpa: 0, length: 1, expect: any }
`);
  }
  return parts.join('');
}

/** CPU time (user + system) of `f`: on a shared machine wall time would measure the neighbours too. */
function time<T>(f: () => T): { value: T; ms: number } {
  const c0 = process.cpuUsage();
  const value = f();
  const c = process.cpuUsage(c0);
  return { value, ms: (c.user + c.system) / 1000 };
}

/** Parse + validate `text`, best of `repeat` runs (the first also warms the JIT). */
function loadCost(text: string, repeat: number): { steps: number; ms: number } {
  let best = Infinity;
  let steps = 0;
  for (let i = 0; i < repeat; i++) {
    const r = time(() => parseScenario(text, 'generated.yaml'));
    best = Math.min(best, r.ms);
    steps = r.value.steps.length;
  }
  return { steps, ms: best };
}

function main(): void {
  const small = generateScenario(10_000);
  const large = generateScenario(100_000);
  loadCost(small, 2); // warm-up
  const a = loadCost(small, 5);
  const heapBefore = process.memoryUsage().heapUsed;
  const b = loadCost(large, 3);
  const heapAfter = process.memoryUsage().heapUsed;
  const rate = (x: { steps: number; ms: number }) => (x.steps / x.ms) * 1000;
  console.log('| scenario | steps | load + validate, CPU ms | steps/s |');
  console.log('|---|---:|---:|---:|');
  console.log(`| 10k | ${a.steps} | ${a.ms.toFixed(0)} | ${rate(a).toFixed(0)} |`);
  console.log(`| 100k | ${b.steps} | ${b.ms.toFixed(0)} | ${rate(b).toFixed(0)} |`);
  console.log(`ratio of per-step cost 100k / 10k = ${(b.ms / b.steps / (a.ms / a.steps)).toFixed(2)} (goal ≤ 1.5: linear)`);
  console.log(`heap after loading 100k steps: ${((heapAfter - heapBefore) / 2 ** 20).toFixed(0)} MiB above the 10k baseline; file ${(large.length / 2 ** 20).toFixed(1)} MiB`);

  // The runner in process (load and run separately), then the CLI end to end.
  const text = generateScenario(12_000);
  const loaded = time(() => parseScenario(text, 'run.yaml'));
  const ran = time(() => runScenario(loaded.value, { invariants: true }));
  const n = loaded.value.steps.length;
  if (!ran.value.every((r) => r.passed)) throw new Error('bench: the generated scenario failed on the model');
  console.log(`\nin process, ${n} steps, invariants on: load ${loaded.ms.toFixed(0)} ms CPU, run ${ran.ms.toFixed(0)} ms CPU (${(n / ran.ms * 1000).toFixed(0)} steps/s)`);
  const dir = mkdtempSync(join(tmpdir(), 'gmemkit-bench-'));
  try {
    const file = join(dir, 'run.yaml');
    writeFileSync(file, text);
    // The child reports its own CPU time at exit: on a busy machine wall time measures the others too.
    const cpuReport = join(dir, 'cpu.cjs');
    writeFileSync(cpuReport, "process.on('exit', () => { const u = process.cpuUsage(); require('fs').writeSync(2, `\\ncpu-ms ${(u.user + u.system) / 1000}\\n`); });\n");
    const cli = fileURLToPath(new URL('../../bin/gmemkit.js', import.meta.url));
    let best = { wall: Infinity, cpu: Infinity };
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const r = spawnSync(process.execPath, ['-r', cpuReport, cli, 'run', file], { encoding: 'utf8', maxBuffer: 1 << 30 });
      const wall = performance.now() - t0;
      if (r.status !== 0) throw new Error(`bench: gmemkit run exited ${r.status}: ${r.stderr.slice(0, 500)}`);
      const cpu = Number(/cpu-ms ([\d.]+)/.exec(r.stderr)?.[1]);
      if (wall < best.wall) best = { wall, cpu };
    }
    console.log(`gmemkit run of ${n} steps (invariants on), spawn to exit: ${best.wall.toFixed(0)} ms wall = ${(n / best.wall * 1000).toFixed(0)} steps/s; ${best.cpu.toFixed(0)} ms CPU = ${(n / best.cpu * 1000).toFixed(0)} steps/s (goal ≥ 20000)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
