import { describe, expect, it } from 'vitest';
import { binarize, choosePostprocess, encodeMasks, fullSizeMask, fullSizeProbabilities } from '../../src/data/postprocess.js';
import { formatEncodedSubmission, formatSubmission } from '../../src/data/submission.js';

const FULL = 580 * 420;

describe('post-processing chosen on validation data', () => {
  it('upscales to 580 × 420 (width × height) without transposing', () => {
    const size = 4;
    const prob = new Float32Array(size * size);
    prob[0 * size + 3] = 1; // top-right pixel of the small map
    const full = fullSizeProbabilities(prob, size);
    expect(full.length).toBe(FULL);
    expect(full[0 * 580 + 579]!).toBeGreaterThan(0.9); // top-right of the full frame
    expect(full[419 * 580 + 0]!).toBe(0);
  });

  it('binarize applies the threshold and the minimum area', () => {
    const full = new Float32Array(FULL);
    full.fill(0.8, 0, 50);
    expect(binarize(full, 0.5, 10).reduce((a, b) => a + b, 0)).toBe(50);
    expect(binarize(full, 0.5, 51).reduce((a, b) => a + b, 0)).toBe(0);
    expect(binarize(full, 0.9, 10).reduce((a, b) => a + b, 0)).toBe(0);
  });

  it('picks the pair that maximises mean Dice, and never does worse than predicting nothing', () => {
    const size = 4;
    // Image 0: a nerve on the left half, predicted at 0.6. Image 1: no nerve, a small false blob at 0.45.
    const probs = new Float32Array(2 * size * size);
    const truths = new Uint8Array(2 * FULL);
    for (let y = 0; y < size; y++) for (let x = 0; x < 2; x++) probs[y * size + x] = 0.6;
    probs[size * size + 5] = 0.45;
    const left = fullSizeProbabilities(probs.subarray(0, size * size), size);
    for (let i = 0; i < FULL; i++) truths[i] = left[i]! > 0.5 ? 255 : 0;
    const c = choosePostprocess(probs, size, truths, 2);
    expect(c.emptyScore).toBe(0.5);
    // threshold 0.5 keeps the true nerve exactly and drops the 0.45 blob: Dice 1 on both images.
    expect(c.score).toBe(1);
    expect(c.threshold).toBeGreaterThanOrEqual(0.5);
    expect(c.threshold).toBeLessThan(0.6);
    // A model that is always wrong: the chooser falls back to predicting no nerve.
    const wrong = new Float32Array(2 * size * size).fill(0.9);
    const noNerve = new Uint8Array(2 * FULL);
    const w = choosePostprocess(wrong, size, noNerve, 2);
    expect(w.score).toBe(1);
    expect(w.minArea).toBeGreaterThan(FULL);
  });
});

/** Smooth blobs with values reaching 0 and 1, and a few probabilities exactly at the thresholds. */
function blobMaps(count: number, size: number, seed: number): Float32Array {
  const probs = new Float32Array(count * size * size);
  let s = seed;
  const random = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  for (let n = 0; n < count; n++) {
    const cx = random() * size;
    const cy = random() * size;
    const r = 1 + random() * size * 0.3;
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) probs[(n * size + y) * size + x] = Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (r * r));
    }
    probs[n * size * size + Math.floor(random() * size * size)] = 0.5;
  }
  return probs;
}

describe('the fused post-processing of submit', () => {
  it('gives binarize(fullSizeProbabilities(…)) to the pixel, for odd and even sizes, thresholds and minimum areas', () => {
    for (const size of [5, 37, 48, 96]) {
      const probs = blobMaps(6, size, size);
      for (let n = 0; n < 6; n++) {
        const prob = probs.subarray(n * size * size, (n + 1) * size * size);
        const full = fullSizeProbabilities(prob, size);
        for (const [t, minArea] of [[0.5, 10], [0.3, 0], [0.7, 5000]] as const) {
          const fused = fullSizeMask(prob, size, t, minArea);
          const reference = binarize(full, t, minArea);
          let differing = 0;
          for (let i = 0; i < FULL; i++) if (fused[i] !== reference[i]) differing++;
          expect(differing, `size ${size}, map ${n}, threshold ${t}, min area ${minArea}`).toBe(0);
        }
      }
    }
    expect(() => fullSizeMask(new Float32Array(10), 3, 0.5, 10)).toThrow(/10 probabilities are not a map of 3 × 3/);
  });

  it('encodes the same pixels fields as formatSubmission', () => {
    const size = 24;
    const probs = blobMaps(9, size, 7);
    const masks = Array.from({ length: 9 }, (_, n) => ({ id: 9 - n, mask: binarize(fullSizeProbabilities(probs.subarray(n * size * size, (n + 1) * size * size), size), 0.5, 10) }));
    const fields = encodeMasks(probs, size, 0.5, 10, 0, 9);
    expect(fields.some((f) => f === '')).toBe(false);
    expect(formatEncodedSubmission(fields.map((pixels, n) => ({ id: 9 - n, pixels })))).toBe(formatSubmission(masks, 10));
    expect(encodeMasks(probs, size, 0.5, 10, 3, 5)).toEqual(fields.slice(3, 5));
    expect(() => formatEncodedSubmission([{ id: 2, pixels: '' }, { id: 2, pixels: '1 1' }])).toThrow(/image id 2 appears twice/);
  });
});
