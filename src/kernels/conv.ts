/**
 * Convolutions (shaders/conv_gemm.wgsl, conv_rows.wgsl, conv_broadcast.wgsl,
 * conv_direct.wgsl, each with conv_common.wgsl), Winograd F(4×4, 3×3) and
 * F(2×2, 3×3) for 3 × 3 layers on the rows formulation (winograd.wgsl with
 * winograd4.wgsl or winograd2.wgsl), the weight
 * rearrangement the tiled, rows and broadcast variants need
 * (weights_transpose.wgsl) and the split sums that finish the gradients
 * (split_sum.wgsl).
 *
 * conv2d: k × k kernels (odd k), stride 1, 'same' padding, weights in Keras
 * layout (kh, kw, in, out). convTranspose2x2: 2 × 2, stride 2, weights
 * (kh, kw, out, in). All activations NHWC float32.
 */
import { BufferUsage, type Gpu, type BufferView } from './gpu.js';
import { ShapeError, shapeStr } from './errors.js';
import { type GpuTensor, type OwnedGpuTensor, allocTensor, checkRank, checkStorage, grid1d, numel, perInvocation } from './tensor-view.js';
import { checkNoAliasing } from './aliasing.js';
import gemmSource from '../../shaders/conv_gemm.wgsl';
import mmaSource from '../../shaders/conv_mma.wgsl';
import gatherSource from '../../shaders/conv_gather.wgsl';
import directSource from '../../shaders/conv_direct.wgsl';
import broadcastSource from '../../shaders/conv_broadcast.wgsl';
import rowsSource from '../../shaders/conv_rows.wgsl';
import commonSource from '../../shaders/conv_common.wgsl';
import splitSource from '../../shaders/split_sum.wgsl';
import transposeSource from '../../shaders/weights_transpose.wgsl';
import winogradShader from '../../shaders/winograd.wgsl';
import winograd2Shader from '../../shaders/winograd2.wgsl';
import winograd4Shader from '../../shaders/winograd4.wgsl';
import activationSource from '../../shaders/activation.wgsl';

export type Activation = 'none' | 'relu' | 'sigmoid';
const ACT = { none: 0, relu: 1, sigmoid: 2 } as const;

const enum Mode {
  ConvForward = 0,
  ConvInput = 1,
  ConvWeights = 2,
  UpForward = 3,
  UpInput = 4,
  UpWeights = 5,
  /** conv_rows.wgsl only: `batches` plain GEMMs, A [z][M][K] · B [z][K][N] → C [z][M][N]. */
  Batched = 6,
}

/**
 * Four formulations of the same GEMMs (see the shaders' headers):
 * 'tiled' stages tiles of A and B in workgroup memory, the tile's shape
 * chosen per GEMM from TILE_SHAPES (for GPUs);
 * 'rows' (CPU adapters whose subgroups are exactly 8 invocations, as
 * lavapipe's on AVX2) shares 32 rows of A across a subgroup with
 * subgroupBroadcast and gives each lane 4 columns of B;
 * 'broadcast' (CPU adapters with subgroups of ≥ 8 invocations) gives each
 * invocation ROWS rows × 32 columns and shares every row of B across the
 * subgroup with subgroupBroadcast, so B is loaded once per SIMD vector;
 * 'direct' (CPU adapters without subgroups) gives each invocation ROWS rows ×
 * 4·QUADS columns with vec4 loads where the channel counts allow.
 * The CPU variants use no workgroup memory or barriers: there invocations are
 * SIMD lanes and every per-invocation load is a loop over the lanes.
 */
export type ConvVariant = 'tiled' | 'rows' | 'broadcast' | 'direct' | 'mma';
const VARIANT_NAMES: readonly ConvVariant[] = ['tiled', 'rows', 'broadcast', 'direct'];

/**
 * 'fp32': every convolution in float32 (the exact reference path).
 * 'mixed': every convolution GEMM on subgroup matrices (conv_mma.wgsl), f16
 * operands and f32 sums, where the device has them (Gpu.matrix); tensors
 * stay float32.
 */
export type Precision = 'fp32' | 'mixed';
const precisions = new WeakMap<Gpu, Precision>();

/** Whether the device can run the mixed-precision convolutions: f16 subgroup matrices and a tile that fits them. */
export function canRunMixed(gpu: Gpu): boolean {
  return fittingMmaTile(gpu) !== null;
}

/** The precision a training or inference run gets unless told: mixed on GPUs that can run it, else fp32. */
export function defaultPrecision(gpu: Gpu): Precision {
  return canRunMixed(gpu) && !gpu.adapterInfo.isSoftware ? 'mixed' : 'fp32';
}

/** Sets the convolutions' precision on this device (fp32 until set). */
export function setPrecision(gpu: Gpu, precision: Precision): void {
  if (precision !== 'fp32' && precision !== 'mixed') throw new Error(`unknown precision "${String(precision)}": use fp32 or mixed`);
  if (precision === 'mixed' && !canRunMixed(gpu)) {
    const f = gpu.adapterInfo.features;
    const lacks = [
      !f.includes('shader-f16') && 'shader-f16',
      !f.includes('chromium-experimental-subgroup-matrix') && 'subgroup matrices (chromium-experimental-subgroup-matrix) with f16 operands and f32 results',
      !(gpu.adapterInfo.subgroupMinSize > 0 && gpu.adapterInfo.subgroupMinSize === gpu.adapterInfo.subgroupMaxSize) && 'a single subgroup size',
    ].filter(Boolean);
    throw new Error(`mixed precision needs ${lacks.join(', ') || 'f16 subgroup matrices'}, which adapter ${gpu.adapterInfo.description} does not offer; use --precision fp32`);
  }
  precisions.set(gpu, precision);
}

export function precisionOf(gpu: Gpu): Precision {
  return precisions.get(gpu) ?? 'fp32';
}
// The CPU variants' shaders; the tiled one is written per tile shape (tiledSource).
// rowsPerGroup is per invocation: their workgroup size is chosen per call (cpuGroup).
const VARIANTS: Record<'broadcast' | 'direct', { source: string; rowsPerGroup: number; colsPerGroup: number }> = {
  broadcast: { source: withCommon(broadcastSource), rowsPerGroup: shaderConst(broadcastSource, 'ROWS'), colsPerGroup: shaderConst(broadcastSource, 'COLS') },
  direct: { source: withCommon(directSource), rowsPerGroup: shaderConst(directSource, 'ROWS'), colsPerGroup: 4 * shaderConst(directSource, 'QUADS') },
};

/**
 * A convolution shader with conv_common.wgsl (parameters, bindings 0–4,
 * stores) and activation.wgsl appended: after, so that a shader's own directives
 * (`enable subgroups;`) stay first, as WGSL requires.
 */
function withCommon(source: string): string {
  return `${source}\n${commonSource}\n${activationSource}`;
}

/**
 * Tiles of the mixed-precision shader, rows × columns × depth (k staged at a
 * time). Each subgroup holds 2 × 2 result matrices, so the subgroups per
 * workgroup follow from the tile and the adapter's matrix shape.
 */
export const MMA_TILES = ['64x64x32', '64x64x64', '128x64x32', '64x128x32', '128x128x32'] as const;
export type MmaTile = (typeof MMA_TILES)[number];
const forcedMmaTile = new WeakMap<Gpu, MmaTile>();

/** Makes every mixed-precision GEMM on this device use one tile (benchmarks, tests); null restores the default. */
export function setMmaTile(gpu: Gpu, tile: MmaTile | null): void {
  if (tile === null) return void forcedMmaTile.delete(gpu);
  if (!MMA_TILES.includes(tile)) throw new Error(`unknown mixed-precision tile "${tile}": use ${MMA_TILES.join(', ')}`);
  forcedMmaTile.set(gpu, tile);
}

/**
 * The mixed-precision shader's constants for a tile on a matrix shape and
 * subgroup size, or null where they do not fit: whole subgroups along both
 * sides, at most `maxInvocations` invocations, staging loops that divide
 * evenly, and the workgroup memory (staged f16 tiles with their padding, one
 * f32 result matrix per subgroup) within `storageLimit` bytes.
 */
export function mmaConstants(matrix: { M: number; N: number; K: number }, subgroup: number, tile: MmaTile, storageLimit = 16384, maxInvocations = 256) {
  const [rows, cols, depth] = tile.split('x').map(Number) as [number, number, number];
  const subY = rows / (2 * matrix.M);
  const subX = cols / (2 * matrix.N);
  const threads = subY * subX * subgroup;
  const pad = 8;
  const bytes = 2 * (Math.max(rows * (depth + pad), depth * (rows + pad)) + depth * (cols + pad)) + 4 * subY * subX * matrix.M * matrix.N;
  const fits = Number.isInteger(subY) && Number.isInteger(subX) && subY >= 1 && subX >= 1 && depth % matrix.K === 0 &&
    threads <= maxInvocations && ((depth * rows) / 4) % threads === 0 && ((depth * cols) / 4) % threads === 0 && bytes <= storageLimit;
  return fits ? { SM: matrix.M, SN: matrix.N, SK: matrix.K, SG: subgroup, SUB_Y: subY, SUB_X: subX, TK: depth, rows, cols } : null;
}

const mmaSources = new Map<string, string>();
/** conv_mma.wgsl with its directives and constants first, the shared gather and stores after. */
function mmaShader(gpu: Gpu, tile: MmaTile): { name: string; source: string; rows: number; cols: number } {
  const matrix = gpu.matrix!;
  const c = mmaConstants(matrix, gpu.adapterInfo.subgroupMaxSize, tile, gpu.limits.maxComputeWorkgroupStorageSize, gpu.limits.maxComputeInvocationsPerWorkgroup);
  if (!c) throw new Error(`the mixed-precision tile ${tile} does not fit matrices of ${matrix.M}×${matrix.N}×${matrix.K} with subgroups of ${gpu.adapterInfo.subgroupMaxSize}`);
  const name = `conv_mma_${matrix.M}x${matrix.N}x${matrix.K}_sg${c.SG}_${tile}`;
  let source = mmaSources.get(name);
  if (!source) {
    const consts = (['SM', 'SN', 'SK', 'SG', 'SUB_Y', 'SUB_X', 'TK'] as const).map((k) => `const ${k}: u32 = ${c[k]}u;`).join('\n');
    source = `enable f16;\nenable subgroups;\nenable chromium_experimental_subgroup_matrix;\n${consts}\n${mmaSource}\n${gatherSource}\n${commonSource}\n${activationSource}`;
    mmaSources.set(name, source);
  }
  return { name, source, rows: c.rows, cols: c.cols };
}

/** The mixed-precision GEMMs' tile unless one is forced (or it does not fit the device). */
export const MMA_DEFAULT_TILE: MmaTile = '128x64x32';

const fittingTiles = new WeakMap<Gpu, MmaTile | null>();
/** The default tile, else the first of MMA_TILES that fits the device; null where none does (found once per device). */
function fittingMmaTile(gpu: Gpu): MmaTile | null {
  if (fittingTiles.has(gpu)) return fittingTiles.get(gpu)!;
  const m = gpu.matrix;
  const { maxComputeWorkgroupStorageSize: bytes, maxComputeInvocationsPerWorkgroup: invocations } = gpu.limits;
  const tile = m ? [MMA_DEFAULT_TILE, ...MMA_TILES].find((t) => mmaConstants(m, gpu.adapterInfo.subgroupMaxSize, t, bytes, invocations)) ?? null : null;
  fittingTiles.set(gpu, tile);
  return tile;
}

function mmaTileFor(gpu: Gpu): MmaTile {
  return forcedMmaTile.get(gpu) ?? fittingMmaTile(gpu)!;
}

/** The Winograd passes with the transforms of F(2×2, 3×3) or F(4×4, 3×3) before them. */
const winogradSources = {
  2: `${winograd2Shader}\n${winogradShader}\n${activationSource}`,
  4: `${winograd4Shader}\n${winogradShader}\n${activationSource}`,
} as const;
const WINOGRAD_KERNELS = shaderConst(winogradShader, 'KERNELS');

/** A `const NAME: u32 = Nu;` of a shader, so the grid follows the shader's blocking. */
function shaderConst(source: string, name: string): number {
  const m = new RegExp(`const ${name}: u32 = (\\d+)u;`).exec(source);
  if (!m) throw new Error(`shader constant ${name} not found`);
  return Number(m[1]);
}
const chosen = new WeakMap<Gpu, ConvVariant>();

/**
 * Tile shapes of the tiled shader, named rows × columns of C per workgroup:
 * [WG_X, WG_Y, RM, RN] (invocations along columns and rows, rows and columns
 * per invocation). Each stages 16 k at a time; every shape keeps the staging
 * loops whole (16 · TM/4 and 16 · TN/4 multiples of the invocation count).
 */
export const TILE_SHAPES = {
  '128x128': [16, 16, 8, 8],
  '128x64': [16, 16, 8, 4],
  '64x128': [16, 16, 4, 8],
  '64x64': [16, 16, 4, 4],
  '128x32': [8, 16, 8, 4],
  '64x32': [8, 16, 4, 4],
  '32x64': [16, 8, 4, 4],
} as const satisfies Record<string, readonly [number, number, number, number]>;
export type TileShape = keyof typeof TILE_SHAPES;

/** Rows and columns of C one workgroup of a tile shape computes. */
function tileSize(shape: TileShape): { rows: number; cols: number } {
  const [wgX, wgY, rm, rn] = TILE_SHAPES[shape];
  return { rows: wgY * rm, cols: wgX * rn };
}
const forcedTile = new WeakMap<Gpu, TileShape>();

/** Makes every tiled GEMM on this device use one tile shape (benchmarks, tests); null restores the choice by shape. */
export function setTileShape(gpu: Gpu, shape: TileShape | null): void {
  if (shape === null) return void forcedTile.delete(gpu);
  if (!(shape in TILE_SHAPES)) throw new Error(`unknown tile shape "${shape}": use ${Object.keys(TILE_SHAPES).join(', ')}`);
  forcedTile.set(gpu, shape);
}

/**
 * The tile for a GEMM of m × n (split `splits` ways along k; Infinity when
 * the split is still to be chosen to fill the GPU): the largest of 64 × 128,
 * 64 × 64 and 32 × 64 that is no wider than C and still gives the GPU ≥ 256
 * workgroups (two per multiprocessor of a large GPU), else 32 × 64; 64 × 32
 * where C has no more than 32 columns. Chosen from timing every shape at
 * every U-Net convolution on an H100 (bench --tiles all, bench/README.md):
 * tiles of 128 rows hold more registers than the GPU can keep resident with
 * enough workgroups, and lose at every one of these shapes.
 */
export function tileShapeFor(m: number, n: number, splits = 1): TileShape {
  if (n <= 32) return '64x32';
  const groups = (shape: TileShape) => {
    const { rows, cols } = tileSize(shape);
    return Math.ceil(m / rows) * Math.ceil(n / cols) * splits;
  };
  const order = (['64x128', '64x64', '32x64'] as const).filter((shape) => tileSize(shape).cols <= Math.max(n, 64));
  return order.find((shape) => groups(shape) >= 256) ?? '32x64';
}

const tiledSources = new Map<TileShape, string>();
/** conv_gemm.wgsl with its blocking constants set to a tile shape (made once per shape). */
function tiledSource(shape: TileShape): string {
  let cached = tiledSources.get(shape);
  if (!cached) tiledSources.set(shape, (cached = rewriteTile(shape)));
  return cached;
}

function rewriteTile(shape: TileShape): string {
  const [wgX, wgY, rm, rn] = TILE_SHAPES[shape];
  let source = gemmSource;
  for (const [name, value] of [['WG_X', wgX], ['WG_Y', wgY], ['RM', rm], ['RN', rn]] as const) {
    const re = new RegExp(`const ${name}: u32 = \\d+u;`);
    if (!re.test(source)) throw new Error(`shader constant ${name} not found in conv_gemm.wgsl`);
    source = source.replace(re, `const ${name}: u32 = ${value}u;`);
  }
  return `${withCommon(source)}\n${gatherSource}`;
}

/** Whether the device can run the 'broadcast' variant: subgroups of at least 8 invocations. */
export function canBroadcast(gpu: Gpu): boolean {
  return gpu.hasSubgroups && gpu.adapterInfo.subgroupMinSize >= 8;
}

/**
 * Whether the device can run the 'rows' variant: subgroups of exactly 8
 * invocations. conv_rows.wgsl also takes each 8 consecutive invocations of a
 * workgroup to be one subgroup, in order, which WebGPU does not promise but
 * lavapipe (one subgroup = one 8-wide vector of consecutive invocations)
 * does; the conv tests check every mode on the adapter they run on.
 */
export function canShareRows(gpu: Gpu): boolean {
  return gpu.hasSubgroups && gpu.adapterInfo.subgroupMinSize === 8 && gpu.adapterInfo.subgroupMaxSize === 8;
}

/**
 * The formulation used on this GPU: on software adapters 'rows' where the
 * device's subgroups are exactly 8 invocations, else 'broadcast' where they
 * are at least 8, else 'direct'; 'tiled' on GPUs.
 */
export function convVariant(gpu: Gpu): ConvVariant {
  const cpu = canShareRows(gpu) ? 'rows' : canBroadcast(gpu) ? 'broadcast' : 'direct';
  return chosen.get(gpu) ?? (gpu.adapterInfo.isSoftware ? cpu : 'tiled');
}

export function setConvVariant(gpu: Gpu, variant: ConvVariant): void {
  if (!VARIANT_NAMES.includes(variant)) throw new Error(`unknown convolution variant "${variant}": use tiled, rows, broadcast or direct`);
  if (variant === 'broadcast' && !canBroadcast(gpu)) {
    throw new Error(`the broadcast convolution needs subgroups of at least 8 invocations; this device has ${gpu.hasSubgroups ? `a minimum subgroup size of ${gpu.adapterInfo.subgroupMinSize}` : 'no subgroups'}`);
  }
  if (variant === 'rows' && !canShareRows(gpu)) {
    const { subgroupMinSize: min, subgroupMaxSize: max } = gpu.adapterInfo;
    throw new Error(`the rows convolution needs subgroups of exactly 8 invocations; this device has ${gpu.hasSubgroups ? `subgroups of ${min === max ? min : `${min} to ${max}`}` : 'no subgroups'}`);
  }
  chosen.set(gpu, variant);
}

interface Gemm {
  mode: Mode;
  label: string;
  a: BufferView;
  b: BufferView;
  bias?: BufferView;
  out: BufferView;
  /** [batch, h, w, a_c] of the tensor A is gathered from */
  batch: number;
  h: number;
  w: number;
  aC: number;
  kh?: number;
  kw?: number;
  pad?: number;
  bC: number;
  m: number;
  n: number;
  k: number;
  activation?: Activation;
  accumulate?: boolean;
  /** Mode 6: how many products (workgroups z). */
  batches?: number;
}

const placeholders = new WeakMap<Gpu, { read: BufferView; write: BufferView }>();
/**
 * Small buffers bound where a mode has no bias, no vec4 view or no vec4
 * output; the shader never touches them. Made outside the pool: they live as
 * long as the device and are not a tensor's memory. A writable binding may not
 * alias any other binding of a dispatch, so it gets a buffer of its own.
 */
function placeholder(gpu: Gpu, kind: 'read' | 'write'): BufferView {
  let p = placeholders.get(gpu);
  if (!p) {
    const make = (label: string) => ({ buffer: gpu.device.createBuffer({ size: 16, usage: BufferUsage.STORAGE, label }), offset: 0, size: 16 });
    p = { read: make('conv placeholder'), write: make('conv placeholder (writable)') };
    placeholders.set(gpu, p);
  }
  return p[kind];
}
const dummy = (gpu: Gpu) => placeholder(gpu, 'read');
const writableDummy = (gpu: Gpu) => placeholder(gpu, 'write');

function params(g: Gemm, kPerSplit: number): Uint32Array {
  return new Uint32Array([g.batch, g.h, g.w, g.aC, g.kh ?? 1, g.kw ?? 1, g.pad ?? 0, g.bC, g.m, g.n, g.k, kPerSplit]);
}

/** Records a GEMM whose C is written (or added) directly to its destination. */
function gemm(gpu: Gpu, g: Gemm): void {
  const plan = winogradPlan(gpu, g);
  if (plan) {
    winograd(gpu, g, plan);
    return;
  }
  const name = variantFor(gpu, g);
  if (name !== 'direct' && !readsWeightsAsStored(name, g) && (g.mode === Mode.ConvInput || g.mode === Mode.UpForward)) {
    // The tiled, rows (above FEW_ROWS rows) and broadcast shaders read B by rows: rearrange the weights first.
    const t = transposedWeights(gpu, g);
    gemmWith(gpu, name, { ...g, b: t.view });
    // Safe to recycle now: any later use of this buffer is recorded after the reads above.
    t.dispose();
    return;
  }
  gemmWith(gpu, name, g);
}

/**
 * The device's formulation, except that the tiled shader packs what a staged
 * row needs into 32 bits (y and x in 16 bits each for modes 0 and 1; ky, kx in
 * 8 bits and the channel in 16 for mode 2): images of 65,536 pixels or more a
 * side, 65,536 channels or more, or kernels of 256 taps or more a side go to
 * the direct shader, which has no such limit.
 */
function variantFor(gpu: Gpu, g: Gemm): ConvVariant {
  const name = precisionOf(gpu) === 'mixed' && g.mode !== Mode.Batched ? 'mma' : convVariant(gpu);
  if (name !== 'tiled' && name !== 'mma') return name;
  const packs =
    g.mode === Mode.ConvForward || g.mode === Mode.ConvInput
      ? g.h < 65536 && g.w < 65536
      : g.mode === Mode.ConvWeights
        ? g.aC < 65536 && (g.kh ?? 1) < 256 && (g.kw ?? 1) < 256
        : true;
  return packs ? name : 'direct';
}

/**
 * Whether the rows shader reads modes 1 and 3's B from the weights as stored
 * (WT): four k at a time, one vec4 per column, transposed in registers, so
 * the weights need no rearranging pass. The pass costs the same at any batch
 * and the WT loop runs 5–10 % slower than the one over rearranged rows, so
 * only GEMMs of fewer than FEW_ROWS rows (M, output pixels) take it. Needs
 * the values along k in fours (the ∂input's a_c, the transposed forward's K)
 * and N in fours.
 */
function readsWeightsAsStored(name: ConvVariant, g: Gemm): boolean {
  const alongK = g.mode === Mode.ConvInput ? g.aC : g.mode === Mode.UpForward ? g.k : 1;
  return name === 'rows' && g.m < FEW_ROWS && alongK % 4 === 0 && g.n % 4 === 0 && g.b.size >= 16;
}
/**
 * GEMMs of fewer rows (M) than this read the weights as stored and choose
 * their rows per lane (rowsPerLaneFor) on the rows shader. Interleaved pairs
 * on lavapipe, time with the rearranging pass / as stored (above 1: as
 * stored faster): batch 1, ∂input 6 × 6 512 → 512 (M 36) 1.14–1.34, 12 ×
 * 12 (144) 0.94–1.03, 24 × 24 (576) 0.98–1.01, 48 × 48 (2,304) 0.97–1.03;
 * transposed forward 6 × 6 512 → 256 1.18–1.19, 12 × 12 1.11–1.12, 48 × 48
 * 0.93; batch 8 transposed forward (288–18,432 rows) 0.93–0.96.
 */
const FEW_ROWS = 256;

const TRANSPOSE_COLS = shaderConst(transposeSource, 'COLS');

/**
 * B with contiguous rows for modes 1 and 3 (shaders/weights_transpose.wgsl):
 * conv ∂input reads B[(tap, co), ci] = w[flipped tap, ci, co]; the transposed
 * conv's forward B[ci, (a, b, co)] = w[a, b, co, ci].
 */
function transposedWeights(gpu: Gpu, g: Gemm): OwnedGpuTensor {
  const [batches, rows, cols, flip] = g.mode === Mode.ConvInput
    ? [(g.kh ?? 1) * (g.kw ?? 1), g.n, g.aC, true]
    : [1, g.n, g.k, false];
  const t = allocTensor(gpu, [batches, cols, rows]);
  gpu.dispatch({
    kernel: gpu.kernel('weights_transpose', transposeSource, { FLIP: flip ? 1 : 0 }),
    label: `${g.label}: weights rearranged by rows`,
    uniforms: new Uint32Array([batches, rows, cols]),
    storage: [g.b, t.view],
    workgroups: [Math.ceil(rows / 64), Math.ceil(cols / TRANSPOSE_COLS), Math.min(batches, gpu.limits.maxComputeWorkgroupsPerDimension)],
  });
  return t;
}

/**
 * Where 3 × 3 convolutions (forward and ∂input) go through the Winograd
 * passes (shaders/winograd.wgsl) instead of one GEMM: 'auto' (the default)
 * on the rows formulation when both channel counts are multiples of 4 and at
 * least 32 and the layer has at least WINOGRAD_MIN_PIXELS output pixels —
 * on lavapipe, batch 8, F(4×4, 3×3) took 0.45–0.9 of the GEMM's time for the
 * U-Net's layers (the least gain at 96 × 96 32 → 32), and
 * F(2×2, 3×3) at 6 × 6, where 4 × 4 tiles would mostly cover padding;
 * 'always' / 'never' for tests and benchmarks
 * (still only on the rows formulation, whose shader runs the products, and
 * where the channel counts are multiples of 4).
 */
export type WinogradUse = 'auto' | 'always' | 'never';
export interface WinogradOptions {
  /**
   * Bytes of transformed input and products (V, M) one pass may hold (the
   * transformed kernels, α² · Ci · Co values, come on top): a larger batch
   * goes in parts of equal images (at least one).
   */
  scratchBytes?: number;
  /** Output tile side: 2 for F(2×2, 3×3), 4 for F(4×4, 3×3), 'auto' to pick by shape. */
  tile?: 2 | 4 | 'auto';
}
interface WinogradChoice {
  use: WinogradUse;
  scratch: number;
  tile: 2 | 4 | 'auto';
}
const winogradChoice = new WeakMap<Gpu, WinogradChoice>();
/**
 * The default scratch budget. A 96 × 96 64 → 32 layer at batch 8 takes several
 * passes; one pass for the whole batch was faster still on lavapipe but put
 * the U-Net's step at batch 32 above 800 MiB at its peak.
 */
const WINOGRAD_SCRATCH = 32 * 2 ** 20;
/**
 * 'auto' leaves a layer with fewer output pixels (batch · h · w) than this on
 * the GEMM: transforming the kernels costs the same at any batch (α² · Ci · Co
 * values written), and below about this many pixels it outweighs the
 * multiplications saved. On lavapipe at batch 1 (best of 7, forward / ∂input,
 * GEMM against Winograd): 12 × 12 256 → 256 (144 pixels) 8.4 / 9.4 ms
 * against 11.7 / 10.5, 6 × 6 512 → 512 (36) 7.1 / 9.5 against 13.5 / 11.9,
 * 12 × 12 512 → 256 10.7 / 9.4 against 12.9 / 12.2; at 24 × 24 128 → 128
 * (576) 4.6 / 8.8 against 6.3 / 5.7; at batch 8 the 6 × 6 layers (288)
 * gain from Winograd (∂input ×5.8–6.0 tfjs-webgpu against ×3.9 on the GEMM).
 */
const WINOGRAD_MIN_PIXELS = 256;
const WINOGRAD_DEFAULT: WinogradChoice = { use: 'auto', scratch: WINOGRAD_SCRATCH, tile: 'auto' };
export function setWinograd(gpu: Gpu, use: WinogradUse, opts: WinogradOptions = {}): void {
  if (!['auto', 'always', 'never'].includes(use)) throw new Error(`setWinograd: use must be 'auto', 'always' or 'never', not ${String(use)}`);
  if (opts.tile !== undefined && ![2, 4, 'auto'].includes(opts.tile)) throw new Error(`setWinograd: tile must be 2, 4 or 'auto', not ${String(opts.tile)}`);
  if (opts.scratchBytes !== undefined && !(opts.scratchBytes >= 0)) throw new Error(`setWinograd: scratchBytes must be a number ≥ 0, not ${String(opts.scratchBytes)}`);
  winogradChoice.set(gpu, { use, scratch: opts.scratchBytes ?? WINOGRAD_DEFAULT.scratch, tile: opts.tile ?? WINOGRAD_DEFAULT.tile });
}

/** How a Winograd convolution goes through its batch: output tile side, tiles per image side and images per pass. */
interface WinogradPlan {
  tile: 2 | 4;
  th: number;
  tw: number;
  images: number;
}

/**
 * The plan of a GEMM that goes through the Winograd passes, or null where the
 * GEMM runs. The tile is 4 × 4 unless 2 × 2 tiles need no more products
 * (α² per tile: 36 · ⌈h/4⌉ · ⌈w/4⌉ against 16 · ⌈h/2⌉ · ⌈w/2⌉, equal at 6 × 6).
 * Images per pass keep the pass's transformed input and products (α² values
 * per tile and channel, in and out) within the scratch budget, the batch
 * split into equal parts (one image a pass at least, whatever its size);
 * grids and buffers stay within the device's limits.
 */
function winogradPlan(gpu: Gpu, g: Gemm): WinogradPlan | null {
  if (g.mode !== Mode.ConvForward && g.mode !== Mode.ConvInput) return null;
  if (g.kh !== 3 || g.kw !== 3 || g.pad !== 1 || perInvocation(g.aC, g.n) !== 4 || variantFor(gpu, g) !== 'rows') return null;
  const choice = winogradChoice.get(gpu) ?? WINOGRAD_DEFAULT;
  const wanted = choice.use === 'auto' ? Math.min(g.aC, g.n) >= 32 && g.m >= WINOGRAD_MIN_PIXELS : choice.use === 'always';
  if (!wanted) return null;
  const products = (m: number) => (m + 2) ** 2 * Math.ceil(g.h / m) * Math.ceil(g.w / m);
  const tile = choice.tile !== 'auto' ? choice.tile : products(4) < products(2) ? 4 : 2;
  const alpha2 = (tile + 2) ** 2;
  const th = Math.ceil(g.h / tile);
  const tw = Math.ceil(g.w / tile);
  const perImage = alpha2 * th * tw * (g.aC + g.n) * 4;
  const parts = Math.ceil(g.batch / Math.max(1, Math.floor(choice.scratch / perImage)));
  const images = Math.ceil(g.batch / Math.max(1, parts));
  const most = gpu.limits.maxComputeWorkgroupsPerDimension;
  const largest = alpha2 * 4 * Math.max(images * th * tw * Math.max(g.aC, g.n), g.aC * g.n);
  if (images * th > most || Math.ceil(g.aC / WINOGRAD_KERNELS) > most || largest > gpu.limits.maxStorageBufferBindingSize) return null;
  return { tile, th, tw, images };
}

/**
 * A 3 × 3 'same' convolution (mode 0) or its ∂input (mode 1, the kernel read
 * flipped and transposed) as Winograd F(m×m, 3×3): the kernels' and the input
 * tiles' transforms into pooled scratch, the α² products on conv_rows.wgsl
 * (mode 6), and the output transform with bias, activation or accumulation.
 * The tile passes take channels in quads (vec4s).
 */
function winograd(gpu: Gpu, g: Gemm, { tile, th, tw, images }: WinogradPlan): void {
  const cin = g.aC;
  const cout = g.n;
  const alpha2 = (tile + 2) ** 2;
  const u = allocTensor(gpu, [alpha2, cin, cout]);
  const v = allocTensor(gpu, [alpha2, images * th * tw, cin]);
  const m = allocTensor(gpu, [alpha2, images * th * tw, cout]);
  const group = (quads: number) => Math.min(64, 8 * Math.ceil(quads / 8));
  const pass = (entry: string, constants: Record<string, number>, quads: number) =>
    gpu.kernel(`winograd${tile}`, winogradSources[tile], { ...constants, WG: group(quads) }, entry);
  const uniforms = (c: number, cOut: number, n0: number, n: number) => new Uint32Array([n, g.h, g.w, c, cOut, th, tw, n * th * tw, n0]);
  gpu.dispatch({
    kernel: pass('weight_tiles', { FLIP: g.mode === Mode.ConvInput ? 1 : 0 }, cout / 4),
    label: `${g.label}: Winograd ${tile}×${tile} kernels`,
    uniforms: uniforms(cin, cout, 0, 0),
    storage: [g.b, u.view],
    workgroups: [Math.ceil(cout / 4 / group(cout / 4)), Math.ceil(cin / WINOGRAD_KERNELS)],
  });
  for (let n0 = 0; n0 < g.batch; n0 += images) {
    const n = Math.min(images, g.batch - n0);
    const part = g.batch > images ? ` (images ${n0}–${n0 + n - 1})` : '';
    gpu.dispatch({
      kernel: pass('input_tiles', {}, cin / 4),
      label: `${g.label}: Winograd ${tile}×${tile} input tiles${part}`,
      uniforms: uniforms(cin / 4, 0, n0, n),
      storage: [g.a, v.view],
      workgroups: [Math.ceil(cin / 4 / group(cin / 4)), n * th],
    });
    gemmWith(gpu, 'rows', {
      mode: Mode.Batched, label: `${g.label}: Winograd ${tile}×${tile} products${part}`,
      a: v.view, b: u.view, out: m.view,
      batch: 1, h: 1, w: 1, aC: cin, bC: cout, m: n * th * tw, n: cout, k: cin, batches: alpha2,
    });
    gpu.dispatch({
      kernel: pass('output_tiles', { ACT: ACT[g.activation ?? 'none'], BIAS: g.bias ? 1 : 0, ACCUMULATE: g.accumulate ? 1 : 0 }, cout / 4),
      label: `${g.label}: Winograd ${tile}×${tile} output tiles${part}`,
      uniforms: uniforms(cout / 4, 0, n0, n),
      storage: [m.view, g.out, g.bias ?? dummy(gpu)],
      workgroups: [Math.ceil(cout / 4 / group(cout / 4)), n * th],
    });
  }
  // Safe to recycle now: any later use of these buffers is recorded after the reads above.
  for (const t of [u, v, m]) t.dispose();
}

function gemmWith(gpu: Gpu, name: ConvVariant, g: Gemm): void {
  const launch = launchFor(gpu, name, g);
  gpu.dispatch({
    kernel: gpu.kernel(launch.shader, launch.source, {
      MODE: g.mode,
      ACT: ACT[g.activation ?? 'none'],
      ACCUMULATE: g.accumulate ? 1 : 0,
      ...launch.constants,
    }),
    label: `${g.label} [${launch.shader}]`,
    uniforms: params(g, g.k),
    storage: [g.a, g.b, g.bias ?? dummy(gpu), ...launch.outputs(g.out)],
    workgroups: workgroups(name, launch, g.m, g.n, g.batches ?? 1),
  });
}

interface Launch {
  /** The shader's name (the pipeline cache's key) and source. */
  shader: string;
  source: string;
  /** Extra pipeline constants. */
  constants: Record<string, number>;
  /** The bindings from `out` on (@binding(4) …), given where C goes. */
  outputs(out: BufferView): BufferView[];
  /** Rows and columns of C per workgroup. */
  rowsPerGroup: number;
  colsPerGroup: number;
}

function launchFor(gpu: Gpu, name: ConvVariant, g: Gemm, splits = 1): Launch {
  if (name === 'tiled') return tiledLaunch(gpu, g, splits);
  if (name === 'mma') {
    const m = mmaShader(gpu, mmaTileFor(gpu));
    // vec4 loads where the channels A is read along, and B's columns, come in fours.
    const a4 = (g.mode === Mode.UpForward ? g.k : g.aC) % 4 === 0 && g.a.size >= 16;
    const b4 = g.n % 4 === 0 && g.b.size >= 16;
    return {
      shader: m.name, source: m.source, constants: { A4: a4 ? 1 : 0, B4: b4 ? 1 : 0 },
      outputs: (out) => [out, a4 ? g.a : dummy(gpu), b4 ? g.b : dummy(gpu)], rowsPerGroup: m.rows, colsPerGroup: m.cols,
    };
  }
  if (name === 'rows') return rowsLaunch(gpu, g);
  const v = VARIANTS[name];
  const launch = name === 'direct' ? directLaunch(gpu, g) : broadcastLaunch(gpu, g);
  return { shader: `conv_${name}`, source: v.source, colsPerGroup: v.colsPerGroup, ...launch };
}

function tiledLaunch(gpu: Gpu, g: Gemm, splits: number): Launch {
  const shape = forcedTile.get(gpu) ?? tileShapeFor(g.m, g.n, splits);
  const { rows, cols } = tileSize(shape);
  return { shader: `conv_tiled_${shape}`, source: tiledSource(shape), constants: {}, outputs: (out) => [out], rowsPerGroup: rows, colsPerGroup: cols };
}

/**
 * Invocations per workgroup for the CPU variants (`rows` rows of C each): the
 * largest of 64, 32, 16 and 8 whose last block of rows pads M by at most
 * M / 16 more than one 8-lane vector per workgroup would. Rows past M cost as
 * much as real ones: a 6 × 6 layer at batch 8 has 288 pixels, 9 blocks of
 * 32, where blocks of 64 would compute 320; the ∂weights of a 32-channel
 * 3 × 3 kernel has 288 rows.
 */
function cpuGroup(m: number, rows: number): number {
  const padding = (group: number) => Math.ceil(m / (group * rows)) * group * rows - m;
  let group = 64;
  while (group > 8 && padding(group) > padding(8) + m / 16) group /= 2;
  return group;
}

/**
 * The vec4 views that the broadcast and rows shaders share (bindings 4–6):
 * - B4 when a lane's four columns of B are one aligned vec4 (n % 4 == 0),
 *   binding a vec4 view of B, or the 16-byte dummy when off;
 * - O4 when C can be stored a quad of columns at a time (n % 4 == 0, and for
 *   the transposed forward co % 4 == 0): C goes through the vec4 view `out4`
 *   and the scalar `out` gets the writable dummy, or the other way round.
 */
function quadViews(gpu: Gpu, g: Gemm): { constants: { B4: number; O4: number }; outputs: (out: BufferView) => BufferView[] } {
  const b4 = g.n % 4 === 0 && g.b.size >= 16;
  const o4 = g.n % 4 === 0 && (g.mode !== Mode.UpForward || g.bC % 4 === 0);
  const bView = b4 ? g.b : dummy(gpu);
  return {
    constants: { B4: b4 ? 1 : 0, O4: o4 ? 1 : 0 },
    outputs: (out) => o4 ? [writableDummy(gpu), bView, out] : [out, bView, writableDummy(gpu)],
  };
}

const isWeightGradient = (g: Gemm) => g.mode === Mode.ConvWeights || g.mode === Mode.UpWeights;

/**
 * The broadcast shader's specialisation: B4 and O4 (quadViews), and
 * SHARED_TAP for weight gradients whose channel count is a multiple of the
 * rows per invocation.
 */
function broadcastLaunch(gpu: Gpu, g: Gemm): Omit<Launch, 'shader' | 'source' | 'colsPerGroup'> {
  const rows = VARIANTS.broadcast.rowsPerGroup;
  const sharedTap = isWeightGradient(g) && g.aC % rows === 0;
  const group = cpuGroup(g.m, rows);
  const { constants, outputs } = quadViews(gpu, g);
  return {
    constants: { ...constants, SHARED_TAP: sharedTap ? 1 : 0, GROUP: group },
    outputs,
    rowsPerGroup: group * rows,
  };
}

const ROWS_COLS = shaderConst(rowsSource, 'COLS');
const ROWS_MINE = shaderConst(rowsSource, 'MINE');
const rowsShaders = new Map<number, string>();
/** conv_rows.wgsl with `mine` rows of A per lane (8 · mine per subgroup). */
function rowsShader(mine: number): string {
  let cached = rowsShaders.get(mine);
  if (!cached) {
    const re = /const MINE: u32 = \d+u;/;
    if (!re.test(rowsSource)) throw new Error('shader constant MINE not found in conv_rows.wgsl');
    rowsShaders.set(mine, (cached = withCommon(rowsSource.replace(re, `const MINE: u32 = ${mine}u;`))));
  }
  return cached;
}

/**
 * Rows of A per lane on the rows shader (8 per subgroup for each). 4 (32 rows
 * a subgroup) for GEMMs of FEW_ROWS rows or more, and always for the weight
 * gradients (A4 reads a lane's four rows as one vec4). Below
 * that, the one of 2, 4, 5 and 6 that pads M least, the most rows per lane
 * among equals: rows past M cost as much as real ones, and each block of rows
 * reads all of B again. Interleaved pairs on lavapipe, 6 × 6 512 → 512
 * ∂input at batch 1 (M 36): 4 rows per lane (64 rows) 1.16× the time of 2
 * (48 rows in three blocks), 6 (48 in one block) 0.72× it, and 5 (one block
 * of 40) 0.876–0.877× the time of 6 (GPU time, 15 and 21 pairs; its forward
 * 0.855–0.875, the 6 × 6 transposed forward 0.858–0.876). At batch 8, 6
 * against 4: 0.81–1.12 with no trend.
 */
export function rowsPerLaneFor(m: number, weightGradient = false): RowsPerLane {
  if (weightGradient || m >= FEW_ROWS) return 4;
  const padded = (mine: number) => Math.ceil(m / (8 * mine)) * 8 * mine;
  return ROWS_PER_LANE.reduce((best, mine) => (padded(mine) < padded(best) ? mine : best), 6);
}
export type RowsPerLane = 2 | 4 | 5 | 6;
const ROWS_PER_LANE: readonly RowsPerLane[] = [6, 5, 4, 2];
const forcedRowsPerLane = new WeakMap<Gpu, RowsPerLane>();

/**
 * Makes the rows shader give every lane `mine` rows of A on this device
 * (tests, benchmarks), except in the weight gradients, which keep 4; null
 * restores the choice by shape (rowsPerLaneFor).
 */
export function setRowsPerLane(gpu: Gpu, mine: RowsPerLane | null): void {
  if (mine === null) return void forcedRowsPerLane.delete(gpu);
  if (!ROWS_PER_LANE.includes(mine)) {
    const allowed = [...ROWS_PER_LANE].sort((x, y) => x - y);
    throw new Error(`setRowsPerLane: rows per lane must be ${allowed.slice(0, -1).join(', ')} or ${allowed.at(-1)}, not ${String(mine)}`);
  }
  forcedRowsPerLane.set(gpu, mine);
}

function rowsPerLane(gpu: Gpu, g: Gemm): RowsPerLane {
  const forced = forcedRowsPerLane.get(gpu);
  return forced && !isWeightGradient(g) ? forced : rowsPerLaneFor(g.m, isWeightGradient(g));
}

/**
 * conv_rows.wgsl's specialisation: the rows per lane (rowsPerLane) and GROUP
 * from cpuGroup with them; B4 and O4 (quadViews); WT (readsWeightsAsStored);
 * A4 for weight gradients whose channel count is a multiple of 4 (a lane's
 * four rows are then one vec4 of A), binding a vec4 view of A after the quad
 * views, or the 16-byte dummy.
 */
function rowsLaunch(gpu: Gpu, g: Gemm): Launch {
  const mine = rowsPerLane(gpu, g);
  const group = cpuGroup(g.m, mine);
  const { constants, outputs } = quadViews(gpu, g);
  const a4 = isWeightGradient(g) && g.aC % 4 === 0 && g.a.size >= 16;
  const wt = readsWeightsAsStored('rows', g);
  return {
    shader: mine === ROWS_MINE ? 'conv_rows' : `conv_rows_${mine}`,
    source: rowsShader(mine),
    constants: { ...constants, A4: a4 ? 1 : 0, WT: wt ? 1 : 0, GROUP: group },
    outputs: (out) => [...outputs(out), a4 ? g.a : dummy(gpu)],
    rowsPerGroup: mine * group,
    colsPerGroup: ROWS_COLS,
  };
}

/**
 * The direct shader's specialisation for one GEMM: A4 when the channels A is
 * read along come in fours, B4 when B's contiguous dimension does (n for
 * modes 0, 2, 4, 5; for modes 1 and 3, the flipped/transposed weights, k's
 * channels, which it shares with A); each binds a vec4 view of the tensor, or
 * the 16-byte dummy when off; GROUP from cpuGroup.
 */
function directLaunch(gpu: Gpu, g: Gemm): Omit<Launch, 'shader' | 'source' | 'colsPerGroup'> {
  const aChannels = g.mode === Mode.UpForward ? g.k : g.aC;
  const a4 = aChannels % 4 === 0 && g.a.size >= 16;
  const bAlongK = g.mode === Mode.ConvInput || g.mode === Mode.UpForward;
  const b4 = (bAlongK ? a4 : g.n % 4 === 0) && g.b.size >= 16;
  const rows = VARIANTS.direct.rowsPerGroup;
  const group = cpuGroup(g.m, rows);
  return {
    constants: { A4: a4 ? 1 : 0, B4: b4 ? 1 : 0, GROUP: group },
    outputs: (out) => [out, a4 ? g.a : dummy(gpu), b4 ? g.b : dummy(gpu)],
    rowsPerGroup: group * rows,
  };
}

function workgroups(name: ConvVariant, launch: Launch, m: number, n: number, splits: number): [number, number, number] {
  const rows = Math.ceil(m / launch.rowsPerGroup);
  const cols = Math.ceil(n / launch.colsPerGroup);
  // The tiled and mma shaders walk columns with workgroup x; the CPU variants with y.
  return name === 'tiled' || name === 'mma' ? [cols, rows, splits] : [rows, cols, splits];
}

/**
 * Records a weight-gradient GEMM whose reduction (over pixels, g.k) is split
 * across workgroups: partial sums go to a scratch buffer, then one pass adds
 * them into g.out. With `bias` (mode 2 on the tiled or mma shader), A's last row is
 * ones (BIAS_ROW, counted in g.m) and the last row of C goes to the bias's
 * gradient.
 */
function splitGemm(gpu: Gpu, g: Gemm, bias?: BufferView): void {
  if (g.k === 0) {
    // No pixels (an empty batch): the gradients are zero, or unchanged when accumulating.
    if (!g.accumulate) for (const v of bias ? [g.out, bias] : [g.out]) gpu.clear(v);
    return;
  }
  const name = variantFor(gpu, g);
  // The splits fill the GPU, so the tile need not leave room for more workgroups.
  const launch = launchFor(gpu, name, g, Infinity);
  const tiles = Math.ceil(g.m / launch.rowsPerGroup) * Math.ceil(g.n / launch.colsPerGroup);
  // Tiled: enough workgroups to fill a large GPU, each still reducing ≥ 256
  // pixels. CPU variants: a CPU has a few cores, and every split adds a slice of
  // scratch to write and sum, so a few dozen workgroups of ≥ 1024 pixels.
  let splits = name === 'tiled' || name === 'mma'
    ? Math.max(1, Math.min(Math.ceil(512 / tiles), Math.floor(g.k / 256)))
    : Math.max(1, Math.min(Math.ceil(32 / tiles), Math.floor(g.k / 1024)));
  const maxScratch = 64 * 2 ** 20;
  splits = Math.max(1, Math.min(splits, Math.floor(maxScratch / (g.m * g.n * 4))));
  const kPerSplit = Math.ceil(g.k / splits / 16) * 16;
  splits = Math.ceil(g.k / kPerSplit);
  const scratch = gpu.acquire(splits * g.m * g.n * 4);
  const scratchView = { buffer: scratch.buffer, offset: 0, size: splits * g.m * g.n * 4 };
  gpu.dispatch({
    kernel: gpu.kernel(launch.shader, launch.source, { MODE: g.mode, ACT: 0, ACCUMULATE: 0, ...(bias ? { BIAS_ROW: 1 } : {}), ...launch.constants }),
    label: `${g.label} [${launch.shader}, ${splits} splits${bias ? ', bias row' : ''}]`,
    uniforms: params(g, kPerSplit),
    storage: [g.a, g.b, dummy(gpu), ...launch.outputs(scratchView)],
    workgroups: workgroups(name, launch, g.m, g.n, splits),
  });
  const sums = { src: scratchView, splits, len: g.m * g.n };
  if (bias) reduceSplits(gpu, sums, g.out, g.accumulate ?? false, g.label, { view: bias, from: (g.m - 1) * g.n });
  else reduceSplits(gpu, sums, g.out, g.accumulate ?? false, g.label);
  // Safe to recycle now: any later use of this buffer is recorded after the reads above.
  gpu.release(scratch);
}

/**
 * dst (+)= Σ over splits of src's slices of len sums; with `second`, sums
 * from `second.from` on go to second.view instead.
 */
function reduceSplits(
  gpu: Gpu,
  sums: { src: BufferView; splits: number; len: number },
  dst: BufferView,
  accumulate: boolean,
  label: string,
  second?: { view: BufferView; from: number },
): void {
  const { workgroups, rowThreads } = grid1d(sums.len, 256, gpu.limits.maxComputeWorkgroupsPerDimension);
  gpu.dispatch({
    kernel: gpu.kernel('split_sum', splitSource, { ACCUMULATE: accumulate ? 1 : 0 }, 'reduce_splits'),
    label: `${label}: sum of ${sums.splits} splits`,
    uniforms: new Uint32Array([sums.len, sums.splits, 0, rowThreads, second?.from ?? sums.len]),
    storage: [sums.src, dst, second?.view ?? writableDummy(gpu)],
    workgroups,
  });
}

export interface GradOptions {
  /** Add into the destination instead of overwriting it. */
  accumulate?: boolean;
}

/** db[c] (+)= Σ over all pixels of dy[..., c]: the bias gradient of either convolution. */
export function biasGradient(gpu: Gpu, dy: GpuTensor, db: GpuTensor, opts: GradOptions = {}): void {
  const op = 'biasGradient';
  checkStorage(op, 'dy', dy);
  const c = dy.shape.at(-1) ?? 0;
  if (db.shape.length !== 1 || db.shape[0] !== c) {
    throw new ShapeError(op, `db must have shape [${c}] for dy ${shapeStr(dy.shape)}, got ${shapeStr(db.shape)}`);
  }
  checkStorage(op, 'db', db);
  const rows = numel(dy.shape) / c;
  const label = `${op} dy ${shapeStr(dy.shape)}`;
  // An empty dy keeps the one-channel path (a vec4 view needs 16 bytes).
  if (rows > 0 && perInvocation(c) === 4) return channelSums4(gpu, dy.view, rows, c, db.view, opts.accumulate ?? false, label);
  const splits = Math.max(1, Math.min(256, Math.floor(rows / 256)));
  const rowsPerSplit = Math.ceil(rows / splits);
  const scratch = gpu.acquire(splits * c * 4);
  const scratchView = { buffer: scratch.buffer, offset: 0, size: splits * c * 4 };
  gpu.dispatch({
    kernel: gpu.kernel('split_sum', splitSource, { ACCUMULATE: 0 }, 'channel_partial_sums'),
    label,
    uniforms: new Uint32Array([c, rows, rowsPerSplit, 0, 0]),
    storage: [dy.view, scratchView],
    workgroups: [Math.ceil(c / 64), splits],
  });
  reduceSplits(gpu, { src: scratchView, splits, len: c }, db.view, opts.accumulate ?? false, label);
  gpu.release(scratch);
}

/**
 * Column sums of a [rows × c] matrix (c a multiple of 4) into dst, by
 * split_sum.wgsl's channel_sums4: rows split across workgroups so that each
 * invocation adds at least 16 of them (at most 512 splits), then the same
 * entry point over the splits' partial sums; one pass when one split will do.
 * rows > 0.
 */
function channelSums4(gpu: Gpu, src: BufferView, rows: number, c: number, dst: BufferView, accumulate: boolean, label: string): void {
  const quads = Math.min(64, 2 ** Math.ceil(Math.log2(c / 4)));
  const lanes = 256 / quads;
  const groupsX = Math.ceil(c / 4 / quads);
  const pass = (from: BufferView, to: BufferView, rowCount: number, rowsPerSplit: number, acc: boolean, what: string) => {
    gpu.dispatch({
      kernel: gpu.kernel('split_sum', splitSource, { ACCUMULATE: acc ? 1 : 0, QUADS: quads }, 'channel_sums4'),
      label: `${label}${what}`,
      uniforms: new Uint32Array([c, rowCount, rowsPerSplit, 0, 0]),
      storage: [from, to],
      workgroups: [groupsX, Math.ceil(rowCount / rowsPerSplit)],
    });
  };
  const rowsPerSplit = Math.ceil(rows / Math.max(1, Math.min(512, Math.floor(rows / (lanes * 16)))));
  const splits = Math.ceil(rows / rowsPerSplit);
  // One pass reads src and writes dst: WebGPU rejects that when they lie in one
  // buffer, even apart, so such a pair goes through scratch like a split.
  if (splits <= 1 && src.buffer !== dst.buffer) return pass(src, dst, rows, rows, accumulate, '');
  const scratch = gpu.acquire(splits * c * 4);
  const partials = { buffer: scratch.buffer, offset: 0, size: splits * c * 4 };
  pass(src, partials, rows, rowsPerSplit, false, ` in ${splits} splits`);
  pass(partials, dst, splits, splits, accumulate, `: sum of ${splits} splits`);
  gpu.release(scratch);
}

function convShapes(op: string, x: GpuTensor, w: GpuTensor) {
  checkRank(op, 'x', x, 4, 'batch, height, width, channels');
  checkRank(op, 'w', w, 4, 'kh, kw, in, out');
  const [n, h, wd, ci] = x.shape as [number, number, number, number];
  const [kh, kw, wi, co] = w.shape as [number, number, number, number];
  if (kh !== kw || kh % 2 !== 1) throw new ShapeError(op, `kernel must be square with odd size for 'same' padding, got w ${shapeStr(w.shape)}`);
  if (wi !== ci) throw new ShapeError(op, `x has ${ci} channels but w ${shapeStr(w.shape)} expects ${wi} (w is kh, kw, in, out)`);
  return { n, h, wd, ci, kh, co, pad: (kh - 1) / 2 };
}

function expectShape(op: string, name: string, t: GpuTensor, want: number[]): void {
  if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
    throw new ShapeError(op, `${name} must have shape ${shapeStr(want)}, got ${shapeStr(t.shape)}`);
  }
  checkStorage(op, name, t);
}

/** y = act(conv(x, w) + b), 'same' padding, stride 1. */
export function conv2d(gpu: Gpu, x: GpuTensor, w: GpuTensor, b: GpuTensor, y: GpuTensor, activation: Activation = 'none'): void {
  const op = 'conv2d';
  const s = convShapes(op, x, w);
  expectShape(op, 'b', b, [s.co]);
  expectShape(op, 'y', y, [s.n, s.h, s.wd, s.co]);
  gemm(gpu, {
    mode: Mode.ConvForward,
    label: `${op} x ${shapeStr(x.shape)} w ${shapeStr(w.shape)}${activation !== 'none' ? ` ${activation}` : ''}`,
    a: x.view, b: w.view, bias: b.view, out: y.view,
    batch: s.n, h: s.h, w: s.wd, aC: s.ci, kh: s.kh, kw: s.kh, pad: s.pad, bC: s.co,
    m: s.n * s.h * s.wd, n: s.co, k: s.kh * s.kh * s.ci, activation,
  });
}

/** dx (+)= ∂/∂x of Σ dy·conv(x, w): a correlation of dy with the flipped, transposed kernel. */
export function conv2dBackwardInput(gpu: Gpu, dy: GpuTensor, w: GpuTensor, dx: GpuTensor, opts: GradOptions = {}): void {
  const op = 'conv2dBackwardInput';
  checkRank(op, 'dy', dy, 4, 'batch, height, width, out channels');
  checkRank(op, 'w', w, 4, 'kh, kw, in, out');
  const [n, h, wd, co] = dy.shape as [number, number, number, number];
  const [kh, , ci, wco] = w.shape as [number, number, number, number];
  if (wco !== co) throw new ShapeError(op, `dy has ${co} channels but w ${shapeStr(w.shape)} produces ${wco}`);
  if (w.shape[0] !== w.shape[1] || kh % 2 !== 1) throw new ShapeError(op, `kernel must be square and odd, got w ${shapeStr(w.shape)}`);
  expectShape(op, 'dx', dx, [n, h, wd, ci]);
  gemm(gpu, {
    mode: Mode.ConvInput,
    label: `${op} dy ${shapeStr(dy.shape)} w ${shapeStr(w.shape)}`,
    a: dy.view, b: w.view, out: dx.view,
    batch: n, h, w: wd, aC: co, kh, kw: kh, pad: kh - 1 - (kh - 1) / 2, bC: ci,
    m: n * h * wd, n: ci, k: kh * kh * co, accumulate: opts.accumulate ?? false,
  });
}

export interface WeightGradOptions extends GradOptions {
  /**
   * Also the bias gradient, db (+)= Σ over pixels of dy (as biasGradient): on
   * the tiled and mma formulations in the same GEMM, as one more row of ones in A, so
   * dy is not read again; elsewhere by biasGradient.
   */
  db?: GpuTensor;
}

/** dw (+)= Σ over pixels of im2col(x)ᵀ · dy; with opts.db, the bias gradient too. */
export function conv2dBackwardWeights(gpu: Gpu, x: GpuTensor, dy: GpuTensor, dw: GpuTensor, opts: WeightGradOptions = {}): void {
  const op = 'conv2dBackwardWeights';
  const s = convShapes(op, x, dw);
  expectShape(op, 'dy', dy, [s.n, s.h, s.wd, s.co]);
  if (opts.db) expectShape(op, 'db', opts.db, [s.co]);
  const g: Gemm = {
    mode: Mode.ConvWeights,
    label: `${op} x ${shapeStr(x.shape)} dy ${shapeStr(dy.shape)}`,
    a: x.view, b: dy.view, out: dw.view,
    batch: s.n, h: s.h, w: s.wd, aC: s.ci, kh: s.kh, kw: s.kh, pad: s.pad, bC: s.co,
    m: s.kh * s.kh * s.ci, n: s.co, k: s.n * s.h * s.wd, accumulate: opts.accumulate ?? false,
  };
  if (opts.db) checkNoAliasing(op, {}, { dw, db: opts.db });
  const v = variantFor(gpu, g);
  if (opts.db && (v === 'tiled' || v === 'mma')) {
    splitGemm(gpu, { ...g, m: g.m + 1, label: `${g.label} and bias` }, opts.db.view);
    return;
  }
  splitGemm(gpu, g);
  if (opts.db) biasGradient(gpu, dy, opts.db, opts);
}

function upShapes(op: string, x: GpuTensor, w: GpuTensor) {
  checkRank(op, 'x', x, 4, 'batch, height, width, channels');
  checkRank(op, 'w', w, 4, 'kh, kw, out, in');
  const [n, h, wd, ci] = x.shape as [number, number, number, number];
  const [kh, kw, co, wi] = w.shape as [number, number, number, number];
  if (kh !== 2 || kw !== 2) throw new ShapeError(op, `only 2 × 2 kernels with stride 2 are supported, got w ${shapeStr(w.shape)}`);
  if (wi !== ci) throw new ShapeError(op, `x has ${ci} channels but w ${shapeStr(w.shape)} expects ${wi} (w is kh, kw, out, in)`);
  return { n, h, wd, ci, co };
}

/** y = convTranspose(x, w) + b with a 2 × 2 kernel and stride 2: y is twice x's size. */
export function convTranspose2x2(gpu: Gpu, x: GpuTensor, w: GpuTensor, b: GpuTensor, y: GpuTensor): void {
  const op = 'convTranspose2x2';
  const s = upShapes(op, x, w);
  expectShape(op, 'b', b, [s.co]);
  expectShape(op, 'y', y, [s.n, 2 * s.h, 2 * s.wd, s.co]);
  gemm(gpu, {
    mode: Mode.UpForward,
    label: `${op} x ${shapeStr(x.shape)} w ${shapeStr(w.shape)}`,
    a: x.view, b: w.view, bias: b.view, out: y.view,
    batch: s.n, h: s.h, w: s.wd, aC: s.ci, bC: s.co,
    m: s.n * s.h * s.wd, n: 4 * s.co, k: s.ci,
  });
}

export function convTranspose2x2BackwardInput(gpu: Gpu, dy: GpuTensor, w: GpuTensor, dx: GpuTensor, opts: GradOptions = {}): void {
  const op = 'convTranspose2x2BackwardInput';
  checkRank(op, 'dy', dy, 4, 'batch, height, width, out channels');
  checkRank(op, 'w', w, 4, 'kh, kw, out, in');
  const [n, h2, w2, co] = dy.shape as [number, number, number, number];
  const [kh, kw, wco, ci] = w.shape as [number, number, number, number];
  if (kh !== 2 || kw !== 2) throw new ShapeError(op, `only 2 × 2 kernels are supported, got w ${shapeStr(w.shape)}`);
  if (wco !== co) throw new ShapeError(op, `dy has ${co} channels but w ${shapeStr(w.shape)} produces ${wco}`);
  if (h2 % 2 || w2 % 2) throw new ShapeError(op, `dy ${shapeStr(dy.shape)} must have even height and width`);
  expectShape(op, 'dx', dx, [n, h2 / 2, w2 / 2, ci]);
  gemm(gpu, {
    mode: Mode.UpInput,
    label: `${op} dy ${shapeStr(dy.shape)} w ${shapeStr(w.shape)}`,
    a: dy.view, b: w.view, out: dx.view,
    batch: n, h: h2 / 2, w: w2 / 2, aC: co, bC: ci,
    m: n * (h2 / 2) * (w2 / 2), n: ci, k: 4 * co, accumulate: opts.accumulate ?? false,
  });
}

export function convTranspose2x2BackwardWeights(gpu: Gpu, x: GpuTensor, dy: GpuTensor, dw: GpuTensor, opts: GradOptions = {}): void {
  const op = 'convTranspose2x2BackwardWeights';
  const s = upShapes(op, x, dw);
  expectShape(op, 'dy', dy, [s.n, 2 * s.h, 2 * s.wd, s.co]);
  splitGemm(gpu, {
    mode: Mode.UpWeights,
    label: `${op} x ${shapeStr(x.shape)} dy ${shapeStr(dy.shape)}`,
    a: dy.view, b: x.view, out: dw.view,
    batch: s.n, h: s.h, w: s.wd, aC: s.co, bC: s.ci,
    m: 4 * s.co, n: s.ci, k: s.n * s.h * s.wd, accumulate: opts.accumulate ?? false,
  });
}
