/** 2 × 2 max-pooling and channel concatenation, with their gradients. */
import { maxPool2x2 as maxPoolKernel, maxPool2x2Backward, maxPool2x2Shape } from '../../kernels/maxpool.js';
import { concatChannels, splitChannels } from '../../kernels/concat.js';
import { ShapeError, shapeStr } from '../../kernels/errors.js';
import type { Tensor } from '../tensor.js';
import { output, record, writeGrad } from './record.js';

/** 2 × 2 max-pooling with stride 2 ('valid'); each gradient goes to its window's first maximum. */
export function maxPool2x2(x: Tensor): Tensor {
  const y = output([x], maxPool2x2Shape(x.shape));
  maxPoolKernel(x.gpu, x, y);
  record('maxPool2x2', [x], y, (dy, grads) => {
    const t = grads.target(x);
    maxPool2x2Backward(x.gpu, x, dy, t.grad, { accumulate: t.accumulate });
  });
  return y;
}

/** [a, b] along channels, a's channels first. */
export function concat(a: Tensor, b: Tensor): Tensor {
  if (a.shape.length !== 4 || b.shape.length !== 4) {
    throw new ShapeError('concat', `a ${shapeStr(a.shape)} and b ${shapeStr(b.shape)} must both be [batch, height, width, channels]`);
  }
  const y = output([a, b], [a.shape[0]!, a.shape[1]!, a.shape[2]!, a.shape[3]! + b.shape[3]!]);
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
      const junk = grads.temp(other.shape);
      if (need === a) splitChannels(a.gpu, dy, dst, junk);
      else splitChannels(a.gpu, dy, junk, dst);
    });
  });
  return y;
}
