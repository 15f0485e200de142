/**
 * `wgsl-unet predict`: runs a checkpoint on the test frames of the NumPy
 * caches (imgs_test.npy, imgs_id_test.npy) and writes the probability maps
 * as imgs_mask_test.npy (N × size × size float32) and one 8-bit PNG per
 * frame, preds/<id>_pred.png.
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { decodeNpy, encodeNpy } from '../data/npy.js';
import { DataError } from '../data/errors.js';
import { resizeStack } from '../data/prepare.js';
import { type Checkpoint, decodeCheckpoint, loadWeights } from '../model/checkpoint.js';
import { type EnsembleMember, type TestTransform, TTA_CHOICES, ensembleMember, predictEnsemble } from '../model/ensemble.js';
import { type UNet, createUNet, describeVariant } from '../model/unet.js';
import { GPU_OPTIONS, type OptionSpec, parseArgs, usage, UsageError } from './args.js';
import { readBytes, writeAtomic } from './files.js';
import type { Gpu } from '../gpu/gpu.js';
import { PRECISION_OPTION, choosePrecision, openGpu } from './gpu-options.js';
import { tuneForSoftwareAdapter } from '../software/platform.js';
import { encodePngGray8 } from './png.js';
import { progress } from './progress.js';
import { latestRun } from './runs.js';

/** The models and views of predict and segment (readEnsemble, ttaViews). */
export const ENSEMBLE_OPTIONS: Record<string, OptionSpec> = {
  model: { type: 'string', help: 'checkpoint (.safetensors) or run folder, or several separated by commas (an ensemble, such as the k fold models: their maps are averaged); default: best.safetensors of the latest run in runs/' },
  tta: { type: 'string', help: 'test-time augmentation: average each model\'s maps over views of each frame: shift (moved a sixteenth of its side each way), mirror (left to right: only for models trained with mirrors), shift+mirror or none', default: 'none' },
};

const SPEC: Record<string, OptionSpec> = {
  ...GPU_OPTIONS,
  ...PRECISION_OPTION,
  ...ENSEMBLE_OPTIONS,
  data: { type: 'string', help: 'folder with imgs_test.npy and imgs_id_test.npy', default: 'data' },
  out: { type: 'string', help: 'folder for imgs_mask_test.npy and preds/', default: '.' },
  'batch-size': { type: 'number', help: 'images per batch', default: 16 },
};

/** A checkpoint path: the file given, or a run folder's best.safetensors. */
export function checkpointPath(entry: string): string {
  return existsSync(entry) && statSync(entry).isDirectory() ? join(entry, 'best.safetensors') : entry;
}

/**
 * The checkpoints of --model (one, or several separated by commas: an
 * ensemble; default: the latest run's best), each described on a line;
 * refused unless they all take the same frames (size, anti-aliasing).
 */
export function readEnsemble(model: string | undefined): { path: string; ckpt: Checkpoint }[] {
  const paths = model === undefined ? [join(latestRun('runs'), 'best.safetensors')] : model.split(',').filter(Boolean).map(checkpointPath);
  if (paths.length === 0) throw new UsageError('--model names no checkpoint');
  const checkpoints = paths.map((path) => ({ path, ckpt: decodeCheckpoint(readBytes(path, 'checkpoint'), path) }));
  const first = checkpoints[0]!;
  for (const { path, ckpt } of checkpoints.slice(1)) {
    if (ckpt.meta.config.inputSize !== first.ckpt.meta.config.inputSize || (ckpt.meta.antiAlias ?? false) !== (first.ckpt.meta.antiAlias ?? false)) {
      throw new UsageError(`${path} takes ${ckpt.meta.config.inputSize}×${ckpt.meta.config.inputSize} frames${ckpt.meta.antiAlias ? ' anti-aliased' : ''}, ${first.path} ${first.ckpt.meta.config.inputSize}×${first.ckpt.meta.config.inputSize}${first.ckpt.meta.antiAlias ? ' anti-aliased' : ''}: an ensemble's models must see the same frames`);
    }
  }
  for (const { path, ckpt } of checkpoints) {
    console.log(`model ${path}: base width ${ckpt.meta.config.baseWidth}, input ${ckpt.meta.config.inputSize}×${ckpt.meta.config.inputSize}, trained ${ckpt.meta.epoch} epoch(s)${describeVariant(ckpt.meta.config).map((d) => `, ${d}`).join('')}${ckpt.meta.antiAlias ? ', frames anti-aliased before downsampling as in training' : ''}`);
  }
  return checkpoints;
}

export async function predict(argv: string[]): Promise<void> {
  if (argv.includes('--help')) return void console.log(usage('predict', 'Predicts nerve probabilities for the test frames.', SPEC));
  const { options: o } = parseArgs(argv, SPEC);
  const batch = o['batch-size'] as number;
  if (!Number.isInteger(batch) || batch < 1) throw new UsageError(`--batch-size must be a positive integer, got ${batch}`);
  const checkpoints = readEnsemble(o.model as string | undefined);
  const first = checkpoints[0]!;
  const transforms = ttaViews(o.tta as string);
  if (checkpoints.length > 1 || transforms.length > 1) console.log(`averaging ${checkpoints.length} model(s) × ${transforms.length} view(s) of each frame${transforms.length > 1 ? ` (${transforms.join(', ')})` : ''}`);
  const test = loadTestSet(resolve(o.data as string));
  const gpu = await openGpu(o);
  choosePrecision(o, gpu);
  tuneForSoftwareAdapter(gpu);
  const models: UNet[] = [];
  try {
    const members = checkpoints.map(({ path, ckpt }) => checkpointMember(gpu, path, ckpt, batch, models));
    await predictTestSetWith(members, first.ckpt.meta.config.inputSize, test, resolve(o.out as string), first.ckpt.meta.antiAlias ?? false, transforms);
  } finally {
    for (const model of models) model.dispose();
    await gpu.close();
  }
}

/** The model of checkpoint `ckpt` (read from `path`) on `gpu` as an ensemble member; the model goes to `models`, for the caller to dispose. */
export function checkpointMember(gpu: Gpu, path: string, ckpt: Checkpoint, batch: number, models: UNet[]): EnsembleMember {
  const model = createUNet(gpu, ckpt.meta.config);
  models.push(model);
  loadWeights(model, ckpt, path);
  return ensembleMember(model, ckpt.meta.normalization, batch);
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

/** The views of a --tta value (none, shift, mirror or shift+mirror). */
export function ttaViews(value: string): TestTransform[] {
  const views = TTA_CHOICES[value];
  if (!views) throw new UsageError(`--tta must be one of ${Object.keys(TTA_CHOICES).join(', ')}, got "${value}"`);
  return views;
}

/** Resizes the test frames as the model's training frames were (`antiAlias`), normalises them, predicts, and writes the maps (predictTestSetWith). */
export async function predictTestSet(model: UNet, norm: { mean: number; std: number }, test: TestSet, outDir: string, batch: number, antiAlias: boolean): Promise<Float32Array> {
  return predictTestSetWith([ensembleMember(model, norm, batch)], model.config.inputSize, test, outDir, antiAlias, ['identity']);
}

/**
 * Resizes the test frames to `size` as in training, averages the members'
 * maps over the transforms, and writes <outDir>/imgs_mask_test.npy and
 * <outDir>/preds/<id>_pred.png. Returns the maps (count × size × size).
 */
export async function predictTestSetWith(members: EnsembleMember[], size: number, test: TestSet, outDir: string, antiAlias: boolean, transforms: TestTransform[]): Promise<Float32Array> {
  const resized = resizeStack(test.frames, test.count, test.width, test.height, size, { antiAlias });
  const bar = progress('predicting', test.count * members.length * transforms.length, 'images');
  const probs = await predictEnsemble(members, resized, test.count, size, transforms, (done) => bar.update(done));
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
