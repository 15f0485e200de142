/** Dropout as an autograd op: the backward pass is the same masked map on the gradient. */
import { dropout as dropoutKernel } from './kernel.js';
import type { BufferView } from '../../gpu/gpu.js';
import type { Tensor } from '../../autograd/tensor.js';
import { output, record } from '../../autograd/record.js';

/**
 * x with each element dropped at `rate` and the rest scaled by 1 / (1 − rate),
 * the mask hashed from the u32 in `seed`; the seed must hold the same value
 * until the backward pass has run.
 */
export function dropout(x: Tensor, rate: number, seed: BufferView): Tensor {
  const y = output([x], x.shape, x.dtype);
  dropoutKernel(x.gpu, x, seed, y, rate);
  record('dropout', [x], y, (dy, grads) => {
    const t = grads.target(x);
    dropoutKernel(x.gpu, dy, seed, t.grad, rate, { accumulate: t.accumulate });
  });
  return y;
}
