import { describe, expect, it } from 'vitest';
import { testGpu } from '../../../test/helpers/gpu.js';
import { randomArray, rng } from '../../../test/helpers/random.js';
import { allocTensor } from '../../gpu/tensor-view.js';
import { type AdamHyperparameters, adamStep } from './kernel.js';

const N = 10_007; // odd: not a multiple of 4 or of the workgroup (quads, then a tail of 3)

/** Per-parameter gradient scales 10^-9 … 10^3 (some below ε, where ε dominates), a few parameters with zero gradient. */
function gradientScales(seed: number, n = N): Float64Array {
  const r = rng(seed);
  return Float64Array.from({ length: n }, (_, i) => (i % 97 === 0 ? 0 : 10 ** (-9 + 12 * r())));
}

/** Gradients of step t: scale · uniform(−1, 1), every fifth parameter always positive (a consistent direction). */
function gradients(scales: Float64Array, t: number): Float32Array {
  const u = randomArray(scales.length, 1000 + t, -1, 1);
  return Float32Array.from(u, (x, i) => scales[i]! * (i % 5 === 0 ? Math.abs(x) : x));
}

/** The Keras update, by hand, in float64. */
function keras(p: Float64Array, m: Float64Array, v: Float64Array, g: Float32Array, h: AdamHyperparameters): void {
  const lrT = (h.lr * Math.sqrt(1 - h.beta2 ** h.step)) / (1 - h.beta1 ** h.step);
  for (let i = 0; i < p.length; i++) {
    m[i] = h.beta1 * m[i]! + (1 - h.beta1) * g[i]!;
    v[i] = h.beta2 * v[i]! + (1 - h.beta2) * g[i]! * g[i]!;
    p[i] = p[i]! - (lrT * m[i]!) / (Math.sqrt(v[i]!) + h.epsilon);
  }
}

/** Spacing of float32 numbers at x (one unit in the last place). */
function ulp32(x: number): number {
  const a = Math.abs(Math.fround(x));
  if (a < 2 ** -126) return 2 ** -149;
  return 2 ** (Math.floor(Math.log2(a)) - 23);
}

async function run(hyper: Omit<AdamHyperparameters, 'step'>, steps: number, p0: Float32Array, scales: Float64Array) {
  const gpu = await testGpu();
  const N = p0.length;
  const params = allocTensor(gpu, [N], p0);
  const grads = allocTensor(gpu, [N]);
  const m = allocTensor(gpu, [N], new Float32Array(N));
  const v = allocTensor(gpu, [N], new Float32Array(N));
  const ref = { p: Float64Array.from(p0), m: new Float64Array(N), v: new Float64Array(N) };
  for (let t = 1; t <= steps; t++) {
    const g = gradients(scales, t);
    gpu.upload(grads.view, g);
    adamStep(gpu, params, grads, m, v, { ...hyper, step: t });
    keras(ref.p, ref.m, ref.v, g, { ...hyper, step: t });
  }
  const got = {
    p: await gpu.readFloat32(params.view, N),
    m: await gpu.readFloat32(m.view, N),
    v: await gpu.readFloat32(v.view, N),
  };
  for (const t of [params, grads, m, v]) t.dispose();
  // m and v measured against each parameter's gradient scale (s and s²): they cancel
  // to near 0 when gradients change sign, so their own size is no yardstick.
  let errM = 0;
  let errV = 0;
  let errUlps = 0;
  let errUpdate = 0;
  for (let i = 0; i < N; i++) {
    const s = scales[i]!;
    if (s > 0) {
      errM = Math.max(errM, Math.abs(got.m[i]! - ref.m[i]!) / s);
      errV = Math.max(errV, Math.abs(got.v[i]! - ref.v[i]!) / (s * s));
    } else {
      expect([got.m[i], got.v[i], got.p[i]]).toEqual([0, 0, p0[i]]); // zero gradient: nothing moves
    }
    const d = Math.abs(got.p[i]! - ref.p[i]!);
    errUlps = Math.max(errUlps, d / ulp32(ref.p[i]!));
    errUpdate = Math.max(errUpdate, d / (hyper.lr * steps)); // each step moves a parameter by about lr at most
  }
  return { errM, errV, errUlps, errUpdate, moved: got.p.reduce((k, x, i) => k + (x !== p0[i] ? 1 : 0), 0) };
}

describe('adamStep (Keras form) on the GPU', () => {
  it('five steps match the Keras update in float64 (lr 1e-3, eps 1e-7)', async () => {
    const scales = gradientScales(7);
    const p0 = randomArray(N, 8, -0.1, 0.1);
    const hyper = { lr: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 };
    const e = await run(hyper, 5, p0, scales);
    console.log(
      `adam lr 1e-3, 5 steps, ${N} params: max rel error params ${e.errUpdate.toExponential(2)} (of lr·steps), m ${e.errM.toExponential(2)} (of |g| scale), v ${e.errV.toExponential(2)} (of g² scale)`,
    );
    expect(e.moved).toBeGreaterThan(N * 0.98);
    expect(e.errUpdate).toBeLessThan(1e-4);
    expect(e.errM).toBeLessThan(1e-6);
    expect(e.errV).toBeLessThan(1e-6);
  });

  // Four parameters per invocation and one: only quads, only the one-by-one tail, both.
  for (const n of [8, 3, 10_005]) {
    it(`${n} parameters: every one follows the Keras update`, async () => {
      const scales = gradientScales(11, n);
      const e = await run({ lr: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 }, 3, randomArray(n, 12, -0.1, 0.1), scales);
      // A parameter left behind would be off by a whole update (≈ lr per step).
      expect(e.errUpdate).toBeLessThan(1e-4);
      expect(e.errM).toBeLessThan(1e-6);
      expect(e.errV).toBeLessThan(1e-6);
    });
  }

  it("the tutorial's values (lr 1e-5, beta1 0.9, beta2 0.999, eps 1e-7): parameters within float32 rounding of float64", async () => {
    const scales = gradientScales(9);
    const p0 = randomArray(N, 10, -0.1, 0.1); // Glorot-uniform-sized weights
    const hyper = { lr: 1e-5, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 };
    const steps = 8;
    const e = await run(hyper, steps, p0, scales);
    console.log(
      `adam lr 1e-5, ${steps} steps: max param error ${e.errUlps.toFixed(2)} float32 ulps (${e.errUpdate.toExponential(2)} of lr·steps), m ${e.errM.toExponential(2)}, v ${e.errV.toExponential(2)}`,
    );
    // At lr 1e-5 an update is ~100 ulps of a 0.1 weight: the f32 store rounds each step by ≤ ½ ulp.
    expect(e.errUlps).toBeLessThan(steps / 2 + 1);
    expect(e.errM).toBeLessThan(1e-6);
    expect(e.errV).toBeLessThan(1e-6);
  });

  it('rejects mismatched buffers and a bad step with messages naming the op', async () => {
    const gpu = await testGpu();
    const p = allocTensor(gpu, [100]);
    const g = allocTensor(gpu, [99]);
    const m = allocTensor(gpu, [100]);
    const v = allocTensor(gpu, [100]);
    const h = { lr: 1e-5, beta1: 0.9, beta2: 0.999, epsilon: 1e-7, step: 1 };
    expect(() => adamStep(gpu, p, g, m, v, h)).toThrow(/adamStep: grads has shape \[99\] but params has \[100\]/);
    expect(() => adamStep(gpu, p, m, m, v, h)).toThrow(/adamStep: m \(written\) and grads \(read\) lie in one GPU buffer/);
    expect(() => adamStep(gpu, p, v, m, v, { ...h, step: 0 })).toThrow(/adamStep: step must be an integer from 1, got 0/);
    for (const t of [p, g, m, v]) t.dispose();
  });
});
