/**
 * `wgsl-unet predict`: runs a checkpoint on the test frames of the NumPy
 * caches (imgs_test.npy, imgs_id_test.npy) and writes the probability maps
 * as imgs_mask_test.npy (N × size × size float32) and one 8-bit PNG per
 * frame, preds/<id>_pred.png.
 */
import { join, resolve } from 'node:path';
import { decodeNpy, encodeNpy } from '../data/npy.js';
import { DataError } from '../data/errors.js';
import { normalize, resizeStack } from '../data/prepare.js';
import { decodeCheckpoint, loadWeights } from '../model/checkpoint.js';
import { predictProbabilities } from '../model/trainer.js';
import { type UNet, createUNet } from '../model/unet.js';
import { GPU_OPTIONS, type OptionSpec, parseArgs, usage, UsageError } from './args.js';
import { readBytes, writeAtomic } from './files.js';
import { PRECISION_OPTION, choosePrecision, openGpu } from './gpu-options.js';
import { tuneForSoftwareAdapter } from '../software/platform.js';
import { encodePngGray8 } from './png.js';
import { progress } from './progress.js';
import { latestRun } from './runs.js';

const SPEC: Record<string, OptionSpec> = {
  ...GPU_OPTIONS,
  ...PRECISION_OPTION,
  model: { type: 'string', help: 'checkpoint (.safetensors); default: best.safetensors of the latest run in runs/' },
  data: { type: 'string', help: 'folder with imgs_test.npy and imgs_id_test.npy', default: 'data' },
  out: { type: 'string', help: 'folder for imgs_mask_test.npy and preds/', default: '.' },
  'batch-size': { type: 'number', help: 'images per batch', default: 16 },
};

export async function predict(argv: string[]): Promise<void> {
  if (argv.includes('--help')) return void console.log(usage('predict', 'Predicts nerve probabilities for the test frames.', SPEC));
  const { options: o } = parseArgs(argv, SPEC);
  const modelPath = (o.model as string | undefined) ?? join(latestRun('runs'), 'best.safetensors');
  const ckpt = decodeCheckpoint(readBytes(modelPath, 'checkpoint'), modelPath);
  const batch = o['batch-size'] as number;
  if (!Number.isInteger(batch) || batch < 1) throw new UsageError(`--batch-size must be a positive integer, got ${batch}`);
  console.log(`model ${modelPath}: base width ${ckpt.meta.config.baseWidth}, input ${ckpt.meta.config.inputSize}×${ckpt.meta.config.inputSize}, trained ${ckpt.meta.epoch} epoch(s)${ckpt.meta.antiAlias ? ', frames anti-aliased before downsampling as in training' : ''}`);
  const test = loadTestSet(resolve(o.data as string));
  const gpu = await openGpu(o);
  choosePrecision(o, gpu);
  tuneForSoftwareAdapter(gpu);
  try {
    const model = createUNet(gpu, { baseWidth: ckpt.meta.config.baseWidth, inputSize: ckpt.meta.config.inputSize });
    loadWeights(model, ckpt, modelPath);
    await predictTestSet(model, ckpt.meta.normalization, test, resolve(o.out as string), batch, ckpt.meta.antiAlias ?? false);
    model.dispose();
  } finally {
    await gpu.close();
  }
}

export interface TestSet {
  frames: Uint8Array;
  ids: Int32Array;
  count: number;
  width: number;
  height: number;
}

/** Reads imgs_test.npy and imgs_id_test.npy, checking their types and that they agree. */
export function loadTestSet(dataDir: string): TestSet {
  const imgsPath = join(dataDir, 'imgs_test.npy');
  const idsPath = join(dataDir, 'imgs_id_test.npy');
  const imgs = decodeNpy(readBytes(imgsPath, 'test cache'), imgsPath);
  const ids = decodeNpy(readBytes(idsPath, 'test ids'), idsPath);
  if (imgs.dtype !== 'uint8' || imgs.shape.length !== 3) throw new DataError(`${imgsPath}: expected uint8 (N, height, width), got ${imgs.dtype} (${imgs.shape.join(', ')})`);
  if (ids.dtype !== 'int32' || ids.shape.length !== 1 || ids.shape[0] !== imgs.shape[0]) {
    throw new DataError(`${idsPath}: expected ${imgs.shape[0]} int32 ids, got ${ids.dtype} (${ids.shape.join(', ')})`);
  }
  const [count, height, width] = imgs.shape as [number, number, number];
  return { frames: imgs.data as Uint8Array, ids: ids.data as Int32Array, count, width, height };
}

/**
 * Resizes and normalises the test frames as in training, runs the model, and
 * writes <outDir>/imgs_mask_test.npy and <outDir>/preds/<id>_pred.png.
 * Returns the probabilities (count × size × size).
 */
/** Resizes the test frames as the model's training frames were (`antiAlias`), normalises them and predicts. */
export async function predictTestSet(model: UNet, norm: { mean: number; std: number }, test: TestSet, outDir: string, batch: number, antiAlias: boolean): Promise<Float32Array> {
  const size = model.config.inputSize;
  const resized = resizeStack(test.frames, test.count, test.width, test.height, size, { antiAlias });
  const bar = progress('predicting', test.count, 'images');
  const probs = await predictProbabilities(model, normalize(resized, norm.mean, norm.std), test.count, size, batch, (d) => bar.update(d));
  bar.finish();
  writeAtomic(join(outDir, 'imgs_mask_test.npy'), encodeNpy(probs, [test.count, size, size]));
  for (let i = 0; i < test.count; i++) {
    const png = new Uint8Array(size * size);
    for (let k = 0; k < size * size; k++) png[k] = Math.round(probs[i * size * size + k]! * 255);
    writeAtomic(join(outDir, 'preds', `${test.ids[i]}_pred.png`), encodePngGray8(size, size, png));
  }
  console.log(`wrote ${join(outDir, 'imgs_mask_test.npy')} and ${test.count} PNGs in ${join(outDir, 'preds')}`);
  return probs;
}
