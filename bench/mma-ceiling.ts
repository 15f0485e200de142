/**
 * The adapter's f16 subgroup-matrix ceiling (mma_peak.wgsl) on the default
 * mixed-precision tile's layout: operands in registers (the tensor cores'
 * rate), loaded from workgroup memory each step (conv_mma's inner loop),
 * with the tiles restaged every k step (its whole loop without global
 * reads), loaded each step with 4 × 2 result matrices a subgroup instead
 * of 2 × 2 (what larger subgroup tiles would gain), and restaged from global
 * memory by vec4 reads of consecutive addresses (its whole loop without the
 * gather's index arithmetic). A convolution GEMM's rate against these tells
 * where its time goes.
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
  entryPoints: { main: ['ones', 'out', 'src4'] },
  uniforms: [['iterations', 'u32'], ['src_quads', 'u32']],
  overrides: ['VARIANT'],
});

export const MMA_CEILING_VARIANTS = ['registers', 'workgroup', 'staged', 'workgroup4x2', 'global'] as const;
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

/** How a run is sized: workgroups, multiply-accumulate steps per subgroup, and bytes of f16 the global variant reads from. */
export function mmaCeilingSize(software: boolean): { groups: number; iterations: number; srcBytes: number } {
  return software ? { groups: 4, iterations: 32, srcBytes: 1 << 16 } : { groups: 2048, iterations: 4096, srcBytes: 1 << 25 };
}

type Pooled = ReturnType<Gpu['acquire']>;

/** A run's buffers, written once and reused by every variant and repetition. */
export interface MmaPeakRun {
  groups: number;
  /** Every operand is f16 1.0 (0x3c00): the few halves of `ones`, and all of `src` (the global variant's). */
  ones: Pooled;
  src: Pooled;
  srcBytes: number;
  /** Each subgroup's MMA_PEAK_RESULTS result matrices, f32. */
  out: Pooled;
  elements: number;
  constants: NonNullable<ReturnType<typeof mmaConstants>>;
  buffers: Pooled[];
}

/** The buffers of `groups` workgroups; null where the device has no f16 subgroup matrices or the default tile does not fit it. */
export function prepareMmaPeak(gpu: Gpu, groups: number, srcBytes: number): MmaPeakRun | null {
  const m = gpu.matrix;
  const c = m && mmaConstants(m, gpu.adapterInfo.subgroupMaxSize, MMA_DEFAULT_TILE, gpu.limits);
  if (!m || !c) return null;
  if (srcBytes % 16 || srcBytes < 16) throw new Error(`mma ceiling: the source takes whole vec4s of f16, not ${srcBytes} bytes`);
  const elements = groups * c.SUB_Y * c.SUB_X * MMA_PEAK_RESULTS * m.M * m.N;
  const ones = gpu.acquire(16);
  gpu.upload({ buffer: ones.buffer, offset: 0, size: 16 }, new Uint16Array(8).fill(0x3c00));
  const src = gpu.acquire(srcBytes);
  gpu.upload({ buffer: src.buffer, offset: 0, size: srcBytes }, new Uint16Array(srcBytes / 2).fill(0x3c00));
  const out = gpu.acquire(elements * 4);
  return { groups, ones, src, srcBytes, out, elements, constants: c, buffers: [ones, src, out] };
}

/**
 * Records one run of a variant into `run.out` (each subgroup's matrices:
 * the first mmaPeakProducts(variant) at iterations · K, the rest 0) and
 * returns its multiply-adds × 2.
 */
export function recordMmaPeak(gpu: Gpu, run: MmaPeakRun, variant: MmaCeilingVariant, iterations: number): number {
  const m = gpu.matrix!;
  const { SM, SN, SK, SG, SUB_Y, SUB_X, TK } = run.constants;
  if (iterations % (TK / SK)) throw new Error(`mma ceiling: iterations must be a multiple of ${TK / SK}, got ${iterations}`);
  MMA_PEAK.dispatch(gpu, {
    entry: 'main',
    label: `mma_peak ${variant} ${MMA_DEFAULT_TILE} ${m.M}×${m.N}×${m.K}`,
    bind: {
      ones: { buffer: run.ones.buffer, offset: 0, size: 16 },
      out: { buffer: run.out.buffer, offset: 0, size: run.elements * 4 },
      src4: { buffer: run.src.buffer, offset: 0, size: run.srcBytes },
    },
    uniforms: { iterations, src_quads: run.srcBytes / 8 },
    overrides: { VARIANT: MMA_CEILING_VARIANTS.indexOf(variant) },
    defines: { SM, SN, SK, SG, SUB_Y, SUB_X, TK },
    workgroups: [run.groups],
  });
  return run.groups * SUB_Y * SUB_X * mmaPeakProducts(variant) * iterations * 2 * m.M * m.N * m.K;
}

/** Each variant's rate, median of `reps` runs each; null without f16 subgroup matrices or a tile that fits. */
export async function measureMmaCeiling(gpu: Gpu, reps: number): Promise<MmaCeiling | null> {
  const { groups, iterations, srcBytes } = mmaCeilingSize(gpu.adapterInfo.isSoftware);
  const run = prepareMmaPeak(gpu, groups, srcBytes);
  if (!run) return null;
  const tflops = {} as Record<MmaCeilingVariant, number>;
  try {
    for (const variant of MMA_CEILING_VARIANTS) {
      let flop = 0;
      const t = await timeIt(async () => {
        flop = recordMmaPeak(gpu, run, variant, iterations);
        await gpu.sync();
      }, reps);
      tflops[variant] = flop / (t.median * 1e-3) / 1e12;
    }
  } finally {
    for (const b of run.buffers) gpu.release(b);
  }
  const m = gpu.matrix!;
  return { tile: MMA_DEFAULT_TILE, matrix: `${m.M}×${m.N}×${m.K}`, tflops };
}

export function formatMmaCeiling(c: MmaCeiling): string {
  const f = (v: number) => v.toPrecision(3);
  return `f16 subgroup-matrix ceiling (${c.matrix}, tile ${c.tile}'s layout): ${f(c.tflops.registers)} TFLOP/s with operands in registers, ` +
    `${f(c.tflops.workgroup)} loading them from workgroup memory, ${f(c.tflops.staged)} restaging the tiles every k step, ` +
    `${f(c.tflops.workgroup4x2)} loading them with 4 × 2 result matrices a subgroup, ${f(c.tflops.global)} restaging from global memory`;
}
