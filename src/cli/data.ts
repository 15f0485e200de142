/**
 * `wgsl-unet data`: the tutorial's data step. Reads the competition's frames
 * (raw/train, raw/test) into the .npy caches that training and prediction
 * load; with --synthetic it first writes a synthetic stand-in for the
 * competition's data in the same layout.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type CacheFile, CACHE_FILES, type FileAccess, openDataset, testCacheFiles, trainCacheFiles } from '../data/dataset.js';
import { DataError } from '../data/errors.js';
import { CONTRADICTION_RATE, syntheticLayout, type SyntheticLayoutOptions, TEST_MASKS_HEADER, TRAIN_MASKS_HEADER } from '../data/synthetic.js';
import { writeSyntheticFrames } from './synthetic-frames.js';
import { type TiffPool, openTiffPool } from './tiff-workers.js';
import { type OptionSpec, parseArgs, usage, UsageError } from './args.js';
import { syncFolder, writeDurably } from './files.js';

const SPEC: Record<string, OptionSpec> = {
  raw: { type: 'string', help: 'folder holding train/ and test/ in the Kaggle layout (default raw; with --synthetic, raw-synthetic)' },
  out: { type: 'string', help: 'folder for the .npy caches', default: 'data' },
  synthetic: { type: 'boolean', help: 'write a synthetic data set in the Kaggle layout into --raw (default raw-synthetic), then build the caches from it' },
  'synthetic-if-missing': { type: 'boolean', help: 'as --synthetic (into raw-synthetic) when the --raw folder does not exist' },
  subjects: { type: 'number', help: 'synthetic: training subjects', default: 47 },
  frames: { type: 'number', help: 'synthetic: frames per training subject', default: 120 },
  test: { type: 'number', help: 'synthetic: test frames', default: 5508 },
  seed: { type: 'number', help: 'synthetic: seed', default: 1 },
  contradictions: { type: 'number', help: `synthetic: contradictory near-duplicate pairs per training frame (default ${CONTRADICTION_RATE.toFixed(4)}, the real set's 45 in 5,635; 0 for none)` },
  strict: { type: 'boolean', help: 'stop at the first bad file instead of skipping it with a warning' },
  help: { type: 'boolean', help: 'print this help' },
};

const SUMMARY = `Builds the tutorial's caches from the competition's frames:
  <out>/imgs_train.npy        uint8 (N, 420, 580)  training frames, by (subject, frame)
  <out>/imgs_mask_train.npy   uint8 (N, 420, 580)  their masks, 0/255
  <out>/imgs_train_index.npy  int32 (N, 2)         [subject, frame] of each row
  <out>/imgs_test.npy         uint8 (M, 420, 580)  test frames, by id
  <out>/imgs_id_test.npy      int32 (M,)           their ids
  <out>/dataset.json          where they came from (real or synthetic, counts, warnings)
Input: <raw>/train/<subject>_<frame>.tif with <subject>_<frame>_mask.tif, <raw>/test/<id>.tif.
Bad frames (no mask, unreadable, wrong size, mask not 0/255) are skipped with a
warning naming the file; other files are ignored with a warning.
--synthetic writes a synthetic set in that layout (plus train_masks.csv, the
test set's truth test_masks.csv, and contradictions.csv: the contradictory
near-duplicates planted among the training frames) and remembers its parameters in synthetic.json,
so running it again with the same parameters reuses the files.`;

/** Marks a folder written by --synthetic, so that it can be reused or replaced safely. */
const MARKER = 'synthetic.json';
const GENERATOR = 'wgsl-unet synthetic v2';
/** The planted contradictory near-duplicates of a synthetic set: subject, original frame, its contradictory copy. */
export const CONTRADICTIONS_CSV = 'contradictions.csv';

interface Marker {
  generator: string;
  options: SyntheticLayoutOptions;
  complete: boolean;
}

export async function data(argv: string[]): Promise<void> {
  if (argv.includes('--help')) return void console.log(usage('data', SUMMARY, SPEC));
  const { options, positional } = parseArgs(argv, SPEC);
  if (positional.length > 0) throw new UsageError(`unexpected argument "${positional[0]}"; see wgsl-unet data --help`);
  const rawOption = options.raw as string | undefined;
  const out = options.out as string;
  const layout: SyntheticLayoutOptions = {
    subjects: wholeNumber(options, 'subjects', 1),
    framesPerSubject: wholeNumber(options, 'frames', 1),
    testFrames: wholeNumber(options, 'test', 1),
    seed: wholeNumber(options, 'seed', 0),
    contradictions: contradictionRate(options.contradictions as number | undefined),
  };

  let synthetic = options.synthetic === true;
  let raw = rawOption ?? (synthetic ? 'raw-synthetic' : 'raw');
  if (!synthetic && options['synthetic-if-missing'] === true && !existsSync(raw)) {
    console.log(`${raw}/ does not exist: generating a synthetic data set in raw-synthetic/ instead`);
    synthetic = true;
    raw = 'raw-synthetic';
  }
  if (synthetic) await writeSynthetic(raw, layout);
  else if (!existsSync(raw)) {
    throw new DataError(
      `${raw}: no such folder: download the competition's data (train/ and test/) into ${raw}/, pass --raw <folder>, or run \`wgsl-unet data --synthetic\` for a synthetic stand-in (--synthetic-if-missing does so only when ${raw}/ is absent)`,
    );
  }
  await buildCacheFiles(raw, out, options.strict === true, synthetic ? layout : undefined);
}

/** "1 test frame", "3 test frames". */
function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function contradictionRate(value: number | undefined): number {
  if (value === undefined) return CONTRADICTION_RATE;
  if (!(value >= 0 && value <= 0.5)) throw new UsageError(`--contradictions must be a rate in [0, 0.5] (pairs per training frame), got ${value}`);
  return value;
}

function wholeNumber(options: Record<string, unknown>, name: string, min: number): number {
  const value = options[name] as number;
  if (!Number.isSafeInteger(value) || value < min) throw new UsageError(`--${name} must be a whole number ≥ ${min}, got ${value}`);
  return value;
}

// ---------------------------------------------------------------------------
// Writing the synthetic set
// ---------------------------------------------------------------------------

function readMarker(raw: string): Marker | undefined {
  const path = join(raw, MARKER);
  if (!existsSync(path)) return undefined;
  try {
    const marker = JSON.parse(readFileSync(path, 'utf8')) as Marker;
    // An older generator's folder is still ours to replace.
    return typeof marker.generator === 'string' && marker.generator.startsWith('wgsl-unet synthetic') ? marker : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the marked folder holds the set these options would write, from this generator. */
function sameSet(marker: Marker, b: SyntheticLayoutOptions): boolean {
  const a = marker.options;
  return marker.generator === GENERATOR && a.subjects === b.subjects && a.framesPerSubject === b.framesPerSubject && a.testFrames === b.testFrames && a.seed === b.seed && a.contradictions === b.contradictions;
}

function describe(o: SyntheticLayoutOptions): string {
  return `${o.subjects} subjects × ${o.framesPerSubject} frames, ${o.testFrames} test frames, seed ${o.seed}, ${o.contradictions ?? CONTRADICTION_RATE} contradictory pairs per frame`;
}

async function writeSynthetic(raw: string, options: SyntheticLayoutOptions): Promise<void> {
  const marker = readMarker(raw);
  if (marker?.complete && sameSet(marker, options)) {
    console.log(`${raw}/ already holds the synthetic set (${describe(options)}): reusing it`);
    return;
  }
  if (marker !== undefined) {
    // Ours (an older or interrupted generation): replace what we wrote.
    for (const name of ['train', 'test', 'train_masks.csv', 'test_masks.csv', CONTRADICTIONS_CSV, MARKER]) rmSync(join(raw, name), { recursive: true, force: true });
  } else if (existsSync(raw) && readdirSync(raw).length > 0) {
    throw new DataError(
      `${raw}: already exists and was not written by --synthetic (no ${MARKER}): remove it, or pass --raw <new folder> for the synthetic set (the real data belongs in raw/, read without --synthetic)`,
    );
  }
  mkdirSync(join(raw, 'train'), { recursive: true });
  mkdirSync(join(raw, 'test'), { recursive: true });
  writeFileSync(join(raw, MARKER), JSON.stringify({ generator: GENERATOR, options, complete: false } satisfies Marker, null, 2) + '\n');

  const layout = syntheticLayout(options);
  const total = layout.trainCount + layout.testCount;
  console.log(`writing a synthetic data set to ${raw}/: ${describe(options)}`);
  const progress = new Progress('generate', 'frames');
  const rows = await writeSyntheticFrames(raw, options, (done) => progress.update(done, total));
  progress.finish(total, total);
  if (rows.workers) console.log(`${total} frames written by ${rows.workers} worker threads`);
  writeFileSync(join(raw, 'train_masks.csv'), [TRAIN_MASKS_HEADER, ...rows.train].join('\n') + '\n');
  writeFileSync(join(raw, 'test_masks.csv'), [TEST_MASKS_HEADER, ...rows.test].join('\n') + '\n');
  // The planted traps, for scoring a detector of them (wgsl-unet duplicates).
  writeFileSync(join(raw, CONTRADICTIONS_CSV), ['subject,original,copy', ...layout.contradictions.map((p) => `${p.subject},${p.original},${p.copy}`)].join('\n') + '\n');
  console.log(`${layout.contradictions.length} contradictory near-duplicate pairs planted (listed in ${raw}/${CONTRADICTIONS_CSV})`);
  writeFileSync(join(raw, MARKER), JSON.stringify({ generator: GENERATOR, options, complete: true } satisfies Marker, null, 2) + '\n');
}

// ---------------------------------------------------------------------------
// Building the caches
// ---------------------------------------------------------------------------

/** Node's file system as the data layer's FileAccess. */
export const nodeFiles: FileAccess = {
  list: async (dir) => {
    if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) throw new Error(existsSync(dir) ? 'not a folder' : 'no such folder');
    return readdir(dir);
  },
  read: async (path) => {
    const bytes = await readFile(path);
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  },
};

async function buildCacheFiles(raw: string, out: string, strict: boolean, synthetic: SyntheticLayoutOptions | undefined): Promise<void> {
  const pool = openTiffPool();
  try {
    await buildWith(raw, out, strict, synthetic, pool);
  } finally {
    await pool?.close();
  }
}

async function buildWith(raw: string, out: string, strict: boolean, synthetic: SyntheticLayoutOptions | undefined, pool: TiffPool | null): Promise<void> {
  let progress: Progress | undefined;
  const reader = await openDataset(nodeFiles, raw, {
    strict,
    onWarning: (message) => (progress ? progress.warn(message) : console.error(`warning: ${message}`)),
    onProgress: (done, total) => progress?.update(done, total),
    ...(pool ? { decode: (bytes: Uint8Array, path: string) => pool.decode(bytes, path), readAhead: 2 * pool.workers } : {}),
  });
  console.log(`reading ${raw}/: ${count(reader.trainFrames, 'training frame')} with masks, ${count(reader.testFrames, 'test frame')}`);
  mkdirSync(out, { recursive: true });
  // The whole set is written aside first and renamed into place only once
  // every file of it is there: a run that fails leaves the caches it found.
  const staging = join(out, `.staging-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging);
  try {
    progress = new Progress('read', 'files');
    const bar = progress;
    // One cache at a time: read, write, let go, so that at most one set of arrays is held.
    const readAndWrite = async <T extends { count: number }>(read: () => Promise<T>, files: (cache: T) => CacheFile[]): Promise<{ count: number; lines: string[] }> => {
      bar.resume();
      const cache = await read();
      bar.pause();
      return { count: cache.count, lines: writeCaches(staging, out, files(cache)) };
    };
    const train = await readAndWrite(reader.readTrain, trainCacheFiles);
    const test = await readAndWrite(reader.readTest, testCacheFiles);
    progress.finish(reader.totalFiles, reader.totalFiles);
    const trainCount = train.count;
    const written = [...train.lines, ...test.lines];

    const summary = {
      source: synthetic ? 'synthetic' : 'raw',
      raw,
      synthetic: synthetic ?? null,
      train: trainCount,
      test: test.count,
      skippedOrIgnored: reader.warnings.length,
      warnings: reader.warnings,
      files: Object.values(CACHE_FILES),
    };
    writeDurably(join(staging, 'dataset.json'), JSON.stringify(summary, null, 2) + '\n');
    // dataset.json last: it describes the caches renamed before it.
    for (const name of [...Object.values(CACHE_FILES), 'dataset.json']) renameSync(join(staging, name), join(out, name));
    syncFolder(out);
    for (const line of written) console.log(line);
    const warned = reader.warnings.length > 0 ? `; ${reader.warnings.length} warning${reader.warnings.length === 1 ? '' : 's'} (listed in ${join(out, 'dataset.json')})` : '';
    console.log(`${trainCount} training and ${count(test.count, 'test frame')} from ${raw}/ cached in ${out}/${warned}`);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/** Encodes each cache into `dir`; the lines name where it will end up, in `out`. */
function writeCaches(dir: string, out: string, files: CacheFile[]): string[] {
  return files.map((file) => {
    const bytes = file.encode();
    writeDurably(join(dir, file.name), bytes);
    const path = join(out, file.name);
    return `  ${path.padEnd(32)} ${file.dtype.padEnd(6)} (${file.shape.join(', ')}${file.shape.length === 1 ? ',' : ''})  ${(bytes.length / 2 ** 20).toFixed(1)} MiB`;
  });
}


// ---------------------------------------------------------------------------
// Progress: a bar on a terminal, a line every few seconds otherwise
// ---------------------------------------------------------------------------

class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private readonly started = performance.now();
  private lastDraw = 0;
  private lastLine = '';
  private lastDone = -1;
  private paused = false;

  constructor(
    private readonly label: string,
    private readonly unit: string,
  ) {}

  update(done: number, total: number): void {
    if (this.paused || (!this.tty && done === 0)) return;
    const now = performance.now();
    if (now - this.lastDraw < (this.tty ? 100 : 5000) && done < total) return;
    this.lastDraw = now;
    this.draw(done, total);
  }

  finish(done: number, total: number): void {
    this.paused = false;
    if (done !== this.lastDone || this.tty) this.draw(done, total);
    if (this.tty) process.stderr.write('\n');
    this.paused = true;
  }

  pause(): void {
    if (this.tty && this.lastLine !== '') process.stderr.write('\r\x1b[K');
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  warn(message: string): void {
    if (this.tty) process.stderr.write('\r\x1b[K');
    console.error(`warning: ${message}`);
    if (this.tty && this.lastLine !== '' && !this.paused) process.stderr.write(this.lastLine);
  }

  private draw(done: number, total: number): void {
    this.lastDone = done;
    const seconds = (performance.now() - this.started) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    const eta = rate > 0 ? (total - done) / rate : NaN;
    const stats = `${done}/${total} ${this.unit}  ${rate.toFixed(rate < 10 ? 1 : 0)} ${this.unit}/s  ${done < total ? `ETA ${clock(eta)}` : `in ${clock(seconds)}`}`;
    if (this.tty) {
      const width = 30;
      const filled = total > 0 ? Math.round((width * done) / total) : width;
      this.lastLine = `\r${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${stats}\x1b[K`;
      process.stderr.write(this.lastLine);
    } else {
      console.error(`${this.label}: ${stats} (${total > 0 ? Math.floor((100 * done) / total) : 100} %)`);
    }
  }
}

function clock(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
}
