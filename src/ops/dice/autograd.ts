/**
 * The Dice loss (smooth 1): over the whole batch, the tutorial's, or image by
 * image, minus the mean of each image's Dice (the competition's metric is a
 * mean over images, and an empty image predicted empty counts 1); optionally
 * plus a weighted binary cross-entropy, whose gradient does not fade where
 * the Dice's does.
 */
import { diceLoss as diceKernel, diceLossBackward } from './kernel.js';
import { Tensor } from '../../autograd/tensor.js';
import { activeTape } from '../../autograd/tape.js';
import { output, record, writeGrad } from '../../autograd/record.js';

/** What one Dice is taken over: the whole batch, or each image (the first axis). */
export type DiceOver = 'batch' | 'image';

/**
 * −(2 Σ y·p + 1) / (Σ y + Σ p + 1) as a one-element tensor, the sums taken
 * over the batch or, with over = 'image', minus the mean of that over the
 * images; plus `bce` times the mean cross-entropy of p against y. y is the
 * target (no gradient).
 */
export function diceLoss(p: Tensor, y: Tensor, over: DiceOver = 'batch', bce = 0): Tensor {
  const terms = { groups: over === 'image' ? p.shape[0]! : 1, bce };
  const loss = output([p], [1]);
  const sums = Tensor.empty(p.gpu, [4 * terms.groups]);
  diceKernel(p.gpu, p, y, loss, sums, terms);
  // Only backward needs the sums; the tape frees them with everything else.
  if (!activeTape([p])) sums.dispose();
  record('diceLoss', [p], loss, (dLoss, grads) => {
    // Where p is a sigmoid's output that only the loss reads, ∂L/∂(its logits) at once: the sigmoid's backward is left with nothing to do.
    const logits = grads.foldableActivation(p) === 'sigmoid';
    writeGrad(p, grads, (dst) => diceLossBackward(p.gpu, p, y, sums, dLoss, dst, terms, logits ? 'logits' : 'p'));
    if (logits) grads.markActivationApplied(p);
  });
  return loss;
}
