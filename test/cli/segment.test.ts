/**
 * `segment`: a mask file for each frame file, the library's segmentFrames
 * mask as 0/255 at the frame's size, with the checkpoint's threshold and
 * minimum area unless given; bad input refused before anything is written.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
    { name: "the checkpoint's choice", model: () => chosen, args: [], threshold: 0.485, minArea: 500, source: 'chosen on validation data' },
    { name: 'a threshold and minimum area given', model: () => m.dir, args: ['--threshold', '0.49', '--min-area', '0'], threshold: 0.49, minArea: 0, source: 'given' },
  ]) {
    it(`writes each frame's mask with ${c.name}`, async () => {
      const out = join(m.dir, `masks-${c.source.replace(/\W+/g, '-')}`);
      const r = runCli(['segment', '--model', c.model(), ...c.args, '--out', out, ...frameFiles.map((f) => join(KAGGLE_SAMPLE_DIR, f))], m.dir);
      expect(r.errors.filter((l) => !l.startsWith('segmenting:')), r.errors.join('\n')).toEqual([]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`threshold ${c.threshold}, minimum area ${c.minArea} px (${c.source})`);
      const expected = await libraryMasks(c.threshold, c.minArea);
      frameFiles.forEach((f, i) => {
        const written = decodeTiff(new Uint8Array(readFileSync(join(out, f.replace('.tif', '_mask.tif')))), f);
        expect([written.width, written.height]).toEqual([580, 420]);
        expect(written.data).toEqual(expected[i]);
        const area = expected[i]!.reduce((a, v) => a + (v ? 1 : 0), 0);
        expect(r.stdout).toContain(`${join(KAGGLE_SAMPLE_DIR, f)}: 580 × 420, ${area ? `nerve, ${area.toLocaleString('en-US')} px` : 'no nerve'}`);
      });
      expect(expected.some((mask) => mask.includes(255))).toBe(true);
      expect(r.stdout).toContain(`wrote 2 mask(s) in ${out}`);
    });
  }

  it('refuses a file that is not a TIFF, two frames of one name, a bad threshold and no frames, writing nothing', () => {
    const out = join(m.dir, 'refused');
    const frame = join(KAGGLE_SAMPLE_DIR, '1_1.tif');
    const notTiff = join(m.dir, 'notes.tif');
    writeFileSync(notTiff, 'not a frame');
    const cases: [string[], string][] = [
      [[frame, notTiff], `error: ${notTiff}: does not start with a TIFF byte-order mark ('II' or 'MM'): it is not a TIFF file`],
      [[frame, join(m.dir, '1_1.TIF')], `error: ${join(m.dir, '1_1.TIF')} and ${frame} would both write ${join(out, '1_1_mask.tif')}`],
      [['--threshold', '1', frame], 'error: --threshold must be between 0 and 1, got 1'],
      [['--min-area', '-3', frame], 'error: --min-area must be a non-negative integer, got -3'],
      [[], 'error: segment: give one or more frame files (TIFF), e.g. segment --model runs/RUN test/1.tif'],
    ];
    for (const [args, message] of cases) {
      const r = runCli(['segment', '--model', m.dir, '--out', out, ...args], m.dir);
      expect(r.code).not.toBe(0);
      expect(r.errors).toContain(message);
    }
    expect(existsSync(out)).toBe(false);
  });
});
