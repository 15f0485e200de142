import { describe, expect, it } from 'vitest';
import { DataError } from '../../src/data/errors.js';
import { assignFolds, foldSplit, innerFoldOf, nestedFoldSplit } from '../../src/data/folds.js';
import { meanStd, meanStdOfRows, priorLogOdds } from '../../src/data/prepare.js';

describe('subject-wise folds', () => {
  it('puts every subject in one fold, the folds within one subject of each other in size', () => {
    const subjects = Array.from({ length: 47 }, (_, i) => i + 1);
    const folds = assignFolds(subjects, 5, 1);
    expect([...folds.keys()].sort((a, b) => a - b)).toEqual(subjects);
    const sizes = [0, 1, 2, 3, 4].map((f) => [...folds.values()].filter((v) => v === f).length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    expect(assignFolds([...subjects].reverse(), 5, 1)).toEqual(folds);
    expect(assignFolds(subjects, 5, 2)).not.toEqual(folds);
    // Shuffled, not dealt in subject order.
    expect(subjects.slice(0, 10).map((s) => folds.get(s))).not.toEqual([0, 1, 2, 3, 4, 0, 1, 2, 3, 4]);
    expect(() => assignFolds([1, 2, 3], 4, 1)).toThrow(/4 folds need at least 4 subjects; the data has 3/);
    expect(() => assignFolds([1, 2, 3], 1, 1)).toThrow(DataError);
  });

  it('splits rows so that no subject is on both sides, and the folds cover every row once', () => {
    // 9 subjects with 1 … 9 frames each, rows in subject order.
    const index: number[] = [];
    for (let s = 1; s <= 9; s++) for (let f = 1; f <= s; f++) index.push(s * 10, f);
    const count = index.length / 2;
    const seen = new Int32Array(count);
    for (let fold = 1; fold <= 3; fold++) {
      const { trainRows, valRows, valSubjects } = foldSplit(Int32Array.from(index), count, 3, fold, 7);
      expect(trainRows.length + valRows.length).toBe(count);
      const trainSubjects = new Set(Array.from(trainRows, (r) => index[2 * r]));
      expect(valSubjects.length).toBe(3);
      for (const r of valRows) {
        expect(trainSubjects.has(index[2 * r]!)).toBe(false);
        expect(valSubjects).toContain(index[2 * r]);
        seen[r]!++;
      }
    }
    expect(Array.from(seen).every((n) => n === 1)).toBe(true);
    expect(() => foldSplit(Int32Array.from(index), count, 3, 4, 7)).toThrow(/fold must be a whole number in 1 … 3, got 4/);
  });

  it('nests validation: the next fold chooses, the other folds train, the held-out fold is untouched', () => {
    const index: number[] = [];
    for (let s = 1; s <= 9; s++) for (let f = 1; f <= s; f++) index.push(s * 10, f);
    const count = index.length / 2;
    const rows = Int32Array.from(index);
    for (let fold = 1; fold <= 3; fold++) {
      const nested = nestedFoldSplit(rows, count, 3, fold, 7);
      const innerFold = innerFoldOf(fold, 3);
      expect(innerFold).toBe(fold === 3 ? 1 : fold + 1);
      expect(nested.heldOutRows).toEqual(foldSplit(rows, count, 3, fold, 7).valRows);
      expect(nested.valRows).toEqual(foldSplit(rows, count, 3, innerFold, 7).valRows);
      const parts = [nested.trainRows, nested.valRows, nested.heldOutRows].map((r) => new Set(r));
      expect(parts.reduce((n, p) => n + p.size, 0)).toBe(count);
      expect(new Set([...parts[0]!, ...parts[1]!, ...parts[2]!]).size).toBe(count);
      // With 3 folds the training rows are the third fold's exactly.
      const third = [1, 2, 3].find((f) => f !== fold && f !== innerFold)!;
      expect(nested.trainRows).toEqual(foldSplit(rows, count, 3, third, 7).valRows);
    }
    expect(() => nestedFoldSplit(rows, count, 2, 1, 7)).toThrow(/nested validation needs at least 3 folds/);
  });

  it('computes the normalisation over any rows, as over a range', () => {
    const images = Uint8Array.from({ length: 5 * 4 }, (_, i) => (i * 53) % 256);
    expect(meanStdOfRows(images, 4, [1, 2, 3])).toEqual(meanStd(images, 4, 1, 4));
    const picked = meanStdOfRows(images, 4, [0, 4]);
    const values = [...images.subarray(0, 4), ...images.subarray(16, 20)];
    const mean = values.reduce((a, b) => a + b, 0) / 8;
    expect(picked.mean).toBeCloseTo(mean, 12);
    expect(() => meanStdOfRows(images, 4, [])).toThrow(/no images/);
  });

  it('gives the log-odds of the nerve pixels in the training rows only, and refuses masks without both kinds', () => {
    // Three masks of 4 pixels: 1 of 4 nerve, all nerve, half nerve (a soft edge counts by its value).
    const masks = Float32Array.from([1, 0, 0, 0, 1, 1, 1, 1, 0.5, 0.5, 1, 0]);
    const p = 3 / 8;
    expect(priorLogOdds(masks, 4, [0, 2])).toBeCloseTo(Math.log(p / (1 - p)), 12);
    expect(1 / (1 + Math.exp(-priorLogOdds(masks, 4, Int32Array.from([0, 2]))))).toBeCloseTo(p, 12);
    expect(() => priorLogOdds(masks, 4, [1])).toThrow(/nerve everywhere/);
    expect(() => priorLogOdds(new Float32Array(8), 4, [0, 1])).toThrow(/all empty/);
  });
});
