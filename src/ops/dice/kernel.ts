/**
 * The tutorial's batch-global Dice loss (smooth 1) and its gradient:
 * dice.wgsl. loss = −(2 Σ y·p + 1) / (Σ y + Σ p + 1).
 * Everything stays on the GPU; read `loss` back only when it is wanted.
 */
import type { Gpu } from '../../gpu/gpu.js';
import { ShapeError, shapeStr } from '../../gpu/errors.js';
import { type GpuTensor, checkSameShape, checkStorage, grid1d, numel, perInvocation, requireF32 } from '../../gpu/tensor-view.js';
import { checkNoAliasing } from '../../gpu/aliasing.js';
import { reduceGroups } from '../reduce/kernel.js';
import diceSource from './dice.wgsl';
import { declareKernel } from '../../gpu/kernel.js';

/** Invocations per workgroup, written into the shader (GROUP). */
const GROUP = 256;
const DICE = declareKernel({
  name: 'dice',
  parts: [diceSource],
  defines: { GROUP },
  entryPoints: {
    partial_sums: ['p', 'y', 'partials_out'], partial_sums4: ['p', 'y', 'partials_out'],
    loss: ['partials_in', 'sums_out', 'loss_out'],
    backward: ['y_in', 'sums_in', 'dloss', 'dp'], backward4: ['y_in', 'sums_in', 'dloss', 'dp'],
  },
  uniforms: [['n', 'u32'], ['stride', 'u32']],
});

function checkShape(op: string, name: string, t: GpuTensor, want: number[]): void {
  checkStorage(op, name, t);
  if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
    throw new ShapeError(op, `${name} must have shape ${shapeStr(want)}, got ${shapeStr(t.shape)}`);
  }
}

/**
 * loss[0] = −dice of predictions p against masks y (same shape, any rank);
 * sums = [Σ y·p, Σ y, Σ p], which diceLossBackward needs.
 */
export function diceLoss(gpu: Gpu, p: GpuTensor, y: GpuTensor, loss: GpuTensor, sums: GpuTensor): void {
  const op = 'diceLoss';
  checkSameShape(op, ['p', 'y'], [p, y]);
  requireF32(op, { p, y, loss, sums });
  checkShape(op, 'loss', loss, [1]);
  checkShape(op, 'sums', sums, [3]);
  checkNoAliasing(op, { p, y }, { loss, sums });
  // Four elements at a time (vec4s) where n is a nonzero multiple of 4.
  const n = numel(p.shape);
  const q = perInvocation(n);
  const groups = reduceGroups(n / q);
  const scratch = gpu.acquire(groups * 16);
  const partials = { buffer: scratch.buffer, offset: 0, size: groups * 16 };
  DICE.dispatch(gpu, {
    entry: q === 4 ? 'partial_sums4' : 'partial_sums',
    label: `${op} partial sums ${shapeStr(p.shape)} in ${groups} groups`,
    bind: { p: p.view, y: y.view, partials_out: partials },
    uniforms: { n: n / q, stride: groups * GROUP },
    workgroups: [groups],
  });
  DICE.dispatch(gpu, {
    entry: 'loss',
    label: `${op} total of ${groups} partials`,
    bind: { partials_in: partials, sums_out: sums.view, loss_out: loss.view },
    uniforms: { n: groups, stride: GROUP },
    workgroups: [1],
  });
  // Safe before the GPU runs: any later use of this buffer is recorded or submitted after these dispatches.
  gpu.release(scratch);
}

/**
 * dp = dLoss[0] · d(−dice)/dp, from the sums diceLoss kept:
 * dp_i = dLoss · ((2I + 1) − 2 y_i U) / U², I = Σ y·p, U = Σ y + Σ p + 1.
 */
export function diceLossBackward(gpu: Gpu, p: GpuTensor, y: GpuTensor, sums: GpuTensor, dLoss: GpuTensor, dp: GpuTensor): void {
  const op = 'diceLossBackward';
  checkSameShape(op, ['p', 'y', 'dp'], [p, y, dp]);
  requireF32(op, { p, y, sums, dLoss, dp });
  checkShape(op, 'sums', sums, [3]);
  checkShape(op, 'dLoss', dLoss, [1]);
  checkNoAliasing(op, { p, y, sums, dLoss }, { dp });
  const n = numel(p.shape);
  const q = perInvocation(n);
  const { workgroups, rowThreads } = grid1d(n / q, GROUP, gpu.limits.maxComputeWorkgroupsPerDimension);
  DICE.dispatch(gpu, {
    entry: q === 4 ? 'backward4' : 'backward',
    label: `${op} ${shapeStr(p.shape)}`,
    bind: { y_in: y.view, sums_in: sums.view, dloss: dLoss.view, dp: dp.view }, // p is checked, not read: the sums carry it
    uniforms: { n: n / q, stride: rowThreads },
    workgroups,
  });
}
