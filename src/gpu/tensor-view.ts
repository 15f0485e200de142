/** What kernels read and write: a buffer range holding a dense NHWC array of float32 or float16. */
import type { BufferView, Gpu } from './gpu.js';
import { ShapeError, shapeStr } from './errors.js';

/**
 * How a tensor's elements are stored. f16 holds mixed precision's
 * activations and their gradients (on devices with shader-f16); everything
 * else is f32.
 */
export type DType = 'f32' | 'f16';

export interface GpuTensor {
  readonly view: BufferView;
  readonly shape: readonly number[];
  /** f32 when absent. */
  readonly dtype?: DType;
}

export function dtypeOf(t: GpuTensor): DType {
  return t.dtype ?? 'f32';
}

/** Bytes an element takes. */
export function elementBytes(dtype: DType): number {
  return dtype === 'f16' ? 2 : 4;
}

/** Bytes a buffer needs for `count` elements: whole 4-byte words (storage bindings come in them), at least one. */
export function storageBytes(count: number, dtype: DType = 'f32'): number {
  return Math.max(4, Math.ceil((count * elementBytes(dtype)) / 4) * 4);
}

/** Refuses f16 tensors in ops that only have f32 kernels, naming the op and the tensor. */
export function requireF32(op: string, tensors: Readonly<Record<string, GpuTensor>>): void {
  for (const [name, t] of Object.entries(tensors)) {
    if (dtypeOf(t) !== 'f32') throw new ShapeError(op, `${name} is ${dtypeOf(t)}; this op takes f32 tensors only`);
  }
}

/** Refuses tensors of differing dtypes where an op reads and writes one type, naming them. */
export function requireSameDtype(op: string, tensors: Readonly<Record<string, GpuTensor>>): DType {
  const entries = Object.entries(tensors);
  const first = dtypeOf(entries[0]![1]);
  for (const [name, t] of entries) {
    if (dtypeOf(t) !== first) throw new ShapeError(op, `${name} is ${dtypeOf(t)} but ${entries[0]![0]} is ${first}; they must match`);
  }
  return first;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Checks that a tensor's buffer can hold its shape in its dtype. */
export function checkStorage(op: string, name: string, t: GpuTensor): void {
  for (const d of t.shape) {
    if (!Number.isInteger(d) || d < 0) throw new ShapeError(op, `${name} has an invalid shape ${shapeStr(t.shape)}`);
  }
  const need = numel(t.shape) * elementBytes(dtypeOf(t));
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

/** A pooled tensor; f16 data is given as float32 and rounded to the nearest f16 on upload. */
export function allocTensor(gpu: Gpu, shape: readonly number[], data?: Float32Array, dtype: DType = 'f32'): OwnedGpuTensor {
  const n = numel(shape);
  if (data && data.length !== n) {
    throw new ShapeError('allocTensor', `${data.length} values given for shape ${shapeStr(shape)} (${n} elements)`);
  }
  const bytes = storageBytes(n, dtype);
  const pb = gpu.acquire(bytes);
  const view = { buffer: pb.buffer, offset: 0, size: bytes };
  if (data) gpu.upload(view, dtype === 'f16' ? toHalfWords(data) : data);
  let disposed = false;
  return {
    view,
    shape: [...shape],
    dtype,
    dispose() {
      if (disposed) return;
      disposed = true;
      gpu.release(pb);
    },
  };
}

const halfScratch = new Float32Array(1);
const halfBits = new Uint32Array(halfScratch.buffer);

/** IEEE binary16 bits of a float32 value, rounded to nearest, ties to even (overflow to ±∞, NaN kept). */
export function toHalf(v: number): number {
  halfScratch[0] = v;
  const x = halfBits[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const man = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man ? 0x200 : 0);
  // Unbiased exponent; f16 normals have −14 … 15.
  const e = exp - 127;
  if (e > 15) return sign | 0x7c00;
  if (e >= -14) {
    let h = ((e + 15) << 10) | (man >>> 13);
    const rest = man & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++; // may carry into the exponent, up to ∞: correct
    return sign | h;
  }
  if (e < -25) return sign; // below half the smallest subnormal
  // Subnormal: the significand with its implicit bit, shifted to units of 2⁻²⁴.
  const full = man | 0x800000;
  const shift = -e - 14 + 13;
  let h = full >>> shift;
  const rest = full & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rest > half || (rest === half && (h & 1))) h++;
  return sign | h;
}

/** The float value of IEEE binary16 bits. */
export function fromHalf(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const man = h & 0x3ff;
  if (exp === 0) return sign * man * 2 ** -24;
  if (exp === 0x1f) return man ? NaN : sign * Infinity;
  return sign * (1 + man / 1024) * 2 ** (exp - 15);
}

/** Float32 values as f16 words, padded to whole 4-byte words for upload. */
export function toHalfWords(data: Float32Array): Uint16Array {
  const out = new Uint16Array(Math.ceil(data.length / 2) * 2);
  for (let i = 0; i < data.length; i++) out[i] = toHalf(data[i]!);
  return out;
}

/** `count` elements of a buffer range read back as float32, whichever dtype holds them. */
export async function readElements(gpu: Gpu, view: BufferView, count: number, dtype: DType = 'f32'): Promise<Float32Array> {
  if (dtype === 'f32') return gpu.readFloat32(view, count);
  const words = new Uint16Array(await gpu.read(view, storageBytes(count, 'f16')));
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = fromHalf(words[i]!);
  return out;
}
