import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { testGpu } from '../../../test/helpers/gpu.js';
import { randomArray } from '../../../test/helpers/random.js';
import { augmentReference } from '../../../test/reference/augment.js';
import { allocTensor } from '../../gpu/tensor-view.js';
import { Tensor } from '../../autograd/index.js';
import { Augmenter, DEFAULT_AUGMENT, drawAugmentation, drawBatch, parseAugmentSpec } from '../../model/augment.js';
import { Rng } from '../../model/rng.js';
import { augmentWarp, drawStride } from './kernel.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Largest absolute difference. */
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

async function warpOnGpu(images: Float32Array, masks: Float32Array, n: number, size: number, draws: Float32Array, grid: number) {
  const gpu = await testGpu();
  const shape = [n, size, size, 1];
  const x = allocTensor(gpu, shape, images);
  const y = allocTensor(gpu, shape, masks);
  const d = allocTensor(gpu, [draws.length], draws);
  const xo = allocTensor(gpu, shape);
  const yo = allocTensor(gpu, shape);
  augmentWarp(gpu, x, y, d, grid, xo, yo);
  const out = { x: await gpu.readFloat32(xo.view, n * size * size), y: await gpu.readFloat32(yo.view, n * size * size) };
  for (const t of [x, y, d, xo, yo]) t.dispose();
  return out;
}

// Sampling positions are computed in f32 on the GPU and in f64 here: a position
// off by a few ulps of the side (≈ 1e-5 px) moves a bilinear read of values in
// [−3, 3] by about 1e-4 at most, where a neighbouring pixel differs by up to 6.
const TOLERANCE = 2e-4;

describe('augmentation warp', () => {
  for (const [size, n, grid] of [[13, 3, 0], [37, 2, 3], [48, 4, 4], [9, 1, 5]] as const) {
    it(`matches the reference: ${n} image(s) of ${size}², elastic lattice ${grid || 'none'}`, async () => {
      const images = randomArray(n * size * size, size, -3, 3);
      const masks = randomArray(n * size * size, size + 1, 0, 1);
      const spec = { ...DEFAULT_AUGMENT, rotate: 20, zoom: 0.2, shift: 0.15, elastic: grid ? 0.05 : 0, grid: grid || 4, flip: 0.5 };
      const rng = new Rng(size);
      const draws = new Float32Array(n * drawStride(grid));
      for (let k = 0; k < n; k++) draws.set(drawAugmentation(spec, size, rng), k * drawStride(grid));
      const got = await warpOnGpu(images, masks, n, size, draws, grid);
      const want = augmentReference(images, masks, n, size, draws, grid);
      const [ex, ey] = [maxDiff(got.x, want.x), maxDiff(got.y, want.y)];
      console.log(`augment ${n}×${size}² grid ${grid}: max abs error image ${ex.toExponential(2)}, mask ${ey.toExponential(2)}`);
      expect(ex).toBeLessThan(TOLERANCE);
      expect(ey).toBeLessThan(TOLERANCE);
      expect(maxDiff(got.x, images)).toBeGreaterThan(0.1); // it did move the pixels
    });
  }

  it('matches tf.image.transform (bilinear, fill mode "nearest") on the affine part', async () => {
    const size = 21;
    const images = randomArray(size * size, 5, -3, 3);
    const spec = { ...DEFAULT_AUGMENT, rotate: 25, zoom: 0.25, shift: 0.2, elastic: 0, brightness: 0, contrast: 0, flip: 1 };
    for (let seed = 1; seed <= 3; seed++) {
      const draws = drawAugmentation(spec, size, new Rng(seed));
      expect([draws[6], draws[7]! + 0]).toEqual([1, 0]);
      const got = await warpOnGpu(images, images, 1, size, draws, 0);
      // tfjs's transform: input x = a0·x + a1·y + a2, input y = b0·x + b1·y + b2 (one image: its CPU kernel returns after the first).
      const peer = tf.image.transform(tf.tensor4d(images, [1, size, size, 1]), tf.tensor2d([[draws[0]!, draws[1]!, draws[2]!, draws[3]!, draws[4]!, draws[5]!, 0, 0]]), 'bilinear', 'nearest').dataSync();
      expect(maxDiff(got.x, peer)).toBeLessThan(TOLERANCE);
    }
  });

  it('leaves images as they are under the identity draw', async () => {
    const size = 10;
    const images = randomArray(2 * size * size, 2, -3, 3);
    const draws = new Float32Array(2 * 8);
    for (const k of [0, 1]) draws.set([1, 0, 0, 0, 1, 0, 1, 0], 8 * k);
    const got = await warpOnGpu(images, images, 2, size, draws, 0);
    expect(got.x).toEqual(images);
  });

  it('draws per (seed, epoch, step), mirrors at the rate asked, and rejects bad specs', () => {
    const a = drawBatch(DEFAULT_AUGMENT, 48, 4, 1, 2, 3);
    expect(drawBatch(DEFAULT_AUGMENT, 48, 4, 1, 2, 3)).toEqual(a);
    expect(drawBatch(DEFAULT_AUGMENT, 48, 4, 1, 2, 4)).not.toEqual(a);
    expect(drawBatch(DEFAULT_AUGMENT, 48, 4, 2, 2, 3)).not.toEqual(a);
    const rng = new Rng(4);
    let mirrored = 0;
    for (let i = 0; i < 2000; i++) if (drawAugmentation({ ...DEFAULT_AUGMENT, flip: 0.3 }, 48, rng)[0]! < 0) mirrored++;
    expect(mirrored / 2000).toBeGreaterThan(0.25);
    expect(mirrored / 2000).toBeLessThan(0.35);
    expect(parseAugmentSpec('default')).toEqual(DEFAULT_AUGMENT);
    expect(parseAugmentSpec('rotate=5,elastic=0')).toEqual({ ...DEFAULT_AUGMENT, rotate: 5, elastic: 0 });
    expect(() => parseAugmentSpec('spin=3')).toThrow(/"spin=3" is not key=value with key one of flip, rotate/);
    expect(() => parseAugmentSpec('rotate=90')).toThrow(/rotate must be a number in \[0, 45\], got "90"/);
    expect(() => parseAugmentSpec('grid=2.5')).toThrow(/grid must be a whole number/);
  });

  it('augments a batch through the Augmenter: new tensors, masks still in [0, 1]', async () => {
    const gpu = await testGpu();
    const size = 16;
    const masks = Float32Array.from({ length: 2 * size * size }, (_, i) => ((i % size) > 5 && (i % size) < 11 ? 1 : 0));
    const x = Tensor.from(gpu, [2, size, size, 1], randomArray(2 * size * size, 9, -2, 2));
    const y = Tensor.from(gpu, [2, size, size, 1], masks);
    const out = new Augmenter(DEFAULT_AUGMENT, 7).apply(x, y, 1, 0);
    expect(out.x).not.toBe(x);
    const ym = await out.y.read();
    expect(ym.every((v) => v >= 0 && v <= 1)).toBe(true);
    expect(maxDiff(ym, masks)).toBeGreaterThan(0.1);
    for (const t of [x, y, out.x, out.y]) t.dispose();
  });
});
