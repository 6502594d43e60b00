// What a kernel operation returns: a value, an errno (with out-parameters such as
// error_offset), a signal raised by a host memory access, or a KVM exit of a guest access.
// Operations never throw for kernel-level failures; a thrown exception is a gmemkit bug.
import type { Errno, Signal } from './abi.js';

export interface Ok<T> { readonly ok: true; readonly value: T; readonly note?: string }

export interface ErrnoFailure {
  readonly ok: false;
  readonly errno: Errno;
  /** Out-parameters the kernel writes back on failure (e.g. error_offset). */
  readonly out?: Readonly<Record<string, bigint>>;
  /** Why the model chose this errno: the check that failed, for humans. */
  readonly why: string;
}

export interface SignalFailure {
  readonly ok: false;
  readonly signal: Signal;
  /** Faulting user address. */
  readonly address: number;
  readonly why: string;
}

export interface ExitFailure {
  readonly ok: false;
  /** KVM_RUN returned -1/EFAULT with this exit reason. */
  readonly exit: 'MEMORY_FAULT' | 'MMIO';
  readonly gpa: bigint;
  readonly size: bigint;
  readonly flags: bigint;
  readonly private: boolean;
  readonly why: string;
}

export type Failure = ErrnoFailure | SignalFailure | ExitFailure;
export type KResult<T = void> = Ok<T> | Failure;
/** Host memory access: errno (e.g. EBADF never), or a signal. */
export type AccessResult<T> = Ok<T> | SignalFailure | ErrnoFailure;
export type GuestResult<T> = Ok<T> | ExitFailure | ErrnoFailure;

export function ok<T>(value: T, note?: string): Ok<T> {
  return note === undefined ? { ok: true, value } : { ok: true, value, note };
}
export const OK: Ok<void> = { ok: true, value: undefined };

export function fail(errno: Errno, why: string, out?: Record<string, bigint>): ErrnoFailure {
  return out ? { ok: false, errno, why, out } : { ok: false, errno, why };
}

export function signal(sig: Signal, address: number, why: string): SignalFailure {
  return { ok: false, signal: sig, address, why };
}
