/** Sum of a whole tensor: reduce.wgsl (two-level tree reduction). */
import type { Gpu } from '../../gpu/gpu.js';
import { ShapeError, shapeStr } from '../../gpu/errors.js';
import { type GpuTensor, checkStorage, numel, requireF32 } from '../../gpu/tensor-view.js';
import { checkNoAliasing } from '../../gpu/aliasing.js';
import reduceSource from './reduce.wgsl';
import { declareKernel } from '../../gpu/kernel.js';

/** Invocations per workgroup, written into the shader (GROUP). */
const GROUP = 256;
const REDUCE = declareKernel({
  name: 'reduce',
  parts: [reduceSource],
  defines: { GROUP },
  entryPoints: { partial_sums: ['src', 'dst'], total_sum: ['src', 'dst'] },
  uniforms: [['n', 'u32'], ['stride', 'u32']],
});
/**
 * Workgroups of the first pass, at most: enough to fill a large GPU (132 SMs ×
 * several groups), few enough that one workgroup finishes the partial sums.
 */
export const REDUCE_MAX_GROUPS = 1024;

/** Workgroups the first pass uses for n elements (one element per invocation up to the cap). */
export function reduceGroups(n: number): number {
  return Math.max(1, Math.min(REDUCE_MAX_GROUPS, Math.ceil(n / GROUP)));
}

/** out[0] = Σ x over every element of x; out has shape [1]. */
export function sumAll(gpu: Gpu, x: GpuTensor, out: GpuTensor): void {
  const op = 'sumAll';
  checkStorage(op, 'x', x);
  checkStorage(op, 'out', out);
  requireF32(op, { x, out });
  if (out.shape.length !== 1 || out.shape[0] !== 1) {
    throw new ShapeError(op, `out must have shape [1], got ${shapeStr(out.shape)} (x has ${shapeStr(x.shape)})`);
  }
  checkNoAliasing(op, { x }, { out });
  const n = numel(x.shape);
  const groups = reduceGroups(n);
  const scratch = gpu.acquire(groups * 4);
  const partials = { buffer: scratch.buffer, offset: 0, size: groups * 4 };
  REDUCE.dispatch(gpu, {
    entry: 'partial_sums',
    label: `${op} partial ${shapeStr(x.shape)} in ${groups} groups`,
    bind: { src: x.view, dst: partials },
    uniforms: { n, stride: groups * GROUP },
    workgroups: [groups],
  });
  REDUCE.dispatch(gpu, {
    entry: 'total_sum',
    label: `${op} final ${groups} partials`,
    bind: { src: partials, dst: out.view },
    uniforms: { n: groups, stride: GROUP },
    workgroups: [1],
  });
  // Safe before the GPU runs: any later use of this buffer is recorded or submitted after these dispatches.
  gpu.release(scratch);
}
