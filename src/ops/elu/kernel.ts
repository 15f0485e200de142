/** ELU forward and backward: elu.wgsl. */
import type { Gpu } from '../../gpu/gpu.js';
import { ShapeError, shapeStr } from '../../gpu/errors.js';
import { type GpuTensor, checkSameShape, grid1d, numel, perInvocation, requireF32 } from '../../gpu/tensor-view.js';
import { checkNoAliasing } from '../../gpu/aliasing.js';
import eluSource from './elu.wgsl';
import { declareKernel } from '../../gpu/kernel.js';

/** Invocations per workgroup, written into the shader (GROUP). */
const GROUP = 256;
const ELU = declareKernel({
  name: 'elu',
  parts: [eluSource],
  defines: { GROUP },
  entryPoints: { forward: ['x_in', 'y_out'], forward4: ['x_in', 'y_out'], backward: ['dy', 'y_in', 'dx'], backward4: ['dy', 'y_in', 'dx'] },
  uniforms: [['n', 'u32'], ['row_threads', 'u32'], ['alpha', 'f32'], ['_pad', 'u32']],
  overrides: ['ACCUMULATE'],
});

function params(gpu: Gpu, op: string, n: number, alpha: number) {
  if (!(alpha > 0) || !Number.isFinite(alpha)) throw new ShapeError(op, `alpha must be a positive number, got ${alpha}`);
  const q = perInvocation(n);
  const { workgroups, rowThreads } = grid1d(n / q, GROUP, gpu.limits.maxComputeWorkgroupsPerDimension);
  return { workgroups, uniforms: { n, row_threads: rowThreads, alpha, _pad: 0 }, quads: q === 4 };
}

/** y = elu(x) with the given alpha (Keras's default is 1). */
export function elu(gpu: Gpu, x: GpuTensor, y: GpuTensor, alpha = 1): void {
  checkSameShape('elu', ['x', 'y'], [x, y]);
  requireF32('elu', { x, y });
  checkNoAliasing('elu', { x }, { y });
  const { workgroups, uniforms, quads } = params(gpu, 'elu', numel(x.shape), alpha);
  ELU.dispatch(gpu, {
    entry: quads ? 'forward4' : 'forward',
    label: `elu ${shapeStr(x.shape)}`,
    bind: { x_in: x.view, y_out: y.view },
    uniforms,
    workgroups,
  });
}

/** dx (+)= dy · elu'(x), computed from the forward output y. */
export function eluBackward(gpu: Gpu, dy: GpuTensor, y: GpuTensor, dx: GpuTensor, alpha = 1, opts: { accumulate?: boolean } = {}): void {
  checkSameShape('eluBackward', ['dy', 'y', 'dx'], [dy, y, dx]);
  requireF32('eluBackward', { dy, y, dx });
  checkNoAliasing('eluBackward', { dy, y }, { dx });
  const { workgroups, uniforms, quads } = params(gpu, 'eluBackward', numel(dy.shape), alpha);
  ELU.dispatch(gpu, {
    entry: quads ? 'backward4' : 'backward',
    label: `eluBackward ${shapeStr(dy.shape)}`,
    bind: { dy: dy.view, y_in: y.view, dx: dx.view },
    uniforms,
    overrides: { ACCUMULATE: opts.accumulate ? 1 : 0 },
    workgroups,
  });
}
