/**
 * The adapter offers the subgroup matrices the mixed-precision kernels need.
 * Runs where WGSL_UNET_REQUIRE_MIXED=1 (scripts/sandbox.sh sets it); skipped elsewhere.
 */
import { describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';

const required = process.env.WGSL_UNET_REQUIRE_MIXED === '1';

describe('mixed-precision adapter', () => {
  it.skipIf(!required)('offers a subgroup-matrix shape in multiples of 8', async () => {
    const gpu = await testGpu();
    expect(gpu.matrix, `${gpu.adapterInfo.description}: no f16 subgroup matrices`).not.toBeNull();
    const { M, N, K } = gpu.matrix!;
    for (const n of [M, N, K]) expect(n % 8, `${M}×${N}×${K}`).toBe(0);
  });
});
