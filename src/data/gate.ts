/**
 * A "nerve present?" gate: a logistic classifier on what the segmentation
 * map says of a frame (its largest probability, its mean, the share of it
 * above 0.3, 0.5 and 0.7), fitted to whether the true mask is empty. A frame
 * the gate scores under its threshold is submitted empty. The gate is fitted
 * on out-of-fold maps (each fold's gate on the other folds' maps, so that its
 * scores stay out of fold too), and its threshold is tuned with the
 * competition's metric together with the mask threshold and minimum area.
 */
import { DataError } from './errors.js';

export const GATE_FEATURES = ['max', 'mean', 'above 0.3', 'above 0.5', 'above 0.7'] as const;

/** The features of each of `count` maps of size × size: count × GATE_FEATURES.length. */
export function gateFeatures(probs: Float32Array, count: number, size: number): Float64Array {
  const px = size * size;
  if (probs.length !== count * px) throw new DataError(`gateFeatures: ${probs.length} values are not ${count} maps of ${size} × ${size}`);
  const k = GATE_FEATURES.length;
  const out = new Float64Array(count * k);
  for (let n = 0; n < count; n++) {
    let max = 0;
    let sum = 0;
    let a3 = 0;
    let a5 = 0;
    let a7 = 0;
    for (let i = n * px; i < (n + 1) * px; i++) {
      const p = probs[i]!;
      if (p > max) max = p;
      sum += p;
      if (p > 0.3) a3++;
      if (p > 0.5) a5++;
      if (p > 0.7) a7++;
    }
    out.set([max, sum / px, a3 / px, a5 / px, a7 / px], n * k);
  }
  return out;
}

export interface Gate {
  /** Standardisation of each feature, then weights (the last is the bias). */
  mean: number[];
  std: number[];
  weights: number[];
}

/**
 * Logistic regression of `labels` (1: the frame shows a nerve) on the rows of
 * `features`, by Newton's method with a small ridge (so that separable data
 * still has an answer).
 */
export function fitGate(features: Float64Array, labels: ArrayLike<number>, ridge = 1e-3): Gate {
  const k = GATE_FEATURES.length;
  const n = labels.length;
  if (features.length !== n * k) throw new DataError(`fitGate: ${features.length} features are not ${n} rows of ${k}`);
  if (n === 0) throw new DataError('fitGate: no frames to fit the gate on');
  const mean = Array.from({ length: k }, (_, j) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += features[i * k + j]!;
    return s / n;
  });
  const std = Array.from({ length: k }, (_, j) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += (features[i * k + j]! - mean[j]!) ** 2;
    return Math.sqrt(s / n) || 1;
  });
  const d = k + 1;
  const x = (i: number, j: number) => (j === k ? 1 : (features[i * k + j]! - mean[j]!) / std[j]!);
  let w = new Array<number>(d).fill(0);
  for (let iter = 0; iter < 50; iter++) {
    const g = new Array<number>(d).fill(0);
    const h = Array.from({ length: d }, () => new Array<number>(d).fill(0));
    for (let i = 0; i < n; i++) {
      let z = 0;
      for (let j = 0; j < d; j++) z += w[j]! * x(i, j);
      const p = 1 / (1 + Math.exp(-z));
      const r = p - labels[i]!;
      const v = p * (1 - p);
      for (let a = 0; a < d; a++) {
        g[a]! += r * x(i, a);
        for (let b = 0; b < d; b++) h[a]![b]! += v * x(i, a) * x(i, b);
      }
    }
    for (let a = 0; a < k; a++) {
      g[a]! += ridge * n * w[a]!;
      h[a]![a]! += ridge * n;
    }
    const step = solve(h, g);
    w = w.map((v, j) => v - step[j]!);
    if (Math.max(...step.map(Math.abs)) < 1e-9) break;
  }
  return { mean, std, weights: w };
}

/** The gate's probability that each frame shows a nerve. */
export function gateScores(gate: Gate, features: Float64Array): Float32Array {
  const k = GATE_FEATURES.length;
  const n = features.length / k;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let z = gate.weights[k]!;
    for (let j = 0; j < k; j++) z += (gate.weights[j]! * (features[i * k + j]! - gate.mean[j]!)) / gate.std[j]!;
    out[i] = 1 / (1 + Math.exp(-z));
  }
  return out;
}

/** Solves a · x = b (a small symmetric positive definite system) by Gaussian elimination with partial pivoting. */
function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]!]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r]![c]!) > Math.abs(m[p]![c]!)) p = r;
    [m[c], m[p]] = [m[p]!, m[c]!];
    const pivot = m[c]![c]! || 1e-12;
    for (let r = c + 1; r < n; r++) {
      const f = m[r]![c]! / pivot;
      for (let j = c; j <= n; j++) m[r]![j]! -= f * m[c]![j]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = m[r]![n]!;
    for (let j = r + 1; j < n; j++) s -= m[r]![j]! * x[j]!;
    x[r] = s / (m[r]![r]! || 1e-12);
  }
  return x;
}
