/**
 * Carries out a convolution GEMM's plan (plan.ts): the weights rearranged
 * first where the plan says so, the GEMM's dispatch on the planned shader,
 * and for weight gradients the split sums after. The software adapter's
 * formulations run through device.ts's softwareConv().
 */
import type { BufferView, Gpu } from '../gpu.js';
import { allocTensor } from '../tensor-view.js';
import { composeShader } from '../shader-source.js';
import { capsOf, placeholder, softwareConv } from './device.js';
import { type GemmPlan, type GemmShape, type ShaderPlan, TRANSPOSE_COLS, TRANSPOSE_GROUP, type TransposePlan, planGemm } from './plan.js';
import { reduceSplits } from './sums.js';
import tiledSource from '../../../shaders/conv_tiled.wgsl';
import mmaSource from '../../../shaders/conv_mma.wgsl';
import gatherSource from '../../../shaders/conv_gather.wgsl';
import directSource from '../../../shaders/conv_direct.wgsl';
import commonSource from '../../../shaders/conv_common.wgsl';
import activationSource from '../../../shaders/activation.wgsl';
import transposeSource from '../../../shaders/weights_transpose.wgsl';
import { uniformBlock } from '../uniforms.js';

/** A GEMM with its buffers. */
export interface Gemm extends Omit<GemmShape, 'aBytes' | 'bBytes' | 'bias' | 'biasGradient'> {
  /** What runs on what, for GPU error messages. */
  label: string;
  a: BufferView;
  b: BufferView;
  bias?: BufferView;
  out: BufferView;
  /** Weight gradients: where the bias gradient goes, if wanted. */
  db?: BufferView;
}

export function shapeOf(g: Gemm): GemmShape {
  const { label: _label, a, b, bias, out: _out, db, ...sizes } = g;
  return { ...sizes, aBytes: a.size, bBytes: b.size, bias: bias !== undefined, biasGradient: db !== undefined };
}

/** Records a GEMM; returns its plan (a weight gradient's caller reads whether the bias gradient was computed). */
export function runGemm(gpu: Gpu, g: Gemm): GemmPlan {
  const plan = planGemm(capsOf(gpu), shapeOf(g));
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
  const source = shaderSource(plan.shader);
  const kernel = gpu.kernel(plan.shader.family, source, plan.shader.constants);
  const bind = (out: BufferView) => [g.a, b, g.bias ?? placeholder(gpu, 'read'), ...plan.shader.extra.map((e) =>
    e === 'out' ? out : e === 'a' ? g.a : e === 'b' ? b : placeholder(gpu, e === 'none' ? 'read' : 'write'))];
  const how = `${plan.formulation} ${plan.tile.rows}×${plan.tile.cols}`;
  if (!plan.splits) {
    gpu.dispatch({ kernel, label: `${g.label} [${how}]`, uniforms: params(g, g.m, g.k), storage: bind(g.out), workgroups: plan.grid });
  } else {
    const m = g.m + (plan.biasRow ? 1 : 0);
    const len = m * g.n;
    const scratch = gpu.acquire(plan.splits.count * len * 4);
    const partials = { buffer: scratch.buffer, offset: 0, size: plan.splits.count * len * 4 };
    gpu.dispatch({
      kernel,
      label: `${g.label} [${how}, ${plan.splits.count} splits${plan.biasRow ? ', bias row' : ''}]`,
      uniforms: params(g, m, plan.splits.kPerSplit),
      storage: bind(partials),
      workgroups: plan.grid,
    });
    const sums = { src: partials, splits: plan.splits.count, len };
    reduceSplits(gpu, sums, g.out, g.accumulate ?? false, g.label, plan.biasRow ? { view: g.db!, from: g.m * g.n } : undefined);
    // Safe to recycle now: any later use of this buffer is recorded after the reads above.
    gpu.release(scratch);
  }
  transposed?.dispose();
  return plan;
}

const PARAMS = uniformBlock('conv', commonSource, [
  ['batch', 'u32'], ['h', 'u32'], ['w', 'u32'], ['a_c', 'u32'], ['kh', 'u32'], ['kw', 'u32'], ['pad', 'u32'], ['b_c', 'u32'],
  ['m', 'u32'], ['n', 'u32'], ['k', 'u32'], ['k_per_split', 'u32'],
]);
const TRANSPOSE_PARAMS = uniformBlock('weights_transpose', transposeSource, [['batches', 'u32'], ['rows', 'u32'], ['cols', 'u32']]);

function params(g: Gemm, m: number, kPerSplit: number): Uint8Array {
  return PARAMS.pack({ batch: g.batch, h: g.h, w: g.w, a_c: g.aC, kh: g.kh ?? 1, kw: g.kw ?? 1, pad: g.pad ?? 0, b_c: g.bC, m, n: g.n, k: g.k, k_per_split: kPerSplit });
}

const sources = new Map<string, string>();
/** A planned shader's source (made once per family and constants). */
function shaderSource(s: ShaderPlan): string {
  const key = `${s.family}|${Object.entries(s.defines).join(',')}`;
  let source = sources.get(key);
  if (!source) {
    const shared = [commonSource, activationSource];
    if (s.family === 'conv_tiled') source = composeShader([tiledSource, gatherSource, ...shared], { defines: s.defines });
    else if (s.family === 'conv_mma') {
      const enables = ['f16', 'subgroups', 'chromium_experimental_subgroup_matrix'];
      source = composeShader([mmaSource, gatherSource, ...shared], { enables, defines: s.defines });
    } else if (s.family === 'conv_direct') source = composeShader([directSource, ...shared], { defines: s.defines });
    else source = softwareConv().rowsSource(s.defines);
    sources.set(key, source);
  }
  return source;
}

/** weights_transpose.wgsl: modes 1 and 3's B with contiguous rows, in pooled memory the caller disposes of. */
function transposedWeights(gpu: Gpu, g: Gemm, t: TransposePlan) {
  const out = allocTensor(gpu, [t.batches, t.cols, t.rows]);
  gpu.dispatch({
    kernel: gpu.kernel('weights_transpose', transposeShader(), { FLIP: t.flip ? 1 : 0 }),
    label: `${g.label}: weights rearranged by rows`,
    uniforms: TRANSPOSE_PARAMS.pack({ batches: t.batches, rows: t.rows, cols: t.cols }),
    storage: [g.b, out.view],
    workgroups: t.grid,
  });
  return out;
}
let transposeSourceWithCols: string | null = null;
function transposeShader(): string {
  return (transposeSourceWithCols ??= composeShader([transposeSource], { defines: { COLS: TRANSPOSE_COLS, GROUP: TRANSPOSE_GROUP } }));
}
