// The reference protocol as a parallel-search model spec (parallel-protocol.ts): every worker
// thread builds the same ReferenceModel from its parameters.
// It must never hold model logic.
import type { ModelSpec } from '../parallel-protocol.js';
import { ReferenceModel } from './model.js';
import type { ReferenceParams } from './params.js';

export function referenceSpec(params: ReferenceParams): ModelSpec {
  return { module: import.meta.url, factory: 'makeReferenceModel', arg: params };
}

export function makeReferenceModel(params: ReferenceParams): ReferenceModel {
  return new ReferenceModel(params);
}
