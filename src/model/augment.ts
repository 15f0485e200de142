/**
 * Augmentation of each training batch on the GPU (src/ops/augment): the draws
 * are made here, seeded by (seed, epoch, step) so that a run and its resume
 * see the same batches, and the warp runs as one dispatch per batch.
 *
 * Which transforms respect the anatomy of these frames: the skin is at the
 * top and echoes weaken with depth, so nothing flips a frame vertically or
 * turns it far; small rotations (the probe tilted), zooms and shifts (probe
 * pressure and position), a smooth elastic displacement (tissue compressed)
 * and brightness and contrast (gain) do. A lateral mirror (the other arm) is
 * offered but off by default: the nerve sits right of centre (its masks'
 * centroid at x 334 of 580 in the competition's frames), and a mirror moves
 * it where it never is (bench/results-recipe-llvmpipe.json).
 */
import { Tensor } from '../autograd/index.js';
import { augmentWarp, drawStride } from '../ops/augment/kernel.js';
import { Rng } from './rng.js';

export interface AugmentSpec {
  /** Probability of a lateral (left–right) mirror. */
  flip: number;
  /** Largest rotation either way, in degrees. */
  rotate: number;
  /** Largest relative zoom either way (0.1: from 0.9 to 1.1 times). */
  zoom: number;
  /** Largest shift either way, as a fraction of the side. */
  shift: number;
  /** Standard deviation of the elastic displacement, as a fraction of the side (0: none). */
  elastic: number;
  /** Points a side of the elastic lattice. */
  grid: number;
  /** Largest change of brightness either way, in units of the normalised image (its standard deviation). */
  brightness: number;
  /** Largest relative change of contrast either way. */
  contrast: number;
}

export const DEFAULT_AUGMENT: AugmentSpec = { flip: 0, rotate: 10, zoom: 0.1, shift: 0.08, elastic: 0.01, grid: 4, brightness: 0.1, contrast: 0.1 };
const LIMITS: Record<keyof AugmentSpec, [number, number]> = {
  flip: [0, 1], rotate: [0, 45], zoom: [0, 0.5], shift: [0, 0.5], elastic: [0, 0.1], grid: [2, 16], brightness: [0, 2], contrast: [0, 0.9],
};

/**
 * A spec from "default" or comma-separated key=value pairs over the defaults
 * ("rotate=5,elastic=0"); a clear error names a bad key or value.
 */
export function parseAugmentSpec(text: string): AugmentSpec {
  const spec = { ...DEFAULT_AUGMENT };
  if (text === 'default' || text === '') return spec;
  for (const part of text.split(',')) {
    const [key, value, extra] = part.split('=');
    if (!key || !(key in LIMITS) || value === undefined || extra !== undefined) {
      throw new Error(`augment: "${part}" is not key=value with key one of ${Object.keys(LIMITS).join(', ')}`);
    }
    const k = key as keyof AugmentSpec;
    const v = Number(value);
    const [lo, hi] = LIMITS[k];
    if (!(v >= lo && v <= hi) || (k === 'grid' && !Number.isInteger(v))) throw new Error(`augment: ${k} must be ${k === 'grid' ? 'a whole number' : 'a number'} in [${lo}, ${hi}], got "${value}"`);
    spec[k] = v;
  }
  return spec;
}

/** Points a side of the elastic lattice the warp reads: none without elastic displacement. */
function lattice(spec: AugmentSpec): number {
  return spec.elastic > 0 ? spec.grid : 0;
}

/** The warp's draws for one image of side `size` (augment.wgsl describes the layout). */
export function drawAugmentation(spec: AugmentSpec, size: number, rng: Rng): Float32Array {
  const d = new Float32Array(drawStride(lattice(spec)));
  const uniform = (limit: number) => (2 * rng.next() - 1) * limit;
  const mirror = rng.next() < spec.flip ? -1 : 1;
  const angle = (uniform(spec.rotate) * Math.PI) / 180;
  const zoom = 1 + uniform(spec.zoom);
  const tx = uniform(spec.shift) * size;
  const ty = uniform(spec.shift) * size;
  // Source = centre + rotation · (mirror · u, v) / zoom + shift, for (u, v) the output pixel less the centre.
  const c = (size - 1) / 2;
  const cos = Math.cos(angle) / zoom;
  const sin = Math.sin(angle) / zoom;
  const [m00, m01, m10, m11] = [mirror * cos, -sin, mirror * sin, cos];
  d.set([m00, m01, c + tx - (m00 + m01) * c, m10, m11, c + ty - (m10 + m11) * c]);
  d[6] = 1 + uniform(spec.contrast);
  d[7] = uniform(spec.brightness);
  for (let i = 8; i < d.length; i++) d[i] = normal(rng) * spec.elastic * size;
  return d;
}

function normal(rng: Rng): number {
  const u = 1 - rng.next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
}

/** Draws for a batch: a generator of its own per (seed, epoch, step). */
export function drawBatch(spec: AugmentSpec, size: number, count: number, seed: number, epoch: number, step: number): Float32Array {
  const rng = new Rng(Math.imul(seed ^ 0x0a06, 0x9e3779b1) ^ Math.imul(epoch, 0x85ebca6b) ^ Math.imul(step, 0xc2b2ae35));
  const stride = drawStride(lattice(spec));
  const out = new Float32Array(count * stride);
  for (let i = 0; i < count; i++) out.set(drawAugmentation(spec, size, rng), i * stride);
  return out;
}

/** Augments each training batch on the GPU (the Trainer's `augment`). */
export class Augmenter {
  constructor(
    readonly spec: AugmentSpec,
    readonly seed: number,
  ) {}

  /** New tensors holding the warped batch; x and y are left as they were. */
  apply(x: Tensor, y: Tensor, epoch: number, step: number): { x: Tensor; y: Tensor } {
    const [n, size] = x.shape as [number, number];
    const grid = lattice(this.spec);
    const draws = Tensor.from(x.gpu, [n * drawStride(grid)], drawBatch(this.spec, size, n, this.seed, epoch, step));
    const xOut = Tensor.empty(x.gpu, x.shape);
    const yOut = Tensor.empty(x.gpu, y.shape);
    augmentWarp(x.gpu, x, y, draws, grid, xOut, yOut);
    draws.dispose();
    return { x: xOut, y: yOut };
  }
}
