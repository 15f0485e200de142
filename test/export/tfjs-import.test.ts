/**
 * `import --format tfjs`: our own tfjs export comes back bit for bit; a
 * U-Net built and saved by tfjs-layers itself (its own layer names, [skip,
 * upsampled] concatenations, activations as layers of their own, dropout,
 * batch normalisation with another ε and without biases before it, weights
 * in two shards, or quantised to float16 and uint8 as tfjs-converter writes
 * them) gives, imported, what tfjs-layers' predict gives on the five sample
 * frames; models wired or configured otherwise are refused, naming the layer.
 */
import { readFileSync, rmSync, truncateSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { testGpu } from '../helpers/gpu.js';
import { maxAbsError } from '../helpers/compare.js';
import { decodeCheckpoint } from '../../src/model/checkpoint.js';
import { toHalfWords } from '../../src/gpu/tensor-view.js';
import { FRAME_COUNT, type FixtureModel, expectRoundTrip, fixtureModel, predictWithCheckpoint, range, runCli, sampleFrames } from './fixture-model.js';
import { type TfjsOptions, theirPredict, tfjsUNet } from './foreign-unet.js';

const made: FixtureModel[] = [];
afterAll(() => made.forEach((m) => m.cleanup()));
beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** What tfjs-layers' model.save hands a save handler. */
async function saved(model: tfl.LayersModel): Promise<tf.io.ModelArtifacts> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => {
    artifacts = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  return artifacts!;
}

const weightBytes = (a: tf.io.ModelArtifacts) => new Uint8Array(tf.io.CompositeArrayBuffer.join(a.weightData!));

/** model.json and shards in `dir` as tfjs's file writer lays them out, the weights split across `shards` files. */
function writeModel(dir: string, a: tf.io.ModelArtifacts, shards = 1, specs = a.weightSpecs!, data = weightBytes(a)): string {
  mkdirSync(dir, { recursive: true });
  const paths = Array.from({ length: shards }, (_, i) => `group1-shard${i + 1}of${shards}.bin`);
  const per = Math.ceil(data.length / shards / 4) * 4;
  paths.forEach((p, i) => writeFileSync(join(dir, p), data.subarray(i * per, (i + 1) * per)));
  const json = { modelTopology: a.modelTopology, format: 'layers-model', generatedBy: 'TensorFlow.js tfjs-layers v4.22.0', convertedBy: null, weightsManifest: [{ paths, weights: specs }] };
  writeFileSync(join(dir, 'model.json'), JSON.stringify(json));
  return join(dir, 'model.json');
}

/** Imports `path` with the frames' normalisation and returns the engine's probabilities for the frames, and the CLI's output. */
async function importAndPredict(path: string, m: { dir: string; size: number; images: Float32Array; mean: number; std: number }, out: string): Promise<{ probs: Float32Array; stdout: string }> {
  const gpu = await testGpu();
  const r = runCli(['import', '--format', 'tfjs', '--in', path, '--out', out, '--mean', String(m.mean), '--std', String(m.std)], m.dir);
  expect(r.errors, r.errors.join('\n')).toEqual([]);
  expect(r.code).toBe(0);
  const ckpt = decodeCheckpoint(new Uint8Array(readFileSync(out)), out);
  expect(ckpt.meta.config.inputSize).toBe(m.size); // from the input layer's shape
  const probs = await predictWithCheckpoint(gpu, ckpt, out, m.images, FRAME_COUNT, m.size);
  return { probs, stdout: r.stdout };
}

describe('import --format tfjs', () => {
  it('gives back our own export bit for bit (the folder as --in), with the variant, input size and normalisation', async () => {
    const gpu = await testGpu();
    const m = await fixtureModel(gpu, 8, 48, 21, { activation: 'elu', batchNorm: true });
    made.push(m);
    expectRoundTrip(m, 'tfjs', join(m.dir, 'tfjs-model'));
  });

  const forms: [string, TfjsOptions, number, string[]][] = [
    ['[skip, upsampled] concatenations, ReLU layers, two shards', { swapConcat: true, separateActivation: true }, 2, ["concatenations of [skip, upsampled]: the input channels of the convolutions after them reordered to Keras's [upsampled, skip]"]],
    ['ELU, dropout at the bottom', { elu: true, dropout: true }, 1, []],
    ['batch normalisation with ε 1e-5 after convolutions without a bias, [skip, upsampled]', { batchNormEpsilon: 1e-5, swapConcat: true }, 1, ['convolutions without a bias: zero biases', "batch normalisations with ε 0.00001: γ scaled to normalise alike with the engine's ε 0.001"]],
  ];
  for (const [what, opts, shards, notes] of forms) {
    it(`reads a U-Net saved by tfjs-layers and predicts as tfjs-layers does (${what})`, async () => {
      const size = 48;
      const { images, mean, std } = sampleFrames(size);
      const model = tfjsUNet(8, size, 31, opts);
      const theirs = theirPredict(model, images, size);
      const a = await saved(model);
      model.dispose();
      const gpu = await testGpu();
      const m = await fixtureModel(gpu, 4, 16, 1); // only for its folder
      made.push(m);
      const path = writeModel(join(m.dir, 'theirs'), a, shards);
      const { probs, stdout } = await importAndPredict(path, { dir: m.dir, size, images, mean, std }, join(m.dir, 'theirs.safetensors'));
      for (const note of notes) expect(stdout).toContain(`carried over: ${note}`);
      if (!notes.length) expect(stdout).not.toContain('carried over');
      const [lo, hi] = range(probs);
      const diff = maxAbsError(probs, theirs);
      console.log(`tfjs-layers' U-Net (${what}): max |engine − tfjs-layers| = ${diff.toExponential(2)} over probabilities in [${lo.toFixed(3)}, ${hi.toFixed(3)}]`);
      expect(hi - lo).toBeGreaterThan(0.05);
      expect(diff).toBeLessThanOrEqual(1e-5);
    });
  }

  it('reads weights quantised to float16 and uint8 as tfjs reads them', async () => {
    const size = 48;
    const { images, mean, std } = sampleFrames(size);
    const model = tfjsUNet(8, size, 32);
    const a = await saved(model);
    model.dispose();
    // tfjs-converter's quantisation: every weight as float16, but the first kernel as uint8 (value = q · scale + min).
    const floats = new Float32Array(weightBytes(a).slice().buffer);
    const parts: Uint8Array[] = [];
    let at = 0;
    const specs = a.weightSpecs!.map((s, i) => {
      const values = floats.subarray(at, (at += s.shape.reduce((x, y) => x * y, 1)));
      if (i === 0) {
        const min = Math.min(...values);
        const scale = (Math.max(...values) - min) / 255;
        parts.push(Uint8Array.from(values, (v) => Math.round((v - min) / scale)));
        return { ...s, quantization: { dtype: 'uint8' as const, scale, min } };
      }
      const halves = toHalfWords(values);
      parts.push(new Uint8Array(halves.buffer, halves.byteOffset, 2 * values.length));
      return { ...s, quantization: { dtype: 'float16' as const } };
    });
    const data = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((off, p) => (data.set(p, off), off + p.length), 0);
    const quantised = await tfl.loadLayersModel(tf.io.fromMemory({ modelTopology: a.modelTopology, weightSpecs: specs, weightData: data.slice().buffer }));
    const theirs = theirPredict(quantised, images, size);
    quantised.dispose();

    const gpu = await testGpu();
    const m = await fixtureModel(gpu, 4, 16, 1);
    made.push(m);
    const path = writeModel(join(m.dir, 'quantised'), a, 1, specs, data);
    const { probs } = await importAndPredict(path, { dir: m.dir, size, images, mean, std }, join(m.dir, 'quantised.safetensors'));
    const diff = maxAbsError(probs, theirs);
    console.log(`tfjs-layers' U-Net, weights quantised (float16, one uint8): max |engine − tfjs-layers| = ${diff.toExponential(2)}`);
    expect(range(probs)[1] - range(probs)[0]).toBeGreaterThan(0.05);
    expect(diff).toBeLessThanOrEqual(1e-5);
  });

  it('refuses a model wired or configured otherwise, missing or short shards, and files that are no layers model, naming what', async () => {
    const gpu = await testGpu();
    const m = await fixtureModel(gpu, 4, 16, 1);
    made.push(m);
    let n = 0;
    const refuse = (path: string) => {
      const r = runCli(['import', '--format', 'tfjs', '--in', path, '--out', join(m.dir, 'refused.safetensors'), '--mean', '1', '--std', '1'], m.dir);
      expect(r.code, r.stdout).toBe(1);
      return r.errors.join('\n');
    };
    const model = async (o: TfjsOptions) => {
      const t = tfjsUNet(4, 32, 33, o);
      const a = await saved(t);
      t.dispose();
      return { a, path: writeModel(join(m.dir, `m${++n}`), a) };
    };
    expect(refuse((await model({ wrongSkip: true })).path)).toMatch(/layer concatenate_\w+ \(Concatenate\): joins conv2d_transpose_1 and conv2d_7 on axis 3; the U-Net joins each upsampling with its level's skip/);
    expect(refuse((await model({ dilated: true })).path)).toMatch(/layer conv2d_\w+ \(Conv2D\): the U-Net's conv2d_3 is a 3 × 3 convolution, padding 'same', stride 1, no dilation/);
    expect(refuse((await model({ logits: true })).path)).toMatch(/the model ends at conv2d_19 without its sigmoid/);
    expect(refuse((await model({ extraAdd: true })).path)).toMatch(/layer add_\w+ \(Add\): has no counterpart in the tutorial's U-Net/);

    const { a, path } = await model({});
    const dir = join(m.dir, `m${n}`);
    truncateSync(join(dir, 'group1-shard1of1.bin'), 1000);
    expect(refuse(path)).toMatch(/the shards of group1-shard1of1\.bin hold 1000 bytes, too few for weight conv2d_\w+\/\w+/);
    rmSync(join(dir, 'group1-shard1of1.bin'));
    expect(refuse(path)).toMatch(/cannot read the weight shard group1-shard1of1\.bin \(weight shard not found: .*group1-shard1of1\.bin\)/);
    const extra = [...a.weightSpecs!, { name: 'stray/kernel', shape: [2], dtype: 'float32' as const }];
    const bytes = weightBytes(a);
    const padded = new Uint8Array(bytes.length + 8);
    padded.set(bytes);
    expect(refuse(writeModel(join(m.dir, 'stray'), a, 1, extra, padded))).toMatch(/weight stray\/kernel belongs to no layer of the U-Net/);
    const outside = JSON.parse(readFileSync(path, 'utf8'));
    outside.weightsManifest[0].paths = ['../m1/group1-shard1of1.bin'];
    writeFileSync(path, JSON.stringify(outside));
    expect(refuse(path)).toMatch(/cannot read the weight shard \.\.\/m1\/group1-shard1of1\.bin \(the manifest names it outside model\.json's folder\)/);

    const graph = join(m.dir, 'graph.json');
    writeFileSync(graph, JSON.stringify({ format: 'graph-model', modelTopology: { node: [] }, weightsManifest: [] }));
    expect(refuse(graph)).toMatch(/graph\.json: a graph model .* holds operations, not Keras layers/);
    const text = join(m.dir, 'text.json');
    writeFileSync(text, 'not json');
    expect(refuse(text)).toMatch(/text\.json: not a TensorFlow\.js model\.json/);
  });
});
