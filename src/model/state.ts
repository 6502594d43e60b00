// The model's state as plain data, one type per kernel object. Behaviour lives in the
// operation modules (gmem.ts, mm.ts, kvm.ts, pipe.ts, folio.ts); invariants.ts constrains this
// state.
//
// guest_memfd keeps the kernel's split: the *inode* is the physical storage and tracks the
// properties of the memory (size, flags, shared/private attributes, the page cache); each
// *file* is one VM's view of that storage and tracks that VM's memslot bindings. The file
// pins the VM; VMAs pin the file; memslots pin nothing.
//
// Ranges, not pages. Every per-page structure is an ExtentMap (extent-map.ts), so a 1 TiB
// guest that is fallocated, mapped, prefaulted and converted costs what its ranges cost:
// - Folios have numeric ids, allocated in consecutive blocks (fallocate of n pages takes n
//   ids), and live in one table, `KernelState.folios`: folio id -> FolioRun. A run covers the
//   ids [lo, hi) of folios whose state is *uniform* (same inode, consecutive page indices,
//   same uptodate/inCache and the same reference counts per kind); it is split lazily when
//   one folio diverges (pinned, mapped alone, punched) and merged again when neighbours
//   become identical. A folio's identity is its id: it survives splits and merges, which is
//   what I8 (KVM maps the folio now in the file), I9 (folios never move) and pins that keep a
//   detached folio's old data after PUNCH_HOLE (examples/03) rely on.
// - Content is kept only for folios holding non-zero bytes: `KernelState.folioData`,
//   folio id -> 4 KiB page. No entry means all zero.
// - The page cache (`GmemInode.pages`), host PTEs (`Vma.ptes`) and guest SPTEs (`Vm.sptes`)
//   map page index / PTE key / gfn to folio ids (progressing by one per index), so a mapped
//   or prefaulted range is one run per contiguous block of folio ids.
// - `FolioRun.order` is the order of the folios of the run: 0, every id is its own 4 KiB folio;
//   k > 0 (a HugeTLB guest_memfd, kernel-semantics §2.3), every aligned block of 2^k pages is
//   one huge folio: the folio of id `lo + d` starts at the page index `index + d` rounded down
//   to 2^k (a huge folio always sits at an aligned block of its file, with consecutive ids), so
//   one run can hold many huge folios and a split or merge of a 1 GiB folio is one update of
//   the run's order, never 262,144 page operations. Reference counts stay per id (per 4 KiB
//   page); the folio's refcount is their sum. Runs of different orders never merge.
import type { VmType } from './abi.js';
import { newTree, type Tree } from './btree.js';
import { ExtentMap, ID_CODEC, type ExtentCodec } from './extent-map.js';
import { IntervalMap } from './interval-map.js';

export { newTree, type Tree };

/** 'pending': on the way to private under the deferred variant (host and GUP refused). */
export type Attr = 'shared' | 'private' | 'pending';

/**
 * The shared state of the folios of one run of the folio table (ids [lo, hi) of one extent).
 * References are counted per folio and by kind (kernel-semantics §2.1 `extraRefs`).
 */
export interface FolioRun {
  /** Inode whose page cache the folios were allocated for (0: anonymous memory). */
  readonly ino: number;
  /** Page index of the run's first folio; folio lo + d sits at index + d (never moves: I9). */
  readonly index: number;
  /** 0: a run of order-0 folios; k > 0: every aligned 2^k pages of the run are one folio (see above). */
  readonly order: number;
  /** Zeroed before first exposure (I6); never cleared while the folio lives. */
  readonly uptodate: boolean;
  /** The page cache's reference: false once punched or evicted ("detached"). */
  readonly inCache: boolean;
  /** Host PTEs mapping the folio, over all mappings. */
  readonly mapCount: number;
  /** FOLL_GET references (vmsplice pipe buffers). */
  readonly gets: number;
  /** FOLL_PIN references, short-term (O_DIRECT in flight, pin_user_pages). */
  readonly pinsShort: number;
  /** FOLL_PIN | FOLL_LONGTERM references (io_uring fixed buffers, VFIO DMA maps). */
  readonly pinsLong: number;
}

/** A FolioRun with the given fields (an explicit literal: this is the model's hottest allocation). */
export function withRun(v: FolioRun, index: number, inCache: boolean, uptodate: boolean, mapCount: number, gets: number, pinsShort: number, pinsLong: number): FolioRun {
  return { ino: v.ino, index, order: v.order, uptodate, inCache, mapCount, gets, pinsShort, pinsLong };
}

/** The same folios as `v`, of order `order` (a split or a merge). */
export function withOrder(v: FolioRun, order: number): FolioRun {
  return { ino: v.ino, index: v.index, order, uptodate: v.uptodate, inCache: v.inCache, mapCount: v.mapCount, gets: v.gets, pinsShort: v.pinsShort, pinsLong: v.pinsLong };
}

export const FOLIO_CODEC: ExtentCodec<FolioRun> = {
  at: (v, d) => (d === 0 ? v : withRun(v, v.index + d, v.inCache, v.uptodate, v.mapCount, v.gets, v.pinsShort, v.pinsLong)),
  eq: (a, b) => a === b || (a.order === b.order && a.ino === b.ino && a.index === b.index
    && a.uptodate === b.uptodate && a.inCache === b.inCache && a.mapCount === b.mapCount
    && a.gets === b.gets && a.pinsShort === b.pinsShort && a.pinsLong === b.pinsLong),
};

/** One folio as tools, tests and messages see it: a snapshot, not part of the state. */
export interface Folio extends FolioRun {
  readonly id: number;
  /** Page contents; null means all zero (or, before `uptodate`, never initialised). */
  readonly data: Uint8Array | null;
}

/** A block of consecutive folio ids [id, id + nr). */
export interface FolioIds { readonly id: number; readonly nr: number }

export interface GmemInode {
  readonly ino: number;
  /** Type of the VM the inode was created on (decides the content rule of conversions). */
  readonly vmType: VmType;
  /** i_size in bytes; immutable (setattr fails). */
  readonly size: number;
  readonly flags: bigint;
  /** HugeTLB (kernel-semantics §2.3): the order of its huge pages (9 = 2 MiB, 18 = 1 GiB); 0 otherwise. */
  readonly hugeOrder: number;
  /**
   * Per-index shared/private attribute. In-place conversion profiles keep it here; mainline
   * fixes it per file from INIT_SHARED; RFC24 calls it "faultability".
   */
  readonly attributes: IntervalMap<Attr>;
  /** The page cache: page index -> folio id (runs of consecutive ids). */
  readonly pages: ExtentMap<number>;
  readonly files: Set<GmemFile>;
  /** Every VMA mapping this inode, in every file (i_mmap). */
  readonly vmas: Set<Vma>;
  /** Revocable fd-based imports of ranges of this inode (revoke variant). */
  readonly imports: Set<Import>;
  evicted: boolean;
}

/** A device or backend's fd+offset import of guest_memfd pages: no page references; revocable. */
export interface Import {
  readonly id: number;
  readonly inode: GmemInode;
  readonly lo: number;
  readonly hi: number;
  revoked: boolean;
}

export interface GmemFile {
  readonly id: number;
  readonly inode: GmemInode;
  /** The VM this file belongs to; the file pins it (I11). */
  readonly vm: Vm;
  /** page index -> memslot bound there (I10: at most one per index). */
  readonly bindings: IntervalMap<Memslot>;
  /** Open file descriptors referring to this file. */
  fdRefs: number;
  /** VMAs referring to this file. */
  vmaRefs: number;
  released: boolean;
}

export interface Memslot {
  readonly vm: Vm;
  readonly asId: number;
  readonly id: number;
  readonly flags: bigint;
  readonly baseGfn: number;
  readonly npages: number;
  readonly userspaceAddr: bigint;
  /** The bound guest_memfd file (null after that file was released) and its first page. */
  gmem: { file: GmemFile | null; readonly pgoff: number } | null;
  /** Slot created from a gmem with MMAP: every guest fault is served from guest_memfd. */
  readonly gmemOnly: boolean;
}

/** Guest (secondary MMU) mappings of a run of gfns; `id` is the folio id of the first gfn. */
export interface Spte {
  readonly id: number;
  /**
   * The mapping's order: 0 = 4 KiB SPTEs; k > 0 = each aligned 2^k gfns are one huge SPTE
   * (KVM maps a huge folio at the huge level: 9 = 2 MiB, 18 = 1 GiB), zapped as a whole.
   */
  readonly order: number;
  readonly private: boolean;
  /** Which backing served it: the guest_memfd, or host memory through userspace_addr. */
  readonly backing: 'gmem' | 'host';
}

export interface Vm {
  readonly id: number;
  readonly type: VmType;
  /** The VM fd is open (the VM itself lives while its fd or any gmem file does). */
  fdOpen: boolean;
  destroyed: boolean;
  /** Live guest_memfd files created on this VM. */
  readonly files: Set<GmemFile>;
  /** (asId << 16 | id) -> memslot. */
  readonly memslots: Map<number, Memslot>;
  /** gfn -> memslot, for translation and GPA-overlap checks (address space 0 and 1 apart). */
  readonly gfnIndex: [IntervalMap<Memslot>, IntervalMap<Memslot>];
  /** Per-VM KVM_MEMORY_ATTRIBUTE_PRIVATE by gfn (legacy ioctl; absent = shared). */
  readonly attributes: IntervalMap<Attr>;
  /** gfn -> guest mapping (runs of consecutive folio ids with the same kind). */
  readonly sptes: ExtentMap<Spte>;
}

export interface Vma {
  readonly start: number;
  readonly end: number;
  readonly prot: bigint;
  readonly shared: boolean;
  /** The mapped guest_memfd file, or null for anonymous memory. */
  readonly file: GmemFile | null;
  /** First file page mapped at `start`. */
  readonly pgoff: number;
  /** Present PTEs -> folio id, keyed by file page index (anonymous: by virtual page). */
  readonly ptes: ExtentMap<number>;
}

export interface Pin {
  readonly id: number;
  readonly address: number;
  readonly length: number;
  readonly longterm: boolean;
  readonly write: boolean;
  /** The pinned folios in address order, as blocks of ids (they may later be detached). */
  readonly folios: readonly FolioIds[];
  released: boolean;
}

/** One page reference of a pipe: folio id and the bytes of it still unread. */
export interface PipeBuffer { readonly folio: number; offset: number; length: number }

export interface Pipe {
  readonly id: number;
  readonly buffers: PipeBuffer[];
}

export type FdEntry =
  | { readonly kind: 'vm'; readonly vm: Vm }
  | { readonly kind: 'gmem'; readonly file: GmemFile }
  | { readonly kind: 'pipe'; readonly pipe: Pipe };

export interface KernelState {
  readonly fds: Map<number, FdEntry>;
  readonly vms: Vm[];
  readonly inodes: Set<GmemInode>;
  /** The (single) process's address space: VMA start -> VMA. */
  readonly vmas: Tree<number, Vma>;
  readonly pins: Map<number, Pin>;
  readonly imports: Map<number, Import>;
  /** Every live folio: folio id -> run state. A folio is freed with its last reference. */
  readonly folios: ExtentMap<FolioRun>;
  /** Contents of the folios holding non-zero bytes: folio id -> page. */
  readonly folioData: Tree<number, Uint8Array>;
  /** Source of object ids (VMs, files, folios, pins). */
  nextId: number;
  /** Top of the mmap area (mmap_base): mappings are placed top-down in the highest gap that fits. */
  mmapBase: number;
  /**
   * Checker hook: called inside a to-private conversion where another CPU could run (between
   * the zap and the reference check). Only lock-free work (GUP-fast) may happen there.
   */
  preemptionPoint?: () => void;
  /** From the profile (a mutant): the host fault path serves private pages. */
  faultAcceptsPrivate: boolean;
}

export function newState(): KernelState {
  return {
    fds: new Map(), vms: [], inodes: new Set(), vmas: newTree(), pins: new Map(), imports: new Map(),
    folios: new ExtentMap(FOLIO_CODEC), folioData: newTree(),
    nextId: 1, mmapBase: 0x7f0000000000, faultAcceptsPrivate: false,
  };
}

export function nextId(s: KernelState): number {
  return s.nextId++;
}

/** References beyond the page cache's own: what makes a folio unsafe to convert (I2). */
export function extraRefs(f: FolioRun): number {
  return f.mapCount + f.gets + f.pinsShort + f.pinsLong;
}

/** The refcount the kernel would see (GUP_PIN_COUNTING_BIAS = 1024 per FOLL_PIN). */
export function refcount(f: FolioRun): number {
  return (f.inCache ? 1 : 0) + f.mapCount + f.gets + 1024 * (f.pinsShort + f.pinsLong);
}

export { ExtentMap, ID_CODEC };
