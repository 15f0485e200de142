import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { UsageError } from '../../src/cli/args.js';
import { data } from '../../src/cli/data.js';
import { DataError } from '../../src/data/errors.js';
import { decodeNpy } from '../../src/data/npy.js';
import { generateFrame } from '../../src/data/synthetic.js';
import { decodeTiff } from '../../src/data/tiff.js';
import { arrayDifference } from './compare.js';

describe('wgsl-unet data', () => {
  let dir = '';
  let logged: string[] = [];
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'wgsl-unet-data-cli-'));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    logged = [];
    const keep = (...args: unknown[]): void => void logged.push(args.join(' '));
    vi.spyOn(console, 'log').mockImplementation(keep);
    vi.spyOn(console, 'error').mockImplementation(keep);
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  const small = ['--subjects', '2', '--frames', '2', '--test', '3'];

  it('--synthetic writes the Kaggle layout and builds the caches from it', async () => {
    const raw = join(dir, 'syn');
    const out = join(dir, 'data');
    await data(['--synthetic', '--raw', raw, '--out', out, ...small, '--seed', '3']);
    expect(readdirSync(join(raw, 'train')).sort()).toEqual(['1_1.tif', '1_1_mask.tif', '1_2.tif', '1_2_mask.tif', '2_1.tif', '2_1_mask.tif', '2_2.tif', '2_2_mask.tif']);
    expect(readdirSync(join(raw, 'test')).sort()).toEqual(['1.tif', '2.tif', '3.tif']);
    const frame = generateFrame(2, 1, 3);
    expect(arrayDifference(decodeTiff(readFileSync(join(raw, 'train', '2_1.tif')), '2_1.tif').data, frame.image)).toBe('equal');
    expect(arrayDifference(decodeTiff(readFileSync(join(raw, 'train', '2_1_mask.tif')), '2_1_mask.tif').data, frame.mask)).toBe('equal');
    expect(readFileSync(join(raw, 'train_masks.csv'), 'utf8').split('\n')[0]).toBe('subject,img,pixels');
    expect(readFileSync(join(raw, 'train_masks.csv'), 'utf8').trim().split('\n').length).toBe(5);
    expect(readFileSync(join(raw, 'test_masks.csv'), 'utf8').trim().split('\n').length).toBe(4);
    expect(JSON.parse(readFileSync(join(raw, 'synthetic.json'), 'utf8')).complete).toBe(true);

    const train = decodeNpy(readFileSync(join(out, 'imgs_train.npy')), 'imgs_train.npy');
    expect(train.shape).toEqual([4, 420, 580]);
    expect(arrayDifference(train.data.subarray(2 * 580 * 420, 3 * 580 * 420), frame.image)).toBe('equal');
    expect(decodeNpy(readFileSync(join(out, 'imgs_mask_train.npy')), 'm').shape).toEqual([4, 420, 580]);
    expect(Array.from(decodeNpy(readFileSync(join(out, 'imgs_train_index.npy')), 'i').data)).toEqual([1, 1, 1, 2, 2, 1, 2, 2]);
    expect(decodeNpy(readFileSync(join(out, 'imgs_test.npy')), 't').shape).toEqual([3, 420, 580]);
    expect(Array.from(decodeNpy(readFileSync(join(out, 'imgs_id_test.npy')), 'ids').data)).toEqual([1, 2, 3]);
    const summary = JSON.parse(readFileSync(join(out, 'dataset.json'), 'utf8'));
    expect([summary.source, summary.train, summary.test, summary.warnings]).toEqual(['synthetic', 4, 3, []]);
    // Written atomically: no temporary files left behind.
    expect(readdirSync(out).filter((name) => name.includes('.tmp-'))).toEqual([]);
    expect(logged.join('\n')).toMatch(/4 training and 3 test frames from .* cached in /);
  });

  it('the built CLI writes the same synthetic set in worker threads as the sources write on one thread', async () => {
    const options = ['--subjects', '2', '--frames', '10', '--test', '12', '--seed', '5'];
    const here = join(dir, 'one-thread');
    await data(['--synthetic', '--raw', join(here, 'raw'), '--out', join(here, 'data'), ...options]);
    const there = join(dir, 'workers');
    const r = spawnSync(process.execPath, [join(__dirname, '../../dist/cli.js'), 'data', '--synthetic', '--raw', join(there, 'raw'), '--out', join(there, 'data'), ...options], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    if (availableParallelism() >= 2) expect(r.stdout).toMatch(/32 frames written by [2-8] worker threads/);
    for (const sub of ['train', 'test']) {
      const names = readdirSync(join(here, 'raw', sub)).sort();
      expect(readdirSync(join(there, 'raw', sub)).sort()).toEqual(names);
      for (const name of names) expect(readFileSync(join(there, 'raw', sub, name)).equals(readFileSync(join(here, 'raw', sub, name))), `${sub}/${name}`).toBe(true);
    }
    for (const name of ['train_masks.csv', 'test_masks.csv']) expect(readFileSync(join(there, 'raw', name), 'utf8')).toBe(readFileSync(join(here, 'raw', name), 'utf8'));
    for (const name of ['imgs_train.npy', 'imgs_mask_train.npy', 'imgs_test.npy', 'imgs_id_test.npy']) {
      expect(readFileSync(join(there, 'data', name)).equals(readFileSync(join(here, 'data', name))), name).toBe(true);
    }
  });

  it('the built CLI, decoding on worker threads, skips a bad frame with a warning naming it', async () => {
    const raw = join(dir, 'workers', 'raw'); // written by the test above
    writeFileSync(join(raw, 'train', '1_3.tif'), 'not a tiff at all');
    writeFileSync(join(raw, 'test', '5.tif'), new Uint8Array(4));
    const out = join(dir, 'workers', 'data-bad');
    const r = spawnSync(process.execPath, [join(__dirname, '../../dist/cli.js'), 'data', '--raw', raw, '--out', out], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stderr).toMatch(/1_3\.tif: does not start with a TIFF byte-order mark.*frame skipped/);
    expect(r.stderr).toMatch(/5\.tif: 4 bytes is too short for a TIFF header.*test frame skipped/);
    const summary = JSON.parse(readFileSync(join(out, 'dataset.json'), 'utf8')) as { train: number; test: number };
    expect([summary.train, summary.test]).toEqual([19, 11]);
  });

  it('reuses a synthetic set with the same parameters and replaces its own with other ones', async () => {
    const raw = join(dir, 'syn');
    const out = join(dir, 'data');
    await data(['--synthetic', '--raw', raw, '--out', out, ...small, '--seed', '3']);
    expect(logged.join('\n')).toMatch(/already holds the synthetic set .*: reusing it/);
    const before = readFileSync(join(raw, 'train', '1_1.tif'));
    await data(['--synthetic', '--raw', raw, '--out', out, '--subjects', '1', '--frames', '2', '--test', '1', '--seed', '4']);
    expect(readdirSync(join(raw, 'train')).sort()).toEqual(['1_1.tif', '1_1_mask.tif', '1_2.tif', '1_2_mask.tif']);
    expect(arrayDifference(readFileSync(join(raw, 'train', '1_1.tif')), before)).not.toBe('equal');
    expect(decodeNpy(readFileSync(join(out, 'imgs_train.npy')), 'x').shape).toEqual([2, 420, 580]);
  });

  it('refuses to write a synthetic set over a folder it did not write', async () => {
    const raw = join(dir, 'foreign');
    mkdirSync(raw);
    writeFileSync(join(raw, 'precious.txt'), 'keep me');
    await expect(data(['--synthetic', '--raw', raw, '--out', join(dir, 'x'), ...small])).rejects.toThrow(/already exists and was not written by --synthetic \(no synthetic.json\)/);
    expect(existsSync(join(raw, 'precious.txt'))).toBe(true);
  });

  it('says what to do when raw/ is missing', async () => {
    const raw = join(dir, 'nothing-here');
    const failure = data(['--raw', raw, '--out', join(dir, 'x')]);
    await expect(failure).rejects.toThrow(DataError);
    await expect(data(['--raw', raw])).rejects.toThrow(/nothing-here: no such folder: download the competition's data .* `wgsl-unet data --synthetic`/);
  });

  it('--synthetic-if-missing generates raw-synthetic/ only when the raw folder is absent', async () => {
    const cwd = process.cwd();
    const work = join(dir, 'cwd');
    mkdirSync(work);
    process.chdir(work);
    try {
      await data(['--synthetic-if-missing', '--raw', 'absent', ...small]);
      expect(logged[0]).toBe('absent/ does not exist: generating a synthetic data set in raw-synthetic/ instead');
      expect(existsSync(join(work, 'raw-synthetic', 'synthetic.json'))).toBe(true);
      expect(JSON.parse(readFileSync(join(work, 'data', 'dataset.json'), 'utf8')).source).toBe('synthetic');
      // With the raw folder present it reads that instead.
      await data(['--synthetic-if-missing', '--raw', 'raw-synthetic', '--out', 'data2']);
      expect(JSON.parse(readFileSync(join(work, 'data2', 'dataset.json'), 'utf8')).source).toBe('raw');
    } finally {
      process.chdir(cwd);
    }
  });

  it('rejects bad options', async () => {
    await expect(data(['--synthetic', '--frames', '0'])).rejects.toThrow(UsageError);
    await expect(data(['--synthetic', '--seed', '1.5'])).rejects.toThrow(/--seed must be a whole number ≥ 0, got 1.5/);
    await expect(data(['--synthetic', '--contradictions', '0.7'])).rejects.toThrow(/--contradictions must be a rate in \[0, 0.5\]/);
    await expect(data(['stray'])).rejects.toThrow(/unexpected argument "stray"/);
    await expect(data(['--frame', '2'])).rejects.toThrow(/unknown option --frame/);
  });

  it('a run that fails leaves the cache set it found, every file of it, and nothing of its own', async () => {
    const raw = join(dir, 'keep-raw');
    const out = join(dir, 'keep-data');
    await data(['--synthetic', '--raw', raw, '--out', out, ...small, '--seed', '5']);
    const files = readdirSync(out).sort();
    expect(files).toEqual(['dataset.json', 'imgs_id_test.npy', 'imgs_mask_train.npy', 'imgs_test.npy', 'imgs_train.npy', 'imgs_train_index.npy']);
    const before = new Map(files.map((f) => [f, readFileSync(join(out, f))]));
    const unchanged = () => {
      expect(readdirSync(out).sort()).toEqual(files);
      for (const f of files) expect(readFileSync(join(out, f)).equals(before.get(f)!), `${f} unchanged`).toBe(true);
    };
    // Another data set (another seed): good training frames and one truncated
    // test frame, so --strict stops at it after reading the training part.
    const other = join(dir, 'keep-raw-2');
    await data(['--synthetic', '--raw', other, '--out', join(dir, 'keep-scratch'), ...small, '--seed', '6']);
    const broken = join(other, 'test', '2.tif');
    const bytes = readFileSync(broken);
    writeFileSync(broken, bytes.subarray(0, bytes.length >> 1)); // the header intact, half the pixels gone
    await expect(data(['--raw', other, '--out', out, '--strict'])).rejects.toThrow(/2\.tif/);
    unchanged();
    // Without --strict, when no test frame can be read at all.
    for (const f of readdirSync(join(other, 'test'))) {
      const b = readFileSync(join(other, 'test', f));
      writeFileSync(join(other, 'test', f), b.subarray(0, b.length >> 1));
    }
    await expect(data(['--raw', other, '--out', out])).rejects.toThrow();
    unchanged();
  });

  it('counts one test frame in the singular', async () => {
    await data(['--synthetic', '--raw', join(dir, 'one-raw'), '--out', join(dir, 'one-data'), '--subjects', '1', '--frames', '1', '--test', '1']);
    expect(logged.join('\n')).toMatch(/1 training frame with masks, 1 test frame\n[\s\S]*1 training and 1 test frame from /);
  });

  it('prints its help', async () => {
    await data(['--help']);
    expect(logged.join('\n')).toMatch(/usage: wgsl-unet data \[options\][\s\S]*imgs_train_index\.npy {2}int32 \(N, 2\)[\s\S]*--synthetic-if-missing/);
  });
});
