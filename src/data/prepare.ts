/**
 * The tutorial's pre-processing, from cached 420 × 580 frames to model input:
 * bilinear resize to size × size kept as uint8 (truncated, as numpy's astype
 * does), images normalised with the training part's mean and std, masks
 * divided by 255 (so resized edges are soft labels).
 */
import { DataError } from './errors.js';
import { resizeBilinear64, toUint8Truncate } from './resize.js';

export interface ResizeStackOptions {
  antiAlias?: boolean;
  onProgress?: (done: number, total: number) => void;
}

/** Resizes `count` row-major width × height uint8 frames to size × size (uint8). */
export function resizeStack(frames: Uint8Array, count: number, width: number, height: number, size: number, opts: ResizeStackOptions = {}): Uint8Array {
  if (frames.length !== count * width * height) {
    throw new DataError(`resizeStack: ${frames.length} bytes is not ${count} frames of ${width} × ${height}`);
  }
  const out = new Uint8Array(count * size * size);
  for (let i = 0; i < count; i++) {
    const frame = frames.subarray(i * width * height, (i + 1) * width * height);
    out.set(toUint8Truncate(resizeBilinear64(frame, width, height, size, size, { antiAlias: opts.antiAlias ?? false })), i * size * size);
    if (opts.onProgress && (i % 256 === 255 || i === count - 1)) opts.onProgress(i + 1, count);
  }
  return out;
}

/** Mean and (population) standard deviation of rows [from, to) of size-pixel images, in float64. */
export function meanStd(images: Uint8Array, pixelsPerImage: number, from: number, to: number): { mean: number; std: number } {
  return meanStdOfRows(images, pixelsPerImage, Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i));
}

/** meanStd over the images of `rows` (in the order given), such as a fold's training rows. */
export function meanStdOfRows(images: Uint8Array, pixelsPerImage: number, rows: ArrayLike<number>): { mean: number; std: number } {
  if (rows.length === 0 || pixelsPerImage === 0) throw new DataError('meanStd: no images to compute the normalisation from');
  let sum = 0;
  let sq = 0;
  for (let r = 0; r < rows.length; r++) {
    const a = rows[r]! * pixelsPerImage;
    for (let i = a; i < a + pixelsPerImage; i++) {
      const v = images[i]!;
      sum += v;
      sq += v * v;
    }
  }
  const n = rows.length * pixelsPerImage;
  const mean = sum / n;
  const std = Math.sqrt(Math.max(0, sq / n - mean * mean));
  return { mean, std: std > 0 ? std : 1 };
}

export function normalize(images: Uint8Array, mean: number, std: number): Float32Array {
  const out = new Float32Array(images.length);
  for (let i = 0; i < images.length; i++) out[i] = (images[i]! - mean) / std;
  return out;
}

export function masksToUnit(masks: Uint8Array): Float32Array {
  const out = new Float32Array(masks.length);
  for (let i = 0; i < masks.length; i++) out[i] = masks[i]! / 255;
  return out;
}

/**
 * log(p / (1 − p)) for p the fraction of nerve pixels in `rows` of unit
 * masks (`pixels` each): the starting bias whose sigmoid is p. Refused where
 * those masks hold no nerve, or nothing else, as it is then infinite.
 */
export function priorLogOdds(masks: Float32Array, pixels: number, rows: ArrayLike<number>): number {
  let sum = 0;
  for (let k = 0; k < rows.length; k++) for (let i = rows[k]! * pixels; i < (rows[k]! + 1) * pixels; i++) sum += masks[i]!;
  const p = sum / (rows.length * pixels);
  if (!(p > 0 && p < 1)) throw new DataError(`the training masks are ${p > 0 ? 'nerve everywhere' : 'all empty'}, so no starting bias gives their fraction of nerve pixels`);
  return Math.log(p / (1 - p));
}

/** The images of `rows` one after another (a view when the rows are consecutive). */
export function gatherRows<T extends Uint8Array | Float32Array>(data: T, pixels: number, rows: Int32Array): T {
  const consecutive = rows.every((r, i) => r === rows[0]! + i);
  if (consecutive) return data.subarray(rows[0]! * pixels, (rows[0]! + rows.length) * pixels) as T;
  const out = new (data.constructor as new (n: number) => T)(rows.length * pixels);
  rows.forEach((r, i) => out.set(data.subarray(r * pixels, (r + 1) * pixels), i * pixels));
  return out;
}
