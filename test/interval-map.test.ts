// IntervalMap (the model's maple tree): random assign/delete sequences against a plain array of
// 64 slots. Every index reads the same, runs are maximal (no two adjacent runs with equal
// values), and clones are independent copies.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { IntervalMap } from '../src/model/interval-map.js';

const N = 64;
type Op = { kind: 'set'; lo: number; hi: number; v: number } | { kind: 'delete'; lo: number; hi: number } | { kind: 'clone' };
const range = fc.tuple(fc.nat(N), fc.nat(N)).map(([a, b]) => (a <= b ? [a, b] : [b, a]) as [number, number]);
const ops: fc.Arbitrary<Op> = fc.oneof(
  fc.tuple(range, fc.nat(3)).map(([[lo, hi], v]): Op => ({ kind: 'set', lo, hi, v })),
  range.map(([lo, hi]): Op => ({ kind: 'delete', lo, hi })),
  fc.constant<Op>({ kind: 'clone' }),
);

test('IntervalMap agrees with an array under random set/delete/clone, with maximal runs', () => {
  fc.assert(fc.property(fc.array(ops, { maxLength: 40 }), (seq) => {
    let m = new IntervalMap<number>();
    let ref: (number | undefined)[] = new Array(N).fill(undefined);
    const frozen: { m: IntervalMap<number>; ref: (number | undefined)[] }[] = [];
    for (const op of seq) {
      if (op.kind === 'set') { m.set(op.lo, op.hi, op.v); for (let i = op.lo; i < op.hi; i++) ref[i] = op.v; }
      else if (op.kind === 'delete') { m.delete(op.lo, op.hi); for (let i = op.lo; i < op.hi; i++) ref[i] = undefined; }
      else { frozen.push({ m: m.clone(), ref: [...ref] }); }
    }
    for (let i = 0; i < N; i++) assert.equal(m.get(i), ref[i], `index ${i}`);
    const segs = [...m.segments()];
    for (let k = 1; k < segs.length; k++) {
      assert.ok(segs[k - 1]!.hi <= segs[k]!.lo, 'segments overlap or are out of order');
      assert.ok(!(segs[k - 1]!.hi === segs[k]!.lo && segs[k - 1]!.value === segs[k]!.value), 'adjacent equal runs were not merged');
    }
    assert.equal(m.runs, segs.length);
    for (const f of frozen) for (let i = 0; i < N; i++) assert.equal(f.m.get(i), f.ref[i], 'a clone changed with its original');
    // cover() tiles exactly the asked range
    const cov = [...m.cover(5, 50)];
    assert.equal(cov[0]!.lo, 5);
    assert.equal(cov.at(-1)!.hi, 50);
    for (let k = 1; k < cov.length; k++) assert.equal(cov[k - 1]!.hi, cov[k]!.lo);
  }), { numRuns: 500 });
});
