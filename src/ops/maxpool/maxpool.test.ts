import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tf.grad needs the gradient registry, which only the tfjs umbrella package loads by itself.
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import { testGpu } from '../../../test/helpers/gpu.js';
import { maxRelError, randomArray, rng } from '../../../test/helpers/random.js';
import { allocTensor, numel } from '../../gpu/tensor-view.js';
import { maxPool2x2, maxPool2x2Backward, maxPool2x2Shape } from './kernel.js';

type Shape4 = [number, number, number, number];

/** Index (0..3, row-major) of the first maximum of window (i, j) at channel c. */
function winner(x: ArrayLike<number>, [, h, w, c]: Shape4, n: number, i: number, j: number, ch: number): { k: number; at: number } {
  let best = { k: 0, at: 0, v: -Infinity };
  for (let k = 0; k < 4; k++) {
    const at = ((n * h + 2 * i + (k >> 1)) * w + 2 * j + (k & 1)) * c + ch;
    if (k === 0 || x[at]! > best.v) best = { k, at, v: x[at]! };
  }
  return best;
}

function refForward(x: ArrayLike<number>, shape: Shape4): Float64Array {
  const [n, , , c] = shape;
  const [, oh, ow] = maxPool2x2Shape(shape) as Shape4;
  const y = new Float64Array(n * oh * ow * c);
  for (let b = 0; b < n; b++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++)
        for (let ch = 0; ch < c; ch++) y[((b * oh + i) * ow + j) * c + ch] = x[winner(x, shape, b, i, j, ch).at]!;
  return y;
}

function refBackward(x: ArrayLike<number>, shape: Shape4, dy: ArrayLike<number>): Float64Array {
  const [n, , , c] = shape;
  const [, oh, ow] = maxPool2x2Shape(shape) as Shape4;
  const dx = new Float64Array(numel(shape));
  for (let b = 0; b < n; b++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++)
        for (let ch = 0; ch < c; ch++) dx[winner(x, shape, b, i, j, ch).at] = dy[((b * oh + i) * ow + j) * c + ch]!;
  return dx;
}

/** Runs forward and backward on the GPU; dx starts out filled with `dxInit` (garbage unless accumulating). */
async function runGpu(shape: Shape4, xs: Float32Array, dys: Float32Array, dxInit: Float32Array, accumulate = false, reluMask = false) {
  const gpu = await testGpu();
  const pooled = maxPool2x2Shape(shape);
  const x = allocTensor(gpu, shape, xs);
  const y = allocTensor(gpu, pooled);
  const dy = allocTensor(gpu, pooled, dys);
  const dx = allocTensor(gpu, shape, dxInit);
  maxPool2x2(gpu, x, y);
  maxPool2x2Backward(gpu, x, dy, dx, { accumulate, reluMask });
  const out = { y: await gpu.readFloat32(y.view, numel(pooled)), dx: await gpu.readFloat32(dx.view, numel(shape)) };
  for (const t of [x, y, dy, dx]) t.dispose();
  return out;
}

describe('maxPool2x2 (2×2, stride 2, valid) on the GPU', () => {
  // Channel counts that are not multiples of 4 (one channel per invocation)
  // and multiples of 4 (four, as vec4s), odd and even sides.
  const shapes: Shape4[] = [
    [2, 7, 5, 3],
    [1, 8, 8, 5],
    [3, 9, 6, 1],
    [2, 7, 5, 4],
    [1, 9, 11, 8],
    [2, 16, 16, 32], // a U-Net level, in miniature
    [1, 1, 3, 2], // no window at all: empty output, dx all zero
    [1, 1, 3, 4],
  ];
  for (const shape of shapes) {
    it(`forward and backward match the reference exactly, x ${JSON.stringify(shape)}`, async () => {
      const n = numel(shape);
      const m = numel(maxPool2x2Shape(shape));
      const xs = randomArray(n, n, -4, 4);
      const dys = randomArray(m, m + 1, -2, 2);
      const garbage = randomArray(n, 7, 100, 200); // every dx element must be overwritten
      const { y, dx } = await runGpu(shape, xs, dys, garbage);
      const errY = maxRelError(y, refForward(xs, shape));
      const errDx = maxRelError(dx, refBackward(xs, shape, dys));
      console.log(`maxpool ${JSON.stringify(shape)}: forward max rel error ${errY.toExponential(2)}, backward ${errDx.toExponential(2)}`);
      expect(errY).toBe(0); // max and copies are exact
      expect(errDx).toBe(0);
    });
  }

  for (const shape of [[2, 7, 5, 3], [2, 7, 5, 4]] as Shape4[]) {
    it(`backward accumulates into dx: only winners change, x ${JSON.stringify(shape)}`, async () => {
      const n = numel(shape);
      const m = numel(maxPool2x2Shape(shape));
      const xs = randomArray(n, 11, -4, 4);
      const dys = randomArray(m, 12, -2, 2);
      const init = randomArray(n, 13, -1, 1);
      const { dx } = await runGpu(shape, xs, dys, init, true);
      const want = refBackward(xs, shape, dys).map((v, i) => v + init[i]!);
      const err = maxRelError(dx, want);
      console.log(`maxpool backward accumulate: max rel error ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-7); // one f32 addition per element
    });
  }

  // x taken for a ReLU's output (zeros and negatives among it): all of dx,
  // fresh or accumulated, winners or not, pooled rows and columns or not, is
  // multiplied by [x > 0]. Odd sides leave an unpooled last row and column.
  for (const shape of [[2, 7, 5, 3], [2, 7, 5, 4], [1, 8, 8, 5], [1, 1, 3, 4]] as Shape4[]) {
    for (const accumulate of [false, true]) {
      it(`backward with the ReLU's mask${accumulate ? ', accumulating' : ''}, x ${JSON.stringify(shape)}`, async () => {
        const n = numel(shape);
        const m = numel(maxPool2x2Shape(shape));
        const xs = randomArray(n, 14, -4, 4).map((v) => (v < -2 ? 0 : v)); // exact zeros too
        const dys = randomArray(m, 15, -2, 2);
        const init = randomArray(n, 16, -1, 1);
        const { dx } = await runGpu(shape, xs, dys, accumulate ? init : randomArray(n, 17, 100, 200), accumulate, true);
        const want = refBackward(xs, shape, dys).map((v, i) => (xs[i]! > 0 ? v + (accumulate ? init[i]! : 0) : 0));
        expect(maxRelError(dx, want)).toBeLessThan(1e-7); // one f32 addition per element
        for (let i = 0; i < n; i++) if (!(xs[i]! > 0)) expect(dx[i], `element ${i}`).toBe(0);
      });
    }
  }

  for (const shape of [[2, 6, 7, 3], [2, 6, 7, 4]] as Shape4[]) {
    it(`ties: a constant input sends every gradient to the top-left of its window, x ${JSON.stringify(shape)}`, async () => {
      const [, oh, ow, c] = maxPool2x2Shape(shape) as Shape4;
      const n = numel(shape);
      const m = numel(maxPool2x2Shape(shape));
      const dys = randomArray(m, 5, 1, 2); // nonzero everywhere
      const { y, dx } = await runGpu(shape, new Float32Array(n).fill(0.5), dys, randomArray(n, 6, 100, 200));
      expect(Array.from(new Set(y))).toEqual([0.5]);
      let checked = 0;
      for (let b = 0; b < shape[0]; b++)
        for (let r = 0; r < shape[1]; r++)
          for (let col = 0; col < shape[2]; col++)
            for (let ch = 0; ch < c; ch++) {
              const got = dx[((b * shape[1] + r) * shape[2] + col) * c + ch]!;
              const topLeft = r % 2 === 0 && col % 2 === 0 && r / 2 < oh && col / 2 < ow;
              const want = topLeft ? dys[((b * oh + r / 2) * ow + col / 2) * c + ch]! : 0;
              expect(got).toBe(want);
              checked++;
            }
      console.log(`maxpool constant input: ${checked} dx elements checked, max rel error 0 (exact)`);
    });
  }

  for (const shape of [[2, 9, 8, 5], [2, 9, 8, 8]] as Shape4[]) {
    it(`ties: with few distinct values the first maximum in row-major window order wins, x ${JSON.stringify(shape)}`, async () => {
      const n = numel(shape);
      const m = numel(maxPool2x2Shape(shape));
      const r = rng(99);
      const xs = Float32Array.from({ length: n }, () => Math.floor(r() * 3)); // values 0, 1, 2: ties everywhere
      const dys = randomArray(m, 100, 1, 2);
      const { y, dx } = await runGpu(shape, xs, dys, randomArray(n, 101, 100, 200));
      let tiedWindows = 0;
      for (let i = 0; i < m; i++) {
        const [, oh, ow, c] = maxPool2x2Shape(shape) as Shape4;
        const ch = i % c;
        const j = Math.floor(i / c) % ow;
        const row = Math.floor(i / c / ow) % oh;
        const b = Math.floor(i / c / ow / oh);
        const vals = [0, 1, 2, 3].map((k) => xs[((b * shape[1] + 2 * row + (k >> 1)) * shape[2] + 2 * j + (k & 1)) * c + ch]!);
        if (vals.filter((v) => v === Math.max(...vals)).length > 1) tiedWindows++;
      }
      console.log(`maxpool ties: ${tiedWindows} of ${m} windows have a tied maximum`);
      expect(tiedWindows).toBeGreaterThan(m / 4);
      expect(maxRelError(y, refForward(xs, shape))).toBe(0);
      expect(maxRelError(dx, refBackward(xs, shape, dys))).toBe(0);
    });
  }

  it('agrees with tfjs-core (CPU backend): tf.maxPool forward and tf.grad backward', async () => {
    tf.env().set('IS_TEST', true); // silences the "install tfjs-node" banner
    await tf.setBackend('cpu');
    for (const shape of [[2, 7, 5, 3], [1, 10, 12, 6], [1, 10, 12, 8]] as Shape4[]) {
      const n = numel(shape);
      const pooled = maxPool2x2Shape(shape) as Shape4;
      const xs = randomArray(n, 21 + n, -3, 3); // continuous random values: no ties
      const dys = randomArray(numel(pooled), 22 + n, -1, 1);
      const { y, dx } = await runGpu(shape, xs, dys, randomArray(n, 23, 100, 200));
      const xT = tf.tensor4d(xs, shape);
      const dyT = tf.tensor4d(dys, pooled);
      const yTf = await tf.maxPool(xT, 2, 2, 'valid').data();
      const gradFn = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(t as tf.Tensor4D, 2, 2, 'valid'), dyT)));
      const dxTf = await gradFn(xT).data();
      const errY = maxRelError(y, yTf);
      const errDx = maxRelError(dx, dxTf);
      console.log(`maxpool vs tfjs ${JSON.stringify(shape)}: forward max rel error ${errY.toExponential(2)}, backward ${errDx.toExponential(2)}`);
      expect(errY).toBe(0);
      expect(errDx).toBe(0);
      tf.dispose([xT, dyT]);
    }
  });

  it('backward matches central finite differences of the reference (float64)', async () => {
    const shape: Shape4 = [1, 5, 7, 3];
    const n = numel(shape);
    const pooled = maxPool2x2Shape(shape) as Shape4;
    const xs = randomArray(n, 31, -3, 3);
    const dys = randomArray(numel(pooled), 32, -1, 1);
    const { dx } = await runGpu(shape, xs, dys, randomArray(n, 33, 100, 200));
    // L(x) = Σ dy · maxpool(x); dL/dx_i by central differences with h far below the gaps between values.
    const loss = (v: Float64Array) => refForward(v, shape).reduce((s, yv, i) => s + yv * dys[i]!, 0);
    const x64 = Float64Array.from(xs);
    const h = 1e-6;
    const fd = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const keep = x64[i]!;
      x64[i] = keep + h;
      const up = loss(x64);
      x64[i] = keep - h;
      const down = loss(x64);
      x64[i] = keep;
      fd[i] = (up - down) / (2 * h);
    }
    const err = maxRelError(dx, fd);
    console.log(`maxpool backward vs finite differences: max rel error ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-6);
  });

  it('rejects a wrongly shaped output with a message naming the op and shapes', async () => {
    const gpu = await testGpu();
    const x = allocTensor(gpu, [2, 7, 5, 3]);
    const out = allocTensor(gpu, [2, 4, 2, 3]);
    expect(() => maxPool2x2(gpu, x, out)).toThrow(/maxPool2x2: out has shape \[2, 4, 2, 3\] but x of shape \[2, 7, 5, 3\] pools to \[2, 3, 2, 3\]/);
    const dx = allocTensor(gpu, [2, 7, 5, 2]);
    const dy = allocTensor(gpu, [2, 3, 2, 3]);
    expect(() => maxPool2x2Backward(gpu, x, dy, dx)).toThrow(/maxPool2x2Backward: dx has shape \[2, 7, 5, 2\] but x has \[2, 7, 5, 3\]/);
    for (const t of [x, out, dx, dy]) t.dispose();
  });
});
