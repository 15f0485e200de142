/**
 * The sums that finish split convolution GEMMs and gradients
 * (split_sum.wgsl): the slices of a split weight gradient added up, those of
 * a split forward convolution or ∂input finished with bias, activation and
 * accumulation, and per-channel sums for bias gradients.
 */
import type { BufferView, Gpu } from '../../gpu/gpu.js';
import { type DType, grid1d, perInvocation } from '../../gpu/tensor-view.js';
import { placeholder } from './device.js';
import splitSource from './split_sum.wgsl';
import activationSource from './activation.wgsl';
import { ACT, type Activation } from './plan.js';
import { declareKernel } from '../../gpu/kernel.js';

/** Invocations per workgroup, written into the shader (GROUP). */
const GROUP = 256;
const SPLIT_SUM = declareKernel({
  name: 'split_sum',
  parts: [splitSource, activationSource],
  defines: { GROUP },
  entryPoints: { reduce_splits: ['src', 'dst', 'dst2'], channel_partial_sums: ['src', 'dst'], channel_sums4: ['src', 'dst'], finish_splits: ['src', 'finished', 'bias', 'mask'] },
  uniforms: [['len', 'u32'], ['splits', 'u32'], ['rows_per_split', 'u32'], ['row_threads', 'u32'], ['first', 'u32'], ['cols', 'u32']],
  overrides: ['ACCUMULATE', 'QUADS', 'BIAS', 'ACT', 'MASK', 'BIAS_COL'],
  types: ['SRC_TYPE', 'DST_TYPE'],
});

/**
 * Where the bias gradient that rode along in a weight gradient's GEMM goes:
 * the sums from element `from` on (mode 2's row of ones), or each of
 * `channels` channels' four taps in the last of C's `cols` columns (mode
 * 5's column of ones; the weight gradient gets the other columns).
 */
export type SplitBias = { view: BufferView; from: number } | { view: BufferView; cols: number; channels: number };

/** dst (+)= Σ over splits of src's slices of `len`, with `bias` apart. */
export function reduceSplits(
  gpu: Gpu,
  sums: { src: BufferView; splits: number; len: number },
  dst: BufferView,
  accumulate: boolean,
  label: string,
  bias?: SplitBias,
): void {
  const { workgroups, rowThreads } = grid1d(sums.len, GROUP, gpu.limits.maxComputeWorkgroupsPerDimension);
  const column = bias && 'cols' in bias ? bias : null;
  SPLIT_SUM.dispatch(gpu, {
    entry: 'reduce_splits',
    label: `${label}: sum of ${sums.splits} splits`,
    bind: { src: sums.src, dst, dst2: bias?.view ?? placeholder(gpu, 'write') },
    uniforms: {
      len: sums.len, splits: sums.splits, rows_per_split: 0, row_threads: rowThreads,
      first: column ? column.channels : bias && 'from' in bias ? bias.from : sums.len, cols: column ? column.cols : 0,
    },
    overrides: { ACCUMULATE: accumulate ? 1 : 0, BIAS_COL: column ? 1 : 0 },
    workgroups,
  });
}

/**
 * A split forward convolution's or ∂input's C (rows × cols, the slices of
 * `sums` in f32) finished into `dst` in its own element type: with `bias`,
 * act(Σ + bias[column]) (a forward convolution); else Σ, added to what dst
 * holds when accumulating and zeroed where `mask` is not positive (∂input).
 */
export function finishSplits(
  gpu: Gpu,
  sums: { src: BufferView; splits: number; len: number },
  dst: BufferView,
  opts: { cols: number; bias?: BufferView; activation?: Activation; accumulate: boolean; mask?: BufferView; dstType: DType },
  label: string,
): void {
  const { workgroups, rowThreads } = grid1d(sums.len, GROUP, gpu.limits.maxComputeWorkgroupsPerDimension);
  SPLIT_SUM.dispatch(gpu, {
    entry: 'finish_splits',
    label: `${label}: sum of ${sums.splits} splits`,
    bind: { src: sums.src, finished: dst, bias: opts.bias ?? placeholder(gpu, 'read'), mask: opts.mask ?? placeholder(gpu, 'read') },
    uniforms: { len: sums.len, splits: sums.splits, rows_per_split: 0, row_threads: rowThreads, first: 0, cols: opts.cols },
    overrides: { ACCUMULATE: opts.accumulate ? 1 : 0, BIAS: opts.bias ? 1 : 0, ACT: ACT[opts.activation ?? 'none'], MASK: opts.mask ? 1 : 0 },
    types: { DST_TYPE: opts.dstType },
    workgroups,
  });
}

/**
 * dst[c] (+)= Σ over rows of src[row, c], src a [rows × c] matrix (f32 or
 * f16; the sums f32): split across workgroups, then the splits' partial sums
 * added.
 */
export function channelSums(gpu: Gpu, src: BufferView, rows: number, c: number, dst: BufferView, accumulate: boolean, label: string, srcType: DType = 'f32'): void {
  if (rows > 0 && perInvocation(c) === 4) return channelSums4(gpu, src, rows, c, dst, accumulate, label, srcType);
  const splits = Math.max(1, Math.min(256, Math.floor(rows / 256)));
  const rowsPerSplit = Math.ceil(rows / splits);
  const scratch = gpu.acquire(splits * c * 4);
  const partials = { buffer: scratch.buffer, offset: 0, size: splits * c * 4 };
  SPLIT_SUM.dispatch(gpu, {
    entry: 'channel_partial_sums',
    label,
    bind: { src, dst: partials },
    uniforms: { len: c, splits: rows, rows_per_split: rowsPerSplit, row_threads: 0, first: 0, cols: 0 },
    types: { SRC_TYPE: srcType },
    workgroups: [Math.ceil(c / 64), splits],
  });
  reduceSplits(gpu, { src: partials, splits, len: c }, dst, accumulate, label);
  gpu.release(scratch);
}

/**
 * channelSums for c a multiple of 4 (channel_sums4): rows split so that each
 * invocation adds at least 16 (at most 512 splits), then the same entry
 * point over the partial sums; one pass when one split will do.
 */
function channelSums4(gpu: Gpu, src: BufferView, rows: number, c: number, dst: BufferView, accumulate: boolean, label: string, srcType: DType): void {
  const quads = Math.min(64, 2 ** Math.ceil(Math.log2(c / 4)));
  const lanes = GROUP / quads;
  const pass = (from: BufferView, to: BufferView, rowCount: number, rowsPerSplit: number, acc: boolean, what: string, fromType: DType = 'f32') => {
    SPLIT_SUM.dispatch(gpu, {
      entry: 'channel_sums4',
      label: `${label}${what}`,
      bind: { src: from, dst: to },
      uniforms: { len: c, splits: rowCount, rows_per_split: rowsPerSplit, row_threads: 0, first: 0, cols: 0 },
      overrides: { ACCUMULATE: acc ? 1 : 0, QUADS: quads },
      types: { SRC_TYPE: fromType },
      workgroups: [Math.ceil(c / 4 / quads), Math.ceil(rowCount / rowsPerSplit)],
    });
  };
  const rowsPerSplit = Math.ceil(rows / Math.max(1, Math.min(512, Math.floor(rows / (lanes * 16)))));
  const splits = Math.ceil(rows / rowsPerSplit);
  // One pass reads src and writes dst: WebGPU rejects that when they lie in
  // one buffer, even apart, so such a pair goes through scratch like a split.
  if (splits <= 1 && src.buffer !== dst.buffer) return pass(src, dst, rows, rows, accumulate, '', srcType);
  const scratch = gpu.acquire(splits * c * 4);
  const partials = { buffer: scratch.buffer, offset: 0, size: splits * c * 4 };
  pass(src, partials, rows, rowsPerSplit, false, ` in ${splits} splits`, srcType);
  pass(partials, dst, splits, splits, accumulate, `: sum of ${splits} splits`);
  gpu.release(scratch);
}
