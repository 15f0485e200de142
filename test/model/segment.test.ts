/**
 * segmentFrames against the pieces that `predict` and `submit` are made of,
 * on the five Kaggle sample frames and a seeded model: the maps are
 * predict's, the 580 × 420 masks and their run-length fields submit's, and
 * a frame of another size gets its mask at its own size.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataError } from '../../src/data/errors.js';
import { normalize, resizeStack } from '../../src/data/prepare.js';
import { binarize, encodeMasks, fullSizeMask } from '../../src/data/postprocess.js';
import { resizeBilinear } from '../../src/data/resize.js';
import { encodeRle } from '../../src/data/rle.js';
import { decodeTiff, type GrayImage } from '../../src/data/tiff.js';
import type { Gpu } from '../../src/gpu/gpu.js';
import { decodeCheckpoint, loadWeights } from '../../src/model/checkpoint.js';
import { segmentFrames, segmentSettings } from '../../src/model/segment.js';
import { TTA_CHOICES, ensembleMember, predictEnsemble } from '../../src/model/ensemble.js';
import { predictProbabilities } from '../../src/model/trainer.js';
import { type UNet, createUNet } from '../../src/model/unet.js';
import { readFixture } from '../data/fixtures.js';
import { FRAME_COUNT, type FixtureModel, fixtureModel } from '../export/fixture-model.js';
import { testGpu } from '../helpers/gpu.js';
import { readFileSync } from 'node:fs';

const SIZE = 32;

describe('segmentFrames', () => {
  let gpu: Gpu;
  let fixture: FixtureModel;
  let model: UNet;
  let frames: GrayImage[];
  /** A threshold that half the pixels of the fixture's maps exceed, so that masks are neither empty nor full. */
  let median: number;

  beforeAll(async () => {
    gpu = await testGpu();
    fixture = await fixtureModel(gpu, 2, SIZE, 7);
    const ckpt = decodeCheckpoint(new Uint8Array(readFileSync(fixture.checkpointPath)), fixture.checkpointPath);
    model = createUNet(gpu, ckpt.meta.config);
    loadWeights(model, ckpt, fixture.checkpointPath);
    frames = Array.from({ length: FRAME_COUNT }, (_, i) => decodeTiff(readFixture(`1_${i + 1}.tif`), `1_${i + 1}.tif`));
    median = [...fixture.engine].sort((a, b) => a - b)[fixture.engine.length >> 1]!;
  });
  afterAll(() => {
    model?.dispose();
    fixture?.cleanup();
  });

  it("gives predict's maps and, at 580 × 420, the masks and run-length fields submit writes", async () => {
    const settings = segmentSettings(fixture.meta, { threshold: median });
    expect(settings).toEqual({ ...fixture.meta.normalization, antiAlias: false, threshold: median, minArea: 10 });
    const out = await segmentFrames(model, frames, settings, { batchSize: FRAME_COUNT });
    expect(out).toHaveLength(FRAME_COUNT);
    const px = SIZE * SIZE;
    const areas: number[] = [];
    out.forEach((s, i) => {
      // The frames prepared as predict prepares them (the fixture's images), predicted in one batch as the fixture was.
      expect(s.probabilities).toEqual(fixture.engine.subarray(i * px, (i + 1) * px));
      expect([s.width, s.height]).toEqual([580, 420]);
      expect(s.mask).toEqual(fullSizeMask(s.probabilities, SIZE, median, 10));
      expect(s.area).toBe(s.mask.reduce((a, b) => a + b, 0));
      expect(encodeRle(s.mask, 580, 420)).toBe(encodeMasks(fixture.engine, SIZE, median, 10, i, i + 1)[0]);
      areas.push(s.area);
    });
    console.log(`segmentFrames: mask areas ${areas.join(', ')} of 243,600 px at threshold ${median.toFixed(4)}`);
    expect(Math.max(...areas)).toBeGreaterThan(1000);
    expect(Math.min(...areas)).toBeLessThan(243_600 - 1000);

    // The minimum area empties a mask below it, and only that one.
    const smallest = areas.indexOf(Math.min(...areas));
    const emptied = await segmentFrames(model, frames, { ...settings, minArea: areas[smallest]! + 1 }, { batchSize: FRAME_COUNT });
    emptied.forEach((s, i) => expect(s.area).toBe(i === smallest || areas[i]! <= areas[smallest]! ? 0 : areas[i]));
  });

  it('gives each frame the same result in batches of any size, reporting progress', async () => {
    const settings = segmentSettings(fixture.meta, { threshold: median });
    const whole = await segmentFrames(model, frames, settings, { batchSize: FRAME_COUNT });
    const progress: number[][] = [];
    const pairs = await segmentFrames(model, frames, settings, { batchSize: 2, onProgress: (done, total) => progress.push([done, total]) });
    expect(progress).toEqual([[2, 5], [4, 5], [5, 5]]);
    pairs.forEach((s, i) => {
      expect(Math.max(...s.probabilities.map((v, k) => Math.abs(v - whole[i]!.probabilities[k]!)))).toBeLessThanOrEqual(1e-6);
    });
  });

  it("averages test-time views as predict does, counting each view's frames in the progress", async () => {
    const settings = segmentSettings(fixture.meta, { threshold: median });
    const progress: number[][] = [];
    const shifted = await segmentFrames(model, frames.slice(0, 2), settings, { tta: TTA_CHOICES.shift, batchSize: 2, onProgress: (done, total) => progress.push([done, total]) });
    expect(progress).toEqual([[2, 10], [4, 10], [6, 10], [8, 10], [10, 10]]);
    // predict's own path: the frames resized and normalised, through predictEnsemble with the same views.
    const resized = new Uint8Array(2 * SIZE * SIZE);
    frames.slice(0, 2).forEach((f, i) => resized.set(resizeStack(f.data, 1, f.width, f.height, SIZE, { antiAlias: false }), i * SIZE * SIZE));
    const expected = await predictEnsemble([ensembleMember(model, settings, 2)], resized, 2, SIZE, TTA_CHOICES.shift!);
    const plain = await segmentFrames(model, frames.slice(0, 2), settings);
    shifted.forEach((s, i) => {
      expect(s.probabilities).toEqual(expected.subarray(i * SIZE * SIZE, (i + 1) * SIZE * SIZE));
      expect(s.probabilities).not.toEqual(plain[i]!.probabilities);
      expect(s.mask).toEqual(fullSizeMask(s.probabilities, SIZE, median, 10));
    });
  });

  it("makes a frame's mask at the frame's own size", async () => {
    // A 100 × 60 piece of frame 1_2, and the frame turned on its side (420 × 580).
    const source = frames[1]!;
    const piece = new Uint8Array(100 * 60);
    for (let y = 0; y < 60; y++) piece.set(source.data.subarray((200 + y) * 580 + 150, (200 + y) * 580 + 250), y * 100);
    const turned = new Uint8Array(580 * 420);
    for (let y = 0; y < 420; y++) for (let x = 0; x < 580; x++) turned[x * 420 + y] = source.data[y * 580 + x]!;
    const odd = [{ width: 100, height: 60, data: piece }, { width: 420, height: 580, data: turned }];
    const settings = segmentSettings(fixture.meta, { threshold: median, minArea: 0 });
    const out = await segmentFrames(model, odd, settings);
    for (const [i, f] of odd.entries()) {
      const images = normalize(resizeStack(f.data, 1, f.width, f.height, SIZE, { antiAlias: false }), settings.mean, settings.std);
      const probabilities = await predictProbabilities(model, images, 1, SIZE, 1);
      const s = out[i]!;
      expect(Math.max(...s.probabilities.map((v, k) => Math.abs(v - probabilities[k]!)))).toBeLessThanOrEqual(1e-6);
      expect([s.width, s.height, s.mask.length]).toEqual([f.width, f.height, f.width * f.height]);
      expect(s.mask).toEqual(binarize(resizeBilinear(s.probabilities, SIZE, SIZE, f.width, f.height), median, 0));
    }
  });

  it("takes the checkpoint's threshold and minimum area, else the pipeline's, and refuses bad settings and frames", async () => {
    expect(segmentSettings({ ...fixture.meta, antiAlias: true, postprocess: { threshold: 0.3, minArea: 2000 } })).toMatchObject({ antiAlias: true, threshold: 0.3, minArea: 2000 });
    expect(segmentSettings(fixture.meta)).toMatchObject({ antiAlias: false, threshold: 0.5, minArea: 10 });
    expect(segmentSettings({ ...fixture.meta, postprocess: { threshold: 0.3, minArea: 2000 } }, { threshold: undefined })).toMatchObject({ threshold: 0.3, minArea: 2000 });
    expect(segmentSettings({ ...fixture.meta, postprocess: { threshold: 0.3, minArea: 2000 } }, { minArea: 0 })).toMatchObject({ threshold: 0.3, minArea: 0 });
    expect(() => segmentSettings(fixture.meta, { threshold: 1 })).toThrow(new DataError('segment: the threshold must lie between 0 and 1, got 1'));
    expect(() => segmentSettings(fixture.meta, { minArea: 2.5 })).toThrow(new DataError('segment: the minimum area must be a non-negative integer, got 2.5'));
    expect(() => segmentSettings(fixture.meta, { std: 0 })).toThrow(new DataError('segment: the std must be a positive number, got 0'));
    const settings = segmentSettings(fixture.meta);
    await expect(segmentFrames(model, [frames[0]!, { width: 10, height: 10, data: new Uint8Array(99) }], settings)).rejects.toThrow(new DataError('segmentFrames: frame 1 has 99 pixels for 10 × 10'));
    await expect(segmentFrames(model, frames, { ...settings, mean: NaN })).rejects.toThrow(new DataError('segment: the mean must be a finite number, got NaN'));
    await expect(segmentFrames(model, frames, settings, { batchSize: 0 })).rejects.toThrow(new DataError('segmentFrames: the batch size must be a positive integer, got 0'));
    expect(await segmentFrames(model, [], settings)).toEqual([]);
  });
});
