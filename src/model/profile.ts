// ABI profiles: one object per kernel version, patch series or design variant. The operations
// consult these decisions; nothing else in the model may test which version it runs.
// Sources: kernel-semantics.md §0, §1.10, §4, §5.4 and design-discussion.md §2.2.
import type { Errno } from './abi.js';

export type ProfileStatus = 'mainline' | 'posted-series' | 'variant' | 'mutant';

/** How a shared->private conversion treats pages that carry references. */
export interface ToPrivatePolicy {
  /** Zap host userspace PTEs of the range before checking (v8, RFC25); RFC24 does not. */
  readonly zapHostMappings: boolean;
  /** Zap guest (secondary MMU) mappings before the check, even if the call then fails (RFC25). */
  readonly zapGuestBeforeCheck: boolean;
  /**
   * What blocks: `extra-refs` = any reference besides the page cache's (exact refcount check,
   * v8/RFC25); `mapped-or-dma-pinned` = folio_mapped() || folio_maybe_dma_pinned() (RFC24:
   * plain FOLL_GET references are not seen).
   */
  readonly blockers: 'extra-refs' | 'mapped-or-dma-pinned' | 'none';
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
  readonly toPrivate: ToPrivatePolicy;
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

/** "guest_memfd: In-place conversion support" v8 (2026-06-18), queued for 7.4. The default. */
export const IPC_V8: Profile = {
  name: 'ipc-v8',
  title: 'guest_memfd in-place conversion v8 (2026-06)',
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

export const PROFILES: readonly Profile[] = [MAINLINE_6_18, IPC_V8, RFC_2024, RFC_2025, DEFERRED, REVOKE];
export const DEFAULT_PROFILE = IPC_V8;

const mutant = (name: string, title: string, change: Omit<Partial<Profile>, 'toPrivate'> & { toPrivate?: Partial<ToPrivatePolicy> }): Profile => ({
  ...IPC_V8, ...change, name: `mutant-${name}`, title: `MUTANT (a seeded bug, no design): ${title}`, status: 'mutant',
  source: 'docs/checker.md §2.3 (gmemkit check --mutant)', toPrivate: { ...IPC_V8.toPrivate, ...change.toPrivate },
});

/** Seeded kernel bugs for the checker (gmemkit check --mutant); scenarios may name them too. */
export const MUTANT_PROFILES: readonly Profile[] = [
  mutant('no-refcount-check', 'to-private never checks references', { toPrivate: { blockers: 'none' } }),
  mutant('check-before-unmap', 'references are checked before host mappings are zapped (GUP-fast slips in)', { toPrivate: { checkBeforeZap: true } }),
  mutant('no-rollback', 'conversion page by page, keeping the pages before the blocked one', { toPrivate: { rollback: false } }),
  mutant('fault-accepts-private', 'the host fault path serves private pages', { faultAcceptsPrivate: true }),
];

export function profileNames(): string[] {
  return [...PROFILES, ...MUTANT_PROFILES].map((p) => p.name);
}

export function findProfile(name: string): Profile | undefined {
  return [...PROFILES, ...MUTANT_PROFILES].find((p) => p.name === name);
}
