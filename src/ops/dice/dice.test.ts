import { describe, expect, it } from 'vitest';
import { testGpu } from '../../../test/helpers/gpu.js';
import { rng } from '../../../test/helpers/random.js';
import { relErrorToScale } from '../../../test/helpers/compare.js';
import { allocTensor, numel } from '../../gpu/tensor-view.js';
import { diceLoss, diceLossBackward } from './kernel.js';

/** Float64 reference: loss = −(2 Σ y·p + 1) / (Σ y + Σ p + 1). */
function refSums(p: ArrayLike<number>, y: ArrayLike<number>): [number, number, number] {
  let i = 0;
  let sy = 0;
  let sp = 0;
  for (let k = 0; k < p.length; k++) {
    i += y[k]! * p[k]!;
    sy += y[k]!;
    sp += p[k]!;
  }
  return [i, sy, sp];
}
function refLoss(p: ArrayLike<number>, y: ArrayLike<number>): number {
  const [i, sy, sp] = refSums(p, y);
  return -(2 * i + 1) / (sy + sp + 1);
}

/** p in (0, 1) like a sigmoid's output; y a mask with soft edges: 0, 1, or in between. */
function inputs(n: number, seed: number): { p: Float32Array; y: Float32Array } {
  const r = rng(seed);
  const p = Float32Array.from({ length: n }, () => 0.001 + 0.998 * r());
  const y = Float32Array.from({ length: n }, () => {
    const u = r();
    return u < 0.5 ? 0 : u < 0.75 ? 1 : r();
  });
  return { p, y };
}

describe('Dice loss (batch-global, smooth 1) on the GPU', () => {
  const shapes = [
    [1, 1, 1, 1],
    [2, 9, 7, 1],
    [4, 24, 24, 1],
    [32, 96, 96, 1], // a training batch: 294,912 pixels
  ];
  for (const shape of shapes) {
    const n = numel(shape);
    it(`loss, sums and gradient match float64, ${JSON.stringify(shape)}`, async () => {
      const gpu = await testGpu();
      const { p: ps, y: ys } = inputs(n, n);
      const dLossValue = -0.75; // a non-trivial upstream gradient, to see that it scales dp
      const p = allocTensor(gpu, shape, ps);
      const y = allocTensor(gpu, shape, ys);
      const loss = allocTensor(gpu, [1]);
      const sums = allocTensor(gpu, [3]);
      const dLoss = allocTensor(gpu, [1], Float32Array.of(dLossValue));
      const dp = allocTensor(gpu, shape, new Float32Array(n).fill(123));
      // Forward and backward recorded back to back, no readback in between.
      diceLoss(gpu, p, y, loss, sums);
      diceLossBackward(gpu, p, y, sums, dLoss, dp);
      const [gotLoss] = await gpu.readFloat32(loss.view, 1);
      const gotSums = await gpu.readFloat32(sums.view, 3);
      const gotDp = await gpu.readFloat32(dp.view, n);

      const wantSums = refSums(ps, ys);
      const wantLoss = refLoss(ps, ys);
      const [i, sy, sp] = wantSums;
      const u = sy + sp + 1;
      const wantDp = Float64Array.from(ys, (yi) => (dLossValue * -(2 * yi * u - (2 * i + 1))) / (u * u));
      const errSums = Math.max(...wantSums.map((w, k) => Math.abs(gotSums[k]! - w) / Math.max(1, Math.abs(w))));
      const errLoss = Math.abs(gotLoss! - wantLoss) / Math.abs(wantLoss);
      const errDp = relErrorToScale(gotDp, wantDp);
      console.log(
        `dice ${JSON.stringify(shape)}: loss ${gotLoss} (want ${wantLoss.toPrecision(9)}), rel error loss ${errLoss.toExponential(2)}, sums ${errSums.toExponential(2)}, dp ${errDp.toExponential(2)} (of max |dp| ${wantDp.reduce((m, v) => Math.max(m, Math.abs(v)), 0).toExponential(2)})`,
      );
      expect(errSums).toBeLessThan(1e-5);
      expect(errLoss).toBeLessThan(1e-5);
      expect(errDp).toBeLessThan(1e-4);
      for (const t of [p, y, loss, sums, dLoss, dp]) t.dispose();
    });
  }

  it('gradient matches central finite differences of the float64 reference loss', async () => {
    const gpu = await testGpu();
    const shape = [3, 11, 13, 1];
    const n = numel(shape);
    const { p: ps, y: ys } = inputs(n, 2024);
    const p = allocTensor(gpu, shape, ps);
    const y = allocTensor(gpu, shape, ys);
    const loss = allocTensor(gpu, [1]);
    const sums = allocTensor(gpu, [3]);
    const dLoss = allocTensor(gpu, [1], Float32Array.of(1));
    const dp = allocTensor(gpu, shape);
    diceLoss(gpu, p, y, loss, sums);
    diceLossBackward(gpu, p, y, sums, dLoss, dp);
    const gotDp = await gpu.readFloat32(dp.view, n);

    // Every element (n = 429): the loss is a smooth rational function of p, so
    // h = 1e-3 leaves truncation error ~h²/U³ and rounding ~1e-16/h, both far below dp ~ 1/U.
    const p64 = Float64Array.from(ps);
    const h = 1e-3;
    const fd = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      const keep = p64[k]!;
      p64[k] = keep + h;
      const up = refLoss(p64, ys);
      p64[k] = keep - h;
      const down = refLoss(p64, ys);
      p64[k] = keep;
      fd[k] = (up - down) / (2 * h);
    }
    const softLabels = ys.filter((v) => v > 0 && v < 1).length;
    const err = relErrorToScale(gotDp, fd);
    console.log(`dice backward vs finite differences (${n} elements, ${softLabels} soft labels): max rel error ${err.toExponential(2)}`);
    expect(softLabels).toBeGreaterThan(n / 10);
    expect(err).toBeLessThan(1e-4);
    for (const t of [p, y, loss, sums, dLoss, dp]) t.dispose();
  });

  it('rejects mismatched shapes with a message naming the op and shapes', async () => {
    const gpu = await testGpu();
    const p = allocTensor(gpu, [2, 4, 4, 1]);
    const y = allocTensor(gpu, [2, 4, 5, 1]);
    const loss = allocTensor(gpu, [1]);
    const sums = allocTensor(gpu, [3]);
    expect(() => diceLoss(gpu, p, y, loss, sums)).toThrow(/diceLoss: y has shape \[2, 4, 5, 1\] but p has \[2, 4, 4, 1\]/);
    const y2 = allocTensor(gpu, [2, 4, 4, 1]);
    const sums2 = allocTensor(gpu, [1, 3]);
    expect(() => diceLoss(gpu, p, y2, loss, sums2)).toThrow(/diceLoss: sums must have shape \[3\], got \[1, 3\]/);
    for (const t of [p, y, y2, loss, sums, sums2]) t.dispose();
  });
});
