/**
 * Bilinear resizing as the tutorial's pre-processing does it with
 * scikit-image's resize(image, shape, order=1, preserve_range=True), which
 * calls scipy.ndimage: an optional Gaussian blur (gaussian_filter, truncate
 * 4.0) and then zoom(order=1, grid_mode=True). The arithmetic follows scipy's
 * step for step (weights, summation order, float64 intermediates, clipping to
 * the input's range), so the results equal scipy's bit for bit (see
 * test/data/resize.test.ts) and truncating them to uint8 gives numpy's integers.
 *
 * Edges: sample positions are clamped to the outermost pixel centres
 * (skimage mode 'edge'); the blur mirrors about the edge pixels (skimage's
 * default mode 'reflect', d c b | a b c d | c b a). When an axis shrinks, no
 * sample position lies outside the pixel centres, so for the tutorial's
 * 580 × 420 → 96 × 96 this is exactly skimage's default mode; only growing
 * axes see the clamp (the default mode would mirror there instead).
 */
import { DataError } from './errors.js';
import { expCorrectlyRounded } from './exp-correctly-rounded.js';

export interface ResizeOptions {
  /**
   * Blur each shrinking axis with a Gaussian of sigma (in/out − 1)/2 before
   * sampling, as scikit-image ≥ 0.19 does by default when downsampling.
   * Off by default, as in the 2017 scikit-image the tutorial was written for.
   */
  antiAlias?: boolean;
}

/** Resizes a row-major srcW × srcH image to dstW × dstH; see the module comment. */
export function resizeBilinear(
  src: Uint8Array | Float32Array,
  srcW: number,
  srcH: number,
  dstW: number,
  dstH: number,
  opts?: ResizeOptions,
): Float32Array {
  return Float32Array.from(resizeBilinear64(src, srcW, srcH, dstW, dstH, opts));
}

/**
 * resizeBilinear with float64 results, as skimage returns them for uint8
 * input: truncate these, not the float32 ones, to reproduce numpy's uint8
 * values exactly (rounding to float32 can carry 99.99999999 up to 100).
 */
export function resizeBilinear64(
  src: Uint8Array | Float32Array,
  srcW: number,
  srcH: number,
  dstW: number,
  dstH: number,
  opts?: ResizeOptions,
): Float64Array {
  for (const [what, n] of [['srcW', srcW], ['srcH', srcH], ['dstW', dstW], ['dstH', dstH]] as const) {
    if (!Number.isInteger(n) || n < 1) throw new DataError(`resizeBilinear: ${what} is ${n}; sizes must be positive integers`);
  }
  if (src.length !== srcW * srcH) {
    throw new DataError(`resizeBilinear: the source has ${src.length} values but ${srcW} × ${srcH} needs ${srcW * srcH}`);
  }
  // skimage keeps float32 input in float32 between steps and turns anything else into float64.
  const Storage = src instanceof Float32Array ? Float32Array : Float64Array;
  let image: Float32Array | Float64Array = Storage.from(src);
  const rows = bilinearTaps(srcH, dstH);
  const columns = bilinearTaps(srcW, dstW);
  if (opts?.antiAlias) {
    // Blurred values are needed only where the taps fall, which saves most of
    // the work when shrinking; each one is computed exactly as in a full pass.
    const sampledRows = sampledIndices(rows);
    const sampledColumns = sampledIndices(columns);
    const allColumns = Array.from({ length: srcW }, (_, x) => x);
    const sigmaY = Math.max(0, (srcH / dstH - 1) / 2);
    const sigmaX = Math.max(0, (srcW / dstW - 1) / 2);
    // scipy blurs along axis 0 (down the columns) first; the horizontal pass then needs whole blurred rows.
    image = gaussianBlurAxis(image, srcW, srcH, 'vertical', sigmaY, sampledRows, allColumns);
    image = gaussianBlurAxis(image, srcW, srcH, 'horizontal', sigmaX, sampledRows, sampledColumns);
  }

  const [low, high] = valueRange(src);
  const out = new Float64Array(dstW * dstH);
  for (let y = 0; y < dstH; y++) {
    const top = rows.low[y]! * srcW;
    const bottom = rows.high[y]! * srcW;
    const wTop = rows.lowWeight[y]!;
    const wBottom = rows.highWeight[y]!;
    for (let x = 0; x < dstW; x++) {
      const left = columns.low[x]!;
      const right = columns.high[x]!;
      const wLeft = columns.lowWeight[x]!;
      const wRight = columns.highWeight[x]!;
      // scipy's order: each corner times the row weight, then the column weight, summed from 0.
      let value = 0;
      value += image[top + left]! * wTop * wLeft;
      value += image[top + right]! * wTop * wRight;
      value += image[bottom + left]! * wBottom * wLeft;
      value += image[bottom + right]! * wBottom * wRight;
      // skimage clips to the input's range, which removes rounding just outside it.
      out[y * dstW + x] = value < low ? low : value > high ? high : value;
    }
  }
  return out;
}

/**
 * Truncates toward zero into 0..255, as numpy's astype(uint8) (or assigning
 * into a uint8 array) does to the tutorial's resized values; values outside
 * 0..255 are clamped and NaN becomes 0.
 */
export function toUint8Truncate(values: Float32Array | Float64Array): Uint8Array {
  const out = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    out[i] = v >= 255 ? 255 : v > 0 ? Math.trunc(v) : 0;
  }
  return out;
}

export interface Taps {
  low: Int32Array;
  high: Int32Array;
  lowWeight: Float64Array;
  highWeight: Float64Array;
}

/** The two source pixels and weights behind each output pixel along one axis. */
export function bilinearTaps(inSize: number, outSize: number): Taps {
  const taps: Taps = {
    low: new Int32Array(outSize),
    high: new Int32Array(outSize),
    lowWeight: new Float64Array(outSize),
    highWeight: new Float64Array(outSize),
  };
  const scale = inSize / outSize;
  for (let k = 0; k < outSize; k++) {
    // Pixel-centre mapping; outside the first and last pixel centres both taps
    // land on the edge pixel (scipy clamps the indices, not the position).
    const position = (k + 0.5) * scale - 0.5;
    const low = Math.floor(position);
    const lowWeight = 1 - (position - low);
    taps.low[k] = Math.min(Math.max(low, 0), inSize - 1);
    taps.high[k] = Math.min(Math.max(low + 1, 0), inSize - 1);
    taps.lowWeight[k] = lowWeight;
    taps.highWeight[k] = 1 - lowWeight; // scipy makes the weights sum to exactly 1 this way
  }
  return taps;
}

/** The source indices that some tap reads, in ascending order. */
function sampledIndices(taps: Taps): number[] {
  return [...new Set([...taps.low, ...taps.high])].sort((a, b) => a - b);
}

/** Smallest and largest value, ignoring NaN (the range skimage clips to). */
export function valueRange(values: Uint8Array | Float32Array): [number, number] {
  let low = Infinity;
  let high = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v < low) low = v;
    if (v > high) high = v;
  }
  return low <= high ? [low, high] : [-Infinity, Infinity];
}

const weightsBySigma = new Map<number, Float64Array>();

/** Normalised Gaussian weights for offsets 0..radius, computed as scipy does (and kept, since few sigmas occur). */
function gaussianWeights(sigma: number): Float64Array {
  const known = weightsBySigma.get(sigma);
  if (known !== undefined) return known;
  const radius = Math.trunc(4 * sigma + 0.5); // truncate = 4.0
  const factor = -0.5 / (sigma * sigma);
  const full = new Float64Array(2 * radius + 1);
  for (let i = 0; i < full.length; i++) {
    const offset = i - radius;
    full[i] = expCorrectlyRounded(factor * (offset * offset));
  }
  const total = numpySum(full);
  const half = new Float64Array(radius + 1);
  for (let j = 0; j <= radius; j++) half[j] = full[radius + j]! / total;
  weightsBySigma.set(sigma, half);
  return half;
}

/** numpy's pairwise summation (eight accumulators per block of up to 128), for bit-equal sums. */
function numpySum(values: Float64Array): number {
  const n = values.length;
  if (n < 8) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += values[i]!;
    return sum;
  }
  if (n <= 128) {
    const acc = Array.from(values.subarray(0, 8));
    let i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (let j = 0; j < 8; j++) acc[j]! += values[i + j]!;
    }
    let sum = ((acc[0]! + acc[1]!) + (acc[2]! + acc[3]!)) + ((acc[4]! + acc[5]!) + (acc[6]! + acc[7]!));
    for (; i < n; i++) sum += values[i]!;
    return sum;
  }
  let half = Math.floor(n / 2);
  half -= half % 8;
  return numpySum(values.subarray(0, half)) + numpySum(values.subarray(half));
}

/** Index of a position outside 0..n−1 mirrored about the edge pixels (scipy 'mirror'). */
function mirrorIndex(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * n - 2;
  let m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - m;
}

/**
 * One pass of scipy's correlate1d with a symmetric Gaussian along one axis,
 * evaluated at the given rows × columns only (other entries are left 0).
 */
function gaussianBlurAxis(
  image: Float32Array | Float64Array,
  width: number,
  height: number,
  axis: 'vertical' | 'horizontal',
  sigma: number,
  rows: number[],
  columns: number[],
): Float32Array | Float64Array {
  if (sigma <= 1e-15) return image; // scipy skips axes with no blur
  const weights = gaussianWeights(sigma);
  const radius = weights.length - 1;
  const vertical = axis === 'vertical';
  const lineLength = vertical ? height : width;
  const lines = vertical ? columns : rows; // the lines to read
  const positions = vertical ? rows : columns; // the outputs wanted along each line
  const step = vertical ? width : 1; // distance between neighbours along a line

  // Output in the input's precision, as scipy writes each pass into an array of the input's dtype.
  const out = new (image instanceof Float32Array ? Float32Array : Float64Array)(image.length);
  const padded = new Float64Array(lineLength + 2 * radius);
  for (const line of lines) {
    const base = vertical ? line : line * width;
    for (let i = -radius; i < lineLength + radius; i++) padded[i + radius] = image[base + mirrorIndex(i, lineLength) * step]!;
    for (const i of positions) {
      const centre = i + radius;
      // scipy's symmetric-kernel loop: centre first, then pairs from the outermost in.
      let sum = padded[centre]! * weights[0]!;
      for (let j = radius; j >= 1; j--) sum += (padded[centre - j]! + padded[centre + j]!) * weights[j]!;
      out[base + i * step] = sum;
    }
  }
  return out;
}
