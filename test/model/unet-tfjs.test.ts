/**
 * The proof that our U-Net is the tutorial's model: the same architecture
 * built with tfjs-layers (Keras's layers, in JavaScript) on tfjs's CPU
 * backend, given our initial weights, produces the same output and the same
 * gradients of the tutorial's loss (−Dice, smooth 1, over the whole batch).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { testGpu } from '../helpers/gpu.js';
import { relErrorToScale } from '../helpers/compare.js';
import { type ConvLayerSpec, createUNet, type UNetLayerSpec } from '../../src/model/unet.js';
import { convOverrides, setConvOverrides } from '../../src/ops/conv/index.js';
import { Tensor, noGrad } from '../../src/autograd/index.js';
import { diceGradients } from '../helpers/unet-step.js';
import { blobBatch } from './blobs.js';
import { kerasDiceLoss, kerasUNet } from '../../bench/tfjs-unet.js';

const BASE_WIDTH = 4;
const SIZE = 16;
const BATCH = 2;

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** The tf.Variable behind a layer weight (LayerVariable.read() returns it). */
function variableOf(w: tfl.LayerVariable): tf.Variable {
  return w.read() as tf.Variable;
}

describe('U-Net against tfjs-layers', () => {
  // The adapter's own convolutions, and the tiled ones where those are not the
  // default: in a training step the tiled weight gradient also computes the
  // bias gradient, both added into views of the one flat gradient buffer.
  for (const variant of ['default', 'tiled'] as const) {
    it(`same output and same gradients of −Dice for every weight, from the same initial weights (${variant} convolutions)`, async () => {
      const gpu = await testGpu();
      const before = convOverrides(gpu).formulation;
      if (variant === 'tiled') setConvOverrides(gpu, { formulation: 'tiled' });
      try {
        const t0 = performance.now();
        const unet = createUNet(gpu, { baseWidth: BASE_WIDTH, inputSize: SIZE, seed: 11 });
        const ours = await unet.parameters.readAll();
        const { model, layers } = kerasUNet(BASE_WIDTH, SIZE);
        expect(layers.map((l) => l.name)).toEqual(unet.layers.map((s: UNetLayerSpec) => s.name));
        for (const [i, layer] of layers.entries()) {
          const name = unet.layers[i]!.name;
          const [k, b] = layer.getWeights();
          const kernel = ours.get(`${name}/kernel`)!;
          const bias = ours.get(`${name}/bias`)!;
          expect(k!.shape).toEqual((unet.layers[i] as ConvLayerSpec).kernelShape); // Keras layouts agree, including the transposed (kh, kw, out, in)
          layer.setWeights([tf.tensor(kernel, k!.shape), tf.tensor(bias, b!.shape)]);
        }

        const { images, masks } = blobBatch(BATCH, SIZE, 5);
        const shape = [BATCH, SIZE, SIZE, 1];

        // Ours: forward, loss, backward on the GPU.
        const { probs: ourProbs, loss: ourLoss, grads: ourGrads } = await diceGradients(unet, shape, images, masks);
        const t1 = performance.now();
        // Outside a tape the forward pass frees each intermediate early (buffers are reused mid-pass): same result.
        const x = Tensor.from(gpu, shape, images);
        const inferred = noGrad(() => unet.forward(x));
        expect(relErrorToScale(await inferred.read(), ourProbs)).toBe(0);
        inferred.dispose();
        x.dispose();

        // tfjs-layers: the same, on the CPU backend.
        const tx = tf.tensor4d(images, shape as [number, number, number, number]);
        const ty = tf.tensor4d(masks, shape as [number, number, number, number]);
        const theirProbs = (model.apply(tx) as tf.Tensor).dataSync();
        const variables = layers.flatMap((l) => l.trainableWeights.map(variableOf));
        const { value, grads } = tf.variableGrads(() => kerasDiceLoss(ty, model.apply(tx) as tf.Tensor), variables);
        const theirLoss = value.dataSync()[0]!;
        console.log(`time: ours ${(t1 - t0).toFixed(0)} ms, tfjs ${(performance.now() - t1).toFixed(0)} ms`);

        const outputError = relErrorToScale(ourProbs, theirProbs);
        console.log(`output: error relative to scale ${outputError.toExponential(2)}; loss ours ${ourLoss.toFixed(6)}, tfjs-layers ${theirLoss.toFixed(6)}`);
        expect(outputError).toBeLessThan(1e-3);
        expect(Math.abs(ourLoss - theirLoss)).toBeLessThan(1e-4);

        let worst = { name: '', error: 0 };
        for (const [i, layer] of layers.entries()) {
          const name = unet.layers[i]!.name;
          const [kv, bv] = layer.trainableWeights.map(variableOf);
          for (const [suffix, v] of [['kernel', kv!], ['bias', bv!]] as const) {
            const theirs = grads[v.name]!.dataSync();
            const mine = ourGrads.get(`${name}/${suffix}`)!;
            expect(theirs.some((g) => g !== 0), `${name}/${suffix} has a zero gradient: the comparison would prove nothing`).toBe(true);
            const error = relErrorToScale(mine, theirs);
            expect(error, `${name}/${suffix}`).toBeLessThan(1e-3);
            if (!(error <= worst.error)) worst = { name: `${name}/${suffix}`, error };
          }
        }
        console.log(`gradients of −Dice: worst error relative to scale ${worst.error.toExponential(2)} (${worst.name}) over ${2 * layers.length} tensors`);
        tf.dispose([tx, ty, value, ...Object.values(grads)]);
        model.dispose();
        unet.dispose();
      } finally {
        setConvOverrides(gpu, { formulation: before });
      }
    });
  }
});
