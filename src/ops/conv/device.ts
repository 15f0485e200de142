/**
 * What the convolutions keep per device: the precision, the choices tests
 * and benchmarks force, the tuner's table, the capabilities the planner
 * reads (ConvCaps, made once per change), the placeholder buffers bound
 * where a shader uses no buffer, and the software formulations once loaded.
 */
import { BufferUsage, type BufferView, type Gpu } from '../../gpu/gpu.js';
import { type ConvCaps, type ConvOverrides, type Formulation, MMA_TILES, type MmaChoice, Mode, type Precision, TILE_SHAPES, type WinogradPlan, canShareRows, fittingMmaTile, formulationFor, mmaConstants, subgroupTileName } from './plan.js';
import type { Gemm } from './gemm.js';
import type { DeclaredKernel } from '../../gpu/kernel.js';
import type { DType } from '../../gpu/tensor-view.js';

/** The software adapter's formulations (src/software/conv.ts), registered when that module loads. */
export interface SoftwareConv {
  /** The rows formulation (conv_rows.wgsl). */
  rows: DeclaredKernel;
  /** A 3 × 3 convolution or its ∂input through Winograd's passes. */
  winograd(gpu: Gpu, g: Gemm, plan: WinogradPlan): void;
}
let software: SoftwareConv | null = null;
export function registerSoftwareConv(s: SoftwareConv): void {
  software = s;
}
export function softwareConv(): SoftwareConv {
  if (!software) throw new Error('the software-adapter convolutions are not loaded (import src/software/conv.ts)');
  return software;
}

interface DeviceState {
  precision: Precision;
  overrides: ConvOverrides;
  caps: ConvCaps | null;
  tuned: ReadonlyMap<string, MmaChoice> | null;
  /** While the tuner times a step: the gemmKey of the GEMM being recorded, null between GEMMs. */
  marker: { key: string | null } | null;
  placeholders?: { read: BufferView; write: BufferView };
}
const states = new WeakMap<Gpu, DeviceState>();
function state(gpu: Gpu): DeviceState {
  let s = states.get(gpu);
  if (!s) states.set(gpu, (s = { precision: 'fp32', overrides: {}, caps: null, tuned: null, marker: null }));
  return s;
}

/** The planner's view of the device. */
export function capsOf(gpu: Gpu): ConvCaps {
  const s = state(gpu);
  if (!s.caps) {
    const info = gpu.adapterInfo;
    s.caps = {
      software: info.isSoftware && software !== null,
      subgroups: gpu.hasSubgroups ? { min: info.subgroupMinSize, max: info.subgroupMaxSize } : null,
      matrix: gpu.matrix,
      precision: s.precision,
      limits: gpu.limits,
      overrides: s.overrides,
      ...(s.tuned ? { tuned: s.tuned } : {}),
    };
  }
  return s.caps;
}

/**
 * Gives the planner a tuner's table (tune.ts): each GEMM it names runs the
 * mixed-precision configuration measured fastest for it; null drops it.
 */
export function setTunedConvolutions(gpu: Gpu, table: ReadonlyMap<string, MmaChoice> | null): void {
  const s = state(gpu);
  s.tuned = table && table.size ? table : null;
  s.caps = null;
  gpu.invalidatePrograms();
}

export function tunedConvolutions(gpu: Gpu): ReadonlyMap<string, MmaChoice> | null {
  return state(gpu).tuned;
}

/** The tuner's marker (set while it times a step: runGemm writes the GEMM it records into it), or null. */
export function gemmMarker(gpu: Gpu): { key: string | null } | null {
  return state(gpu).marker;
}

export function setGemmMarker(gpu: Gpu, marker: { key: string | null } | null): void {
  state(gpu).marker = marker;
}

/** Whether the device can run mixed precision: f16 subgroup matrices and a tile that fits them. */
export function canRunMixed(gpu: Gpu): boolean {
  return fittingMmaTile(capsOf(gpu)) !== null;
}

/** The precision a run gets unless told: mixed on GPUs that can run it, else fp32. */
export function defaultPrecision(gpu: Gpu): Precision {
  return canRunMixed(gpu) && !gpu.adapterInfo.isSoftware ? 'mixed' : 'fp32';
}

/**
 * Sets the convolutions' precision on this device (fp32 until set). 'mixed'
 * runs every convolution GEMM on subgroup matrices, f16 operands and f32
 * sums, and the ops store activations and their gradients as f16
 * (activationType); weights, their gradients and the loss stay float32.
 */
export function setPrecision(gpu: Gpu, precision: Precision): void {
  if (precision !== 'fp32' && precision !== 'mixed') throw new Error(`unknown precision "${String(precision)}": use fp32 or mixed`);
  if (precision === 'mixed' && !canRunMixed(gpu)) {
    const info = gpu.adapterInfo;
    const lacks = [
      !info.features.includes('shader-f16') && 'shader-f16',
      !info.features.includes('chromium-experimental-subgroup-matrix') && 'subgroup matrices (chromium-experimental-subgroup-matrix) with f16 operands and f32 results',
      !(info.subgroupMinSize > 0 && info.subgroupMinSize === info.subgroupMaxSize) && 'a single subgroup size',
    ].filter(Boolean);
    throw new Error(`mixed precision needs ${lacks.join(', ') || 'f16 subgroup matrices'}, which adapter ${info.description} does not offer; use --precision fp32`);
  }
  const s = state(gpu);
  s.precision = precision;
  s.caps = null;
  gpu.invalidatePrograms();
}

export function precisionOf(gpu: Gpu): Precision {
  return state(gpu).precision;
}

/**
 * How the autograd ops store the activations they make (and so their
 * gradients): f16 in mixed precision, whose convolutions round their
 * operands to f16 anyway (so storing them so loses nothing more, and halves
 * their memory and traffic), unless the `storage` override says f32; f32
 * otherwise.
 */
export function activationType(gpu: Gpu): DType {
  const s = state(gpu);
  return s.precision === 'mixed' ? (s.overrides.storage ?? 'f16') : 'f32';
}

/** The overrides in force on this device. */
export function convOverrides(gpu: Gpu): Readonly<ConvOverrides> {
  return state(gpu).overrides;
}

/**
 * Forces planner choices on this device, for tests that prove every path and
 * benchmarks that compare them; keys set to undefined return to the
 * planner's own choice. Refuses a formulation the device cannot run.
 */
export function setConvOverrides(gpu: Gpu, overrides: ConvOverrides): void {
  const s = state(gpu);
  const next: ConvOverrides = { ...s.overrides, ...overrides };
  for (const key of Object.keys(next) as (keyof ConvOverrides)[]) if (next[key] === undefined) delete next[key];
  const { formulation: f, tile, mmaTile, mmaPrefetch, mmaTall, mmaWide, mmaDoubleBuffer, mmaStepDecode, mmaDirectB, winograd, winogradScratch, winogradTile, storage, splitK } = next;
  if (mmaPrefetch !== undefined && typeof mmaPrefetch !== 'boolean') throw new Error(`mmaPrefetch must be true or false, not ${String(mmaPrefetch)}`);
  if (mmaTall !== undefined && typeof mmaTall !== 'boolean') throw new Error(`mmaTall must be true or false, not ${String(mmaTall)}`);
  if (mmaWide !== undefined && typeof mmaWide !== 'boolean') throw new Error(`mmaWide must be true or false, not ${String(mmaWide)}`);
  if (mmaDoubleBuffer !== undefined && typeof mmaDoubleBuffer !== 'boolean') throw new Error(`mmaDoubleBuffer must be true or false, not ${String(mmaDoubleBuffer)}`);
  if (mmaStepDecode !== undefined && typeof mmaStepDecode !== 'boolean') throw new Error(`mmaStepDecode must be true or false, not ${String(mmaStepDecode)}`);
  if (splitK !== undefined && typeof splitK !== 'boolean') throw new Error(`splitK must be true or false, not ${String(splitK)}`);
  if (mmaDirectB !== undefined && typeof mmaDirectB !== 'boolean') throw new Error(`mmaDirectB must be true or false, not ${String(mmaDirectB)}`);
  if (storage !== undefined && storage !== 'f32' && storage !== 'f16') throw new Error(`storage must be 'f32' or 'f16', not ${String(storage)}`);
  if (f !== undefined && !['tiled', 'direct', 'rows'].includes(f)) throw new Error(`unknown convolution formulation "${f}": use tiled, rows or direct`);
  if (f === 'rows' && !(gpu.adapterInfo.isSoftware && software && canShareRows(capsOf(gpu)))) {
    const { subgroupMinSize: min, subgroupMaxSize: max } = gpu.adapterInfo;
    throw new Error(`the rows convolution needs a software adapter with subgroups of exactly 8 invocations; this device has ${gpu.hasSubgroups ? `subgroups of ${min === max ? min : `${min} to ${max}`}` : 'no subgroups'}`);
  }
  if (tile !== undefined && !(tile in TILE_SHAPES)) throw new Error(`unknown tile shape "${tile}": use ${Object.keys(TILE_SHAPES).join(', ')}`);
  if (mmaTile !== undefined && mmaTile !== 'auto' && !MMA_TILES.includes(mmaTile)) throw new Error(`unknown mixed-precision tile "${mmaTile}": use ${MMA_TILES.join(', ')} or auto`);
  if ((mmaTall || mmaWide || mmaDoubleBuffer) && gpu.matrix) {
    // Larger subgroup tiles need larger tiles: refused here where none (or the forced one) fits.
    const caps = { ...capsOf(gpu), overrides: next };
    const forced = mmaTile !== undefined && mmaTile !== 'auto' ? mmaTile : null;
    const fits = forced ? caps.subgroups !== null && mmaConstants(gpu.matrix, caps.subgroups.max, forced, gpu.limits, next) !== null : fittingMmaTile(caps) !== null;
    if (!fits) throw new Error(`${mmaTall || mmaWide ? `subgroup tiles of ${subgroupTileName(next)} result matrices` : 'double-buffered tiles'}${(mmaTall || mmaWide) && mmaDoubleBuffer ? ', double-buffered,' : ''} do not fit ${forced ? `the tile ${forced} on ` : ''}this device's matrices and limits`);
  }
  if (winograd !== undefined && !['auto', 'always', 'never'].includes(winograd)) throw new Error(`winograd must be 'auto', 'always' or 'never', not ${String(winograd)}`);
  if (winogradTile !== undefined && winogradTile !== 2 && winogradTile !== 4) throw new Error(`winogradTile must be 2 or 4, not ${String(winogradTile)}`);
  if (winogradScratch !== undefined && !(winogradScratch >= 0)) throw new Error(`winogradScratch must be a number ≥ 0, not ${String(winogradScratch)}`);
  s.overrides = next;
  s.caps = null;
  gpu.invalidatePrograms();
}

/** The formulation an ordinary convolution gets on this device (for logs and benchmarks). */
export function convFormulation(gpu: Gpu): Formulation {
  return formulationFor(capsOf(gpu), { mode: Mode.ConvForward, batch: 1, h: 1, w: 1, aC: 4, bC: 4, m: 1, n: 4, k: 4, aBytes: 16, bBytes: 16 });
}

/**
 * Small buffers bound where a shader uses no buffer (no bias, no vec4 view,
 * no B read by matrix loads); never read or written. They live as long as
 * the device, outside the pool. A writable binding may not alias another of
 * the same dispatch, so it has its own. A binding that a matrix load reads
 * must hold a whole f16 matrix, so the read one holds the adapter's largest.
 */
export function placeholder(gpu: Gpu, kind: 'read' | 'write'): BufferView {
  const s = state(gpu);
  if (!s.placeholders) {
    const m = gpu.matrix;
    const size = Math.max(16, m ? 2 * Math.max(m.M, m.N) * m.K : 0);
    const make = (label: string) => ({ buffer: gpu.device.createBuffer({ size, usage: BufferUsage.STORAGE, label }), offset: 0, size });
    s.placeholders = { read: make('conv placeholder'), write: make('conv placeholder (writable)') };
  }
  return s.placeholders[kind];
}

