/**
 * The convolution planner: the one place that decides how a convolution GEMM
 * runs. It is pure (no device, no buffers): from the adapter's capabilities
 * (ConvCaps) and the GEMM's description (GemmShape) it returns a plan naming
 * the formulation, its shader and constants, the grid, and any pass before or
 * after it. gemm.ts carries a plan out; plan.test.ts checks plans
 * as a table.
 *
 * Formulations:
 * - 'tiled' (conv_tiled.wgsl): f32 tiles staged in workgroup memory; GPUs.
 * - 'mma' (conv_mma.wgsl): f16 operands on subgroup matrices, f32 sums; GPUs
 *   running mixed precision.
 * - 'direct' (conv_direct.wgsl): no workgroup memory, no subgroups; the
 *   readable reference, the fallback where the others' index packing does not
 *   reach, and software adapters without 8-wide subgroups.
 * - 'rows' and 'winograd' (src/software/): software adapters whose
 *   subgroups are exactly 8 invocations, as lavapipe's on AVX2.
 */
/** The activation fused into a forward GEMM's store (activation.wgsl). */
export type Activation = 'none' | 'relu' | 'sigmoid' | 'elu';

/** The convolution a GEMM computes; the table of A, B and C per mode is in conv_tiled.wgsl. */
export const Mode = {
  ConvForward: 0,
  ConvInput: 1,
  ConvWeights: 2,
  UpForward: 3,
  UpInput: 4,
  UpWeights: 5,
  /** Rows formulation only: `batches` plain GEMMs, A [z][M][K] · B [z][K][N] → C [z][M][N] (Winograd's products). */
  Batched: 6,
} as const;
export type Mode = (typeof Mode)[keyof typeof Mode];

export const ACT = { none: 0, relu: 1, sigmoid: 2, elu: 3 } as const;

/** A GEMM as the planner sees it: sizes only. */
export interface GemmShape {
  mode: Mode;
  /** [batch, h, w, aC]: the NHWC tensor A is gathered from. */
  batch: number;
  h: number;
  w: number;
  aC: number;
  kh?: number;
  kw?: number;
  pad?: number;
  /** Channels of the other operand. */
  bC: number;
  m: number;
  n: number;
  k: number;
  activation?: Activation;
  accumulate?: boolean;
  /** A bias is added (forward modes). */
  bias?: boolean;
  /** Weight gradients: the bias gradient is wanted too. */
  biasGradient?: boolean;
  /** Modes 1, 4: dx is multiplied by [x > 0] as it is stored (the shaders' MASK). */
  mask?: boolean;
  /** Mode 6: products in the batch. */
  batches?: number;
  /** Bytes bound for A and B (a vec4 view needs at least 16). */
  aBytes: number;
  bBytes: number;
  /** A, B or C is stored as f16: only the mixed-precision shader reads and writes those. */
  f16?: boolean;
  /** B is stored as f16 (mmaDirectB may then load its matrices from memory as they are). */
  bF16?: boolean;
}

export type Formulation = 'tiled' | 'mma' | 'direct' | 'rows';
export type Precision = 'fp32' | 'mixed';

/**
 * Tile shapes of the tiled shader, named rows × columns of C per workgroup:
 * [WG_X, WG_Y, RM, RN] (invocations along columns and rows, rows and columns
 * per invocation).
 */
export const TILE_SHAPES = {
  '64x128': [16, 16, 4, 8],
  '64x64': [16, 16, 4, 4],
  '32x64': [16, 8, 4, 4],
  '64x32': [8, 16, 4, 4],
} as const satisfies Record<string, readonly [number, number, number, number]>;
export type TileShape = keyof typeof TILE_SHAPES;

/**
 * Tiles of the mixed-precision shader, rows × columns × depth (k staged at
 * a time); the 16-deep ones stage half as much, so that double-buffered
 * (mmaDoubleBuffer) they fit in 32 KiB of workgroup memory.
 */
export const MMA_TILES = ['64x64x32', '64x64x64', '128x64x32', '64x128x32', '128x128x32', '128x32x32', '64x32x32', '32x64x32', '32x32x32', '128x64x16', '128x128x16'] as const;
export type MmaTile = (typeof MMA_TILES)[number];
export const MMA_DEFAULT_TILE: MmaTile = '128x64x32';
/**
 * The tiles `mmaTile: 'auto'` picks from per GEMM, largest first: 32 columns
 * where C has at most 32 (no half-empty tiles on the 32-channel layers), else
 * 64.
 */
export const MMA_AUTO_TILES: Record<'narrow' | 'wide', readonly MmaTile[]> = {
  narrow: ['128x32x32', '64x32x32', '32x32x32'],
  wide: ['128x64x32', '64x64x32', '32x64x32'],
};

/** Choices tests and benchmarks force; a user never needs them. */
export interface ConvOverrides {
  /** The formulation for every GEMM ('mma' comes from the precision instead). */
  formulation?: Exclude<Formulation, 'mma'>;
  tile?: TileShape;
  /** One mixed-precision tile for every GEMM, or 'auto': a tile per GEMM by its shape (mmaTileFor). */
  mmaTile?: MmaTile | 'auto';
  /** The mixed-precision shader fetches the next k step while it multiplies (conv_mma.wgsl's PREFETCH). */
  mmaPrefetch?: boolean;
  /** Each subgroup of the mixed-precision shader holds 4 rows of result matrices instead of 2 (conv_mma.wgsl's WM). */
  mmaTall?: boolean;
  /** … and 4 columns of them instead of 2 (conv_mma.wgsl's WN); with mmaTall, 4 × 4. */
  mmaWide?: boolean;
  /**
   * The mixed-precision shader stages two pairs of tiles (conv_mma.wgsl's
   * STAGES = 2): each k step multiplies one while the next step, fetched
   * before, is staged into the other, one barrier a step.
   */
  mmaDoubleBuffer?: boolean;
  /**
   * false: the mixed-precision shader decodes each quad's k, even where one
   * decode serves the whole k step (conv_mma.wgsl's STEP_TAP and
   * STEP_PIXEL, on where they apply).
   */
  mmaStepDecode?: boolean;
  /**
   * The mixed-precision shader's subgroups load B's matrices straight from
   * memory, unstaged (conv_mma.wgsl's B_GLOBAL), where B is a weight
   * gradient's ∂output stored in f16 that fills whole tiles and k steps; a
   * split's k is then a multiple of 64.
   */
  mmaDirectB?: boolean;
  /** Winograd on 3 × 3 layers of the rows formulation: by shape (default), always where possible, or never. */
  winograd?: 'auto' | 'always' | 'never';
  /** Bytes of transformed input and products one Winograd pass may hold. */
  winogradScratch?: number;
  winogradTile?: 2 | 4;
  /** How mixed precision stores activations and their gradients: f16 (its default) or f32. */
  storage?: 'f32' | 'f16';
  /**
   * Split the reduction of forward convolutions and ∂input across
   * workgroups where C has few tiles (reductionSplits), on the tiled and
   * mma shaders.
   */
  splitK?: boolean;
}

/**
 * The mixed-precision shader's configuration for one GEMM, as the tuner
 * (tune.ts) picks it: every key set, so that it replaces the device's
 * overrides of these keys wholly.
 */
export type MmaChoice = Required<Pick<ConvOverrides, 'mmaTile'>> & Pick<ConvOverrides, 'mmaPrefetch' | 'mmaTall' | 'mmaWide' | 'mmaDoubleBuffer' | 'mmaStepDecode' | 'splitK' | 'mmaDirectB'>;

/** What the planner needs to know about a device. */
export interface ConvCaps {
  /** A software adapter with the software formulations loaded. */
  software: boolean;
  /** Subgroup sizes, or null without subgroups. */
  subgroups: { min: number; max: number } | null;
  /** The f16 → f32 subgroup-matrix shape, or null. */
  matrix: { M: number; N: number; K: number } | null;
  precision: Precision;
  limits: {
    maxComputeWorkgroupsPerDimension: number;
    maxStorageBufferBindingSize: number;
    maxComputeWorkgroupStorageSize: number;
    maxComputeInvocationsPerWorkgroup: number;
  };
  overrides?: ConvOverrides;
  /** Mixed-precision GEMMs configured by measurement (tune.ts), by gemmKey; the rest as the overrides say. */
  tuned?: ReadonlyMap<string, MmaChoice>;
}

/**
 * A GEMM's name in the tuner's table: every size and flag its plan depends
 * on, so that two GEMMs of one name run the same plan.
 */
export function gemmKey(g: GemmShape): string {
  const flags = [g.accumulate, g.bias, g.biasGradient, g.mask, g.f16, g.aBytes >= 16, g.bBytes >= 16, g.bF16].map((f) => (f ? 1 : 0)).join('');
  return [g.mode, g.batch, g.h, g.w, g.aC, g.kh ?? 1, g.kw ?? 1, g.pad ?? 0, g.bC, g.m, g.n, g.k, g.batches ?? 1, g.activation ?? 'none', flags].join(' ');
}

/** A shader family and how this GEMM specialises it. */
export interface ShaderPlan {
  family: 'conv_tiled' | 'conv_mma' | 'conv_direct' | 'conv_rows';
  /** Constants written into the source (they size arrays and workgroups). */
  defines: Record<string, number>;
  /** Pipeline-overridable constants. */
  constants: Record<string, number>;
  /**
   * What each of the family's bindings after a_src, b_src and bias holds, by
   * its WGSL name: C, a vec4 view of A or B, or a placeholder (read-only or
   * writable) where this specialisation does not use it.
   */
  bind: Readonly<Record<string, 'out' | 'a' | 'b' | 'none' | 'none-writable'>>;
}

export interface TransposePlan {
  batches: number;
  rows: number;
  cols: number;
  flip: boolean;
  grid: [number, number, number];
}

export interface WinogradPlan {
  tile: 2 | 4;
  /** Tiles per image side. */
  th: number;
  tw: number;
  /** Images per pass. */
  images: number;
}

export type GemmPlan =
  | { kind: 'empty' }
  | { kind: 'winograd'; winograd: WinogradPlan }
  | {
      kind: 'gemm';
      formulation: Formulation;
      shader: ShaderPlan;
      /** Rows and columns of C one workgroup computes. */
      tile: { rows: number; cols: number };
      grid: [number, number, number];
      /** The weights rearranged by rows first (modes 1 and 3). */
      transpose?: TransposePlan;
      /**
       * The reduction split across workgroups, then summed: over pixels for
       * weight gradients; over (tap, channel) for a forward convolution or
       * ∂input with `splitK` (finished with bias, activation, accumulation).
       */
      splits?: { count: number; kPerSplit: number };
      /**
       * The bias gradient in the GEMM (true): one more row of ones in A
       * (mode 2), or column of ones in B (mode 5); or by a pass of its own
       * (false).
       */
      biasInGemm?: boolean;
    };

/** weights_transpose.wgsl: invocations per workgroup, and columns per invocation. */
export const TRANSPOSE_GROUP = 64;
export const TRANSPOSE_COLS = 64;
export const DIRECT_ROWS = 8;
export const DIRECT_QUADS = 4;
export const ROWS_COLS = 32;
export const WINOGRAD_KERNELS = 8;

export const isWeightGradient = (g: Pick<GemmShape, 'mode'>) => g.mode === Mode.ConvWeights || g.mode === Mode.UpWeights;

/** Whether the rows formulation fits the device: subgroups of exactly 8 invocations, in order (as lavapipe's). */
export function canShareRows(caps: Pick<ConvCaps, 'subgroups'>): boolean {
  return caps.subgroups !== null && caps.subgroups.min === 8 && caps.subgroups.max === 8;
}

/**
 * The formulation of a GEMM. The tiled and mma shaders pack a staged row's
 * coordinates (y and x in 16 bits for modes 0 and 1; ky, kx in 8 bits and
 * the channel in 16 for mode 2), so larger images, channel counts or kernels
 * go to the direct shader.
 */
export function formulationFor(caps: ConvCaps, g: GemmShape): Formulation {
  const forced = caps.overrides?.formulation;
  let f: Formulation;
  if (caps.precision === 'mixed' && g.mode !== Mode.Batched) f = 'mma';
  else if (forced) f = forced;
  else f = caps.software ? (canShareRows(caps) ? 'rows' : 'direct') : 'tiled';
  if (g.mode === Mode.Batched) return 'rows';
  if (f !== 'tiled' && f !== 'mma') return f;
  const packs =
    g.mode === Mode.ConvForward || g.mode === Mode.ConvInput
      ? g.h < 65536 && g.w < 65536
      : g.mode === Mode.ConvWeights
        ? g.aC < 65536 && (g.kh ?? 1) < 256 && (g.kw ?? 1) < 256
        : true;
  return packs ? f : 'direct';
}

/** The plan of one convolution GEMM. */
export function planGemm(caps: ConvCaps, g: GemmShape): GemmPlan {
  const tuned = caps.tuned?.size ? caps.tuned.get(gemmKey(g)) : undefined;
  if (tuned && formulationFor(caps, g) === 'mma') caps = { ...caps, overrides: { ...caps.overrides, ...tuned } };
  if (g.f16 && formulationFor(caps, g) !== 'mma') {
    throw new Error(`f16 tensors go through the mixed-precision convolution only; this GEMM would run on '${formulationFor(caps, g)}' (set the precision to mixed on a device with f16 subgroup matrices)`);
  }
  if (isWeightGradient(g) && g.k === 0) return { kind: 'empty' };
  const winograd = winogradPlan(caps, g);
  if (winograd) return { kind: 'winograd', winograd };
  const formulation = formulationFor(caps, g);
  if (isWeightGradient(g)) return splitPlan(caps, g, formulation);
  const transpose = needsTranspose(formulation, g) ? transposePlan(caps, g) : undefined;
  const launch = launchFor(caps, formulation, g, 1);
  const tile = { rows: launch.rows, cols: launch.cols };
  const pixelRows = g.mode === Mode.ConvForward || g.mode === Mode.ConvInput;
  const splits = caps.overrides?.splitK && pixelRows && (formulation === 'tiled' || formulation === 'mma')
    ? reductionSplits(Math.ceil(g.m / launch.rows) * Math.ceil(g.n / launch.cols), g.m * g.n, g.k)
    : undefined;
  if (splits) {
    // Partial sums, raw: the finishing pass adds bias, activation and what dx held, and masks.
    launch.shader.constants.SPLIT_K = 1;
    launch.shader.constants.ACCUMULATE = 0;
    launch.shader.constants.MASK = 0;
    return { kind: 'gemm', formulation, shader: launch.shader, tile, grid: grid(formulation, launch, g.m, g.n, splits.count), transpose, splits };
  }
  return { kind: 'gemm', formulation, shader: launch.shader, tile, grid: grid(formulation, launch, g.m, g.n, g.batches ?? 1), transpose };
}

/**
 * How a forward convolution or ∂input of `tiles` tiles, `elements` elements
 * of C and a reduction of k splits it (splitK): where C has fewer than 256
 * tiles (the deep layers: few pixels, many channels, long reductions), into
 * enough splits for 256 workgroups, each walking ≥ 512 of k, the f32 slices
 * within 64 MiB; undefined where one split would do. A split's k is a
 * multiple of 64, so that every split starts a k step of any tile (TK 32 or
 * 64) and conv_mma's STEP_TAP still finds each step within one tap.
 */
export function reductionSplits(tiles: number, elements: number, k: number): { count: number; kPerSplit: number } | undefined {
  const wanted = Math.min(Math.ceil(256 / tiles), Math.floor(k / 512), Math.floor((64 * 2 ** 20) / (elements * 4)));
  if (wanted < 2) return undefined;
  const kPerSplit = Math.ceil(k / wanted / 64) * 64;
  const count = Math.ceil(k / kPerSplit);
  return count > 1 ? { count, kPerSplit } : undefined;
}

/** Rows and columns of C per workgroup, with the shader. */
interface Launch {
  shader: ShaderPlan;
  rows: number;
  cols: number;
}

function grid(f: Formulation, launch: Launch, m: number, n: number, z: number): [number, number, number] {
  const rows = Math.ceil(m / launch.rows);
  const cols = Math.ceil(n / launch.cols);
  // The tiled and mma shaders walk columns with workgroup x; the others rows.
  return f === 'tiled' || f === 'mma' ? [cols, rows, z] : [rows, cols, z];
}

/**
 * A weight gradient: the reduction over pixels (k) split so that the GPU
 * fills (tiled, mma: up to 512 workgroups, each ≥ 256 pixels) or a CPU's
 * few cores do (a few dozen of ≥ 1024 pixels; every split adds scratch to
 * write and sum). Scratch stays within 64 MiB. On tiled and mma the bias
 * gradient rides along: a row of ones in A (mode 2), a column of ones in B
 * (mode 5).
 */
function splitPlan(caps: ConvCaps, g: GemmShape, formulation: Formulation): GemmPlan {
  const gpuLike = formulation === 'tiled' || formulation === 'mma';
  const biasInGemm = (g.biasGradient ?? false) && gpuLike;
  const row = g.mode === Mode.ConvWeights;
  const shape = !biasInGemm ? g : row ? { ...g, m: g.m + 1 } : { ...g, n: g.n + 1 };
  const launch = launchFor(caps, formulation, shape, Infinity);
  if (biasInGemm) launch.shader.constants[row ? 'BIAS_ROW' : 'BIAS_COL'] = 1;
  const tiles = Math.ceil(shape.m / launch.rows) * Math.ceil(shape.n / launch.cols);
  // Matrices of B loaded from memory need whole k steps: splits of a multiple of 64.
  const step = launch.shader.constants.B_GLOBAL ? 64 : 16;
  let splits = gpuLike
    ? Math.max(1, Math.min(Math.ceil(512 / tiles), Math.floor(g.k / 256)))
    : Math.max(1, Math.min(Math.ceil(32 / tiles), Math.floor(g.k / 1024)));
  splits = Math.max(1, Math.min(splits, Math.floor((64 * 2 ** 20) / (shape.m * shape.n * 4))));
  const kPerSplit = Math.ceil(g.k / splits / step) * step;
  splits = Math.ceil(g.k / kPerSplit);
  launch.shader.constants.ACCUMULATE = 0;
  return {
    kind: 'gemm', formulation, shader: launch.shader, tile: { rows: launch.rows, cols: launch.cols }, grid: grid(formulation, launch, shape.m, shape.n, splits),
    splits: { count: splits, kPerSplit }, biasInGemm: g.biasGradient ? biasInGemm : undefined,
  };
}

function launchFor(caps: ConvCaps, f: Formulation, g: GemmShape, splits: number): Launch {
  const constants = { MODE: g.mode, ACT: ACT[g.activation ?? 'none'], ACCUMULATE: g.accumulate ? 1 : 0, MASK: g.mask ? 1 : 0 };
  if (f === 'tiled') {
    const shape = caps.overrides?.tile ?? tileShapeFor(g.m, g.n, splits);
    const [WG_X, WG_Y, RM, RN] = TILE_SHAPES[shape];
    return { shader: { family: 'conv_tiled', defines: { WG_X, WG_Y, RM, RN }, constants, bind: { out: 'out' } }, rows: WG_Y * RM, cols: WG_X * RN };
  }
  if (f === 'mma') {
    const tile = mmaTileFor(caps, g.m, g.n, splits);
    const c = mmaConstants(caps.matrix!, caps.subgroups!.max, tile, caps.limits, caps.overrides);
    if (!c) throw new Error(`the mixed-precision tile ${tile}${caps.overrides?.mmaTall || caps.overrides?.mmaWide ? ` with ${subgroupTileName(caps.overrides)} result matrices a subgroup` : ''}${caps.overrides?.mmaDoubleBuffer ? ', double-buffered,' : ''} does not fit this device's matrices and limits`);
    // vec4 loads where the channels A is read along come in fours, and B's
    // columns, or in modes 1 and 3 (B read as stored, along k) its runs along k.
    const a4 = (g.mode === Mode.UpForward ? g.k : g.aC) % 4 === 0 && g.aBytes >= 16;
    const bByCols = g.mode === Mode.ConvInput || g.mode === Mode.UpForward;
    // B's stored columns: in mode 5 with the bias gradient, all but the column of ones (splitPlan).
    const bCols = g.mode === Mode.UpWeights && g.biasGradient ? g.n - 1 : g.n;
    const b4 = (bByCols ? (g.mode === Mode.ConvInput ? g.aC : g.k) : bCols) % 4 === 0 && g.bBytes >= 16;
    // One decode a k step: the tap where forward's and ∂input's channels come in
    // whole steps, the first pixel where a weight gradient's image rows hold a step.
    const stepDecode = caps.overrides?.mmaStepDecode !== false && a4;
    const stepTap = stepDecode && (g.mode === Mode.ConvForward || g.mode === Mode.ConvInput) && g.aC % c.TK === 0;
    const stepPixel = stepDecode && g.mode === Mode.ConvWeights && g.w >= c.TK;
    // B's matrices from memory: a weight gradient's ∂output in f16, [pixel][channel] (row-major, stride n), whose columns fill
    // whole tiles and whose pixels whole k steps (a split's k then a multiple of 64), with no reads past B.
    const directB = !!caps.overrides?.mmaDirectB && g.mode === Mode.ConvWeights && !!g.bF16 && g.n % c.cols === 0 && g.k % 64 === 0;
    const { rows, cols, ...defines } = c;
    return {
      shader: {
        family: 'conv_mma', defines,
        constants: { ...constants, A4: +a4, B4: +b4, B_BY_COLS: +bByCols, PREFETCH: caps.overrides?.mmaPrefetch ? 1 : 0, STEP_TAP: +stepTap, STEP_PIXEL: +stepPixel, B_GLOBAL: +directB },
        bind: { out: 'out', a4_src: a4 ? 'a' : 'none', b4_src: b4 ? 'b' : 'none', bg_src: directB ? 'b' : 'none' },
      },
      rows, cols,
    };
  }
  if (f === 'rows') return rowsLaunch(g, constants);
  // direct: A4 when the channels A is read along come in fours, B4 when B's
  // contiguous dimension does (n, or for modes 1 and 3 the channels it shares with A).
  const aChannels = g.mode === Mode.UpForward ? g.k : g.aC;
  const a4 = aChannels % 4 === 0 && g.aBytes >= 16;
  const bAlongK = g.mode === Mode.ConvInput || g.mode === Mode.UpForward;
  const b4 = (bAlongK ? a4 : g.n % 4 === 0) && g.bBytes >= 16;
  const group = cpuGroup(g.m, DIRECT_ROWS);
  return {
    shader: {
      family: 'conv_direct', defines: { ROWS: DIRECT_ROWS, QUADS: DIRECT_QUADS },
      constants: { ...constants, A4: +a4, B4: +b4, GROUP: group }, bind: { out: 'out', a4: a4 ? 'a' : 'none', b4: b4 ? 'b' : 'none' },
    },
    rows: group * DIRECT_ROWS, cols: 4 * DIRECT_QUADS,
  };
}

/**
 * The tiled shader's tile for a GEMM of m × n (split `splits` ways along k;
 * Infinity when the split is still to be chosen to fill the GPU): the largest
 * of 64 × 128, 64 × 64 and 32 × 64 no wider than C that still gives ≥ 256
 * workgroups (two per multiprocessor of a large GPU), else 32 × 64; 64 × 32
 * where C has at most 32 columns.
 */
export function tileShapeFor(m: number, n: number, splits = 1): TileShape {
  if (n <= 32) return '64x32';
  const groups = (shape: TileShape) => {
    const [wgX, wgY, rm, rn] = TILE_SHAPES[shape];
    return Math.ceil(m / (wgY * rm)) * Math.ceil(n / (wgX * rn)) * splits;
  };
  const order = (['64x128', '64x64', '32x64'] as const).filter((s) => TILE_SHAPES[s][0] * TILE_SHAPES[s][3] <= Math.max(n, 64));
  return order.find((s) => groups(s) >= 256) ?? '32x64';
}

/** Which result matrices each subgroup of the mixed-precision shader holds: rows (WM) × columns (WN). */
export type SubgroupTiles = Pick<ConvOverrides, 'mmaTall' | 'mmaWide'>;
/** What sizes the mixed-precision shader's workgroup besides its tile: the subgroup tiles and the staged pairs. */
export type MmaShape = SubgroupTiles & Pick<ConvOverrides, 'mmaDoubleBuffer'>;

/** "2 × 2", "4 × 2", "2 × 4" or "4 × 4": a subgroup's result matrices, rows × columns. */
export function subgroupTileName(sub: SubgroupTiles = {}): string {
  return `${sub.mmaTall ? 4 : 2} × ${sub.mmaWide ? 4 : 2}`;
}

/**
 * The mixed-precision shader's constants for a tile on a matrix shape and
 * subgroup size, or null where they do not fit: each subgroup holds 2 × 2
 * result matrices (4 rows of them with mmaTall, 4 columns with mmaWide),
 * whole subgroups along both sides,
 * staging loops that divide evenly, and the workgroup memory (staged f16
 * tiles with padding, twice with mmaDoubleBuffer, and one f32 result matrix
 * per subgroup) within the device's limit.
 */
export function mmaConstants(
  matrix: { M: number; N: number; K: number },
  subgroup: number,
  tile: MmaTile,
  limits: Pick<ConvCaps['limits'], 'maxComputeWorkgroupStorageSize' | 'maxComputeInvocationsPerWorkgroup'> = { maxComputeWorkgroupStorageSize: 16384, maxComputeInvocationsPerWorkgroup: 256 },
  sub: MmaShape = {},
) {
  const [rows, cols, depth] = tile.split('x').map(Number) as [number, number, number];
  const wm = sub.mmaTall ? 4 : 2;
  const wn = sub.mmaWide ? 4 : 2;
  const subY = rows / (wm * matrix.M);
  const subX = cols / (wn * matrix.N);
  const threads = subY * subX * subgroup;
  const pad = 8;
  const stages = sub.mmaDoubleBuffer ? 2 : 1;
  const bytes = 2 * stages * (Math.max(rows * (depth + pad), depth * (rows + pad)) + Math.max(depth * (cols + pad), cols * (depth + pad))) + 4 * subY * subX * matrix.M * matrix.N;
  const fits = Number.isInteger(subY) && Number.isInteger(subX) && subY >= 1 && subX >= 1 && depth % matrix.K === 0 &&
    threads <= limits.maxComputeInvocationsPerWorkgroup && ((depth * rows) / 4) % threads === 0 && ((depth * cols) / 4) % threads === 0 &&
    bytes <= limits.maxComputeWorkgroupStorageSize;
  return fits ? { SM: matrix.M, SN: matrix.N, SK: matrix.K, SG: subgroup, SUB_Y: subY, SUB_X: subX, WM: wm, WN: wn, TK: depth, STAGES: stages, rows, cols } : null;
}

/**
 * The mixed-precision tile of a GEMM of m × n (split `splits` ways along k;
 * Infinity while the split is still to be chosen): the forced one, else the
 * default (fittingMmaTile); with 'auto', as tileShapeFor does for the tiled
 * shader, the largest of MMA_AUTO_TILES that fits the device and still
 * gives ≥ 256 workgroups, else the smallest that fits.
 */
export function mmaTileFor(caps: Pick<ConvCaps, 'matrix' | 'subgroups' | 'limits' | 'overrides'>, m: number, n: number, splits = 1): MmaTile {
  const forced = caps.overrides?.mmaTile;
  if (forced !== undefined && forced !== 'auto') return forced;
  const fallback = fittingMmaTile(caps)!;
  if (forced === undefined) return fallback;
  const fitting = MMA_AUTO_TILES[n <= 32 ? 'narrow' : 'wide'].flatMap((tile) => {
    const c = mmaConstants(caps.matrix!, caps.subgroups!.max, tile, caps.limits, caps.overrides);
    return c ? [{ tile, groups: Math.ceil(m / c.rows) * Math.ceil(n / c.cols) * splits }] : [];
  });
  return (fitting.find((t) => t.groups >= 256) ?? fitting.at(-1))?.tile ?? fallback;
}

/** The default mixed-precision tile, else the first of MMA_TILES that fits; null where none does or the device has no matrices. */
export function fittingMmaTile(caps: Pick<ConvCaps, 'matrix' | 'subgroups' | 'limits' | 'overrides'>): MmaTile | null {
  const m = caps.matrix;
  if (!m || !caps.subgroups) return null;
  return [MMA_DEFAULT_TILE, ...MMA_TILES].find((t) => mmaConstants(m, caps.subgroups!.max, t, caps.limits, caps.overrides)) ?? null;
}

/**
 * Whether modes 1 and 3 rearrange the weights by rows before the GEMM (B
 * must be read by rows); the direct and mma shaders read them as stored.
 */
function needsTranspose(f: Formulation, g: GemmShape): boolean {
  if (g.mode !== Mode.ConvInput && g.mode !== Mode.UpForward) return false;
  return f !== 'direct' && f !== 'mma' && !readsWeightsAsStored(f, g);
}

/**
 * B for modes 1 and 3 with contiguous rows (weights_transpose.wgsl): conv
 * ∂input reads B[(tap, co), ci] = w[flipped tap, ci, co]; the transposed
 * forward B[ci, (a, b, co)] = w[a, b, co, ci].
 */
function transposePlan(caps: ConvCaps, g: GemmShape): TransposePlan {
  const [batches, rows, cols, flip] = g.mode === Mode.ConvInput
    ? [(g.kh ?? 1) * (g.kw ?? 1), g.n, g.aC, true]
    : [1, g.n, g.k, false];
  const grid: [number, number, number] = [Math.ceil(rows / TRANSPOSE_GROUP), Math.ceil(cols / TRANSPOSE_COLS), Math.min(batches, caps.limits.maxComputeWorkgroupsPerDimension)];
  return { batches, rows, cols, flip, grid };
}

// ---- the software formulations' parameters ---------------------------------

/**
 * Invocations per workgroup for the software formulations (`rows` rows of C
 * each): the largest of 64, 32, 16 and 8 whose last block pads M by at most
 * M / 16 more than one 8-lane vector per workgroup would (rows past M cost as
 * much as real ones).
 */
export function cpuGroup(m: number, rows: number): number {
  const padding = (group: number) => Math.ceil(m / (group * rows)) * group * rows - m;
  let group = 64;
  while (group > 8 && padding(group) > padding(8) + m / 16) group /= 2;
  return group;
}

/** GEMMs of fewer rows than this read modes 1 and 3's weights as stored and pick their rows per lane by padding. */
const FEW_ROWS = 256;

/**
 * Whether the rows shader reads modes 1 and 3's B from the weights as stored
 * (WT) rather than rearranged: only small GEMMs (fewer than FEW_ROWS rows),
 * where the rearranging pass, whose cost does not shrink with the batch,
 * outweighs WT's slower loop; needs the values along k and N in fours.
 */
function readsWeightsAsStored(f: Formulation, g: GemmShape): boolean {
  const alongK = g.mode === Mode.ConvInput ? g.aC : g.mode === Mode.UpForward ? g.k : 1;
  return f === 'rows' && g.m < FEW_ROWS && alongK % 4 === 0 && g.n % 4 === 0 && g.bBytes >= 16;
}

export type RowsPerLane = 2 | 4 | 5 | 6;

/**
 * Rows of A per lane on the rows shader (8 per subgroup for each): 4 from
 * FEW_ROWS rows on and for weight gradients (A4 reads a lane's four rows as
 * one vec4); below, the one of 6, 5, 4 and 2 that pads M least, the most
 * rows among equals.
 */
export function rowsPerLaneFor(m: number, weightGradient = false): RowsPerLane {
  if (weightGradient || m >= FEW_ROWS) return 4;
  const padded = (mine: number) => Math.ceil(m / (8 * mine)) * 8 * mine;
  return ([6, 5, 4, 2] as const).reduce<RowsPerLane>((best, mine) => (padded(mine) < padded(best) ? mine : best), 6);
}

/**
 * conv_rows.wgsl's specialisation: MINE rows per lane and GROUP with them;
 * B4 where a lane's four columns of B are one aligned vec4, O4 where C can be
 * stored a quad at a time (also co % 4 for mode 3), WT (readsWeightsAsStored),
 * A4 for weight gradients with channels in fours.
 */
function rowsLaunch(g: GemmShape, constants: Record<string, number>): Launch {
  const mine = rowsPerLaneFor(g.m, isWeightGradient(g));
  const group = cpuGroup(g.m, mine);
  const b4 = g.n % 4 === 0 && g.bBytes >= 16;
  const o4 = g.n % 4 === 0 && (g.mode !== Mode.UpForward || g.bC % 4 === 0);
  const a4 = isWeightGradient(g) && g.aC % 4 === 0 && g.aBytes >= 16;
  const wt = readsWeightsAsStored('rows', g);
  const b = b4 ? 'b' : 'none';
  return {
    shader: {
      family: 'conv_rows', defines: { MINE: mine, COLS: ROWS_COLS },
      constants: { ...constants, B4: +b4, O4: +o4, A4: +a4, WT: +wt, GROUP: group },
      // With O4 the shader writes C through out4 (vec4s), else through out.
      bind: { out: o4 ? 'none-writable' : 'out', b4: b, out4: o4 ? 'out' : 'none-writable', a4: a4 ? 'a' : 'none' },
    },
    rows: mine * group, cols: ROWS_COLS,
  };
}

const WINOGRAD_SCRATCH = 32 * 2 ** 20;
/** Layers with fewer output pixels stay on the GEMM: transforming the kernels costs the same at any batch. */
const WINOGRAD_MIN_PIXELS = 256;

/**
 * Whether a GEMM goes through Winograd F(m×m, 3×3) and how: 3 × 3 'same'
 * convolutions (forward, ∂input) on the rows formulation with channels in
 * fours, by default only with ≥ 32 channels each side and ≥ 256 output
 * pixels. The tile is 4 × 4 unless 2 × 2 needs no more products. Images per
 * pass keep the transformed input and products within the scratch budget;
 * grids and buffers stay within the device's limits.
 */
export function winogradPlan(caps: ConvCaps, g: GemmShape): WinogradPlan | null {
  if (g.mode !== Mode.ConvForward && g.mode !== Mode.ConvInput) return null;
  if (g.kh !== 3 || g.kw !== 3 || g.pad !== 1 || g.aC % 4 !== 0 || g.n % 4 !== 0 || formulationFor(caps, g) !== 'rows') return null;
  const use = caps.overrides?.winograd ?? 'auto';
  const wanted = use === 'auto' ? Math.min(g.aC, g.n) >= 32 && g.m >= WINOGRAD_MIN_PIXELS : use === 'always';
  if (!wanted) return null;
  const products = (m: number) => (m + 2) ** 2 * Math.ceil(g.h / m) * Math.ceil(g.w / m);
  const tile = caps.overrides?.winogradTile ?? (products(4) < products(2) ? 4 : 2);
  const alpha2 = (tile + 2) ** 2;
  const th = Math.ceil(g.h / tile);
  const tw = Math.ceil(g.w / tile);
  const perImage = alpha2 * th * tw * (g.aC + g.n) * 4;
  const scratch = caps.overrides?.winogradScratch ?? WINOGRAD_SCRATCH;
  const parts = Math.ceil(g.batch / Math.max(1, Math.floor(scratch / perImage)));
  const images = Math.ceil(g.batch / Math.max(1, parts));
  const most = caps.limits.maxComputeWorkgroupsPerDimension;
  const largest = alpha2 * 4 * Math.max(images * th * tw * Math.max(g.aC, g.n), g.aC * g.n);
  if (images * th > most || Math.ceil(g.aC / WINOGRAD_KERNELS) > most || largest > caps.limits.maxStorageBufferBindingSize) return null;
  return { tile, th, tw, images };
}
