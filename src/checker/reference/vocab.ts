// The vocabulary of the reference protocol shared by the transitions (model.ts) and the
// reports (describe.ts): content values, phases, directions, actions (edge codes) and the
// property codes with their names. Constants only; it must never hold behaviour.

// Content values, phases and directions, as in gmem.pml.
export const ZERO = 0;
export const PUB = 1;
export const SEC = 2;
export const IDLE = 0;
export const PENDING = 1;
export const LOCKED = 2;
export const FAILED = 3;
export const TOPRIV = 0;
export const TOSHARED = 1;
export const CONTENT_NAMES = ['ZERO', 'PUB', 'SEC'];
export const PH_NAMES = ['IDLE', 'PENDING', 'LOCKED', 'FAILED'];
export const DIR_NAMES = ['TOPRIV', 'TOSHARED'];

/** Actions; an edge code is action | a << 5 | b << 9 | c << 13 (holder/page/range params). */
export const A = {
  PIN: 0, IO_WROTE: 1, IO_READ: 2, DMA_WRITE: 3, UNREGISTER: 4,
  WRITE: 5, REQUEST: 6,
  TO_SHARED: 7, LOCK: 8, COMMIT: 9, RETRY: 10, RELEASE: 11,
  FAULT_IN: 12, MUNMAP: 13, STORE: 14, FALLOCATE: 15, PUNCH: 16,
} as const;
export const ACTION_NAMES = [
  'pin', 'io_done_device_wrote', 'io_done_device_read', 'dma_write', 'unregister',
  'write', 'request',
  'convert_to_shared', 'lock_unmap', 'check_commit', 'retry', 'release',
  'fault_in', 'munmap', 'store', 'fallocate', 'punch_hole',
];

/** Property codes (1-based) and names; the names are those of docs/checker.md §3.4. */
export const P = { S1: 1, S2: 2, S3: 3, S4: 4, S5: 5, WF: 6, S5_TO_SHARED: 7 } as const;
export const PROPERTIES = [
  'S1 private page mapped',
  'S2 private page pinned',
  'S3 failed conversion changed priv',
  'S4 host can reach guest-private data',
  'S5 private content changed / lost',
  'WF hole not zero, unmapped and unexpected',
  'S5 to-shared content is not what the guest expects',
];
