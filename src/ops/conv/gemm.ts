/**
 * Carries out a convolution GEMM's plan (plan.ts): the weights rearranged
 * first where the plan says so, the GEMM's dispatch on the planned shader,
 * and for a split reduction the sums after. The software adapter's
 * formulations run through device.ts's softwareConv().
 */
import type { BufferView, Gpu } from '../../gpu/gpu.js';
import { type DType, allocTensor } from '../../gpu/tensor-view.js';
import { capsOf, gemmMarker, placeholder, softwareConv } from './device.js';
import { type GemmPlan, type GemmShape, Mode, TRANSPOSE_COLS, TRANSPOSE_GROUP, type TransposePlan, gemmKey, isWeightGradient, planGemm } from './plan.js';
import { finishSplits, reduceSplits } from './sums.js';
import tiledSource from './conv_tiled.wgsl';
import mmaSource from './conv_mma.wgsl';
import gatherSource from './conv_gather.wgsl';
import directSource from './conv_direct.wgsl';
import commonSource from './conv_common.wgsl';
import activationSource from './activation.wgsl';
import transposeSource from './weights_transpose.wgsl';
import { type DeclaredKernel, declareKernel } from '../../gpu/kernel.js';

/** A GEMM with its buffers. */
export interface Gemm extends Omit<GemmShape, 'aBytes' | 'bBytes' | 'bias' | 'biasGradient' | 'f16' | 'bF16' | 'mask'> {
  /** What runs on what, for GPU error messages. */
  label: string;
  a: BufferView;
  b: BufferView;
  bias?: BufferView;
  out: BufferView;
  /** Weight gradients: where the bias gradient goes, if wanted. */
  db?: BufferView;
  /** ∂input: x, whose [x > 0] multiplies dx as it is stored. */
  mask?: BufferView;
  /** How A, B and C are stored (f32 when absent). */
  types?: GemmTypes;
}

/** The element types of A, B and C: the shader's aliases. */
export interface GemmTypes {
  A_TYPE: DType;
  B_TYPE: DType;
  OUT_TYPE: DType;
}

export function shapeOf(g: Gemm): GemmShape {
  const { label: _label, a, b, bias, out: _out, db, mask, types, ...sizes } = g;
  const f16 = types !== undefined && Object.values(types).includes('f16');
  return { ...sizes, aBytes: a.size, bBytes: b.size, bias: bias !== undefined, biasGradient: db !== undefined, mask: mask !== undefined, f16, bF16: types?.B_TYPE === 'f16' };
}

/** Records a GEMM; returns its plan (a weight gradient's caller reads whether the bias gradient was computed). */
export function runGemm(gpu: Gpu, g: Gemm): GemmPlan {
  const shape = shapeOf(g);
  // While the tuner times a step, every dispatch of this GEMM (rearranged weights, sums of splits) is the GEMM's.
  const marker = gemmMarker(gpu);
  if (!marker) return recordGemm(gpu, g, planGemm(capsOf(gpu), shape));
  marker.key = gemmKey(shape);
  try {
    return recordGemm(gpu, g, planGemm(capsOf(gpu), shape));
  } finally {
    marker.key = null;
  }
}

function recordGemm(gpu: Gpu, g: Gemm, plan: GemmPlan): GemmPlan {
  if (plan.kind === 'empty') {
    // No pixels (an empty batch): the gradients are zero, or unchanged when accumulating.
    if (!g.accumulate) for (const v of g.db ? [g.out, g.db] : [g.out]) gpu.clear(v);
    return plan;
  }
  if (plan.kind === 'winograd') {
    softwareConv().winograd(gpu, g, plan.winograd);
    return plan;
  }
  const transposed = plan.transpose ? transposedWeights(gpu, g, plan.transpose) : null;
  const b = transposed?.view ?? g.b;
  const family = plan.shader.family === 'conv_rows' ? softwareConv().rows : CONV_FAMILIES[plan.shader.family];
  const views = { a: g.a, b, none: placeholder(gpu, 'read'), 'none-writable': placeholder(gpu, 'write') };
  const dispatch = (label: string, out: BufferView, uniforms: ConvUniforms) => {
    const bind: Record<string, BufferView> = { a_src: g.a, b_src: b, bias: g.bias ?? views.none, mask_src: g.mask ?? views.none };
    for (const [name, what] of Object.entries(plan.shader.bind)) bind[name] = what === 'out' ? out : views[what];
    family.dispatch(gpu, { entry: 'main', label, bind, uniforms, overrides: plan.shader.constants, defines: plan.shader.defines, types: { ...g.types, ...(out !== g.out ? { OUT_TYPE: 'f32' as DType } : {}) }, workgroups: plan.grid });
  };
  // The formulation, its tile (with a subgroup's result matrices, rows × columns, where not 2 × 2), the GEMM's M × N × K,
  // whether its tiles are double-buffered and whether B is loaded unstaged, for profiles (bench/gemm-rates.mjs) and errors.
  const { WM, WN, STAGES } = plan.shader.defines;
  const sub = (WM ?? 2) !== 2 || (WN ?? 2) !== 2 ? ` ${WM}×${WN} a subgroup` : '';
  const how = `${plan.formulation} ${plan.tile.rows}×${plan.tile.cols}${sub}, GEMM ${g.m}×${g.n}×${g.k}${STAGES === 2 ? ', double-buffered' : ''}${plan.shader.constants.B_GLOBAL ? ', B from memory' : ''}`;
  if (!plan.splits) {
    dispatch(`${g.label} [${how}]`, g.out, params(g, g.m, g.k));
  } else {
    // The bias gradient in the GEMM: one more row of C (mode 2) or column (mode 5).
    const row = plan.biasInGemm && g.mode === Mode.ConvWeights;
    const col = plan.biasInGemm && g.mode === Mode.UpWeights;
    const m = g.m + (row ? 1 : 0);
    const n = g.n + (col ? 1 : 0);
    const len = m * n;
    const scratch = gpu.acquire(plan.splits.count * len * 4);
    const partials = { buffer: scratch.buffer, offset: 0, size: plan.splits.count * len * 4 };
    dispatch(`${g.label} [${how}, ${plan.splits.count} splits${row ? ', bias row' : col ? ', bias column' : ''}]`, partials, { ...params(g, m, plan.splits.kPerSplit), n });
    const sums = { src: partials, splits: plan.splits.count, len };
    if (isWeightGradient(g)) {
      const bias = row ? { view: g.db!, from: g.m * g.n } : col ? { view: g.db!, cols: n, channels: g.m / 4 } : undefined;
      reduceSplits(gpu, sums, g.out, g.accumulate ?? false, g.label, bias);
    } else {
      finishSplits(gpu, sums, g.out, { cols: g.n, bias: g.bias, activation: g.activation, accumulate: g.accumulate ?? false, mask: g.mask, dstType: g.types?.OUT_TYPE ?? 'f32' }, g.label);
    }
    // Safe to recycle now: any later use of this buffer is recorded after the reads above.
    gpu.release(scratch);
  }
  transposed?.dispose();
  return plan;
}

const CONV_UNIFORMS = [
  ['batch', 'u32'], ['h', 'u32'], ['w', 'u32'], ['a_c', 'u32'], ['kh', 'u32'], ['kw', 'u32'], ['pad', 'u32'], ['b_c', 'u32'],
  ['m', 'u32'], ['n', 'u32'], ['k', 'u32'], ['k_per_split', 'u32'],
] as const;
type ConvUniforms = Readonly<Record<(typeof CONV_UNIFORMS)[number][0], number>>;

/**
 * A convolution GEMM shader: its own source before conv_common.wgsl (the
 * uniforms, A, B, bias, C and the mask) and activation.wgsl, one entry
 * point `main` binding a_src, b_src, bias, out, mask_src and then the
 * family's own buffers.
 */
export function declareConvFamily(name: string, parts: readonly string[], own: { bindings: readonly string[]; overrides: readonly string[]; enables?: readonly string[] }): DeclaredKernel {
  return declareKernel({
    name,
    parts: [...parts, commonSource, activationSource],
    enables: own.enables,
    types: ['A_TYPE', 'B_TYPE', 'OUT_TYPE'],
    entryPoints: { main: ['a_src', 'b_src', 'bias', 'out', 'mask_src', ...own.bindings] },
    uniforms: CONV_UNIFORMS,
    overrides: ['MODE', 'ACT', 'ACCUMULATE', 'BIAS_ROW', 'BIAS_COL', 'SPLIT_K', 'MASK', ...own.overrides],
  });
}

/** The GPU formulations; the planner picks one and writes its tile into `defines`. */
const CONV_FAMILIES = {
  conv_tiled: declareConvFamily('conv_tiled', [tiledSource, gatherSource], { bindings: [], overrides: [] }),
  conv_mma: declareConvFamily('conv_mma', [mmaSource, gatherSource], {
    bindings: ['a4_src', 'b4_src', 'bg_src'], overrides: ['A4', 'B4', 'B_BY_COLS', 'PREFETCH', 'STEP_TAP', 'STEP_PIXEL', 'B_GLOBAL'], enables: ['f16', 'subgroups', 'chromium_experimental_subgroup_matrix'],
  }),
  conv_direct: declareConvFamily('conv_direct', [directSource], { bindings: ['a4', 'b4'], overrides: ['A4', 'B4', 'GROUP'] }),
};

const WEIGHTS_TRANSPOSE = declareKernel({
  name: 'weights_transpose',
  parts: [transposeSource],
  defines: { COLS: TRANSPOSE_COLS, GROUP: TRANSPOSE_GROUP },
  entryPoints: { main: ['w', 'out'] },
  uniforms: [['batches', 'u32'], ['rows', 'u32'], ['cols', 'u32']],
  overrides: ['FLIP'],
});

function params(g: Gemm, m: number, kPerSplit: number): ConvUniforms {
  return { batch: g.batch, h: g.h, w: g.w, a_c: g.aC, kh: g.kh ?? 1, kw: g.kw ?? 1, pad: g.pad ?? 0, b_c: g.bC, m, n: g.n, k: g.k, k_per_split: kPerSplit };
}

/** weights_transpose.wgsl: modes 1 and 3's B with contiguous rows, in pooled memory the caller disposes of. */
function transposedWeights(gpu: Gpu, g: Gemm, t: TransposePlan) {
  const out = allocTensor(gpu, [t.batches, t.cols, t.rows]);
  WEIGHTS_TRANSPOSE.dispatch(gpu, {
    entry: 'main',
    label: `${g.label}: weights rearranged by rows`,
    bind: { w: g.b, out: out.view },
    uniforms: { batches: t.batches, rows: t.rows, cols: t.cols },
    overrides: { FLIP: t.flip ? 1 : 0 },
    workgroups: t.grid,
  });
  return out;
}
