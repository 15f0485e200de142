/**
 * The tutorial's U-Net as a user of tfjs-layers might write it, in the forms
 * the importers carry over (activation layers, [skip, upsampled]
 * concatenations, batch normalisation, dropout) and forms they must refuse,
 * with seeded weights: the peer model of the tfjs and Keras 3 import tests.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { randomArray } from '../helpers/random.js';
import { FRAME_COUNT } from './fixture-model.js';

export interface TfjsOptions {
  elu?: boolean;
  /** Conv2D (linear, no bias), BatchNormalization of this ε, then an Activation layer. */
  batchNormEpsilon?: number;
  /** Hidden activations as ReLU / ELU layers after linear convolutions. */
  separateActivation?: boolean;
  /** Concatenations of [skip, upsampled]. */
  swapConcat?: boolean;
  /** A Dropout layer after the bottom's convolutions. */
  dropout?: boolean;
  /** The first decoder level joins its level's first convolution instead of its skip. */
  wrongSkip?: boolean;
  /** One convolution dilated. */
  dilated?: boolean;
  /** The head without its sigmoid. */
  logits?: boolean;
  /** An Add layer the U-Net has no counterpart for. */
  extraAdd?: boolean;
}

/** The tutorial's U-Net as a tfjs-layers user might write it (tfjs names every layer), with random biases and normalisation statistics. */
export function tfjsUNet(w: number, size: number, seed: number, o: TfjsOptions = {}): tfl.LayersModel {
  const act = o.elu ? 'elu' : 'relu';
  let convs = 0;
  const conv = (x: tfl.SymbolicTensor, filters: number): tfl.SymbolicTensor => {
    const dilated = o.dilated && ++convs === 3;
    if (o.batchNormEpsilon !== undefined) {
      const y = tfl.layers.conv2d({ filters, kernelSize: 3, padding: 'same', useBias: false }).apply(x) as tfl.SymbolicTensor;
      const n = tfl.layers.batchNormalization({ epsilon: o.batchNormEpsilon }).apply(y) as tfl.SymbolicTensor;
      return tfl.layers.activation({ activation: act }).apply(n) as tfl.SymbolicTensor;
    }
    if (o.separateActivation) {
      const y = tfl.layers.conv2d({ filters, kernelSize: 3, padding: 'same' }).apply(x) as tfl.SymbolicTensor;
      return (o.elu ? tfl.layers.elu() : tfl.layers.reLU()).apply(y) as tfl.SymbolicTensor;
    }
    return tfl.layers.conv2d({ filters, kernelSize: 3, padding: 'same', activation: act, ...(dilated ? { dilationRate: 2 } : {}) }).apply(x) as tfl.SymbolicTensor;
  };
  const up = (x: tfl.SymbolicTensor, filters: number) => tfl.layers.conv2dTranspose({ filters, kernelSize: 2, strides: 2, padding: 'same' }).apply(x) as tfl.SymbolicTensor;
  const pool = (x: tfl.SymbolicTensor) => tfl.layers.maxPooling2d({ poolSize: 2 }).apply(x) as tfl.SymbolicTensor;
  const cat = (u: tfl.SymbolicTensor, skip: tfl.SymbolicTensor) => tfl.layers.concatenate({ axis: 3 }).apply(o.swapConcat ? [skip, u] : [u, skip]) as tfl.SymbolicTensor;

  const input = tfl.input({ shape: [size, size, 1] });
  const skips: tfl.SymbolicTensor[] = [];
  const firsts: tfl.SymbolicTensor[] = [];
  let x: tfl.SymbolicTensor = input;
  for (let level = 0; level < 4; level++) {
    const first = conv(x, w << level);
    firsts.push(first);
    skips.push(conv(first, w << level));
    x = pool(skips[level]!);
  }
  x = conv(conv(x, 16 * w), 16 * w);
  if (o.dropout) x = tfl.layers.dropout({ rate: 0.5 }).apply(x) as tfl.SymbolicTensor;
  if (o.extraAdd) x = tfl.layers.add().apply([x, x]) as tfl.SymbolicTensor;
  for (let level = 3; level >= 0; level--) {
    const skip = o.wrongSkip && level === 3 ? firsts[level]! : skips[level]!;
    x = conv(conv(cat(up(x, w << level), skip), w << level), w << level);
  }
  const head = tfl.layers.conv2d({ filters: 1, kernelSize: 1, activation: o.logits ? 'linear' : 'sigmoid' }).apply(x) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: head });
  // Seeded weights (tfjs's initialisers are not): kernels Glorot-uniform, and biases, β and the running
  // statistics random too, since their defaults (0, 0, 0, 1) would hide a misplaced one.
  model.setWeights(model.weights.map((v, i) => {
    const name = v.originalName;
    const shape = v.shape as number[];
    const n = shape.reduce((a, b) => a * b, 1);
    if (/\/(bias|beta|moving_mean)$/.test(name)) return tf.tensor(randomArray(n, seed * 100 + i, -0.1, 0.1), shape);
    if (/\/(gamma|moving_variance)$/.test(name)) return tf.tensor(randomArray(n, seed * 100 + i, 0.5, 1.5), shape);
    const [kh, kw, a, b] = shape;
    const limit = Math.sqrt(6 / (kh! * kw! * (a! + b!)));
    return tf.tensor(randomArray(n, seed * 100 + i, -limit, limit), shape);
  }));
  return model;
}

/** tfjs-layers' predict of `images` (the sample frames at `size`). */
export function theirPredict(model: tfl.LayersModel, images: Float32Array, size: number): Float32Array {
  const x = tf.tensor4d(images, [FRAME_COUNT, size, size, 1]);
  const y = model.predict(x) as tf.Tensor;
  const out = y.dataSync() as Float32Array;
  tf.dispose([x, y]);
  return out;
}
