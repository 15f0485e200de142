/** Elementwise ops and their gradients; outputs are stored as their inputs are (f32 or f16). */
import { binary, fill, unary } from './kernel.js';
import { sumAll } from '../reduce/kernel.js';
import { ShapeError, shapeStr } from '../../gpu/errors.js';
import type { Tensor } from '../../autograd/tensor.js';
import { output, record } from '../../autograd/record.js';

function sameShape(op: string, a: Tensor, b: Tensor): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new ShapeError(op, `shapes ${shapeStr(a.shape)} and ${shapeStr(b.shape)} must match`);
  }
}

export function relu(x: Tensor): Tensor {
  const y = output([x], x.shape, x.dtype);
  unary(x.gpu, 'relu', x, y);
  record('relu', [x], y, (dy, grads) => {
    const t = grads.target(x);
    binary(x.gpu, 'reluBackward', dy, y, t.grad, { accumulate: t.accumulate });
  });
  return y;
}

export function sigmoid(x: Tensor): Tensor {
  const y = output([x], x.shape, x.dtype);
  unary(x.gpu, 'sigmoid', x, y);
  record('sigmoid', [x], y, (dy, grads) => {
    const t = grads.target(x);
    binary(x.gpu, 'sigmoidBackward', dy, y, t.grad, { accumulate: t.accumulate });
  });
  return y;
}

/** alpha · x. */
export function scale(x: Tensor, alpha: number): Tensor {
  const y = output([x], x.shape, x.dtype);
  unary(x.gpu, 'affine', x, y, { alpha, beta: 0 });
  record('scale', [x], y, (dy, grads) => {
    const t = grads.target(x);
    unary(x.gpu, 'affine', dy, t.grad, { alpha, beta: 0, accumulate: t.accumulate });
  });
  return y;
}

export function add(a: Tensor, b: Tensor): Tensor {
  sameShape('add', a, b);
  const y = output([a, b], a.shape, a.dtype);
  binary(a.gpu, 'add', a, b, y);
  record('add', [a, b], y, (dy, grads) => {
    for (const x of [a, b]) {
      if (!x.requiresGrad) continue;
      const t = grads.target(x);
      unary(x.gpu, 'copy', dy, t.grad, { accumulate: t.accumulate });
    }
  });
  return y;
}

export function mul(a: Tensor, b: Tensor): Tensor {
  sameShape('mul', a, b);
  const y = output([a, b], a.shape, a.dtype);
  binary(a.gpu, 'mul', a, b, y);
  record('mul', [a, b], y, (dy, grads) => {
    for (const [x, other] of [[a, b], [b, a]] as const) {
      if (!x.requiresGrad) continue;
      const t = grads.target(x);
      binary(x.gpu, 'mul', dy, other, t.grad, { accumulate: t.accumulate });
    }
  });
  return y;
}

/** Σ of every element, as a one-element tensor that stays on the GPU. */
export function sum(x: Tensor): Tensor {
  const y = output([x], [1]);
  sumAll(x.gpu, x, y);
  record('sum', [x], y, (dy, grads) => {
    const t = grads.target(x);
    fill(x.gpu, dy, t.grad, { accumulate: t.accumulate });
  });
  return y;
}
