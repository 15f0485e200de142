import { describe, expect, it } from 'vitest';
import { testGpu } from '../../../test/helpers/gpu.js';
import { randomArray } from '../../../test/helpers/random.js';
import { allocTensor, numel } from '../../gpu/tensor-view.js';
import { REDUCE_MAX_GROUPS, reduceGroups, sumAll } from './kernel.js';

/** Float64 sum, and Σ|x| as the scale errors are measured against (sums of mixed signs cancel). */
function refSum(xs: Float32Array): { sum: number; scale: number } {
  let sum = 0;
  let scale = 0;
  for (const v of xs) {
    sum += v;
    scale += Math.abs(v);
  }
  return { sum, scale };
}

describe('sumAll (two-level tree reduction) on the GPU', () => {
  const cases: { shape: number[]; lo: number; hi: number }[] = [
    { shape: [1], lo: 0, hi: 1 },
    { shape: [7], lo: 0, hi: 1 },
    { shape: [257], lo: -1, hi: 1 },
    { shape: [2, 7, 5, 3], lo: 0, hi: 1 },
    { shape: [65_537], lo: -1, hi: 1 },
    { shape: [32, 96, 96, 1], lo: 0, hi: 1 }, // a training batch of masks: 294,912 elements
    { shape: [32, 96, 96, 1], lo: -1, hi: 1 },
    // More than REDUCE_MAX_GROUPS · 256 elements: each invocation adds several in its loop.
    { shape: [REDUCE_MAX_GROUPS * 256 * 3 + 5], lo: 0, hi: 2 },
  ];
  for (const { shape, lo, hi } of cases) {
    const n = numel(shape);
    it(`matches a float64 sum, ${JSON.stringify(shape)} (${n} elements in [${lo}, ${hi}))`, async () => {
      const gpu = await testGpu();
      const xs = randomArray(n, n + lo, lo, hi);
      const x = allocTensor(gpu, shape, xs);
      const out = allocTensor(gpu, [1], Float32Array.of(12345));
      const before = gpu.memory().liveBuffers;
      sumAll(gpu, x, out);
      expect(gpu.memory().liveBuffers).toBe(before); // the scratch buffer went back to the pool
      const [got] = await gpu.readFloat32(out.view, 1);
      const { sum, scale } = refSum(xs);
      const err = Math.abs(got! - sum) / scale;
      const errOfSum = Math.abs(got! - sum) / Math.abs(sum);
      console.log(
        `sumAll ${JSON.stringify(shape)} (${reduceGroups(n)} groups): got ${got}, want ${sum}, rel error ${err.toExponential(2)} of Σ|x|, ${errOfSum.toExponential(2)} of |Σx|`,
      );
      expect(err).toBeLessThan(1e-4);
      if (lo >= 0) expect(err).toBeLessThan(1e-6); // positive terms: no cancellation, error is the tree's alone
      x.dispose();
      out.dispose();
    });
  }

  it('gives the same bits on repeated runs (no atomics)', async () => {
    const gpu = await testGpu();
    const xs = randomArray(100_003, 5, -1, 1);
    const x = allocTensor(gpu, [100_003], xs);
    const outs = [0, 1, 2].map(() => allocTensor(gpu, [1]));
    for (const o of outs) sumAll(gpu, x, o);
    const got = await Promise.all(outs.map((o) => gpu.readFloat32(o.view, 1)));
    expect(new Set(got.map((g) => g[0])).size).toBe(1);
    for (const t of [x, ...outs]) t.dispose();
  });

  it('rejects an output that is not [1] with a message naming the op and shapes', async () => {
    const gpu = await testGpu();
    const x = allocTensor(gpu, [4, 3]);
    const out = allocTensor(gpu, [3]);
    expect(() => sumAll(gpu, x, out)).toThrow(/sumAll: out must have shape \[1\], got \[3\] \(x has \[4, 3\]\)/);
    x.dispose();
    out.dispose();
  });
});
