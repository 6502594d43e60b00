// Short-term GUP through O_DIRECT: an unnamed scratch file on a disk-backed filesystem
// (tmpfs and ramfs have no O_DIRECT), and one O_DIRECT pwrite (GUP for read) plus, for a
// write pin, an O_DIRECT pread of the same bytes back (GUP with FOLL_WRITE). The pages are
// pinned for the duration of each I/O only: Linux gives userspace no way to hold a short-term
// pin across calls deterministically, so callers must report such a pin as performed-and-released.
// It must never change the bytes of the user range and never leave a named file behind.
import { rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as libc from './libc.js';

const MEMORY_FS = new Set([0x01021994 /* tmpfs */, 0x858458f6 /* ramfs */, 0x73717368 /* squashfs */, 0x9fa0 /* proc */]);
const EISDIR = 21;
const EOPNOTSUPP = 95;

/** Directories tried for the scratch file: $GMEMKIT_ODIRECT_DIR, the OS temp dir, /var/tmp, cwd. */
function candidates(): string[] {
  const dirs = [process.env.GMEMKIT_ODIRECT_DIR, tmpdir(), '/var/tmp', process.cwd()];
  return [...new Set(dirs.filter((d): d is string => typeof d === 'string' && d.length > 0))];
}

function openIn(dir: string): number | null {
  const flags = libc.O_RDWR | libc.O_DIRECT | libc.O_CLOEXEC;
  const t = libc.open(dir, flags | libc.O_TMPFILE, 0o600);
  if (t.ok) return t.value;
  if (t.errno !== EOPNOTSUPP && t.errno !== EISDIR) return null;
  const path = join(dir, `.gmemkit-odirect-${process.pid}-${Date.now()}`);
  const f = libc.open(path, flags | libc.O_CREAT | libc.O_EXCL, 0o600);
  if (!f.ok) return null;
  rmSync(path, { force: true }); // unlinked at once: the file lives only as long as the fd
  return f.value;
}

export class DirectScratch {
  private constructor(readonly fd: number, readonly dir: string) {}

  /** An O_DIRECT scratch fd in the first disk-backed candidate directory, or why there is none. */
  static open(): DirectScratch | string {
    const tried: string[] = [];
    for (const dir of candidates()) {
      let type: number;
      try {
        type = Number(statfsSync(dir).type);
      } catch {
        tried.push(`${dir} (statfs failed)`);
        continue;
      }
      if (MEMORY_FS.has(type)) {
        tried.push(`${dir} (memory filesystem 0x${type.toString(16)})`);
        continue;
      }
      const fd = openIn(dir);
      if (fd !== null) return new DirectScratch(fd, dir);
      tried.push(`${dir} (no O_DIRECT)`);
    }
    return `no disk-backed directory with O_DIRECT for short-term pins; tried ${tried.join(', ')}`;
  }

  /**
   * GUP of the page-aligned range [lo, hi) the way O_DIRECT does it: pwrite from the range
   * (FOLL_PIN), then for `write` pread the same bytes back into it (FOLL_PIN | FOLL_WRITE).
   */
  pinOnce(lo: bigint, hi: bigint, write: boolean): libc.Sys | { ok: false; short: number } {
    const n = hi - lo;
    const w = libc.pwriteAddr(this.fd, lo, n, 0n);
    const r = !w.ok || !write ? w : BigInt(w.value) !== n ? { ok: false as const, short: w.value } : libc.preadAddr(this.fd, lo, n, 0n);
    libc.ftruncate(this.fd, 0n); // give the disk blocks back
    return r;
  }

  close(): void {
    libc.close(this.fd);
  }
}
