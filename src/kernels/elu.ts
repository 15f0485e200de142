/** ELU forward and backward: shaders/elu.wgsl. */
import type { Gpu } from './gpu.js';
import { ShapeError, shapeStr } from './errors.js';
import { type GpuTensor, checkSameShape, grid1d, numel, perInvocation } from './tensor-view.js';
import { checkNoAliasing } from './aliasing.js';
import eluSource from '../../shaders/elu.wgsl';
import { uniformBlock } from './uniforms.js';
import { composeShader } from './shader-source.js';

/** Invocations per workgroup, written into the shader (GROUP). */
const GROUP = 256;
const eluShader = composeShader([eluSource], { defines: { GROUP } });

/**
 * The uniforms, the grid and the entry point's suffix: four elements per
 * invocation ('4': vec4 accesses) where n is a nonzero multiple of 4 (a vec4
 * view needs 16 bytes), else one.
 */
const PARAMS = uniformBlock('elu', eluSource, [['n', 'u32'], ['row_threads', 'u32'], ['alpha', 'f32'], ['_pad', 'u32']]);

function params(gpu: Gpu, op: string, n: number, alpha: number) {
  if (!(alpha > 0) || !Number.isFinite(alpha)) throw new ShapeError(op, `alpha must be a positive number, got ${alpha}`);
  const q = perInvocation(n);
  const { workgroups, rowThreads } = grid1d(n / q, GROUP, gpu.limits.maxComputeWorkgroupsPerDimension);
  return { workgroups, uniforms: PARAMS.pack({ n, row_threads: rowThreads, alpha, _pad: 0 }), suffix: q === 4 ? '4' : '' };
}

/** y = elu(x) with the given alpha (Keras's default is 1). */
export function elu(gpu: Gpu, x: GpuTensor, y: GpuTensor, alpha = 1): void {
  checkSameShape('elu', ['x', 'y'], [x, y]);
  checkNoAliasing('elu', { x }, { y });
  const { workgroups, uniforms, suffix } = params(gpu, 'elu', numel(x.shape), alpha);
  gpu.dispatch({
    kernel: gpu.kernel('elu', eluShader, { ACCUMULATE: 0 }, `forward${suffix}`),
    label: `elu ${shapeStr(x.shape)}`,
    uniforms,
    storage: [x.view, y.view],
    workgroups,
  });
}

/** dx (+)= dy · elu'(x), computed from the forward output y. */
export function eluBackward(gpu: Gpu, dy: GpuTensor, y: GpuTensor, dx: GpuTensor, alpha = 1, opts: { accumulate?: boolean } = {}): void {
  checkSameShape('eluBackward', ['dy', 'y', 'dx'], [dy, y, dx]);
  checkNoAliasing('eluBackward', { dy, y }, { dx });
  const { workgroups, uniforms, suffix } = params(gpu, 'eluBackward', numel(dy.shape), alpha);
  gpu.dispatch({
    kernel: gpu.kernel('elu', eluShader, { ACCUMULATE: opts.accumulate ? 1 : 0 }, `backward${suffix}`),
    label: `eluBackward ${shapeStr(dy.shape)}`,
    uniforms,
    storage: [dy.view, y.view, dx.view],
    workgroups,
  });
}
