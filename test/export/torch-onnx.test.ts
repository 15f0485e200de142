/**
 * The U-Net written in PyTorch and exported by torch.onnx.export (the files
 * in test/export/torch/, made by torch_unet_onnx.py with PyTorch 2.6, with
 * the images, seeded uniform noise rather than competition frames, and
 * PyTorch's own probabilities beside each graph): `import` and the
 * library's importModel read it, and the engine then predicts what PyTorch
 * and onnxruntime predict. One graph is the tutorial's network in PyTorch's
 * usual form; in another each convolution had a batch normalisation, which
 * the exporter folded into it; the third is the first in float16
 * (model.half()), whose weights widen exactly to float32.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { testGpu } from '../helpers/gpu.js';
import { maxAbsError } from '../helpers/compare.js';
import { decodeNpy } from '../../src/data/npy.js';
import { fromHalf, toHalf } from '../../src/gpu/tensor-view.js';
import { decodeCheckpoint } from '../../src/model/checkpoint.js';
import { importModel } from '../../src/model/export/interop.js';
import { predictWithCheckpoint, range, runCli } from './fixture-model.js';

const here = join(__dirname, 'torch');
const dir = mkdtempSync(join(tmpdir(), 'wgsl-unet-torch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fixture(form: string) {
  const bytes = new Uint8Array(readFileSync(join(here, `${form}.onnx`)));
  const images = decodeNpy(readFileSync(join(here, `${form}-images.npy`)), 'images');
  const torch = decodeNpy(readFileSync(join(here, `${form}-probabilities.npy`)), 'probabilities');
  const [count, , size] = images.shape as [number, number, number, number];
  return { path: join(here, `${form}.onnx`), bytes, images: images.data as Float32Array, torch: torch.data as Float32Array, count, size };
}

describe('a U-Net exported by torch.onnx.export', () => {
  for (const form of ['plain', 'batchnorm', 'half']) {
    it(`imports (${form}) and predicts what PyTorch${form === 'half' ? ' (its float16 weights in float32)' : ' and onnxruntime'} predict${form === 'half' ? 's' : ''}`, async () => {
      const f = fixture(form);
      // onnxruntime's CPU kernels take float32 graphs: the float16 one is checked against PyTorch alone.
      let runtime: Float32Array | undefined;
      if (form !== 'half') {
        const session = await ort.InferenceSession.create(f.bytes);
        runtime = (await session.run({ image: new ort.Tensor('float32', f.images, [f.count, 1, f.size, f.size]) })).mask!.data as Float32Array;
        await session.release();
        // The file is what PyTorch computed.
        expect(maxAbsError(runtime, f.torch)).toBeLessThanOrEqual(1e-5);
      }

      // The images are the network's input as they are: mean 0, std 1.
      const out = join(dir, `${form}.safetensors`);
      // Without --format, told by the file's name.
      const r = runCli(['import', ...(form === 'plain' ? ['--format', 'onnx'] : []), '--in', f.path, '--out', out, '--mean', '0', '--std', '1'], dir);
      expect(r.errors, r.errors.join('\n')).toEqual([]);
      if (form !== 'plain') expect(r.stdout).toContain(`reading ${f.path} as --format onnx (ONNX model), told by the file`);
      expect(r.stdout).toContain(`base width 2, input ${f.size}×${f.size}`);
      expect(r.stdout).toContain("carried over: concatenations of [skip, upsampled]: the input channels of the convolutions after them reordered to Keras's [upsampled, skip]");
      const ckpt = decodeCheckpoint(new Uint8Array(readFileSync(out)), out);
      const { baseWidth, inputSize, activation, batchNorm } = ckpt.meta.config;
      expect({ baseWidth, inputSize, activation: activation ?? 'relu', batchNorm: batchNorm ?? false }).toEqual({ baseWidth: 2, inputSize: f.size, activation: 'relu', batchNorm: false });

      // The library reads the same file to the same weights.
      const imported = await importModel([{ name: `${form}.onnx`, bytes: f.bytes }], { mean: 0, std: 1 });
      expect(imported.format).toBe('onnx');
      expect([...imported.checkpoint.weights.keys()].sort()).toEqual([...ckpt.weights.keys()].sort());
      for (const [name, t] of ckpt.weights) expect(imported.checkpoint.weights.get(name)!.data, name).toEqual(t.data);
      if (form === 'half') {
        // The float16 file's weights are the float32 file's rounded to float16, exactly.
        const plain = await importModel([{ name: 'plain.onnx', bytes: fixture('plain').bytes }], { mean: 0, std: 1 });
        for (const [name, t] of ckpt.weights) expect(t.data, name).toEqual(plain.checkpoint.weights.get(name)!.data.map((v) => fromHalf(toHalf(v))));
      }

      const engine = await predictWithCheckpoint(await testGpu(), ckpt, out, f.images, f.count, f.size);
      const [lo, hi] = range(engine);
      const diff = maxAbsError(engine, f.torch);
      console.log(`torch.onnx.export (${form}): max |engine − PyTorch| = ${diff.toExponential(2)}${runtime ? `, |engine − onnxruntime| = ${maxAbsError(engine, runtime).toExponential(2)}` : ''}, over probabilities in [${lo.toFixed(3)}, ${hi.toFixed(3)}]`);
      expect(hi - lo).toBeGreaterThan(0.1);
      expect(diff).toBeLessThanOrEqual(1e-5);
      if (runtime) expect(maxAbsError(engine, runtime)).toBeLessThanOrEqual(1e-5);
    });
  }
});
