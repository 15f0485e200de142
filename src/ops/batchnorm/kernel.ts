/** Batch normalisation over channels, forward (training and inference) and backward: batchnorm.wgsl. */
import type { BufferView, Gpu } from '../../gpu/gpu.js';
import { ShapeError, shapeStr } from '../../gpu/errors.js';
import { type GpuTensor, checkSameShape, checkStorage, grid1d, numel, requireF32, requireSameDtype } from '../../gpu/tensor-view.js';
import { checkNoAliasing } from '../../gpu/aliasing.js';
import { declareKernel } from '../../gpu/kernel.js';
import batchNormSource from './batchnorm.wgsl';
import activationSource from '../conv/activation.wgsl';
import { ACT, type Activation } from '../conv/plan.js';

/** Invocations per workgroup (GROUP); batchnorm.wgsl's partial passes take 64 channels × GROUP / 64 pixel rows. */
const GROUP = 256;
const CHANNELS_A_GROUP = 64;
/** Chunks of pixels the statistics are summed in before they are merged: the partial passes' workgroups a channel block. */
const MAX_CHUNKS = 256;

const BATCH_NORM = declareKernel({
  name: 'batchNorm',
  parts: [batchNormSource, activationSource],
  defines: { GROUP },
  entryPoints: {
    partial_moments: ['x', 'partials'],
    finish_moments: ['partials_in', 'stats', 'running_mean', 'running_var'],
    running_stats: ['rmean_in', 'rvar_in', 'stats_out'],
    normalize: ['x', 'stats_in', 'gamma', 'beta', 'y_out'],
    partial_grads: ['x', 'partials', 'gstats', 'dy'],
    finish_grads: ['partials_in', 'gsums', 'dgamma', 'dbeta'],
    input_grad: ['x', 'stats_in', 'gamma', 'dy', 'gsums_in', 'dx_out'],
  },
  uniforms: [['pixels', 'u32'], ['channels', 'u32'], ['chunk', 'u32'], ['chunks', 'u32'], ['epsilon', 'f32'], ['momentum', 'f32'], ['row_threads', 'u32'], ['_pad', 'u32']],
  overrides: ['ACCUMULATE', 'ACT'],
  types: ['ELEM_TYPE'],
});

/** Keras's BatchNormalization defaults. */
export const BATCH_NORM_DEFAULTS = { epsilon: 1e-3, momentum: 0.99 } as const;

export interface BatchNormOptions {
  /** Added to the variance before its square root (Keras: 1e-3). */
  epsilon?: number;
  /** How much of the running statistics a training step keeps (Keras: 0.99). */
  momentum?: number;
  /** Applied to the normalised values as they are stored (activation.wgsl); 'none' by default. */
  activation?: Activation;
}

/** The running mean and variance of each channel, [C] f32 each, moved by every training step. */
export interface RunningStats {
  mean: GpuTensor;
  variance: GpuTensor;
}

/** Pixels, channels and the uniform values shared by every pass; checks x, γ and β. */
function geometry(op: string, gpu: Gpu, x: GpuTensor, gamma: GpuTensor, opts: BatchNormOptions) {
  checkStorage(op, 'x', x);
  if (x.shape.length < 2) throw new ShapeError(op, `x must be [..., channels], got ${shapeStr(x.shape)}`);
  const channels = x.shape[x.shape.length - 1]!;
  const pixels = numel(x.shape) / channels;
  if (!(channels >= 1 && pixels >= 1)) throw new ShapeError(op, `x must have at least one pixel and one channel, got ${shapeStr(x.shape)}`);
  perChannel(op, 'gamma', gamma, channels);
  const epsilon = opts.epsilon ?? BATCH_NORM_DEFAULTS.epsilon;
  const momentum = opts.momentum ?? BATCH_NORM_DEFAULTS.momentum;
  if (!(epsilon > 0 && Number.isFinite(epsilon))) throw new ShapeError(op, `epsilon must be a positive number, got ${epsilon}`);
  if (!(momentum >= 0 && momentum <= 1)) throw new ShapeError(op, `momentum must be in [0, 1], got ${momentum}`);
  if (opts.activation !== undefined && !(opts.activation in ACT)) throw new ShapeError(op, `unknown activation "${opts.activation}"; known: ${Object.keys(ACT).join(', ')}`);
  const chunk = Math.max(CHANNELS_A_GROUP, Math.ceil(pixels / MAX_CHUNKS));
  const chunks = Math.ceil(pixels / chunk);
  const flat = grid1d(pixels * channels, GROUP, gpu.limits.maxComputeWorkgroupsPerDimension);
  return {
    channels,
    pixels,
    chunks,
    blocks: Math.ceil(channels / CHANNELS_A_GROUP),
    flat: flat.workgroups,
    uniforms: { pixels, channels, chunk, chunks, epsilon, momentum, row_threads: flat.rowThreads, _pad: 0 },
  };
}

/** A [C] f32 tensor. */
function perChannel(op: string, name: string, t: GpuTensor, channels: number): void {
  checkStorage(op, name, t);
  if (t.shape.length !== 1 || t.shape[0] !== channels) throw new ShapeError(op, `${name} must have shape [${channels}], one value a channel, got ${shapeStr(t.shape)}`);
  requireF32(op, { [name]: t });
}

/** The per-channel statistics a training forward keeps for its backward: [C, 2] f32, (μ, 1/√(σ² + ε)) each. */
function checkStats(op: string, stats: GpuTensor, channels: number): void {
  checkStorage(op, 'stats', stats);
  if (stats.shape.length !== 2 || stats.shape[0] !== channels || stats.shape[1] !== 2) throw new ShapeError(op, `stats must have shape [${channels}, 2], got ${shapeStr(stats.shape)}`);
  requireF32(op, { stats });
}

/** β and the running mean and variance: [C] f32 each. */
function checkParameters(op: string, channels: number, beta: GpuTensor, running: RunningStats): void {
  perChannel(op, 'beta', beta, channels);
  perChannel(op, 'running mean', running.mean, channels);
  perChannel(op, 'running variance', running.variance, channels);
}

/**
 * Training: y = act(γ · (x − μ) / √(σ² + ε) + β) with each channel's (last axis)
 * mean and biased variance over the batch; `stats` receives (μ, 1/√(σ² + ε))
 * for the backward pass, and the running statistics move towards the
 * batch's by 1 − momentum (the variance's as Keras 2's: σ² · N / (N − 1 − ε)).
 */
export function batchNormTrain(gpu: Gpu, x: GpuTensor, gamma: GpuTensor, beta: GpuTensor, running: RunningStats, stats: GpuTensor, y: GpuTensor, opts: BatchNormOptions = {}): void {
  const op = 'batchNormTrain';
  const g = geometry(op, gpu, x, gamma, opts);
  checkParameters(op, g.channels, beta, running);
  checkStats(op, stats, g.channels);
  checkSameShape(op, ['x', 'y'], [x, y]);
  const type = requireSameDtype(op, { x, y });
  checkNoAliasing(op, { x, gamma, beta }, { y, stats, runningMean: running.mean, runningVariance: running.variance });
  const scratch = gpu.acquire(g.chunks * g.channels * 3 * 4);
  const partials: BufferView = { buffer: scratch.buffer, offset: 0, size: g.chunks * g.channels * 3 * 4 };
  const label = `${op} ${shapeStr(x.shape)}`;
  BATCH_NORM.dispatch(gpu, { entry: 'partial_moments', label: `${label} moments in ${g.chunks} chunks`, bind: { x: x.view, partials }, uniforms: g.uniforms, types: { ELEM_TYPE: type }, workgroups: [g.blocks, g.chunks] });
  BATCH_NORM.dispatch(gpu, {
    entry: 'finish_moments',
    label: `${label} statistics`,
    bind: { partials_in: partials, stats: stats.view, running_mean: running.mean.view, running_var: running.variance.view },
    uniforms: g.uniforms,
    types: { ELEM_TYPE: type },
    workgroups: [g.blocks],
  });
  gpu.release(scratch);
  normalize(gpu, label, g, type, x, stats.view, gamma, beta, y, opts.activation);
}

/** Inference: y = act(γ · (x − running mean) / √(running variance + ε) + β). */
export function batchNormInference(gpu: Gpu, x: GpuTensor, gamma: GpuTensor, beta: GpuTensor, running: RunningStats, y: GpuTensor, opts: BatchNormOptions = {}): void {
  const op = 'batchNormInference';
  const g = geometry(op, gpu, x, gamma, opts);
  checkParameters(op, g.channels, beta, running);
  checkSameShape(op, ['x', 'y'], [x, y]);
  const type = requireSameDtype(op, { x, y });
  checkNoAliasing(op, { x, gamma, beta, runningMean: running.mean, runningVariance: running.variance }, { y });
  const scratch = gpu.acquire(g.channels * 8);
  const stats: BufferView = { buffer: scratch.buffer, offset: 0, size: g.channels * 8 };
  const label = `${op} ${shapeStr(x.shape)}`;
  BATCH_NORM.dispatch(gpu, {
    entry: 'running_stats',
    label: `${label} statistics`,
    bind: { rmean_in: running.mean.view, rvar_in: running.variance.view, stats_out: stats },
    uniforms: g.uniforms,
    types: { ELEM_TYPE: type },
    workgroups: [g.blocks],
  });
  normalize(gpu, label, g, type, x, stats, gamma, beta, y, opts.activation);
  gpu.release(scratch);
}

function normalize(gpu: Gpu, label: string, g: ReturnType<typeof geometry>, type: ReturnType<typeof requireSameDtype>, x: GpuTensor, stats: BufferView, gamma: GpuTensor, beta: GpuTensor, y: GpuTensor, activation: Activation = 'none'): void {
  BATCH_NORM.dispatch(gpu, {
    entry: 'normalize',
    label: activation === 'none' ? label : `${label} ${activation}`,
    overrides: { ACT: ACT[activation] },
    bind: { x: x.view, stats_in: stats, gamma: gamma.view, beta: beta.view, y_out: y.view },
    uniforms: g.uniforms,
    types: { ELEM_TYPE: type },
    workgroups: g.flat,
  });
}

/**
 * The training forward's gradients from dy = ∂L/∂y (y before any activation:
 * its backward comes first) and the `stats` it kept:
 * dx (+)= γ/√(σ² + ε) · (dy − (Σ dy + x̂ · Σ dy·x̂) / N) (N the pixels, x̂ the
 * normalised x), ∂γ (+)= Σ dy·x̂ and ∂β (+)= Σ dy per channel.
 * `accumulate` adds to dx, `accumulateParams` to ∂γ and ∂β.
 */
export function batchNormBackward(
  gpu: Gpu,
  x: GpuTensor,
  dy: GpuTensor,
  gamma: GpuTensor,
  stats: GpuTensor,
  dx: GpuTensor,
  dgamma: GpuTensor,
  dbeta: GpuTensor,
  opts: { accumulate?: boolean; accumulateParams?: boolean } = {},
): void {
  const op = 'batchNormBackward';
  const g = geometry(op, gpu, x, gamma, {});
  checkSameShape(op, ['x', 'dy', 'dx'], [x, dy, dx]);
  checkStats(op, stats, g.channels);
  perChannel(op, 'dgamma', dgamma, g.channels);
  perChannel(op, 'dbeta', dbeta, g.channels);
  const type = requireSameDtype(op, { x, dy, dx });
  checkNoAliasing(op, { x, dy, gamma, stats }, { dx, dgamma, dbeta });
  const partialBytes = g.chunks * g.channels * 2 * 4;
  const scratch = gpu.acquire(partialBytes);
  const partials: BufferView = { buffer: scratch.buffer, offset: 0, size: partialBytes };
  // Σ dy and Σ dy·x̂ of each channel, which finish_grads writes and input_grad reads.
  const sumsBuffer = gpu.acquire(g.channels * 8);
  const gsums: BufferView = { buffer: sumsBuffer.buffer, offset: 0, size: g.channels * 8 };
  const label = `${op} ${shapeStr(x.shape)}`;
  BATCH_NORM.dispatch(gpu, { entry: 'partial_grads', label: `${label} sums in ${g.chunks} chunks`, bind: { x: x.view, partials, gstats: stats.view, dy: dy.view }, uniforms: g.uniforms, types: { ELEM_TYPE: type }, workgroups: [g.blocks, g.chunks] });
  BATCH_NORM.dispatch(gpu, {
    entry: 'finish_grads',
    label: `${label} ∂γ and ∂β`,
    bind: { partials_in: partials, gsums, dgamma: dgamma.view, dbeta: dbeta.view },
    uniforms: g.uniforms,
    overrides: { ACCUMULATE: opts.accumulateParams ? 1 : 0 },
    types: { ELEM_TYPE: type },
    workgroups: [g.blocks],
  });
  BATCH_NORM.dispatch(gpu, {
    entry: 'input_grad',
    label: `${label} ∂x`,
    bind: { x: x.view, stats_in: stats.view, gamma: gamma.view, dy: dy.view, gsums_in: gsums, dx_out: dx.view },
    uniforms: g.uniforms,
    overrides: { ACCUMULATE: opts.accumulate ? 1 : 0 },
    types: { ELEM_TYPE: type },
    workgroups: g.flat,
  });
  // Safe before the GPU runs: any later use of these buffers is recorded after these dispatches.
  gpu.release(scratch);
  gpu.release(sumsBuffer);
}
