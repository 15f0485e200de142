/** What kernels read and write: a buffer range holding a dense float32 NHWC array. */
import type { BufferView, Gpu } from './gpu.js';
import { ShapeError, shapeStr } from './errors.js';

export interface GpuTensor {
  readonly view: BufferView;
  readonly shape: readonly number[];
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Checks that a tensor's buffer can hold its shape as float32. */
export function checkStorage(op: string, name: string, t: GpuTensor): void {
  for (const d of t.shape) {
    if (!Number.isInteger(d) || d < 0) throw new ShapeError(op, `${name} has an invalid shape ${shapeStr(t.shape)}`);
  }
  const need = numel(t.shape) * 4;
  if (t.view.size < need) {
    throw new ShapeError(op, `${name} of shape ${shapeStr(t.shape)} needs ${need} bytes but its buffer has ${t.view.size}`);
  }
}

export function checkRank(op: string, name: string, t: GpuTensor, rank: number, meaning: string): void {
  if (t.shape.length !== rank) {
    throw new ShapeError(op, `${name} must have rank ${rank} (${meaning}), got shape ${shapeStr(t.shape)}`);
  }
  checkStorage(op, name, t);
}

export function checkSameShape(op: string, names: string[], ts: GpuTensor[]): void {
  const s0 = ts[0]!.shape;
  ts.forEach((t, i) => {
    checkStorage(op, names[i]!, t);
    if (t.shape.length !== s0.length || t.shape.some((d, k) => d !== s0[k])) {
      throw new ShapeError(op, `${names[i]} has shape ${shapeStr(t.shape)} but ${names[0]} has ${shapeStr(s0)}; they must match`);
    }
  });
}

/**
 * Elements (or channels) per invocation for the kernels with vec4 forms: 4
 * when every count is a nonzero multiple of 4 (a vec4 view needs 16 bytes,
 * and quads must not straddle what the counts delimit), else 1.
 */
export function perInvocation(...counts: number[]): 1 | 4 {
  return counts.every((n) => n > 0 && n % 4 === 0) ? 4 : 1;
}

/**
 * Workgroup counts for `invocations` threads in groups of `groupSize`,
 * folded into two dimensions when one would exceed the per-dimension limit.
 * Shaders rebuild the flat index as gid.x + gid.y * rowThreads.
 */
export function grid1d(invocations: number, groupSize: number, maxPerDim: number): { workgroups: [number, number]; rowThreads: number } {
  const groups = Math.ceil(invocations / groupSize);
  if (groups <= maxPerDim) return { workgroups: [groups, 1], rowThreads: groups * groupSize };
  const x = maxPerDim;
  return { workgroups: [x, Math.ceil(groups / x)], rowThreads: x * groupSize };
}

/** A GpuTensor that owns a pooled buffer; `dispose` returns it to the pool. */
export interface OwnedGpuTensor extends GpuTensor {
  dispose(): void;
}

export function allocTensor(gpu: Gpu, shape: readonly number[], data?: Float32Array): OwnedGpuTensor {
  const n = numel(shape);
  if (data && data.length !== n) {
    throw new ShapeError('allocTensor', `${data.length} values given for shape ${shapeStr(shape)} (${n} elements)`);
  }
  const pb = gpu.acquire(Math.max(4, n * 4));
  const view = { buffer: pb.buffer, offset: 0, size: Math.max(4, n * 4) };
  if (data) gpu.upload(view, data);
  let disposed = false;
  return {
    view,
    shape: [...shape],
    dispose() {
      if (disposed) return;
      disposed = true;
      gpu.release(pb);
    },
  };
}
