/**
 * The convolution planner (plan.ts) as a table, without a
 * GPU: for a device's capabilities and a GEMM, the formulation, shader and
 * passes it plans; and for every row, that the plan covers the GEMM (the grid
 * reaches every row and column of C, the splits every pixel) within the
 * device's limits. The kernels themselves are proven on a device by
 * conv.test.ts and test/mixed.
 */
import { describe, expect, it } from 'vitest';
import { type ConvCaps, type ConvOverrides, type GemmPlan, type GemmShape, MMA_DEFAULT_TILE, Mode, type Precision, isWeightGradient, mmaConstants, mmaTileFor, planGemm, reductionSplits, rowsPerLaneFor } from './plan.js';

const limits = { maxComputeWorkgroupsPerDimension: 65535, maxStorageBufferBindingSize: 2 ** 31 - 4, maxComputeWorkgroupStorageSize: 16384, maxComputeInvocationsPerWorkgroup: 256 };
const h200 = (precision: Precision = 'fp32', overrides = {}): ConvCaps => ({ software: false, subgroups: { min: 32, max: 32 }, matrix: { M: 16, N: 16, K: 16 }, precision, limits, overrides });
const lavapipe = (precision: Precision = 'fp32', overrides = {}): ConvCaps => ({
  software: true, subgroups: { min: 8, max: 8 }, matrix: { M: 8, N: 8, K: 8 }, precision, overrides,
  limits: { ...limits, maxStorageBufferBindingSize: 2 ** 27 },
});
/** A software adapter without subgroups of 8 (SwiftShader, or lavapipe without AVX2). */
const otherSoftware: ConvCaps = { software: true, subgroups: { min: 4, max: 4 }, matrix: null, precision: 'fp32', limits };

// The GEMMs of the ops (kernel.ts) by their tensors' shapes.
const bytes = (...dims: number[]) => 4 * dims.reduce((a, b) => a * b, 1);
const forward = (n: number, h: number, w: number, ci: number, co: number, k = 3): GemmShape => ({
  mode: Mode.ConvForward, batch: n, h, w, aC: ci, kh: k, kw: k, pad: (k - 1) / 2, bC: co, m: n * h * w, n: co, k: k * k * ci,
  activation: 'relu', bias: true, aBytes: bytes(n, h, w, ci), bBytes: bytes(k, k, ci, co),
});
const input = (n: number, h: number, w: number, ci: number, co: number, k = 3): GemmShape => ({
  mode: Mode.ConvInput, batch: n, h, w, aC: co, kh: k, kw: k, pad: k - 1 - (k - 1) / 2, bC: ci, m: n * h * w, n: ci, k: k * k * co,
  aBytes: bytes(n, h, w, co), bBytes: bytes(k, k, ci, co),
});
const weights = (n: number, h: number, w: number, ci: number, co: number, biasGradient = true, k = 3): GemmShape => ({
  mode: Mode.ConvWeights, batch: n, h, w, aC: ci, kh: k, kw: k, pad: (k - 1) / 2, bC: co, m: k * k * ci, n: co, k: n * h * w,
  biasGradient, aBytes: bytes(n, h, w, ci), bBytes: bytes(n, h, w, co),
});
const upForward = (n: number, h: number, w: number, ci: number, co: number): GemmShape => ({
  mode: Mode.UpForward, batch: n, h, w, aC: ci, bC: co, m: n * h * w, n: 4 * co, k: ci, bias: true, aBytes: bytes(n, h, w, ci), bBytes: bytes(4, co, ci),
});
const upWeights = (n: number, h: number, w: number, ci: number, co: number, biasGradient = false): GemmShape => ({
  mode: Mode.UpWeights, batch: n, h, w, aC: co, bC: ci, m: 4 * co, n: ci, k: n * h * w, biasGradient, aBytes: bytes(n, 2 * h, 2 * w, co), bBytes: bytes(n, h, w, ci),
});
const products = (m: number, cin: number, cout: number, alpha2: number): GemmShape => ({
  mode: Mode.Batched, batch: 1, h: 1, w: 1, aC: cin, bC: cout, m, n: cout, k: cin, batches: alpha2, aBytes: bytes(alpha2, m, cin), bBytes: bytes(alpha2, cin, cout),
});

interface Row {
  what: string;
  caps: ConvCaps;
  gemm: GemmShape;
  /** 'empty', 'winograd N' (tile side), or the formulation. */
  want: string;
  /** The plan's extras: T a weights transpose first, B the bias gradient in the GEMM, b by a pass of its own, S a forward or ∂input reduction split. */
  extras?: string;
}

const TABLE: Row[] = [
  { what: 'GPU, fp32: a forward convolution', caps: h200(), gemm: forward(32, 96, 96, 1, 32), want: 'tiled' },
  { what: 'GPU, fp32: ∂input reads the weights rearranged', caps: h200(), gemm: input(32, 48, 48, 32, 64), want: 'tiled', extras: 'T' },
  { what: 'GPU, fp32: ∂weights with the bias row', caps: h200(), gemm: weights(32, 96, 96, 32, 32), want: 'tiled', extras: 'B' },
  { what: 'GPU, fp32: ∂weights without bias', caps: h200(), gemm: weights(32, 6, 6, 512, 512, false), want: 'tiled' },
  { what: 'GPU, fp32: transposed forward', caps: h200(), gemm: upForward(32, 6, 6, 512, 256), want: 'tiled', extras: 'T' },
  { what: 'GPU, fp32: transposed ∂weights', caps: h200(), gemm: upWeights(32, 48, 48, 64, 32), want: 'tiled' },
  { what: 'GPU, fp32: transposed ∂weights with the bias column', caps: h200(), gemm: upWeights(32, 48, 48, 64, 32, true), want: 'tiled', extras: 'B' },
  { what: 'GPU, mixed: transposed ∂weights with the bias column', caps: h200('mixed'), gemm: upWeights(32, 12, 12, 256, 128, true), want: 'mma', extras: 'B' },
  { what: 'software: transposed ∂weights, bias by its own pass', caps: lavapipe(), gemm: upWeights(8, 48, 48, 64, 32, true), want: 'rows', extras: 'b' },
  { what: 'GPU: an image beyond the tiled shader\'s 16-bit coordinates', caps: h200(), gemm: forward(1, 1, 70000, 1, 2), want: 'direct' },
  { what: 'GPU: a kernel beyond its 8-bit taps', caps: h200(), gemm: weights(1, 1, 300, 1, 1, true, 257), want: 'direct', extras: 'b' },
  { what: 'GPU, mixed: forward on subgroup matrices', caps: h200('mixed'), gemm: forward(32, 96, 96, 32, 32), want: 'mma' },
  { what: 'GPU, mixed: ∂input reads the weights as stored', caps: h200('mixed'), gemm: input(32, 12, 12, 256, 512), want: 'mma' },
  { what: 'GPU, mixed: transposed forward reads the weights as stored', caps: h200('mixed'), gemm: upForward(32, 6, 6, 512, 256), want: 'mma' },
  { what: 'GPU, mixed: ∂weights with the bias row', caps: h200('mixed'), gemm: weights(32, 24, 24, 128, 128), want: 'mma', extras: 'B' },
  { what: 'GPU, fp32: an empty batch\'s weight gradient', caps: h200(), gemm: weights(0, 6, 6, 8, 16), want: 'empty' },
  { what: 'GPU, fp32, splitK: a deep forward convolution split', caps: h200('fp32', { splitK: true }), gemm: forward(8, 6, 6, 512, 512), want: 'tiled', extras: 'S' },
  { what: 'GPU, fp32, splitK: a deep ∂input split, weights rearranged', caps: h200('fp32', { splitK: true }), gemm: input(32, 6, 6, 256, 512), want: 'tiled', extras: 'TS' },
  { what: 'GPU, fp32, splitK: a shallow layer has tiles enough', caps: h200('fp32', { splitK: true }), gemm: forward(32, 96, 96, 32, 32), want: 'tiled' },
  { what: 'GPU, mixed, splitK: a deep forward convolution split', caps: h200('mixed', { splitK: true }), gemm: forward(32, 6, 6, 512, 512), want: 'mma', extras: 'S' },
  { what: 'GPU, mixed, splitK: a deep ∂input split', caps: h200('mixed', { splitK: true }), gemm: input(8, 12, 12, 256, 512), want: 'mma', extras: 'S' },
  { what: 'GPU, mixed, splitK: a short reduction is not split', caps: h200('mixed', { splitK: true }), gemm: forward(1, 6, 6, 32, 64), want: 'mma' },
  { what: 'GPU, mixed, splitK: weight gradients split over pixels as always', caps: h200('mixed', { splitK: true }), gemm: weights(32, 24, 24, 128, 128), want: 'mma', extras: 'B' },
  { what: 'software: a large 3 × 3 layer goes through Winograd 4 × 4', caps: lavapipe(), gemm: forward(8, 96, 96, 32, 32), want: 'winograd 4' },
  { what: 'software: 6 × 6 images through Winograd 2 × 2', caps: lavapipe(), gemm: input(8, 6, 6, 512, 512), want: 'winograd 2' },
  { what: 'software: too few pixels for Winograd', caps: lavapipe(), gemm: forward(1, 6, 6, 512, 512), want: 'rows' },
  { what: 'software: small ∂input reads the weights as stored', caps: lavapipe(), gemm: input(1, 6, 6, 512, 512), want: 'rows' },
  { what: 'software: large ∂input without Winograd rearranges them', caps: lavapipe('fp32', { winograd: 'never' }), gemm: input(8, 48, 48, 64, 64), want: 'rows', extras: 'T' },
  { what: 'software: the 1-channel input layer', caps: lavapipe(), gemm: forward(8, 96, 96, 1, 32), want: 'rows' },
  { what: 'software: Winograd forced on a small layer', caps: lavapipe('fp32', { winograd: 'always' }), gemm: forward(1, 5, 7, 8, 12), want: 'winograd 4' },
  { what: 'software: no Winograd for channels not in fours', caps: lavapipe('fp32', { winograd: 'always' }), gemm: forward(8, 48, 48, 34, 64), want: 'rows' },
  { what: 'software: no Winograd for 1 × 1 kernels', caps: lavapipe(), gemm: forward(8, 48, 48, 64, 64, 1), want: 'rows' },
  { what: 'software: ∂weights, bias by its own pass', caps: lavapipe(), gemm: weights(8, 96, 96, 32, 32), want: 'rows', extras: 'b' },
  { what: 'software: Winograd\'s batched products', caps: lavapipe(), gemm: products(8 * 24 * 24, 32, 32, 36), want: 'rows' },
  { what: 'software: the tiled formulation forced', caps: lavapipe('fp32', { formulation: 'tiled' }), gemm: forward(8, 96, 96, 32, 32), want: 'tiled' },
  { what: 'software: mixed precision (emulated subgroup matrices)', caps: lavapipe('mixed'), gemm: forward(8, 96, 96, 32, 32), want: 'mma' },
  { what: 'software without 8-wide subgroups', caps: otherSoftware, gemm: forward(8, 96, 96, 32, 32), want: 'direct' },
  { what: 'software without 8-wide subgroups: ∂input reads the weights as stored', caps: otherSoftware, gemm: input(8, 96, 96, 32, 32), want: 'direct' },
  { what: 'software, splitK: the rows shader does not split a forward convolution', caps: lavapipe('fp32', { splitK: true, winograd: 'never' }), gemm: forward(1, 6, 6, 512, 512), want: 'rows' },
];

function summary(plan: GemmPlan, gemm: GemmShape): { want: string; extras: string } {
  if (plan.kind === 'empty') return { want: 'empty', extras: '' };
  if (plan.kind === 'winograd') return { want: `winograd ${plan.winograd.tile}`, extras: '' };
  const extras = (plan.transpose ? 'T' : '') + (plan.biasInGemm === true ? 'B' : plan.biasInGemm === false ? 'b' : '') + (plan.splits && !isWeightGradient(gemm) ? 'S' : '');
  return { want: plan.formulation, extras };
}

describe('convolution planner', () => {
  it.each(TABLE)('$what: $want', ({ caps, gemm, want, extras }) => {
    const plan = planGemm(caps, gemm);
    expect(summary(plan, gemm)).toEqual({ want, extras: extras ?? '' });
    if (plan.kind === 'winograd') {
      const { tile, th, tw, images } = plan.winograd;
      expect(th * tile).toBeGreaterThanOrEqual(gemm.h);
      expect(tw * tile).toBeGreaterThanOrEqual(gemm.w);
      expect(images).toBeGreaterThanOrEqual(1);
      expect(images).toBeLessThanOrEqual(gemm.batch);
      return;
    }
    if (plan.kind !== 'gemm') return;
    // The grid reaches every row and column of C (one more row or column for the bias), within the limits.
    const m = gemm.m + (plan.biasInGemm && gemm.mode === Mode.ConvWeights ? 1 : 0);
    const n = gemm.n + (plan.biasInGemm && gemm.mode === Mode.UpWeights ? 1 : 0);
    expect(plan.shader.constants.BIAS_ROW ?? 0).toBe(plan.biasInGemm && gemm.mode === Mode.ConvWeights ? 1 : 0);
    expect(plan.shader.constants.BIAS_COL ?? 0).toBe(plan.biasInGemm && gemm.mode === Mode.UpWeights ? 1 : 0);
    const [x, y, z] = plan.grid;
    const [rowGroups, colGroups] = plan.formulation === 'tiled' || plan.formulation === 'mma' ? [y, x] : [x, y];
    expect(rowGroups * plan.tile.rows).toBeGreaterThanOrEqual(m);
    expect((rowGroups - 1) * plan.tile.rows).toBeLessThan(m);
    expect(colGroups * plan.tile.cols).toBeGreaterThanOrEqual(n);
    expect((colGroups - 1) * plan.tile.cols).toBeLessThan(n);
    for (const d of plan.grid) expect(d).toBeLessThanOrEqual(caps.limits.maxComputeWorkgroupsPerDimension);
    // Splits cover the pixels, each a whole number of 16-pixel steps, none empty.
    if (plan.splits) {
      expect(z).toBe(plan.splits.count);
      expect(plan.splits.kPerSplit % 16).toBe(0);
      expect(plan.splits.count * plan.splits.kPerSplit).toBeGreaterThanOrEqual(gemm.k);
      expect((plan.splits.count - 1) * plan.splits.kPerSplit).toBeLessThan(gemm.k);
    } else {
      expect(z).toBe(gemm.batches ?? 1);
    }
    // Shader constants match the GEMM; a planned vec4 view has the bytes it needs.
    expect(plan.shader.constants.MODE).toBe(gemm.mode);
    if (Object.values(plan.shader.bind).includes('a')) expect(gemm.aBytes).toBeGreaterThanOrEqual(16);
    if (Object.values(plan.shader.bind).includes('b')) expect(gemm.bBytes).toBeGreaterThanOrEqual(16);
  });

  it('sizes the mixed-precision tile from the device\'s matrix shape', () => {
    const gpu = planGemm(h200('mixed'), forward(32, 96, 96, 32, 32));
    const cpu = planGemm(lavapipe('mixed'), forward(32, 96, 96, 32, 32));
    if (gpu.kind !== 'gemm' || cpu.kind !== 'gemm') throw new Error('expected GEMM plans');
    expect(gpu.shader.defines).toMatchObject({ SM: 16, SN: 16, SK: 16, SG: 32 });
    expect(cpu.shader.defines).toMatchObject({ SM: 8, SN: 8, SK: 8, SG: 8 });
    // Each subgroup holds 2 × 2 result matrices.
    for (const p of [gpu, cpu]) {
      const d = p.shader.defines as Record<string, number>;
      expect(d.WM).toBe(2);
      expect(p.tile).toEqual({ rows: d.SUB_Y! * 2 * d.SM!, cols: d.SUB_X! * 2 * d.SN! });
    }
  });

  it('decodes a k step once where it can: the tap where channels fill whole steps, the first pixel where image rows hold a step', () => {
    const big = { ...limits, maxComputeWorkgroupStorageSize: 32768 };
    const constants = (g: GemmShape, overrides = {}) => {
      const plan = planGemm({ ...h200('mixed'), limits: big, overrides }, g);
      if (plan.kind !== 'gemm') throw new Error('expected a GEMM plan');
      return plan.shader.constants;
    };
    const stepTap = (g: GemmShape, overrides = {}) => constants(g, overrides).STEP_TAP;
    const stepPixel = (g: GemmShape, overrides = {}) => constants(g, overrides).STEP_PIXEL;
    expect(stepTap(forward(32, 96, 96, 32, 32))).toBe(1);
    expect(stepTap(forward(32, 6, 6, 512, 512))).toBe(1);
    expect(stepTap(input(32, 96, 96, 32, 64))).toBe(1); // reads dy's 64 channels
    expect(stepTap(forward(32, 96, 96, 1, 32))).toBe(0); // one channel: a step spans taps
    expect(stepTap(forward(4, 12, 12, 16, 16))).toBe(0); // 16 channels: two taps a step of 32
    expect(stepTap(forward(32, 48, 48, 32, 64), { mmaTile: '64x64x64' })).toBe(0); // 32 channels, steps of 64
    expect(stepTap(input(32, 96, 96, 32, 1, 1))).toBe(0); // ∂input of the 1 × 1 output layer: dy has one channel
    expect(stepTap(weights(32, 96, 96, 32, 32))).toBe(0);
    expect(stepTap(upForward(32, 6, 6, 512, 256))).toBe(0);
    expect(stepTap(forward(32, 96, 96, 32, 32), { mmaStepDecode: false })).toBe(0);
    // Weight gradients: rows of 96 and 48 pixels hold a step of 32; rows of 24 do not.
    expect(stepPixel(weights(32, 96, 96, 32, 32))).toBe(1);
    expect(stepPixel(weights(32, 48, 48, 64, 64))).toBe(1);
    expect(stepPixel(weights(32, 24, 24, 128, 128))).toBe(0);
    expect(stepPixel(weights(32, 96, 96, 1, 32))).toBe(0); // one channel: no vec4 reads
    expect(stepPixel(forward(32, 96, 96, 32, 32))).toBe(0);
    expect(stepPixel(weights(32, 96, 96, 32, 32), { mmaStepDecode: false })).toBe(0);
  });

  it('with splitK splits the deep layers\' reductions into whole k steps, enough for 256 workgroups, none under 512 of k', () => {
    const big = { ...limits, maxComputeWorkgroupStorageSize: 32768 };
    // The tutorial's U-Net at batch 32 on the default mixed tile (128 × 64): the 6 × 6 and 12 × 12 layers split, the rest not.
    const plan = (g: GemmShape) => {
      const p = planGemm({ ...h200('mixed'), limits: big, overrides: { splitK: true } }, g);
      if (p.kind !== 'gemm') throw new Error('expected a GEMM plan');
      return p;
    };
    const deep = plan(forward(32, 6, 6, 512, 512)); // 9 × 8 tiles, k 4608
    expect(deep.splits).toEqual({ count: 4, kPerSplit: 1152 });
    expect(deep.grid).toEqual([8, 9, 4]);
    expect(deep.shader.constants).toMatchObject({ SPLIT_K: 1, ACCUMULATE: 0, STEP_TAP: 1 });
    expect(plan(input(32, 12, 12, 256, 512)).splits).toEqual({ count: 2, kPerSplit: 2304 }); // 36 × 4 tiles
    expect(plan(forward(32, 24, 24, 128, 128)).splits).toBeUndefined(); // 144 × 2 tiles
    expect(plan(forward(32, 96, 96, 32, 32)).splits).toBeUndefined();
    expect(plan(forward(32, 96, 96, 32, 32)).shader.constants.SPLIT_K).toBeUndefined();
    // Off unless asked.
    const plain = planGemm({ ...h200('mixed'), limits: big }, forward(32, 6, 6, 512, 512));
    expect(plain.kind === 'gemm' && plain.splits).toBeFalsy();
    // The rule: whole 64-deep steps, ≥ 512 of k each, the last split not empty, scratch within 64 MiB.
    for (const [tiles, elements, k] of [[72, 589824, 4608], [1, 64, 100000], [3, 4096, 1100], [200, 10, 4096], [1, 2 ** 24, 4096], [10, 100, 600]] as const) {
      const s = reductionSplits(tiles, elements, k);
      if (!s) continue;
      expect(s.kPerSplit % 64).toBe(0);
      expect(s.kPerSplit).toBeGreaterThanOrEqual(512);
      expect((s.count - 1) * s.kPerSplit).toBeLessThan(k);
      expect(s.count * s.kPerSplit).toBeGreaterThanOrEqual(k);
      expect(s.count * elements * 4).toBeLessThanOrEqual(64 * 2 ** 20);
      expect(tiles * (s.count - 1)).toBeLessThan(256);
    }
    expect(reductionSplits(300, 1000, 9999)).toBeUndefined(); // tiles enough
    expect(reductionSplits(10, 1000, 1000)).toBeUndefined(); // too short to split
    expect(reductionSplits(1, 2 ** 24, 4096)).toBeUndefined(); // scratch too large
  });

  it('with tall subgroup tiles gives each subgroup 4 × 2 result matrices: the same tile from half the subgroups', () => {
    const big = { ...limits, maxComputeWorkgroupStorageSize: 32768 };
    const plain = planGemm({ ...h200('mixed'), limits: big }, forward(32, 96, 96, 32, 32));
    const tall = planGemm({ ...h200('mixed'), limits: big, overrides: { mmaTall: true } }, forward(32, 96, 96, 32, 32));
    if (plain.kind !== 'gemm' || tall.kind !== 'gemm') throw new Error('expected GEMM plans');
    expect(tall.tile).toEqual(plain.tile);
    expect(tall.shader.defines).toMatchObject({ WM: 4, SUB_Y: (plain.shader.defines.SUB_Y as number) / 2, SUB_X: plain.shader.defines.SUB_X });
    const d = tall.shader.defines as Record<string, number>;
    expect(tall.tile.rows).toBe(d.SUB_Y! * 4 * d.SM!);
    // A tile too short for four matrices a subgroup does not fit; the planner falls back to one that does.
    expect(mmaConstants({ M: 16, N: 16, K: 16 }, 32, '32x32x32', big, { mmaTall: true })).toBeNull();
    expect(mmaConstants({ M: 16, N: 16, K: 16 }, 32, '64x32x32', big, { mmaTall: true })).toMatchObject({ SUB_Y: 1, SUB_X: 1, WM: 4, WN: 2 });
    expect(mmaTileFor({ ...h200('mixed'), limits: big, overrides: { mmaTile: 'auto', mmaTall: true } }, 4608, 32)).toBe('64x32x32');
  });

  it('with double-buffered tiles stages two pairs of tiles: the same tile and subgroups, twice the tiles\' workgroup memory', () => {
    const m16 = { M: 16, N: 16, K: 16 };
    const wide = { ...limits, maxComputeWorkgroupStorageSize: 49152 };
    const one = mmaConstants(m16, 32, MMA_DEFAULT_TILE, wide)!;
    const two = mmaConstants(m16, 32, MMA_DEFAULT_TILE, wide, { mmaDoubleBuffer: true })!;
    expect(one.STAGES).toBe(1);
    expect(two).toEqual({ ...one, STAGES: 2 });
    // 128 × 64 × 32: A 128 rows of 32 + 8 halves, B 64 columns of 32 + 8, eight f32 result matrices of 16 × 16; twice the tiles is 38,912 bytes.
    const at = (bytes: number) => mmaConstants(m16, 32, MMA_DEFAULT_TILE, { ...limits, maxComputeWorkgroupStorageSize: bytes }, { mmaDoubleBuffer: true });
    expect(at(38912)).not.toBeNull();
    expect(at(38911)).toBeNull();
    expect(mmaConstants(m16, 32, MMA_DEFAULT_TILE, { ...limits, maxComputeWorkgroupStorageSize: 23552 })).not.toBeNull();
    // The 16-deep tiles stage half as much: double-buffered they fit in 32 KiB (26,624 bytes; 32,768 on 128 × 128 with 4 × 2 a subgroup).
    const kib32 = { ...limits, maxComputeWorkgroupStorageSize: 32768 };
    expect(mmaConstants(m16, 32, '128x64x16', kib32, { mmaDoubleBuffer: true })).toMatchObject({ TK: 16, STAGES: 2, SUB_Y: 4, SUB_X: 2 });
    expect(mmaConstants(m16, 32, '128x128x16', kib32, { mmaDoubleBuffer: true, mmaTall: true })).toMatchObject({ TK: 16, STAGES: 2, WM: 4, SUB_Y: 2, SUB_X: 4 });
    expect(mmaConstants(m16, 32, '128x128x16', { ...limits, maxComputeWorkgroupStorageSize: 32767 }, { mmaDoubleBuffer: true, mmaTall: true })).toBeNull();
    const plan = planGemm({ ...h200('mixed'), limits: wide, overrides: { mmaDoubleBuffer: true } }, forward(32, 96, 96, 32, 32));
    if (plan.kind !== 'gemm') throw new Error('expected a GEMM plan');
    expect(plan.shader.defines).toMatchObject({ STAGES: 2, TK: 32 });
    // Where the limit holds one pair but not two, the tile is refused, not quietly single-buffered.
    expect(() => planGemm({ ...h200('mixed'), limits: { ...limits, maxComputeWorkgroupStorageSize: 32768 }, overrides: { mmaTile: MMA_DEFAULT_TILE, mmaDoubleBuffer: true } }, forward(32, 96, 96, 32, 32))).toThrow(/128x64x32, double-buffered, does not fit/);
  });

  it('loads B unstaged (mmaDirectB) only for weight gradients whose ∂output is f16 and fills whole tiles and k steps, splitting k by 64', () => {
    const gpu = (overrides: ConvOverrides): ConvCaps => ({ ...h200('mixed', overrides), limits: { ...limits, maxComputeWorkgroupStorageSize: 32768 } });
    const caps = gpu({ mmaTile: MMA_DEFAULT_TILE, mmaDirectB: true });
    const at = (g: GemmShape, c = caps) => {
      const plan = planGemm(c, g);
      if (plan.kind !== 'gemm') throw new Error('expected a GEMM plan');
      return plan;
    };
    const half = (g: GemmShape): GemmShape => ({ ...g, f16: true, bF16: true, bBytes: g.bBytes / 2 });
    // 64 channels fill the 64 columns of 128 × 64; 32 · 48 · 48 pixels, split by 64.
    const yes = at(half(weights(32, 48, 48, 32, 64)));
    expect(yes.shader.constants.B_GLOBAL).toBe(1);
    expect(yes.shader.bind.bg_src).toBe('b');
    expect(yes.splits!.kPerSplit % 64).toBe(0);
    expect(yes.splits!.count * yes.splits!.kPerSplit).toBeGreaterThanOrEqual(32 * 48 * 48);
    expect((yes.splits!.count - 1) * yes.splits!.kPerSplit).toBeLessThan(32 * 48 * 48);
    // Not: 32 channels on 64 columns, B in f32, pixels not in whole steps of 64, other modes, or the flag off.
    for (const [why, g, c] of [
      ['half-filled tiles', half(weights(32, 48, 48, 32, 32)), caps],
      ['B in f32', weights(32, 48, 48, 32, 64), caps],
      ['k not a multiple of 64', half(weights(1, 7, 9, 32, 64)), caps],
      ['the forward', { ...half(forward(32, 48, 48, 32, 64)) }, caps],
      ['the flag off', half(weights(32, 48, 48, 32, 64)), gpu({ mmaTile: MMA_DEFAULT_TILE })],
    ] as const) {
      const plan = at(g, c);
      expect(plan.shader.constants.B_GLOBAL ?? 0, why).toBe(0);
      expect(plan.shader.bind.bg_src, why).toBe('none');
    }
    // 32 channels fill the columns of 128 × 32.
    expect(at(half(weights(32, 96, 96, 32, 32)), gpu({ mmaTile: '128x32x32', mmaDirectB: true })).shader.constants.B_GLOBAL).toBe(1);
  });

  it('reads x as vec4s beside the transposed weight gradient\'s column of ones where x\'s channels come in fours', () => {
    const withBias = planGemm(h200('mixed'), upWeights(32, 12, 12, 256, 128, true));
    const odd = planGemm(h200('mixed'), upWeights(32, 12, 12, 255, 128, true));
    if (withBias.kind !== 'gemm' || odd.kind !== 'gemm') throw new Error('expected GEMM plans');
    expect(withBias.shader.constants).toMatchObject({ BIAS_COL: 1, B4: 1 });
    expect(odd.shader.constants).toMatchObject({ BIAS_COL: 1, B4: 0 });
  });

  it('with wide subgroup tiles gives each subgroup 2 × 4 result matrices, and with both 4 × 4: the same tile from fewer subgroups', () => {
    const big = { ...limits, maxComputeWorkgroupStorageSize: 32768 };
    const caps = (overrides: ConvOverrides) => ({ ...h200('mixed'), limits: big, overrides: { mmaTile: '64x128x32' as const, ...overrides } });
    const plain = planGemm(caps({}), forward(32, 24, 24, 128, 128));
    const wide = planGemm(caps({ mmaWide: true }), forward(32, 24, 24, 128, 128));
    const both = planGemm(caps({ mmaTall: true, mmaWide: true }), forward(32, 24, 24, 128, 128));
    if (plain.kind !== 'gemm' || wide.kind !== 'gemm' || both.kind !== 'gemm') throw new Error('expected GEMM plans');
    expect(plain.shader.defines).toMatchObject({ WM: 2, WN: 2, SUB_Y: 2, SUB_X: 4 });
    expect(wide.shader.defines).toMatchObject({ WM: 2, WN: 4, SUB_Y: 2, SUB_X: 2 });
    expect(both.shader.defines).toMatchObject({ WM: 4, WN: 4, SUB_Y: 1, SUB_X: 2 });
    for (const p of [wide, both]) expect(p.tile).toEqual(plain.tile);
    // 64 columns hold one subgroup of four 16-column matrices; 32 do not.
    expect(mmaConstants({ M: 16, N: 16, K: 16 }, 32, '64x64x32', big, { mmaWide: true })).toMatchObject({ SUB_Y: 2, SUB_X: 1, WN: 4 });
    expect(mmaConstants({ M: 16, N: 16, K: 16 }, 32, '128x32x32', big, { mmaWide: true })).toBeNull();
    // auto's narrow tiles (32 columns) cannot: a GEMM of 32 columns gets the default tile.
    expect(mmaTileFor({ ...h200('mixed'), limits: big, overrides: { mmaTile: 'auto', mmaWide: true } }, 4608, 32)).toBe(MMA_DEFAULT_TILE);
  });

  it('keeps one mixed-precision tile unless told, and with auto picks each GEMM\'s by its shape', () => {
    // The H200's workgroup memory (32 KiB) holds the default tile.
    const big = { ...limits, maxComputeWorkgroupStorageSize: 32768 };
    const caps = (mmaTile?: 'auto' | '64x64x32'): ConvCaps => ({ ...h200('mixed'), limits: big, overrides: mmaTile ? { mmaTile } : {} });
    const tileOf = (c: ConvCaps, g: GemmShape) => {
      const plan = planGemm(c, g);
      if (plan.kind !== 'gemm') throw new Error('expected a GEMM plan');
      return `${plan.tile.rows}x${plan.tile.cols}`;
    };
    const firstLayer = forward(32, 96, 96, 32, 32);
    const bottleneck = forward(32, 6, 6, 512, 512);
    expect(tileOf(caps(), firstLayer)).toBe(MMA_DEFAULT_TILE.split('x').slice(0, 2).join('x'));
    expect(tileOf(caps(), bottleneck)).toBe('128x64');
    expect(tileOf(caps('64x64x32'), bottleneck)).toBe('64x64');
    // Auto: 32 columns where C has 32; the largest tile that still gives ≥ 256 workgroups.
    expect(tileOf(caps('auto'), firstLayer)).toBe('128x32'); // 2,304 workgroups
    expect(tileOf(caps('auto'), forward(32, 12, 12, 256, 256))).toBe('64x64'); // 128 × 64: 144; 64 × 64: 288
    expect(tileOf(caps('auto'), bottleneck)).toBe('32x64'); // 1,152 rows: 72, 144, then 288
    expect(tileOf(caps('auto'), forward(1, 6, 6, 512, 512))).toBe('32x64'); // never 256: the smallest
    // A weight gradient's split fills the GPU, so it keeps the largest tile.
    expect(tileOf(caps('auto'), weights(32, 6, 6, 512, 512))).toBe('128x64');
    expect(mmaTileFor(caps('auto'), 4608, 32)).toBe('32x32x32'); // 128 × 32: 36 workgroups, 64 × 32: 72, 32 × 32: 144: the smallest
    // On lavapipe's 8 × 8 matrices a tile takes more subgroups, each with its own
    // result scratch: 128 × 32 needs 16.5 KiB of workgroup memory, past its 16.
    expect(mmaTileFor(lavapipe('mixed', { mmaTile: 'auto' }), 294912, 32)).toBe('64x32x32');
  });

  it('has the mixed-precision shader read modes 1 and 3\'s weights as stored, with vec4 loads where their runs along k come in fours', () => {
    const constantsOf = (g: GemmShape) => {
      const plan = planGemm(h200('mixed'), g);
      if (plan.kind !== 'gemm') throw new Error('expected a GEMM plan');
      expect(plan.transpose).toBeUndefined();
      return plan.shader.constants;
    };
    // ∂input's runs along k are the output channels; the transposed forward's, the input channels.
    expect(constantsOf(input(2, 5, 7, 3, 36))).toMatchObject({ B_BY_COLS: 1, B4: 1 });
    expect(constantsOf(input(2, 5, 7, 36, 5))).toMatchObject({ B_BY_COLS: 1, B4: 0 });
    expect(constantsOf(upForward(2, 3, 5, 12, 3))).toMatchObject({ B_BY_COLS: 1, B4: 1 });
    expect(constantsOf(upForward(2, 3, 5, 3, 12))).toMatchObject({ B_BY_COLS: 1, B4: 0 });
    expect(constantsOf(forward(2, 5, 7, 3, 36))).toMatchObject({ B_BY_COLS: 0, B4: 1 });
    // The fp32 tiled shader still reads them rearranged.
    expect(planGemm(h200(), input(2, 5, 7, 3, 36))).toMatchObject({ transpose: { flip: true } });
  });

  it('splits a large Winograd batch into passes that keep within the scratch budget', () => {
    const one = planGemm(lavapipe('fp32', { winogradScratch: 1 }), forward(3, 16, 16, 32, 32));
    expect(one.kind === 'winograd' && one.winograd.images).toBe(1);
    const all = planGemm(lavapipe(), forward(3, 16, 16, 32, 32));
    expect(all.kind === 'winograd' && all.winograd.images).toBe(3);
  });

  it('gives the rows shader the rows per lane that pad M least, and 4 from 256 rows and for weight gradients', () => {
    const padded = (m: number, mine: number) => Math.ceil(m / (8 * mine)) * 8 * mine;
    for (let m = 1; m < 256; m++) {
      const least = Math.min(...[2, 4, 5, 6].map((mine) => padded(m, mine)));
      expect(padded(m, rowsPerLaneFor(m)), `M ${m}`).toBe(least);
    }
    for (const m of [256, 288, 100000]) expect(rowsPerLaneFor(m)).toBe(4);
    expect(rowsPerLaneFor(36, true)).toBe(4);
  });

  it('plans f16 tensors on the mixed-precision shader only, and refuses them elsewhere with a reason', () => {
    const half = { ...forward(2, 16, 16, 8, 8), f16: true };
    const mixed = planGemm(h200('mixed'), half);
    expect(mixed.kind === 'gemm' && mixed.formulation).toBe('mma');
    expect(() => planGemm(h200('fp32'), half)).toThrow(/f16 tensors go through the mixed-precision convolution only; this GEMM would run on 'tiled'/);
    expect(() => planGemm(lavapipe('fp32'), half)).toThrow(/would run on 'rows'/);
    // Past the index packing the planner would fall back to the direct shader, which is f32 only.
    expect(() => planGemm(h200('mixed'), { ...forward(1, 65536, 1, 4, 4), f16: true })).toThrow(/would run on 'direct'/);
  });
});
