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
import { binary } from '../elementwise/kernel.js';
import { ShapeError, shapeStr } from '../../gpu/errors.js';
import type { GradSink, Tensor } from '../../autograd/tensor.js';
import { output, record } from '../../autograd/record.js';

/**
 * ∂L/∂(pre-activation) from ∂L/∂y, using the saved output y: relu' = [y > 0],
 * sigmoid' = y(1 − y). Without an activation it is dy itself.
 */
function preActivationGrad(dy: Tensor, y: Tensor, activation: Activation, grads: GradSink): Tensor {
  if (activation === 'none') return dy;
  const g = grads.temp(dy.shape);
  binary(dy.gpu, activation === 'relu' ? 'reluBackward' : 'sigmoidBackward', dy, y, g);
  return g;
}

/** act(conv2d(x, w) + b): 'same' padding, stride 1; w is (kh, kw, in, out). */
export function conv2d(x: Tensor, w: Tensor, b: Tensor, activation: Activation = 'none'): Tensor {
  if (x.shape.length !== 4) throw new ShapeError('conv2d', `x must be [batch, height, width, channels], got ${shapeStr(x.shape)}`);
  if (w.shape.length !== 4) throw new ShapeError('conv2d', `w must be [kh, kw, in, out], got ${shapeStr(w.shape)}`);
  const y = output([x, w, b], [x.shape[0]!, x.shape[1]!, x.shape[2]!, w.shape[3]!]);
  conv2dKernel(x.gpu, x, w, b, y, activation);
  record(`conv2d${activation === 'none' ? '' : `+${activation}`}`, [x, w, b], y, (dy, grads) => {
    const g = preActivationGrad(dy, y, activation, grads);
    if (x.requiresGrad) {
      const t = grads.target(x);
      conv2dBackwardInput(x.gpu, g, w, t.grad, { accumulate: t.accumulate });
    }
    const tw = w.requiresGrad ? grads.target(w) : undefined;
    const tb = b.requiresGrad ? grads.target(b) : undefined;
    if (tw && tb && tw.accumulate === tb.accumulate) {
      // One pass where the kernel can: the bias gradient as one more row of the weight gradient's GEMM.
      conv2dBackwardWeights(x.gpu, x, g, tw.grad, { accumulate: tw.accumulate, db: tb.grad });
    } else {
      if (tw) conv2dBackwardWeights(x.gpu, x, g, tw.grad, { accumulate: tw.accumulate });
      if (tb) biasGradient(x.gpu, g, tb.grad, { accumulate: tb.accumulate });
    }
  });
  return y;
}

/** 2 × 2, stride-2 transposed convolution plus bias; w is (kh, kw, out, in); output twice the size. */
export function convTranspose2x2(x: Tensor, w: Tensor, b: Tensor): Tensor {
  if (x.shape.length !== 4) throw new ShapeError('convTranspose2x2', `x must be [batch, height, width, channels], got ${shapeStr(x.shape)}`);
  if (w.shape.length !== 4) throw new ShapeError('convTranspose2x2', `w must be [2, 2, out, in], got ${shapeStr(w.shape)}`);
  const y = output([x, w, b], [x.shape[0]!, 2 * x.shape[1]!, 2 * x.shape[2]!, w.shape[2]!]);
  convTransposeKernel(x.gpu, x, w, b, y);
  record('convTranspose2x2', [x, w, b], y, (dy, grads) => {
    if (x.requiresGrad) {
      const t = grads.target(x);
      convTranspose2x2BackwardInput(x.gpu, dy, w, t.grad, { accumulate: t.accumulate });
    }
    if (w.requiresGrad) {
      const t = grads.target(w);
      convTranspose2x2BackwardWeights(x.gpu, x, dy, t.grad, { accumulate: t.accumulate });
    }
    if (b.requiresGrad) {
      const t = grads.target(b);
      biasGradient(x.gpu, dy, t.grad, { accumulate: t.accumulate });
    }
  });
  return y;
}
