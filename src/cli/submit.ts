/**
 * `wgsl-unet submit`: turns imgs_mask_test.npy into the competition's
 * submission.csv: rows sorted by id, each probability map resized to
 * 580 × 420 (width × height, not transposed), thresholded, masks under the
 * minimum area left empty, run-length encoded column by column.
 * The threshold and minimum area come from the checkpoint (chosen on
 * validation data by `train`), else 0.5 and 10.
 */
import { join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { decodeNpy } from '../data/npy.js';
import { DataError } from '../data/errors.js';
import { DEFAULT_MIN_AREA, DEFAULT_THRESHOLD, formatEncodedSubmission } from '../data/submission.js';
import { decodeCheckpoint } from '../model/checkpoint.js';
import { type OptionSpec, UsageError, parseArgs, usage } from './args.js';
import { readBytes, writeAtomic } from './files.js';
import { progress } from './progress.js';
import { latestRun } from './runs.js';
import { encodeMasksParallel } from './postprocess-workers.js';

const SPEC: Record<string, OptionSpec> = {
  model: { type: 'string', help: 'checkpoint whose threshold and minimum area to use; default: best.safetensors of the latest run' },
  masks: { type: 'string', help: 'probabilities from predict', default: 'imgs_mask_test.npy' },
  data: { type: 'string', help: 'folder with imgs_id_test.npy', default: 'data' },
  out: { type: 'string', help: 'the CSV to write', default: 'submission.csv' },
  threshold: { type: 'number', help: 'override the probability threshold' },
  'min-area': { type: 'number', help: 'override the minimum mask area in pixels' },
};

export async function submit(argv: string[]): Promise<void> {
  if (argv.includes('--help')) return void console.log(usage('submit', 'Writes submission.csv from the predicted probabilities.', SPEC));
  const { options: o } = parseArgs(argv, SPEC);
  let threshold = DEFAULT_THRESHOLD;
  let minArea = DEFAULT_MIN_AREA;
  let source = 'defaults';
  const modelPath = (o.model as string | undefined) ?? (existsSync('runs') ? join(latestRun('runs'), 'best.safetensors') : undefined);
  if (modelPath) {
    const pp = decodeCheckpoint(readBytes(modelPath, 'checkpoint'), modelPath).meta.postprocess;
    if (pp) {
      threshold = pp.threshold;
      minArea = pp.minArea;
      source = `chosen on validation data (${modelPath})`;
    }
  }
  if (o.threshold !== undefined) {
    threshold = o.threshold as number;
    source = 'given';
  }
  if (o['min-area'] !== undefined) {
    minArea = o['min-area'] as number;
    source = 'given';
  }
  if (!(threshold > 0 && threshold < 1)) throw new UsageError(`--threshold must be between 0 and 1, got ${threshold}`);
  if (!(Number.isInteger(minArea) && minArea >= 0)) throw new UsageError(`--min-area must be a non-negative integer, got ${minArea}`);

  const masksPath = resolve(o.masks as string);
  const idsPath = join(resolve(o.data as string), 'imgs_id_test.npy');
  const probs = decodeNpy(readBytes(masksPath, 'predicted masks (run npm run predict first)'), masksPath);
  const ids = decodeNpy(readBytes(idsPath, 'test ids'), idsPath);
  if (probs.dtype !== 'float32' || probs.shape.length !== 3 || probs.shape[1] !== probs.shape[2]) {
    throw new DataError(`${masksPath}: expected float32 probabilities (N, size, size), got ${probs.dtype} (${probs.shape.join(', ')})`);
  }
  if (ids.dtype !== 'int32' || ids.shape[0] !== probs.shape[0]) {
    throw new DataError(`${idsPath} holds ${ids.shape[0]} ids for ${probs.shape[0]} predicted masks; predict and submit must use the same data`);
  }
  const [count, size] = probs.shape as [number, number];
  console.log(`threshold ${threshold}, minimum area ${minArea} (${source})`);
  await writeSubmission(probs.data as Float32Array, count, size, ids.data as Int32Array, threshold, minArea, resolve(o.out as string));
}

/** Thresholds each probability map at full size, on every core, and writes the competition's CSV. */
export async function writeSubmission(probs: Float32Array, count: number, size: number, ids: Int32Array, threshold: number, minArea: number, out: string): Promise<void> {
  const bar = progress('encoding', count, 'masks');
  const t0 = performance.now();
  const { fields, threads } = await encodeMasksParallel(probs, count, size, threshold, minArea, { onProgress: (done) => bar.update(done) });
  const seconds = (performance.now() - t0) / 1000;
  bar.finish(`${Math.round(count / Math.max(seconds, 1e-3))} masks/s on ${threads === 0 ? 'this thread' : `${threads} worker threads`}`);
  writeAtomic(out, formatEncodedSubmission(fields.map((pixels, i) => ({ id: ids[i]!, pixels }))));
  console.log(`wrote ${out}: ${count} rows, ${fields.filter((f) => f !== '').length} with a nerve`);
}
