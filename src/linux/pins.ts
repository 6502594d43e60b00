// GUP pins on real Linux. Long-term: one io_uring ring per pin whose registered buffer is the
// pin (held until unpin), with device access through READ_FIXED/WRITE_FIXED (kernel-probe §6:
// after a punch the device still sees the old folio). Short-term: the GUP of an O_DIRECT I/O,
// which is performed and released within the call, so nothing is held and there is no device
// access through it afterwards. It must never fake a pin the kernel did not take, and never
// leave a ring or scratch fd open after release()/dispose().
import { ok, OK } from '../model/result.js';
import { unsupported, type BResult } from '../backend/backend.js';
import { backendError, backendRefusal, guarded, kernelFail } from './errors.js';
import { Ring } from './io-uring.js';
import * as libc from './libc.js';
import { pageCeil, pageFloor } from './mappings.js';
import { DirectScratch } from './odirect.js';

type Pin =
  | { kind: 'long'; addr: bigint; length: bigint; ring: Ring }
  | { kind: 'short'; addr: bigint; length: bigint };

const SHORT_NOTE = 'short-term pin: the O_DIRECT I/O pinned and released the pages within this call; nothing is held across steps';

export class PinSet {
  private pins = new Map<number, Pin>();
  private nextId = 1;
  private direct: DirectScratch | string | null = null;

  get count(): number { return this.pins.size; }

  pin(addr: bigint, length: bigint, longterm: boolean, write: boolean): BResult<number> {
    if (longterm) return this.pinLong(addr, length);
    return this.pinShort(addr, length, write);
  }

  /** IORING_REGISTER_BUFFERS always pins with FOLL_WRITE | FOLL_LONGTERM (the `write` flag cannot be dropped). */
  private pinLong(addr: bigint, length: bigint): BResult<number> {
    const ring = Ring.create();
    if (!(ring instanceof Ring)) return kernelFail(ring.errno, ring.why);
    const r = ring.registerBuffer(addr, length);
    if (!r.ok) {
      ring.close();
      return kernelFail(r.errno, 'io_uring IORING_REGISTER_BUFFERS (pin_user_pages FOLL_LONGTERM)');
    }
    const id = this.nextId++;
    this.pins.set(id, { kind: 'long', addr, length, ring });
    return ok(id, 'long-term pin: an io_uring registered buffer, held until unpin');
  }

  private pinShort(addr: bigint, length: bigint, write: boolean): BResult<number> {
    if (this.direct === null) this.direct = DirectScratch.open();
    if (typeof this.direct === 'string') return unsupported(this.direct);
    const r = this.direct.pinOnce(pageFloor(addr), pageCeil(addr + length), write);
    if (!r.ok) {
      const what = `O_DIRECT ${write ? 'pwrite+pread' : 'pwrite'} of the range (short-term GUP)`;
      return 'short' in r ? backendRefusal('EIO', `${what}: the pwrite moved ${r.short} bytes, so the pread-back pin was not attempted`) : kernelFail(r.errno, what);
    }
    const id = this.nextId++;
    this.pins.set(id, { kind: 'short', addr, length });
    return ok(id, SHORT_NOTE);
  }

  unpin(id: number): BResult {
    const pin = this.pins.get(id);
    if (!pin) return backendRefusal('EINVAL', `pin ${id} is not held`);
    this.pins.delete(id);
    if (pin.kind === 'short') return OK;
    const r = pin.ring.unregisterBuffers();
    pin.ring.close();
    return r.ok ? OK : kernelFail(r.errno, 'io_uring IORING_UNREGISTER_BUFFERS');
  }

  /** What the device sees (load) or writes (store) through the pin: WRITE_FIXED / READ_FIXED. */
  access(id: number, offset: bigint, length: bigint, store?: Uint8Array): BResult<Uint8Array> {
    const pin = this.pins.get(id);
    if (!pin) return backendRefusal('EINVAL', `pin ${id} is not held`);
    if (offset < 0n || length < 0n || offset + length > pin.length) {
      return backendRefusal('EINVAL', `[${offset}, ${offset + length}) outside the ${pin.length}-byte pin`);
    }
    if (pin.kind === 'short') return unsupported(`${SHORT_NOTE}, so no device access through it is possible`);
    if (length === 0n) return guarded(ok(new Uint8Array(0)), 'a device access of 0 bytes submits no I/O');
    const ring = pin.ring;
    const at = pin.addr + offset;
    const len = Number(length); // at most the pin's length, itself at most what io_uring registers (1 GiB)
    if (store) {
      const data = Buffer.from(store.subarray(0, len));
      const w = libc.pwrite(ring.scratch, data, 0n);
      if (!w.ok) return kernelFail(w.errno, 'pwrite to the pin scratch memfd');
      const r = ring.readFixed(at, len);
      if (!r.ok) return 'timeout' in r ? backendError(r.why) : kernelFail(r.errno, r.why);
      return r.value === len ? ok(Uint8Array.from(data)) : unsupported(`READ_FIXED moved ${r.value} of ${len} bytes`);
    }
    const r = ring.writeFixed(at, len);
    if (!r.ok) return 'timeout' in r ? backendError(r.why) : kernelFail(r.errno, r.why);
    const buf = Buffer.alloc(len);
    const rd = libc.pread(ring.scratch, buf, 0n);
    if (!rd.ok) return kernelFail(rd.errno, 'pread of the pin scratch memfd');
    if (r.value !== len || rd.value !== len) return unsupported(`WRITE_FIXED moved ${r.value} of ${len} bytes`);
    return ok(new Uint8Array(buf));
  }

  dispose(): void {
    for (const pin of this.pins.values()) if (pin.kind === 'long') pin.ring.close();
    this.pins.clear();
    if (this.direct instanceof DirectScratch) this.direct.close();
    this.direct = null;
  }
}

