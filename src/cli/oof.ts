/**
 * `wgsl-unet oof`: the competition's metric over all the folds of a k-fold
 * run. Each fold's run folder holds its validation maps (oof.npy) and their
 * subjects and frames (oof_index.npy); together the folds cover each subject
 * once, so the metric, with the threshold and minimum area tuned on the
 * union, scores every frame by a model that never saw its subject.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DataError } from '../data/errors.js';
import { decodeNpy } from '../data/npy.js';
import { choosePostprocess, type PostprocessChoice } from '../data/postprocess.js';
import { SUBMISSION_HEIGHT, SUBMISSION_WIDTH } from '../data/submission.js';
import { decodeCheckpoint } from '../model/checkpoint.js';
import { type OptionSpec, parseArgs, usage, UsageError } from './args.js';
import { loadTrainingFrames } from './caches.js';
import { readBytes, writeAtomic } from './files.js';

const SPEC: Record<string, OptionSpec> = {
  data: { type: 'string', help: 'folder of the caches the folds trained on (default: the one their checkpoints name)' },
  json: { type: 'string', help: 'also write the figures to this JSON file' },
};

const SUMMARY = `Scores the out-of-fold predictions of the run folders given (one per fold of
train --folds K --fold i) with the competition's metric, tuned over them all.
usage: wgsl-unet oof runs/<fold 1> runs/<fold 2> … [--data DIR] [--json FILE]`;

export interface OutOfFold {
  folds: number;
  frames: number;
  choice: PostprocessChoice;
}

/** Loads the folds' maps and scores them against the caches' masks. */
export function outOfFold(runs: string[], dataDir?: string): OutOfFold & { data: string } {
  if (runs.length === 0) throw new UsageError('give the run folders of the folds: wgsl-unet oof runs/<fold 1> runs/<fold 2> …');
  let data = dataDir;
  let split: { k: number; seed: number; count: number; from: string } | undefined;
  const folds = new Set<number>();
  const parts: { run: string; probs: Float32Array; index: Int32Array; count: number; size: number }[] = [];
  for (const run of runs) {
    const probsPath = join(run, 'oof.npy');
    const indexPath = join(run, 'oof_index.npy');
    if (!existsSync(probsPath) || !existsSync(indexPath)) throw new DataError(`${run}: no oof.npy and oof_index.npy; they are written at the end of a run trained with --folds K --fold i`);
    const probs = decodeNpy(readBytes(probsPath, 'out-of-fold maps'), probsPath);
    const index = decodeNpy(readBytes(indexPath, 'out-of-fold index'), indexPath);
    if (probs.dtype !== 'float32' || probs.shape.length !== 3 || probs.shape[1] !== probs.shape[2]) throw new DataError(`${probsPath}: expected float32 (n, size, size), got ${probs.dtype} (${probs.shape.join(', ')})`);
    if (index.dtype !== 'int32' || index.shape.join() !== `${probs.shape[0]},2`) throw new DataError(`${indexPath}: expected int32 (${probs.shape[0]}, 2), got ${index.dtype} (${index.shape.join(', ')})`);
    parts.push({ run, probs: probs.data as Float32Array, index: index.data as Int32Array, count: probs.shape[0]!, size: probs.shape[1]! });
    const best = join(run, 'best.safetensors');
    const training = existsSync(best) ? decodeCheckpoint(readBytes(best, 'checkpoint'), best).meta.training : undefined;
    data ??= training?.data;
    if (training?.folds) {
      // Folds of one split: the same K, fold seed and rows; each fold once.
      const { k, seed, fold } = training.folds;
      if (split && (split.k !== k || split.seed !== seed || split.count !== training.count)) {
        throw new DataError(`${run} is fold ${fold} of ${k} (fold seed ${seed}, ${training.count} rows), ${split.from} of a split into ${split.k} (fold seed ${split.seed}, ${split.count} rows): score the folds of one split together`);
      }
      split ??= { k, seed, count: training.count, from: run };
      if (folds.has(fold)) throw new DataError(`${run}: fold ${fold} is given twice`);
      folds.add(fold);
    }
  }
  if (data === undefined) throw new UsageError('cannot tell which caches the folds trained on: pass --data');
  const size = parts[0]!.size;
  const mismatched = parts.find((p) => p.size !== size);
  if (mismatched) throw new DataError(`${mismatched.run} predicted ${mismatched.size}×${mismatched.size} maps, ${parts[0]!.run} ${size}×${size}: folds of one run share a model size`);
  const frames = loadTrainingFrames(data);
  if (frames.width !== SUBMISSION_WIDTH || frames.height !== SUBMISSION_HEIGHT) throw new DataError(`${data}: the caches hold ${frames.width}×${frames.height} frames, not the competition's 580×420`);
  const rowOf = new Map<string, number>();
  for (let row = 0; row < frames.count; row++) rowOf.set(`${frames.index[2 * row]}_${frames.index[2 * row + 1]}`, row);
  const total = parts.reduce((n, p) => n + p.count, 0);
  const probs = new Float32Array(total * size * size);
  const pixels = SUBMISSION_WIDTH * SUBMISSION_HEIGHT;
  const truths = new Uint8Array(total * pixels);
  const seen = new Map<string, string>();
  let at = 0;
  for (const part of parts) {
    probs.set(part.probs, at * size * size);
    for (let k = 0; k < part.count; k++, at++) {
      const key = `${part.index[2 * k]}_${part.index[2 * k + 1]}`;
      const before = seen.get(key);
      if (before !== undefined) throw new DataError(`frame ${key} is held out by both ${before} and ${part.run}: the folds overlap (were they trained with the same --folds and --fold-seed?)`);
      seen.set(key, part.run);
      const row = rowOf.get(key);
      if (row === undefined) throw new DataError(`${part.run}: frame ${key} is not in ${data}; pass the --data the folds trained on`);
      truths.set(frames.masks.subarray(row * pixels, (row + 1) * pixels), at * pixels);
    }
  }
  if (split && folds.size < split.k) console.log(`note: ${folds.size} of the ${split.k} folds given; the metric covers their held-out subjects only`);
  return { data, folds: parts.length, frames: total, choice: choosePostprocess(probs, size, truths, total) };
}

export async function oof(argv: string[]): Promise<void> {
  if (argv.includes('--help')) return void console.log(usage('oof', SUMMARY, SPEC));
  const { options: o, positional } = parseArgs(argv, SPEC);
  const result = outOfFold(positional.map((p) => resolve(p)), o.data as string | undefined);
  const c = result.choice;
  console.log(
    `out-of-fold competition metric over ${result.folds} folds, ${result.frames} frames of ${result.data}: ${c.defaultScore.toFixed(4)} at threshold 0.5, min area 10; ` +
      `best ${c.score.toFixed(4)} at threshold ${c.threshold}, min area ${c.minArea}; all-empty prediction ${c.emptyScore.toFixed(4)}`,
  );
  if (o.json) writeAtomic(o.json as string, JSON.stringify({ runs: positional.map((p) => resolve(p)), ...result }, null, 2) + '\n');
}
