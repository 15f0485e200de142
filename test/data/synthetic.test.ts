import { beforeAll, describe, expect, it } from 'vitest';
import { DataError } from '../../src/data/errors.js';
import { meanDice } from '../../src/data/metrics.js';
import { decodeRle } from '../../src/data/rle.js';
import {
  deriveMaskStatistics,
  frameHasNerve,
  FRAME_HEIGHT,
  FRAME_WIDTH,
  generateFrame,
  generateMask,
  maskCsvRow,
  REAL_MASK_STATS,
  syntheticLayout,
} from '../../src/data/synthetic.js';
import { decodeTiff, encodeTiffGray8 } from '../../src/data/tiff.js';
import { arrayDifference } from './compare.js';
import { readFixture, readFixtureText } from './fixtures.js';

const W = FRAME_WIDTH;
const H = FRAME_HEIGHT;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return arrayDifference(a, b) === 'equal';
}

function maskArea(mask: Uint8Array): number {
  let n = 0;
  for (const v of mask) if (v !== 0) n++;
  return n;
}

function centroid(mask: Uint8Array): [number, number] {
  let n = 0;
  let sx = 0;
  let sy = 0;
  for (let i = 0; i < mask.length; i++) {
    if (mask[i] === 0) continue;
    n++;
    sx += i % W;
    sy += Math.floor(i / W);
  }
  return [sx / n, sy / n];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

describe('REAL_MASK_STATS', () => {
  it('matches the statistics of the real train_masks.csv', () => {
    const derived = deriveMaskStatistics(readFixtureText('train_masks.csv'));
    expect(derived).toEqual(REAL_MASK_STATS);
    // The figures the fixtures' README states.
    expect(derived.frames).toBe(5635);
    expect(derived.emptyFrames).toBe(3312);
    expect(derived.area[0]!.value).toBe(2684);
    expect(derived.area.at(-1)!.value).toBe(17439);
    expect(derived.area.find((q) => q.p === 0.5)!.value).toBe(6976);
  });

  it('rejects a file that is not train_masks.csv', () => {
    expect(() => deriveMaskStatistics('img,pixels\n1,1 2\n', 'sample_submission.csv')).toThrow(/sample_submission\.csv: the first line .*subject,img,pixels/);
    expect(() => deriveMaskStatistics('subject,img,pixels\n1,1,1 2 3\n')).toThrow(/train_masks\.csv line 2: has 3 numbers/);
  });
});

describe('generateFrame', () => {
  it('gives the same bytes for the same arguments and different bytes otherwise', () => {
    const a = generateFrame(2, 3, 11);
    const b = generateFrame(2, 3, 11);
    expect(sameBytes(a.image, b.image)).toBe(true);
    expect(sameBytes(a.mask, b.mask)).toBe(true);
    expect(sameBytes(a.image, generateFrame(2, 3, 12).image)).toBe(false);
    expect(sameBytes(a.image, generateFrame(2, 4, 11).image)).toBe(false);
    expect(sameBytes(a.image, generateFrame(3, 3, 11).image)).toBe(false);
    // Seeds beyond 32 bits count too.
    expect(sameBytes(generateFrame(1, 1, 2 ** 40).image, generateFrame(1, 1, 0).image)).toBe(false);
  });

  it('is in the competition format: 580 × 420 8-bit frames, 0/255 masks', () => {
    for (const [subject, frame] of [
      [1, 1],
      [5, 7],
      [9, 2],
    ] as const) {
      const { image, mask } = generateFrame(subject, frame, 3);
      expect(image).toBeInstanceOf(Uint8Array);
      expect(image.length).toBe(580 * 420);
      expect(mask.length).toBe(580 * 420);
      expect(mask.every((v) => v === 0 || v === 255)).toBe(true);
      // Looks like the real frames (means 83–100, standard deviations 57–60): neither flat nor washed out.
      const m = mean(Array.from(image));
      const sd = Math.sqrt(mean(Array.from(image, (v) => (v - m) ** 2)));
      expect(m).toBeGreaterThan(45);
      expect(m).toBeLessThan(150);
      expect(sd).toBeGreaterThan(30);
      expect(sd).toBeLessThan(80);
    }
  });

  it('gives the mask that generateMask gives without rendering', () => {
    let withNerve = 0;
    for (let frame = 1; frame <= 6; frame++) {
      const { mask } = generateFrame(4, frame, 5);
      expect(sameBytes(generateMask(4, frame, 5), mask)).toBe(true);
      expect(frameHasNerve(4, frame, 5)).toBe(maskArea(mask) > 0);
      if (maskArea(mask) > 0) withNerve++;
    }
    expect(withNerve).toBeGreaterThan(0);
  });

  it('round-trips through the LZW TIFF writer and reader', () => {
    const { image, mask } = generateFrame(1, 2, 9);
    for (const data of [image, mask]) {
      const decoded = decodeTiff(encodeTiffGray8(W, H, data, { compression: 'lzw' }), 'synthetic.tif');
      expect([decoded.width, decoded.height]).toEqual([W, H]);
      expect(arrayDifference(decoded.data, data)).toBe('equal');
    }
  });

  it('rejects subject and frame numbers below 1 and non-integer seeds', () => {
    expect(() => generateFrame(0, 1, 1)).toThrow(DataError);
    expect(() => generateFrame(1, 0, 1)).toThrow(/frame number must be a whole number ≥ 1, got 0/);
    expect(() => generateFrame(1, 1, 0.5)).toThrow(/seed must be a whole number/);
  });
});

describe('synthetic masks follow the real statistics', () => {
  // 40 subjects × 15 frames, masks only (a few ms each).
  const seed = 2024;
  const masks: { subject: number; area: number; cx: number; cy: number }[] = [];
  let frames = 0;
  beforeAll(() => {
    for (let subject = 1; subject <= 40; subject++) {
      for (let frame = 1; frame <= 15; frame++) {
        const mask = generateMask(subject, frame, seed);
        frames++;
        const area = maskArea(mask);
        if (area === 0) continue;
        const [cx, cy] = centroid(mask);
        masks.push({ subject, area, cx, cy });
      }
    }
  });

  it('has about as many empty masks as the real data (58.8 %)', () => {
    const emptyFraction = 1 - masks.length / frames;
    expect(Math.abs(emptyFraction - REAL_MASK_STATS.emptyFraction)).toBeLessThan(0.07);
  });

  it('has areas in the real range with a median near the real 6,976 px', () => {
    const areas = masks.map((m) => m.area);
    expect(Math.min(...areas)).toBeGreaterThanOrEqual(2684);
    expect(Math.max(...areas)).toBeLessThanOrEqual(17439);
    expect(Math.abs(median(areas) / 6976 - 1)).toBeLessThan(0.1);
  });

  it('puts the nerve where the real ones are', () => {
    const { meanX, meanY, sdX, sdY } = REAL_MASK_STATS.centroid;
    const cx = masks.map((m) => m.cx);
    const cy = masks.map((m) => m.cy);
    expect(Math.abs(mean(cx) - meanX)).toBeLessThan(20);
    expect(Math.abs(mean(cy) - meanY)).toBeLessThan(20);
    const sd = (v: number[]): number => Math.sqrt(mean(v.map((x) => (x - mean(v)) ** 2)));
    expect(sd(cx) / sdX).toBeGreaterThan(0.7);
    expect(sd(cx) / sdX).toBeLessThan(1.3);
    expect(sd(cy) / sdY).toBeGreaterThan(0.7);
    expect(sd(cy) / sdY).toBeLessThan(1.3);
  });

  it('varies between subjects: how often the nerve shows, and where', () => {
    const perSubject = Array.from({ length: 40 }, (_, i) => masks.filter((m) => m.subject === i + 1));
    const shown = perSubject.map((list) => list.length / 15);
    expect(Math.min(...shown)).toBeLessThan(0.2);
    expect(Math.max(...shown)).toBeGreaterThan(0.7);
    const meanY = perSubject.filter((list) => list.length >= 3).map((list) => mean(list.map((m) => m.cy)));
    expect(Math.max(...meanY) - Math.min(...meanY)).toBeGreaterThan(50);
  });
});

describe('synthetic frames are learnable but not thresholdable', () => {
  // 24 frames that show a nerve, from 12 subjects.
  const seed = 77;
  const frames: { image: Uint8Array; mask: Uint8Array }[] = [];
  beforeAll(() => {
    for (let subject = 1; frames.length < 24 && subject <= 60; subject++) {
      let taken = 0;
      for (let frame = 1; frame <= 40 && taken < 2; frame++) {
        if (maskArea(generateMask(subject, frame, seed)) === 0) continue;
        frames.push(generateFrame(subject, frame, seed));
        taken++;
      }
    }
  });

  /** Per-frame histograms of the pixels inside and outside the mask. */
  function histograms(images: Uint8Array[]): { inside: Float64Array; outside: Float64Array }[] {
    return images.map((image, k) => {
      const inside = new Float64Array(256);
      const outside = new Float64Array(256);
      const mask = frames[k]!.mask;
      for (let i = 0; i < image.length; i++) (mask[i] !== 0 ? inside : outside)[image[i]!]!++;
      return { inside, outside };
    });
  }

  /** Mean Dice of "pixel ≥ t" (or "< t") with the best single threshold for all frames, and with the best per frame. */
  function bestThresholdDice(images: Uint8Array[]): { global: number; perFrame: number } {
    const hists = histograms(images);
    const dice = (h: { inside: Float64Array; outside: Float64Array }, t: number, above: boolean): number => {
      let tp = 0;
      let fp = 0;
      let fn = 0;
      for (let v = 0; v < 256; v++) {
        if (v >= t === above) {
          tp += h.inside[v]!;
          fp += h.outside[v]!;
        } else fn += h.inside[v]!;
      }
      return (2 * tp) / (2 * tp + fp + fn);
    };
    let global = 0;
    let perFrame = 0;
    const bestPerFrame = new Float64Array(hists.length);
    for (let t = 0; t <= 256; t++) {
      for (const above of [true, false]) {
        let total = 0;
        hists.forEach((h, k) => {
          const d = dice(h, t, above);
          total += d;
          if (d > bestPerFrame[k]!) bestPerFrame[k] = d;
        });
        global = Math.max(global, total / hists.length);
      }
    }
    perFrame = mean(Array.from(bestPerFrame));
    return { global, perFrame };
  }

  function boxBlur(image: Uint8Array, r: number): Uint8Array {
    const rows = new Float32Array(image.length);
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        let sum = 0;
        let n = 0;
        for (let k = Math.max(0, x - r); k <= Math.min(W - 1, x + r); k++, n++) sum += image[y * W + k]!;
        rows[y * W + x] = sum / n;
      }
    }
    const out = new Uint8Array(image.length);
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        let sum = 0;
        let n = 0;
        for (let k = Math.max(0, y - r); k <= Math.min(H - 1, y + r); k++, n++) sum += rows[k * W + x]!;
        out[y * W + x] = Math.round(sum / n);
      }
    }
    return out;
  }

  it('found enough frames with a nerve', () => {
    expect(frames.length).toBe(24);
  });

  it('no brightness threshold finds the nerve (mean Dice < 0.3), even on smoothed frames', () => {
    const raw = bestThresholdDice(frames.map((f) => f.image));
    expect(raw.global).toBeLessThan(0.3);
    // Even a threshold chosen for each frame with the answer known does poorly.
    expect(raw.perFrame).toBeLessThan(0.3);
    const smooth = bestThresholdDice(frames.map((f) => boxBlur(f.image, 7)));
    expect(smooth.global).toBeLessThan(0.3);
    // For scale: an empty prediction scores 0 on these frames, a perfect one 1.
    expect(meanDice(frames.map(() => new Uint8Array(W * H)), frames.map((f) => f.mask))).toBe(0);
  });

  it('has bright (fascia) and dark (vessels) structures outside the nerve', () => {
    let bright = 0;
    let brightInside = 0;
    let dark = 0;
    let darkInside = 0;
    for (const { image, mask } of frames) {
      for (let i = 0; i < image.length; i++) {
        if (image[i]! >= 220) {
          bright++;
          if (mask[i] !== 0) brightInside++;
        } else if (image[i]! <= 20) {
          dark++;
          if (mask[i] !== 0) darkInside++;
        }
      }
    }
    expect(bright).toBeGreaterThan(1000);
    expect(dark).toBeGreaterThan(1000);
    expect(brightInside / bright).toBeLessThan(0.1);
    expect(darkInside / dark).toBeLessThan(0.1);
  });

  it('differs between subjects in brightness', () => {
    const means = [1, 2, 3, 4, 5, 6].map((subject) => mean(Array.from(generateFrame(subject, 1, seed).image)));
    expect(Math.max(...means) - Math.min(...means)).toBeGreaterThan(12);
  });
});

describe('syntheticLayout', () => {
  it('names training pairs <subject>_<frame>[_mask].tif in order, then test ids 1..m', () => {
    const layout = syntheticLayout({ subjects: 3, framesPerSubject: 4, testFrames: 7, seed: 1 });
    const entries = [...layout.entries()];
    expect(layout.trainCount).toBe(12);
    expect(layout.testCount).toBe(7);
    expect(entries.length).toBe(19);
    expect(entries.slice(0, 5).map((e) => [e.image, e.mask])).toEqual([
      ['train/1_1.tif', 'train/1_1_mask.tif'],
      ['train/1_2.tif', 'train/1_2_mask.tif'],
      ['train/1_3.tif', 'train/1_3_mask.tif'],
      ['train/1_4.tif', 'train/1_4_mask.tif'],
      ['train/2_1.tif', 'train/2_1_mask.tif'],
    ]);
    const test = entries.filter((e) => e.kind === 'test');
    expect(test.map((e) => e.image)).toEqual([1, 2, 3, 4, 5, 6, 7].map((id) => `test/${id}.tif`));
    expect(test.every((e) => e.mask === undefined && e.subject > 3 && e.frame >= 1 && e.frame <= 4)).toBe(true);
    // Test frames come from unseen subjects, each (subject, frame) once.
    expect(new Set(test.map((e) => `${e.subject}_${e.frame}`)).size).toBe(7);
    // The same options give the same layout.
    const again = [...syntheticLayout({ subjects: 3, framesPerSubject: 4, testFrames: 7, seed: 1 }).entries()];
    expect(again.map((e) => [e.subject, e.frame, e.id])).toEqual(entries.map((e) => [e.subject, e.frame, e.id]));
  });

  it('renders entries and writes their mask CSV rows in the competition encoding', () => {
    const layout = syntheticLayout({ subjects: 40, framesPerSubject: 3, testFrames: 2, seed: 5 });
    const entries = [...layout.entries()];
    const withNerve = entries.find((e) => e.kind === 'train' && maskArea(generateMask(e.subject, e.frame, 5)) > 0)!;
    const { mask } = layout.render(withNerve);
    const row = maskCsvRow(withNerve, mask);
    const [subject, img, pixels] = row.split(',');
    expect([Number(subject), Number(img)]).toEqual([withNerve.subject, withNerve.frame]);
    expect(arrayDifference(decodeRle(pixels!, W, H), Uint8Array.from(mask, (v) => (v ? 1 : 0)))).toBe('equal');
    const test = entries.at(-1)!;
    expect(maskCsvRow(test, new Uint8Array(W * H))).toBe(`${test.id},`);
  });

  it('rejects impossible sizes', () => {
    expect(() => syntheticLayout({ subjects: 0, framesPerSubject: 1, testFrames: 1, seed: 1 })).toThrow(/number of subjects must be a whole number ≥ 1, got 0/);
    expect(() => syntheticLayout({ subjects: 1, framesPerSubject: 2.5, testFrames: 1, seed: 1 })).toThrow(DataError);
    expect(() => syntheticLayout({ subjects: 1, framesPerSubject: 1, testFrames: -1, seed: 1 })).toThrow(/test frames/);
  });
});

describe('real fixtures, for comparison', () => {
  it('the real frames have the brightness the synthetic ones aim at', () => {
    const image = decodeTiff(readFixture('1_1.tif'), '1_1.tif').data;
    const m = mean(Array.from(image));
    expect(m).toBeGreaterThan(45);
    expect(m).toBeLessThan(150);
  });
});
