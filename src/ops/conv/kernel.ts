/**
 * The convolution ops: shape checks, then one GEMM each (gemm.ts, planned by
 * plan.ts). conv2d: k × k kernels (odd k), stride 1, 'same' padding, weights
 * in Keras layout (kh, kw, in, out). convTranspose2x2: 2 × 2, stride 2,
 * weights (kh, kw, out, in). Activations NHWC, and with their gradients
 * float32 or (mixed precision) float16; weights, biases and their gradients
 * float32.
 */
import type { Gpu } from '../../gpu/gpu.js';
import { ShapeError, shapeStr } from '../../gpu/errors.js';
import { type GpuTensor, checkRank, checkStorage, dtypeOf, numel, requireF32 } from '../../gpu/tensor-view.js';
import { checkNoAliasing } from '../../gpu/aliasing.js';
import { type Activation, Mode } from './plan.js';
import { type GemmTypes, runGemm } from './gemm.js';
import { channelSums } from './sums.js';

export interface GradOptions {
  /** Add into the destination instead of overwriting it. */
  accumulate?: boolean;
}

export interface InputGradOptions extends GradOptions {
  /**
   * x, where x is a ReLU's output: dx is multiplied by [x > 0] as it is
   * stored (after the accumulation), the ReLU's backward fused into the
   * GEMM's store. Has dx's shape and element type.
   */
  mask?: GpuTensor;
}

/** An ∂input's mask: dx's shape and type, in a buffer of its own (it is read while dx is written). */
function checkMask(op: string, dx: GpuTensor, mask: GpuTensor | undefined): void {
  if (!mask) return;
  expectShape(op, 'mask', mask, [...dx.shape]);
  if (dtypeOf(mask) !== dtypeOf(dx)) throw new ShapeError(op, `mask is stored as ${dtypeOf(mask)} but dx as ${dtypeOf(dx)}: they must match`);
  checkNoAliasing(op, { mask }, { dx });
}

export interface WeightGradOptions extends GradOptions {
  /** Also the bias gradient, db (+)= Σ over pixels of dy: in the same GEMM where the formulation can, else by biasGradient. */
  db?: GpuTensor;
}

/** db[c] (+)= Σ over all pixels of dy[..., c]: the bias gradient of either convolution. */
export function biasGradient(gpu: Gpu, dy: GpuTensor, db: GpuTensor, opts: GradOptions = {}): void {
  const op = 'biasGradient';
  checkStorage(op, 'dy', dy);
  const c = dy.shape.at(-1) ?? 0;
  if (db.shape.length !== 1 || db.shape[0] !== c) {
    throw new ShapeError(op, `db must have shape [${c}] for dy ${shapeStr(dy.shape)}, got ${shapeStr(db.shape)}`);
  }
  checkStorage(op, 'db', db);
  requireF32(op, { db });
  channelSums(gpu, dy.view, numel(dy.shape) / c, c, db.view, opts.accumulate ?? false, `${op} dy ${shapeStr(dy.shape)}`, dtypeOf(dy));
}

/** How A, B and C are stored, for the shader's aliases. */
function typesOf(a: GpuTensor, b: GpuTensor, out: GpuTensor): GemmTypes {
  return { A_TYPE: dtypeOf(a), B_TYPE: dtypeOf(b), OUT_TYPE: dtypeOf(out) };
}

function convShapes(op: string, x: GpuTensor, w: GpuTensor) {
  checkRank(op, 'x', x, 4, 'batch, height, width, channels');
  checkRank(op, 'w', w, 4, 'kh, kw, in, out');
  const [n, h, wd, ci] = x.shape as [number, number, number, number];
  const [kh, kw, wi, co] = w.shape as [number, number, number, number];
  if (kh !== kw || kh % 2 !== 1) throw new ShapeError(op, `kernel must be square with odd size for 'same' padding, got w ${shapeStr(w.shape)}`);
  if (wi !== ci) throw new ShapeError(op, `x has ${ci} channels but w ${shapeStr(w.shape)} expects ${wi} (w is kh, kw, in, out)`);
  return { n, h, wd, ci, kh, co, pad: (kh - 1) / 2 };
}

function expectShape(op: string, name: string, t: GpuTensor, want: number[]): void {
  if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
    throw new ShapeError(op, `${name} must have shape ${shapeStr(want)}, got ${shapeStr(t.shape)}`);
  }
  checkStorage(op, name, t);
}

/** y = act(conv(x, w) + b), 'same' padding, stride 1. */
export function conv2d(gpu: Gpu, x: GpuTensor, w: GpuTensor, b: GpuTensor, y: GpuTensor, activation: Activation = 'none'): void {
  const op = 'conv2d';
  const s = convShapes(op, x, w);
  expectShape(op, 'b', b, [s.co]);
  expectShape(op, 'y', y, [s.n, s.h, s.wd, s.co]);
  requireF32(op, { w, b });
  runGemm(gpu, {
    mode: Mode.ConvForward, types: typesOf(x, w, y),
    label: `${op} x ${shapeStr(x.shape)} w ${shapeStr(w.shape)}${activation !== 'none' ? ` ${activation}` : ''}`,
    a: x.view, b: w.view, bias: b.view, out: y.view,
    batch: s.n, h: s.h, w: s.wd, aC: s.ci, kh: s.kh, kw: s.kh, pad: s.pad, bC: s.co,
    m: s.n * s.h * s.wd, n: s.co, k: s.kh * s.kh * s.ci, activation,
  });
}

/** dx (+)= ∂/∂x of Σ dy·conv(x, w): a correlation of dy with the flipped, transposed kernel. */
export function conv2dBackwardInput(gpu: Gpu, dy: GpuTensor, w: GpuTensor, dx: GpuTensor, opts: InputGradOptions = {}): void {
  const op = 'conv2dBackwardInput';
  checkRank(op, 'dy', dy, 4, 'batch, height, width, out channels');
  checkRank(op, 'w', w, 4, 'kh, kw, in, out');
  const [n, h, wd, co] = dy.shape as [number, number, number, number];
  const [kh, , ci, wco] = w.shape as [number, number, number, number];
  if (wco !== co) throw new ShapeError(op, `dy has ${co} channels but w ${shapeStr(w.shape)} produces ${wco}`);
  if (w.shape[0] !== w.shape[1] || kh % 2 !== 1) throw new ShapeError(op, `kernel must be square and odd, got w ${shapeStr(w.shape)}`);
  expectShape(op, 'dx', dx, [n, h, wd, ci]);
  requireF32(op, { w });
  checkMask(op, dx, opts.mask);
  runGemm(gpu, {
    mode: Mode.ConvInput, types: typesOf(dy, w, dx),
    label: `${op} dy ${shapeStr(dy.shape)} w ${shapeStr(w.shape)}${opts.mask ? ', masked' : ''}`,
    a: dy.view, b: w.view, out: dx.view, mask: opts.mask?.view,
    batch: n, h, w: wd, aC: co, kh, kw: kh, pad: kh - 1 - (kh - 1) / 2, bC: ci,
    m: n * h * wd, n: ci, k: kh * kh * co, accumulate: opts.accumulate ?? false,
  });
}

/** dw (+)= Σ over pixels of im2col(x)ᵀ · dy; with opts.db, the bias gradient too. */
export function conv2dBackwardWeights(gpu: Gpu, x: GpuTensor, dy: GpuTensor, dw: GpuTensor, opts: WeightGradOptions = {}): void {
  const op = 'conv2dBackwardWeights';
  const s = convShapes(op, x, dw);
  expectShape(op, 'dy', dy, [s.n, s.h, s.wd, s.co]);
  if (opts.db) {
    expectShape(op, 'db', opts.db, [s.co]);
    checkNoAliasing(op, {}, { dw, db: opts.db });
  }
  requireF32(op, opts.db ? { dw, db: opts.db } : { dw });
  const plan = runGemm(gpu, {
    mode: Mode.ConvWeights, types: typesOf(x, dy, dw),
    label: `${op} x ${shapeStr(x.shape)} dy ${shapeStr(dy.shape)}${opts.db ? ' and bias' : ''}`,
    a: x.view, b: dy.view, out: dw.view, db: opts.db?.view,
    batch: s.n, h: s.h, w: s.wd, aC: s.ci, kh: s.kh, kw: s.kh, pad: s.pad, bC: s.co,
    m: s.kh * s.kh * s.ci, n: s.co, k: s.n * s.h * s.wd, accumulate: opts.accumulate ?? false,
  });
  if (opts.db && plan.kind === 'gemm' && !plan.biasInGemm) biasGradient(gpu, dy, opts.db, opts);
}

function upShapes(op: string, x: GpuTensor, w: GpuTensor) {
  checkRank(op, 'x', x, 4, 'batch, height, width, channels');
  checkRank(op, 'w', w, 4, 'kh, kw, out, in');
  const [n, h, wd, ci] = x.shape as [number, number, number, number];
  const [kh, kw, co, wi] = w.shape as [number, number, number, number];
  if (kh !== 2 || kw !== 2) throw new ShapeError(op, `only 2 × 2 kernels with stride 2 are supported, got w ${shapeStr(w.shape)}`);
  if (wi !== ci) throw new ShapeError(op, `x has ${ci} channels but w ${shapeStr(w.shape)} expects ${wi} (w is kh, kw, out, in)`);
  return { n, h, wd, ci, co };
}

/** y = convTranspose(x, w) + b with a 2 × 2 kernel and stride 2: y is twice x's size. */
export function convTranspose2x2(gpu: Gpu, x: GpuTensor, w: GpuTensor, b: GpuTensor, y: GpuTensor): void {
  const op = 'convTranspose2x2';
  const s = upShapes(op, x, w);
  expectShape(op, 'b', b, [s.co]);
  expectShape(op, 'y', y, [s.n, 2 * s.h, 2 * s.wd, s.co]);
  requireF32(op, { w, b });
  runGemm(gpu, {
    mode: Mode.UpForward, types: typesOf(x, w, y),
    label: `${op} x ${shapeStr(x.shape)} w ${shapeStr(w.shape)}`,
    a: x.view, b: w.view, bias: b.view, out: y.view,
    batch: s.n, h: s.h, w: s.wd, aC: s.ci, bC: s.co,
    m: s.n * s.h * s.wd, n: 4 * s.co, k: s.ci,
  });
}

export function convTranspose2x2BackwardInput(gpu: Gpu, dy: GpuTensor, w: GpuTensor, dx: GpuTensor, opts: InputGradOptions = {}): void {
  const op = 'convTranspose2x2BackwardInput';
  checkRank(op, 'dy', dy, 4, 'batch, height, width, out channels');
  checkRank(op, 'w', w, 4, 'kh, kw, out, in');
  const [n, h2, w2, co] = dy.shape as [number, number, number, number];
  const [kh, kw, wco, ci] = w.shape as [number, number, number, number];
  if (kh !== 2 || kw !== 2) throw new ShapeError(op, `only 2 × 2 kernels are supported, got w ${shapeStr(w.shape)}`);
  if (wco !== co) throw new ShapeError(op, `dy has ${co} channels but w ${shapeStr(w.shape)} produces ${wco}`);
  if (h2 % 2 || w2 % 2) throw new ShapeError(op, `dy ${shapeStr(dy.shape)} must have even height and width`);
  expectShape(op, 'dx', dx, [n, h2 / 2, w2 / 2, ci]);
  requireF32(op, { w });
  checkMask(op, dx, opts.mask);
  runGemm(gpu, {
    mode: Mode.UpInput, types: typesOf(dy, w, dx),
    label: `${op} dy ${shapeStr(dy.shape)} w ${shapeStr(w.shape)}${opts.mask ? ', masked' : ''}`,
    a: dy.view, b: w.view, out: dx.view, mask: opts.mask?.view,
    batch: n, h: h2 / 2, w: w2 / 2, aC: co, bC: ci,
    m: n * (h2 / 2) * (w2 / 2), n: ci, k: 4 * co, accumulate: opts.accumulate ?? false,
  });
}

/** dw (+)= Σ over pixels of dy's 2 × 2 blocks times x; with opts.db, the bias gradient too. */
export function convTranspose2x2BackwardWeights(gpu: Gpu, x: GpuTensor, dy: GpuTensor, dw: GpuTensor, opts: WeightGradOptions = {}): void {
  const op = 'convTranspose2x2BackwardWeights';
  const s = upShapes(op, x, dw);
  expectShape(op, 'dy', dy, [s.n, 2 * s.h, 2 * s.wd, s.co]);
  if (opts.db) {
    expectShape(op, 'db', opts.db, [s.co]);
    checkNoAliasing(op, {}, { dw, db: opts.db });
  }
  requireF32(op, opts.db ? { dw, db: opts.db } : { dw });
  const plan = runGemm(gpu, {
    mode: Mode.UpWeights, types: typesOf(dy, x, dw),
    label: `${op} x ${shapeStr(x.shape)} dy ${shapeStr(dy.shape)}${opts.db ? ' and bias' : ''}`,
    a: dy.view, b: x.view, out: dw.view, db: opts.db?.view,
    batch: s.n, h: s.h, w: s.wd, aC: s.co, bC: s.ci,
    m: 4 * s.co, n: s.ci, k: s.n * s.h * s.wd, accumulate: opts.accumulate ?? false,
  });
  if (opts.db && plan.kind === 'gemm' && !plan.biasInGemm) biasGradient(gpu, dy, opts.db, opts);
}
