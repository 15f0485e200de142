import { describe, expect, it } from 'vitest';
import { DataError } from '../../src/data/errors.js';
import { batchDice, diceScoreBinary, meanDice } from '../../src/data/metrics.js';

const m = (...values: number[]): Uint8Array => Uint8Array.from(values);

describe('diceScoreBinary', () => {
  it('is 2|X ∩ Y| / (|X| + |Y|) on nonzero pixels', () => {
    // X = {0, 1, 2}, Y = {1, 2, 3, 4}: 2·2 / (3 + 4)
    expect(diceScoreBinary(m(1, 1, 1, 0, 0, 0), m(0, 255, 255, 255, 255, 0))).toBeCloseTo(4 / 7, 15);
    expect(diceScoreBinary(m(1, 0, 1, 0), m(1, 0, 1, 0))).toBe(1);
    expect(diceScoreBinary(m(1, 1, 0, 0), m(0, 0, 1, 1))).toBe(0);
  });

  it('scores 1 when both masks are empty and 0 when only one is', () => {
    expect(diceScoreBinary(m(0, 0, 0), m(0, 0, 0))).toBe(1);
    expect(diceScoreBinary(m(0, 0, 0), m(0, 1, 0))).toBe(0);
    expect(diceScoreBinary(m(1, 0, 0), m(0, 0, 0))).toBe(0);
  });

  it('rejects masks of different sizes', () => {
    expect(() => diceScoreBinary(m(1, 0), m(1, 0, 0))).toThrow(DataError);
  });
});

describe('meanDice', () => {
  it('averages the per-image scores, empty pairs counting 1', () => {
    const preds = [m(1, 1, 0, 0), m(0, 0, 0, 0), m(1, 0, 0, 0)];
    const truths = [m(1, 0, 0, 0), m(0, 0, 0, 0), m(0, 0, 0, 0)];
    // 2·1/(2 + 1) = 2/3, then 1, then 0
    expect(meanDice(preds, truths)).toBeCloseTo((2 / 3 + 1 + 0) / 3, 15);
  });

  it('rejects unequal counts and empty lists', () => {
    expect(() => meanDice([m(1)], [])).toThrow(/1 predictions for 0 true masks/);
    expect(() => meanDice([], [])).toThrow(DataError);
  });
});

describe('batchDice', () => {
  it('is (2 Σ y·p + 1) / (Σ y + Σ p + 1) over the whole batch', () => {
    const prob = Float32Array.from([0.5, 0.25, 1, 0]);
    const target = Float32Array.from([1, 0, 0.5, 0]);
    // Σ y·p = 0.5 + 0 + 0.5 + 0 = 1; Σ y = 1.5; Σ p = 1.75 → (2 + 1) / (1.5 + 1.75 + 1)
    expect(batchDice(prob, target)).toBeCloseTo(3 / 4.25, 7);
    expect(batchDice(prob, target, 0)).toBeCloseTo(2 / 3.25, 7);
  });

  it('is 1 for an all-empty batch with smoothing, and near 1 for a perfect prediction', () => {
    expect(batchDice(new Float32Array(8), new Float32Array(8))).toBe(1);
    const target = Float32Array.from({ length: 100 }, (_, i) => (i % 3 === 0 ? 1 : 0));
    expect(batchDice(target, target)).toBeCloseTo((2 * 34 + 1) / (68 + 1), 12);
  });

  it('rejects unequal lengths', () => {
    expect(() => batchDice(new Float32Array(3), new Float32Array(4))).toThrow(DataError);
  });
});
