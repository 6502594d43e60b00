// The checker's public API: the engine entry points, the model interfaces a model implements
// to plug in, and the bundled reference protocol. Re-exports only; it must never add logic.
export { check, checkLiveness } from './engine.js';
export { formatCounterexample } from './trace.js';
export type {
  AnyModel, CheckOptions, CheckResult, Counterexample, EdgeLabel, EdgeSink, ObjectModel, PackedModel,
  Progress, StateInvariant, StepAssertion, TraceStep, Value,
} from './types.js';
export { ReferenceModel } from './reference/model.js';
export {
  referenceParams, validateReferenceParams, type HolderKind, type ReferenceParams,
} from './reference/params.js';
