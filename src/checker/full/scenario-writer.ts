// Turns a counterexample of the full model into a scenario file that `gmemkit run` replays:
// the same world set up with scenario ops, one step per action of the trace (manager actions
// as request_start / manager_step), and the property the last step breaks as its expectation.
// It replays the trace in a World to learn the bytes written and the handles created.
import { stringify } from 'yaml';
import type { EdgeLabel } from '../types.js';
import { GMEM_FLAGS } from '../../model/abi.js';
import { hugePagesOf, SEC, World, worldGmemFlags, type Action, type FullConfig } from './world.js';

const K = (page: number) => `${page * 4}K`;

/** The Action an engine trace step stands for (inverse of actionLabel). */
export function actionOf(l: EdgeLabel): Action {
  const p = l.params as Record<string, number | string>;
  if (l.process === 'host') return { who: 'host', what: l.action as 'read', page: p.page as number };
  if (l.process.startsWith('holder ')) {
    const h = Number(l.process.slice(7));
    return l.action === 'pin' ? { who: 'holder', h, what: 'pin', page: p.page as number } : { who: 'holder', h, what: l.action as 'complete' };
  }
  if (l.process === 'guest') {
    return l.action === 'request'
      ? { who: 'guest', what: 'request', lo: p.lo as number, hi: p.hi as number, to: p.to as 'private' }
      : { who: 'guest', what: l.action as 'write', page: p.page as number };
  }
  return l.action === 'step' ? { who: 'vmm', what: 'step' } : { who: 'vmm', what: 'step', race: { h: p.holder as number, page: p.page as number } };
}

export function counterexampleScenario(config: FullConfig, labels: readonly EdgeLabel[], property: string, message: string): string {
  const w = new World(config);
  w.backend.checking = true;
  const steps: Record<string, unknown>[] = [
    { op: 'create_vm', type: config.vmType ?? 'sw_protected', as: 'vm' },
    gmemStep(config),
    { op: 'set_user_memory_region2', vm: 'vm', slot: 0, guest_phys_addr: 0, memory_size: K(config.pages), guest_memfd: 'gmem' },
    { op: 'mmap', fd: 'gmem', length: K(config.pages), as: 'ram' },
  ];
  const current: (string | undefined)[] = config.holders.map(() => undefined);
  const race: (string | undefined)[] = config.holders.map(() => undefined);
  let pins = 0;
  let requests = 0;
  let request = '';
  const actions = labels.map(actionOf);
  actions.forEach((a, i) => {
    const last = i === actions.length - 1;
    const step = stepFor(a);
    step.expect = 'any';
    steps.push(step);
    w.apply(a);
    // The last step's expectation: every invariant it breaks (the trace names the first only).
    if (last) step.expect = lastExpectation(a, [message, ...w.violations.map((v) => v.message)].join('; '));
  });
  return stringify({
    name: `counterexample: ${property}`,
    description: `Found by gmemkit check (breadth-first, shortest). The last step breaks: ${message}\nReplay with: gmemkit run THIS_FILE`,
    profile: config.profile.name,
    ...(config.fence && config.waitForIo ? {} : { manager: { fence: config.fence, wait_for_io: config.waitForIo } }),
    steps,
  }, { lineWidth: 0 });

  function stepFor(a: Action): Record<string, unknown> {
    switch (a.who) {
      case 'host':
        if (a.what === 'read') return { op: 'read', map: 'ram', offset: K(a.page), length: 1 };
        if (a.what === 'store') return { op: 'write', map: 'ram', offset: K(a.page), data: 'P' };
        if (a.what === 'zap') return { op: 'madvise', map: 'ram', offset: K(a.page), length: '4K', advice: 'DONTNEED' };
        if (a.what === 'munmap') return { op: 'munmap', map: 'ram', offset: K(a.page), length: '4K' };
        if (a.what === 'fallocate') return { op: 'fallocate', fd: 'gmem', mode: ['KEEP_SIZE'], offset: K(a.page), length: '4K' };
        return { op: 'fallocate', fd: 'gmem', mode: ['KEEP_SIZE', 'PUNCH_HOLE'], offset: K(a.page), length: K(a.what === 'punch-huge' ? hugePagesOf(config) : 1) };
      case 'holder': {
        const kind = config.holders[a.h]!;
        if (a.what === 'pin') {
          const as = `h${a.h}_${++pins}`;
          current[a.h] = as;
          if (kind === 'odirect') return { op: 'odirect_read', map: 'ram', offset: K(a.page), length: '4K', data: 'P', as };
          if (kind === 'io_uring') return { op: 'io_uring_register_buffers', map: 'ram', offset: K(a.page), length: '4K', as };
          return { op: 'vfio_dma_map', map: 'ram', offset: K(a.page), length: '4K', iova: 0, as };
        }
        if (a.what === 'complete' && race[a.h]) { const pin = race[a.h]; race[a.h] = undefined; return { op: 'unpin_user_pages', pin }; }
        if (a.what === 'complete') return { op: 'io_complete', io: current[a.h] };
        if (a.what === 'unpin') {
          if (race[a.h]) { const pin = race[a.h]; race[a.h] = undefined; return { op: 'unpin_user_pages', pin }; }
          return { op: kind === 'io_uring' ? 'io_uring_unregister_buffers' : 'vfio_dma_unmap', [kind === 'io_uring' ? 'ring' : 'dma']: current[a.h] };
        }
        const write = a.what === 'dma-write';
        if (race[a.h]) return write ? { op: 'pin_write', pin: race[a.h], data: 'P' } : { op: 'pin_read', pin: race[a.h], length: 1 };
        return write ? { op: 'dma_write', dma: current[a.h], data: 'P' } : { op: 'dma_read', dma: current[a.h], length: 1 };
      }
      case 'guest':
        if (a.what === 'request') {
          request = `req${++requests}`;
          return { op: 'request_start', vm: 'vm', gpa: K(a.lo), size: K(a.hi - a.lo + 1), to: a.to, policy: config.policy.name, max_retries: config.policy.maxRetries, as: request };
        }
        if (a.what === 'write') return { op: 'guest_write', vm: 'vm', gpa: K(a.page), data: w.attr(a.page) === 'private' ? 'S' : 'P' };
        return { op: 'guest_read', vm: 'vm', gpa: K(a.page), length: 1 };
      case 'vmm': {
        if (!a.race) return { op: 'manager_step', request };
        const as = `race${a.race.h}`;
        race[a.race.h] = as;
        return { op: 'manager_step', request, race_map: 'ram', race_offset: K(a.race.page), race_longterm: config.holders[a.race.h] !== 'odirect', as };
      }
    }
  }
}

/**
 * The world's guest_memfd (world.ts worldGmemFlags), its flags by name; with huge pages the
 * scaled-down huge page as `hugepage_pages` (4 KiB pages per huge page; the model takes any power of two).
 */
function gmemStep(config: FullConfig): Record<string, unknown> {
  const huge = hugePagesOf(config);
  const flags = Object.entries(GMEM_FLAGS).filter(([, bit]) => (worldGmemFlags(config) & bit) !== 0n).map(([name]) => name);
  return { op: 'create_guest_memfd', vm: 'vm', size: K(config.pages), flags, ...(huge ? { hugepage_pages: huge } : {}), as: 'gmem' };
}

/** What the last step shows: the broken kernel invariants, or the manager's failing property. */
function lastExpectation(a: Action, message: string): unknown {
  const invariants = [...new Set([...message.matchAll(/\b(I\d+) /g)].map((m) => m[1]!))];
  if (invariants.length) return { any: true, violations: invariants };
  if (/failed although userspace is cooperative/.test(message)) return { errno: 'EAGAIN' };
  if (/observed guest-private data/.test(message)) return { data: String.fromCharCode(SEC) };
  const lost = /reads (\d+)/.exec(message);
  if (lost && a.who === 'guest') return { bytes: [Number(lost[1])] };
  return 'any';
}

