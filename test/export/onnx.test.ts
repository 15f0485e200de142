/**
 * `export --format onnx`, proven by onnxruntime: the exported model, run by
 * onnxruntime-node on the five Kaggle sample frames prepared as predict
 * prepares them, gives the engine's probabilities within 1e-5.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { testGpu } from '../helpers/gpu.js';
import { maxAbsError } from '../helpers/compare.js';
import { encodeOnnx } from '../../src/model/export/onnx.js';
import { FRAME_COUNT, type FixtureModel, fixtureModel, range, runCli } from './fixture-model.js';

async function runOnnx(model: string | Uint8Array, images: Float32Array, size: number): Promise<{ mask: Float32Array; dims: readonly number[] }> {
  const session = typeof model === 'string' ? await ort.InferenceSession.create(model) : await ort.InferenceSession.create(model);
  try {
    expect(session.inputNames).toEqual(['image']);
    expect(session.outputNames).toEqual(['mask']);
    const result = await session.run({ image: new ort.Tensor('float32', images, [FRAME_COUNT, size, size, 1]) });
    const mask = result.mask!;
    return { mask: mask.data as Float32Array, dims: mask.dims };
  } finally {
    await session.release();
  }
}

const made: FixtureModel[] = [];
afterAll(() => made.forEach((m) => m.cleanup()));

describe('export --format onnx', () => {
  for (const [baseWidth, size, activation, batchNorm] of [
    [8, 96, 'relu', false],
    [32, 96, 'relu', false], // the tutorial's model
    [8, 48, 'elu', false], // the ELU variant: Elu nodes
    [8, 48, 'elu', true], // and batch normalisation: BatchNormalization nodes on the running statistics
  ] as const) {
    it(`onnxruntime gives the engine's output within 1e-5 (base width ${baseWidth}, ${size} × ${size}, ${activation}${batchNorm ? ', batch normalisation' : ''}, the five sample frames)`, async () => {
      const gpu = await testGpu();
      const m = await fixtureModel(gpu, baseWidth, size, 7, { activation, batchNorm });
      made.push(m);
      const out = join(m.dir, 'unet.onnx');
      const r = runCli(['export', '--format', 'onnx', '--model', m.checkpointPath, '--out', out], m.dir);
      expect(r.errors, r.errors.join('\n')).toEqual([]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/wrote .*unet\.onnx \(onnx\): base width/);

      const { mask, dims } = await runOnnx(out, m.images, size);
      expect(dims).toEqual([FRAME_COUNT, size, size, 1]);
      const [lo, hi] = range(m.engine);
      const diff = maxAbsError(mask, m.engine);
      console.log(`onnx, base width ${baseWidth}, ${size}×${size}, ${activation}: max |onnxruntime − engine| = ${diff.toExponential(2)} over probabilities in [${lo.toFixed(3)}, ${hi.toFixed(3)}]`);
      expect(hi - lo).toBeGreaterThan(0.05); // the outputs compared vary, so a misplaced weight shows
      expect(diff).toBeLessThanOrEqual(1e-5);
    });
  }

  it("the head's bias changed by 1e-3 shows in onnxruntime beyond the tolerance (the comparison sees a single weight)", async () => {
    const m = made[0]!;
    const weights = new Map(m.weights);
    const bias = weights.get('conv2d_19/bias')!;
    const changed = bias.data.slice();
    changed[0]! += 1e-3;
    weights.set('conv2d_19/bias', { shape: bias.shape, data: changed });
    const bytes = encodeOnnx({ baseWidth: m.meta.config.baseWidth, activation: 'relu', batchNorm: false, inputSize: m.size, weights, preprocessing: { ...m.meta.normalization, antiAlias: false } }, 'test', 'changed');
    const { mask } = await runOnnx(bytes, m.images, m.size);
    expect(maxAbsError(mask, m.engine)).toBeGreaterThan(1e-5);
  });
});
