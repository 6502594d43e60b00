// Turning a real kernel's answer into the backend's result shapes: an errno number becomes the
// Linux name from abi.ts with a `why` that says the kernel chose it. Must never invent an errno
// the kernel did not return: a number abi.ts cannot name becomes `unsupported` carrying the
// number (`errnoNumber`). An answer the
// backend decides itself, without asking the kernel, carries `guarded` (backend.ts).
import { errnoName } from '../model/abi.js';
import { fail, type ErrnoFailure } from '../model/result.js';
import { unsupported, type Guarded, type Unsupported } from '../backend/backend.js';

export function kernelFail(errno: number, what: string, out?: Record<string, bigint>): ErrnoFailure | Unsupported {
  const name = errnoName(errno);
  if (!name) return { ...unsupported(`${what}: kernel returned errno ${errno}, which abi.ts does not name`), errnoNumber: errno };
  return fail(name, `kernel returned ${name} (${what})`, out);
}

/** The backend tried and got no answer (a timeout, an unexpected vCPU exit): an error of the case. */
export function backendError(why: string): Unsupported {
  return { ok: false, unsupported: why, error: true };
}

/** Mark a result as decided by the backend, not the kernel. */
export function guarded<R extends object>(r: R, reason: string): R & Required<Guarded> {
  return { ...r, guarded: reason };
}

/** A refusal the backend makes itself, without calling the kernel, to protect the Node process. */
export function backendRefusal(name: 'EBADF' | 'ENOMEM' | 'EFAULT' | 'EINVAL' | 'EIO', why: string): ErrnoFailure & Required<Guarded> {
  return guarded(fail(name, `${why} (decided by the linux backend, not sent to the kernel)`), why);
}
