import { describe, expect, it } from 'vitest';
import { testGpu } from '../../../test/helpers/gpu.js';
import { maxRelError, randomArray } from '../../../test/helpers/random.js';
import { allocTensor } from '../../gpu/tensor-view.js';
import { binary, binaryInPlace, unary, type BinaryOp, type UnaryOp } from './kernel.js';

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
const unaryRef: Record<UnaryOp, (v: number) => number> = {
  copy: (v) => v,
  relu: (v) => Math.max(v, 0),
  sigmoid,
  affine: (v) => 0.5 * v - 2,
};
const binaryRef: Record<BinaryOp, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  reluBackward: (a, b) => (b > 0 ? a : 0),
  sigmoidBackward: (a, b) => a * b * (1 - b),
  addScaled: (a, b) => a + 0.5 * b,
  eluBackward: (a, b) => (b > 0 ? a : a * (b + 1)),
};

describe('elementwise kernels on the GPU', () => {
  // An empty tensor, sizes that are not multiples of 4 (one element per
  // invocation), multiples of 4 (four per invocation, as vec4s), and one over
  // a workgroup row.
  for (const n of [0, 1, 7, 1000, 1004, 65_537]) {
    for (const op of Object.keys(unaryRef) as UnaryOp[]) {
      it(`unary ${op}, ${n} elements, plain and accumulating`, async () => {
        const gpu = await testGpu();
        const xs = randomArray(n, n + op.length, -8, 8);
        const init = randomArray(n, 3);
        const x = allocTensor(gpu, [n], xs);
        const out = allocTensor(gpu, [n]);
        const acc = allocTensor(gpu, [n], init);
        unary(gpu, op, x, out, { alpha: 0.5, beta: -2 });
        unary(gpu, op, x, acc, { alpha: 0.5, beta: -2, accumulate: true });
        const want = Float32Array.from(xs, unaryRef[op]);
        const err = maxRelError(await gpu.readFloat32(out.view, n), want);
        console.log(`unary ${op} n=${n}: max rel error ${err.toExponential(2)}`);
        expect(err).toBeLessThan(1e-6);
        expect(maxRelError(await gpu.readFloat32(acc.view, n), want.map((v, i) => v + init[i]!))).toBeLessThan(1e-6);
        for (const t of [x, out, acc]) t.dispose();
      });
    }
  }

  for (const [op, n] of (Object.keys(binaryRef) as BinaryOp[]).flatMap((op) => [[op, 4099], [op, 4100]] as const)) {
    it(`binary ${op}, ${n} elements, plain, accumulating and in place`, async () => {
      const gpu = await testGpu();
      const as = randomArray(n, 1, -3, 3);
      const bs = randomArray(n, 2, -1, 1);
      const init = randomArray(n, 3);
      const a = allocTensor(gpu, [n], as);
      const b = allocTensor(gpu, [n], bs);
      const out = allocTensor(gpu, [n]);
      const acc = allocTensor(gpu, [n], init);
      const io = allocTensor(gpu, [n], as);
      binary(gpu, op, a, b, out, { alpha: 0.5 });
      binary(gpu, op, a, b, acc, { alpha: 0.5, accumulate: true });
      binaryInPlace(gpu, op, io, b, { alpha: 0.5 });
      const want = as.map((v, i) => binaryRef[op](v, bs[i]!));
      expect(maxRelError(await gpu.readFloat32(out.view, n), want)).toBeLessThan(1e-6);
      expect(maxRelError(await gpu.readFloat32(acc.view, n), want.map((v, i) => v + init[i]!))).toBeLessThan(1e-6);
      // In place: the same values where a lay.
      expect(await gpu.readFloat32(io.view, n)).toEqual(await gpu.readFloat32(out.view, n));
      for (const t of [a, b, out, acc, io]) t.dispose();
    });
  }

  it('rejects mismatched shapes with a message naming the op and shapes', async () => {
    const gpu = await testGpu();
    const a = allocTensor(gpu, [2, 3]);
    const b = allocTensor(gpu, [3, 2]);
    const out = allocTensor(gpu, [2, 3]);
    expect(() => binary(gpu, 'add', a, b, out)).toThrow(/binary add: b has shape \[3, 2\] but a has \[2, 3\]/);
    for (const t of [a, b, out]) t.dispose();
  });
});
