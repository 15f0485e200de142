/**
 * Adam in the Keras form, over the model's one flat parameter buffer:
 * adam.wgsl, one dispatch per step.
 *
 * The tutorial trains with lr 1e-5, beta1 0.9, beta2 0.999, epsilon 1e-7
 * (Keras ≥ 2.1.3; 1e-8 before); the caller passes all of them.
 */
import type { BufferView, Gpu } from '../../gpu/gpu.js';
import { ShapeError, shapeStr } from '../../gpu/errors.js';
import { type GpuTensor, checkSameShape, grid1d, numel } from '../../gpu/tensor-view.js';
import { checkNoAliasing } from '../../gpu/aliasing.js';
import adamSource from './adam.wgsl';
import { declareKernel } from '../../gpu/kernel.js';

/** Invocations per workgroup, written into the shader (GROUP). */
const GROUP = 256;
const ADAM = declareKernel({
  name: 'adam',
  parts: [adamSource],
  defines: { GROUP },
  entryPoints: {
    main: ['params', 'grads', 'm', 'v'], main4: ['params', 'grads', 'm', 'v'],
    main_scaled: ['params', 'grads', 'm', 'v', 'amp'], main4_scaled: ['params', 'grads', 'm', 'v', 'amp'],
  },
  uniforms: [
    ['n', 'u32'], ['row_threads', 'u32'], ['lr_t', 'f32'], ['epsilon', 'f32'], ['beta1', 'f32'], ['one_minus_beta1', 'f32'],
    ['beta2', 'f32'], ['one_minus_beta2', 'f32'], ['first', 'u32'],
  ],
});

export interface AdamHyperparameters {
  lr: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  /** Step number t, counted from 1 (the first update uses t = 1). */
  step: number;
}

/** lr_t = lr · √(1 − β2^t) / (1 − β1^t), in float64. */
export function adamStepSize(h: AdamHyperparameters): number {
  return (h.lr * Math.sqrt(1 - h.beta2 ** h.step)) / (1 - h.beta1 ** h.step);
}

function checkHyperparameters(op: string, h: AdamHyperparameters): void {
  const bad = (what: string) => {
    throw new ShapeError(op, what);
  };
  if (!Number.isInteger(h.step) || h.step < 1) bad(`step must be an integer from 1, got ${h.step}`);
  if (!(h.lr >= 0) || !Number.isFinite(h.lr)) bad(`lr must be finite and ≥ 0, got ${h.lr}`);
  for (const k of ['beta1', 'beta2'] as const) if (!(h[k] >= 0 && h[k] < 1)) bad(`${k} must be in [0, 1), got ${h[k]}`);
  if (!(h.epsilon >= 0) || !Number.isFinite(h.epsilon)) bad(`epsilon must be finite and ≥ 0, got ${h.epsilon}`);
}

/**
 * One Adam step in place: m, v and params are updated from grads.
 * All four have one shape (normally the flat [n] parameter count) and must be
 * four different buffers.
 */
export function adamStep(gpu: Gpu, params: GpuTensor, grads: GpuTensor, m: GpuTensor, v: GpuTensor, h: AdamHyperparameters, lossScale?: BufferView): void {
  const op = 'adamStep';
  checkSameShape(op, ['params', 'grads', 'm', 'v'], [params, grads, m, v]);
  checkHyperparameters(op, h);
  checkNoAliasing(op, { grads }, { params, m, v });
  const n = numel(params.shape);
  // Four parameters per invocation over the first 4·floor(n/4), then one per
  // invocation for the rest.
  const quads = Math.floor(n / 4);
  // With a loss scale's state (loss_scale.wgsl) the scaled entry
  // points run: skipped on a bad step, t from the state, lr given as is.
  const run = (base: 'main4' | 'main', invocations: number, first: number) => {
    const { workgroups, rowThreads } = grid1d(invocations, GROUP, gpu.limits.maxComputeWorkgroupsPerDimension);
    const bind = { params: params.view, grads: grads.view, m: m.view, v: v.view };
    ADAM.dispatch(gpu, {
      entry: lossScale ? `${base}_scaled` : base,
      label: `${op} ${lossScale ? 'loss-scaled' : `t=${h.step}`} ${shapeStr(params.shape)}${base === 'main' ? ` from ${first}` : ''}`,
      bind: lossScale ? { ...bind, amp: lossScale } : bind,
      uniforms: {
        n, row_threads: rowThreads, lr_t: lossScale ? h.lr : adamStepSize(h), epsilon: h.epsilon,
        beta1: h.beta1, one_minus_beta1: 1 - h.beta1, beta2: h.beta2, one_minus_beta2: 1 - h.beta2, first,
      },
      workgroups,
    });
  };
  if (quads > 0) run('main4', quads, 0);
  if (n > 4 * quads) run('main', n - 4 * quads, 4 * quads);
}
