/**
 * Keras's default initialisers, drawn from the project's seeded generator.
 *
 * Keras (`_compute_fans`) takes the last two kernel dimensions as (input,
 * output) and multiplies both by the receptive field (the product of the
 * other dimensions). For Conv2D (kh, kw, in, out) that gives
 * fan_in = kh·kw·in and fan_out = kh·kw·out. Conv2DTranspose stores its
 * kernel as (kh, kw, out, in), and Keras applies the same rule to it, so its
 * "fan_in" is kh·kw·out and its "fan_out" kh·kw·in.
 */
import type { Rng } from './rng.js';

export interface Fans {
  fanIn: number;
  fanOut: number;
}

/** Keras's `_compute_fans` for a kernel shape. */
export function kerasFans(shape: readonly number[]): Fans {
  if (shape.length === 0) throw new Error('kerasFans: a scalar has no fans');
  if (shape.some((d) => !Number.isInteger(d) || d < 1)) throw new Error(`kerasFans: invalid kernel shape [${shape.join(', ')}]`);
  if (shape.length === 1) return { fanIn: shape[0]!, fanOut: shape[0]! };
  if (shape.length === 2) return { fanIn: shape[0]!, fanOut: shape[1]! };
  let receptive = 1;
  for (const d of shape.slice(0, -2)) receptive *= d;
  return { fanIn: shape.at(-2)! * receptive, fanOut: shape.at(-1)! * receptive };
}

/**
 * Glorot (Xavier) uniform: values uniform in [−limit, limit] with
 * limit = √(6 / (fanIn + fanOut)), drawn in row-major order of `shape`.
 */
export function glorotUniform(shape: readonly number[], fanIn: number, fanOut: number, rng: Rng): Float32Array {
  if (!(fanIn > 0 && fanOut > 0)) throw new Error(`glorotUniform: fans must be positive, got fanIn ${fanIn}, fanOut ${fanOut}`);
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`glorotUniform: invalid shape [${shape.join(', ')}]`);
    n *= d;
  }
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (2 * rng.next() - 1) * limit;
  return out;
}

/** Glorot-uniform with the fans Keras computes from the kernel shape itself. */
export function glorotUniformKeras(shape: readonly number[], rng: Rng): Float32Array {
  const { fanIn, fanOut } = kerasFans(shape);
  return glorotUniform(shape, fanIn, fanOut, rng);
}
