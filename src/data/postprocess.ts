/**
 * From the model's probability maps to competition masks: upscale to
 * 580 × 420 (bilinear, pixel centres), threshold, and submit masks smaller
 * than a minimum area as empty. The threshold and the minimum area are
 * chosen on validation data by the competition's metric.
 */
import { DataError } from './errors.js';
import { resizeBilinear } from './resize.js';
import { SUBMISSION_HEIGHT, SUBMISSION_WIDTH } from './submission.js';

const FULL = SUBMISSION_WIDTH * SUBMISSION_HEIGHT;

/** A size × size probability map at the competition's 580 × 420. */
export function fullSizeProbabilities(prob: Float32Array, size: number): Float32Array {
  return resizeBilinear(prob, size, size, SUBMISSION_WIDTH, SUBMISSION_HEIGHT);
}

/** 1 where the probability exceeds the threshold; all 0 when fewer than minArea pixels do. */
export function binarize(full: Float32Array, threshold: number, minArea: number): Uint8Array {
  const mask = new Uint8Array(full.length);
  let area = 0;
  for (let i = 0; i < full.length; i++) if (full[i]! > threshold) {
    mask[i] = 1;
    area++;
  }
  return area < minArea ? mask.fill(0) : mask;
}

export interface PostprocessChoice {
  threshold: number;
  minArea: number;
  /** Mean per-image Dice at 580 × 420 with this choice. */
  score: number;
  /** The same metric with threshold 0.5 and minimum area 10 (the pipeline's defaults). */
  defaultScore: number;
  /** What predicting no nerve anywhere would score. */
  emptyScore: number;
}

export const THRESHOLDS = [0.3, 0.4, 0.5, 0.6, 0.7];
/** Candidate minimum areas; the last, larger than a frame, means "submit every mask empty". */
export const MIN_AREAS = [10, 500, 1000, 2000, 3000, 4000, 5000, 6000, 8000, 10000, 15000, 20000, FULL + 1];

/**
 * Scores every (threshold, minimum area) pair on `count` validation images:
 * probabilities (count × size × size) against true full-size masks
 * (count × 420 × 580, nonzero = nerve), and returns the best pair.
 */
export function choosePostprocess(
  probs: Float32Array,
  size: number,
  truths: Uint8Array,
  count: number,
  thresholds = THRESHOLDS,
  minAreas = MIN_AREAS,
): PostprocessChoice {
  if (probs.length !== count * size * size) throw new DataError(`choosePostprocess: ${probs.length} probabilities are not ${count} maps of ${size} × ${size}`);
  if (truths.length !== count * FULL) throw new DataError(`choosePostprocess: ${truths.length} mask pixels are not ${count} masks of 580 × 420`);
  if (count === 0) throw new DataError('choosePostprocess: no validation images');
  if (!minAreas.includes(10)) minAreas = [...minAreas, 10];
  // score[t][a] summed over images
  const score = thresholds.map(() => new Float64Array(minAreas.length));
  let empty = 0;
  for (let n = 0; n < count; n++) {
    const full = fullSizeProbabilities(probs.subarray(n * size * size, (n + 1) * size * size), size);
    const truth = truths.subarray(n * FULL, (n + 1) * FULL);
    let truthArea = 0;
    for (let i = 0; i < FULL; i++) if (truth[i] !== 0) truthArea++;
    empty += truthArea === 0 ? 1 : 0;
    thresholds.forEach((t, ti) => {
      let area = 0;
      let inter = 0;
      for (let i = 0; i < FULL; i++) {
        if (full[i]! > t) {
          area++;
          if (truth[i] !== 0) inter++;
        }
      }
      minAreas.forEach((minArea, ai) => {
        const kept = area >= minArea;
        const a = kept ? area : 0;
        const i = kept ? inter : 0;
        score[ti]![ai]! += a + truthArea === 0 ? 1 : (2 * i) / (a + truthArea);
      });
    });
  }
  let best = { threshold: thresholds[0]!, minArea: minAreas[0]!, score: -1 };
  thresholds.forEach((t, ti) =>
    minAreas.forEach((a, ai) => {
      const s = score[ti]![ai]! / count;
      if (s > best.score) best = { threshold: t, minArea: a, score: s };
    }),
  );
  const ti = thresholds.indexOf(0.5);
  const defaultScore = ti >= 0 ? score[ti]![minAreas.indexOf(10)]! / count : NaN;
  return { ...best, defaultScore, emptyScore: empty / count };
}
