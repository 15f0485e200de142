import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import '@tensorflow/tfjs-backend-cpu';
import { testGpu } from '../../../test/helpers/gpu.js';
import { rng } from '../../../test/helpers/random.js';
import { relErrorToScale } from '../../../test/helpers/compare.js';
import { finiteDifference } from '../../../test/reference/conv.js';
import { allocTensor, numel } from '../../gpu/tensor-view.js';
import { type DiceTerms, diceLoss, diceLossBackward } from './kernel.js';

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
/** Float64 reference image by image: minus the mean of each image's Dice (the first axis splits p and y into `images` runs). */
function refImageLoss(p: ArrayLike<number>, y: ArrayLike<number>, images: number): number {
  const seg = p.length / images;
  let total = 0;
  for (let g = 0; g < images; g++) {
    const a = Array.prototype.slice.call(p, g * seg, (g + 1) * seg) as number[];
    const b = Array.prototype.slice.call(y, g * seg, (g + 1) * seg) as number[];
    total += refLoss(a, b);
  }
  return total / images;
}

/**
 * The loss and its backward recorded back to back on the GPU, no readback in
 * between; returns the loss, every segment's four sums and dp (which starts
 * as garbage: the kernel overwrites it).
 */
async function runDice(shape: number[], ps: Float32Array, ys: Float32Array, terms: DiceTerms, dLossValue: number, wrt: 'p' | 'logits' = 'p'): Promise<{ loss: number; sums: Float32Array; dp: Float32Array }> {
  const gpu = await testGpu();
  const n = numel(shape);
  const count = 4 * (terms.groups ?? 1);
  const p = allocTensor(gpu, shape, ps);
  const y = allocTensor(gpu, shape, ys);
  const loss = allocTensor(gpu, [1]);
  const sums = allocTensor(gpu, [count]);
  const dLoss = allocTensor(gpu, [1], Float32Array.of(dLossValue));
  const dp = allocTensor(gpu, shape, new Float32Array(n).fill(123));
  try {
    diceLoss(gpu, p, y, loss, sums, terms);
    diceLossBackward(gpu, p, y, sums, dLoss, dp, terms, wrt);
    return { loss: (await gpu.readFloat32(loss.view, 1))[0]!, sums: await gpu.readFloat32(sums.view, count), dp: await gpu.readFloat32(dp.view, n) };
  } finally {
    for (const t of [p, y, loss, sums, dLoss, dp]) t.dispose();
  }
}

/** Central differences of a float64 loss with respect to every element of p, step h. */
function lossDifferences(loss: (p: Float64Array) => number, p: ArrayLike<number>, h: number): Float64Array {
  return Float64Array.from(finiteDifference((v) => Float64Array.of(loss(v)), p, [1], Array.from({ length: p.length }, (_, k) => k), h));
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
      const { p: ps, y: ys } = inputs(n, n);
      const dLossValue = -0.75; // a non-trivial upstream gradient, to see that it scales dp
      const { loss: gotLoss, sums, dp: gotDp } = await runDice(shape, ps, ys, {}, dLossValue);
      const gotSums = sums.subarray(0, 3);

      const wantSums = refSums(ps, ys);
      const wantLoss = refLoss(ps, ys);
      const [i, sy, sp] = wantSums;
      const u = sy + sp + 1;
      const wantDp = Float64Array.from(ys, (yi) => (dLossValue * -(2 * yi * u - (2 * i + 1))) / (u * u));
      const errSums = Math.max(...wantSums.map((w, k) => Math.abs(gotSums[k]! - w) / Math.max(1, Math.abs(w))));
      const errLoss = Math.abs(gotLoss - wantLoss) / Math.abs(wantLoss);
      const errDp = relErrorToScale(gotDp, wantDp);
      console.log(
        `dice ${JSON.stringify(shape)}: loss ${gotLoss} (want ${wantLoss.toPrecision(9)}), rel error loss ${errLoss.toExponential(2)}, sums ${errSums.toExponential(2)}, dp ${errDp.toExponential(2)} (of max |dp| ${wantDp.reduce((m, v) => Math.max(m, Math.abs(v)), 0).toExponential(2)})`,
      );
      expect(errSums).toBeLessThan(1e-5);
      expect(errLoss).toBeLessThan(1e-5);
      expect(errDp).toBeLessThan(1e-4);
    });
  }

  it('gradient matches central finite differences of the float64 reference loss', async () => {
    const shape = [3, 11, 13, 1];
    const n = numel(shape);
    const { p: ps, y: ys } = inputs(n, 2024);
    const { dp: gotDp } = await runDice(shape, ps, ys, {}, 1);

    // Every element (n = 429): the loss is a smooth rational function of p, so
    // h = 1e-3 leaves truncation error ~h²/U³ and rounding ~1e-16/h, both far below dp ~ 1/U.
    const fd = lossDifferences((v) => refLoss(v, ys), ps, 1e-3);
    const softLabels = ys.filter((v) => v > 0 && v < 1).length;
    const err = relErrorToScale(gotDp, fd);
    console.log(`dice backward vs finite differences (${n} elements, ${softLabels} soft labels): max rel error ${err.toExponential(2)}`);
    expect(softLabels).toBeGreaterThan(n / 10);
    expect(err).toBeLessThan(1e-4);
  });

  it('rejects mismatched shapes with a message naming the op and shapes', async () => {
    const gpu = await testGpu();
    const p = allocTensor(gpu, [2, 4, 4, 1]);
    const y = allocTensor(gpu, [2, 4, 5, 1]);
    const loss = allocTensor(gpu, [1]);
    const sums = allocTensor(gpu, [4]);
    expect(() => diceLoss(gpu, p, y, loss, sums)).toThrow(/diceLoss: y has shape \[2, 4, 5, 1\] but p has \[2, 4, 4, 1\]/);
    const y2 = allocTensor(gpu, [2, 4, 4, 1]);
    const sums2 = allocTensor(gpu, [1, 4]);
    expect(() => diceLoss(gpu, p, y2, loss, sums2)).toThrow(/diceLoss: sums must have shape \[4\], got \[1, 4\]/);
    for (const t of [p, y, y2, loss, sums, sums2]) t.dispose();
  });
});

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('Dice loss image by image (smooth 1, minus the mean Dice of the images) on the GPU', () => {
  // Odd image sizes (one element at a time), multiples of 4 (vec4s), one
  // image, a single pixel each, and a batch whose images need many workgroups.
  const shapes = [
    [1, 5, 7, 1],
    [3, 9, 7, 1],
    [5, 1, 1, 1],
    [4, 12, 12, 1],
    [6, 96, 96, 1],
  ];
  for (const shape of shapes) {
    const n = numel(shape);
    const images = shape[0]!;
    it(`loss, each image's sums and the gradient match float64, ${JSON.stringify(shape)}`, async () => {
      const { p: ps, y: ys } = inputs(n, 7 * n + 1);
      // Some images empty, as in the competition's data: their Dice is 1 / (Σ p + 1).
      const seg = n / images;
      for (let g = 1; g < images; g += 2) ys.fill(0, g * seg, (g + 1) * seg);
      const dLossValue = 1.5;
      const { loss: gotLoss, sums, dp: gotDp } = await runDice(shape, ps, ys, { groups: images }, dLossValue);
      const gotSums = sums.filter((_, k) => k % 4 !== 3);

      const wantSums: number[] = [];
      const wantDp = new Float64Array(n);
      for (let g = 0; g < images; g++) {
        const [i, sy, sp] = refSums(ps.subarray(g * seg, (g + 1) * seg), ys.subarray(g * seg, (g + 1) * seg));
        wantSums.push(i, sy, sp);
        const u = sy + sp + 1;
        for (let k = g * seg; k < (g + 1) * seg; k++) wantDp[k] = (dLossValue * ((2 * i + 1) - 2 * ys[k]! * u)) / (images * u * u);
      }
      const wantLoss = refImageLoss(ps, ys, images);
      const errSums = Math.max(...wantSums.map((w, k) => Math.abs(gotSums[k]! - w) / Math.max(1, Math.abs(w))));
      const errLoss = Math.abs(gotLoss - wantLoss) / Math.abs(wantLoss);
      const errDp = relErrorToScale(gotDp, wantDp);
      console.log(`dice by image ${JSON.stringify(shape)}: loss ${gotLoss} (want ${wantLoss.toPrecision(9)}), rel error loss ${errLoss.toExponential(2)}, sums ${errSums.toExponential(2)}, dp ${errDp.toExponential(2)}`);
      expect(errSums).toBeLessThan(1e-5);
      expect(errLoss).toBeLessThan(1e-5);
      expect(errDp).toBeLessThan(1e-4);
    });
  }

  it('gradient matches central finite differences of the float64 reference loss', async () => {
    const shape = [4, 7, 9, 1];
    const n = numel(shape);
    const images = shape[0]!;
    const { p: ps, y: ys } = inputs(n, 99);
    ys.fill(0, n / 4, n / 2); // the second image empty
    const { dp: gotDp } = await runDice(shape, ps, ys, { groups: images }, 1);
    const fd = lossDifferences((v) => refImageLoss(v, ys, images), ps, 1e-3);
    const err = relErrorToScale(gotDp, fd);
    console.log(`dice by image backward vs finite differences (${n} elements, ${images} images): max rel error ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-4);
  });

  it('loss and gradient match tfjs-core (CPU backend, tf.grad) on the same inputs', async () => {
    const shape = [5, 6, 10, 1];
    const n = numel(shape);
    const images = shape[0]!;
    const { p: ps, y: ys } = inputs(n, 31);
    ys.fill(0, 0, n / images); // the first image empty
    const { loss: gotLoss, dp: gotDp } = await runDice(shape, ps, ys, { groups: images }, 1);

    // The same loss written with tfjs ops: sums over each image's pixels, then the mean.
    const ty = tf.tensor(ys, [images, n / images]);
    const lossOf = (tp: tf.Tensor) => {
      const inter = tf.sum(tf.mul(ty, tp), 1);
      const dice = tf.div(tf.add(tf.mul(inter, 2), 1), tf.add(tf.add(tf.sum(ty, 1), tf.sum(tp, 1)), 1));
      return tf.neg(tf.mean(dice)) as tf.Scalar;
    };
    const tp = tf.tensor(ps, [images, n / images]);
    const theirLoss = lossOf(tp).dataSync()[0]!;
    const theirDp = tf.grad(lossOf)(tp).dataSync();
    const errDp = relErrorToScale(gotDp, theirDp);
    console.log(`dice by image vs tfjs-core: loss ours ${gotLoss}, tfjs ${theirLoss}; dp error relative to scale ${errDp.toExponential(2)}`);
    expect(Math.abs(gotLoss - theirLoss)).toBeLessThan(1e-6);
    expect(errDp).toBeLessThan(1e-4);
    tf.dispose([ty, tp]);
  });

  it('one image is the batch-global loss', async () => {
    const gpu = await testGpu();
    const shape = [1, 10, 10, 1];
    const { p: ps, y: ys } = inputs(100, 5);
    const p = allocTensor(gpu, shape, ps);
    const y = allocTensor(gpu, shape, ys);
    const a = allocTensor(gpu, [1]);
    const b = allocTensor(gpu, [1]);
    const sa = allocTensor(gpu, [4]);
    const sb = allocTensor(gpu, [4]);
    diceLoss(gpu, p, y, a, sa);
    diceLoss(gpu, p, y, b, sb, { groups: 1 });
    expect(await gpu.readFloat32(b.view, 1)).toEqual(await gpu.readFloat32(a.view, 1));
    for (const t of [p, y, a, b, sa, sb]) t.dispose();
  });

  it('rejects a split into unequal segments and sums of the wrong size', async () => {
    const gpu = await testGpu();
    const p = allocTensor(gpu, [3, 4, 4, 1]);
    const y = allocTensor(gpu, [3, 4, 4, 1]);
    const loss = allocTensor(gpu, [1]);
    const sums = allocTensor(gpu, [12]);
    const sums3 = allocTensor(gpu, [4]);
    expect(() => diceLoss(gpu, p, y, loss, sums, { groups: 5 })).toThrow(/diceLoss: \[3, 4, 4, 1\] \(48 elements\) cannot be split into 5 equal segments/);
    expect(() => diceLoss(gpu, p, y, loss, sums3, { groups: 3 })).toThrow(/diceLoss: sums must have shape \[12\], got \[4\]/);
    expect(() => diceLossBackward(gpu, p, y, sums3, loss, p, { groups: 3 })).toThrow(/diceLossBackward: sums must have shape \[12\]/);
    expect(() => diceLoss(gpu, p, y, loss, sums3, { bce: -1 })).toThrow(/diceLoss: the cross-entropy's weight must be finite and ≥ 0, got -1/);
    for (const t of [p, y, loss, sums, sums3]) t.dispose();
  });
});

/**
 * Float64 reference: the Dice loss of `groups` segments plus λ · mean
 * cross-entropy, p clipped as Keras does, to [1e-7, 1 − 1e-7] in float32
 * (whose 1 − 1e-7 is 1 − 2⁻²³ · 1.000…, so that 1 − q is 1.19e-7 at the top).
 */
function refBceDice(p: ArrayLike<number>, y: ArrayLike<number>, groups: number, bce: number): number {
  let ce = 0;
  for (let k = 0; k < p.length; k++) {
    const q = Math.min(Math.max(p[k]!, Math.fround(1e-7)), Math.fround(1 - 1e-7));
    ce -= y[k]! * Math.log(q) + (1 - y[k]!) * Math.log(1 - q);
  }
  return refImageLoss(p, y, groups) + (bce * ce) / p.length;
}

describe('Dice loss with binary cross-entropy on the GPU', () => {
  const cases = [
    { shape: [2, 9, 7, 1], groups: 1 },
    { shape: [2, 9, 7, 1], groups: 2 },
    { shape: [4, 12, 12, 1], groups: 1 },
    { shape: [4, 12, 12, 1], groups: 4 },
  ];
  for (const { shape, groups } of cases) {
    const n = numel(shape);
    it(`loss and gradient match float64, ${JSON.stringify(shape)} in ${groups} Dice segment(s), clipped probabilities included`, async () => {
      const { p: ps, y: ys } = inputs(n, 3 * n + groups);
      // Probabilities of a saturated sigmoid, outside the clip: the value is clamped, the gradient is not.
      const outside = [0, 5, 9];
      ps[0] = 1e-9;
      ps[5] = 1 - 2 ** -24;
      ps[9] = 3e-8;
      const lambda = 0.7;
      const dLossValue = 1.25;
      const { loss: gotLoss, dp: gotDp } = await runDice(shape, ps, ys, { groups, bce: lambda }, dLossValue);
      const seg = n / groups;
      const wantDp = new Float64Array(n);
      for (let g = 0; g < groups; g++) {
        const [i, sy, sp] = refSums(ps.subarray(g * seg, (g + 1) * seg), ys.subarray(g * seg, (g + 1) * seg));
        const u = sy + sp + 1;
        for (let k = g * seg; k < (g + 1) * seg; k++) {
          const pk = ps[k]!;
          const ce = (pk - ys[k]!) / (pk * (1 - pk));
          wantDp[k] = dLossValue * (((2 * i + 1) - 2 * ys[k]! * u) / (groups * u * u) + (lambda * ce) / n);
        }
      }
      const wantLoss = refBceDice(ps, ys, groups, lambda);
      const errLoss = Math.abs(gotLoss - wantLoss) / Math.abs(wantLoss);
      // The saturated elements' gradients are orders of magnitude larger: each is compared on its own.
      const rest = (a: ArrayLike<number>) => Array.from(a).filter((_, k) => !outside.includes(k));
      const errDp = relErrorToScale(rest(gotDp), rest(wantDp));
      const errOutside = Math.max(...outside.map((k) => Math.abs(gotDp[k]! - wantDp[k]!) / Math.abs(wantDp[k]!)));
      console.log(`dice + bce ${JSON.stringify(shape)}, ${groups} segment(s): loss ${gotLoss} (want ${wantLoss.toPrecision(9)}), rel error ${errLoss.toExponential(2)}, dp ${errDp.toExponential(2)}, saturated dp ${errOutside.toExponential(2)}`);
      expect(errLoss).toBeLessThan(1e-5);
      expect(errDp).toBeLessThan(1e-4);
      expect(errOutside).toBeLessThan(1e-4);
    });
  }

  it('gradient matches central finite differences of the float64 reference, and tfjs-core', async () => {
    const shape = [3, 5, 8, 1];
    const n = numel(shape);
    const { p: ps, y: ys } = inputs(n, 404);
    const lambda = 1.5;
    const { loss: gotLoss, dp: gotDp } = await runDice(shape, ps, ys, { bce: lambda }, 1);
    const fd = lossDifferences((v) => refBceDice(v, ys, 1, lambda), ps, 1e-5); // p stays in [0.001, 0.999], where the cross-entropy's curvature is at most ~1e6
    const errFd = relErrorToScale(gotDp, fd);

    const ty = tf.tensor(ys);
    const lossOf = (tp: tf.Tensor) => {
      const dice = tf.div(tf.add(tf.mul(tf.sum(tf.mul(ty, tp)), 2), 1), tf.add(tf.add(tf.sum(ty), tf.sum(tp)), 1));
      const q = tf.clipByValue(tp, 1e-7, 1 - 1e-7);
      const ce = tf.neg(tf.mean(tf.add(tf.mul(ty, tf.log(q)), tf.mul(tf.sub(1, ty), tf.log(tf.sub(1, q))))));
      return tf.add(tf.neg(dice), tf.mul(ce, lambda)) as tf.Scalar;
    };
    const tp = tf.tensor(ps);
    const theirLoss = lossOf(tp).dataSync()[0]!;
    const theirDp = tf.grad(lossOf)(tp).dataSync();
    const errTf = relErrorToScale(gotDp, theirDp);
    console.log(`dice + bce backward: vs finite differences ${errFd.toExponential(2)}, vs tfjs-core ${errTf.toExponential(2)}; loss ours ${gotLoss}, tfjs ${theirLoss}`);
    expect(errFd).toBeLessThan(1e-4);
    expect(errTf).toBeLessThan(1e-4);
    expect(Math.abs(gotLoss - theirLoss) / Math.abs(theirLoss)).toBeLessThan(1e-5);
    tf.dispose([ty, tp]);
  });
});

describe('Dice loss with binary cross-entropy at probabilities of exactly 0 and 1', () => {
  it('keeps the gradient finite where the sigmoid has rounded to 0 or 1', async () => {
    const { loss: gotLoss, dp: gotDp } = await runDice([1, 2, 2, 1], Float32Array.of(0, 1, 0, 1), Float32Array.of(0, 1, 1, 0), { bce: 1 }, 1);
    // Two right, two wrong at the clip: the cross-entropy is 2 · −log(1e-7) / 4 in float32 terms.
    expect(gotLoss).toBeCloseTo(refBceDice([0, 1, 0, 1], [0, 1, 1, 0], 1, 1), 4);
    expect(gotDp.every(Number.isFinite)).toBe(true);
    // Wrong ones pull towards the mask, hard; right ones only by the Dice term.
    expect(gotDp[2]).toBeLessThan(-1e20);
    expect(gotDp[3]).toBeGreaterThan(1e20);
    expect(Math.abs(gotDp[0]!)).toBeLessThan(1);
  });
});

describe('Dice loss backward with respect to the logits of p = sigmoid(z)', () => {
  const sigmoid64 = (z: number) => 1 / (1 + Math.exp(-z));
  /** z in [−6, 6] (p inside the cross-entropy's clip), p = sigmoid(z) rounded to f32 as the GPU's would be. */
  const logits = (n: number, seed: number) => {
    const r = rng(seed);
    const z = Float64Array.from({ length: n }, () => -6 + 12 * r());
    return { z, p: Float32Array.from(z, sigmoid64) };
  };
  const cases = [
    { shape: [2, 9, 7, 1], groups: 1, bce: 0 }, // 126 elements: vec4s (backward4)
    { shape: [3, 5, 3, 1], groups: 3, bce: 0.7 }, // 15 a segment: one at a time (backward)
    { shape: [4, 12, 12, 1], groups: 4, bce: 1.5 },
  ];
  for (const { shape, groups, bce } of cases) {
    it(`is the Dice term's gradient times p (1 − p) plus λ/n (p − y), against float64, finite differences in z and tfjs-core: ${JSON.stringify(shape)}, ${groups} segment(s), λ ${bce}`, async () => {
      const n = numel(shape);
      const { z, p: ps } = logits(n, 17 * n + groups);
      const { y: ys } = inputs(n, 5 * n + groups);
      const dLossValue = 1.25;
      const { dp: got } = await runDice(shape, ps, ys, { groups, bce }, dLossValue, 'logits');
      const seg = n / groups;
      const want = new Float64Array(n);
      for (let g = 0; g < groups; g++) {
        const [i, sy, sp] = refSums(ps.subarray(g * seg, (g + 1) * seg), ys.subarray(g * seg, (g + 1) * seg));
        const u = sy + sp + 1;
        for (let k = g * seg; k < (g + 1) * seg; k++) {
          const pk = ps[k]!;
          want[k] = dLossValue * ((((2 * i + 1) - 2 * ys[k]! * u) / (groups * u * u)) * pk * (1 - pk) + (bce * (pk - ys[k]!)) / n);
        }
      }
      const lossOfZ = (v: ArrayLike<number>) => dLossValue * refBceDice(Array.from(v, sigmoid64), ys, groups, bce);
      const fd = lossDifferences(lossOfZ, z, 1e-5);

      const ty = tf.tensor(ys);
      const lossOf = (tz: tf.Tensor) => {
        const tp = tf.sigmoid(tz);
        const perImage = (a: tf.Tensor) => tf.sum(tf.reshape(a, [groups, seg]), 1);
        const dice = tf.div(tf.add(tf.mul(perImage(tf.mul(ty, tp)), 2), 1), tf.add(tf.add(perImage(ty), perImage(tp)), 1));
        const q = tf.clipByValue(tp, 1e-7, 1 - 1e-7);
        const ce = tf.neg(tf.mean(tf.add(tf.mul(ty, tf.log(q)), tf.mul(tf.sub(1, ty), tf.log(tf.sub(1, q))))));
        return tf.mul(tf.add(tf.neg(tf.mean(dice)), tf.mul(ce, bce)), dLossValue) as tf.Scalar;
      };
      const tz = tf.tensor(Float32Array.from(z));
      const theirs = tf.grad(lossOf)(tz).dataSync();
      const [errRef, errFd, errTf] = [relErrorToScale(got, want), relErrorToScale(got, fd), relErrorToScale(got, theirs)];
      console.log(`dice${bce ? ' + bce' : ''} backward in z ${JSON.stringify(shape)}, ${groups} segment(s): vs float64 ${errRef.toExponential(2)}, finite differences ${errFd.toExponential(2)}, tfjs-core ${errTf.toExponential(2)}`);
      expect(errRef).toBeLessThan(1e-5);
      expect(errFd).toBeLessThan(1e-4);
      expect(errTf).toBeLessThan(1e-4);
      tf.dispose([ty, tz]);
    });
  }

  it('keeps the cross-entropy\'s pull λ/n (p − y) where the sigmoid has rounded to exactly 0 or 1', async () => {
    const ps = Float32Array.of(0, 1, 0, 1);
    const ys = Float32Array.of(0, 1, 1, 0);
    const { dp: viaZ } = await runDice([1, 2, 2, 1], ps, ys, { bce: 1 }, 1, 'logits');
    // p (1 − p) is 0 at each: the Dice term vanishes, the cross-entropy's is λ/n (p − y) with n = 4.
    expect(Array.from(viaZ)).toEqual([0, 0, -0.25, 0.25]);
    // The two steps apart lose it: ∂L/∂p times the sigmoid's p (1 − p) is 0 where p is 0 or 1.
    const { dp: viaP } = await runDice([1, 2, 2, 1], ps, ys, { bce: 1 }, 1);
    expect(Array.from(viaP, (g, k) => g * ps[k]! * (1 - ps[k]!)).every((g) => g === 0)).toBe(true);
  });
});
