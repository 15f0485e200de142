import { describe, expect, it } from 'vitest';
import { binarize, choosePostprocess, fullSizeProbabilities } from '../../src/data/postprocess.js';

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
