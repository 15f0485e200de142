/**
 * Tuning the convolutions for a training run (train --tune): a throwaway
 * U-Net of the run's shape and variant takes training steps on random data under each
 * candidate configuration of the mixed-precision convolutions
 * (ops/conv/tune.ts), so that every GEMM the run's steps and validation
 * passes record runs in the configuration it ran fastest in here, while the
 * run's own model and optimiser are untouched.
 */
import type { Gpu } from '../gpu/gpu.js';
import { Tensor } from '../autograd/index.js';
import { type TuneOptions, type TuneReport, tuneConvolutions } from '../ops/conv/tune.js';
import { Adam } from './adam.js';
import { Rng } from './rng.js';
import { type TrainingLoss, trainingStep } from './trainer.js';
import { type UNetVariant, createUNet } from './unet.js';

export async function tuneForTraining(gpu: Gpu, shape: { baseWidth: number; inputSize: number; batch: number } & UNetVariant, loss: TrainingLoss, opts: TuneOptions = {}): Promise<TuneReport> {
  const { batch: n, inputSize: s } = shape;
  const rng = new Rng(1);
  const images = Float32Array.from({ length: n * s * s }, () => rng.next());
  const masks = images.map((v) => (v > 0.7 ? 1 : 0));
  const model = createUNet(gpu, { baseWidth: shape.baseWidth, inputSize: s, seed: 1, activation: shape.activation, dropout: shape.dropout, batchNorm: shape.batchNorm });
  const adam = new Adam(model.parameters, { lr: 1e-5 }, true);
  const x = Tensor.from(gpu, [n, s, s, 1], images);
  const y = Tensor.from(gpu, [n, s, s, 1], masks);
  try {
    return await tuneConvolutions(gpu, () => {
      const step = trainingStep(model, adam, x, y, loss);
      step.loss.dispose();
      step.dice?.dispose();
    }, opts);
  } finally {
    x.dispose();
    y.dispose();
    model.dispose();
    adam.dispose();
  }
}
