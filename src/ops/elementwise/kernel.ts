/** Elementwise maps: unary.wgsl and binary.wgsl. */
import type { Gpu } from '../../gpu/gpu.js';
import { ShapeError, shapeStr } from '../../gpu/errors.js';
import { type GpuTensor, checkSameShape, checkStorage, grid1d, numel, perInvocation, requireSameDtype } from '../../gpu/tensor-view.js';
import unarySource from './unary.wgsl';
import binarySource from './binary.wgsl';
import { declareKernel } from '../../gpu/kernel.js';
import { checkNoAliasing } from '../../gpu/aliasing.js';

export const UNARY_OPS = { copy: 0, relu: 1, sigmoid: 2, affine: 3 } as const;
export type UnaryOp = keyof typeof UNARY_OPS;
const BROADCAST = 4;

export const BINARY_OPS = { add: 0, sub: 1, mul: 2, reluBackward: 3, sigmoidBackward: 4, addScaled: 5, eluBackward: 6 } as const;
export type BinaryOp = keyof typeof BINARY_OPS;

export interface ElementwiseOptions {
  /** Add into `out` instead of overwriting it. */
  accumulate?: boolean;
  /** affine: alpha·x + beta; addScaled: a + alpha·b. */
  alpha?: number;
  beta?: number;
}

/** Invocations per workgroup, written into the shader (GROUP). */
const GROUP = 256;
const UNARY = declareKernel({
  name: 'unary',
  parts: [unarySource],
  defines: { GROUP },
  entryPoints: { main: ['x', 'out'], main4: ['x', 'out'] },
  uniforms: [['n', 'u32'], ['row_threads', 'u32'], ['alpha', 'f32'], ['beta', 'f32']],
  overrides: ['OP', 'ACCUMULATE'],
  types: ['ELEM_TYPE'],
});
const BINARY = declareKernel({
  name: 'binary',
  parts: [binarySource],
  defines: { GROUP },
  entryPoints: { main: ['a', 'b', 'out'], main4: ['a', 'b', 'out'], in_place: ['io', 'b'], in_place4: ['io', 'b'] },
  uniforms: [['n', 'u32'], ['row_threads', 'u32'], ['alpha', 'f32'], ['_pad', 'f32']],
  overrides: ['OP', 'ACCUMULATE'],
  types: ['ELEM_TYPE'],
});

/** out (+)= f(x) for every element, in f32; x and out of one dtype (f32 or f16). */
export function unary(gpu: Gpu, op: UnaryOp, x: GpuTensor, out: GpuTensor, opts: ElementwiseOptions = {}): void {
  if (!(op in UNARY_OPS)) throw new ShapeError('unary', `unknown op "${op}"`);
  checkSameShape(`unary ${op}`, ['x', 'out'], [x, out]);
  mapUnary(gpu, UNARY_OPS[op], `unary ${op} ${shapeStr(x.shape)}`, x, out, opts);
}

/** out (+)= alpha · value[0] + beta everywhere: value holds one element (a GPU-resident scalar). */
export function fill(gpu: Gpu, value: GpuTensor, out: GpuTensor, opts: ElementwiseOptions = {}): void {
  checkStorage('fill', 'value', value);
  checkStorage('fill', 'out', out);
  if (numel(value.shape) !== 1) throw new ShapeError('fill', `value must hold one element, got shape ${shapeStr(value.shape)}`);
  mapUnary(gpu, BROADCAST, `fill ${shapeStr(out.shape)}`, value, out, opts);
}

/**
 * The entry point and grid of a map over n elements: four per invocation
 * (`main4`, vec4 accesses) where n is a nonzero multiple of 4 (a vec4 view
 * needs 16 bytes) and `byQuads` allows it, else one (`main`).
 */
function mapGrid(gpu: Gpu, n: number, byQuads: boolean) {
  const q = byQuads ? perInvocation(n) : 1;
  const { workgroups, rowThreads } = grid1d(n / q, GROUP, gpu.limits.maxComputeWorkgroupsPerDimension);
  return { entry: q === 4 ? ('main4' as const) : ('main' as const), workgroups, rowThreads };
}


function mapUnary(gpu: Gpu, code: number, label: string, x: GpuTensor, out: GpuTensor, opts: ElementwiseOptions): void {
  const type = requireSameDtype(label, { x, out });
  const n = numel(out.shape);
  // The broadcast reads one element of x, which a vec4 view cannot hold.
  const { entry, workgroups, rowThreads } = mapGrid(gpu, n, code !== BROADCAST);
  UNARY.dispatch(gpu, {
    entry,
    label,
    bind: { x: x.view, out: out.view },
    uniforms: { n, row_threads: rowThreads, alpha: opts.alpha ?? 1, beta: opts.beta ?? 0 },
    overrides: { OP: code, ACCUMULATE: opts.accumulate ? 1 : 0 },
    types: { ELEM_TYPE: type },
    workgroups,
  });
}

/** out (+)= f(a, b) for every element, in f32; a, b and out have one shape and one dtype (f32 or f16). */
export function binary(gpu: Gpu, op: BinaryOp, a: GpuTensor, b: GpuTensor, out: GpuTensor, opts: ElementwiseOptions = {}): void {
  if (!(op in BINARY_OPS)) throw new ShapeError('binary', `unknown op "${op}"`);
  checkSameShape(`binary ${op}`, ['a', 'b', 'out'], [a, b, out]);
  const type = requireSameDtype(`binary ${op}`, { a, b, out });
  const n = numel(a.shape);
  const { entry, workgroups, rowThreads } = mapGrid(gpu, n, true);
  BINARY.dispatch(gpu, {
    entry,
    label: `binary ${op} ${shapeStr(a.shape)}`,
    bind: { a: a.view, b: b.view, out: out.view },
    uniforms: { n, row_threads: rowThreads, alpha: opts.alpha ?? 1, _pad: 0 },
    overrides: { OP: BINARY_OPS[op], ACCUMULATE: opts.accumulate ? 1 : 0 },
    types: { ELEM_TYPE: type },
    workgroups,
  });
}

/** a = f(a, b) for every element, in f32, where a lies; a and b have one shape and one dtype. */
export function binaryInPlace(gpu: Gpu, op: BinaryOp, a: GpuTensor, b: GpuTensor, opts: Pick<ElementwiseOptions, 'alpha'> = {}): void {
  if (!(op in BINARY_OPS)) throw new ShapeError('binaryInPlace', `unknown op "${op}"`);
  checkSameShape(`binaryInPlace ${op}`, ['a', 'b'], [a, b]);
  checkNoAliasing(`binaryInPlace ${op}`, { b }, { a });
  const type = requireSameDtype(`binaryInPlace ${op}`, { a, b });
  const n = numel(a.shape);
  const { entry, workgroups, rowThreads } = mapGrid(gpu, n, true);
  BINARY.dispatch(gpu, {
    entry: entry === 'main4' ? 'in_place4' : 'in_place',
    label: `binary ${op} in place ${shapeStr(a.shape)}`,
    bind: { io: a.view, b: b.view },
    uniforms: { n, row_threads: rowThreads, alpha: opts.alpha ?? 1, _pad: 0 },
    overrides: { OP: BINARY_OPS[op], ACCUMULATE: 0 },
    types: { ELEM_TYPE: type },
    workgroups,
  });
}
