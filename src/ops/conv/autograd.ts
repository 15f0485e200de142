/** Convolution ops with their backward rules; the activation is fused into the forward kernel. */
import {
  type Activation,
  biasGradient,
  conv2d as conv2dKernel,
  conv2dBackwardInput,
  conv2dBackwardWeights,
  convTranspose2x2 as convTransposeKernel,
  convTranspose2x2BackwardInput,
  convTranspose2x2BackwardWeights,
} from './index.js';
import { ShapeError, shapeStr } from '../../gpu/errors.js';
import type { GradSink, Tensor } from '../../autograd/tensor.js';
import { output, preActivationGrad, record } from '../../autograd/record.js';
import { activationType } from './device.js';

/**
 * Writes or adds ∂L/∂x through `write` (a convolution's ∂input kernel). Where
 * x is a ReLU's output, the kernel also multiplies the gradient by [x > 0]
 * as it stores it, so that the ReLU's backward has nothing left to do.
 */
function inputGradient(x: Tensor, grads: GradSink, write: (dx: Tensor, opts: { accumulate: boolean; mask?: Tensor }) => void): void {
  const t = grads.target(x);
  const mask = grads.foldableActivation(x) === 'relu' ? x : undefined;
  write(t.grad, { accumulate: t.accumulate, mask });
  if (mask) grads.markActivationApplied(x);
}

/**
 * ∂L/∂w and ∂L/∂b of a convolution whose output's gradient is dy, in one
 * pass where the kernel can: the bias gradient rides along in the weight
 * gradient's GEMM (a row or column of ones) when both are written or both
 * added to.
 */
function weightGradients(w: Tensor, b: Tensor, grads: GradSink, kernel: typeof conv2dBackwardWeights, x: Tensor, dy: Tensor): void {
  const tw = w.requiresGrad ? grads.target(w) : undefined;
  const tb = b.requiresGrad ? grads.target(b) : undefined;
  if (tw && tb && tw.accumulate === tb.accumulate) {
    kernel(x.gpu, x, dy, tw.grad, { accumulate: tw.accumulate, db: tb.grad });
  } else {
    if (tw) kernel(x.gpu, x, dy, tw.grad, { accumulate: tw.accumulate });
    if (tb) biasGradient(x.gpu, dy, tb.grad, { accumulate: tb.accumulate });
  }
}

/**
 * act(conv2d(x, w) + b): 'same' padding, stride 1; w is (kh, kw, in, out).
 * The output is stored as the device's activations are (activationType),
 * but a sigmoid's stays f32: probabilities near 1 need f32's resolution, and
 * the loss reads them.
 */
export function conv2d(x: Tensor, w: Tensor, b: Tensor, activation: Activation = 'none'): Tensor {
  if (x.shape.length !== 4) throw new ShapeError('conv2d', `x must be [batch, height, width, channels], got ${shapeStr(x.shape)}`);
  if (w.shape.length !== 4) throw new ShapeError('conv2d', `w must be [kh, kw, in, out], got ${shapeStr(w.shape)}`);
  const y = output([x, w, b], [x.shape[0]!, x.shape[1]!, x.shape[2]!, w.shape[3]!], activation === 'sigmoid' ? 'f32' : activationType(x.gpu));
  conv2dKernel(x.gpu, x, w, b, y, activation);
  record(`conv2d${activation === 'none' ? '' : `+${activation}`}`, [x, w, b], y, (dy, grads) => {
    const g = preActivationGrad(dy, y, activation, grads);
    if (x.requiresGrad) inputGradient(x, grads, (dx, opts) => conv2dBackwardInput(x.gpu, g, w, dx, opts));
    weightGradients(w, b, grads, conv2dBackwardWeights, x, g);
  }, { activation: activation === 'relu' || activation === 'sigmoid' ? activation : undefined });
  return y;
}

/** 2 × 2, stride-2 transposed convolution plus bias; w is (kh, kw, out, in); output twice the size. */
export function convTranspose2x2(x: Tensor, w: Tensor, b: Tensor): Tensor {
  if (x.shape.length !== 4) throw new ShapeError('convTranspose2x2', `x must be [batch, height, width, channels], got ${shapeStr(x.shape)}`);
  if (w.shape.length !== 4) throw new ShapeError('convTranspose2x2', `w must be [2, 2, out, in], got ${shapeStr(w.shape)}`);
  const y = output([x, w, b], [x.shape[0]!, 2 * x.shape[1]!, 2 * x.shape[2]!, w.shape[2]!], activationType(x.gpu));
  convTransposeKernel(x.gpu, x, w, b, y);
  record('convTranspose2x2', [x, w, b], y, (dy, grads) => {
    if (x.requiresGrad) inputGradient(x, grads, (dx, opts) => convTranspose2x2BackwardInput(x.gpu, dy, w, dx, opts));
    weightGradients(w, b, grads, convTranspose2x2BackwardWeights, x, dy);
  });
  return y;
}
