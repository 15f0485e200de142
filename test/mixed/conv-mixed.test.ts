/**
 * The mixed-precision convolutions (conv_mma.wgsl: f16 operands on subgroup
 * matrices, f32 sums) against the float64 reference and the fp32 kernels, in
 * every mode and every tile, on odd shapes. Runs where the adapter has f16
 * subgroup matrices: in the sandbox (scripts/sandbox.sh, lavapipe 8×8×8) and
 * on GPUs; elsewhere it skips, unless WGSL_UNET_REQUIRE_MIXED=1 makes that a
 * failure.
 *
 * Tolerance, from f16's precision: each operand is rounded to the nearest f16
 * (relative error ≤ u = 2⁻¹¹ in the normal range, absolute ≤ 2⁻²⁵ below it),
 * so each product a·b is off by at most (2u + u²)·|a·b| + 2⁻²⁵(|a| + |b|);
 * the f32 sum of K products adds at most K·2⁻²⁴·Σ|a·b|. With |a|, |b| ≤ 1
 * an element may differ from the exact value by
 *   (2⁻¹⁰ + 2⁻²² + K·2⁻²⁴) · Σ|a·b| + K·2⁻²⁴,
 * where Σ|a·b| is the same convolution of |x| and |w| (computed by the
 * reference). Bias is added in f32 and the activations are 1-Lipschitz, so
 * the bound holds after them too (plus the output's own f32 rounding).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { CONV_CASES, UP_CASES } from '../helpers/conv-cases.js';
import { randomArray } from '../helpers/random.js';
import { allocTensor } from '../../src/gpu/tensor-view.js';
import type { Gpu } from '../../src/gpu/gpu.js';
import {
  conv2d,
  conv2dBackwardInput,
  conv2dBackwardWeights,
  convTranspose2x2,
  convTranspose2x2BackwardInput,
  convTranspose2x2BackwardWeights,
  canRunMixed,
  setPrecision,
  setConvOverrides,
  mmaConstants,
  subgroupTileName,
  type SubgroupTiles,
  MMA_TILES,
  MMA_DEFAULT_TILE,
} from '../../src/ops/conv/index.js';
import { mmaTileOverrides } from '../../bench/mma-tiles.js';
import { TUNE_CANDIDATES_48K } from '../../src/ops/conv/tune.js';
import { type Shape4, conv2dBackwardRef, conv2dRef, convTranspose2x2BackwardRef, convTranspose2x2Ref } from '../reference/conv.js';

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const abs = (a: Float32Array) => a.map(Math.abs);
const required = process.env.WGSL_UNET_REQUIRE_MIXED === '1';
const gpu = await testGpu();
const mixed = canRunMixed(gpu);

/** Worst error allowed for an element of an f16-operand GEMM with K products whose |a·b| sum to `mass`. */
function bound(mass: number, k: number, exact: number): number {
  return (2 ** -10 + 2 ** -22 + k * 2 ** -24) * mass + k * 2 ** -24 + 2 ** -23 * Math.abs(exact);
}

/** Fails naming the first element outside the bound; returns the largest error relative to its bound. */
function expectWithinF16(what: string, got: ArrayLike<number>, exact: ArrayLike<number>, mass: ArrayLike<number>, k: number): number {
  let worst = 0;
  for (let i = 0; i < exact.length; i++) {
    const b = bound(mass[i]!, k, exact[i]!);
    const e = Math.abs(got[i]! - exact[i]!);
    if (!(e <= b)) throw new Error(`${what}: element ${i} is ${got[i]}, exact ${exact[i]}, error ${e.toExponential(3)} above the f16 bound ${b.toExponential(3)}`);
    worst = Math.max(worst, e / b);
  }
  return worst;
}

/** Runs `fn` with the device in `precision`, collecting the labels of the dispatches it records. */
function recording(g: Gpu, precision: 'fp32' | 'mixed', fn: () => void): string[] {
  const labels: string[] = [];
  const before = g.observer;
  g.observer = { timestampWrites: (label) => (labels.push(label), undefined) };
  setPrecision(g, precision);
  try {
    fn();
  } finally {
    g.observer = before;
    setPrecision(g, 'fp32');
  }
  return labels;
}

// Every case on the default tile; on the others (compiling each tile's
// pipelines is what takes the time on a CPU adapter) one case with every
// load scalar and one with every load a vec4.
const DEFAULT_TILE = MMA_DEFAULT_TILE;
/** Whether a tile fits this adapter's matrices, subgroups and limits (the planner never picks one that does not). */
const fits = (tile: (typeof MMA_TILES)[number] | 'auto', sub: SubgroupTiles = {}) =>
  mixed && (tile === 'auto' || mmaConstants(gpu.matrix!, gpu.adapterInfo.subgroupMaxSize, tile, gpu.limits, sub) !== null);
/** Whether a choice of the table below (written as for bench --mma-tiles: +prefetch, +tall, +wide, +perquad) fits. */
const fitsChoice = (choice: string) => fits(mmaTileOverrides(choice).mmaTile!, mmaTileOverrides(choice));
/** How many of `labels` name a subgroup tile other than 2 × 2, and how many name the one `choice` asks for. */
const subgroupLabels = (labels: string[], choice: string) => {
  const o = mmaTileOverrides(choice);
  const wanted = o.mmaTall || o.mmaWide ? ` ${o.mmaTall ? 4 : 2}×${o.mmaWide ? 4 : 2} a subgroup, GEMM` : null;
  return { other: labels.filter((l) => / a subgroup, GEMM/.test(l)).length, wanted: wanted ? labels.filter((l) => l.includes(wanted)).length : 0 };
};
const NO_OVERRIDES = mmaTileOverrides(null);
// One decode a k step (32 deep on lavapipe's default tile): channels in
// whole steps, the forward reading 32 a tap and ∂input 64 (STEP_TAP), across
// the image's edges, and a 1 × 1 layer; image rows of 40 and 33 pixels, whose
// weight gradients' steps run into the next row and the next image
// (STEP_PIXEL), split over workgroups in the second.
const STEP_CASES: [Shape4, number, number][] = [
  [[2, 7, 9, 32], 3, 64],
  [[1, 5, 6, 64], 1, 32],
  [[2, 3, 40, 8], 3, 4],
  [[3, 11, 33, 4], 3, 12],
];
// Reductions long enough to split (splitK: k ≥ 1,024 on C of one tile):
// the forward of 128 channels in whole k steps (STEP_TAP) and of 120 (quads
// of a step spanning taps), ∂input of 128 channels out, and 115 channels
// (scalar loads).
const SPLIT_CASES: [Shape4, number, number][] = [
  [[1, 5, 7, 128], 3, 12],
  [[1, 4, 6, 120], 3, 8],
  [[2, 5, 7, 12], 3, 128],
  [[1, 3, 5, 115], 3, 6],
];
const SHORT_CONV = [CONV_CASES[0]!, CONV_CASES[5]!];
const SHORT_UP = [UP_CASES[0]!, UP_CASES[3]!];

describe.runIf(mixed || required)('mixed-precision convolutions (f16 subgroup matrices, f32 sums)', () => {
  afterEach(() => setConvOverrides(gpu, NO_OVERRIDES));

  it('the adapter offers f16 subgroup matrices of a size the kernels are written for', () => {
    expect(gpu.matrix, `adapter ${gpu.adapterInfo.description} has no f16 → f32 subgroup matrices (features: ${gpu.adapterInfo.features.join(', ')})`).not.toBeNull();
    const { M, N, K } = gpu.matrix!;
    console.log(`subgroup matrices ${M}×${N}×${K}, subgroups of ${gpu.adapterInfo.subgroupMaxSize}`);
    expect(fits(DEFAULT_TILE), `the default tile ${DEFAULT_TILE}`).toBe(true);
    const subs: SubgroupTiles[] = [{ mmaTall: true }, { mmaWide: true }, { mmaTall: true, mmaWide: true }];
    console.log(`tiles that fit: ${MMA_TILES.filter((t) => fits(t)).join(', ')}; ${subs.map((sub) => `with ${subgroupTileName(sub)} result matrices a subgroup: ${MMA_TILES.filter((t) => fits(t, sub)).join(', ')}`).join('; ')}`);
  });

  // Every tile, 'auto' (a tile per GEMM: forward and gradients of one layer
  // may differ), the default tile with the next k step fetched while the
  // current one multiplies, with tall subgroup tiles (4 × 2) and with 4 × 4
  // (every case: the k loop's ends and splits, the tile's edges), and tall
  // and wide (2 × 4) subgroup tiles on a smaller tile and on auto.
  // The default tile also with each quad decoding its own k (on the cases where one decode could serve a step).
  const PREFETCHED = `${DEFAULT_TILE}+prefetch`;
  const TALL = `${DEFAULT_TILE}+tall`;
  const FOUR_BY_FOUR = `${DEFAULT_TILE}+tall+wide`;
  const PER_QUAD = `${DEFAULT_TILE}+perquad`;
  // The default tile with the forward and ∂input reductions split (on the cases long enough to split).
  const SPLIT = `${DEFAULT_TILE}+splitk`;
  // Double-buffered tiles (twice the staged tiles' workgroup memory, which
  // lavapipe's 32 KiB holds on 64 × 64 × 32 and on the 16-deep tiles, not on
  // the default): every case, and 16 deep with tall subgroup tiles on the short
  // list; the tuner's two that need 48 KiB (TUNE_CANDIDATES_48K) on the short
  // list where the device has it (a GPU's; skipped on lavapipe).
  const DOUBLE = '64x64x32+db';
  for (const tile of [...MMA_TILES, 'auto', PREFETCHED, TALL, FOUR_BY_FOUR, DOUBLE, '128x128x16+tall+db', ...TUNE_CANDIDATES_48K, '64x64x32+tall', '64x64x32+wide', 'auto+tall', 'auto+wide', PER_QUAD, SPLIT]) {
    const every = tile === DEFAULT_TILE || tile === PREFETCHED || tile === TALL || tile === FOUR_BY_FOUR || tile === DOUBLE;
    const convCases = tile === PER_QUAD ? STEP_CASES : tile === SPLIT ? SPLIT_CASES : every ? [...CONV_CASES, ...STEP_CASES] : SHORT_CONV;
    for (const [xs, k, co] of convCases) {
      const ws: Shape4 = [k, k, xs[3], co];
      const ys: Shape4 = [xs[0], xs[1], xs[2], co];
      // The ELU on two configurations (one of them finished by split_sum.wgsl), the ReLU on the rest: both are 1-Lipschitz, so the f16 bounds hold as they are.
      const act = tile === PREFETCHED || tile === SPLIT ? 'elu' : 'relu';
      it.runIf(fitsChoice(tile))(`${tile}: conv2d x ${xs} w ${ws}: forward (${act}), ∂input, ∂weights with bias, against the reference and fp32`, async () => {
        setConvOverrides(gpu, mmaTileOverrides(tile));
        const xv = randomArray(prod(xs), 10);
        const wv = randomArray(prod(ws), 11);
        const bv = randomArray(co, 12);
        const dyv = randomArray(prod(ys), 13);
        const t = {
          x: allocTensor(gpu, xs, xv), w: allocTensor(gpu, ws, wv), b: allocTensor(gpu, [co], bv), dy: allocTensor(gpu, ys, dyv),
          y: allocTensor(gpu, ys), dx: allocTensor(gpu, xs), dw: allocTensor(gpu, ws), db: allocTensor(gpu, [co]),
        };
        const run = () => {
          conv2d(gpu, t.x, t.w, t.b, t.y, act);
          conv2dBackwardInput(gpu, t.dy, t.w, t.dx);
          conv2dBackwardWeights(gpu, t.x, t.dy, t.dw, { db: t.db });
        };
        const read = async () => ({
          y: await gpu.readFloat32(t.y.view, prod(ys)), dx: await gpu.readFloat32(t.dx.view, prod(xs)),
          dw: await gpu.readFloat32(t.dw.view, prod(ws)), db: await gpu.readFloat32(t.db.view, co),
        });
        const labels = recording(gpu, 'mixed', run);
        expect(labels.filter((l) => l.includes('[mma ')).length, labels.join('\n')).toBe(3);
        expect(labels.filter((l) => l.includes(', double-buffered')).length, labels.join('\n')).toBe(tile.includes('+db') ? 3 : 0);
        const subs = subgroupLabels(labels, tile);
        expect(subs.other, labels.join('\n')).toBe(subs.wanted);
        expect(subs.wanted, labels.join('\n')).toBe(tile.includes('+tall') || tile.includes('+wide') ? 3 : 0);
        // The split forward or ∂input, and its finishing pass.
        const splitRows = labels.filter((l) => /^conv2d(BackwardInput)? .* splits\]$/.test(l)).length;
        expect(splitRows, labels.join('\n')).toBe(tile === SPLIT ? 1 : 0);
        const got = await read();
        recording(gpu, 'fp32', run);
        const fp32 = await read();
        setConvOverrides(gpu, NO_OVERRIDES);

        const exactY = conv2dRef(xv, xs, wv, ws, bv, act);
        const massY = conv2dRef(abs(xv), xs, abs(wv), ws, new Float32Array(co));
        const exact = conv2dBackwardRef(xv, xs, wv, ws, dyv);
        const mass = conv2dBackwardRef(abs(xv), xs, abs(wv), ws, abs(dyv));
        const kIn = k * k * xs[3];
        const kOut = k * k * co;
        const kPix = xs[0] * xs[1] * xs[2];
        const worst = [
          expectWithinF16('y', got.y, exactY, massY, kIn),
          expectWithinF16('dx', got.dx, exact.dx, mass.dx, kOut),
          expectWithinF16('dw', got.dw, exact.dw, mass.dw, kPix),
          expectWithinF16('db', got.db, exact.db, mass.db, kPix),
          // fp32 is within 1e-4 of exact (src/ops/conv/conv.test.ts), far inside these bounds: mixed against fp32 too.
          expectWithinF16('y against fp32', got.y, fp32.y, massY, kIn + 64),
          expectWithinF16('dx against fp32', got.dx, fp32.dx, mass.dx, kOut + 64),
          expectWithinF16('dw against fp32', got.dw, fp32.dw, mass.dw, kPix + 64),
        ];
        console.log(`mixed ${tile} conv2d ${xs} k${k} → ${co}: worst error / f16 bound y ${worst[0]!.toFixed(3)} dx ${worst[1]!.toFixed(3)} dw ${worst[2]!.toFixed(3)} db ${worst[3]!.toFixed(3)}`);
        for (const v of Object.values(t)) v.dispose();
      });
    }

    for (const [xs, co] of tile === PER_QUAD || tile === SPLIT ? [] : every ? UP_CASES : SHORT_UP) {
      const ws: Shape4 = [2, 2, co, xs[3]];
      const ys: Shape4 = [xs[0], 2 * xs[1], 2 * xs[2], co];
      it.runIf(fitsChoice(tile))(`${tile}: convTranspose2x2 x ${xs} w ${ws}: forward, ∂input (accumulated), ∂weights with bias`, async () => {
        setConvOverrides(gpu, mmaTileOverrides(tile));
        const xv = randomArray(prod(xs), 40);
        const wv = randomArray(prod(ws), 41);
        const bv = randomArray(co, 42);
        const dyv = randomArray(prod(ys), 43);
        const dx0 = randomArray(prod(xs), 44);
        const t = {
          x: allocTensor(gpu, xs, xv), w: allocTensor(gpu, ws, wv), b: allocTensor(gpu, [co], bv), dy: allocTensor(gpu, ys, dyv),
          y: allocTensor(gpu, ys), dx: allocTensor(gpu, xs, dx0), dw: allocTensor(gpu, ws), db: allocTensor(gpu, [co]),
        };
        const labels = recording(gpu, 'mixed', () => {
          convTranspose2x2(gpu, t.x, t.w, t.b, t.y);
          convTranspose2x2BackwardInput(gpu, t.dy, t.w, t.dx, { accumulate: true });
          convTranspose2x2BackwardWeights(gpu, t.x, t.dy, t.dw, { db: t.db });
        });
        setConvOverrides(gpu, NO_OVERRIDES);
        expect(labels.filter((l) => l.includes('[mma ')).length, labels.join('\n')).toBe(3);
        expect(labels.filter((l) => l.includes(', double-buffered')).length, labels.join('\n')).toBe(tile.includes('+db') ? 3 : 0);
        const subs = subgroupLabels(labels, tile);
        expect(subs.other, labels.join('\n')).toBe(subs.wanted);
        expect(subs.wanted, labels.join('\n')).toBe(tile.includes('+tall') || tile.includes('+wide') ? 3 : 0);
        const exact = convTranspose2x2BackwardRef(xv, xs, wv, ws, dyv);
        const mass = convTranspose2x2BackwardRef(abs(xv), xs, abs(wv), ws, abs(dyv));
        const exactDx = exact.dx.map((v, i) => v + dx0[i]!);
        const massDx = mass.dx.map((v, i) => v + Math.abs(dx0[i]!));
        const worst = [
          expectWithinF16('y', await gpu.readFloat32(t.y.view, prod(ys)), convTranspose2x2Ref(xv, xs, wv, ws, bv), convTranspose2x2Ref(abs(xv), xs, abs(wv), ws, new Float32Array(co)), xs[3]),
          expectWithinF16('dx', await gpu.readFloat32(t.dx.view, prod(xs)), exactDx, massDx, 4 * co),
          expectWithinF16('dw', await gpu.readFloat32(t.dw.view, prod(ws)), exact.dw, mass.dw, prod(xs.slice(0, 3))),
          // The bias gradient from the GEMM's column of ones: each tap's sum over x's pixels, four taps added.
          expectWithinF16('db', await gpu.readFloat32(t.db.view, co), exact.db, mass.db, 4 * prod(xs.slice(0, 3))),
        ];
        expect(labels.filter((l) => l.startsWith('biasGradient')), labels.join('\n')).toEqual([]);
        console.log(`mixed ${tile} convTranspose2x2 ${xs} → ${co}: worst error / f16 bound y ${worst[0]!.toFixed(3)} dx ${worst[1]!.toFixed(3)} dw ${worst[2]!.toFixed(3)} db ${worst[3]!.toFixed(3)}`);
        for (const v of Object.values(t)) v.dispose();
      });
    }
  }

  it('rounds operands to f16: a product that f32 holds exactly comes out as f16 makes it', async () => {
    // x = 1 + 2⁻¹², w = 1: f16 rounds x to 1, so the mixed forward gives exactly 1 where fp32 gives 1 + 2⁻¹².
    const x = allocTensor(gpu, [1, 1, 1, 1], new Float32Array([1 + 2 ** -12]));
    const w = allocTensor(gpu, [1, 1, 1, 1], new Float32Array([1]));
    const b = allocTensor(gpu, [1], new Float32Array([0]));
    const y = allocTensor(gpu, [1, 1, 1, 1]);
    recording(gpu, 'mixed', () => conv2d(gpu, x, w, b, y));
    expect((await gpu.readFloat32(y.view, 1))[0]).toBe(1);
    recording(gpu, 'fp32', () => conv2d(gpu, x, w, b, y));
    expect((await gpu.readFloat32(y.view, 1))[0]).toBe(1 + 2 ** -12);
    for (const v of [x, w, b, y]) v.dispose();
  });
});

describe.runIf(!mixed && !required)('mixed precision on a device without f16 subgroup matrices', () => {
  it('is refused with a message naming what the adapter lacks', () => {
    expect(() => setPrecision(gpu, 'mixed')).toThrow(/mixed precision needs .*--precision fp32/);
  });
});
