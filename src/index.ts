// gmemkit's public API: the kernel model and its profiles, the backend interface with the model
// and Linux backends, the userspace half, and the scenario runner. Deep imports of other
// modules are not part of the API.
export * from './model/abi.js';
export { Kernel, type KernelOptions, type MemoryAttributes2Args, type MemoryAttributesArgs, type MemoryRegion2, type MmapArgs, type U64 } from './model/kernel.js';
export { PROFILES, DEFAULT_PROFILE, findProfile, type Profile } from './model/profile.js';
export { FULL_MACHINE, PROBED_MACHINE, VM_TYPE_FACTS, type MachineConfig } from './model/platform.js';
export { INVARIANTS, checkState, type InvariantViolation } from './model/invariants.js';
export type { KResult, Failure } from './model/result.js';
export type { Backend, BackendIdentity, BResult, Violation } from './backend/backend.js';
export { ModelBackend, type ModelBackendOptions } from './backend/model-backend.js';
export { capabilityGate } from './backend/capability-gate.js';
export { LinuxBackend } from './linux/linux-backend.js';
export { Userspace, type ConversionEvents } from './userspace/userspace.js';
export { POLICIES, DEFAULT_POLICY, findPolicy, type Policy } from './userspace/policies.js';
export { loadScenarioFile, parseScenario, expandPaths, formatLoadError, ScenarioError, type LoadError, type Scenario, type Step } from './scenario/load.js';
export { runScenario, type ScenarioResult } from './scenario/run.js';
export { compareRuns, type ScenarioComparison } from './scenario/diff.js';
