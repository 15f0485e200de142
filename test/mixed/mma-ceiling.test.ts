/**
 * The f16 subgroup-matrix ceiling of the benchmark (bench/mma_peak.wgsl)
 * computes what it times: in each variant every result element it computes
 * ends at iterations · K (all operands are 1, exact in f16 and in the f32
 * sums), and the matrices it leaves alone stay 0. Runs where the adapter has f16 subgroup matrices (the
 * sandbox, GPUs); elsewhere it skips, unless WGSL_UNET_REQUIRE_MIXED=1 makes
 * that a failure.
 */
import { describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { MMA_CEILING_VARIANTS, MMA_PEAK_RESULTS, measureMmaCeiling, mmaCeilingSize, mmaPeakProducts, prepareMmaPeak, recordMmaPeak } from '../../bench/mma-ceiling.js';

const required = process.env.WGSL_UNET_REQUIRE_MIXED === '1';
const gpu = await testGpu();

describe.skipIf(!gpu.matrix && !required)('f16 subgroup-matrix ceiling (bench)', () => {
  for (const variant of MMA_CEILING_VARIANTS) {
    it(`${variant}: the ${mmaPeakProducts(variant)} products of each subgroup are iterations · K, the rest 0`, async () => {
      expect(gpu.matrix, `${gpu.adapterInfo.description}: no f16 subgroup matrices`).not.toBeNull();
      const { groups, srcBytes } = mmaCeilingSize(true);
      const run = prepareMmaPeak(gpu, groups, srcBytes);
      expect(run, 'the default mixed-precision tile fits').not.toBeNull();
      try {
        // Two whole passes over the staged tile's depth (4 steps of K = 8 on lavapipe).
        const iterations = 8;
        const flop = recordMmaPeak(gpu, run!, variant, iterations);
        const got = await gpu.readFloat32({ buffer: run!.out.buffer, offset: 0, size: run!.elements * 4 });
        const { M, N, K } = gpu.matrix!;
        const computed = mmaPeakProducts(variant) * M * N; // leading elements of each subgroup's output
        const want = (i: number) => (i % (MMA_PEAK_RESULTS * M * N) < computed ? iterations * K : 0);
        const wrong = got.findIndex((v, i) => v !== want(i));
        expect(wrong, `element ${wrong} is ${got[wrong]}, want ${want(wrong)}`).toBe(-1);
        expect(flop).toBe((2 * got.length * iterations * K * mmaPeakProducts(variant)) / MMA_PEAK_RESULTS);
      } finally {
        for (const b of run!.buffers) gpu.release(b);
      }
    });
  }

  it('refuses a step count the staged tile does not divide, and a source of part of a vec4', () => {
    expect(() => prepareMmaPeak(gpu, 1, 24)).toThrow(/whole vec4s of f16/);
    const run = prepareMmaPeak(gpu, 1, 16)!;
    expect(() => recordMmaPeak(gpu, run, 'staged', 3)).toThrow(/iterations must be a multiple of/);
    for (const b of run.buffers) gpu.release(b);
  });

  it('reports a rate for each variant', async () => {
    const c = (await measureMmaCeiling(gpu, 1))!;
    expect(c.matrix).toBe(`${gpu.matrix!.M}×${gpu.matrix!.N}×${gpu.matrix!.K}`);
    for (const v of MMA_CEILING_VARIANTS) expect(c.tflops[v]).toBeGreaterThan(0);
  });
});
