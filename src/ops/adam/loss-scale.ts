/**
 * Dynamic loss scaling's two passes (loss_scale.wgsl): unscaling the
 * flat gradient buffer while looking for infinite or NaN values, and updating
 * the scale and step count after Adam. The state lives in a GPU buffer of
 * LOSS_SCALE_STATE_BYTES: scale (f32), t, good, skipped, found (u32), and
 * Adam's bias corrections 1 − β1^t, 1 − β2^t (f32).
 */
import type { BufferView, Gpu } from '../../gpu/gpu.js';
import { type GpuTensor, grid1d, numel } from '../../gpu/tensor-view.js';
import lossScaleSource from './loss_scale.wgsl';
import { declareKernel } from '../../gpu/kernel.js';

/** Invocations per workgroup, written into the shader (GROUP). */
const GROUP = 256;

export const LOSS_SCALE_STATE_BYTES = 28;

/** Adam's β1 and β2, for the bias corrections the state keeps. */
export interface LossScaleBetas {
  beta1: number;
  beta2: number;
}

export interface LossScaleRule {
  /** Clean steps before the scale grows. */
  interval: number;
  growth: number;
  backoff: number;
  maxScale: number;
  minScale: number;
}

const LOSS_SCALE = declareKernel({
  name: 'loss_scale',
  parts: [lossScaleSource],
  defines: { GROUP },
  entryPoints: { unscale: ['state', 'grads'], update: ['state'] },
  uniforms: [
    ['n', 'u32'], ['row_threads', 'u32'], ['interval', 'u32'], ['growth', 'f32'], ['backoff', 'f32'], ['max_scale', 'f32'], ['min_scale', 'f32'],
    ['beta1', 'f32'], ['one_minus_beta1', 'f32'], ['beta2', 'f32'], ['one_minus_beta2', 'f32'],
  ],
});

function uniforms(n: number, rowThreads: number, r: LossScaleRule, betas: LossScaleBetas) {
  return {
    n, row_threads: rowThreads, interval: r.interval, growth: r.growth, backoff: r.backoff, max_scale: r.maxScale, min_scale: r.minScale,
    beta1: betas.beta1, one_minus_beta1: 1 - betas.beta1, beta2: betas.beta2, one_minus_beta2: 1 - betas.beta2,
  };
}

/** grads ← grads / scale, setting the state's `found` on any infinite or NaN result. */
export function unscaleGradients(gpu: Gpu, state: BufferView, grads: GpuTensor, rule: LossScaleRule, betas: LossScaleBetas): void {
  const n = numel(grads.shape);
  const { workgroups, rowThreads } = grid1d(n, GROUP, gpu.limits.maxComputeWorkgroupsPerDimension);
  LOSS_SCALE.dispatch(gpu, {
    entry: 'unscale',
    label: `lossScale unscale ${n} gradients`,
    bind: { state, grads: grads.view },
    uniforms: uniforms(n, rowThreads, rule, betas),
    workgroups,
  });
}

/** After the step: grow or back off the scale, count the step taken or skipped, clear `found`. */
export function updateLossScale(gpu: Gpu, state: BufferView, rule: LossScaleRule, betas: LossScaleBetas): void {
  LOSS_SCALE.dispatch(gpu, {
    entry: 'update',
    label: 'lossScale update',
    bind: { state },
    uniforms: uniforms(0, 0, rule, betas),
    workgroups: [1],
  });
}
