// libc bindings through koffi: the raw system calls the linux backend makes, each returning
// `{ ok, value }` or `{ ok: false, errno }` with errno read right after the call. User
// addresses and lengths are bigint (exact over all 64 bits); buffers are Node Buffers the call
// reads or fills. A call that fails with EINTR is made again (retryEintr), except close(2),
// whose fd is gone after EINTR on Linux, and the *Once variants (KVM_RUN: an EINTR there is the
// caller's to interpret). This module must never interpret results, hold state, or touch user
// memory itself.
import { createRequire } from 'node:module';
import type KoffiDefault from 'koffi';

export type Sys<T = number> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly errno: number };
export type Koffi = typeof KoffiDefault;

let koffiModule: Koffi | null = null;
let fns: ReturnType<typeof bind> | null = null;

/** koffi, loaded on first use so that a host without it fails LinuxBackend.probe(), not the import. */
export function ffi(): Koffi {
  if (!koffiModule) koffiModule = createRequire(import.meta.url)('koffi') as Koffi;
  return koffiModule;
}

/** Load koffi and bind libc now; throws where that is impossible (probe() reports why). */
export function load(): void {
  if (!fns) fns = bind(ffi());
}

function lib(): ReturnType<typeof bind> {
  load();
  return fns!;
}

// Variadic in C (open, ioctl, fcntl, syscall): declared variadic so the calling convention is exact.
const bind = (koffi: Koffi) => {
  const libc = koffi.load('libc.so.6');
  return {
    open: libc.func('int open(const char *path, int flags, ...)'),
    close: libc.func('int close(int fd)'),
    ioctl: libc.func('int ioctl(int fd, unsigned long req, ...)'),
    fcntl: libc.func('int fcntl(int fd, int cmd, ...)'),
    syscall: libc.func('long syscall(long nr, ...)'),
    mmap: libc.func('uintptr_t mmap(uintptr_t addr, size_t len, int prot, int flags, int fd, int64_t off)'),
    munmap: libc.func('int munmap(uintptr_t addr, size_t len)'),
    madvise: libc.func('int madvise(uintptr_t addr, size_t len, int advice)'),
    fallocate: libc.func('int fallocate(int fd, int mode, int64_t off, int64_t len)'),
    ftruncate: libc.func('int ftruncate(int fd, int64_t len)'),
    read: libc.func('intptr_t read(int fd, void *buf, size_t n)'),
    write: libc.func('intptr_t write(int fd, void *buf, size_t n)'),
    pread: libc.func('intptr_t pread(int fd, void *buf, size_t n, int64_t off)'),
    pwrite: libc.func('intptr_t pwrite(int fd, void *buf, size_t n, int64_t off)'),
    preadAddr: libc.func('intptr_t pread(int fd, uintptr_t buf, size_t n, int64_t off)'),
    pwriteAddr: libc.func('intptr_t pwrite(int fd, uintptr_t buf, size_t n, int64_t off)'),
    lseek: libc.func('int64_t lseek(int fd, int64_t off, int whence)'),
    pipe2: libc.func('int pipe2(void *fds, int flags)'),
    vmsplice: libc.func('intptr_t vmsplice(int fd, void *iov, size_t nr, unsigned int flags)'),
    memfd_create: libc.func('int memfd_create(const char *name, unsigned int flags)'),
    setitimer: libc.func('int setitimer(int which, void *value, void *old)'),
  };
};

/** A C `long`/`ssize_t` result as a JS number (koffi gives bigint only past 2^53). */
const num = (v: unknown): number => (typeof v === 'bigint' ? Number(BigInt.asIntN(64, v)) : (v as number));

function wrap(ret: unknown): Sys {
  const r = num(ret);
  return r < 0 ? { ok: false, errno: ffi().errno() } : { ok: true, value: r };
}

export const EINTR = 4;
/**
 * Consecutive EINTRs after which retryEintr gives up and returns EINTR. C programs retry
 * unbounded (TEMP_FAILURE_RETRY); EINTR here means a signal or task work (TIF_NOTIFY_SIGNAL,
 * e.g. an io_uring teardown) was pending, which the return to userspace consumes, so the next
 * attempt normally succeeds. The bound only turns a signal storm into an EINTR answer instead
 * of a hang.
 */
export const EINTR_RETRIES = 1000;

/**
 * Make `call` again while it fails with EINTR, at most `limit` retries. Only for calls that
 * have done nothing when they return EINTR (every call here but close and KVM_RUN).
 */
export function retryEintr<T>(call: () => Sys<T>, limit = EINTR_RETRIES): Sys<T> {
  let r = call();
  for (let n = 0; !r.ok && r.errno === EINTR && n < limit; n++) r = call();
  return r;
}

/** A user address or length as the C `unsigned long` it becomes; anything else is a gmemkit bug. */
function ul(v: bigint): bigint {
  if (v < 0n || v >= 1n << 64n) throw new RangeError(`libc: ${v} does not fit in an unsigned long`);
  return v;
}

/** One libc call, errno read at once, retried on EINTR. */
const sys = (call: () => unknown): Sys => retryEintr(() => wrap(call()));

export const O_RDONLY = 0o0, O_RDWR = 0o2, O_CREAT = 0o100, O_EXCL = 0o200, O_NONBLOCK = 0o4000;
export const O_DIRECT = 0o40000, O_CLOEXEC = 0o2000000, O_TMPFILE = 0o20200000;
export const F_SETPIPE_SZ = 1031, F_GETPIPE_SZ = 1032;
export const FIONREAD = 0x541b;
export const MFD_CLOEXEC = 1;
export const ITIMER_REAL = 0;

export function open(path: string, flags: number, mode = 0o600): Sys {
  return sys(() => lib().open(path, flags, 'uint32_t', mode));
}
/** close(2), never retried: on Linux the fd is released even when close returns EINTR. */
export function close(fd: number): Sys { return wrap(lib().close(fd)); }

/** ioctl with an integer argument (or none). */
export function ioctlInt(fd: number, req: number, arg: number | bigint = 0): Sys {
  return sys(() => lib().ioctl(fd, req, 'unsigned long', arg));
}
/** ioctl with an integer argument, made once: for KVM_RUN, whose EINTR the caller interprets. */
export function ioctlIntOnce(fd: number, req: number, arg: number | bigint = 0): Sys {
  return wrap(lib().ioctl(fd, req, 'unsigned long', arg));
}
/** ioctl with a pointer to a struct the kernel reads and/or writes. */
export function ioctlBuf(fd: number, req: number, buf: Buffer): Sys {
  return sys(() => lib().ioctl(fd, req, 'void *', buf));
}
export function fcntlInt(fd: number, cmd: number, arg: number): Sys {
  return sys(() => lib().fcntl(fd, cmd, 'int', arg));
}

/** mmap(2); the address on success. MAP_FAILED is (void *)-1. */
export function mmap(addr: bigint, length: bigint, prot: number, flags: number, fd: number, offset: bigint): Sys<bigint> {
  return retryEintr(() => {
    const r = BigInt(lib().mmap(ul(addr), ul(length), prot, flags, fd, offset) as number | bigint);
    return BigInt.asIntN(64, r) < 0n ? { ok: false, errno: ffi().errno() } : { ok: true, value: r };
  });
}
export function munmap(addr: bigint, length: bigint): Sys { return sys(() => lib().munmap(ul(addr), ul(length))); }
export function madvise(addr: bigint, length: bigint, advice: number): Sys { return sys(() => lib().madvise(ul(addr), ul(length), advice)); }
export function fallocate(fd: number, mode: number, offset: bigint, len: bigint): Sys {
  return sys(() => lib().fallocate(fd, mode, offset, len));
}
export function ftruncate(fd: number, length: bigint): Sys { return sys(() => lib().ftruncate(fd, length)); }
export function read(fd: number, buf: Buffer, n = buf.length): Sys { return sys(() => lib().read(fd, buf, n)); }
export function write(fd: number, buf: Buffer, n = buf.length): Sys { return sys(() => lib().write(fd, buf, n)); }
export function pread(fd: number, buf: Buffer, offset: bigint, n = buf.length): Sys { return sys(() => lib().pread(fd, buf, n, offset)); }
export function pwrite(fd: number, buf: Buffer, offset: bigint, n = buf.length): Sys { return sys(() => lib().pwrite(fd, buf, n, offset)); }
/** pread/pwrite with a raw user address as the buffer (O_DIRECT I/O into or out of a mapping). */
export function preadAddr(fd: number, addr: bigint, n: bigint, offset: bigint): Sys { return sys(() => lib().preadAddr(fd, ul(addr), ul(n), offset)); }
export function pwriteAddr(fd: number, addr: bigint, n: bigint, offset: bigint): Sys { return sys(() => lib().pwriteAddr(fd, ul(addr), ul(n), offset)); }

export function lseek(fd: number, offset: bigint, whence: number): Sys<bigint> {
  return retryEintr(() => {
    const v = BigInt(lib().lseek(fd, offset, whence) as number | bigint);
    return v < 0n ? { ok: false, errno: ffi().errno() } : { ok: true, value: v };
  });
}

/** pipe2(2): [readFd, writeFd]. */
export function pipe2(flags: number): Sys<[number, number]> {
  const fds = Buffer.alloc(8);
  const r = sys(() => lib().pipe2(fds, flags));
  return r.ok ? { ok: true, value: [fds.readInt32LE(0), fds.readInt32LE(4)] } : r;
}

/** vmsplice(2) of one user range (the iovec is built here). */
export function vmsplice(fd: number, addr: bigint, length: bigint, flags: number): Sys {
  const iov = Buffer.alloc(16);
  iov.writeBigUInt64LE(ul(addr), 0);
  iov.writeBigUInt64LE(ul(length), 8);
  return sys(() => lib().vmsplice(fd, iov, 1, flags));
}

export function memfdCreate(name: string, flags: number): Sys { return sys(() => lib().memfd_create(name, flags)); }

/** setitimer(ITIMER_REAL) one-shot after `ms` milliseconds (0 disarms). */
export function setAlarm(ms: number): Sys {
  const v = Buffer.alloc(32); // struct itimerval { it_interval, it_value } of timeval
  v.writeBigInt64LE(BigInt(Math.floor(ms / 1000)), 16);
  v.writeBigInt64LE(BigInt((ms % 1000) * 1000), 24);
  return sys(() => lib().setitimer(ITIMER_REAL, v, null));
}

/** A raw system call whose arguments are integers or buffers (io_uring has no libc wrapper). */
export function syscall(nr: number, ...args: (number | bigint | Buffer | null)[]): Sys {
  const typed: unknown[] = [];
  for (const a of args) typed.push(a === null || Buffer.isBuffer(a) ? 'void *' : 'long', a);
  return sys(() => lib().syscall(nr, ...typed));
}

/** The errno koffi saw last (for callers that call through a raw function). */
export function lastErrno(): number { return ffi().errno(); }

/**
 * A zero-copy view of user memory. Callers must have proven every page faultable first; the
 * range must be a safe-integer one (it always is inside a mapping of this process).
 */
export function memView(addr: bigint, length: number): Uint8Array {
  const a = Number(addr);
  if (!Number.isSafeInteger(a) || !Number.isSafeInteger(a + length)) throw new RangeError(`memView: [0x${addr.toString(16)}, +${length}) is not a user range`);
  return new Uint8Array(ffi().view(a, length));
}
