// The model's state as plain data, one type per kernel object. Behaviour lives in the
// operation modules (gmem.ts, mm.ts, kvm.ts, pipe.ts); invariants.ts constrains this state.
//
// guest_memfd keeps the kernel's split: the *inode* is the physical storage and tracks the
// properties of the memory (size, flags, shared/private attributes, the page cache); each
// *file* is one VM's view of that storage and tracks that VM's memslot bindings. The file
// pins the VM; VMAs pin the file; memslots pin nothing.
import type { VmType } from './abi.js';
import { newTree, type Tree } from './btree.js';
import { IntervalMap } from './interval-map.js';

export { newTree, type Tree };

/** 'pending': on the way to private under the deferred variant (host and GUP refused). */
export type Attr = 'shared' | 'private' | 'pending';

/** One order-0 folio. References are counted by kind (kernel-semantics §2.1 `extraRefs`). */
export interface Folio {
  readonly id: number;
  /** Page index in its inode (folios never move: I9). */
  readonly index: number;
  readonly ino: number;
  /** Page contents; null means all zero (or, before `uptodate`, never initialised). */
  data: Uint8Array | null;
  /** Zeroed before first exposure (I6); never cleared while the folio lives. */
  uptodate: boolean;
  /** The page cache's reference: false once punched or evicted ("detached"). */
  inCache: boolean;
  /** Host PTEs mapping the folio, over all mappings. */
  mapCount: number;
  /** FOLL_GET references (vmsplice pipe buffers). */
  gets: number;
  /** FOLL_PIN references, short-term (O_DIRECT in flight, pin_user_pages). */
  pinsShort: number;
  /** FOLL_PIN | FOLL_LONGTERM references (io_uring fixed buffers, VFIO DMA maps). */
  pinsLong: number;
}

export interface GmemInode {
  readonly ino: number;
  /** Type of the VM the inode was created on (decides the content rule of conversions). */
  readonly vmType: VmType;
  /** i_size in bytes; immutable (setattr fails). */
  readonly size: number;
  readonly flags: bigint;
  /**
   * Per-index shared/private attribute. In-place conversion profiles keep it here; mainline
   * fixes it per file from INIT_SHARED; RFC24 calls it "faultability".
   */
  readonly attributes: IntervalMap<Attr>;
  /** The page cache: page index -> folio. */
  readonly pages: Tree<number, Folio>;
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

/** A guest (secondary MMU) mapping of one gfn. */
export interface Spte {
  readonly folio: Folio;
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
  /** gfn -> guest mapping. */
  readonly sptes: Tree<number, Spte>;
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
  /** Present PTEs, keyed by file page index (anonymous: by page index within the VMA). */
  readonly ptes: Tree<number, Folio>;
}

export interface Pin {
  readonly id: number;
  readonly address: number;
  readonly length: number;
  readonly longterm: boolean;
  readonly write: boolean;
  /** The pinned folios, one per page, as they were when pinned (they may later be detached). */
  readonly folios: Folio[];
  released: boolean;
}

export interface PipeBuffer { readonly folio: Folio; offset: number; length: number }

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
  /** Source of object ids (VMs, files, folios, pins). */
  nextId: number;
  /** Top of the next mmap placement (mappings grow down, like mmap_base). */
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
    nextId: 1, mmapBase: 0x7f0000000000, faultAcceptsPrivate: false,
  };
}

export function nextId(s: KernelState): number {
  return s.nextId++;
}

/** References beyond the page cache's own: what makes a folio unsafe to convert (I2). */
export function extraRefs(f: Folio): number {
  return f.mapCount + f.gets + f.pinsShort + f.pinsLong;
}

/** The refcount the kernel would see (GUP_PIN_COUNTING_BIAS = 1024 per FOLL_PIN). */
export function refcount(f: Folio): number {
  return (f.inCache ? 1 : 0) + f.mapCount + f.gets + 1024 * (f.pinsShort + f.pinsLong);
}

export function newFolio(s: KernelState, ino: number, index: number): Folio {
  return {
    id: nextId(s), index, ino, data: null, uptodate: false, inCache: true,
    mapCount: 0, gets: 0, pinsShort: 0, pinsLong: 0,
  };
}
