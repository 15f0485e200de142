/**
 * Mixed precision's f16 storage of activations and their gradients: every
 * kernel that reads or writes them, run on f16 tensors, against the same
 * kernel on f32 tensors holding the same (f16) values, on the same adapter.
 *
 * What must hold, and why:
 * - the convolutions round A and B to f16 as they stage them, so an f16 A or
 *   B gives the very products and f32 sums of an f32 one: weight and bias
 *   gradients (f32) are equal bit for bit, and an f16 output is the f32
 *   output rounded to one of its two neighbouring f16 values (WGSL leaves
 *   the direction of the f32 → f16 conversion to the implementation);
 * - pooling, concatenation, its split and the ReLU gradient move or zero
 *   values: equal bit for bit, accumulating ones rounded as above;
 * - the other maps compute in f32 and round once.
 * Then the U-Net: which tensors are f16, and the memory a training step
 * saves. Runs where the adapter has shader-f16 and f16 subgroup matrices
 * (the sandbox, GPUs); WGSL_UNET_REQUIRE_MIXED=1 makes their absence a failure.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { CONV_CASES, UP_CASES } from '../helpers/conv-cases.js';
import { randomArray } from '../helpers/random.js';
import type { Shape4 } from '../reference/conv.js';
import { blobBatch } from '../model/blobs.js';
import { type DType, type OwnedGpuTensor, allocTensor, fromHalf, readElements, toHalf } from '../../src/gpu/tensor-view.js';
import {
  biasGradient,
  canRunMixed,
  conv2d,
  conv2dBackwardInput,
  conv2dBackwardWeights,
  convTranspose2x2,
  convTranspose2x2BackwardInput,
  convTranspose2x2BackwardWeights,
  setConvOverrides,
  setPrecision,
} from '../../src/ops/conv/index.js';
import { maxPool2x2, maxPool2x2Backward } from '../../src/ops/maxpool/kernel.js';
import { concatChannels, splitChannels } from '../../src/ops/concat/kernel.js';
import { binary, binaryInPlace, unary } from '../../src/ops/elementwise/kernel.js';
import { dropout } from '../../src/ops/dropout/kernel.js';
import { batchNormBackward, batchNormTrain } from '../../src/ops/batchnorm/kernel.js';
import { Tape, Tensor, concat, conv2d as conv2dOp, convTranspose2x2 as upOp, maxPool2x2 as poolOp } from '../../src/autograd/index.js';
import { createUNet } from '../../src/model/unet.js';
import { Adam } from '../../src/model/adam.js';
import { trainingStep } from '../../src/model/trainer.js';

const required = process.env.WGSL_UNET_REQUIRE_MIXED === '1';
const gpu = await testGpu();
const mixed = canRunMixed(gpu);
const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Random values in [-1, 1) that f16 holds exactly. */
const halves = (n: number, seed: number) => randomArray(n, seed).map((v) => fromHalf(toHalf(v)));

/** The f16 values next to r: r itself when f16 holds it, else the one below and the one above. */
function neighbours(r: number): number[] {
  const h = toHalf(r);
  const v = fromHalf(h);
  if (v === r) return [v];
  const up = Math.abs(r) > Math.abs(v) ? 1 : -1;
  return [v, fromHalf((h & 0x8000) | ((h & 0x7fff) + up))];
}

/** Each element of `got` is `f32` rounded to a neighbouring f16 value. */
function expectRoundedToF16(what: string, got: Float32Array, f32: Float32Array): void {
  expect(got.length).toBe(f32.length);
  for (let i = 0; i < got.length; i++) {
    if (!neighbours(f32[i]!).includes(got[i]!)) throw new Error(`${what}: element ${i} is ${got[i]}, not a neighbouring f16 of ${f32[i]}`);
  }
}

/** The same tensors twice: stored as f16 and as f32, with the same values (uninitialised where `values` is absent). */
function pair(shape: readonly number[], values?: Float32Array): Record<DType, OwnedGpuTensor> {
  return { f16: allocTensor(gpu, shape, values, 'f16'), f32: allocTensor(gpu, shape, values) };
}
const read = (t: OwnedGpuTensor) => readElements(gpu, t.view, prod(t.shape), t.dtype);

describe.runIf(mixed || required)('f16 storage of activations and gradients', () => {
  afterEach(() => {
    setPrecision(gpu, 'fp32');
    setConvOverrides(gpu, { storage: undefined, splitK: undefined, mmaTile: undefined, mmaDirectB: undefined });
  });

  // Two cases as planned, and two whose forward or ∂input reduction is split (splitK), finished into f16.
  const cases: [Shape4, number, number, boolean][] = [[...CONV_CASES[0]!, false], [...CONV_CASES[5]!, false], [[1, 5, 7, 128], 3, 12, true], [[2, 5, 7, 12], 3, 128, true]];
  for (const [xs, k, co, splitK] of cases) {
    it(`conv2d x ${xs}, ${k}×${k} → ${co}${splitK ? ', splitK' : ''}: forward, ∂input (fresh and accumulated), ∂weights with bias from f16 tensors`, async () => {
      setPrecision(gpu, 'mixed');
      if (splitK) setConvOverrides(gpu, { splitK });
      const ws = [k, k, xs[3], co];
      const ys = [xs[0], xs[1], xs[2], co];
      const w = allocTensor(gpu, ws, randomArray(prod(ws), 2));
      const b = allocTensor(gpu, [co], randomArray(co, 3));
      const x = pair(xs, halves(prod(xs), 4));
      const dy = pair(ys, halves(prod(ys), 5));
      const y = pair(ys);
      const dx = pair(xs);
      const dxAcc = pair(xs, halves(prod(xs), 6));
      const dxMasked = pair(xs, halves(prod(xs), 6));
      const dw = { f16: allocTensor(gpu, ws), f32: allocTensor(gpu, ws) };
      const db = { f16: allocTensor(gpu, [co]), f32: allocTensor(gpu, [co]) };
      for (const t of ['f16', 'f32'] as const) {
        const start = gpu.dispatchCount;
        conv2d(gpu, x[t], w, b, y[t], 'relu');
        conv2dBackwardInput(gpu, dy[t], w, dx[t]);
        // One GEMM each, and where split, one finishing pass.
        expect(gpu.dispatchCount - start).toBe(splitK ? 3 : 2);
        conv2dBackwardInput(gpu, dy[t], w, dxAcc[t], { accumulate: true });
        // Masked by x's ReLU (x taken for a ReLU's output: about half its values are not positive).
        conv2dBackwardInput(gpu, dy[t], w, dxMasked[t], { accumulate: true, mask: x[t] });
        conv2dBackwardWeights(gpu, x[t], dy[t], dw[t], { db: db[t] });
      }
      expectRoundedToF16('y', await read(y.f16), await read(y.f32));
      expectRoundedToF16('dx', await read(dx.f16), await read(dx.f32));
      expectRoundedToF16('dx accumulated', await read(dxAcc.f16), await read(dxAcc.f32));
      const masked = await read(dxMasked.f16);
      expectRoundedToF16('dx accumulated and masked', masked, await read(dxMasked.f32));
      // dxAcc's values where x is positive, zero elsewhere.
      const xv = await read(x.f32);
      const acc = await read(dxAcc.f16);
      expect(masked).toEqual(acc.map((v, i) => (xv[i]! > 0 ? v : 0)));
      expect(await read(dw.f16)).toEqual(await read(dw.f32));
      expect(await read(db.f16)).toEqual(await read(db.f32));
      for (const t of [w, b, ...[x, dy, y, dx, dxAcc, dxMasked, dw, db].flatMap((p) => [p.f16, p.f32])]) t.dispose();
    });
  }

  // B's matrices loaded from memory unstaged (mmaDirectB) where ∂output is f16 and fills whole tiles (32 or 64 channels
  // on 64 × 32) and k steps: one case within one k split, one split in two, one 1 × 1 layer.
  const direct: [Shape4, number, number][] = [[[2, 4, 8, 16], 3, 32], [[2, 16, 16, 8], 3, 32], [[1, 8, 8, 24], 1, 64]];
  for (const [xs, k, co] of direct) {
    it(`conv2d ∂weights x ${xs}, ${k}×${k} → ${co} with B's matrices from memory where ∂output is f16: the staged GEMM's sums exactly`, async () => {
      setPrecision(gpu, 'mixed');
      setConvOverrides(gpu, { mmaTile: '64x32x32', mmaDirectB: true });
      const ws = [k, k, xs[3], co];
      const ys = [xs[0], xs[1], xs[2], co];
      const x = pair(xs, halves(prod(xs), 21));
      const dy = pair(ys, halves(prod(ys), 22));
      const dw = { f16: allocTensor(gpu, ws), f32: allocTensor(gpu, ws) };
      const db = { f16: allocTensor(gpu, [co]), f32: allocTensor(gpu, [co]) };
      const labels: Record<DType, string[]> = { f16: [], f32: [] };
      const before = gpu.observer;
      try {
        for (const t of ['f16', 'f32'] as const) {
          gpu.observer = { timestampWrites: (label) => (labels[t].push(label), undefined) };
          conv2dBackwardWeights(gpu, x[t], dy[t], dw[t], { db: db[t] });
        }
      } finally {
        gpu.observer = before;
      }
      // Unstaged only where ∂output is stored in f16; the f32 run stages B, with the same splits.
      expect(labels.f16.filter((l) => l.includes(', B from memory')).length, labels.f16.join('\n')).toBe(1);
      expect(labels.f32.filter((l) => l.includes(', B from memory')).length, labels.f32.join('\n')).toBe(0);
      expect(labels.f16.map((l) => l.replace(', B from memory', ''))).toEqual(labels.f32);
      const got = await read(dw.f16);
      expect(got).toEqual(await read(dw.f32));
      expect(await read(db.f16)).toEqual(await read(db.f32));
      // And the fp32 kernels' gradient: the operands are f16 values, so only the order of the f32 sums differs.
      setPrecision(gpu, 'fp32');
      const ref = allocTensor(gpu, ws);
      conv2dBackwardWeights(gpu, x.f32, dy.f32, ref);
      const fp32 = await read(ref);
      const scale = Math.max(...fp32.map(Math.abs));
      expect(scale).toBeGreaterThan(0.1);
      expect(Math.max(...got.map((v, i) => Math.abs(v - fp32[i]!)))).toBeLessThanOrEqual(1e-5 * scale * Math.sqrt(prod(ys.slice(0, 3))));
      for (const t of [ref, ...[x, dy, dw, db].flatMap((p) => [p.f16, p.f32])]) t.dispose();
    });
  }

  for (const [xs, co] of [UP_CASES[0]!, UP_CASES[3]!]) {
    it(`convTranspose2x2 x ${xs} → ${co}: forward, ∂input (accumulated), ∂weights and the bias gradient from f16 tensors`, async () => {
      setPrecision(gpu, 'mixed');
      const ws = [2, 2, co, xs[3]];
      const ys = [xs[0], 2 * xs[1], 2 * xs[2], co];
      const w = allocTensor(gpu, ws, randomArray(prod(ws), 7));
      const b = allocTensor(gpu, [co], randomArray(co, 8));
      const x = pair(xs, halves(prod(xs), 9));
      const dy = pair(ys, halves(prod(ys), 10));
      const y = pair(ys);
      const dxAcc = pair(xs, halves(prod(xs), 11));
      const dw = { f16: allocTensor(gpu, ws), f32: allocTensor(gpu, ws) };
      const db = { f16: allocTensor(gpu, [co]), f32: allocTensor(gpu, [co]) };
      for (const t of ['f16', 'f32'] as const) {
        convTranspose2x2(gpu, x[t], w, b, y[t]);
        convTranspose2x2BackwardInput(gpu, dy[t], w, dxAcc[t], { accumulate: true });
        convTranspose2x2BackwardWeights(gpu, x[t], dy[t], dw[t]);
        biasGradient(gpu, dy[t], db[t]);
      }
      expectRoundedToF16('y', await read(y.f16), await read(y.f32));
      expectRoundedToF16('dx accumulated', await read(dxAcc.f16), await read(dxAcc.f32));
      expect(await read(dw.f16)).toEqual(await read(dw.f32));
      expect(await read(db.f16)).toEqual(await read(db.f32));
      for (const t of [w, b, ...[x, dy, y, dxAcc, dw, db].flatMap((p) => [p.f16, p.f32])]) t.dispose();
    });
  }

  for (const c of [3, 8]) {
    it(`max-pooling, concatenation and their gradients on f16 tensors equal f32's (${c} channels: ${c % 4 ? 'scalar' : 'vec4'} loads)`, async () => {
      const xs = [2, 5, 7, c];
      const ps = [2, 2, 3, c];
      const x = pair(xs, halves(prod(xs), 12));
      const dy = pair(ps, halves(prod(ps), 13));
      const y = pair(ps);
      const dx = pair(xs);
      const dxAcc = pair(xs, halves(prod(xs), 14));
      const dxMasked = pair(xs, halves(prod(xs), 14));
      const bs = [2, 5, 7, 4];
      const cs = [2, 5, 7, c + 4];
      const other = pair(bs, halves(prod(bs), 15));
      const joined = pair(cs);
      const dj = pair(cs, halves(prod(cs), 16));
      const da = pair(xs, halves(prod(xs), 17));
      const dbb = pair(bs, halves(prod(bs), 18));
      for (const t of ['f16', 'f32'] as const) {
        maxPool2x2(gpu, x[t], y[t]);
        maxPool2x2Backward(gpu, x[t], dy[t], dx[t]);
        maxPool2x2Backward(gpu, x[t], dy[t], dxAcc[t], { accumulate: true });
        maxPool2x2Backward(gpu, x[t], dy[t], dxMasked[t], { accumulate: true, reluMask: true });
        concatChannels(gpu, x[t], other[t], joined[t]);
        splitChannels(gpu, dj[t], da[t], dbb[t], { accumulate: true });
      }
      expect(await read(y.f16)).toEqual(await read(y.f32));
      expect(await read(dx.f16)).toEqual(await read(dx.f32));
      expectRoundedToF16('pooled dx accumulated', await read(dxAcc.f16), await read(dxAcc.f32));
      // With x's ReLU mask: the same where x is positive (x taken for a ReLU's output), zero elsewhere, unpooled edges included.
      const xv = await read(x.f32);
      const acc = await read(dxAcc.f16);
      expect(await read(dxMasked.f16)).toEqual(acc.map((v, i) => (xv[i]! > 0 ? v : 0)));
      expect(await read(joined.f16)).toEqual(await read(joined.f32));
      expectRoundedToF16('da accumulated', await read(da.f16), await read(da.f32));
      expectRoundedToF16('db accumulated', await read(dbb.f16), await read(dbb.f32));
      for (const p of [x, dy, y, dx, dxAcc, dxMasked, other, joined, dj, da, dbb]) for (const t of [p.f16, p.f32]) t.dispose();
    });
  }

  it('the elementwise maps on f16 tensors: the ReLU gradient exactly (also in place), the rest (sigmoid and ELU gradients, accumulation) rounded once from f32, dropout exact', async () => {
    for (const n of [7, 64]) {
      const a = pair([n], halves(n, 19));
      const b = pair([n], halves(n, 20).map((v) => Math.abs(v)));
      const relu = pair([n]);
      const sig = pair([n]);
      const elu = pair([n]);
      const dropped = pair([n]);
      const seed = allocTensor(gpu, [1]);
      gpu.upload(seed.view, Uint32Array.of(11));
      const acc = pair([n], halves(n, 21));
      const io = pair([n], halves(n, 19));
      for (const t of ['f16', 'f32'] as const) {
        binary(gpu, 'reluBackward', a[t], a[t], relu[t]);
        binaryInPlace(gpu, 'reluBackward', io[t], b[t]);
        binary(gpu, 'sigmoidBackward', a[t], b[t], sig[t]);
        binary(gpu, 'eluBackward', a[t], a[t], elu[t]);
        dropout(gpu, a[t], seed.view, dropped[t], 0.5);
        unary(gpu, 'copy', a[t], acc[t], { accumulate: true });
      }
      expect(await read(relu.f16)).toEqual(await read(relu.f32));
      expect(await read(io.f16)).toEqual(await read(io.f32));
      expectRoundedToF16(`sigmoid gradient, ${n}`, await read(sig.f16), await read(sig.f32));
      expectRoundedToF16(`ELU gradient, ${n}`, await read(elu.f16), await read(elu.f32));
      // Rate 0.5 scales by 2: exact in f16 as in f32, on the same mask.
      expect(await read(dropped.f16)).toEqual(await read(dropped.f32));
      seed.dispose();
      expectRoundedToF16(`accumulated copy, ${n}`, await read(acc.f16), await read(acc.f32));
      for (const p of [a, b, relu, sig, elu, dropped, acc, io]) for (const t of [p.f16, p.f32]) t.dispose();
    }
  });

  it('batch normalisation of f16 tensors: the statistics and parameter gradients of f32, y and dx rounded once from f32', async () => {
    const shape = [2, 5, 6, 12];
    const n = prod(shape);
    const x = pair(shape, halves(n, 51));
    const dy = pair(shape, halves(n, 52));
    const y = pair(shape);
    const dx = pair(shape);
    const f32 = (values?: Float32Array, len = 12) => ({ f16: allocTensor(gpu, [len], values), f32: allocTensor(gpu, [len], values) });
    const gamma = allocTensor(gpu, [12], randomArray(12, 53, 0.5, 1.5));
    const beta = allocTensor(gpu, [12], randomArray(12, 54));
    const mean = f32(new Float32Array(12));
    const variance = f32(new Float32Array(12).fill(1));
    const stats = { f16: allocTensor(gpu, [12, 2]), f32: allocTensor(gpu, [12, 2]) };
    const dg = f32();
    const db = f32();
    for (const t of ['f16', 'f32'] as const) {
      batchNormTrain(gpu, x[t], gamma, beta, { mean: mean[t], variance: variance[t] }, stats[t], y[t]);
      batchNormBackward(gpu, x[t], dy[t], gamma, stats[t], dx[t], dg[t], db[t]);
    }
    // The same values in, the same f32 sums: equal bit for bit.
    for (const p of [mean, variance, stats, dg, db]) expect(await read(p.f16)).toEqual(await read(p.f32));
    expectRoundedToF16('batch-normalised y', await read(y.f16), await read(y.f32));
    expectRoundedToF16('batch-normalised dx', await read(dx.f16), await read(dx.f32));
    for (const p of [x, dy, y, dx, mean, variance, stats, dg, db]) for (const t of [p.f16, p.f32]) t.dispose();
    for (const t of [gamma, beta]) t.dispose();
  });

  it('refuses mixed dtypes and f16 tensors outside mixed precision, naming them', () => {
    const x = allocTensor(gpu, [1, 4, 4, 4], undefined, 'f16');
    const y = allocTensor(gpu, [1, 2, 2, 4]);
    const w = allocTensor(gpu, [3, 3, 4, 4]);
    const b = allocTensor(gpu, [4]);
    const out = allocTensor(gpu, [1, 4, 4, 4], undefined, 'f16');
    const w16 = allocTensor(gpu, [3, 3, 4, 4], undefined, 'f16');
    expect(() => maxPool2x2(gpu, x, y)).toThrow(/out is f32 but x is f16/);
    expect(() => conv2d(gpu, x, w, b, out)).toThrow(/f16 tensors go through the mixed-precision convolution only/);
    setPrecision(gpu, 'mixed');
    expect(() => conv2d(gpu, x, w16, b, out)).toThrow(/w is f16; this op takes f32 tensors only/);
    for (const t of [x, y, w, w16, b, out]) t.dispose();
  });

  it('the autograd ops store activations as f16 in mixed precision, the sigmoid\'s probabilities as f32', () => {
    const x = Tensor.from(gpu, [1, 4, 4, 1], randomArray(16, 22));
    const w1 = Tensor.from(gpu, [3, 3, 1, 4], randomArray(36, 23), true);
    const w2 = Tensor.from(gpu, [1, 1, 8, 1], randomArray(8, 24), true);
    const wu = Tensor.from(gpu, [2, 2, 4, 4], randomArray(64, 25), true);
    const b4 = Tensor.from(gpu, [4], new Float32Array(4), true);
    const b1 = Tensor.from(gpu, [1], new Float32Array(1), true);
    const dtypes = (precision: 'fp32' | 'mixed', storage?: 'f32') => {
      setPrecision(gpu, precision);
      setConvOverrides(gpu, { storage });
      const tape = new Tape(gpu);
      const seen = tape.run(() => {
        const h = conv2dOp(x, w1, b4, 'relu');
        const pooled = poolOp(h);
        const up = upOp(pooled, wu, b4);
        const merged = concat(up, h);
        const p = conv2dOp(merged, w2, b1, 'sigmoid');
        return [h, pooled, up, merged, p].map((t) => t.dtype).join(' ');
      });
      tape.dispose();
      return seen;
    };
    expect(dtypes('fp32')).toBe('f32 f32 f32 f32 f32');
    expect(dtypes('mixed')).toBe('f16 f16 f16 f16 f32');
    expect(dtypes('mixed', 'f32')).toBe('f32 f32 f32 f32 f32');
    for (const t of [x, w1, w2, wu, b4, b1]) t.dispose();
  });

  it('a U-Net training step holds less than 60 % of the memory with f16 activations, and learns as with f32 ones', async () => {
    const [n, size] = [8, 96];
    const batch = blobBatch(n, size, 26);
    const x = Tensor.from(gpu, [n, size, size, 1], batch.images);
    const y = Tensor.from(gpu, [n, size, size, 1], batch.masks);
    setPrecision(gpu, 'mixed');
    const step = async (storage: 'f32' | 'f16') => {
      setConvOverrides(gpu, { storage });
      // An empty pool: its idle buffers, sized for the other run, would serve (and count as) larger.
      gpu.trimPool();
      const model = createUNet(gpu, { baseWidth: 8, inputSize: size, seed: 4 });
      const adam = new Adam(model.parameters, { lr: 1e-3 }, true);
      const base = gpu.memory().liveBytes;
      gpu.resetPeakMemory();
      const losses: number[] = [];
      for (let i = 0; i < 3; i++) {
        model.parameters.zeroGrads();
        const { loss } = trainingStep(model, adam, x, y);
        losses.push((await loss.read())[0]!);
        loss.dispose();
      }
      const peak = gpu.memory().peakLiveBytes - base;
      model.dispose();
      adam.dispose();
      return { peak, losses, base };
    };
    const wide = await step('f32');
    const half = await step('f16');
    console.log(`model and optimiser ${(half.base / 2 ** 20).toFixed(2)} MiB; training step, batch ${n}, ${size}², width 8: peak live memory above the model ${(half.peak / 2 ** 20).toFixed(2)} MiB with f16 activations, ${(wide.peak / 2 ** 20).toFixed(2)} MiB with f32 (×${(half.peak / wide.peak).toFixed(3)}); losses ${half.losses.map((l) => l.toFixed(5))} against ${wide.losses.map((l) => l.toFixed(5))}`);
    // Activations and their gradients are nearly all of it; stored in f16 they take half.
    expect(half.peak / wide.peak).toBeLessThan(0.6);
    // The same operands reach the tensor cores either way; only stored gradients round differently.
    half.losses.forEach((l, i) => expect(Math.abs(l - wide.losses[i]!)).toBeLessThan(1e-3));
    x.dispose();
    y.dispose();
  });
});
