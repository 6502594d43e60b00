// ABI profiles: one object per kernel version, patch series or design variant. The operations
// consult these decisions; nothing else in the model may test which version it runs.
// Sources: kernel-semantics.md §0, §1.10, §4, §5.4 and design-discussion.md §2.2.
import type { Errno, VmType } from './abi.js';

/** `linux-next`: applied to a maintainer tree and in linux-next, in no mainline release yet. */
export type ProfileStatus = 'mainline' | 'linux-next' | 'posted-series' | 'variant' | 'mutant';

/** How a shared->private conversion treats pages that carry references. */
export interface ToPrivatePolicy {
  /** Zap host userspace PTEs of the range before checking (v8, RFC25); RFC24 does not. */
  readonly zapHostMappings: boolean;
  /** Zap guest (secondary MMU) mappings before the check, even if the call then fails (RFC25). */
  readonly zapGuestBeforeCheck: boolean;
  /**
   * What blocks: `extra-refs` = any reference besides the page cache's (exact refcount check,
   * v8/RFC25); `mapped-or-dma-pinned` = folio_mapped() || folio_maybe_dma_pinned() (RFC24:
   * plain FOLL_GET references are not seen); `in-use` = the applied series' three tests
   * (kernel-semantics.md §0.4): DMA-pinned (folio_maybe_dma_pinned), still mapped, or a refcount
   * other than the page cache's references + 1, after one drain of the per-CPU LRU batches.
   * For order-0 folios `in-use` blocks exactly what `extra-refs` blocks; only its reason differs.
   */
  readonly blockers: 'extra-refs' | 'mapped-or-dma-pinned' | 'in-use' | 'none';
  /** Mutant only: check references before zapping host mappings (a GUP-fast pin slips in between). */
  readonly checkBeforeZap: boolean;
  /** All or nothing (every series); false is a mutant that converts page by page and keeps what it did. */
  readonly rollback: boolean;
  /** The errno of a blocked call, and whether error_offset reports the first blocking page. */
  readonly blockedErrno: Errno;
  readonly reportsErrorOffset: boolean;
  /**
   * `fail`: a blocked call fails (every posted series). `defer` (variant): the range enters a
   * transient state (host faults SIGBUS, no new pins) and becomes private when the last
   * reference drops; the call returns 0 at once.
   */
  readonly onBlocked: 'fail' | 'defer';
  /** Revocable fd-based importers in the range are revoked instead of blocking (variant). */
  readonly revokeImporters: boolean;
}

export interface Profile {
  readonly name: string;
  readonly title: string;
  readonly status: ProfileStatus;
  /** Where the profile's behaviour is documented. */
  readonly source: string;
  /**
   * Who owns the shared/private state that KVM consults for guest faults: the per-VM
   * attribute xarray (`vm`, mainline and RFC24) or the guest_memfd inode (`gmem`, in-place).
   */
  readonly privateTracking: 'vm' | 'gmem';
  /**
   * How a conversion is requested: none (mainline: fixed per file), `vm-ioctl`
   * (KVM_SET_MEMORY_ATTRIBUTES also flips host faultability, RFC24) or `gmem-ioctl`.
   */
  readonly conversion: 'none' | 'vm-ioctl' | 'gmem-ioctl';
  /** The gmem ioctl's name in trace output (v8: KVM_SET_MEMORY_ATTRIBUTES2). */
  readonly gmemIoctlName?: string;
  /** Capability number of KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES, if the profile has it. */
  readonly gmemAttributesCap?: number;
  /** INIT_SHARED is accepted for VMs with private memory (v8 25/46). */
  readonly initSharedForPrivateVms: boolean;
  /** errno for binding a guest_memfd range that another memslot already binds. */
  readonly bindOverlapErrno: Errno;
  /** A zero-sized gmem conversion is a successful no-op (RFC25) instead of EINVAL. */
  readonly zeroSizeConversionIsNoop: boolean;
  /** Devices and backends may import guest_memfd ranges by fd+offset with revocation (variant). */
  readonly revocableImports: boolean;
  /** Mutant only: the host fault path serves private pages too. */
  readonly faultAcceptsPrivate?: boolean;
  /**
   * GUEST_MEMFD_FLAG_NO_DIRECT_MAP (DMR, kernel-semantics.md §1.11, §5.2): the VM types whose
   * guest_memfd may be created with it (reported by KVM_CAP_GUEST_MEMFD_FLAGS there). Absent:
   * the flag is unknown (EINVAL, as any unsupported flag).
   */
  readonly noDirectMap?: { readonly vmTypes: readonly VmType[] };
  /**
   * GUEST_MEMFD_FLAG_HUGETLB (RFC25, kernel-semantics.md §2.3): how guest_memfd backed by huge
   * pages splits and merges its folios. Absent: the flag is unknown (EINVAL).
   */
  readonly hugetlb?: HugetlbPolicy;
  readonly toPrivate: ToPrivatePolicy;
}

/**
 * Huge-page folios of a HugeTLB guest_memfd (kernel-semantics.md §2.3 [RFC25] rules 1-5 and the
 * choices §7 item 5 leaves open). Fixed by the model, not by fields: a split goes straight to
 * 4 KiB folios (rule 1, no 1G -> 2M -> 4K steps); a block with any shared page is allocated
 * split, so no huge folio is ever host-mapped and references live on 4 KiB folios only.
 */
export interface HugetlbPolicy {
  /**
   * When a huge-page-aligned block is merged back into one folio on to-private (and before a
   * whole-page punch): `no-shared-page` = only when none of its pages is still shared (rule 2);
   * `always` (MUTANT merge-while-shared) = every block the range overlaps.
   */
  readonly merge: 'no-shared-page' | 'always';
  /**
   * `after-check`: splits and merges happen after the refcount check, so a call that fails with
   * EAGAIN has changed no folio (rules 3 and 4). `before-check` (MUTANT split-without-check): the
   * folios are re-shaped first and stay so when the check then fails.
   */
  readonly reshape: 'after-check' | 'before-check';
}

const EAGAIN_WITH_OFFSET: ToPrivatePolicy = {
  zapHostMappings: true, zapGuestBeforeCheck: false, blockers: 'extra-refs',
  blockedErrno: 'EAGAIN', reportsErrorOffset: true, onBlocked: 'fail', revokeImporters: false,
  checkBeforeZap: false, rollback: true,
};

/** Linux 6.18: guest_memfd with MMAP and INIT_SHARED; no conversion of any kind in place. */
export const MAINLINE_6_18: Profile = {
  name: 'mainline-6.18',
  title: 'Linux 6.18 (measured on this machine kind: docs/kernel-probe.md)',
  status: 'mainline',
  source: 'docs/kernel-semantics.md §0.1, §1; docs/kernel-probe.md',
  privateTracking: 'vm',
  conversion: 'none',
  initSharedForPrivateVms: false,
  bindOverlapErrno: 'EINVAL',
  zeroSizeConversionIsNoop: false,
  revocableImports: false,
  toPrivate: EAGAIN_WITH_OFFSET, // unused: there is no conversion entry point
};

/** "guest_memfd: In-place conversion support" v8 (2026-06-18), as posted. */
export const IPC_V8: Profile = {
  name: 'ipc-v8',
  title: 'guest_memfd in-place conversion v8 (2026-06), as posted',
  status: 'posted-series',
  source: 'docs/kernel-semantics.md §1.10(b), §4, §5.4',
  privateTracking: 'gmem',
  conversion: 'gmem-ioctl',
  gmemIoctlName: 'KVM_SET_MEMORY_ATTRIBUTES2',
  gmemAttributesCap: 250,
  initSharedForPrivateVms: true,
  bindOverlapErrno: 'EINVAL',
  zeroSizeConversionIsNoop: false,
  revocableImports: false,
  toPrivate: EAGAIN_WITH_OFFSET,
};

/**
 * The in-place conversion series as applied (v13, linux-next next-20260923, for 7.4; in no
 * mainline release yet): v8's ABI with the capability renumbered to 252 and the "in use" test
 * before a to-private conversion (kernel-semantics.md §0.4). The default profile.
 */
export const NEXT_7_4: Profile = {
  ...IPC_V8,
  name: 'next-7.4',
  title: 'in-place conversion as applied to linux-next (v13, next-20260923, for 7.4; not in a mainline release)',
  status: 'linux-next',
  source: 'docs/kernel-semantics.md §0.4, §1.10(b), §5.4',
  gmemAttributesCap: 252,
  toPrivate: { ...EAGAIN_WITH_OFFSET, blockers: 'in-use' },
};

/**
 * "Direct Map Removal Support for guest_memfd" (v12, spring 2026; not merged, a redesign was
 * requested) on top of next-7.4: GUEST_MEMFD_FLAG_NO_DIRECT_MAP takes the folios out of the
 * kernel's direct map, and every GUP of such a mapping is refused with EFAULT. Not on TDX, which
 * clears pages through the direct map (kernel-semantics.md §1.11, §7 item 7).
 */
export const NO_DIRECT_MAP: Profile = {
  ...NEXT_7_4,
  name: 'no-direct-map',
  title: 'direct-map removal v12 (2026-04, posted, redesign requested) on top of next-7.4',
  status: 'posted-series',
  source: 'docs/kernel-semantics.md §1.11 [DMR], §5.2, §7 item 7',
  noDirectMap: { vmTypes: ['default', 'sw_protected', 'snp'] },
};

/** "1G page support for guest_memfd" RFC v1 (2024-09): faultability flipped by the VM ioctl. */
export const RFC_2024: Profile = {
  name: 'rfc-2024',
  title: '1G page support RFC v1 (2024-09): conversion through the per-VM ioctl',
  status: 'posted-series',
  source: 'docs/kernel-semantics.md §1.10(c) [RFC24]; docs/design-discussion.md §1.1',
  privateTracking: 'vm',
  conversion: 'vm-ioctl',
  initSharedForPrivateVms: true,
  bindOverlapErrno: 'EINVAL',
  zeroSizeConversionIsNoop: false,
  revocableImports: false,
  toPrivate: {
    zapHostMappings: false, zapGuestBeforeCheck: false, blockers: 'mapped-or-dma-pinned',
    blockedErrno: 'EINVAL', reportsErrorOffset: false, onBlocked: 'fail', revokeImporters: false,
    checkBeforeZap: false, rollback: true,
  },
};

/** "1G page support for guest_memfd" RFC v2 (2025-05): KVM_GMEM_CONVERT_{SHARED,PRIVATE}. */
export const RFC_2025: Profile = {
  name: 'rfc-2025',
  title: '1G page support RFC v2 (2025-05): KVM_GMEM_CONVERT_* ioctls',
  status: 'posted-series',
  source: 'docs/kernel-semantics.md §1.10(c) [RFC25], §5.5 struct kvm_gmem_convert',
  privateTracking: 'gmem',
  conversion: 'gmem-ioctl',
  gmemIoctlName: 'KVM_GMEM_CONVERT_PRIVATE/SHARED',
  initSharedForPrivateVms: true,
  bindOverlapErrno: 'EINVAL',
  zeroSizeConversionIsNoop: true,
  revocableImports: false,
  toPrivate: { ...EAGAIN_WITH_OFFSET, zapGuestBeforeCheck: true },
};

/**
 * Variant, not in any kernel: Fuad Tabba's 2025 deferred completion. A to-private conversion
 * that meets references does not fail; the range becomes transient (NONE_SHARED: host faults
 * SIGBUS, GUP fails) and turns private when the last reference is put.
 */
export const DEFERRED: Profile = {
  ...IPC_V8,
  name: 'deferred',
  title: 'VARIANT: deferred completion (Tabba 2025, rejected upstream) on the v8 ABI',
  status: 'variant',
  source: 'docs/kernel-semantics.md §0.3, §1.10(c) "Fuad v7"; docs/design-discussion.md §2.2',
  toPrivate: { ...EAGAIN_WITH_OFFSET, onBlocked: 'defer' },
};

/**
 * Variant, not in any kernel: revoke instead of pin. Importers (VFIO/iommufd, vhost-user) name
 * guest memory by fd+offset and hold no page references; a to-private conversion revokes their
 * mappings instead of failing, and they map again after the range is shared.
 */
export const REVOKE: Profile = {
  ...IPC_V8,
  name: 'revoke',
  title: 'VARIANT: revocable fd-based importers instead of pins (iommufd DMA-BUF direction) on the v8 ABI',
  status: 'variant',
  source: 'docs/design-discussion.md §1.3, §2.5; docs/kernel-semantics.md §7 item 4',
  revocableImports: true,
  toPrivate: { ...EAGAIN_WITH_OFFSET, revokeImporters: true },
};

/**
 * "1G page support for guest_memfd" RFC v2 (2025-05; not merged, a restart was announced in July
 * 2026): its HugeTLB rules of kernel-semantics.md §2.3 [RFC25] on top of next-7.4. With
 * GUEST_MEMFD_FLAG_HUGETLB and a huge page size the file is backed by huge folios; to-shared
 * splits the huge folios it touches into 4 KiB folios, to-private merges a block back once none
 * of its pages is shared, and a whole-page punch with referenced pages fails with EAGAIN.
 */
export const HUGETLB: Profile = {
  ...NEXT_7_4,
  name: 'hugetlb',
  title: 'HugeTLB split/merge of RFC v2 (2025-05, posted, not merged) on top of next-7.4',
  status: 'posted-series',
  source: 'docs/kernel-semantics.md §2.3 [RFC25], §1.7, §7 item 5',
  hugetlb: { merge: 'no-shared-page', reshape: 'after-check' },
};

export const PROFILES: readonly Profile[] = [MAINLINE_6_18, NEXT_7_4, IPC_V8, RFC_2024, RFC_2025, DEFERRED, REVOKE, NO_DIRECT_MAP, HUGETLB];
export const DEFAULT_PROFILE = NEXT_7_4;

const mutant = (name: string, title: string, change: Omit<Partial<Profile>, 'toPrivate'> & { toPrivate?: Partial<ToPrivatePolicy> }, base = IPC_V8): Profile => ({
  ...base, ...change, name: `mutant-${name}`, title: `MUTANT (a seeded bug, no design): ${title}`, status: 'mutant',
  source: 'docs/checker.md §2.3 (gmemkit check --mutant)', toPrivate: { ...base.toPrivate, ...change.toPrivate },
});

/** A seeded bug in the huge-page rules, on the hugetlb profile. */
function hugetlbMutant(name: string, title: string, change: Partial<HugetlbPolicy>): Profile {
  return {
    ...HUGETLB, name: `mutant-${name}`, title: `MUTANT (a seeded bug, no design): ${title}`, status: 'mutant',
    source: 'docs/kernel-semantics.md §2.3, §3 I12, I13 (a hugetlb mutant)', hugetlb: { ...HUGETLB.hugetlb!, ...change },
  };
}

/** Seeded kernel bugs for the checker (gmemkit check --mutant); scenarios may name them too. */
export const MUTANT_PROFILES: readonly Profile[] = [
  mutant('no-refcount-check', 'to-private never checks references', { toPrivate: { blockers: 'none' } }),
  mutant('check-before-unmap', 'references are checked before host mappings are zapped (GUP-fast slips in)', { toPrivate: { checkBeforeZap: true } }),
  mutant('no-rollback', 'conversion page by page, keeping the pages before the blocked one', { toPrivate: { rollback: false } }),
  mutant('fault-accepts-private', 'the host fault path serves private pages', { faultAcceptsPrivate: true }),
  mutant('no-host-zap', 'to-private leaves host mappings in place, so the in-use test refuses a mapped page (on no-direct-map)', { toPrivate: { zapHostMappings: false } }, NO_DIRECT_MAP),
  hugetlbMutant('merge-while-shared', 'a huge-page block is merged on to-private although one of its pages is still shared', { merge: 'always' }),
  hugetlbMutant('split-without-check', 'huge folios are split and merged before the refcount check, and stay so when it fails', { reshape: 'before-check' }),
];

export function profileNames(): string[] {
  return [...PROFILES, ...MUTANT_PROFILES].map((p) => p.name);
}

/** Whether a guest_memfd of this VM type may be created NO_DIRECT_MAP under the profile (DMR, kernel-semantics.md §1.11). */
export function offersNoDirectMap(p: Profile, vmType: VmType): boolean {
  return p.noDirectMap?.vmTypes.includes(vmType) ?? false;
}

export function findProfile(name: string): Profile | undefined {
  return [...PROFILES, ...MUTANT_PROFILES].find((p) => p.name === name);
}
