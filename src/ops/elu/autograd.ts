/** ELU as an autograd op: the forward kernel, and the backward rule that uses the saved output. */
import { elu as eluKernel, eluBackward } from './kernel.js';
import type { Tensor } from '../../autograd/tensor.js';
import { output, record } from '../../autograd/record.js';

export function elu(x: Tensor, alpha = 1): Tensor {
  const y = output([x], x.shape);
  eluKernel(x.gpu, x, y, alpha);
  record('elu', [x], y, (dy, grads) => {
    const t = grads.target(x);
    eluBackward(x.gpu, dy, y, t.grad, alpha, { accumulate: t.accumulate });
  });
  return y;
}
