/** What every op does around its kernels: output allocation and recording on the tape. */
import { activeTape } from './tape.js';
import { type FoldableActivation, Tensor, type GradSink, type TapeNode } from './tensor.js';
import { binary, binaryInPlace, unary } from '../ops/elementwise/kernel.js';
import type { DType } from '../gpu/tensor-view.js';
import type { Activation } from '../ops/conv/plan.js';

/** Allocates an op's output (f32 unless told); it requires grad when any input does and a tape records. */
export function output(inputs: readonly Tensor[], shape: readonly number[], dtype: DType = 'f32'): Tensor {
  return Tensor.empty(inputs[0]!.gpu, shape, activeTape(inputs) !== null, dtype);
}

/** Records `backward` for `out` when a tape is recording and an input requires grad (`activation`: TapeNode's). */
export function record(op: string, inputs: readonly Tensor[], out: Tensor, backward: TapeNode['backward'], opts: { activation?: FoldableActivation } = {}): void {
  const tape = activeTape(inputs);
  if (tape) tape.record({ op, inputs, output: out, backward, ...(opts.activation ? { activation: opts.activation } : {}) });
}

/**
 * For kernels that can only overwrite: writes straight into the gradient of
 * `t`, or into a temporary that is then added when `t` already holds a
 * contribution (a tensor used by several ops).
 */
export function writeGrad(t: Tensor, grads: GradSink, write: (dst: Tensor) => void): void {
  const { grad, accumulate } = grads.target(t);
  if (!accumulate) return write(grad);
  const tmp = grads.temp(t.shape, t.dtype);
  write(tmp);
  unary(t.gpu, 'copy', tmp, grad, { accumulate: true });
}

const BACKWARD = { relu: 'reluBackward', sigmoid: 'sigmoidBackward', elu: 'eluBackward' } as const;

/**
 * The backward of the activation an op fuses into its output (a convolution,
 * batch normalisation): ∂L/∂(pre-activation) from ∂L/∂y, using the saved
 * output y: relu' = [y > 0], sigmoid' = y(1 − y), elu' = 1 where y > 0,
 * else y + 1. Without an activation it is dy itself, and so is it where the
 * gradient's writers applied the activation's backward already (for a ReLU,
 * the ∂input of the layers that read y; for a sigmoid, the Dice loss's
 * backward). Written over dy where nothing reads dy
 * afterwards (in a tape's backward, always), which spares a buffer of its
 * size at the step's busiest moment.
 */
export function preActivationGrad(dy: Tensor, y: Tensor, activation: Activation, grads: GradSink): Tensor {
  if (activation === 'none' || grads.activationApplied(y)) return dy;
  const op = BACKWARD[activation];
  if (grads.consumable(dy)) {
    binaryInPlace(dy.gpu, op, dy, y);
    return dy;
  }
  const g = grads.temp(dy.shape, dy.dtype);
  binary(dy.gpu, op, dy, y, g);
  return g;
}
