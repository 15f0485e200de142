/**
 * Which form of the memory-bound kernels runs: four elements (or channels)
 * per invocation as vec4s where the counts allow it, one otherwise. The other
 * test files check that both forms compute the right values; this one checks
 * that the fast form is the one chosen, by watching the entry points the
 * wrappers ask the runtime for.
 */
import { describe, expect, it, vi } from 'vitest';
import { testGpu } from './helpers/gpu.js';
import type { Gpu } from '../src/gpu/gpu.js';
import { allocTensor } from '../src/gpu/tensor-view.js';
import { binary, fill, unary } from '../src/ops/elementwise/kernel.js';
import { elu, eluBackward } from '../src/ops/elu/kernel.js';
import { concatChannels, splitChannels } from '../src/ops/concat/kernel.js';
import { maxPool2x2, maxPool2x2Backward } from '../src/ops/maxpool/kernel.js';
import { adamStep } from '../src/ops/adam/kernel.js';
import { diceLoss, diceLossBackward } from '../src/ops/dice/kernel.js';

/** The entry points `record` asks for, in order. */
async function entryPoints(gpu: Gpu, record: () => void): Promise<string[]> {
  const spy = vi.spyOn(gpu, 'kernel');
  try {
    record();
    await gpu.sync();
    return spy.mock.calls.map((call) => call[3] ?? 'main');
  } finally {
    spy.mockRestore();
  }
}

const t = (gpu: Gpu, shape: number[]) => allocTensor(gpu, shape);

describe('vec4 forms are chosen where the counts allow them', () => {
  it('unary, binary and fill', async () => {
    const gpu = await testGpu();
    const [a, b, out, one] = [t(gpu, [2, 6]), t(gpu, [2, 6]), t(gpu, [2, 6]), t(gpu, [1])];
    const [a3, out3] = [t(gpu, [3, 3]), t(gpu, [3, 3])];
    expect(await entryPoints(gpu, () => unary(gpu, 'sigmoid', a, out))).toEqual(['main4']);
    expect(await entryPoints(gpu, () => binary(gpu, 'reluBackward', a, b, out, { accumulate: true }))).toEqual(['main4']);
    expect(await entryPoints(gpu, () => unary(gpu, 'relu', a3, out3))).toEqual(['main']);
    // The broadcast reads one element, which a vec4 view cannot hold.
    expect(await entryPoints(gpu, () => fill(gpu, one, out))).toEqual(['main']);
    for (const x of [a, b, out, one, a3, out3]) x.dispose();
  });

  it('ELU', async () => {
    const gpu = await testGpu();
    const [x, y, d] = [t(gpu, [8]), t(gpu, [8]), t(gpu, [8])];
    const [x7, y7] = [t(gpu, [7]), t(gpu, [7])];
    expect(await entryPoints(gpu, () => (elu(gpu, x, y), eluBackward(gpu, y, x, d)))).toEqual(['forward4', 'backward4']);
    expect(await entryPoints(gpu, () => elu(gpu, x7, y7))).toEqual(['forward']);
    for (const v of [x, y, d, x7, y7]) v.dispose();
  });

  it('concatenation and split', async () => {
    const gpu = await testGpu();
    const [a, b, out] = [t(gpu, [1, 2, 2, 4]), t(gpu, [1, 2, 2, 8]), t(gpu, [1, 2, 2, 12])];
    const [a3, out11] = [t(gpu, [1, 2, 2, 3]), t(gpu, [1, 2, 2, 11])];
    expect(await entryPoints(gpu, () => (concatChannels(gpu, a, b, out), splitChannels(gpu, out, a, b)))).toEqual(['concat4', 'split4']);
    expect(await entryPoints(gpu, () => concatChannels(gpu, a3, b, out11))).toEqual(['concat']);
    for (const v of [a, b, out, a3, out11]) v.dispose();
  });

  it('max-pooling', async () => {
    const gpu = await testGpu();
    const [x, y, dx] = [t(gpu, [1, 4, 5, 8]), t(gpu, [1, 2, 2, 8]), t(gpu, [1, 4, 5, 8])];
    const [x6, y6] = [t(gpu, [1, 4, 4, 6]), t(gpu, [1, 2, 2, 6])];
    expect(await entryPoints(gpu, () => (maxPool2x2(gpu, x, y), maxPool2x2Backward(gpu, x, y, dx)))).toEqual(['forward4', 'backward4']);
    expect(await entryPoints(gpu, () => maxPool2x2(gpu, x6, y6))).toEqual(['forward']);
    for (const v of [x, y, dx, x6, y6]) v.dispose();
  });

  it('Dice loss and its gradient', async () => {
    const gpu = await testGpu();
    const [loss, sums, sums2, dLoss] = [t(gpu, [1]), t(gpu, [4]), t(gpu, [8]), t(gpu, [1])];
    for (const [n, want] of [[8, ['partial_sums4', 'loss', 'backward4']], [7, ['partial_sums', 'loss', 'backward']]] as const) {
      const [p, y, dp] = [t(gpu, [n]), t(gpu, [n]), t(gpu, [n])];
      expect(await entryPoints(gpu, () => (diceLoss(gpu, p, y, loss, sums), diceLossBackward(gpu, p, y, sums, dLoss, dp)))).toEqual(want);
      for (const x of [p, y, dp]) x.dispose();
    }
    // Image by image, the segment's length decides: two of 4 are quads, two of 5 are not.
    for (const [n, want] of [[8, ['partial_sums4', 'loss', 'backward4']], [10, ['partial_sums', 'loss', 'backward']]] as const) {
      const [p, y, dp] = [t(gpu, [2, n / 2]), t(gpu, [2, n / 2]), t(gpu, [2, n / 2])];
      expect(await entryPoints(gpu, () => (diceLoss(gpu, p, y, loss, sums2, { groups: 2 }), diceLossBackward(gpu, p, y, sums2, dLoss, dp, { groups: 2 })))).toEqual(want);
      for (const x of [p, y, dp]) x.dispose();
    }
    for (const x of [loss, sums, sums2, dLoss]) x.dispose();
  });

  it('Adam: quads, then the last n mod 4 one by one', async () => {
    const gpu = await testGpu();
    const h = { lr: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-7, step: 1 };
    for (const [n, want] of [[64, ['main4']], [66, ['main4', 'main']], [2, ['main']]] as const) {
      const [p, g, m, v] = [t(gpu, [n]), t(gpu, [n]), t(gpu, [n]), t(gpu, [n])];
      expect(await entryPoints(gpu, () => adamStep(gpu, p, g, m, v, h))).toEqual(want);
      for (const x of [p, g, m, v]) x.dispose();
    }
  });
});

/**
 * Runs `f` with the device's per-dimension workgroup limit reported as
 * `limit`, so that small dispatches fold their grid into two dimensions
 * (flat index = gid.x + gid.y · row_threads), as only huge ones do otherwise.
 */
async function withWorkgroupLimit<T>(gpu: Gpu, limit: number, f: () => Promise<T>): Promise<T> {
  const real = gpu.limits;
  const lowered = new Proxy(real, { get: (target, key) => (key === 'maxComputeWorkgroupsPerDimension' ? limit : Reflect.get(target, key, target)) });
  Object.defineProperty(gpu, 'limits', { value: lowered, configurable: true, writable: true });
  try {
    return await f();
  } finally {
    Object.defineProperty(gpu, 'limits', { value: real, configurable: true, writable: true });
  }
}

describe('folded grids give the same results as flat ones', () => {
  const seeded = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7 + seed));
  // Each case runs ops on fresh inputs and returns what they wrote; every
  // dispatch here needs 5 to 16 workgroups, so with the limit at 4 each folds
  // (into at most 4 × 4).
  const cases: [string, (gpu: Gpu) => Promise<Float32Array[]>][] = [
    ['unary (one per invocation and quads), binary', async (gpu) => {
      const out: Float32Array[] = [];
      for (const n of [2047, 5000]) {
        const [a, b, y, z] = [allocTensor(gpu, [n], seeded(n, 1)), allocTensor(gpu, [n], seeded(n, 2)), allocTensor(gpu, [n]), allocTensor(gpu, [n])];
        unary(gpu, 'sigmoid', a, y);
        binary(gpu, 'mul', a, b, z);
        out.push(await gpu.readFloat32(y.view, n), await gpu.readFloat32(z.view, n));
        for (const x of [a, b, y, z]) x.dispose();
      }
      return out;
    }],
    ['ELU forward and backward', async (gpu) => {
      const n = 5000;
      const [x, y, dy, dx] = [allocTensor(gpu, [n], seeded(n, 3)), allocTensor(gpu, [n]), allocTensor(gpu, [n], seeded(n, 4)), allocTensor(gpu, [n])];
      elu(gpu, x, y);
      eluBackward(gpu, dy, y, dx);
      const out = [await gpu.readFloat32(y.view, n), await gpu.readFloat32(dx.view, n)];
      for (const v of [x, y, dy, dx]) v.dispose();
      return out;
    }],
    ['concatenation and split', async (gpu) => {
      const [a, b, out] = [allocTensor(gpu, [2, 20, 20, 8], seeded(6400, 5)), allocTensor(gpu, [2, 20, 20, 8], seeded(6400, 6)), allocTensor(gpu, [2, 20, 20, 16])];
      const [da, db] = [allocTensor(gpu, [2, 20, 20, 8]), allocTensor(gpu, [2, 20, 20, 8])];
      concatChannels(gpu, a, b, out);
      splitChannels(gpu, out, da, db);
      const res = [await gpu.readFloat32(out.view, 12800), await gpu.readFloat32(da.view, 6400), await gpu.readFloat32(db.view, 6400)];
      for (const v of [a, b, out, da, db]) v.dispose();
      return res;
    }],
    ['max-pooling forward and backward', async (gpu) => {
      const [x, y, dx] = [allocTensor(gpu, [4, 41, 40, 8], seeded(52480, 7)), allocTensor(gpu, [4, 20, 20, 8]), allocTensor(gpu, [4, 41, 40, 8])];
      maxPool2x2(gpu, x, y);
      maxPool2x2Backward(gpu, x, y, dx);
      const res = [await gpu.readFloat32(y.view, 12800), await gpu.readFloat32(dx.view, 52480)];
      for (const v of [x, y, dx]) v.dispose();
      return res;
    }],
    ['Adam', async (gpu) => {
      const n = 5002;
      const [p, g, m, v] = [allocTensor(gpu, [n], seeded(n, 8)), allocTensor(gpu, [n], seeded(n, 9)), allocTensor(gpu, [n], new Float32Array(n)), allocTensor(gpu, [n], new Float32Array(n))];
      adamStep(gpu, p, g, m, v, { lr: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-7, step: 1 });
      const res = [await gpu.readFloat32(p.view, n), await gpu.readFloat32(m.view, n), await gpu.readFloat32(v.view, n)];
      for (const x of [p, g, m, v]) x.dispose();
      return res;
    }],
  ];
  for (const [name, run] of cases) {
    it(name, async () => {
      const gpu = await testGpu();
      const flat = await run(gpu);
      const folded = await withWorkgroupLimit(gpu, 4, () => run(gpu));
      expect(folded).toEqual(flat);
    });
  }
});
