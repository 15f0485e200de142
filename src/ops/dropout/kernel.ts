/** Inverted dropout with a mask hashed from a GPU-resident seed: dropout.wgsl. */
import type { BufferView, Gpu } from '../../gpu/gpu.js';
import { ShapeError, shapeStr } from '../../gpu/errors.js';
import { type GpuTensor, checkSameShape, grid1d, numel, requireSameDtype } from '../../gpu/tensor-view.js';
import { checkNoAliasing } from '../../gpu/aliasing.js';
import { declareKernel } from '../../gpu/kernel.js';
import dropoutSource from './dropout.wgsl';

/** Invocations per workgroup, written into the shader (GROUP). */
const GROUP = 256;
const DROPOUT = declareKernel({
  name: 'dropout',
  parts: [dropoutSource],
  defines: { GROUP },
  entryPoints: { main: ['seed', 'x', 'out'] },
  uniforms: [['n', 'u32'], ['row_threads', 'u32'], ['threshold', 'u32'], ['scale', 'f32']],
  overrides: ['ACCUMULATE'],
  types: ['ELEM_TYPE'],
});

/** The hash threshold below which an element is dropped: rate · 2³², rounded (dropout.wgsl). */
export function dropoutThreshold(rate: number): number {
  if (!(rate >= 0 && rate < 1)) throw new ShapeError('dropout', `rate must be in [0, 1), got ${rate}`);
  return Math.min(2 ** 32 - 1, Math.round(rate * 2 ** 32));
}

/**
 * out (+)= x · [kept] / (1 − rate) for every element, kept as dropout.wgsl
 * hashes it from the element's index and the u32 in `seed` (4 bytes). The
 * same call on dy gives dx: the mask depends on the seed alone.
 */
export function dropout(gpu: Gpu, x: GpuTensor, seed: BufferView, out: GpuTensor, rate: number, opts: { accumulate?: boolean } = {}): void {
  checkSameShape('dropout', ['x', 'out'], [x, out]);
  const type = requireSameDtype('dropout', { x, out });
  checkNoAliasing('dropout', { x }, { out });
  if (seed.size < 4) throw new ShapeError('dropout', `the seed must be a 4-byte buffer range, got ${seed.size} bytes`);
  const threshold = dropoutThreshold(rate);
  const n = numel(x.shape);
  const { workgroups, rowThreads } = grid1d(n, GROUP, gpu.limits.maxComputeWorkgroupsPerDimension);
  DROPOUT.dispatch(gpu, {
    entry: 'main',
    label: `dropout ${rate} ${shapeStr(x.shape)}`,
    bind: { seed: { ...seed, size: 4 }, x: x.view, out: out.view },
    uniforms: { n, row_threads: rowThreads, threshold, scale: 1 / (1 - rate) },
    overrides: { ACCUMULATE: opts.accumulate ? 1 : 0 },
    types: { ELEM_TYPE: type },
    workgroups,
  });
}
