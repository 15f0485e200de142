/**
 * A small U-Net with seeded Glorot kernels and random biases (zero biases
 * would hide a misplaced bias), the five Kaggle sample frames prepared as
 * predict prepares them, the engine's probabilities for them, and the
 * checkpoint that `export` reads.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { decodeTiff } from '../../src/data/tiff.js';
import { meanStd, normalize, resizeStack } from '../../src/data/prepare.js';
import { expect } from 'vitest';
import { CHECKPOINT_FORMAT, type Checkpoint, type CheckpointMeta, decodeCheckpoint, encodeCheckpointTensors, loadWeights } from '../../src/model/checkpoint.js';
import type { NamedTensor } from '../../src/model/safetensors.js';
import { predictProbabilities } from '../../src/model/trainer.js';
import { type HiddenActivation, buildUNetParameters, createUNet, resolveUNetOptions } from '../../src/model/unet.js';
import type { Gpu } from '../../src/gpu/gpu.js';
import { readFixture } from '../data/fixtures.js';
import { randomArray } from '../helpers/random.js';

export const FRAME_COUNT = 5;

export interface FixtureModel {
  size: number;
  /** Normalised frames [5, size, size, 1]. */
  images: Float32Array;
  /** The engine's probabilities for them [5, size, size, 1], through predict's own batching. */
  engine: Float32Array;
  weights: Map<string, NamedTensor>;
  meta: CheckpointMeta;
  /** The checkpoint, written in `dir`. */
  checkpointPath: string;
  dir: string;
  cleanup(): void;
}

/** The sample frames 1_1 … 1_5, resized to `size` and normalised by their own mean and std (as training computes them). */
export function sampleFrames(size: number): { images: Float32Array; mean: number; std: number } {
  const decoded = Array.from({ length: FRAME_COUNT }, (_, i) => decodeTiff(readFixture(`1_${i + 1}.tif`), `1_${i + 1}.tif`));
  const { width, height } = decoded[0]!;
  const frames = new Uint8Array(FRAME_COUNT * width * height);
  decoded.forEach((d, i) => frames.set(d.data, i * width * height));
  const resized = resizeStack(frames, FRAME_COUNT, width, height, size, { antiAlias: false });
  const { mean, std } = meanStd(resized, size * size, 0, FRAME_COUNT);
  return { images: normalize(resized, mean, std), mean, std };
}

/**
 * The variant (`activation`, `batchNorm`) as UNetOptions take it. With batch
 * normalisation, γ, β and the running statistics are random too (the
 * initial 1, 0, 0, 1 would hide a misplaced one).
 */
export async function fixtureModel(gpu: Gpu, baseWidth: number, size: number, seed: number, variant: { activation?: HiddenActivation; batchNorm?: boolean } = {}): Promise<FixtureModel> {
  const { images, mean, std } = sampleFrames(size);
  const options = { baseWidth, inputSize: size, seed, ...variant };
  const store = buildUNetParameters(options);
  const initialValues = store.initialValues();
  const weights = new Map<string, NamedTensor>();
  for (const [i, p] of store.params.entries()) {
    const initial = initialValues.get(p.name)!;
    const random = /\/(bias|beta)$/.test(p.name) ? randomArray(initial.length, seed * 100 + i, -0.1, 0.1) : p.name.endsWith('/gamma') ? randomArray(initial.length, seed * 100 + i, 0.5, 1.5) : null;
    weights.set(p.name, { shape: [...p.shape], data: random ?? initial });
  }
  const model = createUNet(gpu, options);
  model.parameters.load(new Map([...weights].map(([k, t]) => [k, t.data])));
  if (model.state) {
    const state = new Map<string, Float32Array>();
    for (const [i, p] of model.state.params.entries()) {
      const data = p.name.endsWith('/moving_mean') ? randomArray(p.size, seed * 200 + i, -0.2, 0.2) : randomArray(p.size, seed * 200 + i, 0.5, 1.5);
      state.set(p.name, data);
      weights.set(p.name, { shape: [...p.shape], data });
    }
    model.state.load(state);
  }
  const engine = await predictProbabilities(model, images, FRAME_COUNT, size, FRAME_COUNT);
  model.dispose();
  const meta: CheckpointMeta = {
    format: CHECKPOINT_FORMAT,
    version: 'test',
    config: resolveUNetOptions(options),
    normalization: { mean, std },
    epoch: 1,
    step: 1,
    metrics: {},
    adapter: 'test',
    createdAt: new Date(0).toISOString(),
  };
  const dir = mkdtempSync(join(tmpdir(), 'wgsl-unet-export-'));
  const checkpointPath = join(dir, 'best.safetensors');
  writeFileSync(checkpointPath, encodeCheckpointTensors(weights, meta));
  return { size, images, engine, weights, meta, checkpointPath, dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const cli = join(__dirname, '../../dist/cli.js');

/** The engine's probabilities for `count` normalised size × size frames, from a model built of `ckpt` (`name` in messages). */
export async function predictWithCheckpoint(gpu: Gpu, ckpt: Checkpoint, name: string, images: Float32Array, count: number, size: number): Promise<Float32Array> {
  const model = createUNet(gpu, ckpt.meta.config);
  try {
    loadWeights(model, ckpt, name);
    return await predictProbabilities(model, images, count, size, count);
  } finally {
    model.dispose();
  }
}

/** Runs the built CLI; stderr without Dawn's warnings. */
export function runCli(args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8', timeout: 120_000 });
  const errors = r.stderr.split('\n').filter((l) => l.trim() && !l.startsWith('Warning: '));
  return { code: r.status, stdout: r.stdout, errors };
}

/** Smallest and largest value, to show the compared outputs are not constant. */
export function range(values: Float32Array): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  return [lo, hi];
}

/**
 * `export --format <format>` of the fixture's checkpoint to `out`, then
 * `import` of it, the format told by the file (a .onnx name, a tfjs
 * folder): the checkpoint that comes back is the fixture's, bit for
 * bit (variant, input size, normalisation, every tensor), and the file names
 * its activation, so a contradicting --activation is refused.
 */
export function expectRoundTrip(m: FixtureModel, format: 'onnx' | 'tfjs', out: string): void {
  expect(runCli(['export', '--format', format, '--model', m.checkpointPath, '--out', out], m.dir).code).toBe(0);
  const back = join(m.dir, `back-${format}.safetensors`);
  const r = runCli(['import', '--in', out, '--out', back], m.dir);
  expect(r.errors, r.errors.join('\n')).toEqual([]);
  expect(r.stdout).toContain(`reading ${out} as --format ${format} (`);
  const { baseWidth, inputSize, activation, batchNorm } = m.meta.config;
  expect(r.stdout).toContain(`base width ${baseWidth}${activation === 'elu' ? ', ELU activations' : ''}${batchNorm ? ', batch normalisation' : ''}, input ${inputSize}×${inputSize}`);
  expect(r.stdout).not.toContain('carried over');
  const ckpt = decodeCheckpoint(new Uint8Array(readFileSync(back)), 'back');
  expect(ckpt.meta.config).toMatchObject({ baseWidth, inputSize, activation, batchNorm });
  expect(ckpt.meta.normalization).toEqual(m.meta.normalization);
  expect([...ckpt.weights.keys()].sort()).toEqual([...m.weights.keys()].sort());
  for (const [name, t] of m.weights) {
    expect(ckpt.weights.get(name)!.shape, name).toEqual(t.shape);
    expect(ckpt.weights.get(name)!.data, name).toEqual(t.data);
  }
  const other = activation === 'elu' ? 'relu' : 'elu';
  const contradicted = runCli(['import', '--format', format, '--in', out, '--out', join(m.dir, 'x.safetensors'), '--activation', other], m.dir);
  expect(contradicted.code).toBe(2);
  expect(contradicted.errors.join('\n')).toContain(`--activation ${other} conflicts with`);
}
