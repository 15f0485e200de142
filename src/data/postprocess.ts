/**
 * From the model's probability maps to competition masks: upscale to
 * 580 × 420 (bilinear, pixel centres), threshold, and submit masks smaller
 * than a minimum area as empty. The threshold and the minimum area are
 * chosen on validation data by the competition's metric.
 */
import { DataError } from './errors.js';
import { type Taps, bilinearTaps, resizeBilinear, valueRange } from './resize.js';
import { encodeRle } from './rle.js';
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

const tapsBySize = new Map<number, { rows: Taps; columns: Taps }>();

/**
 * binarize(fullSizeProbabilities(prob, size), threshold, minArea) in one pass,
 * to the same mask, without the full-size map: the work of `submit`. Each
 * row's two source lines are weighted once, and a pixel adds the same four
 * products in the same order as resizeBilinear, so every value is the same.
 */
export function fullSizeMask(prob: Float32Array, size: number, threshold: number, minArea: number, out = new Uint8Array(FULL)): Uint8Array {
  if (prob.length !== size * size) throw new DataError(`fullSizeMask: ${prob.length} probabilities are not a map of ${size} × ${size}`);
  if (out.length !== FULL) throw new DataError(`fullSizeMask: the output has ${out.length} pixels, not 580 × 420`);
  let taps = tapsBySize.get(size);
  if (!taps) tapsBySize.set(size, (taps = { rows: bilinearTaps(size, SUBMISSION_HEIGHT), columns: bilinearTaps(size, SUBMISSION_WIDTH) }));
  const { rows, columns } = taps;
  const [low, high] = valueRange(prob);
  const top = new Float64Array(size);
  const bottom = new Float64Array(size);
  let area = 0;
  for (let y = 0; y < SUBMISSION_HEIGHT; y++) {
    const t = rows.low[y]! * size;
    const b = rows.high[y]! * size;
    const wTop = rows.lowWeight[y]!;
    const wBottom = rows.highWeight[y]!;
    for (let c = 0; c < size; c++) {
      top[c] = prob[t + c]! * wTop;
      bottom[c] = prob[b + c]! * wBottom;
    }
    const row = y * SUBMISSION_WIDTH;
    for (let x = 0; x < SUBMISSION_WIDTH; x++) {
      const left = columns.low[x]!;
      const right = columns.high[x]!;
      const wLeft = columns.lowWeight[x]!;
      const wRight = columns.highWeight[x]!;
      let value = 0;
      value += top[left]! * wLeft;
      value += top[right]! * wRight;
      value += bottom[left]! * wLeft;
      value += bottom[right]! * wRight;
      value = value < low ? low : value > high ? high : value;
      // The full-size map is float32: compare the value it would hold.
      const on = Math.fround(value) > threshold ? 1 : 0;
      out[row + x] = on;
      area += on;
    }
  }
  return area < minArea ? out.fill(0) : out;
}

/**
 * The submission's pixels field (run-length encoding, empty for no nerve) of
 * maps from … to − 1 of `probs` (count × size × size): the post-processing of
 * `submit`, which its worker threads run on shares of the maps.
 */
export function encodeMasks(probs: Float32Array, size: number, threshold: number, minArea: number, from: number, to: number): string[] {
  const mask = new Uint8Array(FULL);
  const fields: string[] = [];
  for (let n = from; n < to; n++) {
    fullSizeMask(probs.subarray(n * size * size, (n + 1) * size * size), size, threshold, minArea, mask);
    fields.push(encodeRle(mask, SUBMISSION_WIDTH, SUBMISSION_HEIGHT));
  }
  return fields;
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
  /** The metric of every pair: table[t][a] for thresholds[t] and minAreas[a]. */
  thresholds: number[];
  minAreas: number[];
  table: number[][];
  /** With gate scores: the best gate threshold (frames scored under it submitted empty) with the best pair under it. */
  gate?: { threshold: number; maskThreshold: number; minArea: number; score: number };
}

/** Candidate gate thresholds: 0 gates nothing. */
export const GATE_THRESHOLDS = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

/** Candidate mask thresholds: averaged maps (ensembles, test-time views) are less sure than one model's, and their best can lie below 0.3. */
export const THRESHOLDS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7];
/** Candidate minimum areas; the last, larger than a frame, means "submit every mask empty". */
export const MIN_AREAS = [10, 500, 1000, 2000, 3000, 4000, 5000, 6000, 8000, 10000, 15000, 20000, FULL + 1];

/**
 * Scores every (threshold, minimum area) pair on `count` validation images:
 * probabilities (count × size × size) against true full-size masks
 * (count × 420 × 580, nonzero = nerve), and returns the best pair; with
 * `gateScores` (a "nerve present?" probability per image, src/data/gate.ts)
 * also the best gate threshold and pair together.
 */
export function choosePostprocess(
  probs: Float32Array,
  size: number,
  truths: Uint8Array,
  count: number,
  thresholds = THRESHOLDS,
  minAreas = MIN_AREAS,
  gateScores?: Float32Array,
): PostprocessChoice {
  if (gateScores && gateScores.length !== count) throw new DataError(`choosePostprocess: ${gateScores.length} gate scores for ${count} images`);
  if (probs.length !== count * size * size) throw new DataError(`choosePostprocess: ${probs.length} probabilities are not ${count} maps of ${size} × ${size}`);
  if (truths.length !== count * FULL) throw new DataError(`choosePostprocess: ${truths.length} mask pixels are not ${count} masks of 580 × 420`);
  if (count === 0) throw new DataError('choosePostprocess: no validation images');
  if (!minAreas.includes(10)) minAreas = [...minAreas, 10];
  // Each image's predicted area and overlap with the truth at each threshold: every choice is scored from these.
  const T = thresholds.length;
  const area = new Float64Array(count * T);
  const inter = new Float64Array(count * T);
  const truthArea = new Float64Array(count);
  for (let n = 0; n < count; n++) {
    const full = fullSizeProbabilities(probs.subarray(n * size * size, (n + 1) * size * size), size);
    const truth = truths.subarray(n * FULL, (n + 1) * FULL);
    for (let i = 0; i < FULL; i++) if (truth[i] !== 0) truthArea[n]!++;
    thresholds.forEach((t, ti) => {
      let a = 0;
      let both = 0;
      for (let i = 0; i < FULL; i++) {
        if (full[i]! > t) {
          a++;
          if (truth[i] !== 0) both++;
        }
      }
      area[n * T + ti] = a;
      inter[n * T + ti] = both;
    });
  }
  /** Mean Dice with threshold ti and minArea, frames whose gate score is under `gate` submitted empty. */
  const meanDice = (ti: number, minArea: number, gate = 0): number => {
    let total = 0;
    for (let n = 0; n < count; n++) {
      const kept = (gateScores === undefined || gateScores[n]! >= gate) && area[n * T + ti]! >= minArea;
      const a = kept ? area[n * T + ti]! : 0;
      const i = kept ? inter[n * T + ti]! : 0;
      total += a + truthArea[n]! === 0 ? 1 : (2 * i) / (a + truthArea[n]!);
    }
    return total / count;
  };
  const table = thresholds.map((_, ti) => minAreas.map((minArea) => meanDice(ti, minArea)));
  let best = { threshold: thresholds[0]!, minArea: minAreas[0]!, score: -1 };
  thresholds.forEach((t, ti) =>
    minAreas.forEach((a, ai) => {
      const s = table[ti]![ai]!;
      if (s > best.score) best = { threshold: t, minArea: a, score: s };
    }),
  );
  const ti = thresholds.indexOf(0.5);
  const defaultScore = ti >= 0 ? table[ti]![minAreas.indexOf(10)]! : NaN;
  let gate: PostprocessChoice['gate'];
  if (gateScores) {
    for (const g of GATE_THRESHOLDS) {
      thresholds.forEach((t, ti) =>
        minAreas.forEach((minArea) => {
          const score = meanDice(ti, minArea, g);
          if (!gate || score > gate.score) gate = { threshold: g, maskThreshold: t, minArea, score };
        }),
      );
    }
  }
  let empty = 0;
  for (const a of truthArea) if (a === 0) empty++;
  return { ...best, defaultScore, emptyScore: empty / count, thresholds: [...thresholds], minAreas: [...minAreas], table, ...(gate ? { gate } : {}) };
}
