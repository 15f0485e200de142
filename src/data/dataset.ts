/**
 * Reads the competition's folder layout into the tutorial's array caches, in
 * pure TypeScript over a small file-access interface (Node's fs in the CLI, a
 * map of files in tests, anything else in a browser).
 *
 * Layout read (the Kaggle download, or a synthetic set written the same way):
 *   <raw>/train/<subject>_<frame>.tif  with  <raw>/train/<subject>_<frame>_mask.tif
 *   <raw>/test/<id>.tif
 * Caches produced (C order, shapes as numpy prints them):
 *   imgs_train.npy        uint8  (N, 420, 580)  training frames, sorted by (subject, frame) numerically
 *   imgs_mask_train.npy   uint8  (N, 420, 580)  their masks, 0/255, same rows
 *   imgs_train_index.npy  int32  (N, 2)         row i holds [subject, frame] of imgs_train[i]
 *                                               (new here: the tutorial kept no index; it lets a
 *                                               validation split go by subject)
 *   imgs_test.npy         uint8  (M, 420, 580)  test frames, sorted by id numerically
 *   imgs_id_test.npy      int32  (M,)           their ids
 *
 * Bad input never gives a silently wrong result. By default a bad frame is
 * skipped with a warning that names the file and the reason, and the build
 * goes on (one corrupt file among thousands should not cost the rest); with
 * `strict` the first such problem stops the build with a DataError instead:
 * - a frame without its mask: skipped (a mask without its frame: ignored);
 * - a file that cannot be read or decoded (truncated, corrupt, not a TIFF): skipped;
 * - a frame or mask that is not 580 × 420: skipped;
 * - a mask with values other than 0 and 255: skipped (the tutorial divides by 255);
 * - two files for the same frame or id (1_1.tif and 1_01.tif): the one not named canonically is skipped;
 * - a file that is neither a frame nor a mask (notes.txt, .DS_Store, 1_1.png): ignored.
 * These always stop the build (DataError): the raw folder, train/ or test/ missing
 * or unreadable, no frames in one of them, or nothing usable left after skipping.
 */
import { DataError } from './errors.js';
import { encodeNpy } from './npy.js';
import { type GrayImage, decodeTiff } from './tiff.js';

/** The competition's frame size (width × height). */
const FRAME_WIDTH = 580;
const FRAME_HEIGHT = 420;
const PIXELS = FRAME_WIDTH * FRAME_HEIGHT;

/** What the builder needs of a file system. Paths are joined with "/". */
export interface FileAccess {
  /** The names (not paths) of the entries of folder `dir`; rejects when it does not exist or cannot be read. */
  list(dir: string): Promise<string[]>;
  /** The bytes of file `path`; rejects when it cannot be read. */
  read(path: string): Promise<Uint8Array>;
}

export interface BuildCachesOptions {
  /** Called as files are read and decoded: `done` of `total` files (frames, masks and test frames). */
  onProgress?: (done: number, total: number) => void;
  /** Called with each problem skipped over (never called in strict mode, which throws instead). */
  onWarning?: (message: string) => void;
  /** Stop at the first bad file instead of skipping it. */
  strict?: boolean;
  /** Files read ahead of the decoder (default 8). */
  readAhead?: number;
  /**
   * Decodes one read file, as decodeTiff does (rejecting with a DataError for
   * a bad file): lets a caller decode on other threads, up to `readAhead` at
   * a time. Default: decodeTiff on this thread, in order.
   */
  decode?: (bytes: Uint8Array, path: string) => Promise<GrayImage>;
}

export interface TrainCache {
  count: number;
  /** count × 420 × 580 frames. */
  images: Uint8Array;
  /** count × 420 × 580 masks, 0/255. */
  masks: Uint8Array;
  /** count × 2: subject, frame. */
  index: Int32Array;
}

export interface TestCache {
  count: number;
  /** count × 420 × 580 frames. */
  images: Uint8Array;
  ids: Int32Array;
}

export interface DatasetCaches {
  train: TrainCache;
  test: TestCache;
  /** Every warning given, in order. */
  warnings: string[];
}

/** The cache files, by the names the tutorial's training and prediction steps load. */
export const CACHE_FILES = {
  trainImages: 'imgs_train.npy',
  trainMasks: 'imgs_mask_train.npy',
  trainIndex: 'imgs_train_index.npy',
  testImages: 'imgs_test.npy',
  testIds: 'imgs_id_test.npy',
} as const;

const LAYOUT_HINT = 'the Kaggle layout is <raw>/train/<subject>_<frame>.tif with <subject>_<frame>_mask.tif, and <raw>/test/<id>.tif';
const FRAME_NAME = /^(\d+)_(\d+)\.tif$/;
const MASK_NAME = /^(\d+)_(\d+)_mask\.tif$/;
const TEST_NAME = /^(\d+)\.tif$/;
/** Stray files named one by one before they are only counted. */
const STRAYS_NAMED = 5;

export function joinPath(dir: string, name: string): string {
  if (dir === '') return name;
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

interface TrainItem {
  subject: number;
  frame: number;
  image: string;
  mask: string;
}

interface TestItem {
  id: number;
  image: string;
}

/**
 * A data set whose folders have been listed and checked, ready to read. All
 * the errors that stop a build at once (missing or empty folders) come from
 * openDataset, before any frame is read; readTrain and readTest may each be
 * called once, in either order, so that a caller can write and drop one cache
 * before reading the next.
 */
export interface DatasetReader {
  /** Training frames that have a mask, and test frames, found by listing. */
  trainFrames: number;
  testFrames: number;
  /** Files readTrain and readTest will read together: 2 per training frame, 1 per test frame. */
  totalFiles: number;
  /** Every warning given so far, in order. */
  warnings: string[];
  readTrain(): Promise<TrainCache>;
  readTest(): Promise<TestCache>;
}

/** Reports a problem with a file and what is done about it (skipped, ignored). */
type Warn = (problem: string, consequence: string) => void;

/** Lists and checks <rawDir>/train and <rawDir>/test (see the module comment). */
export async function openDataset(files: FileAccess, rawDir: string, options: BuildCachesOptions = {}): Promise<DatasetReader> {
  const warnings: string[] = [];
  // A problem with a file, and what is done about it when not strict (a
  // strict run stops there instead, so its message names the problem alone).
  const warn: Warn = (problem, consequence) => {
    if (options.strict) throw new DataError(`strict mode stops at the first bad file: ${problem}`);
    const message = `${problem}: ${consequence}`;
    warnings.push(message);
    options.onWarning?.(message);
  };
  const trainDir = joinPath(rawDir, 'train');
  const testDir = joinPath(rawDir, 'test');
  const trainNames = await listFolder(files, trainDir, rawDir);
  const testNames = await listFolder(files, testDir, rawDir);
  const trainItems = planTrain(trainDir, trainNames, warn);
  const testItems = planTest(testDir, testNames, warn);

  let done = 0;
  const total = 2 * trainItems.length + testItems.length;
  const tick = (): void => {
    done++;
    options.onProgress?.(done, total);
  };
  const readAhead = Math.max(1, Math.floor(options.readAhead ?? 8));
  let trainRead = false;
  let testRead = false;

  const readTrain = async (): Promise<TrainCache> => {
    if (trainRead) throw new Error('DatasetReader.readTrain: already called');
    trainRead = true;
    if (done === 0) options.onProgress?.(0, total);
    // Training pairs: read frame and mask, keep the pair only when both are good.
    const images = new Uint8Array(trainItems.length * PIXELS);
    const masks = new Uint8Array(trainItems.length * PIXELS);
    const index = new Int32Array(trainItems.length * 2);
    let kept = 0;
    const reads = readInOrder(
      files,
      trainItems.flatMap((item) => [item.image, item.mask]),
      readAhead,
      options.decode,
    );
    for (const item of trainItems) {
      const image = decodeFrame(await reads.next(), warn, 'frame skipped');
      tick();
      const mask = decodeFrame(await reads.next(), warn, `frame ${item.image} skipped`);
      tick();
      if (image === undefined || mask === undefined) continue;
      const bad = firstNonBinary(mask);
      if (bad !== undefined) {
        warn(`${item.mask}: holds the value ${bad} where a mask has only 0 and 255`, `frame ${item.image} skipped (re-save the mask as 0/255)`);
        continue;
      }
      images.set(image, kept * PIXELS);
      masks.set(mask, kept * PIXELS);
      index[2 * kept] = item.subject;
      index[2 * kept + 1] = item.frame;
      kept++;
    }
    if (kept === 0) {
      throw new DataError(`${trainDir}: none of its ${trainItems.length} frames with masks could be used: ${warnings.slice(-3).join('; ')}`);
    }
    return { count: kept, images: images.subarray(0, kept * PIXELS), masks: masks.subarray(0, kept * PIXELS), index: index.subarray(0, 2 * kept) };
  };

  const readTest = async (): Promise<TestCache> => {
    if (testRead) throw new Error('DatasetReader.readTest: already called');
    testRead = true;
    if (done === 0) options.onProgress?.(0, total);
    const images = new Uint8Array(testItems.length * PIXELS);
    const ids = new Int32Array(testItems.length);
    let kept = 0;
    const reads = readInOrder(
      files,
      testItems.map((item) => item.image),
      readAhead,
      options.decode,
    );
    for (const item of testItems) {
      const image = decodeFrame(await reads.next(), warn, 'test frame skipped');
      tick();
      if (image === undefined) continue;
      images.set(image, kept * PIXELS);
      ids[kept] = item.id;
      kept++;
    }
    if (kept === 0) {
      throw new DataError(`${testDir}: none of its ${testItems.length} frames could be used: ${warnings.slice(-3).join('; ')}`);
    }
    return { count: kept, images: images.subarray(0, kept * PIXELS), ids: ids.subarray(0, kept) };
  };

  return { trainFrames: trainItems.length, testFrames: testItems.length, totalFiles: total, warnings, readTrain, readTest };
}

/**
 * Reads <rawDir>/train and <rawDir>/test into the caches (see the module
 * comment for the layout, the shapes and what happens to bad input). Holds
 * everything in memory at once; the CLI uses openDataset to hold less.
 */
export async function buildCaches(files: FileAccess, rawDir: string, options: BuildCachesOptions = {}): Promise<DatasetCaches> {
  const reader = await openDataset(files, rawDir, options);
  const train = await reader.readTrain();
  const test = await reader.readTest();
  return { train, test, warnings: reader.warnings };
}

/** One cache file: its name, and its .npy bytes made on demand (each is as large as its array). */
export interface CacheFile {
  name: string;
  shape: number[];
  dtype: 'uint8' | 'int32';
  encode(): Uint8Array;
}

function cacheFile(name: string, array: Uint8Array | Int32Array, shape: number[]): CacheFile {
  return { name, shape, dtype: array instanceof Uint8Array ? 'uint8' : 'int32', encode: () => encodeNpy(array, shape) };
}

/** imgs_train.npy, imgs_mask_train.npy and imgs_train_index.npy of a training cache. */
export function trainCacheFiles(train: TrainCache): CacheFile[] {
  return [
    cacheFile(CACHE_FILES.trainImages, train.images, [train.count, FRAME_HEIGHT, FRAME_WIDTH]),
    cacheFile(CACHE_FILES.trainMasks, train.masks, [train.count, FRAME_HEIGHT, FRAME_WIDTH]),
    cacheFile(CACHE_FILES.trainIndex, train.index, [train.count, 2]),
  ];
}

/** imgs_test.npy and imgs_id_test.npy of a test cache. */
export function testCacheFiles(test: TestCache): CacheFile[] {
  return [cacheFile(CACHE_FILES.testImages, test.images, [test.count, FRAME_HEIGHT, FRAME_WIDTH]), cacheFile(CACHE_FILES.testIds, test.ids, [test.count])];
}

async function listFolder(files: FileAccess, dir: string, rawDir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await files.list(dir);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    const parent = rawDir === '' ? 'the current folder' : rawDir;
    throw new DataError(`${dir}: cannot list the folder (${why}): put the competition's train/ and test/ folders in ${parent} (${LAYOUT_HINT})`, { cause: error });
  }
  return [...names].sort();
}

function planTrain(dir: string, names: string[], warn: Warn): TrainItem[] {
  const frames = new Map<string, TrainItem>();
  const maskNames = new Map<string, string>();
  const strays: string[] = [];
  for (const name of names) {
    const frame = FRAME_NAME.exec(name);
    const mask = MASK_NAME.exec(name);
    const match = frame ?? mask;
    if (match === null) {
      strays.push(name);
      continue;
    }
    const subject = Number(match[1]);
    const number = Number(match[2]);
    const key = `${subject}_${number}`;
    const path = joinPath(dir, name);
    if (frame !== null) {
      const earlier = frames.get(key);
      const item = { subject, frame: number, image: path, mask: '' };
      if (earlier === undefined) frames.set(key, item);
      else frames.set(key, keepOne(earlier.image, path, `${key}.tif`, `frame ${key}`, warn) === path ? item : earlier);
    } else {
      const earlier = maskNames.get(key);
      maskNames.set(key, earlier === undefined ? path : keepOne(earlier, path, `${key}_mask.tif`, `the mask of frame ${key}`, warn));
    }
  }
  reportStrays(dir, strays, 'a frame (<subject>_<frame>.tif) or mask (<subject>_<frame>_mask.tif)', warn);
  if (frames.size === 0) {
    throw new DataError(`${dir}: holds no training frames (<subject>_<frame>.tif)${names.length > 0 ? ` among its ${names.length} files` : ': the folder is empty'}; ${LAYOUT_HINT}`);
  }
  const items: TrainItem[] = [];
  for (const [key, item] of frames) {
    const mask = maskNames.get(key);
    if (mask === undefined) {
      warn(`${item.image}: has no mask ${joinPath(dir, `${key}_mask.tif`)}`, 'frame skipped');
      continue;
    }
    items.push({ ...item, mask });
  }
  for (const [key, mask] of maskNames) {
    if (!frames.has(key)) warn(`${mask}: a mask without its frame ${joinPath(dir, `${key}.tif`)}`, 'ignored');
  }
  return items.sort((a, b) => a.subject - b.subject || a.frame - b.frame);
}

function planTest(dir: string, names: string[], warn: Warn): TestItem[] {
  const byId = new Map<number, TestItem>();
  const strays: string[] = [];
  for (const name of names) {
    const match = TEST_NAME.exec(name);
    if (match === null) {
      strays.push(name);
      continue;
    }
    const id = Number(match[1]);
    const path = joinPath(dir, name);
    if (id > 0x7fffffff) {
      warn(`${path}: test id ${id} does not fit the int32 id cache`, 'skipped');
      continue;
    }
    const earlier = byId.get(id);
    byId.set(id, { id, image: earlier === undefined ? path : keepOne(earlier.image, path, `${id}.tif`, `test id ${id}`, warn) });
  }
  reportStrays(dir, strays, 'a test frame (<id>.tif)', warn);
  if (byId.size === 0) {
    throw new DataError(`${dir}: holds no test frames (<id>.tif)${names.length > 0 ? ` among its ${names.length} files` : ': the folder is empty'}; ${LAYOUT_HINT}`);
  }
  return [...byId.values()].sort((a, b) => a.id - b.id);
}

/**
 * Two files for the same frame ("1_1.tif" and "1_01.tif"): keeps the one with
 * the canonical name (the first listed when neither has it) and warns about the other.
 */
function keepOne(earlier: string, later: string, canonical: string, what: string, warn: Warn): string {
  const keep = later.endsWith(`/${canonical}`) || later === canonical ? later : earlier;
  const drop = keep === later ? earlier : later;
  warn(`${drop}: another file for ${what} besides ${keep}`, 'skipped');
  return keep;
}

function reportStrays(dir: string, strays: string[], expected: string, warn: Warn): void {
  for (const name of strays.slice(0, STRAYS_NAMED)) warn(`${joinPath(dir, name)}: not ${expected}`, 'ignored');
  if (strays.length > STRAYS_NAMED) warn(`${dir}: ${strays.length - STRAYS_NAMED} more files that are not ${expected}`, 'ignored');
}

type ReadResult = { path: string; bytes: Uint8Array } | { path: string; image: GrayImage } | { path: string; error: unknown; decoding?: boolean };

interface OrderedReader {
  next(): Promise<ReadResult>;
}

/**
 * Reads `paths` in order, keeping up to `ahead` reads in flight (and their
 * decodes, when `decode` is given); a failed read or decode is returned, not thrown.
 */
function readInOrder(files: FileAccess, paths: string[], ahead: number, decode?: (bytes: Uint8Array, path: string) => Promise<GrayImage>): OrderedReader {
  const pending: Promise<ReadResult>[] = [];
  let started = 0;
  const start = (): void => {
    while (started < paths.length && pending.length < ahead) {
      const path = paths[started++]!;
      // Wrapped at once so that a rejection is never unhandled while it waits its turn.
      const read = Promise.resolve()
        .then(() => files.read(path))
        .then(
          (bytes): ReadResult => ({ path, bytes }),
          (error: unknown): ReadResult => ({ path, error }),
        );
      pending.push(
        decode
          ? read.then((r) =>
              'bytes' in r
                ? decode(r.bytes, path).then(
                    (image): ReadResult => ({ path, image }),
                    (error: unknown): ReadResult => ({ path, error, decoding: true }),
                  )
                : r,
            )
          : read,
      );
    }
  };
  start();
  return {
    next: async () => {
      const result = pending.shift();
      if (result === undefined) throw new Error('readInOrder: read past the last path');
      start();
      return result;
    },
  };
}

/** Decodes a read 580 × 420 frame, or warns (naming the file and why) and returns undefined. */
function decodeFrame(read: ReadResult, warn: Warn, consequence: string): Uint8Array | undefined {
  if ('error' in read && !read.decoding) {
    const why = read.error instanceof Error ? read.error.message : String(read.error);
    warn(`${read.path}: cannot be read (${why})`, consequence);
    return undefined;
  }
  let image: GrayImage;
  try {
    if ('error' in read) throw read.error;
    image = 'image' in read ? read.image : decodeTiff(read.bytes, read.path);
  } catch (error) {
    if (!(error instanceof DataError)) throw error;
    warn(error.message, consequence);
    return undefined;
  }
  // Only the first page is cached: a strict run stops, any other says so and uses it.
  if (image.morePages) warn(`${read.path}: holds more than one page`, 'only its first is used');
  if (image.width !== FRAME_WIDTH || image.height !== FRAME_HEIGHT) {
    warn(`${read.path}: is ${image.width} × ${image.height} (width × height), not ${FRAME_WIDTH} × ${FRAME_HEIGHT}`, consequence);
    return undefined;
  }
  return image.data;
}

/** The first value other than 0 and 255, or undefined. */
function firstNonBinary(mask: Uint8Array): number | undefined {
  for (let i = 0; i < mask.length; i++) {
    const v = mask[i]!;
    if (v !== 0 && v !== 255) return v;
  }
  return undefined;
}
