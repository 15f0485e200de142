/**
 * `wgsl-unet segment FRAME.tif …`: masks for frame files with a checkpoint,
 * each written beside the others as <name>_mask.tif (8-bit, 255 = nerve, at
 * the frame's size, as the competition's training masks are), and one line
 * a frame with the mask's area. Frames are prepared and masks made as
 * `predict` and `submit` do (src/model/segment.ts).
 */
import { basename, join, resolve } from 'node:path';
import { decodeTiff, encodeTiffGray8, type GrayImage } from '../data/tiff.js';
import { decodeCheckpoint, loadWeights } from '../model/checkpoint.js';
import { segmentFrames, segmentSettings } from '../model/segment.js';
import { createUNet } from '../model/unet.js';
import { tuneForSoftwareAdapter } from '../software/platform.js';
import { GPU_OPTIONS, type OptionSpec, parseArgs, usage, UsageError } from './args.js';
import { readBytes, writeAtomic } from './files.js';
import { PRECISION_OPTION, choosePrecision, openGpu } from './gpu-options.js';
import { checkpointPath } from './predict.js';
import { progress } from './progress.js';
import { latestRun } from './runs.js';

const SPEC: Record<string, OptionSpec> = {
  ...GPU_OPTIONS,
  ...PRECISION_OPTION,
  model: { type: 'string', help: 'checkpoint (.safetensors) or run folder; default: best.safetensors of the latest run in runs/' },
  out: { type: 'string', help: 'folder for the <name>_mask.tif files', default: 'masks' },
  threshold: { type: 'number', help: 'probability threshold; default: the checkpoint\'s, chosen on validation data, else 0.5' },
  'min-area': { type: 'number', help: 'masks of fewer pixels are left empty; default: the checkpoint\'s, else 10' },
  'batch-size': { type: 'number', help: 'frames per batch', default: 16 },
};

export async function segment(argv: string[]): Promise<void> {
  if (argv.includes('--help')) return void console.log(usage('segment FRAME.tif …', 'Writes a nerve mask for each frame file (TIFF).', SPEC));
  const { options: o, positional: files } = parseArgs(argv, SPEC);
  if (files.length === 0) throw new UsageError('segment: give one or more frame files (TIFF), e.g. segment --model runs/RUN test/1.tif');
  const outDir = resolve(o.out as string);
  const names = new Map<string, string>();
  for (const file of files) {
    const name = `${basename(file).replace(/\.tiff?$/i, '')}_mask.tif`;
    const other = names.get(name);
    if (other !== undefined) throw new UsageError(`${file} and ${other} would both write ${join(outDir, name)}`);
    names.set(name, file);
  }
  const path = o.model === undefined ? join(latestRun('runs'), 'best.safetensors') : checkpointPath(o.model as string);
  const ckpt = decodeCheckpoint(readBytes(path, 'checkpoint'), path);
  const overrides: { threshold?: number; minArea?: number } = {};
  if (o.threshold !== undefined) {
    overrides.threshold = o.threshold as number;
    if (!(overrides.threshold > 0 && overrides.threshold < 1)) throw new UsageError(`--threshold must be between 0 and 1, got ${overrides.threshold}`);
  }
  if (o['min-area'] !== undefined) {
    overrides.minArea = o['min-area'] as number;
    if (!(Number.isInteger(overrides.minArea) && overrides.minArea >= 0)) throw new UsageError(`--min-area must be a non-negative integer, got ${overrides.minArea}`);
  }
  const settings = segmentSettings(ckpt.meta, overrides);
  const batchSize = o['batch-size'] as number;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new UsageError(`--batch-size must be a positive integer, got ${batchSize}`);
  // Every frame is read before the GPU starts, so that a bad file stops the run before any work.
  const frames: GrayImage[] = files.map((file) => decodeTiff(readBytes(file, 'frame'), file));
  const { config } = ckpt.meta;
  const chosen = o.threshold !== undefined || o['min-area'] !== undefined ? 'given' : ckpt.meta.postprocess ? 'chosen on validation data' : 'defaults';
  console.log(`model ${path}: input ${config.inputSize}×${config.inputSize}; threshold ${settings.threshold}, minimum area ${settings.minArea} px (${chosen})`);

  const gpu = await openGpu(o);
  const model = createUNet(gpu, config);
  try {
    choosePrecision(o, gpu);
    tuneForSoftwareAdapter(gpu);
    loadWeights(model, ckpt, path);
    const bar = progress('segmenting', frames.length, 'frames');
    const results = await segmentFrames(model, frames, settings, { batchSize, onProgress: (done) => bar.update(done) });
    bar.finish();
    [...names.keys()].forEach((name, i) => {
      const { mask, area, width, height } = results[i]!;
      writeAtomic(join(outDir, name), encodeTiffGray8(width, height, mask.map((v) => v * 255), { compression: 'lzw' }));
      console.log(`${files[i]}: ${width} × ${height}, ${area ? `nerve, ${area.toLocaleString('en-US')} px` : 'no nerve'}`);
    });
    console.log(`wrote ${files.length} mask(s) in ${outDir}`);
  } finally {
    model.dispose();
    await gpu.close();
  }
}
