// Shared machinery of the table-driven tests: a row is { name, cite, setup, call, expect },
// run on a fresh ModelBackend (invariants I1–I11 checked after every call). Every row asserts
// its outcome AND that no invariant was broken, unless the row names the violations it shows.
// This file holds no tests of its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BResult } from '../src/backend/backend.js';
import { ModelBackend } from '../src/backend/model-backend.js';
import {
  GMEM_FLAGS, MAP_FLAGS, MEMSLOT_FLAGS, PAGE_SIZE, PROT, VM_TYPES, type Errno, type Signal, type VmTypeName,
} from '../src/model/abi.js';
import { gmemFolio } from '../src/model/gmem.js';
import type { Kernel } from '../src/model/kernel.js';
import type { Folio } from '../src/model/state.js';
import { FULL_MACHINE, type MachineConfig } from '../src/model/platform.js';
import { DEFAULT_PROFILE, type Profile } from '../src/model/profile.js';

export const K = 1024;
export const M = 1024 * K;
export const G = 1024 * M;
export const PAGE = PAGE_SIZE;
export const { MMAP, INIT_SHARED } = GMEM_FLAGS;
export const RW = PROT.READ | PROT.WRITE;
export const SHARED = MAP_FLAGS.SHARED;

export type Expect =
  | 'ok'
  | { readonly errno: Errno; readonly out?: Record<string, bigint>; readonly noOut?: true }
  | { readonly signal: Signal }
  | { readonly exit: 'MEMORY_FAULT' | 'MMIO'; readonly gpa?: bigint; readonly size?: bigint; readonly private?: boolean; readonly flags?: bigint }
  | { readonly value: unknown }
  | { readonly bytes: readonly number[] }
  | { readonly fill: number; readonly length?: number }
  | { readonly data: string };

export interface Row {
  readonly name: string;
  /** Where the expected behaviour is documented. */
  readonly cite: string;
  readonly profile?: Profile;
  readonly machine?: MachineConfig;
  readonly setup?: (c: Ctx) => void;
  readonly call: (c: Ctx) => BResult<unknown>;
  readonly expect: Expect;
  /** Further checks of the state after the call. */
  readonly then?: (c: Ctx, r: BResult<unknown>) => void;
  /** Invariants the row deliberately shows broken (default: none). */
  readonly violations?: readonly string[];
}

/** Named handles plus convenience wrappers whose calls must succeed (setup steps). */
export class Ctx {
  readonly b: ModelBackend;
  /** fds, addresses, pin ids by name. */
  readonly h: Record<string, number> = {};

  constructor(profile: Profile, machine: MachineConfig) {
    this.b = new ModelBackend({ profile, machine });
  }

  get k(): Kernel { return this.b.kernel; }

  must<T>(r: BResult<T>, what = 'setup step'): T {
    if (!r.ok) assert.fail(`${what} failed: ${JSON.stringify(r, big)}`);
    return r.value;
  }

  vm(type: VmTypeName = 'default', as = 'vm'): number {
    return (this.h[as] = this.must(this.b.createVm(VM_TYPES[type]), `create_vm ${type}`));
  }

  gmem(size: number, flags: bigint, opts: { vm?: string; as?: string } = {}): number {
    const as = opts.as ?? 'gmem';
    return (this.h[as] = this.must(this.b.createGuestMemfd(this.h[opts.vm ?? 'vm']!, size, flags), `create_guest_memfd ${as}`));
  }

  mmap(fd: string, length: number, opts: { as?: string; offset?: number; prot?: bigint; flags?: bigint } = {}): number {
    const r = this.b.mmap({ fd: this.h[fd]!, offset: opts.offset ?? 0, length, prot: opts.prot ?? RW, flags: opts.flags ?? SHARED });
    return (this.h[opts.as ?? 'map'] = this.must(r, `mmap ${fd}`));
  }

  anon(length: number, as = 'anon'): number {
    const r = this.b.mmap({ fd: null, offset: 0, length, prot: RW, flags: MAP_FLAGS.SHARED | MAP_FLAGS.ANONYMOUS });
    return (this.h[as] = this.must(r, 'mmap anonymous'));
  }

  write(map: string, offset: number, data: string | Uint8Array): void {
    this.must(this.b.hostWrite(this.h[map]! + offset, bytes(data)), `write ${map}+${offset}`);
  }

  read(map: string, offset: number, length: number): Uint8Array {
    return this.must(this.b.hostRead(this.h[map]! + offset, length), `read ${map}+${offset}`);
  }

  pin(map: string, offset: number, length: number, longterm = true, as = 'pin'): number {
    return (this.h[as] = this.must(this.b.pinUserPages(this.h[map]! + offset, length, longterm), `pin ${map}+${offset}`));
  }

  vmsplice(map: string, offset: number, length: number, as = 'pipe'): number {
    return (this.h[as] = this.must(this.b.vmsplice(this.h[map]! + offset, length), `vmsplice ${map}+${offset}`));
  }

  /** A guest_memfd memslot: slot id, GPA, size, gmem handle, gmem offset, userspace_addr (handle, number or null). */
  slot(slot: number, gpa: number, size: number, gmem: string | null, gmemOffset = 0, uaddr: string | number | null = null, vm = 'vm'): void {
    this.must(this.b.setUserMemoryRegion2(this.h[vm]!, region(this, slot, gpa, size, gmem, gmemOffset, uaddr)), `memslot ${slot}`);
  }

  convert(gmem: string, offset: number, size: number, toPrivate: boolean): void {
    this.must(this.b.setMemoryAttributes2(this.h[gmem]!, attrs2(offset, size, toPrivate)), `convert ${gmem}`);
  }

  punch(gmem: string, offset: number, length: number): void {
    this.must(this.b.fallocate(this.h[gmem]!, 3, offset, length), `punch ${gmem}`);
  }

  guestWrite(gpa: number, data: string | Uint8Array, isPrivate?: boolean, vm = 'vm'): void {
    this.must(this.b.guestWrite(this.h[vm]!, gpa, bytes(data), isPrivate), `guest_write ${gpa}`);
  }

  guestRead(gpa: number, length: number, isPrivate?: boolean, vm = 'vm'): Uint8Array {
    return this.must(this.b.guestRead(this.h[vm]!, gpa, length, isPrivate), `guest_read ${gpa}`);
  }

  /** The attribute of a guest_memfd page, from the model's inode. */
  attr(gmem: string, offset: number): string | undefined {
    return this.k.gmemFile(this.h[gmem]!)?.inode.attributes.get(offset / PAGE);
  }

  /** Host PTEs present in the mapping at `map`. */
  ptes(map: string): number {
    return this.k.vmaAt(this.h[map]!)?.ptes.count() ?? 0;
  }

  /** Guest mappings (SPTEs) of a VM. */
  sptes(vm = 'vm'): number {
    return this.k.vmOfFd(this.h[vm]!)?.sptes.count() ?? 0;
  }

  /** The folio at page `page` of a guest_memfd's page cache, as a snapshot. */
  folio(gmem: string, page: number): Folio | undefined {
    return gmemFolio(this.k.state, this.k.gmemFile(this.h[gmem]!)!.inode, page);
  }

  /** Pages in a guest_memfd's page cache. */
  cached(gmem = 'gmem'): number {
    return this.k.gmemFile(this.h[gmem]!)!.inode.pages.count();
  }
}

export function region(c: Ctx, slot: number, gpa: number | bigint, size: number | bigint, gmem: string | null, gmemOffset: number | bigint = 0, uaddr: string | number | bigint | null = null) {
  const ua = uaddr === null ? 0 : typeof uaddr === 'string' ? c.h[uaddr]! : uaddr;
  return {
    slot, flags: gmem === null ? 0n : MEMSLOT_FLAGS.GUEST_MEMFD, guest_phys_addr: gpa, memory_size: size,
    userspace_addr: ua, guest_memfd: gmem === null ? -1 : c.h[gmem]!, guest_memfd_offset: gmemOffset,
  };
}

export function attrs2(offset: number | bigint, size: number | bigint, toPrivate: boolean, extra: { flags?: bigint; reserved?: bigint[]; attributes?: bigint } = {}) {
  return {
    offset, size, attributes: extra.attributes ?? (toPrivate ? 8n : 0n), flags: extra.flags ?? 0n,
    ...(extra.reserved ? { reserved: extra.reserved } : {}),
  };
}

export function bytes(data: string | Uint8Array | readonly number[]): Uint8Array {
  if (typeof data === 'string') return new TextEncoder().encode(data);
  return data instanceof Uint8Array ? data : Uint8Array.from(data);
}

export function fill(n: number, v: number): Uint8Array {
  return new Uint8Array(n).fill(v);
}

function big(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? `<${v.length} bytes>` : v;
}

/** Asserts a result against a row expectation. */
export function assertOutcome(r: BResult<unknown>, e: Expect): void {
  const shown = JSON.stringify(r, big);
  if (e === 'ok') {
    assert.ok(r.ok, `expected success, got ${shown}`);
    return;
  }
  if ('errno' in e) {
    assert.ok(!r.ok && 'errno' in r, `expected errno ${e.errno}, got ${shown}`);
    assert.equal(r.errno, e.errno, `errno (${r.why})`);
    if (e.out) assert.deepEqual(r.out, e.out, `out-values of ${shown}`);
    if (e.noOut) assert.equal(r.out, undefined, `no out-values expected, got ${shown}`);
    return;
  }
  if ('signal' in e) {
    assert.ok(!r.ok && 'signal' in r, `expected signal ${e.signal}, got ${shown}`);
    assert.equal(r.signal, e.signal);
    return;
  }
  if ('exit' in e) {
    assert.ok(!r.ok && 'exit' in r, `expected exit ${e.exit}, got ${shown}`);
    assert.equal(r.exit, e.exit);
    if (e.gpa !== undefined) assert.equal(r.gpa, e.gpa, 'exit gpa');
    if (e.size !== undefined) assert.equal(r.size, e.size, 'exit size');
    if (e.private !== undefined) assert.equal(r.private, e.private, 'exit private');
    if (e.flags !== undefined) assert.equal(r.flags, e.flags, 'exit flags');
    return;
  }
  assert.ok(r.ok, `expected a value, got ${shown}`);
  const v = r.value;
  if ('value' in e) assert.deepEqual(v, e.value);
  else if ('bytes' in e) assert.deepEqual([...(v as Uint8Array)], [...e.bytes]);
  else if ('data' in e) assert.equal(new TextDecoder().decode(v as Uint8Array), e.data);
  else {
    const arr = v as Uint8Array;
    if (e.length !== undefined) assert.equal(arr.length, e.length, 'length read');
    assert.ok(arr.every((x) => x === e.fill), `expected every byte ${e.fill}, got [${[...arr.slice(0, 16)]}…]`);
  }
}

/** Runs one row on a fresh backend. */
export function runRow(row: Row): void {
  const c = new Ctx(row.profile ?? DEFAULT_PROFILE, row.machine ?? FULL_MACHINE);
  row.setup?.(c);
  const r = row.call(c);
  assertOutcome(r, row.expect);
  row.then?.(c, r);
  const seen = [...new Set(c.b.takeViolations().map((v) => v.invariant))].sort();
  assert.deepEqual(seen, [...(row.violations ?? [])].sort(), 'invariant violations reported by the ModelBackend');
  c.b.dispose();
}

/** One node:test per row, named with its citation. */
export function table(rows: readonly Row[]): void {
  const names = new Set<string>();
  for (const row of rows) {
    assert.ok(!names.has(row.name), `duplicate row name ${row.name}`);
    names.add(row.name);
    assert.ok(row.cite.length > 0, `row ${row.name} has no citation`);
    test(`${row.name}  [${row.cite}]`, () => runRow(row));
  }
}
