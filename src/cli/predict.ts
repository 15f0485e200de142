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
import { createUNet } from '../model/unet.js';
import { GPU_OPTIONS, type OptionSpec, parseArgs, usage, UsageError } from './args.js';
import { readBytes, writeAtomic } from './files.js';
import { openGpu } from './gpu-options.js';
import { encodePngGray8 } from './png.js';
import { progress } from './progress.js';
import { latestRun } from './runs.js';

const SPEC: Record<string, OptionSpec> = {
  ...GPU_OPTIONS,
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
  const dataDir = resolve(o.data as string);
  const imgsPath = join(dataDir, 'imgs_test.npy');
  const idsPath = join(dataDir, 'imgs_id_test.npy');
  const imgs = decodeNpy(readBytes(imgsPath, 'test cache'), imgsPath);
  const ids = decodeNpy(readBytes(idsPath, 'test ids'), idsPath);
  if (imgs.dtype !== 'uint8' || imgs.shape.length !== 3) throw new DataError(`${imgsPath}: expected uint8 (N, height, width), got ${imgs.dtype} (${imgs.shape.join(', ')})`);
  if (ids.dtype !== 'int32' || ids.shape.length !== 1 || ids.shape[0] !== imgs.shape[0]) {
    throw new DataError(`${idsPath}: expected ${imgs.shape[0]} int32 ids, got ${ids.dtype} (${ids.shape.join(', ')})`);
  }
  const batch = o['batch-size'] as number;
  if (!Number.isInteger(batch) || batch < 1) throw new UsageError(`--batch-size must be a positive integer, got ${batch}`);
  const [count, h, w] = imgs.shape as [number, number, number];
  const size = ckpt.meta.config.inputSize;
  const { mean, std } = ckpt.meta.normalization;
  console.log(`model ${modelPath}: base width ${ckpt.meta.config.baseWidth}, input ${size}×${size}, trained ${ckpt.meta.epoch} epoch(s); normalisation mean ${mean.toFixed(3)}, std ${std.toFixed(3)}`);
  const resized = resizeStack(imgs.data as Uint8Array, count, w, h, size);
  const gpu = await openGpu(o);
  try {
    const model = createUNet(gpu, { baseWidth: ckpt.meta.config.baseWidth, inputSize: size });
    loadWeights(model, ckpt, modelPath);
    const bar = progress('predicting', count, 'images');
    const probs = await predictProbabilities(model, normalize(resized, mean, std), count, size, batch, (d) => bar.update(d));
    bar.finish();
    model.dispose();
    const outDir = resolve(o.out as string);
    writeAtomic(join(outDir, 'imgs_mask_test.npy'), encodeNpy(probs, [count, size, size]));
    const idList = ids.data as Int32Array;
    for (let i = 0; i < count; i++) {
      const png = new Uint8Array(size * size);
      for (let k = 0; k < size * size; k++) png[k] = Math.round(probs[i * size * size + k]! * 255);
      writeAtomic(join(outDir, 'preds', `${idList[i]}_pred.png`), encodePngGray8(size, size, png));
    }
    console.log(`wrote ${join(outDir, 'imgs_mask_test.npy')} and ${count} PNGs in ${join(outDir, 'preds')}`);
  } finally {
    await gpu.close();
  }
}
