/** The real training masks' statistics the synthetic masks follow, and how they are derived from train_masks.csv. */
import { parseRle } from '../rle.js';
import { DataError } from '../errors.js';
import { H, W } from './geometry.js';

/** Value of a distribution at cumulative probability p. */
export interface QuantilePoint {
  p: number;
  value: number;
}

/** A summary of the competition's training masks, as deriveMaskStatistics computes it. */
export interface MaskStatistics {
  frames: number;
  subjects: number;
  emptyFrames: number;
  /** emptyFrames / frames, rounded to 4 decimals. */
  emptyFraction: number;
  /** Pixels of the non-empty masks (numpy's default linear quantiles, rounded to whole pixels). */
  area: QuantilePoint[];
  /** Mean and standard deviation of the mask centroids (x across, y down, pixels; 0.1 px). */
  centroid: { meanX: number; meanY: number; sdX: number; sdY: number };
  /** Standard deviation across subjects of each subject's mean centroid (subjects with ≥ 3 masks). */
  subjectCentroidSd: { x: number; y: number };
  /** Mean over subjects of the standard deviation of centroids within the subject (subjects with ≥ 3 masks). */
  withinSubjectCentroidSd: { x: number; y: number };
  /** Bounding-box width / height of the non-empty masks (0.01). */
  aspect: QuantilePoint[];
  /** Fraction of each subject's frames whose mask is empty (0.01). */
  subjectEmptyFraction: QuantilePoint[];
}

/** The cumulative probabilities at which the quantiles are kept. */
export const STAT_QUANTILES: readonly number[] = [0, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.975, 0.99, 1];

/**
 * Summarises a train_masks.csv (header `subject,img,pixels`, run-length
 * encoded 580 × 420 masks). Throws DataError naming the line for a malformed row.
 */
export function deriveMaskStatistics(csvText: string, name = 'train_masks.csv'): MaskStatistics {
  const lines = csvText.split(/\r?\n/);
  if (lines[0]?.trim() !== 'subject,img,pixels') {
    throw new DataError(`${name}: the first line is ${JSON.stringify(lines[0]?.slice(0, 60))}, not the header "subject,img,pixels": pass the competition's train_masks.csv`);
  }
  const areas: number[] = [];
  const aspects: number[] = [];
  const cxs: number[] = [];
  const cys: number[] = [];
  const bySubject = new Map<number, { frames: number; empty: number; cx: number[]; cy: number[] }>();
  let frames = 0;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    const where = `${name} line ${i + 1}`;
    const fields = line.split(',');
    const subject = Number(fields[0]);
    if (fields.length !== 3 || !Number.isInteger(subject) || !/^\d+$/.test(fields[1] ?? '')) {
      throw new DataError(`${where}: expected "subject,img,pixels" with whole numbers, got ${JSON.stringify(line.slice(0, 60))}`);
    }
    frames++;
    let entry = bySubject.get(subject);
    if (entry === undefined) bySubject.set(subject, (entry = { frames: 0, empty: 0, cx: [], cy: [] }));
    entry.frames++;
    const runs = parseRle(fields[2]!, W, H, where);
    if (runs.length === 0) {
      entry.empty++;
      continue;
    }
    let area = 0;
    let sumX = 0;
    let sumY = 0;
    let x0 = W;
    let x1 = -1;
    let y0 = H;
    let y1 = -1;
    for (const { start, length } of runs) {
      for (let p = start - 1; p < start - 1 + length; p++) {
        const x = Math.floor(p / H);
        const y = p - x * H;
        area++;
        sumX += x;
        sumY += y;
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
    areas.push(area);
    aspects.push((x1 - x0 + 1) / (y1 - y0 + 1));
    cxs.push(sumX / area);
    cys.push(sumY / area);
    entry.cx.push(sumX / area);
    entry.cy.push(sumY / area);
  }
  if (areas.length === 0) throw new DataError(`${name}: no non-empty masks: pass the competition's train_masks.csv`);
  const round = (v: number, step: number): number => Math.round(v / step) * step;
  const r1 = (v: number): number => Number(round(v, 0.1).toFixed(1));
  const r2 = (v: number): number => Number(round(v, 0.01).toFixed(2));
  const quantiles = (values: number[], rounding: (v: number) => number): QuantilePoint[] => {
    const sorted = [...values].sort((a, b) => a - b);
    return STAT_QUANTILES.map((p) => {
      const at = p * (sorted.length - 1);
      const lo = Math.floor(at);
      const hi = Math.min(lo + 1, sorted.length - 1);
      return { p, value: rounding(sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo)) };
    });
  };
  const subjects = [...bySubject.values()];
  const withMasks = subjects.filter((s) => s.cx.length >= 3);
  const emptyFrames = subjects.reduce((sum, s) => sum + s.empty, 0);
  return {
    frames,
    subjects: subjects.length,
    emptyFrames,
    emptyFraction: Number((emptyFrames / frames).toFixed(4)),
    area: quantiles(areas, Math.round),
    centroid: { meanX: r1(mean(cxs)), meanY: r1(mean(cys)), sdX: r1(sd(cxs)), sdY: r1(sd(cys)) },
    subjectCentroidSd: { x: r1(sd(withMasks.map((s) => mean(s.cx)))), y: r1(sd(withMasks.map((s) => mean(s.cy)))) },
    withinSubjectCentroidSd: { x: r1(mean(withMasks.map((s) => sd(s.cx)))), y: r1(mean(withMasks.map((s) => sd(s.cy)))) },
    aspect: quantiles(aspects, r2),
    subjectEmptyFraction: quantiles(
      subjects.map((s) => s.empty / s.frames),
      r2,
    ),
  };
}

export function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/** Population standard deviation. */
export function sd(values: number[]): number {
  const m = mean(values);
  return Math.sqrt(mean(values.map((v) => (v - m) ** 2)));
}

/**
 * The real training masks, summarised by deriveMaskStatistics from the
 * competition's train_masks.csv (../shared/fixtures/kaggle-sample/, all 5,635
 * masks); regenerate with `npx tsx scripts/derive-mask-stats.ts`. The
 * generator draws mask areas, aspect ratios, positions and how often a subject
 * shows its nerve from these numbers; test/data/synthetic.test.ts checks them
 * against the file.
 */
export const REAL_MASK_STATS: MaskStatistics = {
  frames: 5635,
  subjects: 47,
  emptyFrames: 3312,
  emptyFraction: 0.5878,
  area: [
    { p: 0, value: 2684 }, { p: 0.01, value: 3847 }, { p: 0.025, value: 4298 }, { p: 0.05, value: 4664 }, { p: 0.1, value: 5072 },
    { p: 0.15, value: 5333 }, { p: 0.2, value: 5587 }, { p: 0.25, value: 5806 }, { p: 0.3, value: 6053 }, { p: 0.35, value: 6300 },
    { p: 0.4, value: 6516 }, { p: 0.45, value: 6737 }, { p: 0.5, value: 6976 }, { p: 0.55, value: 7180 }, { p: 0.6, value: 7385 },
    { p: 0.65, value: 7619 }, { p: 0.7, value: 7861 }, { p: 0.75, value: 8120 }, { p: 0.8, value: 8461 }, { p: 0.85, value: 8852 },
    { p: 0.9, value: 9420 }, { p: 0.95, value: 10347 }, { p: 0.975, value: 11097 }, { p: 0.99, value: 12501 }, { p: 1, value: 17439 },
  ],
  centroid: { meanX: 334.3, meanY: 145.1, sdX: 41.9, sdY: 36.3 },
  subjectCentroidSd: { x: 23.4, y: 35.6 },
  withinSubjectCentroidSd: { x: 34.5, y: 18.7 },
  aspect: [
    { p: 0, value: 0.29 }, { p: 0.01, value: 0.45 }, { p: 0.025, value: 0.48 }, { p: 0.05, value: 0.51 }, { p: 0.1, value: 0.55 },
    { p: 0.15, value: 0.58 }, { p: 0.2, value: 0.6 }, { p: 0.25, value: 0.63 }, { p: 0.3, value: 0.65 }, { p: 0.35, value: 0.67 },
    { p: 0.4, value: 0.7 }, { p: 0.45, value: 0.73 }, { p: 0.5, value: 0.76 }, { p: 0.55, value: 0.78 }, { p: 0.6, value: 0.81 },
    { p: 0.65, value: 0.84 }, { p: 0.7, value: 0.88 }, { p: 0.75, value: 0.92 }, { p: 0.8, value: 0.96 }, { p: 0.85, value: 1.02 },
    { p: 0.9, value: 1.09 }, { p: 0.95, value: 1.24 }, { p: 0.975, value: 1.4 }, { p: 0.99, value: 1.55 }, { p: 1, value: 7.22 },
  ],
  subjectEmptyFraction: [
    { p: 0, value: 0.11 }, { p: 0.01, value: 0.12 }, { p: 0.025, value: 0.13 }, { p: 0.05, value: 0.19 }, { p: 0.1, value: 0.24 },
    { p: 0.15, value: 0.37 }, { p: 0.2, value: 0.42 }, { p: 0.25, value: 0.43 }, { p: 0.3, value: 0.46 }, { p: 0.35, value: 0.49 },
    { p: 0.4, value: 0.5 }, { p: 0.45, value: 0.55 }, { p: 0.5, value: 0.59 }, { p: 0.55, value: 0.63 }, { p: 0.6, value: 0.71 },
    { p: 0.65, value: 0.73 }, { p: 0.7, value: 0.74 }, { p: 0.75, value: 0.77 }, { p: 0.8, value: 0.82 }, { p: 0.85, value: 0.83 },
    { p: 0.9, value: 0.85 }, { p: 0.95, value: 0.92 }, { p: 0.975, value: 0.95 }, { p: 0.99, value: 0.97 }, { p: 1, value: 0.98 },
  ],
};
