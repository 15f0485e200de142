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
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { testGpu } from '../helpers/gpu.js';
import { maxAbsError } from '../helpers/compare.js';
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
  for (const [size, activation] of [[96, 'relu'], [48, 'elu']] as const) {
    it(`tf.loadLayersModel reads it, and its predict gives the engine's output within 1e-5 (base width 8, ${size} × ${size}, ${activation}, the five sample frames)`, async () => {
      const gpu = await testGpu();
      const m = await fixtureModel(gpu, 8, size, 5, activation);
      made.push(m);
      const out = join(m.dir, 'tfjs-model');
      const r = runCli(['export', '--format', 'tfjs', '--model', m.checkpointPath, '--out', out], m.dir);
      expect(r.errors, r.errors.join('\n')).toEqual([]);
      expect(r.code).toBe(0);

      const model = await loadFromFolder(out);
      // Keras's layer list, weightless layers included, under the tutorial's names.
      expect(model.layers.map((l) => l.name).slice(0, 4)).toEqual(['input_1', 'conv2d_1', 'conv2d_2', 'max_pooling2d_1']);
      expect(model.layers.filter((l) => l.getWeights().length > 0)).toHaveLength(23);
      const x = tf.tensor4d(m.images, [FRAME_COUNT, size, size, 1]);
      const y = model.predict(x) as tf.Tensor;
      expect(y.shape).toEqual([FRAME_COUNT, size, size, 1]);
      const probs = (await y.data()) as Float32Array;
      x.dispose();
      y.dispose();
      model.dispose();

      const [lo, hi] = range(m.engine);
      const diff = maxAbsError(probs, m.engine);
      console.log(`tfjs, base width 8, ${size}×${size}, ${activation}: max |tfjs-layers − engine| = ${diff.toExponential(2)} over probabilities in [${lo.toFixed(3)}, ${hi.toFixed(3)}]`);
      expect(hi - lo).toBeGreaterThan(0.05); // the outputs compared vary, so a misplaced weight shows
      expect(diff).toBeLessThanOrEqual(1e-5);
    });
  }
});
