/**
 * The tutorial's U-Net as Keras 3 itself saves it (the files in
 * test/export/keras/, made by keras_unet.py with Keras 3.16 on its torch
 * backend, with the frames, seeded Gaussian noise rather than competition
 * frames, and Keras's own predictions beside them): the legacy HDF5 file of
 * the whole model that the tutorial's ModelCheckpoint('weights.h5') writes,
 * Keras 3's weights file, both again with float16 weights (Keras's float16
 * dtype policy), a .keras archive of the network with batch normalisations, and the first converted to a TensorFlow.js model by
 * tensorflowjs's converter (tfjs_convert.py). `import` (the format told by
 * the file) and the library's importModel read each, and the engine then
 * predicts what Keras predicted.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { maxAbsError } from '../helpers/compare.js';
import { decodeNpy } from '../../src/data/npy.js';
import { type Checkpoint, decodeCheckpoint } from '../../src/model/checkpoint.js';
import { importModel } from '../../src/model/export/interop.js';
import { fromHalf, toHalf } from '../../src/gpu/tensor-view.js';
import { predictWithCheckpoint, range, runCli } from './fixture-model.js';

const here = join(__dirname, 'keras');
const dir = mkdtempSync(join(tmpdir(), 'wgsl-unet-keras-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const frames = (form: string) => {
  // The float16 files ran on the tutorial's frames.
  const images = decodeNpy(readFileSync(join(here, `${form === 'half' ? 'tutorial' : form}-images.npy`)), 'images');
  const keras = decodeNpy(readFileSync(join(here, `${form}-probabilities.npy`)), 'probabilities');
  const [count, size] = images.shape as [number, number, number, number];
  return { images: images.data as Float32Array, keras: keras.data as Float32Array, count, size };
};

describe('a U-Net saved by Keras 3', () => {
  const cases = [
    { file: 'tutorial.h5', form: 'tutorial', format: 'keras-h5', name: 'Keras HDF5 weights file', batchNorm: false },
    { file: 'tutorial.weights.h5', form: 'tutorial', format: 'keras-h5', name: 'Keras HDF5 weights file', batchNorm: false },
    // The tutorial's weights under Keras's float16 policy: float16 datasets, widened exactly.
    { file: 'half.h5', form: 'half', format: 'keras-h5', name: 'Keras HDF5 weights file', batchNorm: false },
    { file: 'half.weights.h5', form: 'half', format: 'keras-h5', name: 'Keras HDF5 weights file', batchNorm: false },
    { file: 'batchnorm.keras', form: 'batchnorm', format: 'keras', name: 'Keras model (.keras)', batchNorm: true },
    // tutorial.h5 converted by tensorflowjs's converter (tfjs_convert.py): a folder of model.json and its shard.
    { file: 'tfjs', form: 'tutorial', format: 'tfjs', name: "TensorFlow.js model's model.json", batchNorm: false },
  ];
  const imported = new Map<string, Checkpoint>();
  for (const c of cases) {
    it(`imports ${c.file} and predicts what Keras predicted`, async () => {
      const f = frames(c.form);
      const path = join(here, c.file);
      const out = join(dir, `${c.file}.safetensors`);
      // The frames are the network's input as they are: mean 0, std 1.
      const r = runCli(['import', '--in', path, '--out', out, '--mean', '0', '--std', '1', '--input-size', String(f.size)], dir);
      expect(r.errors, r.errors.join('\n')).toEqual([]);
      expect(r.stdout).toContain(`reading ${path} as --format ${c.format} (${c.name}), told by the file`);
      expect(r.stdout).toContain(`base width 1${c.batchNorm ? ', batch normalisation' : ''}, input ${f.size}×${f.size}`);
      const ckpt = decodeCheckpoint(new Uint8Array(readFileSync(out)), out);
      imported.set(c.file, ckpt);

      // The library reads the same file (a tfjs model.json with its shard) to the same weights.
      const given = c.format === 'tfjs' ? readdirSync(path).map((name) => ({ name, bytes: new Uint8Array(readFileSync(join(path, name))) })) : [{ name: c.file, bytes: new Uint8Array(readFileSync(path)) }];
      const lib = await importModel(given, { mean: 0, std: 1, inputSize: f.size });
      expect(lib.format).toBe(c.format);
      expect(lib.assumed).toEqual([]);
      expect([...lib.checkpoint.weights.keys()].sort()).toEqual([...ckpt.weights.keys()].sort());
      for (const [name, t] of ckpt.weights) expect(lib.checkpoint.weights.get(name)!.data, name).toEqual(t.data);

      if (c.form === 'half') {
        // Each weight is the float32 file's rounded to float16, exactly.
        const full = await importModel([{ name: 'tutorial.h5', bytes: new Uint8Array(readFileSync(join(here, 'tutorial.h5'))) }], { mean: 0, std: 1, inputSize: f.size });
        for (const [name, t] of ckpt.weights) expect(t.data, name).toEqual(full.checkpoint.weights.get(name)!.data.map((v) => fromHalf(toHalf(v))));
      }

      const engine = await predictWithCheckpoint(await testGpu(), ckpt, c.file, f.images, f.count, f.size);
      const [lo, hi] = range(engine);
      const diff = maxAbsError(engine, f.keras);
      console.log(`Keras 3 ${c.file}: max |engine − Keras| = ${diff.toExponential(2)} over probabilities in [${lo.toFixed(3)}, ${hi.toFixed(3)}]`);
      expect(hi - lo).toBeGreaterThan(0.1);
      expect(diff).toBeLessThanOrEqual(1e-5);
    });
  }

  it('says so where it assumes the input size, which the Keras files do not record', async () => {
    const lib = await importModel([{ name: 'tutorial.weights.h5', bytes: new Uint8Array(readFileSync(join(here, 'tutorial.weights.h5'))) }], { mean: 0, std: 1 });
    expect(lib.checkpoint.meta.config.inputSize).toBe(96);
    expect(lib.assumed).toEqual(["input 96 × 96 (the tutorial's): tutorial.weights.h5 does not record the size the model was trained at"]);
  });

  it("reads the same weights from the legacy whole-model file, Keras 3's weights file and the converter's tfjs model", () => {
    const legacy = imported.get('tutorial.h5')!;
    for (const other of ['tutorial.weights.h5', 'tfjs'].map((f) => imported.get(f)!)) {
      expect([...other.weights.keys()].sort()).toEqual([...legacy.weights.keys()].sort());
      for (const [name, t] of legacy.weights) expect(other.weights.get(name)!.data, name).toEqual(t.data);
    }
  });
});
