/**
 * Batch normalisation as an autograd op: the batch's statistics where a tape
 * records (training, which also moves the running statistics), the running
 * ones elsewhere (inference), as Keras's BatchNormalization layer does.
 */
import { type BatchNormOptions, type RunningStats, batchNormBackward, batchNormInference, batchNormTrain } from './kernel.js';
import { Tensor } from '../../autograd/tensor.js';
import { activeTape } from '../../autograd/tape.js';
import { output, preActivationGrad, record } from '../../autograd/record.js';

/**
 * act(γ · (x − μ) / √(σ² + ε) + β) over the last axis (channels) of x; γ
 * and β are [C] parameters, `running` the [C] running mean and variance (not
 * parameters: no gradient), the activation fused into the store as a
 * convolution fuses its own.
 */
export function batchNorm(x: Tensor, gamma: Tensor, beta: Tensor, running: RunningStats, opts: BatchNormOptions = {}): Tensor {
  const y = output([x, gamma, beta], x.shape, x.dtype);
  if (!activeTape([x, gamma, beta])) {
    batchNormInference(x.gpu, x, gamma, beta, running, y, opts);
    return y;
  }
  const channels = x.shape[x.shape.length - 1]!;
  // (μ, 1/√(σ² + ε)) of each channel, for the backward pass; the tape frees it with everything else.
  const stats = Tensor.empty(x.gpu, [channels, 2]);
  batchNormTrain(x.gpu, x, gamma, beta, running, stats, y, opts);
  const activation = opts.activation ?? 'none';
  record(`batchNorm${activation === 'none' ? '' : `+${activation}`}`, [x, gamma, beta], y, (dyOut, grads) => {
    const dy = preActivationGrad(dyOut, y, activation, grads);
    const tx = x.requiresGrad ? grads.target(x) : null;
    const tg = gamma.requiresGrad ? grads.target(gamma) : null;
    const tb = beta.requiresGrad ? grads.target(beta) : null;
    // One pass writes all three; a gradient not asked for goes to a throw-away buffer.
    const dx = tx?.grad ?? grads.temp(x.shape, x.dtype);
    const dgamma = tg?.grad ?? grads.temp(gamma.shape);
    const dbeta = tb?.grad ?? grads.temp(beta.shape);
    let accumulateParams = (tg ?? tb)?.accumulate ?? false;
    if (tg && tb && tg.accumulate !== tb.accumulate) {
      // One holds a contribution already, the other not: clear the fresh one and add to both.
      x.gpu.clear((tg.accumulate ? tb : tg).grad.view);
      accumulateParams = true;
    }
    batchNormBackward(x.gpu, x, dy, gamma, stats, dx, dgamma, dbeta, { accumulate: tx?.accumulate ?? false, accumulateParams });
  }, { activation: activation === 'relu' || activation === 'sigmoid' ? activation : undefined });
  return y;
}
