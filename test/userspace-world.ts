// Shared machinery of the userspace-half tests: a VM whose guest_memfd files are bound to
// memslots and mapped by the VMM, driven through a Userspace over a ModelBackend (invariants
// I1–I11 checked around every kernel call), plus a recorder of the manager's events and a
// compact rendering of a file's attributes. This file holds no tests of its own.
import assert from 'node:assert/strict';
import type { BResult } from '../src/backend/backend.js';
import { ModelBackend } from '../src/backend/model-backend.js';
import { GMEM_FLAGS, MAP_FLAGS, MEMSLOT_FLAGS, PAGE_SIZE, PROT, VM_TYPES, type VmTypeName } from '../src/model/abi.js';
import { DEFAULT_PROFILE, type Profile } from '../src/model/profile.js';
import type { Holder } from '../src/userspace/holders.js';
import type { ConversionTask } from '../src/userspace/manager.js';
import { Userspace } from '../src/userspace/userspace.js';

export const K = 1024;
export const M = 1024 * K;
export const PAGE = PAGE_SIZE;

/** One guest_memfd file: its size and the GPA its memslot starts at (the whole file is bound). */
export interface FileSpec { readonly size: number; readonly gpa: number }

export interface WorldOptions {
  readonly profile?: Profile;
  readonly type?: VmTypeName;
  /** Default: one 64K file at GPA 0. */
  readonly files?: readonly FileSpec[];
  /** The manager's pin fence (default on). */
  readonly fence?: boolean;
  /** guest_memfd flags beyond MMAP | INIT_SHARED (e.g. NO_DIRECT_MAP). */
  readonly extraFlags?: bigint;
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s);
export const str = (b: Uint8Array): string => new TextDecoder().decode(b);

export class World {
  readonly b: ModelBackend;
  readonly us: Userspace;
  readonly vm: number;
  /** guest_memfd fds, one per FileSpec. */
  readonly fds: number[] = [];
  /** The VMM's MAP_SHARED mapping of each whole file. */
  readonly maps: number[] = [];

  constructor(opts: WorldOptions = {}) {
    this.b = new ModelBackend({ profile: opts.profile ?? DEFAULT_PROFILE });
    this.us = new Userspace(this.b, { fence: opts.fence ?? true });
    const kb = this.us.backend;
    this.vm = this.must(kb.createVm(VM_TYPES[opts.type ?? 'sw_protected']), 'create_vm');
    (opts.files ?? [{ size: 64 * K, gpa: 0 }]).forEach((f, slot) => {
      const fd = this.must(kb.createGuestMemfd(this.vm, f.size, GMEM_FLAGS.MMAP | GMEM_FLAGS.INIT_SHARED | (opts.extraFlags ?? 0n)), 'create_guest_memfd');
      this.must(kb.setUserMemoryRegion2(this.vm, {
        slot, flags: MEMSLOT_FLAGS.GUEST_MEMFD, guest_phys_addr: f.gpa, memory_size: f.size, userspace_addr: 0, guest_memfd: fd, guest_memfd_offset: 0,
      }), `memslot ${slot}`);
      this.maps.push(this.must(kb.mmap({ fd, offset: 0, length: f.size, prot: PROT.READ | PROT.WRITE, flags: MAP_FLAGS.SHARED }), 'mmap'));
      this.fds.push(fd);
    });
    this.noViolations('setup');
  }

  get fd(): number { return this.fds[0]!; }
  get ram(): number { return this.maps[0]!; }

  must<T>(r: BResult<T>, what = 'setup step'): T {
    if (!r.ok) assert.fail(`${what} failed: ${JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))}`);
    return r.value;
  }

  /** A file's attributes as runs in K: "0-16K private, 16-64K shared". */
  attrs(fd = this.fd): string {
    const inode = this.b.kernel.gmemFile(fd)!.inode;
    return [...inode.attributes.segments()].map((s) => `${(s.lo * PAGE) / K}-${(s.hi * PAGE) / K}K ${s.value}`).join(', ');
  }

  hostWrite(addr: number, data: string): void {
    this.must(this.us.backend.hostWrite(addr, text(data)), `host write at 0x${addr.toString(16)}`);
  }

  hostRead(addr: number, length: number): BResult<Uint8Array> {
    return this.us.backend.hostRead(addr, length);
  }

  guestRead(gpa: number, length: number): BResult<Uint8Array> {
    return this.us.backend.guestRead(this.vm, gpa, length);
  }

  /** Holder ids the pin registry lists over bytes [offset, offset+length) of `fd`. */
  registered(fd: number, offset: number, length: number): number[] {
    return this.us.registry.overlapping(fd, offset / PAGE, (offset + length) / PAGE);
  }

  /** The model saw no invariant broken since the last call to this. */
  noViolations(what = 'the test'): void {
    const v = this.b.takeViolations();
    assert.deepEqual(v.map((x) => `${x.invariant}: ${x.detail}`), [], `invariant violations during ${what}`);
  }

  dispose(): void {
    this.b.dispose();
  }
}

/** A conversion request that ran to its end (the Userspace call itself must succeed). */
export function ran(w: World, r: BResult<ConversionTask>): ConversionTask {
  return w.must(r, 'conversion request');
}

/** The manager's events as short strings, in order: blocked@4096[h], released:h, retried#1, completed, failed. */
export function recordEvents(us: Userspace): string[] {
  const log: string[] = [];
  const names = (hs: readonly Holder[]) => hs.map((h) => h.name).join(',');
  us.events
    .on('blocked', (e) => log.push(`blocked@${e.offset}[${names(e.holders)}]`))
    .on('released', (e) => log.push(`released:${e.holder.name}`))
    .on('retried', (e) => log.push(`retried#${e.attempt}`))
    .on('completed', () => log.push('completed'))
    .on('failed', () => log.push('failed'));
  return log;
}

/** What a finished task did, by holder names. */
export function summary(t: ConversionTask) {
  return {
    phase: t.phase, eagains: t.eagains, retries: t.retries,
    released: t.released.map((h) => h.name), waited: t.waited.map((h) => h.name), vmStopped: t.vmStopped,
  };
}
