/**
 * Dice scores: the competition's metric on binary masks, and the tutorial's
 * smoothed batch Dice used as its training metric (and, negated, its loss).
 */
import { DataError } from './errors.js';

/**
 * 2|X ∩ Y| / (|X| + |Y|) for two masks of equal size (nonzero = on); 1 when
 * both are empty, as the competition scores an image with no nerve predicted
 * and none present.
 */
export function diceScoreBinary(pred: Uint8Array, truth: Uint8Array): number {
  if (pred.length !== truth.length) {
    throw new DataError(`diceScoreBinary: the prediction has ${pred.length} pixels and the truth ${truth.length}; compare masks of the same size`);
  }
  let both = 0;
  let predOn = 0;
  let truthOn = 0;
  for (let i = 0; i < pred.length; i++) {
    const p = pred[i] !== 0;
    const t = truth[i] !== 0;
    if (p) predOn++;
    if (t) truthOn++;
    if (p && t) both++;
  }
  return predOn + truthOn === 0 ? 1 : (2 * both) / (predOn + truthOn);
}

/** The competition's score: diceScoreBinary averaged over images. */
export function meanDice(preds: Uint8Array[], truths: Uint8Array[]): number {
  if (preds.length !== truths.length) {
    throw new DataError(`meanDice: ${preds.length} predictions for ${truths.length} true masks; pass one prediction per mask`);
  }
  if (preds.length === 0) throw new DataError('meanDice: no masks given; the mean of nothing is undefined');
  let total = 0;
  for (let i = 0; i < preds.length; i++) total += diceScoreBinary(preds[i]!, truths[i]!);
  return total / preds.length;
}

/**
 * The tutorial's training metric over a whole batch at once:
 * (2 Σ y·p + smooth) / (Σ y + Σ p + smooth), with soft targets y and
 * probabilities p. Summed in float64.
 */
export function batchDice(prob: Float32Array, target: Float32Array, smooth = 1): number {
  if (prob.length !== target.length) {
    throw new DataError(`batchDice: ${prob.length} probabilities for ${target.length} targets; they must match one to one`);
  }
  let intersection = 0;
  let sumTarget = 0;
  let sumProb = 0;
  for (let i = 0; i < prob.length; i++) {
    intersection += target[i]! * prob[i]!;
    sumTarget += target[i]!;
    sumProb += prob[i]!;
  }
  return (2 * intersection + smooth) / (sumTarget + sumProb + smooth);
}
