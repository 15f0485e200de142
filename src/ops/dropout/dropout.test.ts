import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { testGpu } from '../../../test/helpers/gpu.js';
import { randomArray } from '../../../test/helpers/random.js';
import { finiteDifference } from '../../../test/reference/conv.js';
import { allocTensor } from '../../gpu/tensor-view.js';
import { dropout as dropoutKernel, dropoutThreshold } from './kernel.js';
import { Tape, Tensor, dropout, mul, sum } from '../../autograd/index.js';
import type { Gpu } from '../../gpu/gpu.js';

// dropout.wgsl's hash in plain TypeScript: u32 arithmetic through Math.imul and >>> 0.
function pcg(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}
const keptRef = (i: number, seed: number, rate: number) => pcg((pcg(i) ^ pcg(seed)) >>> 0) >= dropoutThreshold(rate);
const dropoutRef = (x: ArrayLike<number>, seed: number, rate: number) =>
  Float64Array.from(x, (v, i) => (keptRef(i, seed, rate) ? Math.fround(v * Math.fround(1 / (1 - rate))) : 0));

function seedBuffer(gpu: Gpu, seed: number): Tensor {
  const t = Tensor.empty(gpu, [1]);
  gpu.upload(t.view, Uint32Array.of(seed));
  return t;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('dropout', () => {
  it('the reference hash is a bijection on a sample and its backward agrees with finite differences', () => {
    const seen = new Set(Array.from({ length: 4096 }, (_, i) => pcg(i * 977)));
    expect(seen.size).toBe(4096);
    const x = randomArray(64, 5);
    const dy = randomArray(64, 6);
    const fd = finiteDifference((v) => v.map((u, i) => (keptRef(i, 9, 0.3) ? u / 0.7 : 0)), x, dy, [0, 5, 17, 40, 63]);
    const want = [0, 5, 17, 40, 63].map((i) => (keptRef(i, 9, 0.3) ? dy[i]! / 0.7 : 0));
    fd.forEach((v, j) => expect(v).toBeCloseTo(want[j]!, 8));
  });

  for (const [n, rate] of [[7, 0.5], [4099, 0.1], [65_537, 0.5], [65_536, 0.9]] as const) {
    it(`forward and backward (plain and accumulating) equal the reference, ${n} elements, rate ${rate}`, async () => {
      const gpu = await testGpu();
      const xv = randomArray(n, n, -3, 3);
      const init = randomArray(n, n + 1);
      const seed = seedBuffer(gpu, 12345 + n);
      const x = allocTensor(gpu, [n], xv);
      const y = allocTensor(gpu, [n]);
      const acc = allocTensor(gpu, [n], init);
      dropoutKernel(gpu, x, seed.view, y, rate);
      dropoutKernel(gpu, x, seed.view, acc, rate, { accumulate: true });
      const want = dropoutRef(xv, 12345 + n, rate);
      const got = await gpu.readFloat32(y.view, n);
      expect(Array.from(got)).toEqual(Array.from(want));
      const gotAcc = await gpu.readFloat32(acc.view, n);
      expect(Array.from(gotAcc)).toEqual(Array.from(want, (v, i) => Math.fround(init[i]! + v)));
      if (n > 60_000) {
        // The kept fraction within 5 standard deviations of 1 − rate.
        const kept = got.filter((v, i) => v !== 0 || xv[i] === 0).length / n;
        expect(Math.abs(kept - (1 - rate))).toBeLessThan(5 * Math.sqrt((rate * (1 - rate)) / n));
      }
      for (const t of [seed, x, y, acc]) t.dispose();
    });
  }

  it('another seed drops other elements; rewriting the seed buffer changes the mask of the same dispatch', async () => {
    const gpu = await testGpu();
    const n = 20_000;
    const x = allocTensor(gpu, [n], new Float32Array(n).fill(1));
    const y = allocTensor(gpu, [n]);
    const seed = seedBuffer(gpu, 1);
    dropoutKernel(gpu, x, seed.view, y, 0.5);
    const a = await gpu.readFloat32(y.view, n);
    gpu.upload(seed.view, Uint32Array.of(2));
    dropoutKernel(gpu, x, seed.view, y, 0.5);
    const b = await gpu.readFloat32(y.view, n);
    const same = a.filter((v, i) => v === b[i]).length / n;
    // Independent masks at rate 0.5 agree on half the elements.
    expect(Math.abs(same - 0.5)).toBeLessThan(0.02);
    expect(Array.from(b)).toEqual(Array.from(dropoutRef(new Float32Array(n).fill(1), 2, 0.5)));
    for (const t of [x, y, seed]) t.dispose();
  });

  it('through autograd: dx is dy through the forward mask and scale, as tfjs scales what it keeps', async () => {
    const gpu = await testGpu();
    const n = 1000;
    const rate = 0.25;
    const xv = randomArray(n, 41);
    const wv = randomArray(n, 42);
    const seed = seedBuffer(gpu, 77);
    const x = Tensor.from(gpu, [n], xv, true);
    const w = Tensor.from(gpu, [n], wv);
    const tape = new Tape(gpu);
    const y = tape.run(() => dropout(x, rate, seed.view));
    const loss = tape.run(() => sum(mul(y, w)));
    tape.backward(loss);
    const got = await y.read();
    const dx = await x.grad!.read();
    const mask = Array.from({ length: n }, (_, i) => keptRef(i, 77, rate));
    expect(Array.from(dx)).toEqual(Array.from(wv, (v, i) => (mask[i] ? Math.fround(v * Math.fround(1 / (1 - rate))) : 0)));
    // The peer: tf.dropout keeps x / (1 − rate) (its own mask); where both keep an element, the values agree.
    const peer = tf.dropout(tf.tensor1d(xv), rate, undefined, 3).dataSync();
    let both = 0;
    for (let i = 0; i < n; i++) {
      if (got[i] !== 0 && peer[i] !== 0) {
        both++;
        expect(Math.abs(got[i]! - peer[i]!)).toBeLessThanOrEqual(1e-6 * Math.abs(peer[i]!));
      }
    }
    expect(both).toBeGreaterThan(n / 2);
    tape.dispose();
    for (const t of [x, w, seed]) t.dispose();
  });

  it('refuses a rate outside [0, 1), mismatched shapes and a short seed, naming the op', async () => {
    const gpu = await testGpu();
    const x = allocTensor(gpu, [2, 3]);
    const y = allocTensor(gpu, [3, 2]);
    const y2 = allocTensor(gpu, [2, 3]);
    const seed = seedBuffer(gpu, 0);
    expect(() => dropoutKernel(gpu, x, seed.view, y, 0.5)).toThrow('dropout: out has shape [3, 2] but x has [2, 3]');
    expect(() => dropoutKernel(gpu, x, seed.view, y2, 1)).toThrow('dropout: rate must be in [0, 1), got 1');
    expect(() => dropoutKernel(gpu, x, seed.view, y2, -0.1)).toThrow('dropout: rate must be in [0, 1), got -0.1');
    expect(() => dropoutKernel(gpu, x, { ...seed.view, size: 2 }, y2, 0.5)).toThrow('dropout: the seed must be a 4-byte buffer range, got 2 bytes');
    for (const t of [x, y, y2, seed]) t.dispose();
  });
});
