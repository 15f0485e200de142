/**
 * `wgsl-unet duplicates`: finds the contradictory near-duplicates among the
 * training caches (src/data/duplicates.ts), prints how many and writes the
 * pairs to a JSON report. On a synthetic set, whose data step listed the
 * pairs it planted (contradictions.csv), it also scores the detection.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DataError } from '../data/errors.js';
import { DUPLICATE_CELL, DUPLICATE_THRESHOLD, type DuplicateReport, findContradictions } from '../data/duplicates.js';
import { type OptionSpec, parseArgs, usage, UsageError } from './args.js';
import { CONTRADICTIONS_CSV } from './data.js';
import { type TrainingFrames, loadTrainingFrames } from './caches.js';
import { writeAtomic } from './files.js';
import { progress } from './progress.js';

const SPEC: Record<string, OptionSpec> = {
  data: { type: 'string', help: 'folder with imgs_train.npy, imgs_mask_train.npy and imgs_train_index.npy', default: 'data' },
  report: { type: 'string', help: 'JSON file for the pairs found (default <data>/contradictions.json)' },
  threshold: { type: 'number', help: `correlation from which two frames are near-duplicates (default ${DUPLICATE_THRESHOLD})` },
  cell: { type: 'number', help: `side in pixels of the cells a frame is averaged over (default ${DUPLICATE_CELL})` },
  truth: { type: 'string', help: `CSV of known pairs (subject,original,copy) to score the detection against (default: the synthetic set's ${CONTRADICTIONS_CSV}, when there is one)` },
};

const SUMMARY = `Finds contradictory near-duplicates in the training caches: two frames of one
subject that look nearly the same, one with a nerve mask and the other without.
Writes the pairs to a JSON report; train --drop-contradictions leaves them out.`;

/** Known pairs from a CSV of subject,original,copy rows, as "subject:low:high" keys. */
function readTruth(path: string): Set<string> {
  const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean);
  if (lines[0]?.trim() !== 'subject,original,copy') throw new DataError(`${path}: the first line must be "subject,original,copy", got "${lines[0] ?? ''}"`);
  const keys = new Set<string>();
  lines.slice(1).forEach((line, i) => {
    const v = line.split(',').map(Number);
    if (v.length !== 3 || !v.every(Number.isSafeInteger)) throw new DataError(`${path} line ${i + 2}: expected three whole numbers, got "${line}"`);
    keys.add(pairKey(v[0]!, v[1]!, v[2]!));
  });
  return keys;
}

function pairKey(subject: number, a: number, b: number): string {
  return `${subject}:${Math.min(a, b)}:${Math.max(a, b)}`;
}

/** The synthetic set's list of planted pairs, if the caches came from one that has it. */
function plantedList(dataDir: string): string | undefined {
  const summary = join(dataDir, 'dataset.json');
  if (!existsSync(summary)) return undefined;
  const { source, raw } = JSON.parse(readFileSync(summary, 'utf8')) as { source?: string; raw?: string };
  if (source !== 'synthetic' || raw === undefined) return undefined;
  const path = resolve(raw, CONTRADICTIONS_CSV);
  return existsSync(path) ? path : undefined;
}

/** Runs the detection over loaded frames with a progress bar. */
export function detectContradictions(frames: TrainingFrames, options: { threshold?: number; cell?: number } = {}): DuplicateReport {
  const bar = progress('near-duplicates', frames.count, 'frames');
  const report = findContradictions(frames.images, frames.masks, frames.index, frames.count, frames.width, frames.height, options, (done) => bar.update(done));
  bar.finish(`${report.nearDuplicates} near-duplicate pairs, ${report.contradictions.length} contradictory`);
  return report;
}

export async function duplicates(argv: string[]): Promise<void> {
  if (argv.includes('--help')) return void console.log(usage('duplicates', SUMMARY, SPEC));
  const { options: o, positional } = parseArgs(argv, SPEC);
  if (positional.length > 0) throw new UsageError(`unexpected argument "${positional[0]}"; see wgsl-unet duplicates --help`);
  const dataDir = o.data as string;
  const frames = loadTrainingFrames(dataDir);
  const report = detectContradictions(frames, { threshold: o.threshold as number | undefined, cell: o.cell as number | undefined });
  const reportPath = (o.report as string | undefined) ?? join(dataDir, 'contradictions.json');
  const truthPath = (o.truth as string | undefined) ?? plantedList(dataDir);
  let score: { known: number; found: number; falseAlarms: number } | undefined;
  if (truthPath !== undefined) {
    const known = readTruth(truthPath);
    const found = report.contradictions.filter((p) => known.has(pairKey(p.subject, p.frames[0], p.frames[1]))).length;
    score = { known: known.size, found, falseAlarms: report.contradictions.length - found };
  }
  writeAtomic(reportPath, JSON.stringify({ data: resolve(dataDir), ...report, ...(score ? { truth: truthPath, score } : {}) }, null, 2) + '\n');
  console.log(`${report.contradictions.length} contradictory near-duplicate pairs among ${frames.count} frames (${report.nearDuplicates} near-duplicate pairs in all; correlation ≥ ${report.threshold} over ${report.cell}-pixel cells): ${reportPath}`);
  if (score) console.log(`against ${truthPath}: ${score.found} of ${score.known} known pairs found, ${score.falseAlarms} other pairs reported`);
}
