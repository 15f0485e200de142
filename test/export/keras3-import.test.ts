/**
 * Keras 3's files of the U-Net: `import --format keras` reads a .keras
 * archive, `import --format keras-h5` a .weights.h5 alone. The files are
 * written here as Keras 3 writes them (keras/src/saving/saving_lib.py: a zip
 * of config.json, metadata.json and model.weights.h5, entries stored; layers
 * configured with Keras 3's inbound nodes of __keras_tensor__ arguments and
 * batch_shape; variables at layers/<class in snake case>[_k]/vars/<i>, k
 * counting earlier layers of the class, not the layer's name) from a U-Net
 * built by tfjs-layers, whose predict on the five sample frames is what the
 * engine must give on the import.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import type * as tfl from '@tensorflow/tfjs-layers';
import { zipSync } from 'fflate';
import { testGpu } from '../helpers/gpu.js';
import { maxAbsError } from '../helpers/compare.js';
import { decodeCheckpoint } from '../../src/model/checkpoint.js';
import { snakeCase } from '../../src/model/export/keras-archive.js';
import { writeH5 } from '../../src/model/export/keras-h5.js';
import { FRAME_COUNT, type FixtureModel, fixtureModel, predictWithCheckpoint, range, runCli, sampleFrames } from './fixture-model.js';
import { type TfjsOptions, theirPredict, tfjsUNet } from './foreign-unet.js';

const made: FixtureModel[] = [];
afterAll(() => made.forEach((m) => m.cleanup()));
beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Keras's names for its layer classes in snake case (its default layer names, and their places in a weights file). */
const SNAKE: Record<string, string> = {
  InputLayer: 'input_layer', Conv2D: 'conv2d', Conv2DTranspose: 'conv2d_transpose', MaxPooling2D: 'max_pooling2d', Concatenate: 'concatenate',
  BatchNormalization: 'batch_normalization', Activation: 'activation', ReLU: 're_lu', ELU: 'elu', Dropout: 'dropout',
};
const snake = (className: string) => SNAKE[className] ?? className;

/** A tfjs-layers model's layers as Keras 3's config.json lists them, under names Keras 3 would give a second model in a session (conv2d_19, …). */
function keras3Config(model: tfl.LayersModel, sequential = false): object {
  return keras3Topology(model, sequential).config;
}

function keras3Topology(model: tfl.LayersModel, sequential = false): { config: object; rename: Map<string, string> } {
  const counts = new Map<string, number>();
  const rename = new Map<string, string>();
  for (const l of model.layers) {
    const base = snake(l.getClassName());
    const k = (counts.get(base) ?? 0) + 1;
    counts.set(base, k);
    rename.set(l.name, `${base}_${k + 18}`);
  }
  const tensor = (name: string) => ({ class_name: '__keras_tensor__', config: { shape: null, dtype: 'float32', keras_history: [rename.get(name), 0, 0] } });
  const topology = (model.toJSON(undefined, false) as unknown as { config: { layers: { class_name: string; name: string; config: Record<string, unknown>; inbound_nodes: [string, number, number, object][][] }[]; output_layers: [string, number, number][]; input_layers: [string, number, number][] } }).config;
  const layers = topology.layers.map((l) => {
    const config: Record<string, unknown> = { ...l.config, name: rename.get(l.name), dtype: { module: 'keras', class_name: 'DTypePolicy', config: { name: 'float32' }, registered_name: null } };
    if (l.class_name === 'InputLayer') {
      config.batch_shape = config.batch_input_shape;
      delete config.batch_input_shape;
      config.dtype = 'float32';
    }
    const inputs = (l.inbound_nodes[0] ?? []).map((entry) => tensor(entry[0]));
    const inbound = inputs.length === 0 ? [] : [{ args: [inputs.length === 1 ? inputs[0] : inputs], kwargs: {} }];
    return { module: 'keras.layers', class_name: l.class_name, config, registered_name: null, name: rename.get(l.name), inbound_nodes: inbound };
  });
  const ref = (o: [string, number, number]) => [rename.get(o[0]), 0, 0];
  const config = {
    module: 'keras',
    class_name: sequential ? 'Sequential' : 'Functional',
    config: { name: 'functional_1', trainable: true, layers, input_layers: topology.input_layers.map(ref), output_layers: topology.output_layers.map(ref) },
    registered_name: 'Functional',
    build_config: { input_shape: null },
    compile_config: null,
  };
  return { config, rename };
}

/** Keras 3's weights file of a tfjs-layers model: every layer's variables at layers/<class>[_k]/vars/<i>, an optimiser's beside them. */
function keras3Weights(model: tfl.LayersModel, extra = false): Promise<Uint8Array> {
  return writeH5((file) => {
    const layersGroup = file.create_group('layers');
    const counts = new Map<string, number>();
    for (const l of model.layers) {
      const base = snake(l.getClassName());
      const k = counts.get(base) ?? 0;
      counts.set(base, k + 1);
      const vars = layersGroup.create_group(k ? `${base}_${k}` : base).create_group('vars');
      l.getWeights().forEach((w, i) => vars.create_dataset({ name: String(i), data: w.dataSync() as Float32Array, shape: w.shape, dtype: '<f' }));
    }
    if (extra) layersGroup.create_group('dense').create_group('vars').create_dataset({ name: '0', data: new Float32Array(4), shape: [2, 2], dtype: '<f' });
    file.create_group('vars');
    file.create_group('optimizer').create_group('vars').create_dataset({ name: '0', data: new Float32Array([7]), shape: [], dtype: '<f' });
  });
}

/** A .keras archive as Keras 3's save_model writes it: entries stored, not compressed. */
function keras3Archive(config: object, weights: Uint8Array | null, weightsName = 'model.weights.h5'): Uint8Array {
  const text = (v: object) => new TextEncoder().encode(JSON.stringify(v));
  return zipSync({
    'metadata.json': text({ keras_version: '3.8.0', date_saved: '2026-12-07@12:00:00' }),
    'config.json': text(config),
    ...(weights ? { [weightsName]: weights } : {}),
  }, { level: 0 });
}

/** The archive with the uncompressed size its central directory gives `name` set to `size` (a zip bomb's claim). */
function declaredSize(zip: Uint8Array, name: string, size: number): Uint8Array {
  const out = zip.slice();
  const view = new DataView(out.buffer);
  for (let at = 0; at + 46 <= out.length; at++) {
    if (view.getUint32(at, true) !== 0x02014b50) continue; // a central directory entry
    const nameLength = view.getUint16(at + 28, true);
    if (new TextDecoder().decode(out.subarray(at + 46, at + 46 + nameLength)) === name) {
      view.setUint32(at + 24, size, true);
      return out;
    }
  }
  throw new Error(`no central directory entry for ${name}`);
}

async function importAndPredict(dir: string, format: string, path: string, frames: { images: Float32Array; mean: number; std: number }, size: number): Promise<{ probs: Float32Array; stdout: string }> {
  const out = join(dir, `${format}.safetensors`);
  const r = runCli(['import', '--format', format, '--in', path, '--out', out, '--mean', String(frames.mean), '--std', String(frames.std), '--input-size', String(size)], dir);
  expect(r.errors, r.errors.join('\n')).toEqual([]);
  expect(r.code).toBe(0);
  const ckpt = decodeCheckpoint(new Uint8Array(readFileSync(out)), out);
  const probs = await predictWithCheckpoint(await testGpu(), ckpt, out, frames.images, FRAME_COUNT, size);
  return { probs, stdout: r.stdout };
}

describe("Keras 3's files", () => {
  let m: FixtureModel;
  let dir: string;
  beforeAll(async () => {
    m = await fixtureModel(await testGpu(), 4, 16, 1); // for its folder
    made.push(m);
    dir = join(m.dir, 'keras3');
    mkdirSync(dir);
  });

  it("names each layer class's place in the weights file as Keras does", () => {
    for (const [className, name] of Object.entries(SNAKE)) expect(snakeCase(className), className).toBe(name);
  });

  const forms: [string, TfjsOptions, string[]][] = [
    ['[skip, upsampled] concatenations, ReLU layers', { swapConcat: true, separateActivation: true }, ["concatenations of [skip, upsampled]: the input channels of the convolutions after them reordered to Keras's [upsampled, skip]"]],
    ['ELU, batch normalisation with ε 1e-5 after convolutions without a bias, dropout', { elu: true, batchNormEpsilon: 1e-5, dropout: true }, ['convolutions without a bias: zero biases', "batch normalisations with ε 0.00001: γ scaled to normalise alike with the engine's ε 0.001"]],
  ];
  for (const [what, opts, notes] of forms) {
    it(`import --format keras reads a .keras archive and predicts as the model does (${what})`, async () => {
      const size = 48;
      const frames = sampleFrames(size);
      const model = tfjsUNet(8, size, 41, opts);
      const theirs = theirPredict(model, frames.images, size);
      const path = join(dir, `${what.length}.keras`);
      writeFileSync(path, keras3Archive(keras3Config(model), await keras3Weights(model)));
      model.dispose();
      const { probs, stdout } = await importAndPredict(dir, 'keras', path, frames, size);
      for (const note of notes) expect(stdout).toContain(`carried over: ${note}`);
      const [lo, hi] = range(probs);
      const diff = maxAbsError(probs, theirs);
      console.log(`.keras (${what}): max |engine − tfjs-layers| = ${diff.toExponential(2)} over probabilities in [${lo.toFixed(3)}, ${hi.toFixed(3)}]`);
      expect(hi - lo).toBeGreaterThan(0.05);
      expect(diff).toBeLessThanOrEqual(1e-5);
    });
  }

  it('import --format keras-h5 reads the weights alone (model.save_weights), each class in the tutorial\'s order', async () => {
    const size = 48;
    const frames = sampleFrames(size);
    const model = tfjsUNet(8, size, 42, { batchNormEpsilon: 1e-3 });
    const theirs = theirPredict(model, frames.images, size);
    const path = join(dir, 'unet.weights.h5');
    writeFileSync(path, await keras3Weights(model));
    model.dispose();
    // Convolutions without a bias are not what the weights alone can say: this model has none before its normalisations.
    const out = join(dir, 'alone.safetensors');
    const refused = runCli(['import', '--format', 'keras-h5', '--in', path, '--out', out, '--mean', '0', '--std', '1'], dir);
    expect(refused.code).toBe(1);
    expect(refused.errors.join('\n')).toMatch(/no variable layers\/conv2d\/vars\/1, the U-Net's conv2d_1\/bias/);

    const withBias = tfjsUNet(8, size, 43, { separateActivation: true });
    const theirsWithBias = theirPredict(withBias, frames.images, size);
    writeFileSync(path, await keras3Weights(withBias));
    withBias.dispose();
    const { probs, stdout } = await importAndPredict(dir, 'keras-h5', path, frames, size);
    expect(stdout).toContain("carried over: Keras 3's layout: each class's layers taken in the tutorial's order");
    const diff = maxAbsError(probs, theirsWithBias);
    console.log(`.weights.h5 alone: max |engine − tfjs-layers| = ${diff.toExponential(2)}`);
    expect(range(probs)[1] - range(probs)[0]).toBeGreaterThan(0.05);
    expect(diff).toBeLessThanOrEqual(1e-5);
    expect(theirs.length).toBe(theirsWithBias.length);
  });

  it("import --format tfjs reads a model.json whose topology is in Keras 3's form", async () => {
    const size = 48;
    const frames = sampleFrames(size);
    const model = tfjsUNet(8, size, 45, { swapConcat: true });
    const theirs = theirPredict(model, frames.images, size);
    const { config, rename } = keras3Topology(model);
    const weights = model.layers.flatMap((l) => l.weights.map((w, i) => ({ name: `${rename.get(l.name)}/${w.originalName.slice(w.originalName.lastIndexOf('/') + 1)}`, shape: w.shape, dtype: 'float32', values: l.getWeights()[i]!.dataSync() as Float32Array })));
    const folder = join(dir, 'tfjs-keras3');
    mkdirSync(folder);
    const bin = new Float32Array(weights.reduce((n, w) => n + w.values.length, 0));
    weights.reduce((at, w) => (bin.set(w.values, at), at + w.values.length), 0);
    writeFileSync(join(folder, 'group1-shard1of1.bin'), new Uint8Array(bin.buffer));
    writeFileSync(join(folder, 'model.json'), JSON.stringify({ format: 'layers-model', modelTopology: config, weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: weights.map(({ values: _, ...spec }) => spec) }] }));
    model.dispose();
    const { probs } = await importAndPredict(dir, 'tfjs', folder, frames, size);
    const diff = maxAbsError(probs, theirs);
    console.log(`tfjs model.json with Keras 3's topology: max |engine − tfjs-layers| = ${diff.toExponential(2)}`);
    expect(range(probs)[1] - range(probs)[0]).toBeGreaterThan(0.05);
    expect(diff).toBeLessThanOrEqual(1e-5);
  });

  it('refuses a Sequential model, weights in npz form, a stray variable, an archive without config.json and a file that is no zip, naming what', async () => {
    const model = tfjsUNet(4, 32, 44);
    const config = keras3Config(model);
    const weights = await keras3Weights(model);
    const cases: [string, Uint8Array, RegExp][] = [
      ['sequential.keras', keras3Archive(keras3Config(model, true), weights), /sequential\.keras: a Sequential model; the U-Net's skips need a functional one/],
      ['npz.keras', keras3Archive(config, new Uint8Array(8), 'model.weights.npz'), /npz\.keras: the weights are in NumPy's npz form/],
      ['stray.keras', keras3Archive(config, await keras3Weights(model, true)), /stray\.keras: variable layers\/dense\/vars\/0 belongs to no layer of the U-Net/],
      ['noconfig.keras', zipSync({ 'model.weights.h5': weights }), /noconfig\.keras: the archive has no config\.json/],
      ['text.keras', new TextEncoder().encode('not a zip'), /text\.keras: not a \.keras archive \(a zip file\)/],
      ['bomb.keras', declaredSize(keras3Archive(config, weights), 'model.weights.h5', 0xf0000000), /bomb\.keras: its model\.weights\.h5 would inflate to 4026531840 bytes, more than the 1073741824/],
    ];
    model.dispose();
    for (const [name, bytes, message] of cases) {
      const path = join(dir, name);
      writeFileSync(path, bytes);
      const r = runCli(['import', '--format', 'keras', '--in', path, '--out', join(dir, 'refused.safetensors'), '--mean', '1', '--std', '1'], dir);
      expect(r.code, name).toBe(1);
      expect(r.errors.join('\n'), name).toMatch(message);
    }
  });
});
