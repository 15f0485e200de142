import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeFiles } from '../../src/cli/data.js';
import { buildCaches, CACHE_FILES, type DatasetCaches, type FileAccess, openDataset, testCacheFiles, trainCacheFiles } from '../../src/data/dataset.js';
import { DataError } from '../../src/data/errors.js';
import { decodeNpy } from '../../src/data/npy.js';
import { generateFrame, generateMask } from '../../src/data/synthetic.js';
import { decodeTiff, encodeTiffGray8 } from '../../src/data/tiff.js';
import { arrayDifference } from './compare.js';
import { KAGGLE_SAMPLE_DIR, readFixture } from './fixtures.js';

const W = 580;
const H = 420;
const P = W * H;

/** A few distinct synthetic frames, one with a nerve; files below are tagged copies of them. */
let bases: { image: Uint8Array; mask: Uint8Array }[] = [];
beforeAll(() => {
  let withNerve = 1;
  while (generateMask(1, withNerve, 3).every((v) => v === 0)) withNerve++;
  bases = [generateFrame(1, withNerve, 3), generateFrame(2, 1, 3)];
});

/** A frame whose first two pixels say which file it is: [a, b]. */
function tagged(a: number, b: number, which = 0): { image: Uint8Array; mask: Uint8Array } {
  const base = bases[which % bases.length]!;
  const image = base.image.slice();
  image[0] = a;
  image[1] = b;
  return { image, mask: base.mask };
}

function tiff(data: Uint8Array, lzw = false, width = W, height = H): Uint8Array {
  return encodeTiffGray8(width, height, data, { compression: lzw ? 'lzw' : 'none' });
}

/** A little-endian TIFF with a second page: a copy of its first page's directory, appended and chained after it. */
function twoPages(single: Uint8Array): Uint8Array {
  const view = new DataView(single.buffer, single.byteOffset, single.byteLength);
  const first = view.getUint32(4, true);
  const entries = view.getUint16(first, true);
  const ifdBytes = 2 + 12 * entries + 4;
  const at = single.length + (single.length % 2); // directories start on a word boundary
  const out = new Uint8Array(at + ifdBytes);
  out.set(single);
  out.set(single.subarray(first, first + ifdBytes), at);
  const o = new DataView(out.buffer);
  o.setUint32(first + 2 + 12 * entries, at, true); // first page → second
  o.setUint32(at + 2 + 12 * entries, 0, true); // the second is the last
  return out;
}

/** An in-memory FileAccess: folders are listed explicitly, so that an empty one can exist. */
function memoryFiles(dirs: string[], files: Map<string, Uint8Array>, unreadable: string[] = []): FileAccess {
  return {
    list: async (dir) => {
      if (!dirs.includes(dir)) throw new Error(`ENOENT: no such file or directory, scandir '${dir}'`);
      return [...files.keys()].filter((path) => path.startsWith(`${dir}/`) && !path.slice(dir.length + 1).includes('/')).map((path) => path.slice(dir.length + 1));
    },
    read: async (path) => {
      if (unreadable.includes(path)) throw new Error(`EACCES: permission denied, open '${path}'`);
      const bytes = files.get(path);
      if (bytes === undefined) throw new Error(`ENOENT: no such file or directory, open '${path}'`);
      return bytes;
    },
  };
}

/** A small good layout in memory: subject 1 frames 1–3, subject 2 frame 1; test ids 1–2. */
function goodLayout(): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  for (const [s, f] of [
    [1, 1],
    [1, 2],
    [1, 3],
    [2, 1],
  ] as const) {
    const { image, mask } = tagged(s, f, s + f);
    files.set(`raw/train/${s}_${f}.tif`, tiff(image));
    files.set(`raw/train/${s}_${f}_mask.tif`, tiff(mask));
  }
  for (const id of [1, 2]) files.set(`raw/test/${id}.tif`, tiff(tagged(0, id).image));
  return files;
}

const DIRS = ['raw', 'raw/train', 'raw/test'];

async function build(files: Map<string, Uint8Array>, options: { strict?: boolean; dirs?: string[]; unreadable?: string[] } = {}): Promise<{ caches: DatasetCaches; warnings: string[] }> {
  const warnings: string[] = [];
  const caches = await buildCaches(memoryFiles(options.dirs ?? DIRS, files, options.unreadable), 'raw', { strict: options.strict, onWarning: (m) => warnings.push(m) });
  return { caches, warnings };
}

function rowTags(images: Uint8Array, count: number): [number, number][] {
  return Array.from({ length: count }, (_, i) => [images[i * P]!, images[i * P + 1]!]);
}

function pairs(index: Int32Array): [number, number][] {
  return Array.from({ length: index.length / 2 }, (_, i) => [index[2 * i]!, index[2 * i + 1]!]);
}

describe('buildCaches on a synthetic layout written to disk', () => {
  let dir = '';
  let caches: DatasetCaches;
  const progress: [number, number][] = [];
  // Subject 1 has frames 1–10 and test ids run 1–11, so that sorting by name ("1_10" < "1_2") would be caught.
  const trainOrder: [number, number][] = [];
  for (const s of [1, 2]) for (let f = 1; f <= (s === 1 ? 10 : 2); f++) trainOrder.push([s, f]);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wgsl-unet-dataset-'));
    mkdirSync(join(dir, 'train'));
    mkdirSync(join(dir, 'test'));
    trainOrder.forEach(([s, f], i) => {
      const { image, mask } = tagged(s, f, i);
      // Most files uncompressed (quick); some LZW, as the competition's are.
      writeFileSync(join(dir, 'train', `${s}_${f}.tif`), tiff(image, i % 4 === 0));
      writeFileSync(join(dir, 'train', `${s}_${f}_mask.tif`), tiff(mask, i % 4 === 0));
    });
    for (let id = 1; id <= 11; id++) writeFileSync(join(dir, 'test', `${id}.tif`), tiff(tagged(0, id, id).image, id === 10));
    caches = await buildCaches(nodeFiles, dir, { onProgress: (done, total) => progress.push([done, total]) });
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('sorts training rows by (subject, frame) numerically and keeps each mask with its frame', () => {
    expect(caches.warnings).toEqual([]);
    expect(caches.train.count).toBe(12);
    expect(caches.train.images.length).toBe(12 * P);
    expect(pairs(caches.train.index)).toEqual(trainOrder);
    expect(rowTags(caches.train.images, 12)).toEqual(trainOrder);
    trainOrder.forEach((_, i) => {
      const expected = tagged(0, 0, i);
      expect(arrayDifference(caches.train.masks.subarray(i * P, (i + 1) * P), expected.mask)).toBe('equal');
      expect(arrayDifference(caches.train.images.subarray(i * P + 2, (i + 1) * P), expected.image.subarray(2))).toBe('equal');
    });
  });

  it('sorts test rows by id numerically', () => {
    const ids = Array.from({ length: 11 }, (_, i) => i + 1);
    expect(Array.from(caches.test.ids)).toEqual(ids);
    expect(rowTags(caches.test.images, 11)).toEqual(ids.map((id) => [0, id]));
  });

  it('reports progress up to every file read', () => {
    expect(progress[0]).toEqual([0, 35]);
    expect(progress.at(-1)).toEqual([35, 35]);
    expect(progress.every(([done], i) => i === 0 || done === progress[i - 1]![0] + 1)).toBe(true);
  });

  it('encodes caches that decodeNpy reads back with the right shapes, dtypes and rows', () => {
    const files = [...trainCacheFiles(caches.train), ...testCacheFiles(caches.test)];
    expect(files.map((f) => f.name)).toEqual(Object.values(CACHE_FILES));
    const decoded = Object.fromEntries(files.map((f) => [f.name, decodeNpy(f.encode(), f.name)]));
    const expectations: [string, string, number[], ArrayLike<number>][] = [
      ['imgs_train.npy', 'uint8', [12, 420, 580], caches.train.images],
      ['imgs_mask_train.npy', 'uint8', [12, 420, 580], caches.train.masks],
      ['imgs_train_index.npy', 'int32', [12, 2], caches.train.index],
      ['imgs_test.npy', 'uint8', [11, 420, 580], caches.test.images],
      ['imgs_id_test.npy', 'int32', [11], caches.test.ids],
    ];
    for (const [name, dtype, shape, data] of expectations) {
      expect([name, decoded[name]!.dtype, decoded[name]!.shape]).toEqual([name, dtype, shape]);
      expect(arrayDifference(decoded[name]!.data, data)).toBe('equal');
    }
  });

  const hasNumpy = spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;
  it.skipIf(!hasNumpy)('writes caches numpy.load reads (python3 with numpy found)', () => {
    const out = join(dir, 'data');
    mkdirSync(out);
    for (const file of [...trainCacheFiles(caches.train), ...testCacheFiles(caches.test)]) writeFileSync(join(out, file.name), file.encode());
    const script = [
      'import numpy as np, sys, json',
      'd = sys.argv[1]',
      "names = ['imgs_train', 'imgs_mask_train', 'imgs_train_index', 'imgs_test', 'imgs_id_test']",
      "arrays = {n: np.load(f'{d}/{n}.npy') for n in names}",
      "print(json.dumps({n: [list(a.shape), str(a.dtype), int(a.astype(np.int64).sum())] for n, a in arrays.items()}))",
    ].join('\n');
    const result = spawnSync('python3', ['-c', script, out], { encoding: 'utf8' });
    expect(result.stderr).toBe('');
    const sum = (a: ArrayLike<number>): number => {
      let total = 0;
      for (let i = 0; i < a.length; i++) total += a[i]!;
      return total;
    };
    expect(JSON.parse(result.stdout)).toEqual({
      imgs_train: [[12, 420, 580], 'uint8', sum(caches.train.images)],
      imgs_mask_train: [[12, 420, 580], 'uint8', sum(caches.train.masks)],
      imgs_train_index: [[12, 2], 'int32', sum(caches.train.index)],
      imgs_test: [[11, 420, 580], 'uint8', sum(caches.test.images)],
      imgs_id_test: [[11], 'int32', 66],
    });
  });
});

describe('buildCaches on bad input', () => {
  it('builds the good layout without warnings', async () => {
    const { caches, warnings } = await build(goodLayout());
    expect(warnings).toEqual([]);
    expect(pairs(caches.train.index)).toEqual([
      [1, 1],
      [1, 2],
      [1, 3],
      [2, 1],
    ]);
    expect(Array.from(caches.test.ids)).toEqual([1, 2]);
  });

  it('skips a frame without a mask, naming it', async () => {
    const files = goodLayout();
    files.delete('raw/train/1_2_mask.tif');
    const { caches, warnings } = await build(files);
    expect(warnings).toEqual(['raw/train/1_2.tif: has no mask raw/train/1_2_mask.tif: frame skipped']);
    expect(pairs(caches.train.index)).toEqual([
      [1, 1],
      [1, 3],
      [2, 1],
    ]);
    expect(rowTags(caches.train.images, 3)).toEqual([
      [1, 1],
      [1, 3],
      [2, 1],
    ]);
  });

  it('ignores a mask without its frame, naming it', async () => {
    const files = goodLayout();
    files.set('raw/train/7_7_mask.tif', tiff(bases[0]!.mask));
    const { caches, warnings } = await build(files);
    expect(warnings).toEqual(['raw/train/7_7_mask.tif: a mask without its frame raw/train/7_7.tif: ignored']);
    expect(caches.train.count).toBe(4);
  });

  it('skips a truncated TIFF with the decoder\'s reason, or stops in strict mode', async () => {
    const files = goodLayout();
    const whole = tiff(tagged(1, 3).image, true);
    files.set('raw/train/1_3.tif', whole.subarray(0, whole.length >> 1));
    const { caches, warnings } = await build(files);
    expect(warnings.length).toBe(1);
    expect(warnings[0]).toMatch(/^raw\/train\/1_3\.tif: .*truncated.*: frame skipped$/);
    expect(pairs(caches.train.index)).toEqual([
      [1, 1],
      [1, 2],
      [2, 1],
    ]);
    await expect(build(files, { strict: true })).rejects.toThrow(/^strict mode stops at the first bad file: raw\/train\/1_3\.tif: .*truncated/);
    // A strict run stops: its message does not say the frame was skipped.
    await expect(build(files, { strict: true })).rejects.not.toThrow(/skipped/);
  });

  it('skips a file that is not a TIFF at all, and a test frame that cannot be read', async () => {
    const files = goodLayout();
    files.set('raw/train/2_1_mask.tif', new TextEncoder().encode('<html>404 Not Found</html>'));
    const { caches, warnings } = await build(files, { unreadable: ['raw/test/2.tif'] });
    expect(warnings.length).toBe(2);
    expect(warnings[0]).toMatch(/^raw\/train\/2_1_mask\.tif: .*: frame raw\/train\/2_1\.tif skipped$/);
    expect(warnings[1]).toBe("raw/test/2.tif: cannot be read (EACCES: permission denied, open 'raw/test/2.tif'): test frame skipped");
    expect(caches.train.count).toBe(3);
    expect(Array.from(caches.test.ids)).toEqual([1]);
  });

  it('caches the first page of a multi-page TIFF with a warning; a strict run stops at it', async () => {
    const files = goodLayout();
    const single = files.get('raw/train/1_2.tif')!;
    expect(single[0]).toBe(0x49); // 'II': the helper above writes little-endian offsets
    files.set('raw/train/1_2.tif', twoPages(single));
    expect(decodeTiff(files.get('raw/train/1_2.tif')!, 'two pages').morePages).toBe(true);
    expect(decodeTiff(single, 'one page').morePages).toBeUndefined();
    const { caches, warnings } = await build(files);
    expect(warnings).toEqual(['raw/train/1_2.tif: holds more than one page: only its first is used']);
    expect(caches.train.count).toBe(4);
    await expect(build(files, { strict: true })).rejects.toThrow(/^strict mode stops at the first bad file: raw\/train\/1_2\.tif: holds more than one page$/);
  });

  it('skips frames and masks of the wrong size, naming file and size', async () => {
    const files = goodLayout();
    files.set('raw/train/1_1.tif', tiff(new Uint8Array(600 * 400), false, 600, 400));
    files.set('raw/test/1.tif', tiff(new Uint8Array(420 * 580), false, 420, 580));
    const { caches, warnings } = await build(files);
    expect(warnings).toEqual([
      'raw/train/1_1.tif: is 600 × 400 (width × height), not 580 × 420: frame skipped',
      'raw/test/1.tif: is 420 × 580 (width × height), not 580 × 420: test frame skipped',
    ]);
    expect(caches.train.count).toBe(3);
    expect(Array.from(caches.test.ids)).toEqual([2]);
  });

  it('skips a mask that is not 0/255', async () => {
    const files = goodLayout();
    files.set('raw/train/1_1_mask.tif', tiff(Uint8Array.from(bases[0]!.mask, (v) => (v ? 1 : 0))));
    const { caches, warnings } = await build(files);
    expect(warnings).toEqual(['raw/train/1_1_mask.tif: holds the value 1 where a mask has only 0 and 255: frame raw/train/1_1.tif skipped (re-save the mask as 0/255)']);
    expect(caches.train.count).toBe(3);
  });

  it('warns about stray files and ignores them', async () => {
    const files = goodLayout();
    files.set('raw/train/notes.txt', new Uint8Array(3));
    files.set('raw/train/1_1.png', new Uint8Array(3));
    files.set('raw/test/.DS_Store', new Uint8Array(3));
    files.set('raw/test/1_mask.tif', new Uint8Array(3));
    const { caches, warnings } = await build(files);
    expect(warnings).toEqual([
      'raw/train/1_1.png: not a frame (<subject>_<frame>.tif) or mask (<subject>_<frame>_mask.tif): ignored',
      'raw/train/notes.txt: not a frame (<subject>_<frame>.tif) or mask (<subject>_<frame>_mask.tif): ignored',
      'raw/test/.DS_Store: not a test frame (<id>.tif): ignored',
      'raw/test/1_mask.tif: not a test frame (<id>.tif): ignored',
    ]);
    expect(caches.train.count).toBe(4);
    expect(caches.test.count).toBe(2);
  });

  it('names a few stray files and counts the rest', async () => {
    const files = goodLayout();
    for (let i = 0; i < 8; i++) files.set(`raw/test/thumb${i}.jpg`, new Uint8Array(1));
    const { warnings } = await build(files);
    expect(warnings.length).toBe(6);
    expect(warnings[5]).toBe('raw/test: 3 more files that are not a test frame (<id>.tif): ignored');
  });

  it('keeps the canonically named file when two name the same frame or id', async () => {
    const files = goodLayout();
    files.set('raw/train/1_01.tif', tiff(tagged(9, 9).image));
    files.set('raw/test/002.tif', tiff(tagged(9, 9).image));
    const { caches, warnings } = await build(files);
    expect(warnings).toEqual([
      'raw/train/1_01.tif: another file for frame 1_1 besides raw/train/1_1.tif: skipped',
      'raw/test/002.tif: another file for test id 2 besides raw/test/2.tif: skipped',
    ]);
    expect(caches.train.count).toBe(4);
    expect(rowTags(caches.train.images, 1)).toEqual([[1, 1]]);
    expect(rowTags(caches.test.images, 2)).toEqual([
      [0, 1],
      [0, 2],
    ]);
  });

  it('stops when a folder is missing', async () => {
    await expect(build(goodLayout(), { dirs: ['raw', 'raw/train'] })).rejects.toThrow(
      /^raw\/test: cannot list the folder \(ENOENT.*\): put the competition's train\/ and test\/ folders in raw \(the Kaggle layout is/,
    );
    await expect(build(new Map(), { dirs: [] })).rejects.toThrow(DataError);
  });

  it('stops when a folder is empty or holds no frames', async () => {
    const files = goodLayout();
    for (const key of [...files.keys()]) if (key.startsWith('raw/train/')) files.delete(key);
    await expect(build(files)).rejects.toThrow(/^raw\/train: holds no training frames \(<subject>_<frame>\.tif\): the folder is empty; the Kaggle layout is/);
    files.set('raw/train/readme.md', new Uint8Array(1));
    await expect(build(files)).rejects.toThrow(/^raw\/train: holds no training frames \(<subject>_<frame>\.tif\) among its 1 files/);
  });

  it('stops when no frame is usable, with the reasons', async () => {
    const files = new Map<string, Uint8Array>([
      ['raw/train/1_1.tif', new Uint8Array(10)],
      ['raw/train/1_1_mask.tif', new Uint8Array(10)],
      ['raw/test/1.tif', tiff(tagged(0, 1).image)],
    ]);
    await expect(build(files)).rejects.toThrow(/^raw\/train: none of its 1 frames with masks could be used: raw\/train\/1_1\.tif: /);
  });

  it('can read the test set before the training set, each once', async () => {
    const reader = await openDataset(memoryFiles(DIRS, goodLayout()), 'raw');
    expect([reader.trainFrames, reader.testFrames, reader.totalFiles]).toEqual([4, 2, 10]);
    const test = await reader.readTest();
    const train = await reader.readTrain();
    expect([test.count, train.count]).toEqual([2, 4]);
    await expect(reader.readTrain()).rejects.toThrow(/already called/);
  });
});

describe('buildCaches on the real Kaggle sample', () => {
  // The fixtures folder is flat (1_1.tif, 1_1_mask.tif, …): raw/train/<name> maps to it, and raw/test holds 1_4 and 1_5 as ids 4 and 5.
  const real = (name: string): string => KAGGLE_SAMPLE_DIR + name;
  const files: FileAccess = {
    list: async (dir) => {
      if (dir === 'raw/train') return readdirSync(KAGGLE_SAMPLE_DIR).filter((name) => name.endsWith('.tif'));
      if (dir === 'raw/test') return ['4.tif', '5.tif'];
      throw new Error(`no such folder ${dir}`);
    },
    read: async (path) => {
      const test = /^raw\/test\/(\d+)\.tif$/.exec(path);
      return nodeFiles.read(test ? real(`1_${test[1]}.tif`) : real(path.replace(/^raw\/train\//, '')));
    },
  };

  it('gives rows equal to decodeTiff of each file, in order', async () => {
    const caches = await buildCaches(files, 'raw');
    expect(caches.warnings).toEqual([]);
    expect(caches.train.count).toBe(5);
    expect(pairs(caches.train.index)).toEqual([1, 2, 3, 4, 5].map((f) => [1, f]));
    for (let f = 1; f <= 5; f++) {
      const image = decodeTiff(readFixture(`1_${f}.tif`), `1_${f}.tif`).data;
      const mask = decodeTiff(readFixture(`1_${f}_mask.tif`), `1_${f}_mask.tif`).data;
      expect(arrayDifference(caches.train.images.subarray((f - 1) * P, f * P), image)).toBe('equal');
      expect(arrayDifference(caches.train.masks.subarray((f - 1) * P, f * P), mask)).toBe('equal');
    }
    // 1_5's mask is the empty one.
    expect(caches.train.masks.subarray(4 * P).every((v) => v === 0)).toBe(true);
    expect(Array.from(caches.test.ids)).toEqual([4, 5]);
    expect(arrayDifference(caches.test.images.subarray(P), caches.train.images.subarray(4 * P))).toBe('equal');
  });
});
