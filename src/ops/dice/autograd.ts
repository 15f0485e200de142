/** The tutorial's loss: −Dice over the whole batch (smooth 1). */
import { diceLoss as diceKernel, diceLossBackward } from './kernel.js';
import { Tensor } from '../../autograd/tensor.js';
import { activeTape } from '../../autograd/tape.js';
import { output, record, writeGrad } from '../../autograd/record.js';

/** −(2 Σ y·p + 1) / (Σ y + Σ p + 1) as a one-element tensor; y is the target (no gradient). */
export function diceLoss(p: Tensor, y: Tensor): Tensor {
  const loss = output([p], [1]);
  const sums = Tensor.empty(p.gpu, [3]);
  diceKernel(p.gpu, p, y, loss, sums);
  // Only backward needs the sums; the tape frees them with everything else.
  if (!activeTape([p])) sums.dispose();
  record('diceLoss', [p], loss, (dLoss, grads) => {
    writeGrad(p, grads, (dst) => diceLossBackward(p.gpu, p, y, sums, dLoss, dst));
  });
  return loss;
}
