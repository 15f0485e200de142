/** The augmentation warp of a batch and its masks: augment.wgsl. */
import type { Gpu } from '../../gpu/gpu.js';
import { ShapeError, shapeStr } from '../../gpu/errors.js';
import { type GpuTensor, checkSameShape, numel } from '../../gpu/tensor-view.js';
import { checkNoAliasing } from '../../gpu/aliasing.js';
import { declareKernel } from '../../gpu/kernel.js';
import augmentSource from './augment.wgsl';

const AUGMENT = declareKernel({
  name: 'augment',
  parts: [augmentSource],
  entryPoints: { warp: ['x_in', 'y_in', 'draws', 'x_out', 'y_out'] },
  uniforms: [['n', 'u32'], ['size', 'u32'], ['grid', 'u32'], ['stride', 'u32']],
});

/** Floats per image in `draws` for an elastic lattice of grid × grid points (0: none). */
export function drawStride(grid: number): number {
  return 8 + 2 * grid * grid;
}

/**
 * xOut, yOut = each image of x ([n, size, size, 1]) and mask of y resampled
 * through its draw (augment.wgsl describes the layout of `draws`).
 */
export function augmentWarp(gpu: Gpu, x: GpuTensor, y: GpuTensor, draws: GpuTensor, grid: number, xOut: GpuTensor, yOut: GpuTensor): void {
  checkSameShape('augmentWarp', ['x', 'y', 'xOut', 'yOut'], [x, y, xOut, yOut]);
  checkNoAliasing('augmentWarp', { x, y, draws }, { xOut, yOut });
  const [n, h, w, c] = x.shape as [number, number, number, number];
  if (x.shape.length !== 4 || c !== 1 || h !== w) throw new ShapeError('augmentWarp', `x must be [n, size, size, 1], got ${shapeStr(x.shape)}`);
  if (grid === 1 || !Number.isInteger(grid) || grid < 0) throw new ShapeError('augmentWarp', `the elastic lattice must be 0 (none) or at least 2 points a side, got ${grid}`);
  const stride = drawStride(grid);
  if (numel(draws.shape) !== n * stride) throw new ShapeError('augmentWarp', `draws must hold ${stride} floats for each of ${n} images, got ${numel(draws.shape)}`);
  AUGMENT.dispatch(gpu, {
    entry: 'warp',
    label: `augment ${shapeStr(x.shape)}`,
    bind: { x_in: x.view, y_in: y.view, draws: draws.view, x_out: xOut.view, y_out: yOut.view },
    uniforms: { n, size: w, grid, stride },
    workgroups: [Math.ceil(w / 8), Math.ceil(w / 8), n],
  });
}
