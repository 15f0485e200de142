import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import '@tensorflow/tfjs-backend-cpu';
import { testGpu } from '../../../test/helpers/gpu.js';
import { maxRelError, randomArray } from '../../../test/helpers/random.js';
import { finiteDifference } from '../../../test/reference/conv.js';
import { allocTensor } from '../../gpu/tensor-view.js';
import { batchNormBackward, batchNormInference, batchNormTrain } from './kernel.js';
import { Tape, Tensor, batchNorm, mul, noGrad, sum } from '../../autograd/index.js';

const EPS = 1e-3;
const MOMENTUM = 0.99;

/** Each channel's mean and biased variance over the pixels, in float64. */
function moments(x: ArrayLike<number>, c: number): { mean: Float64Array; variance: Float64Array } {
  const n = x.length / c;
  const mean = new Float64Array(c);
  const variance = new Float64Array(c);
  for (let i = 0; i < x.length; i++) mean[i % c] += x[i]! / n;
  for (let i = 0; i < x.length; i++) variance[i % c] += (x[i]! - mean[i % c]!) ** 2 / n;
  return { mean, variance };
}

function forwardRef(x: ArrayLike<number>, c: number, gamma: ArrayLike<number>, beta: ArrayLike<number>, mean: ArrayLike<number>, variance: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v, i) => gamma[i % c]! * (v - mean[i % c]!) / Math.sqrt(variance[i % c]! + EPS) + beta[i % c]!);
}

/** Gradients of L = Σ dy · y through the batch's statistics, by the chain rule written out. */
function backwardRef(x: ArrayLike<number>, c: number, gamma: ArrayLike<number>, dy: ArrayLike<number>) {
  const n = x.length / c;
  const { mean, variance } = moments(x, c);
  const sg = new Float64Array(c);
  const sgx = new Float64Array(c);
  const xhat = Float64Array.from(x, (v, i) => (v - mean[i % c]!) / Math.sqrt(variance[i % c]! + EPS));
  for (let i = 0; i < x.length; i++) {
    sg[i % c] += dy[i]!;
    sgx[i % c] += dy[i]! * xhat[i]!;
  }
  const dx = Float64Array.from(x, (_, i) => (gamma[i % c]! / Math.sqrt(variance[i % c]! + EPS)) * (dy[i]! - (sg[i % c]! + xhat[i]! * sgx[i % c]!) / n));
  return { dx, dgamma: sgx, dbeta: sg };
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('batch normalisation', () => {
  it('the reference backward agrees with finite differences of the reference forward', () => {
    const c = 3;
    const x = randomArray(4 * 5 * c, 1);
    const gamma = randomArray(c, 2, 0.5, 1.5);
    const beta = randomArray(c, 3);
    const dy = randomArray(x.length, 4);
    const f = (xv: ArrayLike<number>, g: ArrayLike<number>, b: ArrayLike<number>) => {
      const m = moments(xv, c);
      return forwardRef(xv, c, g, b, m.mean, m.variance);
    };
    const want = backwardRef(x, c, gamma, dy);
    const coords = [0, 7, 13, 31, 59];
    expect(maxRelError(coords.map((i) => want.dx[i]!), finiteDifference((v) => f(v, gamma, beta), x, dy, coords))).toBeLessThan(1e-6);
    expect(maxRelError(want.dgamma, finiteDifference((v) => f(x, v, beta), gamma, dy, [0, 1, 2]))).toBeLessThan(1e-6);
    expect(maxRelError(want.dbeta, finiteDifference((v) => f(x, gamma, v), beta, dy, [0, 1, 2]))).toBeLessThan(1e-6);
  });

  // Fewer channels than a workgroup's 64, more and not a multiple, exactly 64;
  // one chunk of pixels and many (9,216 pixels: 144 chunks of 64); one pixel.
  for (const shape of [[2, 5, 3, 3], [1, 7, 7, 70], [3, 9, 9, 64], [4, 48, 48, 8], [1, 1, 1, 5]] as [number, number, number, number][]) {
    it(`training forward, running statistics and backward (fresh and accumulated) against float64, x ${shape.join('×')}`, async () => {
      const gpu = await testGpu();
      const c = shape[3];
      const n = shape.reduce((a, b) => a * b, 1);
      const xv = randomArray(n, n + 1, -2, 3);
      const gv = randomArray(c, 2, 0.5, 1.5);
      const bv = randomArray(c, 3);
      const rm0 = randomArray(c, 5);
      const rv0 = randomArray(c, 6, 0.5, 2);
      const dyv = randomArray(n, 7);
      const init = randomArray(n, 8);
      const pinit = randomArray(c, 9);
      const t = {
        x: allocTensor(gpu, shape, xv), gamma: allocTensor(gpu, [c], gv), beta: allocTensor(gpu, [c], bv),
        mean: allocTensor(gpu, [c], rm0), variance: allocTensor(gpu, [c], rv0), stats: allocTensor(gpu, [c, 2]), y: allocTensor(gpu, shape),
        dy: allocTensor(gpu, shape, dyv), dx: allocTensor(gpu, shape), dg: allocTensor(gpu, [c]), db: allocTensor(gpu, [c]),
        dxAcc: allocTensor(gpu, shape, init), dgAcc: allocTensor(gpu, [c], pinit), dbAcc: allocTensor(gpu, [c], pinit),
      };
      batchNormTrain(gpu, t.x, t.gamma, t.beta, { mean: t.mean, variance: t.variance }, t.stats, t.y);
      batchNormBackward(gpu, t.x, t.dy, t.gamma, t.stats, t.dx, t.dg, t.db);
      batchNormBackward(gpu, t.x, t.dy, t.gamma, t.stats, t.dxAcc, t.dgAcc, t.dbAcc, { accumulate: true, accumulateParams: true });
      const m = moments(xv, c);
      const want = backwardRef(xv, c, gv, dyv);
      const read = (v: { view: Parameters<typeof gpu.readFloat32>[0] }, k: number) => gpu.readFloat32(v.view, k);
      const errs = {
        y: maxRelError(await read(t.y, n), forwardRef(xv, c, gv, bv, m.mean, m.variance)),
        mean: maxRelError(await read(t.mean, c), Array.from(rm0, (v, i) => MOMENTUM * v + (1 - MOMENTUM) * m.mean[i]!)),
        // Keras 2's running variance: the sample variance, N / (N − 1 − ε) times the batch's.
        variance: maxRelError(await read(t.variance, c), Array.from(rv0, (v, i) => MOMENTUM * v + (1 - MOMENTUM) * m.variance[i]! * (n / c) / (n / c - 1 - EPS))),
        dx: maxRelError(await read(t.dx, n), want.dx),
        dgamma: maxRelError(await read(t.dg, c), want.dgamma),
        dbeta: maxRelError(await read(t.db, c), want.dbeta),
        dxAcc: maxRelError(await read(t.dxAcc, n), Array.from(want.dx, (v, i) => v + init[i]!)),
        dgammaAcc: maxRelError(await read(t.dgAcc, c), Array.from(want.dgamma, (v, i) => v + pinit[i]!)),
        dbetaAcc: maxRelError(await read(t.dbAcc, c), Array.from(want.dbeta, (v, i) => v + pinit[i]!)),
      };
      console.log(`batchNorm ${shape.join('×')}: max rel errors ${Object.entries(errs).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')}`);
      for (const [k, e] of Object.entries(errs)) expect(e, k).toBeLessThan(1e-4);
      for (const v of Object.values(t)) v.dispose();
    });
  }

  it('keeps the variance of values far from zero (a mean 1000 times the spread) within float32 rounding', async () => {
    const gpu = await testGpu();
    const shape = [8, 32, 32, 4] as const;
    const n = 8 * 32 * 32 * 4;
    const xv = randomArray(n, 21, -1, 1).map((v) => 1000 + v);
    const x = allocTensor(gpu, shape, xv);
    const gamma = allocTensor(gpu, [4], new Float32Array(4).fill(1));
    const beta = allocTensor(gpu, [4], new Float32Array(4));
    // Momentum 0: the running variance is the batch's (times N / (N − 1 − ε)).
    const mean = allocTensor(gpu, [4], new Float32Array(4));
    const variance = allocTensor(gpu, [4], new Float32Array(4));
    const stats = allocTensor(gpu, [4, 2]);
    const y = allocTensor(gpu, shape);
    batchNormTrain(gpu, x, gamma, beta, { mean, variance }, stats, y, { momentum: 0 });
    // Against the float32 inputs' exact moments: x near 1000 holds them to about 6e-5 (half an ulp).
    const m = moments(xv, 4);
    const pixels = n / 4;
    const err = maxRelError(await gpu.readFloat32(variance.view, 4), Array.from(m.variance, (v) => (v * pixels) / (pixels - 1 - EPS)));
    console.log(`batchNorm variance at mean 1000, spread 1: max rel error ${err.toExponential(2)}`);
    // (Σ x² − N·μ² in float32 would lose the spread under the mean's rounding here.)
    expect(err).toBeLessThan(1e-4);
    for (const t of [x, gamma, beta, mean, variance, stats, y]) t.dispose();
  });

  it('inference normalises with the running statistics', async () => {
    const gpu = await testGpu();
    const shape = [2, 6, 5, 7] as const;
    const n = 2 * 6 * 5 * 7;
    const xv = randomArray(n, 31);
    const gv = randomArray(7, 32, 0.5, 1.5);
    const bv = randomArray(7, 33);
    const rm = randomArray(7, 34);
    const rv = randomArray(7, 35, 0.1, 2);
    const t = { x: allocTensor(gpu, shape, xv), gamma: allocTensor(gpu, [7], gv), beta: allocTensor(gpu, [7], bv), mean: allocTensor(gpu, [7], rm), variance: allocTensor(gpu, [7], rv), y: allocTensor(gpu, shape) };
    batchNormInference(gpu, t.x, t.gamma, t.beta, { mean: t.mean, variance: t.variance }, t.y);
    expect(maxRelError(await gpu.readFloat32(t.y.view, n), forwardRef(xv, 7, gv, bv, rm, rv))).toBeLessThan(1e-5);
    // The running statistics are read, not moved.
    expect(Array.from(await gpu.readFloat32(t.mean.view, 7))).toEqual(Array.from(rm));
    for (const v of Object.values(t)) v.dispose();
  });

  it('through autograd, against tfjs-core (cpu): tf.moments and tf.batchNorm forward, tf.grad backward; the running statistics under noGrad', async () => {
    const gpu = await testGpu();
    const shape: [number, number, number, number] = [3, 5, 4, 6];
    const n = 3 * 5 * 4 * 6;
    const xv = randomArray(n, 41, -2, 2);
    const gv = randomArray(6, 42, 0.5, 1.5);
    const bv = randomArray(6, 43);
    const wv = randomArray(n, 44);
    const f = (xt: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const { mean, variance } = tf.moments(xt, [0, 1, 2]);
      return tf.batchNorm(xt, mean, variance, b, g, EPS);
    };
    const loss = (xt: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(f(xt, g, b), tf.tensor4d(wv, shape)));
    const want = f(tf.tensor4d(xv, shape), tf.tensor1d(gv), tf.tensor1d(bv)).dataSync();
    const [gx, gg, gb] = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => loss(a, b, c))([tf.tensor4d(xv, shape), tf.tensor1d(gv), tf.tensor1d(bv)]).map((t) => t.dataSync());
    const x = Tensor.from(gpu, shape, xv, true);
    const gamma = Tensor.from(gpu, [6], gv, true);
    const beta = Tensor.from(gpu, [6], bv, true);
    const w = Tensor.from(gpu, shape, wv);
    const running = { mean: Tensor.from(gpu, [6], new Float32Array(6)), variance: Tensor.from(gpu, [6], new Float32Array(6).fill(1)) };
    const tape = new Tape(gpu);
    const y = tape.run(() => batchNorm(x, gamma, beta, running));
    tape.backward(tape.run(() => sum(mul(y, w))));
    const errs = [
      maxRelError(await y.read(), want),
      maxRelError(await x.grad!.read(), gx!),
      maxRelError(await gamma.grad!.read(), gg!),
      maxRelError(await beta.grad!.read(), gb!),
    ];
    console.log(`batchNorm vs tfjs-cpu: max rel error y ${errs[0]!.toExponential(2)} dx ${errs[1]!.toExponential(2)} dγ ${errs[2]!.toExponential(2)} dβ ${errs[3]!.toExponential(2)}`);
    for (const e of errs) expect(e).toBeLessThan(1e-4);
    // Outside a tape: the running statistics, one step of momentum from (0, 1) towards the batch's.
    const m = moments(xv, 6);
    const inferred = noGrad(() => batchNorm(x, gamma, beta, running));
    const rm = Array.from(m.mean, (v) => (1 - MOMENTUM) * v);
    const pixels = n / 6;
    const rv = Array.from(m.variance, (v) => MOMENTUM + (1 - MOMENTUM) * v * (pixels / (pixels - 1 - EPS)));
    expect(maxRelError(await inferred.read(), forwardRef(xv, 6, gv, bv, rm, rv))).toBeLessThan(1e-5);
    inferred.dispose();
    tape.dispose();
    for (const t of [x, gamma, beta, w, running.mean, running.variance]) t.dispose();
  });

  for (const activation of ['relu', 'elu'] as const) {
    it(`fuses the ${activation} into the store, its backward before the normalisation's: against tfjs-core (cpu)`, async () => {
      const gpu = await testGpu();
      const shape: [number, number, number, number] = [2, 4, 5, 5];
      const n = 2 * 4 * 5 * 5;
      const xv = randomArray(n, 61, -2, 2);
      const gv = randomArray(5, 62, 0.5, 1.5);
      const bv = randomArray(5, 63);
      const wv = randomArray(n, 64);
      const act = (t: tf.Tensor) => (activation === 'relu' ? tf.relu(t) : tf.elu(t));
      const f = (xt: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
        const { mean, variance } = tf.moments(xt, [0, 1, 2]);
        return act(tf.batchNorm(xt, mean, variance, b, g, EPS));
      };
      const want = f(tf.tensor4d(xv, shape), tf.tensor1d(gv), tf.tensor1d(bv)).dataSync();
      const [gx, gg, gb] = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(f(a, b, c), tf.tensor4d(wv, shape))))([tf.tensor4d(xv, shape), tf.tensor1d(gv), tf.tensor1d(bv)]).map((t) => t.dataSync());
      const x = Tensor.from(gpu, shape, xv, true);
      const gamma = Tensor.from(gpu, [5], gv, true);
      const beta = Tensor.from(gpu, [5], bv, true);
      const w = Tensor.from(gpu, shape, wv);
      const running = { mean: Tensor.from(gpu, [5], new Float32Array(5)), variance: Tensor.from(gpu, [5], new Float32Array(5).fill(1)) };
      const tape = new Tape(gpu);
      const y = tape.run(() => batchNorm(x, gamma, beta, running, { activation }));
      tape.backward(tape.run(() => sum(mul(y, w))));
      const errs = [maxRelError(await y.read(), want), maxRelError(await x.grad!.read(), gx!), maxRelError(await gamma.grad!.read(), gg!), maxRelError(await beta.grad!.read(), gb!)];
      console.log(`batchNorm + ${activation} vs tfjs-cpu: max rel error y ${errs[0]!.toExponential(2)} dx ${errs[1]!.toExponential(2)} dγ ${errs[2]!.toExponential(2)} dβ ${errs[3]!.toExponential(2)}`);
      for (const e of errs) expect(e).toBeLessThan(1e-4);
      tape.dispose();
      for (const t of [x, gamma, beta, w, running.mean, running.variance]) t.dispose();
    });
  }

  it('refuses misshapen statistics and parameters and bad options, naming the op', async () => {
    const gpu = await testGpu();
    const x = allocTensor(gpu, [2, 3, 3, 4]);
    const y = allocTensor(gpu, [2, 3, 3, 4]);
    const p4 = allocTensor(gpu, [4]);
    const p3 = allocTensor(gpu, [3]);
    const stats = allocTensor(gpu, [4, 2]);
    const running = { mean: allocTensor(gpu, [4]), variance: allocTensor(gpu, [4]) };
    expect(() => batchNormTrain(gpu, x, p3, p4, running, stats, y)).toThrow('batchNormTrain: gamma must have shape [4], one value a channel, got [3]');
    expect(() => batchNormTrain(gpu, x, p4, p4, running, allocTensor(gpu, [4]), y)).toThrow('batchNormTrain: stats must have shape [4, 2], got [4]');
    expect(() => batchNormTrain(gpu, x, p4, p4, running, stats, y, { epsilon: 0 })).toThrow('batchNormTrain: epsilon must be a positive number, got 0');
    expect(() => batchNormInference(gpu, x, p4, p4, running, allocTensor(gpu, [2, 3, 3, 3]))).toThrow('batchNormInference: y has shape [2, 3, 3, 3] but x has [2, 3, 3, 4]; they must match');
    for (const t of [x, y, p4, p3, stats, running.mean, running.variance]) t.dispose();
  });
});
