import { describe, expect, it } from 'vitest';
import { testGpu } from '../../../test/helpers/gpu.js';
import { CONV_CASES, UP_CASES } from '../../../test/helpers/conv-cases.js';
import type { Gpu } from '../../gpu/gpu.js';
import { maxRelError, randomArray, rng } from '../../../test/helpers/random.js';
import { convErrors, expectEveryModeRight } from '../../../test/helpers/conv-errors.js';
import { allocTensor } from '../../gpu/tensor-view.js';
import {
  biasGradient,
  conv2d,
  conv2dBackwardInput,
  conv2dBackwardWeights,
  convTranspose2x2,
  convTranspose2x2BackwardInput,
  convTranspose2x2BackwardWeights,
  convFormulation,
  convOverrides,
  setConvOverrides,
  TILE_SHAPES,
  type TileShape,
} from './index.js';
import {
  type Shape4,
  conv2dBackwardRef,
  conv2dRef,
  convTranspose2x2BackwardRef,
  convTranspose2x2Ref,
  finiteDifference,
} from '../../../test/reference/conv.js';

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const pick = (n: number, count: number, seed: number) => {
  const r = rng(seed);
  return Array.from({ length: count }, () => Math.floor(r() * n));
};


const gpuForList = await testGpu();
// Every formulation the device can run: the GPU core's tiled and direct, and
// the software adapter's rows where the planner picks it by default.
type Variant = 'tiled' | 'rows' | 'direct';
const VARIANTS: Variant[] = ['tiled', ...(convFormulation(gpuForList) === 'rows' ? ['rows' as const] : []), 'direct'];
if (!VARIANTS.includes('rows')) console.warn('conv tests: this device is not a software adapter with subgroups of exactly 8 invocations; the rows formulation is not tested');

for (const variant of VARIANTS) {
describe(`conv2d (${variant})`, () => {
  it('reference backward agrees with finite differences of the reference forward', () => {
    const xs: Shape4 = [2, 4, 5, 3];
    const ws: Shape4 = [3, 3, 3, 2];
    const x = randomArray(prod(xs), 1);
    const w = randomArray(prod(ws), 2);
    const b = randomArray(2, 3);
    const dy = randomArray(2 * 4 * 5 * 2, 4);
    const g = conv2dBackwardRef(x, xs, w, ws, dy);
    const cx = pick(x.length, 12, 5);
    const cw = pick(w.length, 12, 6);
    expect(maxRelError(cx.map((i) => g.dx[i]!), finiteDifference((v) => conv2dRef(v, xs, w, ws, b), x, dy, cx))).toBeLessThan(1e-6);
    expect(maxRelError(cw.map((i) => g.dw[i]!), finiteDifference((v) => conv2dRef(x, xs, v, ws, b), w, dy, cw))).toBeLessThan(1e-6);
    expect(maxRelError(g.db, finiteDifference((v) => conv2dRef(x, xs, w, ws, v), b, dy, [0, 1]))).toBeLessThan(1e-6);
  });

  for (const [xs, k, co] of CONV_CASES) {
    const ws: Shape4 = [k, k, xs[3], co];
    const ys: Shape4 = [xs[0], xs[1], xs[2], co];
    for (const act of ['none', 'relu', 'sigmoid', 'elu'] as const) {
      it(`forward x ${xs} w ${ws} ${act}`, async () => {
        const gpu = await testGpu();
        setConvOverrides(gpu, { formulation: variant });
        const xv = randomArray(prod(xs), 10);
        const wv = randomArray(prod(ws), 11, -0.5, 0.5);
        const bv = randomArray(co, 12);
        const x = allocTensor(gpu, xs, xv);
        const w = allocTensor(gpu, ws, wv);
        const b = allocTensor(gpu, [co], bv);
        const y = allocTensor(gpu, ys);
        conv2d(gpu, x, w, b, y, act);
        const err = maxRelError(await gpu.readFloat32(y.view, prod(ys)), conv2dRef(xv, xs, wv, ws, bv, act));
        console.log(`conv2d forward ${xs} k${k} → ${co} ${act}: max rel error ${err.toExponential(2)}`);
        expect(err).toBeLessThan(1e-4);
        for (const t of [x, w, b, y]) t.dispose();
      });
    }

    it(`backward x ${xs} w ${ws}: input, weights and bias`, async () => {
      const gpu = await testGpu();
      setConvOverrides(gpu, { formulation: variant });
      const xv = randomArray(prod(xs), 20);
      const wv = randomArray(prod(ws), 21, -0.5, 0.5);
      const dyv = randomArray(prod(ys), 22);
      const want = conv2dBackwardRef(xv, xs, wv, ws, dyv);
      const x = allocTensor(gpu, xs, xv);
      const w = allocTensor(gpu, ws, wv);
      const dy = allocTensor(gpu, ys, dyv);
      const dx = allocTensor(gpu, xs);
      const dw = allocTensor(gpu, ws);
      const db = allocTensor(gpu, [co]);
      const db2 = allocTensor(gpu, [co]);
      conv2dBackwardInput(gpu, dy, w, dx);
      conv2dBackwardWeights(gpu, x, dy, dw, { db });
      biasGradient(gpu, dy, db2);
      const errs = [
        maxRelError(await gpu.readFloat32(dx.view, prod(xs)), want.dx),
        maxRelError(await gpu.readFloat32(dw.view, prod(ws)), want.dw),
        maxRelError(await gpu.readFloat32(db.view, co), want.db),
        maxRelError(await gpu.readFloat32(db2.view, co), want.db),
      ];
      console.log(`conv2d backward ${xs} k${k} → ${co}: max rel error dx ${errs[0]!.toExponential(2)} dw ${errs[1]!.toExponential(2)} db with dw ${errs[2]!.toExponential(2)}, alone ${errs[3]!.toExponential(2)}`);
      for (const e of errs) expect(e).toBeLessThan(1e-4);
      for (const t of [x, w, dy, dx, dw, db, db2]) t.dispose();
    });
  }

  // 3 input channels: scalar stores; 8: vec4 stores where the formulation has them.
  for (const ci of [3, 8]) {
    it(`accumulates gradients into existing values (${ci} input channels)`, async () => {
      const gpu = await testGpu();
      setConvOverrides(gpu, { formulation: variant });
      const xs: Shape4 = [1, 5, 5, ci];
      const ws: Shape4 = [3, 3, ci, 4];
      const xv = randomArray(prod(xs), 30);
      const wv = randomArray(prod(ws), 31);
      const dyv = randomArray(5 * 5 * 4, 32);
      const want = conv2dBackwardRef(xv, xs, wv, ws, dyv);
      const init = { dx: randomArray(prod(xs), 33), dw: randomArray(prod(ws), 34), db: randomArray(4, 35) };
      const x = allocTensor(gpu, xs, xv);
      const w = allocTensor(gpu, ws, wv);
      const dy = allocTensor(gpu, [1, 5, 5, 4], dyv);
      const dx = allocTensor(gpu, xs, init.dx);
      const dw = allocTensor(gpu, ws, init.dw);
      const db = allocTensor(gpu, [4], init.db);
      const db2 = allocTensor(gpu, [4], init.db);
      conv2dBackwardInput(gpu, dy, w, dx, { accumulate: true });
      conv2dBackwardWeights(gpu, x, dy, dw, { accumulate: true, db });
      biasGradient(gpu, dy, db2, { accumulate: true });
      expect(maxRelError(await gpu.readFloat32(dx.view, prod(xs)), want.dx.map((v, i) => v + init.dx[i]!))).toBeLessThan(1e-4);
      expect(maxRelError(await gpu.readFloat32(dw.view, prod(ws)), want.dw.map((v, i) => v + init.dw[i]!))).toBeLessThan(1e-4);
      for (const d of [db, db2]) expect(maxRelError(await gpu.readFloat32(d.view, 4), want.db.map((v, i) => v + init.db[i]!))).toBeLessThan(1e-4);
      for (const t of [x, w, dy, dx, dw, db, db2]) t.dispose();
    });
  }

  // ∂input with the ReLU's backward fused into its store (mask = x, a ReLU's
  // output): fresh and accumulated, vec4 and scalar stores, a 1 × 1 layer,
  // and on the rows formulation also through Winograd; the transposed
  // convolution's ∂input likewise. Masked elements must be exactly zero.
  for (const [xs, k, co, winograd] of [
    [[2, 7, 9, 12], 3, 8, 'never'],
    [[1, 5, 6, 3], 3, 5, 'never'],
    [[2, 6, 6, 8], 1, 4, 'never'],
    ...(variant === 'rows' ? [[[2, 7, 9, 12], 3, 8, 'always']] : []),
  ] as [Shape4, number, number, 'never' | 'always'][]) {
    it(`∂input masked by a ReLU's output, fresh and accumulated: x ${xs}, ${k} × ${k} → ${co}${winograd === 'always' ? ', Winograd' : ''}; the transposed ∂input too`, async () => {
      const gpu = await testGpu();
      setConvOverrides(gpu, { formulation: variant, winograd });
      try {
        const ws: Shape4 = [k, k, xs[3], co];
        const ys: Shape4 = [xs[0], xs[1], xs[2], co];
        const wv = randomArray(prod(ws), 40, -0.5, 0.5);
        const dyv = randomArray(prod(ys), 41);
        const maskv = randomArray(prod(xs), 42); // about half the elements not positive
        const init = randomArray(prod(xs), 43);
        const ref = conv2dBackwardRef(randomArray(prod(xs), 44), xs, wv, ws, dyv).dx;
        const [w, dy, mask] = [allocTensor(gpu, ws, wv), allocTensor(gpu, ys, dyv), allocTensor(gpu, xs, maskv)];
        const check = async (what: string, dx: ReturnType<typeof allocTensor>, want: ArrayLike<number>) => {
          const got = await gpu.readFloat32(dx.view, prod(xs));
          const masked = Array.from(want, (v, i) => (maskv[i]! > 0 ? v : 0));
          expect(maxRelError(got, masked), what).toBeLessThan(1e-4);
          for (let i = 0; i < got.length; i++) if (!(maskv[i]! > 0)) expect(got[i], `${what}: element ${i}`).toBe(0);
        };
        const fresh = allocTensor(gpu, xs);
        conv2dBackwardInput(gpu, dy, w, fresh, { mask });
        await check('fresh', fresh, ref);
        const acc = allocTensor(gpu, xs, init);
        conv2dBackwardInput(gpu, dy, w, acc, { accumulate: true, mask });
        await check('accumulated', acc, Array.from(ref, (v, i) => v + init[i]!));
        // The transposed convolution from x (co channels out, twice the size).
        const uws: Shape4 = [2, 2, co, xs[3]];
        const uys: Shape4 = [xs[0], 2 * xs[1], 2 * xs[2], co];
        const udyv = randomArray(prod(uys), 45);
        const uref = convTranspose2x2BackwardRef(randomArray(prod(xs), 46), xs, randomArray(prod(uws), 47), uws, udyv).dx;
        const [uw, udy] = [allocTensor(gpu, uws, randomArray(prod(uws), 47)), allocTensor(gpu, uys, udyv)];
        const uacc = allocTensor(gpu, xs, init);
        convTranspose2x2BackwardInput(gpu, udy, uw, uacc, { accumulate: true, mask });
        await check('transposed, accumulated', uacc, Array.from(uref, (v, i) => v + init[i]!));
        for (const t of [w, dy, mask, fresh, acc, uw, udy, uacc]) t.dispose();
      } finally {
        setConvOverrides(gpu, { winograd: undefined });
      }
    });
  }

  it('refuses a mask of another shape or type than dx, or in dx\'s buffer', async () => {
    const gpu = await testGpu();
    setConvOverrides(gpu, { formulation: variant });
    const [dy, w, dx] = [allocTensor(gpu, [1, 4, 4, 2]), allocTensor(gpu, [3, 3, 3, 2]), allocTensor(gpu, [1, 4, 4, 3])];
    const wrong = allocTensor(gpu, [1, 4, 4, 2]);
    expect(() => conv2dBackwardInput(gpu, dy, w, dx, { mask: wrong })).toThrow(/conv2dBackwardInput: mask must have shape \[1, 4, 4, 3\], got \[1, 4, 4, 2\]/);
    const half = allocTensor(gpu, [1, 4, 4, 3], undefined, 'f16');
    expect(() => conv2dBackwardInput(gpu, dy, w, dx, { mask: half })).toThrow(/mask is stored as f16 but dx as f32/);
    expect(() => conv2dBackwardInput(gpu, dy, w, dx, { mask: dx })).toThrow(/dx \(written\) and mask \(read\) lie in one GPU buffer/);
    for (const t of [dy, w, dx, wrong, half]) t.dispose();
  });

  it('rejects mismatched channels, naming the op and the shapes', async () => {
    const gpu = await testGpu();
    setConvOverrides(gpu, { formulation: variant });
    const x = allocTensor(gpu, [1, 4, 4, 3]);
    const w = allocTensor(gpu, [3, 3, 2, 8]);
    const b = allocTensor(gpu, [8]);
    const y = allocTensor(gpu, [1, 4, 4, 8]);
    expect(() => conv2d(gpu, x, w, b, y)).toThrow('conv2d: x has 3 channels but w [3, 3, 2, 8] expects 2');
    const w2 = allocTensor(gpu, [3, 3, 3, 8]);
    const yBad = allocTensor(gpu, [1, 4, 5, 8]);
    expect(() => conv2d(gpu, x, w2, b, yBad)).toThrow('conv2d: y must have shape [1, 4, 4, 8], got [1, 4, 5, 8]');
    for (const t of [x, w, b, y, w2, yBad]) t.dispose();
  });
});


describe(`convTranspose2x2 (${variant})`, () => {
  it('reference backward agrees with finite differences of the reference forward', () => {
    const xs: Shape4 = [2, 3, 2, 3];
    const ws: Shape4 = [2, 2, 4, 3];
    const x = randomArray(prod(xs), 1);
    const w = randomArray(prod(ws), 2);
    const b = randomArray(4, 3);
    const dy = randomArray(2 * 6 * 4 * 4, 4);
    const g = convTranspose2x2BackwardRef(x, xs, w, ws, dy);
    const cx = pick(x.length, 12, 5);
    const cw = pick(w.length, 12, 6);
    expect(maxRelError(cx.map((i) => g.dx[i]!), finiteDifference((v) => convTranspose2x2Ref(v, xs, w, ws, b), x, dy, cx))).toBeLessThan(1e-6);
    expect(maxRelError(cw.map((i) => g.dw[i]!), finiteDifference((v) => convTranspose2x2Ref(x, xs, v, ws, b), w, dy, cw))).toBeLessThan(1e-6);
    expect(maxRelError(g.db, finiteDifference((v) => convTranspose2x2Ref(x, xs, w, ws, v), b, dy, [0, 1, 2, 3]))).toBeLessThan(1e-6);
  });

  for (const [xs, co] of UP_CASES) {
    const ws: Shape4 = [2, 2, co, xs[3]];
    const ys: Shape4 = [xs[0], 2 * xs[1], 2 * xs[2], co];
    it(`forward and backward x ${xs} w ${ws}`, async () => {
      const gpu = await testGpu();
      setConvOverrides(gpu, { formulation: variant });
      const xv = randomArray(prod(xs), 40);
      const wv = randomArray(prod(ws), 41, -0.5, 0.5);
      const bv = randomArray(co, 42);
      const dyv = randomArray(prod(ys), 43);
      const x = allocTensor(gpu, xs, xv);
      const w = allocTensor(gpu, ws, wv);
      const b = allocTensor(gpu, [co], bv);
      const y = allocTensor(gpu, ys);
      const dy = allocTensor(gpu, ys, dyv);
      const dx = allocTensor(gpu, xs);
      const dw = allocTensor(gpu, ws);
      const db = allocTensor(gpu, [co]);
      const dw2 = allocTensor(gpu, ws);
      const db2 = allocTensor(gpu, [co]);
      convTranspose2x2(gpu, x, w, b, y);
      convTranspose2x2BackwardInput(gpu, dy, w, dx);
      convTranspose2x2BackwardWeights(gpu, x, dy, dw);
      biasGradient(gpu, dy, db);
      // The bias gradient with the weight gradient (in its GEMM on tiled).
      convTranspose2x2BackwardWeights(gpu, x, dy, dw2, { db: db2 });
      const want = convTranspose2x2BackwardRef(xv, xs, wv, ws, dyv);
      const errs = [
        maxRelError(await gpu.readFloat32(y.view, prod(ys)), convTranspose2x2Ref(xv, xs, wv, ws, bv)),
        maxRelError(await gpu.readFloat32(dx.view, prod(xs)), want.dx),
        maxRelError(await gpu.readFloat32(dw.view, prod(ws)), want.dw),
        maxRelError(await gpu.readFloat32(db.view, co), want.db),
        maxRelError(await gpu.readFloat32(dw2.view, prod(ws)), want.dw),
        maxRelError(await gpu.readFloat32(db2.view, co), want.db),
      ];
      const [ey, edx, edw, edb, edw2, edb2] = errs.map((e) => e.toExponential(2));
      console.log(`convTranspose2x2 ${xs} → ${co}: max rel error y ${ey} dx ${edx} dw ${edw} db ${edb}; together dw ${edw2} db ${edb2}`);
      for (const e of errs) expect(e).toBeLessThan(1e-4);
      for (const t of [x, w, b, y, dy, dx, dw, db, dw2, db2]) t.dispose();
    });
  }

  for (const ci of [3, 8]) {
    it(`accumulates gradients into existing values (${ci} input channels)`, async () => {
      const gpu = await testGpu();
      setConvOverrides(gpu, { formulation: variant });
      const xs: Shape4 = [2, 3, 4, ci];
      const ws: Shape4 = [2, 2, 4, ci];
      const ys: Shape4 = [2, 6, 8, 4];
      const xv = randomArray(prod(xs), 50);
      const wv = randomArray(prod(ws), 51);
      const dyv = randomArray(prod(ys), 52);
      const want = convTranspose2x2BackwardRef(xv, xs, wv, ws, dyv);
      const init = { dx: randomArray(prod(xs), 53), dw: randomArray(prod(ws), 54), db: randomArray(4, 55) };
      const x = allocTensor(gpu, xs, xv);
      const w = allocTensor(gpu, ws, wv);
      const dy = allocTensor(gpu, ys, dyv);
      const dx = allocTensor(gpu, xs, init.dx);
      const dw = allocTensor(gpu, ws, init.dw);
      const db = allocTensor(gpu, [4], init.db);
      convTranspose2x2BackwardInput(gpu, dy, w, dx, { accumulate: true });
      convTranspose2x2BackwardWeights(gpu, x, dy, dw, { accumulate: true, db });
      expect(maxRelError(await gpu.readFloat32(dx.view, prod(xs)), want.dx.map((v, i) => v + init.dx[i]!))).toBeLessThan(1e-4);
      expect(maxRelError(await gpu.readFloat32(dw.view, prod(ws)), want.dw.map((v, i) => v + init.dw[i]!))).toBeLessThan(1e-4);
      expect(maxRelError(await gpu.readFloat32(db.view, 4), want.db.map((v, i) => v + init.db[i]!))).toBeLessThan(1e-4);
      for (const t of [x, w, dy, dx, dw, db]) t.dispose();
    });
  }
});
}

// The bias gradient's column sums: four channels at a time where the channel
// count allows (in one pass, or split over rows with a partial last split and
// summed again; channel quads that are not a power of two; more quads than one
// workgroup takes; the U-Net's largest, 512 splits), one at a time otherwise
// (and for an empty dy, which leaves db as it was).
describe('biasGradient', () => {
  const cases: [Shape4, boolean][] = [
    [[1, 3, 3, 8], false],
    [[2, 17, 19, 36], false],
    [[2, 17, 19, 36], true],
    [[3, 10, 11, 260], true],
    [[32, 96, 96, 32], false],
    [[2, 9, 9, 3], true],
    [[1, 40, 40, 70], false],
    [[0, 4, 4, 8], true],
    [[1, 1, 100003, 4], false], // 24 splits of 4,167 rows, the last of 4,162
  ];
  for (const [shape, accumulate] of cases) {
    it(`dy ${shape}${accumulate ? ', accumulating' : ''}`, async () => {
      const gpu = await testGpu();
      const c = shape[3];
      const dyv = randomArray(prod(shape), 90);
      const init = randomArray(c, 91);
      const want = new Float64Array(c);
      for (let i = 0; i < dyv.length; i++) want[i % c]! += dyv[i]!;
      if (accumulate) for (let j = 0; j < c; j++) want[j]! += init[j]!;
      const dy = allocTensor(gpu, shape, dyv);
      const db = allocTensor(gpu, [c], accumulate ? init : undefined);
      biasGradient(gpu, dy, db, { accumulate });
      const err = maxRelError(await gpu.readFloat32(db.view, c), want);
      console.log(`biasGradient dy ${shape}: max rel error ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-5);
      for (const t of [dy, db]) t.dispose();
    });
  }

  // One pass would read dy and write db in one dispatch, which WebGPU rejects
  // for ranges of one buffer even when they do not overlap.
  for (const c of [8, 6]) {
    it(`dy and db in one buffer (${c} channels)`, async () => {
      const gpu = await testGpu();
      const shape: Shape4 = [1, 3, 3, c];
      const dyv = randomArray(prod(shape), 92);
      const want = new Float64Array(c);
      for (let i = 0; i < dyv.length; i++) want[i % c]! += dyv[i]!;
      const both = allocTensor(gpu, [128 + c]);
      gpu.upload({ buffer: both.view.buffer, offset: both.view.offset, size: dyv.byteLength }, dyv);
      const dy = { shape, view: { buffer: both.view.buffer, offset: both.view.offset, size: dyv.byteLength } };
      const db = { shape: [c], view: { buffer: both.view.buffer, offset: both.view.offset + 512, size: 4 * c } };
      biasGradient(gpu, dy, db);
      expect(maxRelError(await gpu.readFloat32(db.view, c), want)).toBeLessThan(1e-5);
      both.dispose();
    });
  }
});

// The tiled variant picks its tile per GEMM (small test GEMMs get the
// smallest); here every tile shape runs every mode, on GEMMs that span several
// tiles and end in partial ones in each dimension, with a split reduction.
describe('tiled convolution, every tile shape', () => {
  for (const shape of Object.keys(TILE_SHAPES) as TileShape[]) {
    it(`${shape}: conv2d forward (relu), ∂input, ∂weights; transposed forward, ∂input, ∂weights`, async () => {
      const gpu = await testGpu();
      setConvOverrides(gpu, { formulation: 'tiled', tile: shape });
      try {
        await expectEveryModeRight(gpu, `tiled ${shape}`, [
          [[2, 12, 13, 20], 3, 70, 'relu', 60],
          [[4, 24, 24, 8], 3, 36, 'relu', 60],
        ], [[[2, 7, 9, 12], 10, 64]]);
      } finally {
        setConvOverrides(gpu, { tile: undefined });
      }
    });
  }

  // Forward and ∂input with their reduction split (splitK) where C has few
  // tiles: 128 channels in (forward) or out (∂input) make k = 1,152, split in
  // two, on 5 × 7 images (odd rows, a short last tile); the finishing pass
  // adds bias and activation, or what dx held.
  it('splits forward and ∂input reductions with splitK: bias, activations and accumulation in the finishing pass', async () => {
    const gpu = await testGpu();
    setConvOverrides(gpu, { formulation: 'tiled', splitK: true });
    try {
      await expectEveryModeRight(gpu, 'tiled, splitK', [
        [[1, 5, 7, 128], 3, 12, 'relu', 110],
        [[2, 5, 7, 12], 3, 128, 'none', 111],
      ], []);
      // One dispatch more (the finishing pass) than unsplit, and the same values.
      const xs: Shape4 = [1, 5, 7, 128];
      const ws: Shape4 = [3, 3, 128, 12];
      const xv = randomArray(prod(xs), 112);
      const wv = randomArray(prod(ws), 113, -0.5, 0.5);
      const bv = randomArray(12, 114);
      const [x, w, b, y] = [allocTensor(gpu, xs, xv), allocTensor(gpu, ws, wv), allocTensor(gpu, [12], bv), allocTensor(gpu, [1, 5, 7, 12])];
      const dispatches = (splitK: boolean) => {
        setConvOverrides(gpu, { splitK });
        const start = gpu.dispatchCount;
        conv2d(gpu, x, w, b, y, 'sigmoid');
        return gpu.dispatchCount - start;
      };
      expect(dispatches(true)).toBe(dispatches(false) + 1);
      setConvOverrides(gpu, { splitK: true });
      conv2d(gpu, x, w, b, y, 'sigmoid');
      const sig = Array.from(conv2dRef(xv, xs, wv, ws, bv, 'none'), (v) => 1 / (1 + Math.exp(-v)));
      expect(maxRelError(await gpu.readFloat32(y.view, 5 * 7 * 12), sig)).toBeLessThan(1e-4);
      // ∂input added to what dx holds.
      const dyv = randomArray(5 * 7 * 12, 115);
      const init = randomArray(prod(xs), 116);
      const dy = allocTensor(gpu, [1, 5, 7, 12], dyv);
      const dx = allocTensor(gpu, xs, init);
      conv2dBackwardInput(gpu, dy, w, dx, { accumulate: true });
      const want = conv2dBackwardRef(xv, xs, wv, ws, dyv).dx;
      expect(maxRelError(await gpu.readFloat32(dx.view, prod(xs)), Array.from(want, (v, i) => v + init[i]!))).toBeLessThan(1e-4);
      for (const t of [x, w, b, y, dy, dx]) t.dispose();
    } finally {
      setConvOverrides(gpu, { splitK: undefined });
    }
  });

  // The tiled shader packs a staged row's y and x (16 bits each) or its tap
  // and channel (8 + 8 + 16 bits): larger shapes must still come out right.
  for (const [xs, k, co] of [
    [[1, 1, 65540, 1], 3, 2],
    [[1, 65540, 1, 1], 3, 2],
    [[1, 2, 2, 65540], 1, 1],
    [[1, 1, 140, 1], 257, 1],
  ] as [Shape4, number, number][]) {
    it(`beyond the packing limits: x ${xs}, ${k} × ${k} → ${co}`, async () => {
      const gpu = await testGpu();
      setConvOverrides(gpu, { formulation: 'tiled' });
      for (const e of await convErrors(gpu, xs, k, co, 'none', 70)) expect(e).toBeLessThan(1e-4);
    });
  }

  it('computes the bias gradient in the weight gradient\'s GEMM, without dispatches of its own', async () => {
    const gpu = await testGpu();
    setConvOverrides(gpu, { formulation: 'tiled' });
    const x = allocTensor(gpu, [2, 6, 6, 8], randomArray(2 * 6 * 6 * 8, 80));
    const dy = allocTensor(gpu, [2, 6, 6, 16], randomArray(2 * 6 * 6 * 16, 81));
    const dw = allocTensor(gpu, [3, 3, 8, 16]);
    const db = allocTensor(gpu, [16]);
    const start = gpu.dispatchCount;
    conv2dBackwardWeights(gpu, x, dy, dw);
    const alone = gpu.dispatchCount - start;
    conv2dBackwardWeights(gpu, x, dy, dw, { db });
    expect(gpu.dispatchCount - start - alone).toBe(alone);
    expect(() => conv2dBackwardWeights(gpu, x, dy, dw, { db: dw })).toThrow(/conv2dBackwardWeights: db must have shape \[16\]/);
    const overlapping = { shape: [16], view: { buffer: dw.view.buffer, offset: dw.view.offset, size: 64 } };
    expect(() => conv2dBackwardWeights(gpu, x, dy, dw, { db: overlapping })).toThrow(/conv2dBackwardWeights: dw and db are both written and overlap/);
    // The transposed convolution's: a column of ones in B, the four taps added by the split sums.
    const udy = allocTensor(gpu, [2, 12, 12, 4], randomArray(2 * 12 * 12 * 4, 84));
    const udw = allocTensor(gpu, [2, 2, 4, 8]);
    const udb = allocTensor(gpu, [4]);
    const before = gpu.dispatchCount;
    convTranspose2x2BackwardWeights(gpu, x, udy, udw);
    const upAlone = gpu.dispatchCount - before;
    convTranspose2x2BackwardWeights(gpu, x, udy, udw, { db: udb });
    expect(gpu.dispatchCount - before - upAlone).toBe(upAlone);
    expect(() => convTranspose2x2BackwardWeights(gpu, x, udy, udw, { db: db })).toThrow(/convTranspose2x2BackwardWeights: db must have shape \[4\]/);
    for (const t of [x, dy, dw, db, udy, udw, udb]) t.dispose();
  });

  for (const variant of VARIANTS) {
    it(`an empty batch gives zero weight and bias gradients, or adds nothing (${variant})`, async () => {
      const gpu = await testGpu();
      setConvOverrides(gpu, { formulation: variant });
      const x = allocTensor(gpu, [0, 6, 6, 8]);
      const dy = allocTensor(gpu, [0, 6, 6, 16]);
      const init = { dw: randomArray(9 * 8 * 16, 82), db: randomArray(16, 83) };
      for (const accumulate of [true, false]) {
        const dw = allocTensor(gpu, [3, 3, 8, 16], init.dw);
        const db = allocTensor(gpu, [16], init.db);
        conv2dBackwardWeights(gpu, x, dy, dw, { accumulate, db });
        expect(Array.from(await gpu.readFloat32(dw.view, 9 * 8 * 16))).toEqual(Array.from(accumulate ? init.dw : new Float32Array(9 * 8 * 16)));
        expect(Array.from(await gpu.readFloat32(db.view, 16))).toEqual(Array.from(accumulate ? init.db : new Float32Array(16)));
        for (const t of [dw, db]) t.dispose();
      }
      for (const t of [x, dy]) t.dispose();
    });
  }

  // Weight gradients split over pixels where a split starts inside an image
  // row and the last split is shorter (2 × 37 × 29 = 2,146 pixels: two splits
  // of 1,088 and 1,058 on the CPU formulations), channels that come in fours
  // and not; a forward whose last block of rows runs past M with vec4 stores.
  for (const variant of VARIANTS) {
    it(`splits that start mid-row and a short last split; rows past M (${variant})`, async () => {
      const gpu = await testGpu();
      setConvOverrides(gpu, { formulation: variant });
      const cases: [Shape4, number][] = [[[2, 37, 29, 4], 5], [[3, 25, 31, 3], 4]];
      for (const [xs, co] of cases) {
        const ws: Shape4 = [3, 3, xs[3], co];
        const ys: Shape4 = [xs[0], xs[1], xs[2], co];
        const xv = randomArray(prod(xs), 90);
        const dyv = randomArray(prod(ys), 91);
        const x = allocTensor(gpu, xs, xv);
        const dy = allocTensor(gpu, ys, dyv);
        const dw = allocTensor(gpu, ws);
        conv2dBackwardWeights(gpu, x, dy, dw);
        const want = conv2dBackwardRef(xv, xs, randomArray(prod(ws), 92), ws, dyv).dw;
        expect(maxRelError(await gpu.readFloat32(dw.view, prod(ws)), want)).toBeLessThan(1e-4);
        const uws: Shape4 = [2, 2, co, xs[3]];
        const uys: Shape4 = [xs[0], 2 * xs[1], 2 * xs[2], co];
        const udyv = randomArray(prod(uys), 93);
        const udy = allocTensor(gpu, uys, udyv);
        const udw = allocTensor(gpu, uws);
        convTranspose2x2BackwardWeights(gpu, x, udy, udw);
        const uwant = convTranspose2x2BackwardRef(xv, xs, randomArray(prod(uws), 94), uws, udyv).dw;
        expect(maxRelError(await gpu.readFloat32(udw.view, prod(uws)), uwant)).toBeLessThan(1e-4);
        for (const t of [x, dy, dw, udy, udw]) t.dispose();
      }
      const xs: Shape4 = [1, 5, 7, 4];
      const ws: Shape4 = [3, 3, 4, 8];
      const xv = randomArray(prod(xs), 95);
      const wv = randomArray(prod(ws), 96, -0.5, 0.5);
      const bv = randomArray(8, 97);
      const x = allocTensor(gpu, xs, xv);
      const w = allocTensor(gpu, ws, wv);
      const b = allocTensor(gpu, [8], bv);
      const y = allocTensor(gpu, [1, 5, 7, 8]);
      conv2d(gpu, x, w, b, y, 'relu');
      expect(maxRelError(await gpu.readFloat32(y.view, 5 * 7 * 8), conv2dRef(xv, xs, wv, ws, bv, 'relu'))).toBeLessThan(1e-4);
      for (const t of [x, w, b, y]) t.dispose();
    });
  }

  it('refuses the rows formulation on devices that cannot run it, saying what the device has', () => {
    const fake = (hasSubgroups: boolean, min: number, max: number) =>
      ({ hasSubgroups, matrix: null, limits: {}, adapterInfo: { isSoftware: true, subgroupMinSize: min, subgroupMaxSize: max } }) as unknown as Gpu;
    expect(() => setConvOverrides(fake(true, 8, 16), { formulation: 'rows' })).toThrow('the rows convolution needs a software adapter with subgroups of exactly 8 invocations; this device has subgroups of 8 to 16');
    expect(() => setConvOverrides(fake(true, 32, 32), { formulation: 'rows' })).toThrow('this device has subgroups of 32');
    expect(() => setConvOverrides(fake(false, 0, 0), { formulation: 'rows' })).toThrow('this device has no subgroups');
    expect(() => setConvOverrides(fake(true, 8, 16), { formulation: 'nope' as 'rows' })).toThrow('unknown convolution formulation "nope": use tiled, rows or direct');
    expect(() => setConvOverrides(fake(true, 8, 16), { tile: '128x128' as TileShape })).toThrow('unknown tile shape "128x128"');
  });

  it('refuses tall or wide subgroup tiles where the forced tile cannot hold them, and a value that is not a boolean', () => {
    const limits = { maxComputeWorkgroupStorageSize: 16384, maxComputeInvocationsPerWorkgroup: 256 };
    const gpu = {
      hasSubgroups: true, matrix: { M: 16, N: 16, K: 16 }, limits, invalidatePrograms: () => {},
      adapterInfo: { isSoftware: false, subgroupMinSize: 32, subgroupMaxSize: 32 },
    } as unknown as Gpu;
    // 32 rows cannot take four 16-row matrices a subgroup; 64 rows can.
    expect(() => setConvOverrides(gpu, { mmaTile: '32x32x32', mmaTall: true })).toThrow('subgroup tiles of 4 × 2 result matrices do not fit the tile 32x32x32 on this device');
    expect(() => setConvOverrides(gpu, { mmaTile: '64x64x32', mmaTall: true })).not.toThrow();
    expect(convOverrides(gpu)).toMatchObject({ mmaTile: '64x64x32', mmaTall: true });
    expect(() => setConvOverrides(gpu, { mmaTall: 'yes' as unknown as boolean })).toThrow('mmaTall must be true or false, not yes');
    // 32 columns cannot take four 16-column matrices a subgroup either.
    expect(() => setConvOverrides(gpu, { mmaTile: '64x32x32', mmaTall: false, mmaWide: true })).toThrow('subgroup tiles of 2 × 4 result matrices do not fit the tile 64x32x32 on this device');
    expect(() => setConvOverrides(gpu, { mmaWide: 1 as unknown as boolean })).toThrow('mmaWide must be true or false, not 1');
  });
});
