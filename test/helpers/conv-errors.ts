/**
 * Every mode of the two convolution families on one shape, against the
 * float64 references: forward, ∂input and ∂weights with the bias, as the
 * largest relative error of each. Shared by the tests of every formulation.
 */
import { expect } from 'vitest';
import type { Gpu } from '../../src/gpu/gpu.js';
import { allocTensor } from '../../src/gpu/tensor-view.js';
import {
  biasGradient,
  conv2d,
  conv2dBackwardInput,
  conv2dBackwardWeights,
  convTranspose2x2,
  convTranspose2x2BackwardInput,
  convTranspose2x2BackwardWeights,
} from '../../src/ops/conv/index.js';
import { type Shape4, conv2dBackwardRef, conv2dRef, convTranspose2x2BackwardRef, convTranspose2x2Ref } from '../reference/conv.js';
import { maxRelError, randomArray } from './random.js';

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

type T = ReturnType<typeof allocTensor>;
interface ConvFamily {
  xs: Shape4;
  ws: Shape4;
  ys: Shape4;
  forward(x: T, w: T, b: T, y: T): void;
  backwardInput(dy: T, w: T, dx: T): void;
  /** The weight and bias gradients. */
  backwardWeights(x: T, dy: T, dw: T, db: T): void;
  ref(x: Float32Array, w: Float32Array, b: Float32Array): ArrayLike<number>;
  refBackward(x: Float32Array, w: Float32Array, dy: Float32Array): { dx: ArrayLike<number>; dw: ArrayLike<number>; db: ArrayLike<number> };
}

/**
 * Runs a convolution's forward, ∂input, ∂weights and bias gradient on random
 * data and returns the four max relative errors against the float64 reference.
 */
async function familyErrors(gpu: Gpu, f: ConvFamily, seed: number): Promise<number[]> {
  const co = f.ys[3];
  const xv = randomArray(prod(f.xs), seed);
  const wv = randomArray(prod(f.ws), seed + 1, -0.5, 0.5);
  const bv = randomArray(co, seed + 2);
  const dyv = randomArray(prod(f.ys), seed + 3);
  const want = f.refBackward(xv, wv, dyv);
  const [x, w, b, dy] = [allocTensor(gpu, f.xs, xv), allocTensor(gpu, f.ws, wv), allocTensor(gpu, [co], bv), allocTensor(gpu, f.ys, dyv)];
  const [y, dx, dw, db] = [allocTensor(gpu, f.ys), allocTensor(gpu, f.xs), allocTensor(gpu, f.ws), allocTensor(gpu, [co])];
  f.forward(x, w, b, y);
  f.backwardInput(dy, w, dx);
  f.backwardWeights(x, dy, dw, db);
  const errs = [
    maxRelError(await gpu.readFloat32(y.view, prod(f.ys)), f.ref(xv, wv, bv)),
    maxRelError(await gpu.readFloat32(dx.view, prod(f.xs)), want.dx),
    maxRelError(await gpu.readFloat32(dw.view, prod(f.ws)), want.dw),
    maxRelError(await gpu.readFloat32(db.view, co), want.db),
  ];
  for (const t of [x, w, b, dy, y, dx, dw, db]) t.dispose();
  return errs;
}

/** conv2d (with `act`) on x of shape xs with a k × k kernel to co channels. */
export function convErrors(gpu: Gpu, xs: Shape4, k: number, co: number, act: 'none' | 'relu', seed: number): Promise<number[]> {
  const ws: Shape4 = [k, k, xs[3], co];
  return familyErrors(gpu, {
    xs, ws, ys: [xs[0], xs[1], xs[2], co],
    forward: (x, w, b, y) => conv2d(gpu, x, w, b, y, act),
    backwardInput: (dy, w, dx) => conv2dBackwardInput(gpu, dy, w, dx),
    backwardWeights: (x, dy, dw, db) => conv2dBackwardWeights(gpu, x, dy, dw, { db }),
    ref: (x, w, b) => conv2dRef(x, xs, w, ws, b, act),
    refBackward: (x, w, dy) => conv2dBackwardRef(x, xs, w, ws, dy),
  }, seed);
}

/**
 * Every mode of both convolutions on these shapes ([x, kernel size, out
 * channels, activation, seed] and [x, out channels, seed]) within 1e-4 of
 * the references; the errors are logged under `label`.
 */
export async function expectEveryModeRight(
  gpu: Gpu,
  label: string,
  convs: [Shape4, number, number, 'none' | 'relu', number][],
  ups: [Shape4, number, number][],
): Promise<void> {
  const errs: number[] = [];
  for (const [xs, k, co, act, seed] of convs) errs.push(...(await convErrors(gpu, xs, k, co, act, seed)));
  for (const [xs, co, seed] of ups) errs.push(...(await upErrors(gpu, xs, co, seed)));
  console.log(`${label}: max rel errors ${errs.map((e) => e.toExponential(2)).join(' ')}`);
  for (const e of errs) expect(e).toBeLessThan(1e-4);
}

/** The 2 × 2 transposed convolution from xs to co channels. */
export function upErrors(gpu: Gpu, xs: Shape4, co: number, seed: number): Promise<number[]> {
  const ws: Shape4 = [2, 2, co, xs[3]];
  return familyErrors(gpu, {
    xs, ws, ys: [xs[0], 2 * xs[1], 2 * xs[2], co],
    forward: (x, w, b, y) => convTranspose2x2(gpu, x, w, b, y),
    backwardInput: (dy, w, dx) => convTranspose2x2BackwardInput(gpu, dy, w, dx),
    backwardWeights: (x, dy, dw, db) => {
      convTranspose2x2BackwardWeights(gpu, x, dy, dw);
      biasGradient(gpu, dy, db);
    },
    ref: (x, w, b) => convTranspose2x2Ref(x, xs, w, ws, b),
    refBackward: (x, w, dy) => convTranspose2x2BackwardRef(x, xs, w, ws, dy),
  }, seed);
}
