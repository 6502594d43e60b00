// Benchmark of the simulator: a TDX guest boot (all of RAM accepted as private in 2 MiB MapGPA
// requests, then the swiotlb given back) of 4 GiB and of 1 TiB, without holders, side by side in
// one run: the model's CPU time per request, and their ratio (goal <= 1.5: the cost follows the
// requests, not the guest's size). The 4 GiB boot runs several times first (JIT warm-up) and its
// median is taken. Holders that pin all of RAM (VFIO) cost per page in the model until its
// interval refactor lands, so they are measured separately on small guests.
import { simulate, SIM_DEFAULTS, type SimParams } from '../src/sim/simulate.js';

const GiB = 2 ** 30;
const boot = (guestSize: number, holders: SimParams['holders'] = []): SimParams => ({ ...SIM_DEFAULTS, guestSize, vcpus: 4, bounces: 0, holders });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const small: number[] = [];
for (let i = 0; i < 7; i++) small.push(simulate(boot(4 * GiB)).microsecondsPerRequest);
const big = simulate(boot(1024 * GiB));
const s = median(small.slice(2));
console.log('| guest | requests | µs per request |');
console.log('|---|---:|---:|');
console.log(`| 4 GiB | ${simulate(boot(4 * GiB)).requests.toLocaleString('en')} | ${s.toFixed(1)} |`);
console.log(`| 1 TiB | ${big.requests.toLocaleString('en')} | ${big.microsecondsPerRequest.toFixed(1)} |`);
console.log(`ratio 1 TiB / 4 GiB = ${(big.microsecondsPerRequest / s).toFixed(2)} (goal ≤ 1.5); the 1 TiB boot took ${big.modelSeconds.toFixed(1)} s`);

console.log('\nwith the default holders (VFIO maps all of RAM: per page in the model today), per request:');
console.log('| guest | holders | requests | µs per request |');
console.log('|---|---|---:|---:|');
for (const g of [1, 4]) {
  for (const holders of [['io_uring', 'odirect'], ['vfio', 'io_uring', 'odirect']] as SimParams['holders'][]) {
    const m = simulate({ ...boot(g * GiB, holders), bounces: 1000 });
    console.log(`| ${g} GiB | ${holders.join(', ')} | ${m.requests.toLocaleString('en')} | ${m.microsecondsPerRequest.toFixed(1)} |`);
  }
}
