// A Backend decorator for running a scenario on a kernel that may lack what the scenario's
// world offers: a VM type the scenario's machine has, a guest_memfd flag, or a conversion
// ioctl its profile has, which the running kernel does not advertise. Such calls come back as
// "unsupported" instead of the kernel's EINVAL/ENOTTY (scenario-language.md §8: a step the kernel
// cannot do is reported as unsupported, not failed). Capabilities are probed, never assumed.
// Where the scenario itself expects the feature to be absent, the kernel's answer passes through.
// Each such result names the capability (`capability`): diff and conform count a step as
// unsupported only then; any other "unsupported" is an error of the case there.
import { CAPS, GMEM_FLAGS, MEMORY_ATTRIBUTES, VM_TYPES, type VmType } from '../model/abi.js';
import type { MemoryAttributes2Args, MemoryAttributesArgs, U64 } from '../model/kernel.js';
import { hasMemoryAttributes, VM_TYPE_FACTS, type MachineConfig } from '../model/platform.js';
import type { Profile } from '../model/profile.js';
import { unsupported, type Backend, type BResult, type Unsupported } from './backend.js';
import { decorate } from './decorate.js';

/** The kernel does not advertise `capability` (a KVM_CAP_* name), so the step cannot run: why. */
export function notAdvertised(capability: string, why: string): Unsupported {
  return { ...unsupported(why), capability };
}

export function capabilityGate(inner: Backend, profile: Profile, machine: MachineConfig): Backend {
  const caps = new Map<string, bigint>();
  const cap = (n: number, vmFd?: number): bigint => {
    const key = `${n}/${vmFd ?? ''}`;
    if (!caps.has(key)) {
      const r = inner.checkExtension(n, vmFd);
      caps.set(key, r.ok ? r.value : 0n);
    }
    return caps.get(key)!;
  };
  const vmTypes = new Map<number, VmType>();

  const gated: Partial<Backend> = {
    createVm(type: U64): BResult<number> {
      const name = (Object.keys(VM_TYPES) as (keyof typeof VM_TYPES)[]).find((k) => BigInt(VM_TYPES[k]) === BigInt(type));
      const offeredHere = name !== undefined && (machine.vmTypes as readonly string[]).includes(name);
      if (offeredHere && !(cap(CAPS.VM_TYPES) & (1n << BigInt(type)))) {
        return notAdvertised('KVM_CAP_VM_TYPES', `VM type ${name} is not offered by this kernel (KVM_CAP_VM_TYPES = ${cap(CAPS.VM_TYPES)})`);
      }
      const r = inner.createVm(type);
      if (r.ok && name) vmTypes.set(r.value, name as VmType);
      return r;
    },
    createGuestMemfd(vmFd: number, size: U64, flags: U64): BResult<number> {
      const type = vmTypes.get(vmFd);
      // NO_DIRECT_MAP counts as missing only where the profile offers it (else EINVAL is the answer expected).
      const ndm = type !== undefined && profile.noDirectMap?.vmTypes.includes(type) ? GMEM_FLAGS.NO_DIRECT_MAP : 0n;
      const known = GMEM_FLAGS.MMAP | GMEM_FLAGS.INIT_SHARED | ndm | (profile.hugetlb ? GMEM_FLAGS.HUGETLB : 0n);
      const missing = BigInt(flags) & known & ~cap(CAPS.GUEST_MEMFD_FLAGS, vmFd);
      const modelOffers = type === undefined || !VM_TYPE_FACTS[type].privateMem || profile.initSharedForPrivateVms || !(missing & GMEM_FLAGS.INIT_SHARED);
      if (missing && modelOffers) return notAdvertised('KVM_CAP_GUEST_MEMFD_FLAGS', `guest_memfd flag(s) 0x${missing.toString(16)} not offered by this kernel (KVM_CAP_GUEST_MEMFD_FLAGS = ${cap(CAPS.GUEST_MEMFD_FLAGS, vmFd)})`);
      return inner.createGuestMemfd(vmFd, size, flags);
    },
    setMemoryAttributes(vmFd: number, args: MemoryAttributesArgs): BResult {
      if (hasMemoryAttributes(machine) && profile.privateTracking === 'vm' && cap(CAPS.MEMORY_ATTRIBUTES) === 0n) {
        return notAdvertised('KVM_CAP_MEMORY_ATTRIBUTES', 'this kernel has no KVM_SET_MEMORY_ATTRIBUTES (KVM_CAP_MEMORY_ATTRIBUTES = 0)');
      }
      return inner.setMemoryAttributes(vmFd, args);
    },
    setMemoryAttributes2(gmemFd: number, args: MemoryAttributes2Args): BResult {
      const capNo = profile.gmemAttributesCap;
      if (profile.conversion === 'gmem-ioctl' && (capNo === undefined || !(cap(capNo) & MEMORY_ATTRIBUTES.PRIVATE))) {
        return notAdvertised(capNo === undefined ? 'a guest_memfd conversion capability' : `capability ${capNo}`, `this kernel has no guest_memfd conversion ioctl (${profile.gmemIoctlName ?? 'KVM_SET_MEMORY_ATTRIBUTES2'})`);
      }
      return inner.setMemoryAttributes2(gmemFd, args);
    },
  };
  return decorate(inner, gated);
}
