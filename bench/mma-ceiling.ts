/**
 * The adapter's f16 subgroup-matrix ceiling (mma_peak.wgsl) on the default
 * mixed-precision tile's layout: operands in registers (the tensor cores'
 * rate), loaded from workgroup memory each step (conv_mma's inner loop),
 * with the tiles restaged every k step (its whole loop without global
 * reads), and loaded each step with 4 × 2 result matrices a subgroup
 * instead of 2 × 2 (what larger subgroup tiles would gain). A convolution
 * GEMM's rate against these tells where its time goes.
 */
import type { Gpu } from '../src/gpu/gpu.js';
import { declareKernel } from '../src/gpu/kernel.js';
import { MMA_DEFAULT_TILE, mmaConstants } from '../src/ops/conv/plan.js';
import mmaSource from './mma_peak.wgsl';
import { timeIt } from './harness.js';

const MMA_PEAK = declareKernel({
  name: 'mma_peak',
  parts: [mmaSource],
  enables: ['f16', 'subgroups', 'chromium_experimental_subgroup_matrix'],
  entryPoints: { main: ['ones', 'out'] },
  uniforms: [['iterations', 'u32']],
  overrides: ['VARIANT'],
});

export const MMA_CEILING_VARIANTS = ['registers', 'workgroup', 'staged', 'workgroup4x2'] as const;
/** Result matrices each subgroup stores (the shader's acc00 … acc31), and how many a variant computes. */
export const MMA_PEAK_RESULTS = 8;
export const mmaPeakProducts = (variant: MmaCeilingVariant) => (variant === 'workgroup4x2' ? 8 : 4);
export type MmaCeilingVariant = (typeof MMA_CEILING_VARIANTS)[number];

export interface MmaCeiling {
  /** The tile whose layout was timed, and the matrix shape. */
  tile: string;
  matrix: string;
  /** TFLOP/s of each variant (2·M·N·K a multiply-accumulate). */
  tflops: Record<MmaCeilingVariant, number>;
}

/** How a run is sized: workgroups and multiply-accumulate steps per subgroup. */
export function mmaCeilingSize(software: boolean): { groups: number; iterations: number } {
  return software ? { groups: 4, iterations: 32 } : { groups: 2048, iterations: 4096 };
}

/**
 * Records one run of a variant and returns its output (each subgroup's
 * MMA_PEAK_RESULTS matrices: the first mmaPeakProducts(variant) at
 * iterations · K, the rest 0) with the run's multiply-adds × 2; null where
 * the device has no f16 subgroup matrices or the default tile does not fit.
 */
export function recordMmaPeak(gpu: Gpu, variant: MmaCeilingVariant, groups: number, iterations: number): { out: ReturnType<Gpu['acquire']>; ones: ReturnType<Gpu['acquire']>; elements: number; flop: number } | null {
  const m = gpu.matrix;
  const c = m && mmaConstants(m, gpu.adapterInfo.subgroupMaxSize, MMA_DEFAULT_TILE, gpu.limits);
  if (!m || !c) return null;
  const steps = c.TK / c.SK;
  if (iterations % steps) throw new Error(`mma ceiling: iterations must be a multiple of ${steps}, got ${iterations}`);
  const subgroups = c.SUB_Y * c.SUB_X;
  const elements = groups * subgroups * MMA_PEAK_RESULTS * m.M * m.N;
  const ones = gpu.acquire(16);
  gpu.upload({ buffer: ones.buffer, offset: 0, size: 16 }, new Uint16Array(8).fill(0x3c00)); // f16 1.0
  const out = gpu.acquire(elements * 4);
  const { SM, SN, SK, SG, SUB_Y, SUB_X, TK } = c;
  MMA_PEAK.dispatch(gpu, {
    entry: 'main',
    label: `mma_peak ${variant} ${MMA_DEFAULT_TILE} ${m.M}×${m.N}×${m.K}`,
    bind: { ones: { buffer: ones.buffer, offset: 0, size: 16 }, out: { buffer: out.buffer, offset: 0, size: elements * 4 } },
    uniforms: { iterations },
    overrides: { VARIANT: MMA_CEILING_VARIANTS.indexOf(variant) },
    defines: { SM, SN, SK, SG, SUB_Y, SUB_X, TK },
    workgroups: [groups],
  });
  return { out, ones, elements, flop: groups * subgroups * mmaPeakProducts(variant) * iterations * 2 * m.M * m.N * m.K };
}

/** Each variant's rate, median of `reps` runs each; null without f16 subgroup matrices. */
export async function measureMmaCeiling(gpu: Gpu, reps: number): Promise<MmaCeiling | null> {
  if (!gpu.matrix) return null;
  const { groups, iterations } = mmaCeilingSize(gpu.adapterInfo.isSoftware);
  const tflops = {} as Record<MmaCeilingVariant, number>;
  for (const variant of MMA_CEILING_VARIANTS) {
    let flop = 0;
    const t = await timeIt(async () => {
      const run = recordMmaPeak(gpu, variant, groups, iterations);
      if (!run) throw new Error('mma ceiling: the default mixed-precision tile does not fit this device');
      flop = run.flop;
      await gpu.sync();
      gpu.release(run.out);
      gpu.release(run.ones);
    }, reps);
    tflops[variant] = flop / (t.median * 1e-3) / 1e12;
  }
  const m = gpu.matrix;
  return { tile: MMA_DEFAULT_TILE, matrix: `${m.M}×${m.N}×${m.K}`, tflops };
}

export function formatMmaCeiling(c: MmaCeiling): string {
  const f = (v: number) => v.toPrecision(3);
  return `f16 subgroup-matrix ceiling (${c.matrix}, tile ${c.tile}'s layout): ${f(c.tflops.registers)} TFLOP/s with operands in registers, ` +
    `${f(c.tflops.workgroup)} loading them from workgroup memory, ${f(c.tflops.staged)} restaging the tiles every k step, ` +
    `${f(c.tflops.workgroup4x2)} loading them with 4 × 2 result matrices a subgroup`;
}
