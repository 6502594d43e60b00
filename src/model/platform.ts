// Platform facts: what each VM type is (private memory, how the guest encodes the access type,
// what conversion does to content) and what the host machine offers (the VM types its KVM
// build and CPU support). Profiles say which ABI; the platform says which hardware and Kconfig.
import { MODELLED_VM_TYPES, type VmType } from './abi.js';

export interface VmTypeFacts {
  /** kvm_arch_has_private_mem(): the VM can have private memory. */
  readonly privateMem: boolean;
  /**
   * The guest states private/shared per access (SNP C-bit, TDX shared bit). When false the
   * access type is the page's attribute, so no mismatch exit is possible (kernel-semantics §1.4).
   */
  readonly accessTypeFromHardware: boolean;
  /**
   * Content across a conversion (kernel-semantics I7): kept for software-protected VMs,
   * destroyed on SNP/TDX. The exact bytes a destroyed page shows are UNCONFIRMED; the model
   * shows zeros.
   */
  readonly conversionContent: 'preserve' | 'zero';
}

export const VM_TYPE_FACTS: Readonly<Record<VmType, VmTypeFacts>> = {
  default: { privateMem: false, accessTypeFromHardware: false, conversionContent: 'preserve' },
  sw_protected: { privateMem: true, accessTypeFromHardware: false, conversionContent: 'preserve' },
  snp: { privateMem: true, accessTypeFromHardware: true, conversionContent: 'zero' },
  tdx: { privateMem: true, accessTypeFromHardware: true, conversionContent: 'zero' },
};

/** The host: which VM types KVM accepts. CONFIG_KVM_GENERIC_MEMORY_ATTRIBUTES follows from them. */
export interface MachineConfig {
  readonly vmTypes: readonly VmType[];
  /** KVM_CAP_PRE_FAULT_MEMORY (needs the TDP MMU; 0 on the PVM hosts here: kernel-probe §1). */
  readonly preFaultMemory: boolean;
  /** Memslot address spaces of a VM without private memory (2 with SMM; KVM_CAP_MULTI_ADDRESS_SPACE). */
  readonly addressSpaces: number;
  /** Guest physical address bits (kvm_mmu_max_gfn(): 52 with the shadow MMU, else MAXPHYADDR). */
  readonly gpaBits: number;
}

/** A host with every modelled VM type (what the examples and most tests use). */
export const FULL_MACHINE: MachineConfig = { vmTypes: MODELLED_VM_TYPES, preFaultMemory: false, addressSpaces: 2, gpaBits: 52 };

/** The machines of kernel-probe.md: only the default VM type (§1), no SMM address space (PVM). */
export const PROBED_MACHINE: MachineConfig = { vmTypes: ['default'], preFaultMemory: false, addressSpaces: 1, gpaBits: 52 };

/** Memory attributes exist when a VM type with private memory is built in (x86 Kconfig). */
export function hasMemoryAttributes(machine: MachineConfig): boolean {
  return machine.vmTypes.some((t) => VM_TYPE_FACTS[t].privateMem);
}
