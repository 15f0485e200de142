/**
 * The convolutions against an independent implementation: tfjs-core's CPU
 * backend, forward and (through tf.grad) backward, on the same inputs.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import '@tensorflow/tfjs-backend-cpu';
import { testGpu } from './helpers/gpu.js';
import { maxRelError, randomArray } from './helpers/random.js';
import { allocTensor } from '../src/gpu/tensor-view.js';
import {
  biasGradient,
  conv2d,
  conv2dBackwardInput,
  conv2dBackwardWeights,
  convTranspose2x2,
  convTranspose2x2BackwardInput,
  convTranspose2x2BackwardWeights,
} from '../src/ops/conv/index.js';
import { binary, unary } from '../src/ops/elementwise/kernel.js';

type S4 = [number, number, number, number];
const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('against tfjs-core (cpu backend)', () => {
  it('conv2d forward, ∂x, ∂w, ∂b', async () => {
    const gpu = await testGpu();
    const xs: S4 = [2, 7, 6, 5];
    const ws: S4 = [3, 3, 5, 9];
    const ys: S4 = [2, 7, 6, 9];
    const xv = randomArray(prod(xs), 1);
    const wv = randomArray(prod(ws), 2, -0.5, 0.5);
    const bv = randomArray(9, 3);
    const dyv = randomArray(prod(ys), 4);
    const f = (x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D) => tf.add(tf.conv2d(x, w, 1, 'same'), b) as tf.Tensor4D;
    const [tx, tw, tb, tdy] = [tf.tensor4d(xv, xs), tf.tensor4d(wv, ws), tf.tensor1d(bv), tf.tensor4d(dyv, ys)];
    const want = f(tx, tw, tb).dataSync();
    const [gx, gw, gb] = tf.grads((x, w, b) => f(x as tf.Tensor4D, w as tf.Tensor4D, b as tf.Tensor1D))([tx, tw, tb], tdy);

    const x = allocTensor(gpu, xs, xv);
    const w = allocTensor(gpu, ws, wv);
    const b = allocTensor(gpu, [9], bv);
    const dy = allocTensor(gpu, ys, dyv);
    const y = allocTensor(gpu, ys);
    const dx = allocTensor(gpu, xs);
    const dw = allocTensor(gpu, ws);
    const db = allocTensor(gpu, [9]);
    conv2d(gpu, x, w, b, y);
    conv2dBackwardInput(gpu, dy, w, dx);
    conv2dBackwardWeights(gpu, x, dy, dw);
    biasGradient(gpu, dy, db);
    const errs = {
      y: maxRelError(await gpu.readFloat32(y.view, prod(ys)), want),
      dx: maxRelError(await gpu.readFloat32(dx.view, prod(xs)), gx!.dataSync()),
      dw: maxRelError(await gpu.readFloat32(dw.view, prod(ws)), gw!.dataSync()),
      db: maxRelError(await gpu.readFloat32(db.view, 9), gb!.dataSync()),
    };
    console.log('conv2d vs tfjs-cpu, max rel error:', errs);
    for (const e of Object.values(errs)) expect(e).toBeLessThan(1e-4);
    for (const t of [x, w, b, dy, y, dx, dw, db]) t.dispose();
  });

  it('conv2dTranspose 2×2 stride 2 forward, ∂x, ∂w, ∂b', async () => {
    const gpu = await testGpu();
    const xs: S4 = [2, 3, 4, 6];
    const ws: S4 = [2, 2, 5, 6]; // (kh, kw, out, in), as tfjs and Keras store it
    const ys: S4 = [2, 6, 8, 5];
    const xv = randomArray(prod(xs), 5);
    const wv = randomArray(prod(ws), 6, -0.5, 0.5);
    const bv = randomArray(5, 7);
    const dyv = randomArray(prod(ys), 8);
    const f = (x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D) =>
      tf.add(tf.conv2dTranspose(x, w, ys, 2, 'same'), b) as tf.Tensor4D;
    const [tx, tw, tb, tdy] = [tf.tensor4d(xv, xs), tf.tensor4d(wv, ws), tf.tensor1d(bv), tf.tensor4d(dyv, ys)];
    const want = f(tx, tw, tb).dataSync();
    const [gx, gw, gb] = tf.grads((x, w, b) => f(x as tf.Tensor4D, w as tf.Tensor4D, b as tf.Tensor1D))([tx, tw, tb], tdy);

    const x = allocTensor(gpu, xs, xv);
    const w = allocTensor(gpu, ws, wv);
    const b = allocTensor(gpu, [5], bv);
    const dy = allocTensor(gpu, ys, dyv);
    const y = allocTensor(gpu, ys);
    const dx = allocTensor(gpu, xs);
    const dw = allocTensor(gpu, ws);
    const db = allocTensor(gpu, [5]);
    convTranspose2x2(gpu, x, w, b, y);
    convTranspose2x2BackwardInput(gpu, dy, w, dx);
    convTranspose2x2BackwardWeights(gpu, x, dy, dw);
    biasGradient(gpu, dy, db);
    const errs = {
      y: maxRelError(await gpu.readFloat32(y.view, prod(ys)), want),
      dx: maxRelError(await gpu.readFloat32(dx.view, prod(xs)), gx!.dataSync()),
      dw: maxRelError(await gpu.readFloat32(dw.view, prod(ws)), gw!.dataSync()),
      db: maxRelError(await gpu.readFloat32(db.view, 5), gb!.dataSync()),
    };
    console.log('conv2dTranspose vs tfjs-cpu, max rel error:', errs);
    for (const e of Object.values(errs)) expect(e).toBeLessThan(1e-4);
    for (const t of [x, w, b, dy, y, dx, dw, db]) t.dispose();
  });

  it('sigmoid forward and backward', async () => {
    const gpu = await testGpu();
    const n = 1001;
    const xv = randomArray(n, 9, -10, 10);
    const dyv = randomArray(n, 10);
    const want = tf.sigmoid(tf.tensor1d(xv)).dataSync();
    const gwant = tf.grad((x) => tf.sigmoid(x))(tf.tensor1d(xv), tf.tensor1d(dyv)).dataSync();
    const x = allocTensor(gpu, [n], xv);
    const y = allocTensor(gpu, [n]);
    const dy = allocTensor(gpu, [n], dyv);
    const dx = allocTensor(gpu, [n]);
    unary(gpu, 'sigmoid', x, y);
    binary(gpu, 'sigmoidBackward', dy, y, dx);
    const ey = maxRelError(await gpu.readFloat32(y.view, n), want);
    const edx = maxRelError(await gpu.readFloat32(dx.view, n), gwant);
    console.log(`sigmoid vs tfjs-cpu: max rel error y ${ey.toExponential(2)} dx ${edx.toExponential(2)}`);
    expect(ey).toBeLessThan(1e-6);
    expect(edx).toBeLessThan(1e-6);
    for (const t of [x, y, dy, dx]) t.dispose();
  });

  it('conv2d with the fused ELU, and the ELU gradient from its output', async () => {
    const gpu = await testGpu();
    const xs: [number, number, number, number] = [2, 6, 5, 3];
    const ws: [number, number, number, number] = [3, 3, 3, 4];
    const ys: [number, number, number, number] = [2, 6, 5, 4];
    const n = 2 * 6 * 5 * 4;
    const xv = randomArray(2 * 6 * 5 * 3, 31);
    const wv = randomArray(3 * 3 * 3 * 4, 32, -0.5, 0.5);
    const bv = randomArray(4, 33);
    const dyv = randomArray(n, 34);
    const pre = (xt: tf.Tensor4D) => tf.add(tf.conv2d(xt, tf.tensor4d(wv, ws), 1, 'same'), tf.tensor1d(bv));
    const want = tf.elu(pre(tf.tensor4d(xv, xs))).dataSync();
    const pv = pre(tf.tensor4d(xv, xs));
    const gwant = tf.grad((z) => tf.elu(z))(pv, tf.tensor4d(dyv, ys)).dataSync();
    const x = allocTensor(gpu, xs, xv);
    const w = allocTensor(gpu, ws, wv);
    const b = allocTensor(gpu, [4], bv);
    const y = allocTensor(gpu, ys);
    const dy = allocTensor(gpu, ys, dyv);
    const dz = allocTensor(gpu, ys);
    conv2d(gpu, x, w, b, y, 'elu');
    binary(gpu, 'eluBackward', dy, y, dz);
    const ey = maxRelError(await gpu.readFloat32(y.view, n), want);
    const edz = maxRelError(await gpu.readFloat32(dz.view, n), gwant);
    console.log(`conv2d + ELU vs tfjs-cpu: max rel error y ${ey.toExponential(2)} dz ${edz.toExponential(2)}`);
    expect(ey).toBeLessThan(1e-4);
    expect(edz).toBeLessThan(1e-4);
    for (const t of [x, w, b, y, dy, dz]) t.dispose();
  });
});
