// Backend decorators: a Backend that forwards every call to `inner` except the ones `overrides`
// replaces. Used by the capability gate and by the userspace half's memory map.
import type { Backend } from './backend.js';

export function decorate(inner: Backend, overrides: Partial<Backend>): Backend {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      const own = overrides[prop as keyof Backend];
      if (own) return own;
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
