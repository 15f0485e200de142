/** 2 × 2, stride-2 max-pooling and its gradient: maxpool.wgsl. */
import type { Gpu } from '../../gpu/gpu.js';
import { ShapeError, shapeStr } from '../../gpu/errors.js';
import { type GpuTensor, checkRank, grid1d, numel, perInvocation, requireSameDtype } from '../../gpu/tensor-view.js';
import { checkNoAliasing } from '../../gpu/aliasing.js';
import maxpoolSource from './maxpool.wgsl';
import { declareKernel } from '../../gpu/kernel.js';

/** Invocations per workgroup. */
const GROUP = 256;
const MAXPOOL = declareKernel({
  name: 'maxpool',
  parts: [maxpoolSource],
  defines: { GROUP },
  entryPoints: { forward: ['x', 'y'], forward4: ['x', 'y'], backward: ['x', 'dy', 'dx'], backward4: ['x', 'dy', 'dx'] },
  uniforms: [['count', 'u32'], ['row_threads', 'u32'], ['h', 'u32'], ['w', 'u32'], ['c', 'u32'], ['oh', 'u32'], ['ow', 'u32'], ['cells_h', 'u32'], ['cells_w', 'u32']],
  overrides: ['ACCUMULATE', 'MASK'],
  types: ['ELEM_TYPE'],
});

export interface MaxPoolBackwardOptions {
  /** Add into `dx` instead of overwriting it (only winners change). */
  accumulate?: boolean;
  /**
   * x is a ReLU's output: multiply all of dx (after the accumulation) by
   * [x > 0], the ReLU's backward fused in.
   */
  reluMask?: boolean;
}

/** The pooled shape of an NHWC shape: [N, floor(H/2), floor(W/2), C]. */
export function maxPool2x2Shape(shape: readonly number[]): number[] {
  const [n, h, w, c] = shape as [number, number, number, number];
  return [n, Math.floor(h / 2), Math.floor(w / 2), c];
}

function checkPooled(op: string, x: GpuTensor, name: string, pooled: GpuTensor): void {
  checkRank(op, 'x', x, 4, 'N, H, W, C');
  checkRank(op, name, pooled, 4, 'N, H/2, W/2, C');
  const want = maxPool2x2Shape(x.shape);
  if (pooled.shape.some((d, i) => d !== want[i])) {
    throw new ShapeError(op, `${name} has shape ${shapeStr(pooled.shape)} but x of shape ${shapeStr(x.shape)} pools to ${shapeStr(want)}`);
  }
}

/**
 * Entry point, grid and uniforms for `count` invocations over x's channels:
 * four channels per invocation (`forward4` / `backward4`, C and the count in
 * quads) when C is a multiple of 4 and no bound tensor is empty (a vec4 view
 * needs 16 bytes).
 */
function launch(gpu: Gpu, entry: 'forward' | 'backward', x: GpuTensor, bound: GpuTensor[], count: number, cellsH: number, cellsW: number) {
  const [, h, w, c] = x.shape as [number, number, number, number];
  const q = perInvocation(c, ...bound.map((t) => numel(t.shape)));
  const { workgroups, rowThreads } = grid1d(count / q, GROUP, gpu.limits.maxComputeWorkgroupsPerDimension);
  return {
    entry: q === 4 ? (`${entry}4` as const) : entry,
    workgroups,
    uniforms: { count: count / q, row_threads: rowThreads, h, w, c: c / q, oh: Math.floor(h / 2), ow: Math.floor(w / 2), cells_h: cellsH, cells_w: cellsW },
  };
}

/** out[n, i, j, c] = max of (x and out both f32 or both f16) x[n, 2i..2i+1, 2j..2j+1, c]; x [N,H,W,C], out [N,floor(H/2),floor(W/2),C]. */
export function maxPool2x2(gpu: Gpu, x: GpuTensor, out: GpuTensor): void {
  const op = 'maxPool2x2';
  checkPooled(op, x, 'out', out);
  checkNoAliasing(op, { x }, { out });
  const type = requireSameDtype(op, { x, out });
  MAXPOOL.dispatch(gpu, {
    ...launch(gpu, 'forward', x, [x, out], numel(out.shape), out.shape[1]!, out.shape[2]!),
    label: `${op} ${shapeStr(x.shape)} -> ${shapeStr(out.shape)}`,
    bind: { x: x.view, y: out.view },
    types: { ELEM_TYPE: type },
  });
}

/**
 * dx = gradient of maxPool2x2 given dy: each dy lands on the first maximum of
 * its window (row-major: top-left, top-right, bottom-left, bottom-right); every
 * other element of dx, including an odd last row or column, is 0.
 * The winners are recomputed from x: nothing is stored by the forward pass.
 */
export function maxPool2x2Backward(gpu: Gpu, x: GpuTensor, dy: GpuTensor, dx: GpuTensor, opts: MaxPoolBackwardOptions = {}): void {
  const op = 'maxPool2x2Backward';
  checkPooled(op, x, 'dy', dy);
  checkRank(op, 'dx', dx, 4, 'N, H, W, C');
  if (dx.shape.some((d, i) => d !== x.shape[i])) {
    throw new ShapeError(op, `dx has shape ${shapeStr(dx.shape)} but x has ${shapeStr(x.shape)}; they must match`);
  }
  checkNoAliasing(op, { x, dy }, { dx });
  const type = requireSameDtype(op, { x, dy, dx });
  const [n, h, w, c] = x.shape as [number, number, number, number];
  const cellsH = Math.ceil(h / 2);
  const cellsW = Math.ceil(w / 2);
  MAXPOOL.dispatch(gpu, {
    ...launch(gpu, 'backward', x, [x, dy, dx], n * cellsH * cellsW * c, cellsH, cellsW),
    label: `${op} ${shapeStr(x.shape)} <- ${shapeStr(dy.shape)}${opts.reluMask ? ', masked' : ''}`,
    bind: { x: x.view, dy: dy.view, dx: dx.view },
    types: { ELEM_TYPE: type },
    overrides: { ACCUMULATE: opts.accumulate ? 1 : 0, MASK: opts.reluMask ? 1 : 0 },
  });
}
