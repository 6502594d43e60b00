// The world the full-model checker explores: one VM with one guest_memfd of N pages bound at
// GPA 0 and mapped by the VMM, H pin holders of given kinds, a guest that makes up to C
// conversion requests, and the conversion manager with a policy, all driven through the same
// Kernel, ModelBackend and Userspace code as `gmemkit run`. Where the profile has huge-page
// decisions the guest_memfd is HugeTLB with huge pages of K base pages (a scaled-down huge page,
// `hugepagePages`). A successor's world is a clone of its parent's (clone.ts) with one action
// applied, so no state is ever copied by hand.
// Content is abstracted as in the reference protocol: ZERO, PUB (host-visible data) and SEC
// (what the guest wrote while the page was private); ghost state tracks what the guest expects.
import { ModelBackend } from '../../backend/model-backend.js';
import { GMEM_FLAGS, hugetlbFlags, MAP_FLAGS, PAGE_SIZE, PROT, VM_TYPES } from '../../model/abi.js';
import { gmemFolio } from '../../model/gmem.js';
import { INVARIANTS } from '../../model/invariants.js';
import { offersNoDirectMap, type Profile } from '../../model/profile.js';
import type { Holder } from '../../userspace/holders.js';
import type { ODirectIo } from '../../userspace/holders.js';
import type { ConversionTask } from '../../userspace/manager.js';
import type { Policy } from '../../userspace/policies.js';
import { Userspace } from '../../userspace/userspace.js';
import { constantsOf, encodeGraph } from './canon.js';
import { Cloner } from './clone.js';
import type { Plant } from './mutants.js';

export type HolderKind = 'odirect' | 'io_uring' | 'vfio';
export const PUB = 0x50; // 'P'
export const SEC = 0x53; // 'S'

export interface FullConfig {
  /** The VM type (sw_protected keeps content across conversions; snp and tdx destroy it). */
  readonly vmType?: 'sw_protected' | 'snp' | 'tdx';
  readonly pages: number;
  readonly holders: readonly HolderKind[];
  readonly requests: number;
  readonly profile: Profile;
  readonly policy: Policy;
  readonly fence: boolean;
  readonly waitForIo: boolean;
  /**
   * Pages per huge page of the guest_memfd (a scaled-down huge page, a power of two >= 2 that
   * divides `pages`), used when the profile has HugeTLB decisions (default HUGEPAGE_PAGES).
   */
  readonly hugepagePages?: number;
  /** A planted bug (mutants.ts), installed on the world's kernel before setup. */
  readonly plant?: Plant;
}

/** The checker's own properties (besides I1–I13), as the names its violations carry. */
export const OWN_PROPERTIES = {
  failedChangesNothing: 'a failed conversion changes no attribute',
  cooperativeCompletes: 'with cooperative userspace every request completes',
  hostNeverObserves: 'the host never observes guest-private data',
  deviceNeverObserves: 'no device observes guest-private data',
  contentKept: 'a private page keeps what the guest expects',
  noDirectMapUnpinned: 'NO_DIRECT_MAP guest memory is never pinned',
  noDirectMapUnblocked: 'no conversion of NO_DIRECT_MAP guest memory is blocked',
} as const;

/** Every property the full model checks, in report order: I1–I13, then the checker's own. */
export const PROPERTIES: readonly string[] = [
  ...Object.entries(INVARIANTS).map(([name, title]) => `${name} ${title}`),
  ...Object.values(OWN_PROPERTIES),
];

/** One property broken by one action. */
export interface Violation {
  readonly property: string;
  readonly message: string;
}

/** Pages per huge page when a HugeTLB world does not say (the smallest huge page: 2 base pages). */
export const HUGEPAGE_PAGES = 2;

/** The guest_memfd's pages per huge page: 0 when the profile has no HugeTLB decisions (no huge pages). */
export function hugePagesOf(config: FullConfig): number {
  return config.profile.hugetlb ? config.hugepagePages ?? HUGEPAGE_PAGES : 0;
}

/**
 * The world's guest_memfd flags: MMAP | INIT_SHARED, NO_DIRECT_MAP where the profile offers
 * it for the VM type (DMR, kernel-semantics.md §1.11): GUP then refuses the memory and the
 * holders fall back to bounce buffers; HUGETLB and its huge page size where the profile has
 * huge pages (kernel-semantics.md §2.3).
 */
export function worldGmemFlags(config: FullConfig): bigint {
  const ndm = offersNoDirectMap(config.profile, config.vmType ?? 'sw_protected');
  const huge = hugePagesOf(config);
  return GMEM_FLAGS.MMAP | GMEM_FLAGS.INIT_SHARED | (ndm ? GMEM_FLAGS.NO_DIRECT_MAP : 0n) | (huge ? hugetlbFlags(huge * PAGE_SIZE) : 0n);
}

const constantsCache = new WeakMap<FullConfig, Map<object, string>>();

/** One action: who does what with which parameters. Deterministic given the world. */
export type Action =
  | { who: 'host'; what: 'read' | 'store' | 'zap' | 'munmap' | 'fallocate' | 'punch'; page: number }
  /** A hole punch of one whole huge page (HugeTLB worlds only), at its first page. */
  | { who: 'host'; what: 'punch-huge'; page: number }
  | { who: 'holder'; h: number; what: 'pin'; page: number }
  | { who: 'holder'; h: number; what: 'complete' | 'unpin' | 'dma-write' | 'dma-read' }
  | { who: 'guest'; what: 'request'; lo: number; hi: number; to: 'private' | 'shared' }
  | { who: 'guest'; what: 'write' | 'read'; page: number }
  | { who: 'vmm'; what: 'step'; race?: { h: number; page: number } };

export class World {
  readonly backend: ModelBackend;
  readonly us: Userspace;
  readonly vm: number;
  readonly gmem: number;
  readonly ram: number;
  /** Per holder slot: its current userspace holder (if any) and a raw GUP-fast pin it raced in. */
  readonly slots: { holder: Holder | undefined; racePin: number | undefined; racePage: number | undefined }[];
  task?: ConversionTask;
  requestsLeft: number;
  /** Ghost: what the guest expects a private page to hold (0 = nothing in particular). */
  readonly expect: number[];
  /** Ghost: the page holds what the guest wrote while private and has not shared since. */
  readonly secret: boolean[];
  /** Properties the last action broke (kernel invariants and the checker's own). */
  violations: Violation[] = [];
  /** What the last action's main call returned (ok and the bytes read, or the errno). */
  outcome = '';

  constructor(readonly config: FullConfig) {
    this.backend = new ModelBackend({ profile: config.profile, checkInvariants: false });
    this.backend.takeViolations();
    config.plant?.(this.backend.kernel);
    this.us = new Userspace(this.backend, { fence: config.fence, waitForIo: config.waitForIo });
    const b = this.us.backend;
    const size = config.pages * PAGE_SIZE;
    this.vm = must(b.createVm(VM_TYPES[config.vmType ?? 'sw_protected']));
    this.gmem = must(b.createGuestMemfd(this.vm, size, worldGmemFlags(config)));
    must(b.setUserMemoryRegion2(this.vm, { slot: 0, flags: 4n, guest_phys_addr: 0, memory_size: size, userspace_addr: 0, guest_memfd: this.gmem, guest_memfd_offset: 0 }));
    this.ram = must(b.mmap({ fd: this.gmem, offset: 0, length: size, prot: PROT.READ | PROT.WRITE, flags: MAP_FLAGS.SHARED }));
    // Every key present from the start (undefined when unused): the encoding writes fields in order.
    this.slots = config.holders.map(() => ({ holder: undefined, racePin: undefined, racePage: undefined }));
    this.requestsLeft = config.requests;
    this.expect = new Array<number>(config.pages).fill(0);
    this.secret = new Array<boolean>(config.pages).fill(false);
  }

  get inode() { return this.backend.kernel.gmemFile(this.gmem)!.inode; }
  get noDirectMap() { return (this.inode.flags & GMEM_FLAGS.NO_DIRECT_MAP) !== 0n; }
  attr(page: number) { return this.inode.attributes.get(page); }

  /** The actions enabled in this world, in a fixed order. */
  enabled(): Action[] {
    const out: Action[] = [];
    const { pages, holders } = this.config;
    for (let page = 0; page < pages; page++) {
      for (const what of ['read', 'store', 'zap', 'munmap', 'fallocate', 'punch'] as const) out.push({ who: 'host', what, page });
    }
    const huge = hugePagesOf(this.config);
    if (huge) for (let page = 0; page < pages; page += huge) out.push({ who: 'host', what: 'punch-huge', page });
    holders.forEach((kind, h) => {
      const slot = this.slots[h]!;
      const held = slot.holder?.holding ?? false;
      // A holder has one operation at a time: an O_DIRECT queued behind a fence is still its own
      // (it starts when the fence lifts), so it pins nothing new meanwhile.
      const busy = held || slot.holder?.state === 'queued';
      if (!busy && slot.racePin === undefined) for (let page = 0; page < pages; page++) out.push({ who: 'holder', h, what: 'pin', page });
      // An in-flight O_DIRECT completes; so does a short-term pin that raced in by GUP-fast.
      if ((slot.holder && slot.holder.state === 'in-flight') || (kind === 'odirect' && slot.racePin !== undefined)) out.push({ who: 'holder', h, what: 'complete' });
      if (kind !== 'odirect' && (held || slot.racePin !== undefined)) {
        out.push({ who: 'holder', h, what: 'unpin' }, { who: 'holder', h, what: 'dma-write' }, { who: 'holder', h, what: 'dma-read' });
      }
    });
    if (!this.task || this.task.terminal) {
      if (this.requestsLeft > 0) {
        for (let lo = 0; lo < pages; lo++) for (let hi = lo; hi < pages; hi++) for (const to of ['private', 'shared'] as const) out.push({ who: 'guest', what: 'request', lo, hi, to });
      }
      for (let page = 0; page < pages; page++) out.push({ who: 'guest', what: 'write', page }, { who: 'guest', what: 'read', page });
    } else if (this.task.phase === 'bounced') {
      out.push({ who: 'vmm', what: 'step' });
    } else {
      out.push({ who: 'vmm', what: 'step' });
      // Inside the conversion ioctl another CPU may run lock-free GUP-fast on the pages being
      // converted (the TOCTOU window). Pins elsewhere are ordinary `pin` actions.
      if (this.task.phase === 'call' && this.task.request.to === 'private') {
        const seg = this.task.request.segments[this.task.seg]!;
        holders.forEach((_k, h) => {
          const slot = this.slots[h]!;
          const busy = (slot.holder?.holding ?? false) || slot.holder?.state === 'queued';
          if (!busy && slot.racePin === undefined) for (let page = seg.lo; page < seg.hi; page++) out.push({ who: 'vmm', what: 'step', race: { h, page } });
        });
      }
    }
    return out;
  }

  private fail(property: string, message: string): void {
    this.violations.push({ property, message });
  }

  private note(r: { ok: boolean; value?: unknown; errno?: string }): void {
    this.outcome = r.ok ? (r.value instanceof Uint8Array ? `ok ${r.value.join(',')}` : 'ok') : (r.errno ?? 'unsupported');
  }

  apply(a: Action): void {
    this.violations = [];
    this.outcome = '';
    const b = this.us.backend;
    const addr = (page: number) => this.ram + page * PAGE_SIZE;
    switch (a.who) {
      case 'host': {
        if (a.what === 'read') {
          const r = b.hostRead(addr(a.page), 1);
          this.note(r);
          if (r.ok && r.value[0] === SEC && this.secret[a.page]) this.fail(OWN_PROPERTIES.hostNeverObserves, 'host observed guest-private data');
        } else if (a.what === 'store') {
          this.note(b.hostWrite(addr(a.page), Uint8Array.of(PUB)));
        } else if (a.what === 'zap') {
          this.note(b.madvise(addr(a.page), PAGE_SIZE, 4 /* DONTNEED */));
        } else if (a.what === 'munmap') {
          this.note(b.munmap(addr(a.page), PAGE_SIZE));
        } else if (a.what === 'fallocate') {
          this.note(b.fallocate(this.gmem, 1n, BigInt(a.page * PAGE_SIZE), BigInt(PAGE_SIZE)));
        } else {
          const n = a.what === 'punch-huge' ? hugePagesOf(this.config) : 1;
          const r = b.fallocate(this.gmem, 3n, BigInt(a.page * PAGE_SIZE), BigInt(n * PAGE_SIZE));
          this.note(r);
          if (r.ok) for (let p = a.page; p < a.page + n; p++) { this.expect[p] = 0; this.secret[p] = false; }
        }
        break;
      }
      case 'holder': this.holderAction(a); break;
      case 'guest': this.guestAction(a); break;
      case 'vmm': {
        const t = this.task!;
        if (t.phase === 'bounced') { this.us.manager.guestRetry(t); break; }
        if (a.race) {
          const { h, page } = a.race;
          this.backend.kernel.state.preemptionPoint = () => {
            const r = this.backend.kernel.pinUserPagesFast(addr(page), PAGE_SIZE, this.config.holders[h] !== 'odirect');
            if (r.ok) Object.assign(this.slots[h]!, { racePin: r.value, racePage: page });
          };
        }
        const before = t.phase === 'call' ? this.inode.attributes.clone() : undefined;
        const eagains = t.eagains;
        this.us.manager.step(t);
        this.backend.kernel.state.preemptionPoint = undefined;
        this.outcome = `${t.phase}${t.failure && 'errno' in t.failure ? ` ${t.failure.errno}` : ''}`;
        if (t.phase === 'failed' && before && !before.equals(this.inode.attributes)) this.fail(OWN_PROPERTIES.failedChangesNothing, 'a failed conversion changed attributes');
        if (t.eagains > eagains && this.noDirectMap) this.fail(OWN_PROPERTIES.noDirectMapUnblocked, `request ${t.request.id} of NO_DIRECT_MAP memory was blocked (EAGAIN)`);
        if (t.phase === 'failed') this.fail(OWN_PROPERTIES.cooperativeCompletes, `request ${t.request.id} failed although userspace is cooperative: ${t.failure && 'why' in t.failure ? t.failure.why : ''}`);
        if (t.phase === 'done' && t.request.to === 'private') this.snapshotExpectations(t);
        if (t.phase === 'done' && t.request.to === 'shared') { // the guest shares on purpose
          for (const seg of t.request.segments) for (let p = seg.lo; p < seg.hi; p++) this.secret[p] = false;
        }
        break;
      }
    }
    for (const v of this.backend.takeViolations()) this.fail(`${v.invariant} ${v.title}`, `${v.invariant} ${v.title}: ${v.detail}`);
    if (this.noDirectMap) this.checkNoDirectMap();
  }

  /** NO_DIRECT_MAP (kernel-semantics.md §1.11 [DMR]): GUP refuses it, so no folio of it is ever pinned (the holders bounce). */
  private checkNoDirectMap(): void {
    const ino = this.inode.ino;
    const pinned = this.backend.kernel.state.folios.find(0, Number.MAX_SAFE_INTEGER, (f) => f.ino === ino && f.pinsShort + f.pinsLong > 0);
    if (pinned) this.fail(OWN_PROPERTIES.noDirectMapUnpinned, `folio ${pinned.lo} of the NO_DIRECT_MAP guest_memfd is pinned (${pinned.value.pinsShort} short-term, ${pinned.value.pinsLong} long-term)`);
  }

  private holderAction(a: Extract<Action, { who: 'holder' }>): void {
    const slot = this.slots[a.h]!;
    const kind = this.config.holders[a.h]!;
    const addr = this.ram + (a.what === 'pin' ? a.page : 0) * PAGE_SIZE;
    if (a.what === 'pin') {
      const r = kind === 'odirect' ? this.us.odirect(addr, PAGE_SIZE, 'read', Uint8Array.of(PUB))
        : kind === 'io_uring' ? this.us.ioUringRegisterBuffers(addr, PAGE_SIZE) : this.us.vfioDmaMap(addr, PAGE_SIZE, 0n);
      this.note(r);
      if (r.ok) slot.holder = r.value;
      return;
    }
    if (a.what === 'complete') {
      if (slot.racePin !== undefined) this.dropRace(slot);
      else this.note((slot.holder as ODirectIo).complete());
      return;
    }
    if (a.what === 'unpin') {
      if (slot.racePin !== undefined) this.dropRace(slot);
      if (slot.holder?.holding) this.note(slot.holder.close());
      return;
    }
    // Device DMA through the pin (or the raced raw pin).
    const write = a.what === 'dma-write';
    const store = write ? Uint8Array.of(PUB) : undefined;
    const r = slot.racePin !== undefined ? this.us.backend.pinAccess(slot.racePin, 0, 1, store) : slot.holder!.dma(0, 1, store);
    this.note(r);
    const page = slot.racePage ?? slot.holder!.range.lo;
    if (!write && r.ok && r.value[0] === SEC && this.secret[page]) this.fail(OWN_PROPERTIES.deviceNeverObserves, 'a device observed guest-private data');
  }

  /** The raced pin goes like any other: through the checked backend (its invariants run). */
  private dropRace(slot: World['slots'][number]): void {
    this.note(this.us.backend.unpinUserPages(slot.racePin!));
    slot.racePin = undefined;
    slot.racePage = undefined;
  }

  private guestAction(a: Extract<Action, { who: 'guest' }>): void {
    const b = this.us.backend;
    if (a.what === 'request') {
      const t = this.us.mapGpaRangeTask(this.vm, a.lo * PAGE_SIZE, (a.hi - a.lo + 1) * PAGE_SIZE, a.to, this.config.policy);
      this.note(t);
      if (t.ok) { this.task = t.value; this.requestsLeft--; }
      return;
    }
    const isPrivate = this.attr(a.page) === 'private';
    if (a.what === 'write') {
      const r = b.guestWrite(this.vm, a.page * PAGE_SIZE, Uint8Array.of(isPrivate ? SEC : PUB));
      this.note(r);
      if (r.ok) this.secret[a.page] = isPrivate;
      if (r.ok && isPrivate) this.expect[a.page] = SEC;
      return;
    }
    const r = b.guestRead(this.vm, a.page * PAGE_SIZE, 1);
    this.note(r);
    const want = this.expect[a.page];
    if (r.ok && isPrivate && want && r.value[0] !== want) this.fail(OWN_PROPERTIES.contentKept, `private page ${a.page} lost its content: guest expects ${String.fromCharCode(want)}, reads ${r.value[0]}`);
  }

  /** When a range becomes private, the guest expects the content it had (sw_protected keeps it). */
  private snapshotExpectations(t: ConversionTask): void {
    for (const seg of t.request.segments) {
      for (let p = seg.lo; p < seg.hi; p++) {
        const f = gmemFolio(this.backend.kernel.state, this.inode, p);
        this.expect[p] = f?.data ? f.data[0]! : 0;
      }
    }
  }

  /**
   * A copy of this world that behaves as it does from here on (clone.ts: the whole object
   * graph, sharing kept; the constants of the run shared; a planted bug planted again).
   */
  clone(): World {
    const c = new Cloner(this.constants()).value(this);
    this.config.plant?.(c.backend.kernel);
    return c;
  }

  /** The constants of the run: the configuration and everything reachable from it, the kernel's machine. */
  private constants(): Map<object, string> {
    let constants = constantsCache.get(this.config);
    if (!constants) {
      constantsCache.set(this.config, (constants = constantsOf({ config: this.config, machine: this.backend.kernel.machine })));
    }
    return constants;
  }

  encode(): string {
    return encodeGraph(this, { constants: this.constants(), skipRoot: { violations: 'per-action output, read on its edge', outcome: 'per-action output' } });
  }
}

function must<T>(r: { ok: boolean; value?: T }): T {
  if (!r.ok) throw new Error(`checker world setup failed: ${JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
  return r.value as T;
}
