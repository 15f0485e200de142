import { describe, expect, it } from 'vitest';
import { testGpu } from './helpers/gpu.js';
import { randomArray, rng } from './helpers/random.js';
import { relErrorToScale } from './helpers/compare.js';
import { Tape, Tensor, concat, conv2d, convTranspose2x2, diceLoss, maxPool2x2, noGrad, add, mul, scale, sum, relu, sigmoid } from '../src/autograd/index.js';
import type { Gpu } from '../src/gpu/gpu.js';
import { output, record } from '../src/autograd/record.js';
import { unary } from '../src/ops/elementwise/kernel.js';
import { convOverrides, setConvOverrides } from '../src/ops/conv/index.js';
import { type Shape4, conv2dBackwardRef, conv2dRef, convTranspose2x2Ref, finiteDifference } from './reference/conv.js';
import { concatRef, diceLossRef, maxPoolRef } from './reference/ops.js';

// A miniature U-Net level: two convolutions, a pool, an up-convolution, a skip
// concatenation (so one activation feeds two ops) and a sigmoid head.
const N = 2;
const H = 8;
const SHAPES = {
  w1: [3, 3, 1, 4], b1: [4],
  w2: [3, 3, 4, 4], b2: [4],
  wt: [2, 2, 4, 4], bt: [4],
  w3: [1, 1, 8, 1], b3: [1],
} as const;
type Name = keyof typeof SHAPES;
const NAMES = Object.keys(SHAPES) as Name[];
const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

function initial(): Record<Name, Float32Array> {
  const out = {} as Record<Name, Float32Array>;
  NAMES.forEach((k, i) => (out[k] = randomArray(prod(SHAPES[k]), 100 + i, -0.6, 0.6)));
  return out;
}
const xv = randomArray(N * H * H, 7, 0, 1);
const yv = randomArray(N * H * H, 8, 0, 1).map((v) => (v > 0.6 ? 1 : v < 0.2 ? 0 : v));

function referenceLoss(p: Record<Name, ArrayLike<number>>): number {
  const s = (k: Name) => SHAPES[k] as unknown as Shape4;
  const a = conv2dRef(xv, [N, H, H, 1], p.w1, s('w1'), p.b1, 'relu');
  const a2 = conv2dRef(a, [N, H, H, 4], p.w2, s('w2'), p.b2, 'relu');
  const pooled = maxPoolRef(a2, [N, H, H, 4]);
  const u = convTranspose2x2Ref(pooled, [N, H / 2, H / 2, 4], p.wt, s('wt'), p.bt);
  const c = concatRef(u, 4, a2, 4);
  const out = conv2dRef(c, [N, H, H, 8], p.w3, s('w3'), p.b3, 'sigmoid');
  return diceLossRef(out, yv);
}

function forward(gpu: Gpu, params: Record<Name, Tensor>): Tensor {
  const x = Tensor.from(gpu, [N, H, H, 1], xv);
  const y = Tensor.from(gpu, [N, H, H, 1], yv);
  const a = conv2d(x, params.w1, params.b1, 'relu');
  const a2 = conv2d(a, params.w2, params.b2, 'relu');
  const u = convTranspose2x2(maxPool2x2(a2), params.wt, params.bt);
  const p = conv2d(concat(u, a2), params.w3, params.b3, 'sigmoid');
  return diceLoss(p, y);
}

function makeParams(gpu: Gpu, values: Record<Name, Float32Array>): Record<Name, Tensor> {
  const out = {} as Record<Name, Tensor>;
  for (const k of NAMES) out[k] = Tensor.from(gpu, SHAPES[k], values[k], true);
  return out;
}

describe('autograd', () => {
  // The adapter's own convolutions, and the tiled ones (which compute the bias
  // gradient inside the weight gradient's GEMM) where those are not the default.
  for (const variant of ['default', 'tiled'] as const) {
    it(`gradients of a small U-Net level match finite differences of a float64 reference (${variant} convolutions)`, async () => {
      const gpu = await testGpu();
      const before = convOverrides(gpu).formulation;
      if (variant === 'tiled') setConvOverrides(gpu, { formulation: 'tiled' });
      try {
        const values = initial();
        const params = makeParams(gpu, values);
        const tape = new Tape(gpu);
        const loss = tape.run(() => forward(gpu, params));
        tape.backward(loss);
        const got = (await loss.read())[0]!;
        const want = referenceLoss(values);
        console.log(`loss: gpu ${got}, reference ${want}`);
        expect(Math.abs(got - want)).toBeLessThan(1e-5);
        const r = rng(3);
        for (const k of NAMES) {
          const grad = await params[k].grad!.read();
          const coords = Array.from({ length: Math.min(12, grad.length) }, (_, i) => (grad.length <= 12 ? i : Math.floor(r() * grad.length)));
          const fd = finiteDifference(
            (v) => Float64Array.of(referenceLoss({ ...values, [k]: v })),
            values[k],
            [1],
            coords,
          );
          const err = relErrorToScale(coords.map((i) => grad[i]!), fd);
          console.log(`∂loss/∂${k}: error relative to its scale ${err.toExponential(2)}`);
          expect(err).toBeLessThan(1e-4);
        }
        tape.dispose();
        for (const t of Object.values(params)) t.dispose();
      } finally {
        setConvOverrides(gpu, { formulation: before });
      }
    });
  }

  it('masks a ReLU output\'s gradient in the layer that reads it only where the ReLU\'s own backward follows on the same tape', async () => {
    const gpu = await testGpu();
    const xs: Shape4 = [1, 5, 6, 3];
    const ws: Shape4 = [3, 3, 3, 4];
    const w2s: Shape4 = [3, 3, 4, 2];
    const [xv, wv, bv, w2v, b2v] = [randomArray(90, 60), randomArray(108, 61, -0.6, 0.6), randomArray(4, 62), randomArray(72, 63, -0.6, 0.6), randomArray(2, 64)];
    const x = Tensor.from(gpu, xs, xv);
    const [w, b, w2, b2] = [Tensor.from(gpu, ws, wv, true), Tensor.from(gpu, [4], bv, true), Tensor.from(gpu, w2s, w2v, true), Tensor.from(gpu, [2], b2v, true)];
    // y, a ReLU's output, recorded on another tape: to this one a leaf whose gradient the caller reads, unmasked.
    const first = new Tape(gpu);
    const y = first.run(() => conv2d(x, w, b, 'relu'));
    const yv = await y.read();
    expect(yv.some((v) => v === 0)).toBe(true);
    const second = new Tape(gpu);
    second.backward(second.run(() => sum(conv2d(y, w2, b2))));
    const want = conv2dBackwardRef(yv, [1, 5, 6, 4], w2v, w2s, new Float32Array(60).fill(1)).dx;
    expect(relErrorToScale(await y.grad!.read(), want)).toBeLessThan(1e-5);
    expect(Array.from(want).some((v, i) => yv[i] === 0 && Math.abs(v) > 1e-3)).toBe(true); // a mask would have changed it
    second.dispose();
    first.dispose();
    for (const t of [x, w, b, w2, b2]) t.dispose();
  });

  it('folds a sigmoid\'s backward into the Dice loss only where the loss is the sigmoid output\'s sole reader', async () => {
    const gpu = await testGpu();
    const xs: Shape4 = [2, 4, 5, 3];
    const ws: Shape4 = [1, 1, 3, 1];
    const xv = randomArray(prod(xs), 70, -1, 1);
    const yv = randomArray(40, 71, 0, 1).map((v) => (v > 0.5 ? 1 : 0));
    const wv = randomArray(3, 72, -1, 1);
    const bv = Float32Array.of(0.2);
    const x = Tensor.from(gpu, xs, xv);
    const y = Tensor.from(gpu, [2, 4, 5, 1], yv);
    for (const alsoSummed of [false, true]) {
      // L = dice(p) (+ 0.1 Σ p, a second reader of p) with p = sigmoid(conv(x)).
      const lossRef = (w: ArrayLike<number>) => {
        const p = conv2dRef(xv, xs, w, ws, bv, 'sigmoid');
        return diceLossRef(p, yv) + (alsoSummed ? 0.1 * p.reduce((a, v) => a + v, 0) : 0);
      };
      const [w, b] = [Tensor.from(gpu, ws, wv, true), Tensor.from(gpu, [1], bv, true)];
      const labels: string[] = [];
      gpu.observer = { timestampWrites: (label) => (labels.push(label), undefined) };
      const tape = new Tape(gpu);
      try {
        tape.backward(tape.run(() => {
          const p = conv2d(x, w, b, 'sigmoid');
          const dice = diceLoss(p, y);
          return alsoSummed ? add(dice, scale(sum(p), 0.1)) : dice;
        }));
      } finally {
        gpu.observer = null;
      }
      expect(labels.filter((l) => l.startsWith('binary sigmoidBackward')).length, labels.join('\n')).toBe(alsoSummed ? 1 : 0);
      expect(labels.filter((l) => l.endsWith('with respect to the logits')).length, labels.join('\n')).toBe(alsoSummed ? 0 : 1);
      const fd = finiteDifference((v) => Float64Array.of(lossRef(v)), wv, [1], [0, 1, 2]);
      const err = relErrorToScale(await w.grad!.read(), fd);
      console.log(`sigmoid + Dice${alsoSummed ? ' + 0.1 Σ p' : ''}: ∂loss/∂w against finite differences ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-4);
      tape.dispose();
      for (const t of [w, b]) t.dispose();
    }
    for (const t of [x, y]) t.dispose();
  });

  it('releases every intermediate when the tape is disposed, and accumulates across backward passes', async () => {
    const gpu = await testGpu();
    const params = makeParams(gpu, initial());
    for (const t of Object.values(params)) t.grad = Tensor.zeros(gpu, t.shape); // persistent gradients, like the flat buffer
    await gpu.sync();
    const before = gpu.memory().liveBytes;
    const grads: Float32Array[] = [];
    for (let pass = 0; pass < 2; pass++) {
      const tape = new Tape(gpu);
      const loss = tape.run(() => forward(gpu, params));
      tape.backward(loss);
      grads.push(await params.w2.grad!.read());
      tape.dispose();
      expect(gpu.memory().liveBytes).toBe(before);
    }
    // The second pass added the same gradient again.
    expect(relErrorToScale(grads[1]!, grads[0]!.map((v) => 2 * v))).toBeLessThan(1e-5);
    for (const t of Object.values(params)) {
      t.grad!.dispose();
      t.dispose();
    }
  });

  it('returns gradients of intermediates (and, asked, activations) to the pool during backward, with the same gradients', async () => {
    const gpu = await testGpu();
    const values = initial();
    const results: { grads: Float32Array[]; peak: number; loss: number; afterBackward: number }[] = [];
    for (const releaseActivations of [false, true]) {
      await gpu.sync();
      const start = gpu.memory().liveBytes;
      const params = makeParams(gpu, values);
      const base = gpu.memory().liveBytes;
      gpu.resetPeakMemory();
      const tape = new Tape(gpu);
      const made: Tensor[] = [];
      const loss = tape.run(() => {
        const l = forward(gpu, params);
        return l;
      });
      // Every intermediate the forward pass made has a creator; note them all.
      const stack: Tensor[] = [loss];
      while (stack.length) {
        const t = stack.pop()!;
        if (!t.creator || made.includes(t)) continue;
        made.push(t);
        stack.push(...t.creator.inputs);
      }
      const afterForward = gpu.memory().liveBytes;
      tape.backward(loss, undefined, { releaseActivations });
      const afterBackward = gpu.memory().liveBytes;
      // Parameters (leaves) keep their gradients; intermediates do not.
      for (const k of NAMES) expect(params[k].grad).not.toBeNull();
      for (const t of made) expect(t.grad).toBeNull();
      // With releaseActivations every intermediate but the loss is gone.
      for (const t of made) expect(t.isDisposed).toBe(releaseActivations && t !== loss);
      expect(afterBackward - base).toBeLessThan(afterForward - base + NAMES.reduce((s, k) => s + prod(SHAPES[k]) * 4 + 256, 0) * 2);
      const grads = await Promise.all(NAMES.map((k) => params[k].grad!.read()));
      results.push({ grads, peak: gpu.memory().peakLiveBytes - base, loss: (await loss.read())[0]!, afterBackward: afterBackward - base });
      tape.dispose();
      for (const t of Object.values(params)) {
        t.grad?.dispose();
        t.dispose();
      }
      await gpu.sync();
      expect(gpu.memory().liveBytes).toBe(start);
    }
    const [kept, released] = results as [typeof results[0], typeof results[0]];
    expect(released.loss).toBe(kept.loss);
    kept.grads.forEach((g, i) => expect(Array.from(released.grads[i]!)).toEqual(Array.from(g)));
    expect(released.afterBackward).toBeLessThan(kept.afterBackward);
    expect(released.peak).toBeLessThanOrEqual(kept.peak);
  });

  it('lets an op overwrite the gradient it is handed, and no other tensor', async () => {
    const gpu = await testGpu();
    const x = Tensor.from(gpu, [4], new Float32Array([1, 2, 3, 4]), true);
    const seen: boolean[] = [];
    const tape = new Tape(gpu);
    const loss = tape.run(() => {
      const y = scale(x, 2);
      // An identity op that asks what it may overwrite.
      const z = output([y], [4]);
      unary(gpu, 'copy', y, z);
      record('probe', [y], z, (dz, grads) => {
        seen.push(grads.consumable(dz), grads.consumable(y), grads.consumable(z), grads.consumable(x));
        const t = grads.target(y);
        unary(gpu, 'copy', dz, t.grad, { accumulate: t.accumulate });
      });
      return sum(z);
    });
    tape.backward(loss);
    expect(seen).toEqual([true, false, false, false]);
    expect(Array.from(await x.grad!.read())).toEqual([2, 2, 2, 2]);
    tape.dispose();
    x.dispose();
  });

  it('records nothing under noGrad', async () => {
    const gpu = await testGpu();
    const params = makeParams(gpu, initial());
    const tape = new Tape(gpu);
    const loss = tape.run(() => noGrad(() => forward(gpu, params)));
    expect(tape.length).toBe(0);
    expect(loss.requiresGrad).toBe(false);
    expect(() => tape.backward(loss)).toThrow(/does not depend/);
    tape.dispose();
    for (const t of Object.values(params)) t.dispose();
  });

  it('elementwise ops and sum: gradients by hand', async () => {
    const gpu = await testGpu();
    const n = 37;
    const av = randomArray(n, 1, -2, 2);
    const bv = randomArray(n, 2, -2, 2);
    const a = Tensor.from(gpu, [n], av, true);
    const b = Tensor.from(gpu, [n], bv, true);
    const tape = new Tape(gpu);
    // L = Σ (relu(a)·b + 3·sigmoid(b) + a)
    const loss = tape.run(() => sum(add(add(mul(relu(a), b), scale(sigmoid(b), 3)), a)));
    tape.backward(loss);
    const sg = (v: number) => 1 / (1 + Math.exp(-v));
    const wantA = av.map((v, i) => (v > 0 ? bv[i]! : 0) + 1);
    const wantB = bv.map((v, i) => Math.max(av[i]!, 0) + 3 * sg(v) * (1 - sg(v)));
    const wantL = av.reduce((s, v, i) => s + Math.max(v, 0) * bv[i]! + 3 * sg(bv[i]!) + v, 0);
    expect(Math.abs((await loss.read())[0]! - wantL) / Math.abs(wantL)).toBeLessThan(1e-5);
    expect(relErrorToScale(await a.grad!.read(), wantA)).toBeLessThan(1e-6);
    expect(relErrorToScale(await b.grad!.read(), wantB)).toBeLessThan(1e-6);
    tape.dispose();
    a.dispose();
    b.dispose();
  });
});
