// Property: random sequences of operations over a small universe (1–2 VMs of random types, a
// few guest_memfds of a few pages, mappings, pins, vmsplice, punches, fallocate, memslots, guest
// accesses with a random access type, conversions of random aligned and unaligned ranges,
// closes) never break an invariant I1–I11 under mainline-6.18, ipc-v8 and rfc-2025 (rfc-2024 breaks
// only I2, as documented), and every errno an operation returns is one it is documented to return
// (ALLOWED below, with sources). fast-check prints the seed and the shrunk counterexample on
// failure; GMEMKIT_PROPERTY_SEED=<seed> replays it, GMEMKIT_PROPERTY_RUNS=<n> soaks.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { BResult } from '../src/backend/backend.js';
import { ModelBackend } from '../src/backend/model-backend.js';
import { checkState } from '../src/model/invariants.js';
import type { Errno } from '../src/model/abi.js';
import { FULL_MACHINE } from '../src/model/platform.js';
import { IPC_V8, MAINLINE_6_18, RFC_2024, RFC_2025, type Profile } from '../src/model/profile.js';
import { cmd, prelude, run, setUp, type Cmd } from './op-sequences.js';
import { PAGE } from './table.js';

// ------------------------------------------------------------------ documented errnos

/** Every errno each operation may return, and where that is documented. */
export const ALLOWED: Record<string, { readonly errnos: readonly Errno[]; readonly cite: string }> = {
  createVm: { errnos: ['EINVAL'], cite: 'kernel-probe.md §1 (unsupported VM type)' },
  checkExtension: { errnos: ['EBADF', 'ENOTTY'], cite: 'kernel-probe.md §1, §2 (not a VM fd: ENOTTY)' },
  createGuestMemfd: { errnos: ['EBADF', 'ENOTTY', 'EINVAL'], cite: 'kernel-semantics.md §1.1 Errors; kernel-probe.md §2' },
  close: { errnos: ['EBADF'], cite: 'close(2)' },
  mmap: { errnos: ['EBADF', 'ENODEV', 'EINVAL', 'EPERM'], cite: 'kernel-semantics.md §1.2 Errors; kernel-probe.md §3' },
  munmap: { errnos: ['EINVAL'], cite: 'munmap(2)' },
  hostRead: { errnos: [], cite: 'kernel-semantics.md §1.3 (faults raise SIGBUS/SIGSEGV, never an errno)' },
  hostWrite: { errnos: [], cite: 'kernel-semantics.md §1.3' },
  madvise: { errnos: ['EINVAL', 'EFAULT', 'ENOMEM', 'EACCES'], cite: 'kernel-probe.md §3; madvise(2)' },
  madviseRemoveAnon: { errnos: ['EINVAL', 'ENOMEM', 'EACCES', 'EOPNOTSUPP'], cite: 'madvise(2); EOPNOTSUPP: MADV_REMOVE of anonymous (shmem) memory is not modelled (mm.ts)' },
  pinUserPages: { errnos: ['EFAULT', 'EINVAL'], cite: 'kernel-semantics.md §1.11; kernel-probe.md §6' },
  unpinUserPages: { errnos: ['EINVAL'], cite: 'model API (unknown pin id)' },
  pinAccess: { errnos: ['EINVAL'], cite: 'model API (unknown pin id, out of bounds)' },
  vmsplice: { errnos: ['EFAULT', 'EINVAL'], cite: 'kernel-probe.md §6; vmsplice(2)' },
  fdRead: { errnos: ['EBADF', 'EINVAL'], cite: 'kernel-semantics.md §1.5; kernel-probe.md §4' },
  fdWrite: { errnos: ['EBADF', 'EINVAL'], cite: 'kernel-semantics.md §1.5; kernel-probe.md §4' },
  pread: { errnos: ['EBADF', 'ESPIPE'], cite: 'kernel-probe.md §4' },
  lseek: { errnos: ['EBADF', 'ESPIPE', 'EINVAL'], cite: 'kernel-probe.md §4' },
  ftruncate: { errnos: ['EBADF', 'EINVAL'], cite: 'kernel-semantics.md §1.8; kernel-probe.md §4' },
  fallocate: { errnos: ['EBADF', 'EINVAL', 'EOPNOTSUPP', 'ESPIPE', 'ENODEV', 'EFBIG'], cite: 'kernel-semantics.md §1.6, §1.7 Errors; kernel-probe.md §5; fallocate(2)' },
  setUserMemoryRegion2: { errnos: ['EBADF', 'ENOTTY', 'EINVAL', 'EEXIST'], cite: 'kernel-semantics.md §1.9 Errors; kernel-probe.md §7' },
  setMemoryAttributes: { errnos: ['EBADF', 'ENOTTY', 'EINVAL'], cite: 'kernel-semantics.md §1.10(a) Errors, §4 [RFC24]; kernel-probe.md §1' },
  setMemoryAttributes2: { errnos: ['EBADF', 'ENOTTY', 'EINVAL', 'EAGAIN'], cite: 'kernel-semantics.md §1.10(b) Result, §4' },
  guestRead: { errnos: ['EBADF', 'ENOTTY', 'EFAULT'], cite: 'kernel-semantics.md §1.4 (KVM_RUN -1/EFAULT); ioctl(2) (ENOTTY: not a VM fd)' },
  guestWrite: { errnos: ['EBADF', 'ENOTTY', 'EFAULT'], cite: 'kernel-semantics.md §1.4; ioctl(2)' },
};

/** Profile refinements: without a guest_memfd conversion ioctl the ioctl is unknown (ENOTTY). */
function allowed(op: string, p: Profile): readonly Errno[] {
  if (op === 'setMemoryAttributes2' && p.conversion !== 'gmem-ioctl') return ['EBADF', 'ENOTTY']; // kernel-probe.md §1 (sweep: ENOTTY)
  return ALLOWED[op]!.errnos;
}

/** Checks one result against the documented outcomes of its operation. */
function checkOutcome(p: Profile, op: string, c: Cmd, r: BResult<unknown>): void {
  if (r.ok) return;
  if ('errno' in r) {
    assert.ok(allowed(op, p).includes(r.errno), `${op} returned ${r.errno} (${r.why}); documented: ${allowed(op, p).join(', ')} [${ALLOWED[op]!.cite}]`);
    if (r.errno === 'EAGAIN') {
      // kernel-semantics.md §4: EAGAIN only for a blocked to-private conversion; error_offset is the first offending page.
      assert.ok(c.op === 'convert' && c.toPrivate, 'EAGAIN from something other than a to-private conversion');
      const at = r.out?.error_offset;
      assert.ok(at !== undefined && at % BigInt(PAGE) === 0n && at >= c.off / BigInt(PAGE) * BigInt(PAGE) && at < c.off + c.size, `error_offset ${at} outside the request`);
    } else {
      assert.equal(r.out, undefined, `${op}: out-values written back on ${r.errno}`);
    }
    return;
  }
  if ('signal' in r) {
    assert.ok(op === 'hostRead' || op === 'hostWrite', `${op} raised ${r.signal}`);
    assert.ok(r.signal === 'SIGBUS' || r.signal === 'SIGSEGV');
    return;
  }
  if ('exit' in r) {
    // kernel-semantics.md §1.4: memory-fault exits carry the page and the PRIVATE flag of the access;
    // MMIO exits carry the access itself (the byte-wise guest: one byte), as the real kernel does.
    assert.ok(op === 'guestRead' || op === 'guestWrite', `${op} returned a KVM exit`);
    if (r.exit === 'MEMORY_FAULT') {
      assert.equal(r.gpa % BigInt(PAGE), 0n);
      assert.equal(r.size, BigInt(PAGE));
    } else {
      assert.equal(r.size, 1n);
    }
    assert.equal(r.flags, r.private ? 8n : 0n);
    if (r.exit === 'MMIO') assert.equal(r.private, false, 'MMIO exits are shared accesses');
    return;
  }
  assert.fail(`${op}: unexpected result ${JSON.stringify(r)}`);
}

/** `tolerated`: invariants the profile is documented to break (rfc-2024: I2). */
function property(p: Profile, tolerated: readonly string[] = []) {
  return fc.property(prelude, fc.array(cmd, { minLength: 20, maxLength: 40 }), (pre, cmds) => {
    const b = new ModelBackend({ profile: p, machine: FULL_MACHINE });
    const w = setUp(b, pre);
    assert.deepEqual(b.takeViolations(), []);
    for (const [i, c] of cmds.entries()) {
      const done = run(b, w, c);
      if (!done) continue;
      const [op, r] = done;
      checkOutcome(p, op, c, r);
      const v = b.takeViolations().filter((x) => !tolerated.includes(x.invariant));
      assert.deepEqual(v, [], `step ${i} ${JSON.stringify(c, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x))} broke an invariant`);
    }
    // Lifetimes (kernel-semantics.md §1.12, I11): once every pin, mapping and fd is gone, so is everything.
    b.dispose();
    assert.deepEqual(checkState(b.kernel).filter((x) => !tolerated.includes(x.invariant)), []);
    assert.equal(b.kernel.state.vms.length, 0, 'a VM outlived its fds and files');
    assert.equal(b.kernel.state.inodes.size, 0, 'an inode outlived its files');
  });
}

describe('random operation sequences keep I1–I11 and return only documented errnos', () => {
  test('every documented-errno entry names its source', () => {
    for (const [op, a] of Object.entries(ALLOWED)) assert.ok(a.cite.length > 0, `${op} has no citation`);
  });
  // GMEMKIT_PROPERTY_RUNS raises the number of runs for a soak test; GMEMKIT_PROPERTY_SEED replays one.
  const numRuns = Number(process.env.GMEMKIT_PROPERTY_RUNS ?? 200);
  const seed = process.env.GMEMKIT_PROPERTY_SEED === undefined ? {} : { seed: Number(process.env.GMEMKIT_PROPERTY_SEED) };
  for (const p of [MAINLINE_6_18, IPC_V8, RFC_2025]) {
    test(`${p.name}: ${numRuns} runs × 20–40 commands`, () => {
      fc.assert(property(p), { numRuns, includeErrorInReport: true, ...seed });
    });
  }
  test(`rfc-2024: ${numRuns} runs; the only invariant it breaks is I2 (FOLL_GET references go unnoticed)  [kernel-semantics.md §1.10(c) [RFC24]]`, () => {
    fc.assert(property(RFC_2024, ['I2']), { numRuns, includeErrorInReport: true, ...seed });
  });
});
