import { describe, expect, it } from 'vitest';
import { testGpu } from '../../../test/helpers/gpu.js';
import { maxRelError, randomArray } from '../../../test/helpers/random.js';
import { allocTensor, numel } from '../../gpu/tensor-view.js';
import { concatChannels, splitChannels } from './kernel.js';

type Shape4 = [number, number, number, number];

function refConcat(a: Float32Array, b: Float32Array, pixels: number, ca: number, cb: number): Float32Array {
  const out = new Float32Array(pixels * (ca + cb));
  for (let q = 0; q < pixels; q++) {
    for (let k = 0; k < ca; k++) out[q * (ca + cb) + k] = a[q * ca + k]!;
    for (let k = 0; k < cb; k++) out[q * (ca + cb) + ca + k] = b[q * cb + k]!;
  }
  return out;
}

function refSplit(d: Float32Array, pixels: number, ca: number, cb: number): [Float32Array, Float32Array] {
  const da = new Float32Array(pixels * ca);
  const db = new Float32Array(pixels * cb);
  for (let q = 0; q < pixels; q++) {
    for (let k = 0; k < ca; k++) da[q * ca + k] = d[q * (ca + cb) + k]!;
    for (let k = 0; k < cb; k++) db[q * cb + k] = d[q * (ca + cb) + ca + k]!;
  }
  return [da, db];
}

describe('concatChannels / splitChannels on the GPU', () => {
  // [N, H, W] with (Ca, Cb): odd counts, one side of 1, one side a multiple of
  // 4 and the other not (one channel per invocation), both multiples of 4
  // (four per invocation, as vec4s: unequal, and a U-Net decoder level in
  // miniature), and a side with no channels.
  const cases: [Shape4, number][] = [
    [[2, 5, 3, 3], 5],
    [[1, 7, 7, 1], 2],
    [[3, 4, 5, 6], 1],
    [[2, 3, 5, 8], 6],
    [[2, 3, 5, 4], 12],
    [[2, 12, 12, 32], 32],
    [[2, 3, 5, 0], 8], // an empty side
  ];
  for (const [aShape, cb] of cases) {
    const [n, h, w, ca] = aShape;
    const pixels = n * h * w;
    it(`concat and split match the reference, a ${JSON.stringify(aShape)}, Cb ${cb}`, async () => {
      const gpu = await testGpu();
      const as = randomArray(pixels * ca, ca, -2, 2);
      const bs = randomArray(pixels * cb, cb + 100, -2, 2);
      const ds = randomArray(pixels * (ca + cb), 7, -1, 1);
      const a = allocTensor(gpu, aShape, as);
      const b = allocTensor(gpu, [n, h, w, cb], bs);
      const out = allocTensor(gpu, [n, h, w, ca + cb], randomArray(pixels * (ca + cb), 8, 100, 200));
      const d = allocTensor(gpu, [n, h, w, ca + cb], ds);
      const da = allocTensor(gpu, aShape, randomArray(pixels * ca, 9, 100, 200));
      const db = allocTensor(gpu, [n, h, w, cb], randomArray(pixels * cb, 10, 100, 200));
      concatChannels(gpu, a, b, out);
      splitChannels(gpu, d, da, db);
      const errOut = maxRelError(await gpu.readFloat32(out.view, numel(out.shape)), refConcat(as, bs, pixels, ca, cb));
      const [wantA, wantB] = refSplit(ds, pixels, ca, cb);
      const errA = maxRelError(await gpu.readFloat32(da.view, pixels * ca), wantA);
      const errB = maxRelError(await gpu.readFloat32(db.view, pixels * cb), wantB);
      console.log(`concat a ${JSON.stringify(aShape)} Cb ${cb}: concat max rel error ${errOut.toExponential(2)}, split ${Math.max(errA, errB).toExponential(2)}`);
      expect(errOut).toBe(0); // copies are exact
      expect(errA).toBe(0);
      expect(errB).toBe(0);
      for (const t of [a, b, out, d, da, db]) t.dispose();
    });
  }

  // One channel per invocation, and four (vec4s).
  for (const [ca, cb] of [[3, 5], [4, 8]] as const) {
    it(`split with accumulate adds into da and db, Ca ${ca}, Cb ${cb}`, async () => {
      const gpu = await testGpu();
      const [n, h, w] = [2, 5, 7];
      const pixels = n * h * w;
      const ds = randomArray(pixels * (ca + cb), 1, -1, 1);
      const initA = randomArray(pixels * ca, 2, -1, 1);
      const initB = randomArray(pixels * cb, 3, -1, 1);
      const d = allocTensor(gpu, [n, h, w, ca + cb], ds);
      const da = allocTensor(gpu, [n, h, w, ca], initA);
      const db = allocTensor(gpu, [n, h, w, cb], initB);
      splitChannels(gpu, d, da, db, { accumulate: true });
      const [wantA, wantB] = refSplit(ds, pixels, ca, cb);
      const errA = maxRelError(await gpu.readFloat32(da.view, pixels * ca), wantA.map((v, i) => v + initA[i]!));
      const errB = maxRelError(await gpu.readFloat32(db.view, pixels * cb), wantB.map((v, i) => v + initB[i]!));
      console.log(`split accumulate: max rel error ${Math.max(errA, errB).toExponential(2)}`);
      expect(errA).toBe(0); // one f32 addition, as the reference does it
      expect(errB).toBe(0);
      for (const t of [d, da, db]) t.dispose();
    });
  }

  it('rejects mismatched shapes with a message naming the op and shapes', async () => {
    const gpu = await testGpu();
    const a = allocTensor(gpu, [2, 5, 3, 3]);
    const b = allocTensor(gpu, [2, 5, 3, 4]);
    const out = allocTensor(gpu, [2, 5, 3, 8]);
    expect(() => concatChannels(gpu, a, b, out)).toThrow(
      /concatChannels: a \[2, 5, 3, 3\] and b \[2, 5, 3, 4\] must share N, H, W, and out must be \[2, 5, 3, 7\], got \[2, 5, 3, 8\]/,
    );
    const b2 = allocTensor(gpu, [2, 4, 3, 4]);
    expect(() => splitChannels(gpu, out, a, b2)).toThrow(/splitChannels: da \[2, 5, 3, 3\] and db \[2, 4, 3, 4\] must share N, H, W/);
    for (const t of [a, b, out, b2]) t.dispose();
  });
});
