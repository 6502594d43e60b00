// Turning a real kernel's answer into the backend's result shapes: an errno number becomes the
// Linux name from abi.ts with a `why` that says the kernel chose it. Must never invent an errno
// the kernel did not return: a number abi.ts cannot name becomes `unsupported`.
import { errnoName } from '../model/abi.js';
import { fail, type ErrnoFailure } from '../model/result.js';
import { unsupported, type Unsupported } from '../backend/backend.js';

export function kernelFail(errno: number, what: string, out?: Record<string, bigint>): ErrnoFailure | Unsupported {
  const name = errnoName(errno);
  if (!name) return unsupported(`${what}: kernel returned errno ${errno}, which abi.ts does not name`);
  return fail(name, `kernel returned ${name} (${what})`, out);
}

/** A refusal the backend makes itself, without calling the kernel, to protect the Node process. */
export function backendRefusal(name: 'EBADF' | 'ENOMEM' | 'EFAULT' | 'EINVAL', why: string): ErrnoFailure {
  return fail(name, `${why} (decided by the linux backend, not sent to the kernel)`);
}
