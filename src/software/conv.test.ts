/**
 * The software adapter's convolution formulations (conv.ts): Winograd's
 * passes and the rows shader with every number of rows per lane, against the
 * float64 references. They run where the planner picks the rows formulation
 * (subgroups of exactly 8 invocations, lavapipe on AVX2).
 */
import { describe, expect, it } from 'vitest';
import { testGpu } from '../../test/helpers/gpu.js';
import { expectEveryModeRight } from '../../test/helpers/conv-errors.js';
import { maxRelError, randomArray } from '../../test/helpers/random.js';
import type { Gpu } from '../gpu/gpu.js';
import { allocTensor } from '../gpu/tensor-view.js';
import { conv2d, conv2dBackwardInput, convFormulation, rowsPerLaneFor, setConvOverrides } from '../ops/conv/index.js';
import { type Shape4, conv2dBackwardRef, conv2dRef } from '../../test/reference/conv.js';

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const ACTIVATIONS = ['none', 'relu', 'sigmoid', 'elu'] as const;
const ROWS = convFormulation(await testGpu()) === 'rows';
if (!ROWS) console.warn('software convolution tests: this device is not a software adapter with subgroups of exactly 8 invocations; skipped');

// Winograd F(2×2, 3×3) and F(4×4, 3×3) (winograd.wgsl with winograd2.wgsl or
// winograd4.wgsl, and conv_rows.wgsl's batched products), each forced on for
// shapes whose channel counts are multiples of 4: images smaller than a tile,
// heights and widths of every remainder by 2 and by 4, channel counts that
// reach the automatic choice and that need two workgroups of channel quads.
const WINOGRAD_CASES: [Shape4, number][] = [
  [[1, 1, 1, 4], 4],
  [[2, 3, 2, 8], 4],
  [[2, 5, 7, 4], 8],
  [[1, 7, 6, 72], 64],
  [[2, 10, 9, 64], 68],
  [[2, 12, 12, 16], 72],
  [[4, 24, 24, 8], 36],
  // More channel quads than one workgroup of the tile passes takes (64).
  [[1, 5, 6, 264], 8],
  [[1, 6, 5, 8], 264],
];

describe.runIf(ROWS)('Winograd on the rows formulation', () => {
  // Runs `run` with Winograd set to `use` (and `opts`), recording the labels
  // of the dispatches it makes.
  async function withWinograd<T>(use: 'always' | 'auto', run: (gpu: Gpu, labels: string[]) => Promise<T>, opts: { scratchBytes?: number; tile?: 2 | 4 } = {}): Promise<T> {
    const gpu = await testGpu();
    setConvOverrides(gpu, { formulation: 'rows', winograd: use, winogradScratch: opts.scratchBytes, winogradTile: opts.tile });
    const labels: string[] = [];
    const dispatch = gpu.dispatch.bind(gpu);
    gpu.dispatch = (d) => {
      labels.push(d.label);
      dispatch(d);
    };
    try {
      return await run(gpu, labels);
    } finally {
      gpu.dispatch = dispatch;
      setConvOverrides(gpu, { winograd: undefined, winogradScratch: undefined, winogradTile: undefined });
    }
  }
  const count = (labels: string[], what: string) => labels.filter((l) => l.includes(what)).length;

  // The last three: a batch of three in three passes (a scratch budget of one
  // byte allows one image a pass), of four in two, and of three in two
  // passes of two images and one.
  const cases: [Shape4, number, number?][] = [
    ...WINOGRAD_CASES,
    [[3, 7, 5, 8], 12, 1],
    [[4, 6, 7, 4], 8],
    [[3, 7, 5, 8], 12],
  ];
  for (const tile of [2, 4] as const) {
    const alpha2 = (tile + 2) ** 2;
    const tiles = (xs: Shape4) => Math.ceil(xs[1] / tile) * Math.ceil(xs[2] / tile);
    for (const [i, [xs, co, budget]] of cases.entries()) {
      const ws: Shape4 = [3, 3, xs[3], co];
      const ys: Shape4 = [xs[0], xs[1], xs[2], co];
      // The last two cases' budgets: two images' scratch (α² values per tile and channel, in and out).
      const scratch = i < cases.length - 2 ? budget : alpha2 * tiles(xs) * (xs[3] + co) * 4 * 2;
      it(`${tile}×${tile} tiles: forward x ${xs} → ${co} with each activation, ∂input overwritten and accumulated${scratch ? ` (scratch budget ${scratch} bytes)` : ''}`, () =>
        withWinograd('always', async (gpu, labels) => {
          const xv = randomArray(prod(xs), 110);
          const wv = randomArray(prod(ws), 111, -0.5, 0.5);
          const bv = randomArray(co, 112);
          const dyv = randomArray(prod(ys), 113);
          const init = randomArray(prod(xs), 114);
          const x = allocTensor(gpu, xs, xv);
          const w = allocTensor(gpu, ws, wv);
          const b = allocTensor(gpu, [co], bv);
          const y = allocTensor(gpu, ys);
          for (const act of ACTIVATIONS) {
            conv2d(gpu, x, w, b, y, act);
            expect(maxRelError(await gpu.readFloat32(y.view, prod(ys)), conv2dRef(xv, xs, wv, ws, bv, act))).toBeLessThan(1e-4);
          }
          const want = conv2dBackwardRef(xv, xs, wv, ws, dyv).dx;
          const dy = allocTensor(gpu, ys, dyv);
          const dx = allocTensor(gpu, xs);
          conv2dBackwardInput(gpu, dy, w, dx);
          const err = maxRelError(await gpu.readFloat32(dx.view, prod(xs)), want);
          console.log(`Winograd ${tile}×${tile} ${xs} → ${co}: max rel error dx ${err.toExponential(2)}`);
          expect(err).toBeLessThan(1e-4);
          const dx2 = allocTensor(gpu, xs, init);
          conv2dBackwardInput(gpu, dy, w, dx2, { accumulate: true });
          expect(maxRelError(await gpu.readFloat32(dx2.view, prod(xs)), want.map((v, i) => v + init[i]!))).toBeLessThan(1e-4);
          // Each call transforms the kernels once and runs its passes, all with this tile; nothing went to the GEMM alone.
          const perPass = scratch ? Math.max(1, Math.floor(scratch / (alpha2 * tiles(xs) * (xs[3] + co) * 4))) : xs[0];
          const images = Math.ceil(xs[0] / Math.ceil(xs[0] / perPass));
          const passes = Math.ceil(xs[0] / images);
          // A forward per activation, then ∂input overwritten and accumulated.
          const calls = ACTIVATIONS.length + 2;
          expect(count(labels, `Winograd ${tile}×${tile} kernels`)).toBe(calls);
          expect(count(labels, `Winograd ${tile}×${tile} output tiles`)).toBe(calls * passes);
          expect(count(labels, `Winograd ${tile}×${tile} products`)).toBe(calls * passes);
          expect(labels.filter((l) => !l.includes(`Winograd ${tile}×${tile}`))).toEqual([]);
          for (const t of [x, w, b, y, dy, dx, dx2]) t.dispose();
        }, { scratchBytes: scratch, tile }));
    }
  }

  it('setConvOverrides rejects an unknown use, tile or scratch budget', async () => {
    const gpu = await testGpu();
    expect(() => setConvOverrides(gpu, { winograd: 'sometimes' as 'auto' })).toThrow(/winograd must be 'auto', 'always' or 'never'/);
    expect(() => setConvOverrides(gpu, { winogradTile: 3 as 2 })).toThrow(/winogradTile must be 2 or 4, not 3/);
    expect(() => setConvOverrides(gpu, { winogradScratch: -1 })).toThrow(/winogradScratch/);
    expect(() => setConvOverrides(gpu, { winogradScratch: NaN })).toThrow(/winogradScratch/);
  });

  it('an empty batch records no tile pass and raises no error', () =>
    withWinograd('always', async (gpu, labels) => {
      const x = allocTensor(gpu, [0, 5, 5, 8]);
      const w = allocTensor(gpu, [3, 3, 8, 4], randomArray(9 * 32, 120));
      const b = allocTensor(gpu, [4]);
      const y = allocTensor(gpu, [0, 5, 5, 4]);
      conv2d(gpu, x, w, b, y);
      conv2dBackwardInput(gpu, y, w, x, { accumulate: true });
      expect(labels.filter((l) => l.includes('tiles'))).toEqual([]);
      expect(count(labels, 'kernels')).toBe(2);
      await gpu.sync();
      for (const t of [x, w, b, y]) t.dispose();
    }));
});

// The rows shader gives each lane 2, 4, 5 or 6 rows of A, chosen by M (plan.ts,
// rowsPerLaneFor); here shapes that get each run every mode, on GEMMs of
// fewer rows than one subgroup holds and of several blocks with a partial
// last one, with ∂input and transposed forwards that read the weights as
// stored (M < 256, channels in fours) and ones that do not.
const ROWS_PER_LANE_CASES: Record<2 | 4 | 5 | 6, { convs: [Shape4, number, number][]; ups: [Shape4, number][] }> = {
  2: { convs: [[[1, 3, 3, 8], 3, 12], [[1, 4, 4, 20], 3, 70]], ups: [[[2, 2, 2, 8], 12], [[1, 3, 5, 12], 10]] },
  4: { convs: [[[1, 4, 8, 20], 3, 70], [[1, 8, 8, 7], 3, 12]], ups: [[[2, 4, 4, 8], 12], [[1, 8, 8, 12], 10]] },
  5: { convs: [[[1, 6, 6, 36], 3, 40], [[1, 8, 10, 8], 3, 12]], ups: [[[1, 5, 8, 8], 12], [[2, 4, 5, 6], 10]] },
  6: { convs: [[[1, 12, 12, 20], 3, 70], [[1, 6, 8, 8], 3, 12]], ups: [[[1, 6, 8, 8], 12], [[2, 3, 8, 12], 10]] },
};
describe.runIf(ROWS)('rows convolution, every number of rows per lane', () => {
  for (const [mine, { convs, ups }] of Object.entries(ROWS_PER_LANE_CASES)) {
    it(`${mine} rows per lane: conv2d forward (relu), ∂input, ∂weights; transposed forward, ∂input, ∂weights`, async () => {
      const pixels = (xs: Shape4) => xs[0] * xs[1] * xs[2];
      for (const [xs] of [...convs, ...ups]) expect(rowsPerLaneFor(pixels(xs)), `x ${xs}`).toBe(Number(mine));
      const gpu = await testGpu();
      setConvOverrides(gpu, { formulation: 'rows' });
      await expectEveryModeRight(gpu, `rows, ${mine} per lane`,
        convs.map(([xs, k, co], i) => [xs, k, co, i ? 'none' : 'relu', 90 + i]),
        ups.map(([xs, co], i) => [xs, co, 93 + i]));
    });
  }
});
