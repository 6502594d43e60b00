// Conversion policies of the userspace half: how the manager orders releases around the
// conversion ioctl and what it does when the kernel reports EAGAIN. One object per policy; the
// manager consults these fields and never tests a policy's name.
// Sources: design-discussion.md §2.4 (TDX MapGPA RETRY, stock QEMU), §3.1 (QEMU
// RamDiscardManager order), §6 "Policies to compare".

export interface Policy {
  readonly name: string;
  readonly title: string;
  /** Release every holder over the range before asking for private (QEMU's RamDiscardManager). */
  readonly releaseBefore: boolean;
  /** Re-establish holders released for a range after it becomes shared again. */
  readonly reestablishAfter: boolean;
  /** On EAGAIN: resolve the holders and retry; bounce EAGAIN to the guest; or stop the VM. */
  readonly onBlocked: 'resolve-and-retry' | 'bounce-to-guest' | 'stop-vm';
  /** Retries before the manager reports failure (resolve-and-retry). */
  readonly maxRetries: number;
}

export const RETRY: Policy = {
  name: 'retry', title: 'on EAGAIN, release the holders at error_offset (waiting for I/O) and retry, bounded',
  releaseBefore: false, reestablishAfter: false, onBlocked: 'resolve-and-retry', maxRetries: 8,
};
export const PREUNMAP: Policy = {
  name: 'preunmap', title: 'release holders before to-private, re-establish after to-shared (QEMU RamDiscardManager)',
  releaseBefore: true, reestablishAfter: true, onBlocked: 'resolve-and-retry', maxRetries: 8,
};
export const GUEST_RETRY: Policy = {
  name: 'guest-retry', title: 'return EAGAIN to the guest with the next GPA (TDX MapGPA RETRY); the guest gives up after 3 retries without progress',
  releaseBefore: false, reestablishAfter: false, onBlocked: 'bounce-to-guest', maxRetries: 3,
};
export const STOP: Policy = {
  name: 'stop', title: 'a failed conversion stops the VM (stock VMMs today)',
  releaseBefore: false, reestablishAfter: false, onBlocked: 'stop-vm', maxRetries: 0,
};

export const POLICIES: readonly Policy[] = [RETRY, PREUNMAP, GUEST_RETRY, STOP];
export const DEFAULT_POLICY = RETRY;

export function findPolicy(name: string): Policy | undefined {
  return POLICIES.find((p) => p.name === name);
}
