/**
 * The Dice loss (smooth 1) and its gradient: dice.wgsl. Over `groups` equal
 * segments of the elements: one is the tutorial's batch-global loss
 * −(2 Σ y·p + 1) / (Σ y + Σ p + 1); the batch size gives one Dice per image,
 * and the loss is minus their mean. With `bce` = λ > 0 the loss adds λ times
 * the mean binary cross-entropy of p against y (its value with p clipped to
 * [1e-7, 1 − 1e-7], its gradient unclipped: dice.wgsl says why).
 * Everything stays on the GPU; read `loss` back only when it is wanted.
 */
import type { Gpu } from '../../gpu/gpu.js';
import { ShapeError, shapeStr } from '../../gpu/errors.js';
import { type GpuTensor, checkSameShape, checkStorage, grid1d, numel, perInvocation, requireF32 } from '../../gpu/tensor-view.js';
import { checkNoAliasing } from '../../gpu/aliasing.js';
import { REDUCE_MAX_GROUPS, reduceGroups } from '../reduce/kernel.js';
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
    backward: ['y_in', 'sums_in', 'dloss', 'dp', 'p_in'], backward4: ['y_in', 'sums_in', 'dloss', 'dp', 'p_in'],
  },
  uniforms: [['n', 'u32'], ['stride', 'u32'], ['seg', 'u32'], ['groups', 'u32'], ['bce', 'f32'], ['count', 'f32']],
  overrides: ['LOGITS'],
});

function checkShape(op: string, name: string, t: GpuTensor, want: number[]): void {
  checkStorage(op, name, t);
  if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
    throw new ShapeError(op, `${name} must have shape ${shapeStr(want)}, got ${shapeStr(t.shape)}`);
  }
}

/** Elements per segment when the elements of `shape` fall into `groups` equal segments. */
function segmentLength(op: string, shape: readonly number[], groups: number): number {
  const n = numel(shape);
  if (!Number.isSafeInteger(groups) || groups < 1 || n % groups !== 0) {
    throw new ShapeError(op, `${shapeStr(shape)} (${n} elements) cannot be split into ${groups} equal segments`);
  }
  return n / groups;
}

/** How the loss is taken: `groups` equal segments with a Dice each, and the cross-entropy's weight λ (0: none). */
export interface DiceTerms {
  groups?: number;
  bce?: number;
}

function checkTerms(op: string, shape: readonly number[], terms: DiceTerms): { groups: number; seg: number; bce: number } {
  const groups = terms.groups ?? 1;
  const bce = terms.bce ?? 0;
  if (!(bce >= 0 && Number.isFinite(bce))) throw new ShapeError(op, `the cross-entropy's weight must be finite and ≥ 0, got ${bce}`);
  return { groups, seg: segmentLength(op, shape, groups), bce };
}

/**
 * loss[0] = −(mean Dice of the `groups` segments) of predictions p against
 * masks y (same shape, any rank; groups 1: the whole batch, the batch size:
 * image by image), plus λ · mean cross-entropy; sums = [Σ y·p, Σ y, Σ p, Σ bce]
 * of each segment, which diceLossBackward needs.
 */
export function diceLoss(gpu: Gpu, p: GpuTensor, y: GpuTensor, loss: GpuTensor, sums: GpuTensor, terms: DiceTerms = {}): void {
  const op = 'diceLoss';
  checkSameShape(op, ['p', 'y'], [p, y]);
  requireF32(op, { p, y, loss, sums });
  const { groups, seg, bce } = checkTerms(op, p.shape, terms);
  if (groups > gpu.limits.maxComputeWorkgroupsPerDimension) throw new ShapeError(op, `${groups} segments are more than the adapter's ${gpu.limits.maxComputeWorkgroupsPerDimension} workgroups a dimension`);
  checkShape(op, 'loss', loss, [1]);
  checkShape(op, 'sums', sums, [4 * groups]);
  checkNoAliasing(op, { p, y }, { loss, sums });
  // Four elements at a time (vec4s) where a segment is a nonzero multiple of 4.
  const n = numel(p.shape);
  const q = perInvocation(seg);
  // Workgroups a segment: at most 1024 in all, at least one a segment.
  const across = Math.max(1, Math.min(reduceGroups(seg / q), Math.floor(REDUCE_MAX_GROUPS / groups)));
  const bytes = across * groups * 16;
  const scratch = gpu.acquire(bytes);
  const partials = { buffer: scratch.buffer, offset: 0, size: bytes };
  DICE.dispatch(gpu, {
    entry: q === 4 ? 'partial_sums4' : 'partial_sums',
    label: `${op} partial sums ${shapeStr(p.shape)} in ${across} × ${groups} groups`,
    bind: { p: p.view, y: y.view, partials_out: partials },
    uniforms: { n: n / q, stride: across * GROUP, seg: seg / q, groups, bce, count: n },
    workgroups: [across, groups],
  });
  DICE.dispatch(gpu, {
    entry: 'loss',
    label: `${op} totals of ${groups} × ${across} partials`,
    bind: { partials_in: partials, sums_out: sums.view, loss_out: loss.view },
    uniforms: { n: across, stride: GROUP, seg: seg / q, groups, bce, count: n },
    workgroups: [1],
  });
  // Safe before the GPU runs: any later use of this buffer is recorded or submitted after these dispatches.
  gpu.release(scratch);
}

/**
 * dp = dLoss[0] · d loss/dp, from the sums diceLoss kept (with the same
 * terms): dp_i = dLoss / G · ((2I + 1) − 2 y_i U) / U², with I = Σ y·p and
 * U = Σ y + Σ p + 1 over the segment of element i, plus
 * dLoss · λ/n · (p_i − y_i) / (p_i (1 − p_i)) where p_i is inside the clip.
 * With wrt 'logits', p = sigmoid(z) and dp is dLoss[0] · d loss/dz instead:
 * the Dice term times p_i (1 − p_i), plus dLoss · λ/n · (p_i − y_i).
 */
export function diceLossBackward(gpu: Gpu, p: GpuTensor, y: GpuTensor, sums: GpuTensor, dLoss: GpuTensor, dp: GpuTensor, terms: DiceTerms = {}, wrt: 'p' | 'logits' = 'p'): void {
  const op = 'diceLossBackward';
  checkSameShape(op, ['p', 'y', 'dp'], [p, y, dp]);
  requireF32(op, { p, y, sums, dLoss, dp });
  const { groups, seg, bce } = checkTerms(op, p.shape, terms);
  checkShape(op, 'sums', sums, [4 * groups]);
  checkShape(op, 'dLoss', dLoss, [1]);
  checkNoAliasing(op, { p, y, sums, dLoss }, { dp });
  const n = numel(p.shape);
  const q = perInvocation(seg);
  const { workgroups, rowThreads } = grid1d(n / q, GROUP, gpu.limits.maxComputeWorkgroupsPerDimension);
  DICE.dispatch(gpu, {
    entry: q === 4 ? 'backward4' : 'backward',
    label: `${op} ${shapeStr(p.shape)}${wrt === 'logits' ? ' with respect to the logits' : ''}`,
    bind: { y_in: y.view, sums_in: sums.view, dloss: dLoss.view, dp: dp.view, p_in: p.view }, // p is read for the cross-entropy term and the logits' only
    uniforms: { n: n / q, stride: rowThreads, seg: seg / q, groups, bce, count: n },
    overrides: { LOGITS: wrt === 'logits' ? 1 : 0 },
    workgroups,
  });
}
