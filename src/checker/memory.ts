// Memory accounting for the search structures and the growable typed arrays they are made
// of. Like SPIN's -DMEMLIM it counts the checker's own allocations, not the process RSS.
// It must never allocate on behalf of a caller that did not ask, and never throw.

export class MemoryAccount {
  /** Bytes currently held by registered structures. */
  bytes = 0;
  /** Set once a growth went past the limit; the engine stops after the current state. */
  exceeded = false;

  constructor(readonly limitBytes: number = Infinity) {}

  /** Would `extra` more bytes stay within the limit? */
  allows(extra: number): boolean {
    return this.bytes + extra <= this.limitBytes;
  }

  /** Records a change of `delta` bytes (allocations happen at the caller). */
  add(delta: number): void {
    this.bytes += delta;
    if (this.bytes > this.limitBytes) this.exceeded = true;
  }
}

type TypedCtor<T> = { new (n: number): T; BYTES_PER_ELEMENT: number };
type Typed = Uint32Array | Int32Array | Uint16Array | Uint8Array;

/**
 * Grows `a` so it holds at least `need` elements: doubling while the account allows it,
 * else by just what is needed (and the account then marks itself exceeded).
 */
export function growTo<T extends Typed>(a: T, need: number, ctor: TypedCtor<T>, acct: MemoryAccount): T {
  if (need <= a.length) return a;
  const el = ctor.BYTES_PER_ELEMENT;
  let n = Math.max(a.length * 2, 1024);
  while (n < need) n *= 2;
  if (!acct.allows((n - a.length) * el)) n = Math.max(need, a.length + 65536);
  const b = new ctor(n);
  b.set(a as never);
  acct.add((n - a.length) * el);
  return b;
}

export function allocate<T extends Typed>(n: number, ctor: TypedCtor<T>, acct: MemoryAccount): T {
  acct.add(n * ctor.BYTES_PER_ELEMENT);
  return new ctor(n);
}

export function mib(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(1);
}
