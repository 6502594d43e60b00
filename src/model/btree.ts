// The B+ tree behind every ordered index of the model (page caches, PTEs, SPTEs, runs of
// interval maps). sorted-btree is CommonJS with an ES-style default export; this module is the
// one place that bridges that, so the rest of the model imports `Tree` and `newTree` only.
import { createRequire } from 'node:module';

type BTreeModule = typeof import('sorted-btree', { with: { 'resolution-mode': 'require' } });

const require = createRequire(import.meta.url);
const BTree = (require('sorted-btree') as BTreeModule).default;

export type Tree<K, V> = import('sorted-btree', { with: { 'resolution-mode': 'require' } }).default<K, V>;

export function newTree<K, V>(): Tree<K, V> {
  return new BTree<K, V>();
}
