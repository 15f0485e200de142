/**
 * `export --format keras-h5` and `import --format keras-h5`: a round trip
 * gives back the same tensors bit for bit; h5py, where a python3 has it, reads
 * the file as Keras 2's load_weights does (names as byte strings, one group
 * per layer, kernel:0 and bias:0 datasets); importing checks the layers and
 * shapes and says what is wrong; and the commands' errors are one line.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as h5node from 'h5wasm/node';
import { decodeCheckpoint } from '../../src/model/checkpoint.js';
import { encodeSafetensors } from '../../src/model/safetensors.js';
import { decodeKerasH5, encodeKerasH5, unetWeightsFromKeras } from '../../src/model/export/keras-h5.js';
import { kerasUNetLayers } from '../../src/model/export/keras-layers.js';
import { stderrWhile } from '../helpers/console.js';
import { testGpu } from '../helpers/gpu.js';
import { type FixtureModel, fixtureModel, runCli } from './fixture-model.js';

let m: FixtureModel;
let exported: string;
beforeAll(async () => {
  m = await fixtureModel(await testGpu(), 4, 32, 3);
  exported = join(m.dir, 'weights.h5');
  const r = runCli(['export', '--format', 'keras-h5', '--model', m.checkpointPath, '--out', exported], m.dir);
  expect(r.errors, r.errors.join('\n')).toEqual([]);
  expect(r.code).toBe(0);
  await h5node.ready;
});
afterAll(() => m?.cleanup());

const H5PY_SCRIPT = join(__dirname, 'keras_h5_h5py.py');
const sha256 = (data: Float32Array) => createHash('sha256').update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)).digest('hex');

/** Edits an HDF5 file on disk in place (h5wasm's Node build reads and writes host paths). */
function editFile(path: string, edit: (f: h5node.File) => void): void {
  const f = new h5node.File(path, 'a');
  try {
    edit(f);
  } finally {
    f.close();
  }
}

function replaceNames(target: h5node.Group, name: string, values: string[]): void {
  target.delete_attribute(name);
  target.create_attribute(name, values, [values.length], `A${Math.max(1, ...values.map((v) => v.length)) + 1}`);
}

describe('Keras HDF5 weights', () => {
  it('export then import gives back every tensor bit for bit, with the input size and normalisation', () => {
    const back = join(m.dir, 'imported.safetensors');
    // Without --format: an HDF5 file is Keras weights.
    const r = runCli(['import', '--in', exported, '--out', back], m.dir);
    expect(r.errors, r.errors.join('\n')).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`reading ${exported} as --format keras-h5 (Keras HDF5 weights file), told by the file`);
    const ckpt = decodeCheckpoint(readFileSync(back), back);
    expect([...ckpt.weights.keys()].sort()).toEqual([...m.weights.keys()].sort());
    for (const [name, t] of m.weights) {
      const got = ckpt.weights.get(name)!;
      expect(got.shape, name).toEqual(t.shape);
      expect(Buffer.from(got.data.buffer, got.data.byteOffset, got.data.byteLength).equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)), name).toBe(true);
    }
    expect(ckpt.meta.config.baseWidth).toBe(4);
    expect(ckpt.meta.config.inputSize).toBe(32);
    expect(ckpt.meta.normalization).toEqual(m.meta.normalization);
    expect(ckpt.meta.antiAlias).toBe(false);
  });

  it("keeps an ELU model's activation through export and import; --activation sets or overrides it, and a bad one is refused", async () => {
    const e = await fixtureModel(await testGpu(), 4, 32, 3, { activation: 'elu' });
    try {
      const file = join(e.dir, 'elu.h5');
      let r = runCli(['export', '--format', 'keras-h5', '--model', e.checkpointPath, '--out', file], e.dir);
      expect(r.errors, r.errors.join('\n')).toEqual([]);
      expect(r.stdout).toMatch(/base width 4, ELU activations, input 32×32/);
      const back = join(e.dir, 'back.safetensors');
      r = runCli(['import', '--format', 'keras-h5', '--in', file, '--out', back], e.dir);
      expect(r.errors, r.errors.join('\n')).toEqual([]);
      expect(decodeCheckpoint(readFileSync(back), back).meta.config.activation).toBe('elu');
      r = runCli(['import', '--format', 'keras-h5', '--in', file, '--out', back, '--activation', 'relu'], e.dir);
      expect(r.errors, r.errors.join('\n')).toEqual([]);
      expect(decodeCheckpoint(readFileSync(back), back).meta.config.activation).toBeUndefined();
      // --activation overrides what a file records.
      r = runCli(['import', '--format', 'keras-h5', '--in', exported, '--out', back, '--activation', 'elu'], m.dir);
      expect(decodeCheckpoint(readFileSync(back), back).meta.config.activation).toBe('elu');
      r = runCli(['import', '--format', 'keras-h5', '--in', exported, '--out', back, '--activation', 'tanh'], m.dir);
      expect(r.code).toBe(2);
      expect(r.errors).toEqual(['error: --activation must be relu or elu, got "tanh"']);
    } finally {
      e.cleanup();
    }
  });

  it('a batch-normalised model: export then import gives back every tensor, running statistics included, and the variant', async () => {
    const e = await fixtureModel(await testGpu(), 4, 32, 3, { batchNorm: true });
    try {
      const file = join(e.dir, 'bn.h5');
      let r = runCli(['export', '--format', 'keras-h5', '--model', e.checkpointPath, '--out', file], e.dir);
      expect(r.errors, r.errors.join('\n')).toEqual([]);
      expect(r.stdout).toMatch(/base width 4, batch normalisation, input 32×32/);
      const read = await decodeKerasH5(readFileSync(file), file);
      expect(read.layers.find((l) => l.name === 'batch_normalization_1')!.weights.map((w) => w.name)).toEqual(['batch_normalization_1/gamma:0', 'batch_normalization_1/beta:0', 'batch_normalization_1/moving_mean:0', 'batch_normalization_1/moving_variance:0']);
      const back = join(e.dir, 'back.safetensors');
      r = runCli(['import', '--format', 'keras-h5', '--in', file, '--out', back], e.dir);
      expect(r.errors, r.errors.join('\n')).toEqual([]);
      const ckpt = decodeCheckpoint(readFileSync(back), back);
      expect(ckpt.meta.config.batchNorm).toBe(true);
      expect([...ckpt.weights.keys()].sort()).toEqual([...e.weights.keys()].sort());
      for (const [name, t] of e.weights) expect(ckpt.weights.get(name)!.data, name).toEqual(t.data);
    } finally {
      e.cleanup();
    }
  });

  // The Python on the PATH, or the system's (where Debian's python3-h5py goes, which scripts/setup.sh installs).
  const python = ['python3', '/usr/bin/python3'].find((p) => spawnSync(p, ['-c', 'import h5py'], { encoding: 'utf8' }).status === 0);
  const hasH5py = python !== undefined;
  it.skipIf(!hasH5py)(`h5py reads it as Keras 2's load_weights does${hasH5py ? '' : ' (skipped: no python3 with h5py; PYTHONPATH may point at one)'}`, () => {
    const r = spawnSync(python!, [H5PY_SCRIPT, 'read', exported], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const found = JSON.parse(r.stdout) as {
      keras_version: string;
      backend: string;
      layer_names: string[];
      layers: Record<string, { name: string; shape: number[]; dtype: string; sha256: string }[]>;
    };
    expect(found.backend).toBe('tensorflow');
    expect(found.keras_version).toMatch(/^2\./);
    const layers = kerasUNetLayers(4);
    expect(found.layer_names).toEqual(layers.map((l) => l.name));
    for (const layer of layers) {
      const weights = found.layers[layer.name]!;
      if (layer.kind !== 'conv2d' && layer.kind !== 'conv2d_transpose') {
        expect(weights, layer.name).toEqual([]);
        continue;
      }
      expect(weights.map((w) => w.name)).toEqual([`${layer.name}/kernel:0`, `${layer.name}/bias:0`]);
      for (const [i, part] of ['kernel', 'bias'].entries()) {
        const t = m.weights.get(`${layer.name}/${part}`)!;
        expect(weights[i]!.shape).toEqual(t.shape);
        expect(weights[i]!.dtype).toBe('float32');
        expect(weights[i]!.sha256, `${layer.name}/${part}`).toBe(sha256(t.data));
      }
    }
  });

  it.skipIf(!hasH5py)(`imports a file h5py wrote as Keras 2's save_weights does (byte-string names, empty lists for weightless layers)${hasH5py ? '' : ' (skipped: python3 has no h5py)'}`, () => {
    const written = join(m.dir, 'h5py-written.h5');
    const w = spawnSync(python!, [H5PY_SCRIPT, 'copy', exported, written], { encoding: 'utf8' });
    expect(w.status, w.stderr).toBe(0);
    const out = join(m.dir, 'from-h5py.safetensors');
    const r = runCli(['import', '--format', 'keras-h5', '--in', written, '--out', out, '--mean', '1', '--std', '2'], m.dir);
    expect(r.errors, r.errors.join('\n')).toEqual([]);
    const ckpt = decodeCheckpoint(readFileSync(out), out);
    expect(ckpt.weights.size).toBe(m.weights.size);
    for (const [name, t] of m.weights) expect(ckpt.weights.get(name)!.data, name).toEqual(t.data);
  });

  it("loads by position as Keras does: tf.keras's names (conv2d, conv2d_1, …) map onto the U-Net's", async () => {
    const file = await decodeKerasH5(readFileSync(exported), 'weights.h5');
    let convs = 0;
    let ups = 0;
    for (const layer of file.layers) {
      const renamed = layer.name.startsWith('conv2d_transpose') ? `conv2d_transpose${ups++ ? `_${ups - 1}` : ''}` : layer.name.startsWith('conv2d') ? `conv2d${convs++ ? `_${convs - 1}` : ''}` : layer.name;
      layer.weights = layer.weights.map((w) => ({ ...w, name: w.name.replace(layer.name, renamed) }));
      layer.name = renamed;
    }
    expect(file.layers[1]!.name).toBe('conv2d');
    const { baseWidth, weights } = unetWeightsFromKeras(file, 'renamed');
    expect(baseWidth).toBe(4);
    for (const [name, t] of m.weights) expect(weights.get(name)!.data, name).toEqual(t.data);
  });

  it('a file with a layer missing, or a kernel of the wrong shape, is refused with a message naming it', async () => {
    const missing = join(m.dir, 'missing-layer.h5');
    writeFileSync(missing, await encodeKerasH5({ baseWidth: 4, activation: 'relu', batchNorm: false, inputSize: 32, weights: m.weights, preprocessing: { ...m.meta.normalization, antiAlias: false } }, 'test'));
    editFile(missing, (f) => replaceNames(f, 'layer_names', kerasUNetLayers(4).map((l) => l.name).filter((n) => n !== 'conv2d_5')));
    let r = runCli(['import', '--format', 'keras-h5', '--in', missing, '--out', join(m.dir, 'x.safetensors')], m.dir);
    expect(r.code).toBe(1);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toMatch(/^error: .*missing-layer\.h5: 22 layers with weights, the U-Net has 23/);

    const misshapen = join(m.dir, 'misshapen.h5');
    writeFileSync(misshapen, readFileSync(exported));
    editFile(misshapen, (f) => {
      const g = f.get('conv2d_3') as h5node.Group;
      g.create_group('other');
      g.create_dataset({ name: 'other/kernel:0', data: new Float32Array(3 * 3 * 4 * 9), shape: [3, 3, 4, 9], dtype: '<f' });
      replaceNames(g, 'weight_names', ['other/kernel:0', 'conv2d_3/bias:0']);
    });
    r = runCli(['import', '--format', 'keras-h5', '--in', misshapen, '--out', join(m.dir, 'x.safetensors')], m.dir);
    expect(r.code).toBe(1);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toMatch(/^error: .*misshapen\.h5: tensor conv2d_3\/kernel has shape \[3, 3, 4, 9\], the U-Net of base width 4 needs \[3, 3, 4, 8\]/);
  });

  it("a damaged file is refused with HDF5's own cause, and HDF5's error stack is not printed", async () => {
    // Object headers overwritten: HDF5's checksums catch it when the layers are walked.
    const damaged = new Uint8Array(readFileSync(exported));
    damaged.fill(0xff, 512, 1024);
    const { printed } = await stderrWhile(async () => {
      // Twice: HDF5's standard error is captured again after the first.
      for (let i = 0; i < 2; i++) await expect(decodeKerasH5(damaged, 'damaged.h5')).rejects.toThrow(/^damaged\.h5: HDF5 cannot read it \(HDF5: incorrect metadata checksum after all read attempts\): the file is damaged, or not a Keras weights file$/);
    });
    expect(printed.filter((p) => /HDF5-DIAG/.test(p))).toEqual([]);
    expect((await decodeKerasH5(readFileSync(exported), 'weights.h5')).layers.length).toBe(kerasUNetLayers(4).length);
    const path = join(m.dir, 'damaged.h5');
    writeFileSync(path, damaged);
    const r = runCli(['import', '--format', 'keras-h5', '--in', path, '--out', join(m.dir, 'x.safetensors')], m.dir);
    expect(r.code).toBe(1);
    expect(r.errors).toEqual([expect.stringMatching(/^error: .*damaged\.h5: HDF5 cannot read it \(HDF5: incorrect metadata checksum/)]);
  });

  it('a model holding a NaN or an infinity is refused, naming the tensor', async () => {
    const weights = new Map(m.weights);
    const kernel = weights.get('conv2d_3/kernel')!;
    const data = kernel.data.slice();
    data[5] = NaN;
    data[9] = Infinity;
    weights.set('conv2d_3/kernel', { shape: kernel.shape, data });
    const path = join(m.dir, 'nan.h5');
    writeFileSync(path, await encodeKerasH5({ baseWidth: 4, activation: 'relu', batchNorm: false, inputSize: 32, weights, preprocessing: { ...m.meta.normalization, antiAlias: false } }, 'test'));
    const out = join(m.dir, 'nan.safetensors');
    const r = runCli(['import', '--format', 'keras-h5', '--in', path, '--out', out], m.dir);
    expect(r.code).toBe(1);
    expect(r.errors).toEqual([expect.stringMatching(/^error: .*nan\.h5: tensor conv2d_3\/kernel holds 2 values that are not finite \(the first, NaN, at index 5\): the model would give NaN maps$/)]);
    expect(readdirSync(m.dir)).not.toContain('nan.safetensors');
  });

  it("a file from Keras (no wgsl_unet record) needs --mean and --std, and then imports", () => {
    const plain = join(m.dir, 'keras-plain.h5');
    writeFileSync(plain, readFileSync(exported));
    editFile(plain, (f) => f.delete_attribute('wgsl_unet'));
    const out = join(m.dir, 'plain.safetensors');
    let r = runCli(['import', '--format', 'keras-h5', '--in', plain, '--out', out], m.dir);
    expect(r.code).toBe(2);
    expect(r.errors[0]).toMatch(/does not record how frames were normalised: give --mean and --std/);
    r = runCli(['import', '--format', 'keras-h5', '--in', plain, '--out', out, '--mean', '99.5', '--std', '50.25'], m.dir);
    expect(r.errors, r.errors.join('\n')).toEqual([]);
    const ckpt = decodeCheckpoint(readFileSync(out), out);
    expect(ckpt.meta.normalization).toEqual({ mean: 99.5, std: 50.25 });
    expect(ckpt.meta.config.inputSize).toBe(96); // the tutorial's, when the file does not say
    expect(r.stdout).toContain(`  assumed: input 96 × 96 (the tutorial's), as ${plain} does not record the size the model was trained at; --input-size sets it`);
    r = runCli(['import', '--format', 'keras-h5', '--in', plain, '--out', out, '--mean', '99.5', '--std', '50.25', '--input-size', '32'], m.dir);
    expect(r.errors, r.errors.join('\n')).toEqual([]);
    expect(r.stdout).not.toContain('assumed');
    expect(decodeCheckpoint(readFileSync(out), out).meta.config.inputSize).toBe(32);
    expect(ckpt.weights.get('conv2d_19/kernel')!.data).toEqual(m.weights.get('conv2d_19/kernel')!.data);
  });
});

describe('export and import errors: one line, nothing written', () => {
  const cases: [string, () => string[], number, RegExp][] = [
    ['an unknown format', () => ['export', '--format', 'pytorch', '--model', m.checkpointPath], 2, /unknown --format "pytorch"; known: onnx, tfjs, keras-h5/],
    ['no format', () => ['export', '--model', m.checkpointPath], 2, /--format is required/],
    ['a missing checkpoint', () => ['export', '--format', 'onnx', '--model', join(m.dir, 'nope.safetensors'), '--out', join(m.dir, 'nope.onnx')], 1, /checkpoint not found: .*nope\.safetensors/],
    ['a Keras weights file given as a checkpoint', () => ['export', '--format', 'onnx', '--model', exported, '--out', join(m.dir, 'nope.onnx')], 1, /weights\.h5: an HDF5 file \(Keras weights\), not a wgsl-unet checkpoint; `import --format keras-h5 --in .*weights\.h5` converts the U-Net in it into one/],
    ['a tfjs model.json given as a checkpoint', () => {
      const json = join(m.dir, 'model.json');
      writeFileSync(json, JSON.stringify({ format: 'layers-model', modelTopology: {} }));
      return ['export', '--format', 'onnx', '--model', json, '--out', join(m.dir, 'nope.onnx')];
    }, 1, /model\.json: a TensorFlow\.js model\.json, not a wgsl-unet checkpoint; `import --format tfjs/],
    ['a file that is no model at all', () => {
      const text = join(m.dir, 'notes.txt');
      writeFileSync(text, 'not a model');
      return ['export', '--format', 'onnx', '--model', text, '--out', join(m.dir, 'nope.onnx')];
    }, 1, /notes\.txt: header length \d+ does not fit/],
    ['safetensors that are not a checkpoint', () => {
      const other = join(m.dir, 'other.safetensors');
      writeFileSync(other, encodeSafetensors(new Map([['w', { shape: [1], data: new Float32Array(1) }]])));
      return ['export', '--format', 'tfjs', '--model', other, '--out', join(m.dir, 'nope-tfjs')];
    }, 1, /other\.safetensors: not a wgsl-unet checkpoint/],
    ['import without --in', () => ['import', '--format', 'keras-h5'], 2, /--in is required: the Keras HDF5 weights file to read/],
    ['import without --in or --format', () => ['import'], 2, /--in is required: the model to read/],
    ['import without --format of a checkpoint', () => ['import', '--in', m.checkpointPath, '--out', join(m.dir, 'nope.safetensors')], 2, /best\.safetensors is a safetensors file, which is what import writes: predict and export read a checkpoint as it is/],
    ['import without --format of a file that is no model', () => {
      const text = join(m.dir, 'notes.txt');
      writeFileSync(text, 'not a model');
      return ['import', '--in', text, '--out', join(m.dir, 'nope.safetensors')];
    }, 2, /cannot tell which model .*notes\.txt is \(not HDF5, a \.keras archive, a \.onnx file or a tfjs model\.json\): give --format keras-h5\|keras\|onnx\|tfjs/],
    ['import without --format of a missing file', () => ['import', '--in', join(m.dir, 'nope.h5'), '--out', join(m.dir, 'nope.safetensors')], 1, /model not found: .*nope\.h5/],
    ['import of a missing file', () => ['import', '--format', 'keras-h5', '--in', join(m.dir, 'nope.h5'), '--out', join(m.dir, 'nope.safetensors')], 1, /weights file not found: .*nope\.h5/],
    ['import of a file that is not HDF5', () => ['import', '--format', 'keras-h5', '--in', m.checkpointPath, '--out', join(m.dir, 'nope.safetensors')], 1, /best\.safetensors: not an HDF5 file/],
    ['import in an unsupported format', () => ['import', '--format', 'pytorch', '--in', exported], 2, /unknown --format "pytorch"; known: keras-h5, keras, onnx, tfjs/],
    ['import of a missing tfjs model', () => ['import', '--format', 'tfjs', '--in', join(m.dir, 'nope'), '--out', join(m.dir, 'nope.safetensors')], 1, /TensorFlow\.js model\.json not found: .*nope/],
  ];
  for (const [what, args, code, message] of cases) {
    it(what, () => {
      const r = runCli(args(), m.dir);
      expect(r.code).toBe(code);
      expect(r.errors, r.errors.join('\n')).toHaveLength(1);
      expect(r.errors[0]).toMatch(/^error: /);
      expect(r.errors[0]).toMatch(message);
      // Nothing named nope* was written, not even a temporary file.
      expect(readdirSync(m.dir).filter((n) => n.startsWith('nope'))).toEqual([]);
    });
  }
});
