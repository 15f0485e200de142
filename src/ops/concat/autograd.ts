/** Channel concatenation with its gradient, as a tensor op. */
import { concatChannels, splitChannels } from './kernel.js';
import { ShapeError, shapeStr } from '../../gpu/errors.js';
import type { Tensor } from '../../autograd/tensor.js';
import { output, record, writeGrad } from '../../autograd/record.js';

/** [a, b] along channels, a's channels first. */
export function concat(a: Tensor, b: Tensor): Tensor {
  if (a.shape.length !== 4 || b.shape.length !== 4) {
    throw new ShapeError('concat', `a ${shapeStr(a.shape)} and b ${shapeStr(b.shape)} must both be [batch, height, width, channels]`);
  }
  const y = output([a, b], [a.shape[0]!, a.shape[1]!, a.shape[2]!, a.shape[3]! + b.shape[3]!], a.dtype);
  concatChannels(a.gpu, a, b, y);
  record('concat', [a, b], y, (dy, grads) => {
    if (a.requiresGrad && b.requiresGrad) {
      const ta = grads.target(a);
      const tb = grads.target(b);
      if (ta.accumulate === tb.accumulate) {
        splitChannels(a.gpu, dy, ta.grad, tb.grad, { accumulate: ta.accumulate });
        return;
      }
      // One side holds a contribution already, the other not: clear the fresh one and add to both.
      a.gpu.clear((ta.accumulate ? tb : ta).grad.view);
      splitChannels(a.gpu, dy, ta.grad, tb.grad, { accumulate: true });
      return;
    }
    // Only one side needs a gradient: split into a throw-away buffer for the other.
    const [need, other] = a.requiresGrad ? [a, b] : [b, a];
    writeGrad(need, grads, (dst) => {
      const junk = grads.temp(other.shape, other.dtype);
      if (need === a) splitChannels(a.gpu, dy, dst, junk);
      else splitChannels(a.gpu, dy, junk, dst);
    });
  });
  return y;
}
