/**
 * `wgsl-unet segment FRAME.tif|FOLDER …`: masks for frame files with a
 * checkpoint (or an ensemble, with test-time views, as `predict` takes
 * them), each written as <out>/<name>_mask.tif (8-bit, 255 = nerve, at
 * the frame's size, as the competition's training masks are), and
 * <out>/masks.csv with each frame's size, mask area and run-length encoding.
 * Frames are prepared and masks made as `predict` and `submit` do
 * (src/model/segment.ts), a few hundred frames at a time so that a whole
 * test folder needs little memory. A file that is not a readable frame is
 * skipped with a warning naming it (`--strict`: stops at it), as `data` does.
 */
import { readdirSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { encodeRle } from '../data/rle.js';
import { decodeTiff, encodeTiffGray8, type GrayImage } from '../data/tiff.js';
import { segmentSettings, segmentWith } from '../model/segment.js';
import type { UNet } from '../model/unet.js';
import { tuneForSoftwareAdapter } from '../software/platform.js';
import { GPU_OPTIONS, type OptionSpec, parseArgs, usage, UsageError } from './args.js';
import { readBytes, writeAtomic } from './files.js';
import { PRECISION_OPTION, choosePrecision, openGpu } from './gpu-options.js';
import { ENSEMBLE_OPTIONS, checkpointMember, readEnsemble, ttaViews } from './predict.js';
import { progress } from './progress.js';

const SPEC: Record<string, OptionSpec> = {
  ...GPU_OPTIONS,
  ...PRECISION_OPTION,
  ...ENSEMBLE_OPTIONS,
  out: { type: 'string', help: 'folder for the <name>_mask.tif files and masks.csv', default: 'masks' },
  threshold: { type: 'number', help: 'probability threshold; default: the (first) checkpoint\'s, chosen on validation data, else 0.5' },
  'min-area': { type: 'number', help: 'masks of fewer pixels are left empty; default: the (first) checkpoint\'s, else 10' },
  'batch-size': { type: 'number', help: 'frames per batch', default: 16 },
  strict: { type: 'boolean', help: 'stop at the first file that is not a readable frame instead of skipping it with a warning' },
};

/** Frames read and segmented at a time: bounded memory for a whole test folder (580 × 420 bytes each). */
const CHUNK = 256;

const isFrameName = (name: string) => /\.tiff?$/i.test(name) && !/_mask\.tiff?$/i.test(name);

/** The frame files of the arguments: files as given, and a folder's TIFF files (masks left out) in natural order. */
function frameFiles(entries: readonly string[]): string[] {
  const files: string[] = [];
  for (const entry of entries) {
    let folder = false;
    try {
      folder = statSync(entry).isDirectory();
    } catch {
      // a missing file is reported when it is read
    }
    if (!folder) {
      files.push(entry);
      continue;
    }
    const inside = readdirSync(entry).filter(isFrameName).sort(new Intl.Collator('en', { numeric: true }).compare);
    if (inside.length === 0) throw new UsageError(`${entry} holds no frame files (.tif, other than *_mask.tif)`);
    files.push(...inside.map((name) => join(entry, name)));
  }
  return files;
}

/** A CSV field, quoted where it holds a comma, a quote or a line break. */
const csvField = (s: string) => (/[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

export async function segment(argv: string[]): Promise<void> {
  if (argv.includes('--help')) return void console.log(usage('segment FRAME.tif|FOLDER …', 'Writes a nerve mask for each frame file (TIFF), and masks.csv.', SPEC));
  const { options: o, positional } = parseArgs(argv, SPEC);
  if (positional.length === 0) throw new UsageError('segment: give frame files (TIFF) or folders of them, e.g. segment --model runs/RUN raw/test');
  const files = frameFiles(positional);
  const outDir = resolve(o.out as string);
  const maskNames: string[] = [];
  const byName = new Map<string, string>();
  for (const file of files) {
    const name = `${basename(file).replace(/\.tiff?$/i, '')}_mask.tif`;
    const other = byName.get(name);
    if (other !== undefined) throw new UsageError(`${file} and ${other} would both write ${join(outDir, name)}`);
    byName.set(name, file);
    maskNames.push(name);
  }
  const overrides: { threshold?: number; minArea?: number } = {};
  if (o.threshold !== undefined) {
    overrides.threshold = o.threshold as number;
    if (!(overrides.threshold > 0 && overrides.threshold < 1)) throw new UsageError(`--threshold must be between 0 and 1, got ${overrides.threshold}`);
  }
  if (o['min-area'] !== undefined) {
    overrides.minArea = o['min-area'] as number;
    if (!(Number.isInteger(overrides.minArea) && overrides.minArea >= 0)) throw new UsageError(`--min-area must be a non-negative integer, got ${overrides.minArea}`);
  }
  const batchSize = o['batch-size'] as number;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new UsageError(`--batch-size must be a positive integer, got ${batchSize}`);
  const transforms = ttaViews(o.tta as string);
  const checkpoints = readEnsemble(o.model as string | undefined);
  const first = checkpoints[0]!;
  const settings = segmentSettings(first.ckpt.meta, overrides);
  const chosen = Object.keys(overrides).length ? 'given' : first.ckpt.meta.postprocess ? `chosen on validation data (${first.path})` : 'defaults';
  if (checkpoints.length > 1 || transforms.length > 1) console.log(`averaging ${checkpoints.length} model(s) × ${transforms.length} view(s) of each frame${transforms.length > 1 ? ` (${transforms.join(', ')})` : ''}`);
  console.log(`threshold ${settings.threshold}, minimum area ${settings.minArea} px (${chosen})`);

  const gpu = await openGpu(o);
  const models: UNet[] = [];
  const rows = ['frame,width,height,area,pixels'];
  const skipped: string[] = [];
  let withNerve = 0;
  try {
    choosePrecision(o, gpu);
    tuneForSoftwareAdapter(gpu);
    const members = checkpoints.map(({ path, ckpt }) => checkpointMember(gpu, path, ckpt, batchSize, models));
    const passes = checkpoints.length * transforms.length;
    const bar = progress('segmenting', files.length * passes, 'frames');
    for (let from = 0; from < files.length; from += CHUNK) {
      const chunk: { file: string; name: string; frame: GrayImage }[] = [];
      for (let i = from; i < Math.min(files.length, from + CHUNK); i++) {
        try {
          chunk.push({ file: files[i]!, name: maskNames[i]!, frame: decodeTiff(readBytes(files[i]!, 'frame'), files[i]!) });
        } catch (e) {
          if (o.strict) throw e;
          skipped.push(files[i]!);
          console.error(`warning: skipped: ${(e as Error).message}`);
        }
      }
      // Progress over every pass: the chunks before, then this chunk's passes.
      const results = await segmentWith(members, first.ckpt.meta.config.inputSize, chunk.map((c) => c.frame), settings, { tta: transforms, onProgress: (done) => bar.update(from * passes + done) });
      results.forEach(({ mask, area, width, height }, i) => {
        writeAtomic(join(outDir, chunk[i]!.name), encodeTiffGray8(width, height, mask.map((v) => v * 255), { compression: 'lzw' }));
        rows.push([csvField(chunk[i]!.file), width, height, area, encodeRle(mask, width, height)].join(','));
        if (area) withNerve++;
      });
      bar.update(Math.min(files.length, from + CHUNK) * passes);
    }
    bar.finish();
  } finally {
    for (const model of models) model.dispose();
    await gpu.close();
  }
  const written = rows.length - 1;
  writeAtomic(join(outDir, 'masks.csv'), rows.join('\n') + '\n');
  console.log(`wrote ${written} mask(s) in ${outDir}, ${withNerve} with a nerve; masks.csv lists each frame's size, area and run-length encoding (pixels numbered down the columns from 1)`);
  if (skipped.length) console.log(`skipped ${skipped.length} file(s) that are not readable frames (warnings above)`);
}
