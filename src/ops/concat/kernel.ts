/** Channel concatenation (the U-Net's skips) and its gradient: concat.wgsl. */
import type { Gpu } from '../../gpu/gpu.js';
import { ShapeError, shapeStr } from '../../gpu/errors.js';
import { type GpuTensor, checkRank, grid1d, numel, perInvocation, requireSameDtype } from '../../gpu/tensor-view.js';
import { checkNoAliasing } from '../../gpu/aliasing.js';
import concatSource from './concat.wgsl';
import { declareKernel } from '../../gpu/kernel.js';

/** Invocations per workgroup, written into the shader (GROUP). */
const GROUP = 256;
const CONCAT = declareKernel({
  name: 'concat',
  parts: [concatSource],
  defines: { GROUP },
  entryPoints: { concat: ['a', 'b', 'out'], concat4: ['a', 'b', 'out'], split: ['dout', 'da', 'db'], split4: ['dout', 'da', 'db'] },
  uniforms: [['count', 'u32'], ['row_threads', 'u32'], ['ca', 'u32'], ['cb', 'u32']],
  overrides: ['ACCUMULATE'],
  types: ['ELEM_TYPE'],
});

export interface SplitChannelsOptions {
  /** Add into `da` and `db` instead of overwriting them. */
  accumulate?: boolean;
}

/** Checks a [N,H,W,Ca], b [N,H,W,Cb] and whole [N,H,W,Ca+Cb]; names are the op's own. */
function checkConcatShapes(op: string, names: [string, string, string], a: GpuTensor, b: GpuTensor, whole: GpuTensor): void {
  checkRank(op, names[0], a, 4, 'N, H, W, C');
  checkRank(op, names[1], b, 4, 'N, H, W, C');
  checkRank(op, names[2], whole, 4, 'N, H, W, C');
  const want = [a.shape[0]!, a.shape[1]!, a.shape[2]!, a.shape[3]! + b.shape[3]!];
  const samePixels = [0, 1, 2].every((i) => b.shape[i] === a.shape[i]);
  if (!samePixels || whole.shape.some((d, i) => d !== want[i])) {
    throw new ShapeError(
      op,
      `${names[0]} ${shapeStr(a.shape)} and ${names[1]} ${shapeStr(b.shape)} must share N, H, W, and ${names[2]} must be ${samePixels ? shapeStr(want) : '[N, H, W, Ca + Cb]'}, got ${shapeStr(whole.shape)}`,
    );
  }
}

/**
 * Entry point, grid and uniforms for a concatenation of ca and cb channels
 * over `count` elements: four channels per invocation (the `…4` entry
 * points, counts in quads) when both channel counts are nonzero multiples of
 * 4 and the tensors are not empty (a vec4 view needs 16 bytes).
 */
function launch(gpu: Gpu, entry: 'concat' | 'split', count: number, ca: number, cb: number) {
  const q = perInvocation(ca, cb, count);
  const { workgroups, rowThreads } = grid1d(count / q, GROUP, gpu.limits.maxComputeWorkgroupsPerDimension);
  return {
    entry: q === 4 ? (`${entry}4` as const) : entry,
    workgroups,
    uniforms: { count: count / q, row_threads: rowThreads, ca: ca / q, cb: cb / q },
  };
}

/** out = [a, b] along channels (a's channels first; all f32 or all f16); a [N,H,W,Ca], b [N,H,W,Cb], out [N,H,W,Ca+Cb]. */
export function concatChannels(gpu: Gpu, a: GpuTensor, b: GpuTensor, out: GpuTensor): void {
  const op = 'concatChannels';
  checkConcatShapes(op, ['a', 'b', 'out'], a, b, out);
  checkNoAliasing(op, { a, b }, { out });
  const type = requireSameDtype(op, { a, b, out });
  CONCAT.dispatch(gpu, {
    ...launch(gpu, 'concat', numel(out.shape), a.shape[3]!, b.shape[3]!),
    label: `${op} ${shapeStr(a.shape)} + ${shapeStr(b.shape)}`,
    bind: { a: a.view, b: b.view, out: out.view },
    types: { ELEM_TYPE: type },
  });
}

/**
 * The gradient of concatChannels: da = dOut[..., :Ca], db = dOut[..., Ca:].
 * With `accumulate` the slices are added into da and db.
 */
export function splitChannels(gpu: Gpu, dOut: GpuTensor, da: GpuTensor, db: GpuTensor, opts: SplitChannelsOptions = {}): void {
  const op = 'splitChannels';
  checkConcatShapes(op, ['da', 'db', 'dOut'], da, db, dOut);
  checkNoAliasing(op, { dOut }, { da, db });
  const type = requireSameDtype(op, { dOut, da, db });
  CONCAT.dispatch(gpu, {
    ...launch(gpu, 'split', numel(dOut.shape), da.shape[3]!, db.shape[3]!),
    label: `${op} ${shapeStr(dOut.shape)} -> ${shapeStr(da.shape)} + ${shapeStr(db.shape)}`,
    bind: { dout: dOut.view, da: da.view, db: db.view },
    types: { ELEM_TYPE: type },
    overrides: { ACCUMULATE: opts.accumulate ? 1 : 0 },
  });
}
