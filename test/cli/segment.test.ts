/**
 * `segment`: a mask file for each frame file (or each frame of a folder),
 * the library's segmentFrames mask as 0/255 at the frame's size, and
 * masks.csv with each one's area and run-length encoding, with the
 * checkpoint's threshold and minimum area unless given; a file that is not
 * a frame skipped with a warning (or, with --strict, stopping the run); bad
 * options refused before anything is written.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeNpy, encodeNpy } from '../../src/data/npy.js';
import { encodeRle } from '../../src/data/rle.js';
import { decodeTiff } from '../../src/data/tiff.js';
import { encodeCheckpointTensors } from '../../src/model/checkpoint.js';
import { segmentFrames, segmentSettings } from '../../src/model/segment.js';
import { createUNet } from '../../src/model/unet.js';
import { KAGGLE_SAMPLE_DIR, readFixture } from '../data/fixtures.js';
import { type FixtureModel, fixtureModel, runCli } from '../export/fixture-model.js';
import { testGpu } from '../helpers/gpu.js';

const frameFiles = ['1_1.tif', '1_4.tif'];

describe('segment', () => {
  let m: FixtureModel;
  /** A checkpoint of the same weights that records a post-processing choice. */
  let chosen: string;
  beforeAll(async () => {
    m = await fixtureModel(await testGpu(), 2, 32, 7);
    chosen = join(m.dir, 'chosen.safetensors');
    writeFileSync(chosen, encodeCheckpointTensors(m.weights, { ...m.meta, postprocess: { threshold: 0.485, minArea: 500 } }));
  });
  afterAll(() => m?.cleanup());

  /** The library's masks for the frame files, as 0/255. */
  const libraryMasks = async (threshold: number, minArea: number) => {
    const model = createUNet(await testGpu(), m.meta.config);
    try {
      model.parameters.load(new Map([...m.weights].map(([k, t]) => [k, t.data])));
      const frames = frameFiles.map((f) => decodeTiff(readFixture(f), f));
      return (await segmentFrames(model, frames, segmentSettings(m.meta, { threshold, minArea }))).map((s) => s.mask.map((v) => v * 255));
    } finally {
      model.dispose();
    }
  };

  for (const c of [
    { name: "the checkpoint's choice", model: () => chosen, args: [], threshold: 0.485, minArea: 500, source: 'chosen on validation data (CHOSEN)' },
    { name: 'a threshold and minimum area given', model: () => m.dir, args: ['--threshold', '0.49', '--min-area', '0'], threshold: 0.49, minArea: 0, source: 'given' },
  ]) {
    it(`writes each frame's mask and masks.csv with ${c.name}`, async () => {
      const out = join(m.dir, `masks-${c.source.replace(/\W+/g, '-')}`);
      const r = runCli(['segment', '--model', c.model(), ...c.args, '--out', out, ...frameFiles.map((f) => join(KAGGLE_SAMPLE_DIR, f))], m.dir);
      expect(r.errors.filter((l) => !l.startsWith('segmenting:')), r.errors.join('\n')).toEqual([]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`threshold ${c.threshold}, minimum area ${c.minArea} px (${c.source.replace('CHOSEN', chosen)})`);
      const expected = await libraryMasks(c.threshold, c.minArea);
      const csv = readFileSync(join(out, 'masks.csv'), 'utf8').split('\n');
      expect(csv[0]).toBe('frame,width,height,area,pixels');
      expect(csv).toHaveLength(frameFiles.length + 2);
      expect(csv[frameFiles.length + 1]).toBe('');
      frameFiles.forEach((f, i) => {
        const written = decodeTiff(new Uint8Array(readFileSync(join(out, f.replace('.tif', '_mask.tif')))), f);
        expect([written.width, written.height]).toEqual([580, 420]);
        expect(written.data).toEqual(expected[i]);
        const mask = expected[i]!.map((v) => v / 255);
        const area = mask.reduce((a, v) => a + v, 0);
        expect(csv[i + 1]).toBe(`${join(KAGGLE_SAMPLE_DIR, f)},580,420,${area},${encodeRle(mask, 580, 420)}`);
      });
      expect(expected.some((mask) => mask.includes(255))).toBe(true);
      const nerves = expected.filter((mask) => mask.includes(255)).length;
      expect(r.stdout).toContain(`wrote 2 mask(s) in ${out}, ${nerves} with a nerve`);
    });
  }

  it("takes a folder's frames, leaving its masks and other files out; skips a file that is not a frame with a warning, or stops at it with --strict", () => {
    const out = join(m.dir, 'folder');
    const notTiff = join(m.dir, 'notes.tif');
    writeFileSync(notTiff, 'not a frame');
    const r = runCli(['segment', '--model', m.dir, '--out', out, KAGGLE_SAMPLE_DIR, notTiff], m.dir);
    expect(r.code).toBe(0);
    expect(r.errors).toContain(`warning: skipped: ${notTiff}: does not start with a TIFF byte-order mark ('II' or 'MM'): it is not a TIFF file`);
    const frames = readFileSync(join(out, 'masks.csv'), 'utf8').trim().split('\n').slice(1).map((row) => row.split(',')[0]);
    expect(frames).toEqual([1, 2, 3, 4, 5].map((n) => join(KAGGLE_SAMPLE_DIR, `1_${n}.tif`)));
    expect(readdirSync(out).sort()).toEqual(['1_1_mask.tif', '1_2_mask.tif', '1_3_mask.tif', '1_4_mask.tif', '1_5_mask.tif', 'masks.csv']);
    expect(r.stdout).toContain('skipped 1 file(s) that are not readable frames (warnings above)');

    const strict = runCli(['segment', '--model', m.dir, '--out', join(m.dir, 'strict'), '--strict', notTiff, join(KAGGLE_SAMPLE_DIR, '1_1.tif')], m.dir);
    expect(strict.code).not.toBe(0);
    expect(strict.errors).toContain(`error: ${notTiff}: does not start with a TIFF byte-order mark ('II' or 'MM'): it is not a TIFF file`);
    expect(existsSync(join(m.dir, 'strict', 'masks.csv'))).toBe(false);
  });

  it('gives, for an ensemble with test-time views, the masks that predict and submit give', async () => {
    // The five sample frames as a test cache (ids 1 … 5), and a second model beside the first.
    const other = await fixtureModel(await testGpu(), 2, 32, 3);
    try {
      const data = join(m.dir, 'test-cache');
      const frames = [1, 2, 3, 4, 5].map((n) => decodeTiff(readFixture(`1_${n}.tif`), `1_${n}.tif`));
      const stack = new Uint8Array(5 * 580 * 420);
      frames.forEach((f, i) => stack.set(f.data, i * 580 * 420));
      mkdirSync(data);
      writeFileSync(join(data, 'imgs_test.npy'), encodeNpy(stack, [5, 420, 580]));
      writeFileSync(join(data, 'imgs_id_test.npy'), encodeNpy(Int32Array.from([1, 2, 3, 4, 5]), [5]));
      const models = `${m.checkpointPath},${other.checkpointPath}`;
      const predicted = runCli(['predict', '--model', models, '--tta', 'shift', '--data', data, '--out', join(m.dir, 'predicted')], m.dir);
      expect(predicted.code, predicted.errors.join('\n')).toBe(0);
      // A threshold half the averaged maps' pixels exceed, so that the masks hold nerve and background.
      const maps = decodeNpy(new Uint8Array(readFileSync(join(m.dir, 'predicted', 'imgs_mask_test.npy'))), 'maps').data as Float32Array;
      const threshold = Number([...maps].sort((a, b) => a - b)[maps.length >> 1]!.toFixed(4));
      const post = ['--threshold', String(threshold), '--min-area', '10'];
      const submission = join(m.dir, 'predicted', 'submission.csv');
      const submitted = runCli(['submit', '--model', m.checkpointPath, '--masks', join(m.dir, 'predicted', 'imgs_mask_test.npy'), '--data', data, '--out', submission, ...post], m.dir);
      expect(submitted.code, submitted.errors.join('\n')).toBe(0);

      const out = join(m.dir, 'ensemble-masks');
      const r = runCli(['segment', '--model', models, '--tta', 'shift', '--out', out, ...post, ...[1, 2, 3, 4, 5].map((n) => join(KAGGLE_SAMPLE_DIR, `1_${n}.tif`))], m.dir);
      expect(r.code, r.errors.join('\n')).toBe(0);
      expect(r.stdout).toContain('averaging 2 model(s) × 5 view(s) of each frame (identity, left, right, up, down)');
      const segmented = readFileSync(join(out, 'masks.csv'), 'utf8').trim().split('\n').slice(1).map((row) => row.split(',')[4]);
      const rows = readFileSync(submission, 'utf8').trim().split('\n').slice(1).map((row) => row.split(','));
      expect(rows.map(([id]) => id)).toEqual(['1', '2', '3', '4', '5']);
      expect(segmented).toEqual(rows.map(([, pixels]) => pixels));
      expect(segmented.filter((p) => p !== '').length).toBeGreaterThan(0);
      console.log(`segment = predict + submit for 2 models × 5 views at threshold ${threshold}: ${segmented.map((p) => (p ? p.split(' ').length / 2 : 0)).join(', ')} runs`);
    } finally {
      other.cleanup();
    }
  });

  it('segments a folder of more frames than it reads at a time (256), each mask where its frame is', () => {
    // 260 links to the five sample frames in turn: frame n is 1_(n mod 5 + 1).
    const folder = join(m.dir, 'many');
    mkdirSync(folder);
    for (let n = 0; n < 260; n++) symlinkSync(join(KAGGLE_SAMPLE_DIR, `1_${(n % 5) + 1}.tif`), join(folder, `${n}.tif`));
    const out = join(m.dir, 'many-masks');
    const r = runCli(['segment', '--model', m.dir, '--out', out, '--batch-size', '7', folder], m.dir);
    expect(r.code, r.errors.join('\n')).toBe(0);
    const rows = readFileSync(join(out, 'masks.csv'), 'utf8').trim().split('\n').slice(1);
    expect(rows.map((row) => row.split(',')[0])).toEqual(Array.from({ length: 260 }, (_, n) => join(folder, `${n}.tif`)));
    const masks = Array.from({ length: 5 }, (_, k) => readFileSync(join(out, `${k}_mask.tif`)));
    expect(new Set(masks.map((b) => b.toString('base64'))).size).toBe(5);
    for (let n = 5; n < 260; n++) {
      expect(readFileSync(join(out, `${n}_mask.tif`)).equals(masks[n % 5]!), `${n}_mask.tif`).toBe(true);
      expect(rows[n]!.split(',').slice(1)).toEqual(rows[n % 5]!.split(',').slice(1));
    }
  });

  it('refuses two frames of one name, a bad threshold or minimum area, a folder without frames and no frames, writing nothing', () => {
    const out = join(m.dir, 'refused');
    const frame = join(KAGGLE_SAMPLE_DIR, '1_1.tif');
    const empty = join(m.dir, 'empty');
    mkdirSync(empty);
    const cases: [string[], string][] = [
      [[frame, join(m.dir, '1_1.TIF')], `error: ${join(m.dir, '1_1.TIF')} and ${frame} would both write ${join(out, '1_1_mask.tif')}`],
      [['--threshold', '1', frame], 'error: --threshold must be between 0 and 1, got 1'],
      [['--min-area', '-3', frame], 'error: --min-area must be a non-negative integer, got -3'],
      [[empty], `error: ${empty} holds no frame files (.tif, other than *_mask.tif)`],
      [[], 'error: segment: give frame files (TIFF) or folders of them, e.g. segment --model runs/RUN raw/test'],
    ];
    for (const [args, message] of cases) {
      const r = runCli(['segment', '--model', m.dir, '--out', out, ...args], m.dir);
      expect(r.code).not.toBe(0);
      expect(r.errors).toContain(message);
    }
    expect(existsSync(out)).toBe(false);
  });
});
