/**
 * `export --format tfjs`, proven by tfjs-layers' own loader: tf.loadLayersModel
 * reads model.json and its shard from the export folder (through tf.io.http,
 * whose fetch is served from disk) and its predict, on tfjs's CPU backend,
 * gives the engine's probabilities for the five sample frames within 1e-5.
 */
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { testGpu } from '../helpers/gpu.js';
import { maxAbsError, relErrorToScale } from '../helpers/compare.js';
import { createUNet } from '../../src/model/unet.js';
import { loadWeights } from '../../src/model/checkpoint.js';
import { diceGradients } from '../helpers/unet-step.js';
import { kerasDiceLoss } from '../../bench/tfjs-unet.js';
import { FRAME_COUNT, type FixtureModel, fixtureModel, range, runCli } from './fixture-model.js';

const made: FixtureModel[] = [];
afterAll(() => made.forEach((m) => m.cleanup()));
beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** tfjs's HTTP loader with its requests answered from `dir`: the loader itself resolves the shard paths in model.json. */
function loadFromFolder(dir: string): Promise<tfl.LayersModel> {
  const requested: string[] = [];
  const fetchFunc = (async (url: string | URL | Request) => {
    const name = basename(new URL(String(url)).pathname);
    requested.push(name);
    return new Response(readFileSync(join(dir, name)));
  }) as typeof fetch;
  return tfl.loadLayersModel(tf.io.http('http://export.invalid/model/model.json', { fetchFunc })).then((model) => {
    expect(requested).toEqual(['model.json', 'group1-shard1of1.bin']);
    return model;
  });
}

describe('export --format tfjs', () => {
  for (const [size, activation, batchNorm] of [[96, 'relu', false], [48, 'elu', false], [48, 'relu', true]] as const) {
    it(`tf.loadLayersModel reads it, and its predict gives the engine's output within 1e-5 (base width 8, ${size} × ${size}, ${activation}${batchNorm ? ', batch normalisation' : ''}, the five sample frames)`, async () => {
      const gpu = await testGpu();
      const m = await fixtureModel(gpu, 8, size, 5, { activation, batchNorm });
      made.push(m);
      const out = join(m.dir, 'tfjs-model');
      const r = runCli(['export', '--format', 'tfjs', '--model', m.checkpointPath, '--out', out], m.dir);
      expect(r.errors, r.errors.join('\n')).toEqual([]);
      expect(r.code).toBe(0);

      const model = await loadFromFolder(out);
      // Keras's layer list, weightless layers included, under the tutorial's names.
      expect(model.layers.map((l) => l.name).slice(0, 4)).toEqual(batchNorm ? ['input_1', 'conv2d_1', 'batch_normalization_1', 'activation_1'] : ['input_1', 'conv2d_1', 'conv2d_2', 'max_pooling2d_1']);
      expect(model.layers.filter((l) => l.getWeights().length > 0)).toHaveLength(batchNorm ? 23 + 18 : 23);
      const x = tf.tensor4d(m.images, [FRAME_COUNT, size, size, 1]);
      const y = model.predict(x) as tf.Tensor;
      expect(y.shape).toEqual([FRAME_COUNT, size, size, 1]);
      const probs = (await y.data()) as Float32Array;
      x.dispose();
      y.dispose();
      model.dispose();

      const [lo, hi] = range(m.engine);
      const diff = maxAbsError(probs, m.engine);
      console.log(`tfjs, base width 8, ${size}×${size}, ${activation}${batchNorm ? ', batch normalisation' : ''}: max |tfjs-layers − engine| = ${diff.toExponential(2)} over probabilities in [${lo.toFixed(3)}, ${hi.toFixed(3)}]`);
      expect(hi - lo).toBeGreaterThan(0.05); // the outputs compared vary, so a misplaced weight shows
      expect(diff).toBeLessThanOrEqual(1e-5);
    });
  }

  it("the batch-normalised U-Net in training mode: tfjs-layers' model of it (training: true, the batch's statistics) gives our output and gradients of −Dice for every weight", async () => {
    const gpu = await testGpu();
    const size = 16;
    const m = await fixtureModel(gpu, 4, size, 9, { batchNorm: true, activation: 'elu' });
    made.push(m);
    const out = join(m.dir, 'tfjs-model');
    expect(runCli(['export', '--format', 'tfjs', '--model', m.checkpointPath, '--out', out], m.dir).code).toBe(0);
    const theirs = await loadFromFolder(out);

    const unet = createUNet(gpu, m.meta.config);
    loadWeights(unet, { meta: m.meta, weights: m.weights }, 'fixture');
    const masks = Float32Array.from(m.images, (v) => (v > 0.5 ? 1 : 0));
    const shape = [FRAME_COUNT, size, size, 1];
    const ours = await diceGradients(unet, shape, m.images, masks);

    const tx = tf.tensor4d(m.images, shape as [number, number, number, number]);
    const ty = tf.tensor4d(masks, shape as [number, number, number, number]);
    const theirProbs = (theirs.apply(tx, { training: true }) as tf.Tensor).dataSync();
    const weights = theirs.trainableWeights;
    const { value, grads } = tf.variableGrads(() => kerasDiceLoss(ty, theirs.apply(tx, { training: true }) as tf.Tensor), weights.map((w) => w.read() as tf.Variable));
    const outputError = relErrorToScale(ours.probs, theirProbs);
    console.log(`batch-normalised U-Net, training mode: output error relative to scale ${outputError.toExponential(2)}; loss ours ${ours.loss.toFixed(6)}, tfjs-layers ${value.dataSync()[0]!.toFixed(6)}`);
    expect(outputError).toBeLessThan(1e-3);
    expect(Math.abs(ours.loss - value.dataSync()[0]!)).toBeLessThan(1e-4);
    expect(weights).toHaveLength(unet.parameters.params.length);
    // The convolutions followed by a batch normalisation.
    const normalised = new Set(unet.layers.flatMap((l, i) => (unet.layers[i + 1]?.kind === 'batch_normalization' ? [l.name] : [])));
    let worst = { name: '', error: 0 };
    for (const w of weights) {
      const mine = ours.grads.get(w.originalName)!;
      expect(mine, w.originalName).toBeDefined();
      const g = grads[(w.read() as tf.Variable).name]!.dataSync();
      const layer = w.originalName.slice(0, w.originalName.indexOf('/'));
      if (w.originalName.endsWith('/bias') && normalised.has(layer)) {
        // A bias the normalisation subtracts again: its gradient is zero but for rounding, on both sides.
        const scale = Math.max(...Array.from(ours.grads.get(`${layer}/kernel`)!, Math.abs));
        for (const side of [mine, g]) expect(Math.max(...Array.from(side, Math.abs)), w.originalName).toBeLessThan(1e-5 * scale);
        continue;
      }
      expect(g.some((v) => v !== 0), `${w.originalName} has a zero gradient: the comparison would prove nothing`).toBe(true);
      const error = relErrorToScale(mine, g);
      expect(error, w.originalName).toBeLessThan(1e-3);
      if (!(error <= worst.error)) worst = { name: w.originalName, error };
    }
    console.log(`gradients of −Dice: worst error relative to scale ${worst.error.toExponential(2)} (${worst.name}) over ${weights.length} tensors`);
    tf.dispose([tx, ty, value, ...Object.values(grads)]);
    theirs.dispose();
    unet.dispose();
  });
});
