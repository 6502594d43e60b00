// A minimal io_uring over raw system calls (425 io_uring_setup, 426 io_uring_enter, 427
// io_uring_register): one ring per long-term pin. IORING_REGISTER_BUFFERS is the pin
// (pin_user_pages(FOLL_WRITE | FOLL_LONGTERM)); READ_FIXED / WRITE_FIXED against a memfd scratch
// file are the "device" reading or writing the pinned pages (kernel-probe §6). Every wait is
// bounded by an io_uring_enter timeout; each submission carries its own user_data, so a
// completion that arrives after its wait gave up is never taken for a later one's. It must never
// touch the user buffer from JavaScript and never leave a ring, mapping or scratch fd open after
// close().
import * as libc from './libc.js';

const SYS_IO_URING_SETUP = 425;
const SYS_IO_URING_ENTER = 426;
const SYS_IO_URING_REGISTER = 427;
const IORING_REGISTER_BUFFERS = 0;
const IORING_UNREGISTER_BUFFERS = 1;
const IORING_OP_READ_FIXED = 4;
const IORING_OP_WRITE_FIXED = 5;
const IORING_ENTER_GETEVENTS = 1;
const IORING_ENTER_EXT_ARG = 8;
const IORING_FEAT_SINGLE_MMAP = 1;
const IORING_FEAT_EXT_ARG = 1 << 8;
const IORING_OFF_SQES = 0x10000000n;
const ETIME = 62;
const ENTRIES = 4;
const WAIT_SECONDS = 5;

/** struct __kernel_timespec for the completion wait, in native memory (its address goes in a struct). */
let timeout: { ptr: unknown; addr: bigint } | null = null;
function timeoutAddress(): bigint {
  if (!timeout) {
    const koffi = libc.ffi();
    const ptr = koffi.alloc('uint8_t', 16);
    const v = Buffer.from(koffi.view(ptr, 16));
    v.writeBigInt64LE(BigInt(WAIT_SECONDS), 0);
    v.writeBigInt64LE(0n, 8);
    timeout = { ptr, addr: koffi.address(ptr) };
  }
  return timeout.addr;
}

/** `timeout`: no completion within WAIT_SECONDS, so there is no kernel answer (errno is ETIME). */
export type RingResult = { ok: true; value: number } | { ok: false; errno: number; why: string; timeout?: true };

export class Ring {
  private closed = false;
  /** user_data of the last submission; completions of earlier ones are skipped. */
  private seq = 0n;

  private constructor(
    readonly fd: number,
    private readonly rings: { addr: bigint; size: number; view: Buffer },
    private readonly sqes: { addr: bigint; size: number; view: Buffer },
    private readonly off: { sqTail: number; sqMask: number; sqArray: number; cqHead: number; cqTail: number; cqMask: number; cqes: number },
    /** memfd the fixed reads and writes go to. */
    readonly scratch: number,
  ) {}

  /** io_uring_setup + the ring mappings + a memfd scratch file. */
  static create(): Ring | { errno: number; why: string } {
    const params = Buffer.alloc(120);
    const fd = libc.syscall(SYS_IO_URING_SETUP, ENTRIES, params);
    if (!fd.ok) return { errno: fd.errno, why: 'io_uring_setup failed' };
    const fail = (errno: number, why: string, undo: () => void) => {
      undo();
      libc.close(fd.value);
      return { errno, why };
    };
    const features = params.readUInt32LE(20);
    if (!(features & IORING_FEAT_SINGLE_MMAP) || !(features & IORING_FEAT_EXT_ARG)) {
      return fail(95, 'io_uring lacks SINGLE_MMAP or EXT_ARG', () => {});
    }
    const sqEntries = params.readUInt32LE(0);
    const cqEntries = params.readUInt32LE(4);
    const off = {
      sqTail: params.readUInt32LE(44), sqMask: params.readUInt32LE(48), sqArray: params.readUInt32LE(64),
      cqHead: params.readUInt32LE(80), cqTail: params.readUInt32LE(84), cqMask: params.readUInt32LE(88), cqes: params.readUInt32LE(100),
    };
    const ringSize = Math.max(off.sqArray + sqEntries * 4, off.cqes + cqEntries * 16);
    const rm = libc.mmap(0n, BigInt(ringSize), 3, 0x8001 /* SHARED|POPULATE */, fd.value, 0n);
    if (!rm.ok) return fail(rm.errno, 'mmap of the io_uring rings failed', () => {});
    const sqeSize = sqEntries * 64;
    const sm = libc.mmap(0n, BigInt(sqeSize), 3, 0x8001, fd.value, IORING_OFF_SQES);
    if (!sm.ok) return fail(sm.errno, 'mmap of the io_uring SQEs failed', () => libc.munmap(rm.value, BigInt(ringSize)));
    const scratch = libc.memfdCreate('gmemkit-pin-scratch', libc.MFD_CLOEXEC);
    if (!scratch.ok) {
      return fail(scratch.errno, 'memfd_create for the pin scratch file failed', () => {
        libc.munmap(sm.value, BigInt(sqeSize));
        libc.munmap(rm.value, BigInt(ringSize));
      });
    }
    // Ring memory is kernel-allocated and always faultable: safe to view from JavaScript.
    const rings = { addr: rm.value, size: ringSize, view: Buffer.from(libc.memView(rm.value, ringSize).buffer) };
    const sqes = { addr: sm.value, size: sqeSize, view: Buffer.from(libc.memView(sm.value, sqeSize).buffer) };
    return new Ring(fd.value, rings, sqes, off, scratch.value);
  }

  /** IORING_REGISTER_BUFFERS of one iovec: the long-term pin. */
  registerBuffer(addr: bigint, length: bigint): libc.Sys {
    const iov = Buffer.alloc(16);
    iov.writeBigUInt64LE(BigInt.asUintN(64, addr), 0);
    iov.writeBigUInt64LE(BigInt.asUintN(64, length), 8);
    return libc.syscall(SYS_IO_URING_REGISTER, this.fd, IORING_REGISTER_BUFFERS, iov, 1);
  }

  unregisterBuffers(): libc.Sys {
    return libc.syscall(SYS_IO_URING_REGISTER, this.fd, IORING_UNREGISTER_BUFFERS, null, 0);
  }

  /** WRITE_FIXED: the device reads [addr, addr+len) of registered buffer 0 into the scratch file at 0. */
  writeFixed(addr: bigint, len: number): RingResult {
    return this.submitAndWait(IORING_OP_WRITE_FIXED, addr, len);
  }

  /** READ_FIXED: the device writes the scratch file's first `len` bytes into [addr, addr+len). */
  readFixed(addr: bigint, len: number): RingResult {
    return this.submitAndWait(IORING_OP_READ_FIXED, addr, len);
  }

  private submitAndWait(opcode: number, addr: bigint, len: number): RingResult {
    const r = this.rings.view;
    const tail = r.readUInt32LE(this.off.sqTail);
    const idx = tail & r.readUInt32LE(this.off.sqMask);
    const sqe = this.sqes.view.subarray(idx * 64, idx * 64 + 64);
    sqe.fill(0);
    sqe.writeUInt8(opcode, 0);
    sqe.writeInt32LE(this.scratch, 4);
    sqe.writeBigUInt64LE(0n, 8); // file offset
    sqe.writeBigUInt64LE(addr, 16);
    sqe.writeUInt32LE(len, 24);
    const seq = ++this.seq;
    sqe.writeBigUInt64LE(seq, 32); // user_data
    sqe.writeUInt16LE(0, 40); // buf_index
    r.writeUInt32LE(idx, this.off.sqArray + idx * 4);
    r.writeUInt32LE((tail + 1) >>> 0, this.off.sqTail); // published by the system call below
    const arg = Buffer.alloc(24); // struct io_uring_getevents_arg { sigmask, sigmask_sz, min_wait_usec, ts }
    arg.writeBigUInt64LE(timeoutAddress(), 16);
    const flags = IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG;
    const deadline = performance.now() + WAIT_SECONDS * 1000; // monotonic, unlike Date.now()
    // EINTR is retried inside libc.syscall; a -EINTR means nothing was submitted (io_uring_enter
    // returns the submitted count otherwise), so the retry submits the same entry.
    const e = libc.syscall(SYS_IO_URING_ENTER, this.fd, 1, 1, flags, arg, 24);
    if (!e.ok && e.errno !== ETIME) return { ok: false, errno: e.errno, why: 'io_uring_enter failed' };
    for (;;) {
      const head = r.readUInt32LE(this.off.cqHead);
      if (head === r.readUInt32LE(this.off.cqTail)) {
        if (performance.now() >= deadline) return { ok: false, errno: ETIME, why: `io_uring completion did not arrive within ${WAIT_SECONDS} s`, timeout: true };
        const w = libc.syscall(SYS_IO_URING_ENTER, this.fd, 0, 1, flags, arg, 24);
        if (!w.ok && w.errno !== ETIME) return { ok: false, errno: w.errno, why: 'io_uring_enter (wait) failed' };
        continue;
      }
      const at = this.off.cqes + (head & r.readUInt32LE(this.off.cqMask)) * 16;
      const userData = r.readBigUInt64LE(at);
      const res = r.readInt32LE(at + 8);
      r.writeUInt32LE((head + 1) >>> 0, this.off.cqHead);
      if (userData !== seq) continue; // a late completion of an earlier submission whose wait timed out
      return res < 0 ? { ok: false, errno: -res, why: `io_uring ${opcode === IORING_OP_READ_FIXED ? 'READ_FIXED' : 'WRITE_FIXED'} failed` } : { ok: true, value: res };
    }
  }

  /** Unregister (unpin), unmap and close everything the ring holds. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unregisterBuffers();
    libc.munmap(this.sqes.addr, BigInt(this.sqes.size));
    libc.munmap(this.rings.addr, BigInt(this.rings.size));
    libc.close(this.scratch);
    libc.close(this.fd);
  }
}
