/** 2 × 2 max-pooling with its gradient, as a tensor op. */
import { maxPool2x2 as maxPoolKernel, maxPool2x2Backward, maxPool2x2Shape } from './kernel.js';
import type { Tensor } from '../../autograd/tensor.js';
import { output, record } from '../../autograd/record.js';

/** 2 × 2 max-pooling with stride 2 ('valid'); each gradient goes to its window's first maximum. */
export function maxPool2x2(x: Tensor): Tensor {
  const y = output([x], maxPool2x2Shape(x.shape), x.dtype);
  maxPoolKernel(x.gpu, x, y);
  record('maxPool2x2', [x], y, (dy, grads) => {
    const t = grads.target(x);
    // Where x is a ReLU's output, the ReLU's mask is applied here, from the x the kernel reads anyway.
    const reluMask = grads.foldableActivation(x) === 'relu';
    maxPool2x2Backward(x.gpu, x, dy, t.grad, { accumulate: t.accumulate, reluMask });
    if (reluMask) grads.markActivationApplied(x);
  });
  return y;
}
