import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import '@tensorflow/tfjs-backend-cpu';
import { testGpu } from '../../../test/helpers/gpu.js';
import { maxRelError, randomArray } from '../../../test/helpers/random.js';
import { allocTensor } from '../../gpu/tensor-view.js';
import { elu as eluKernel, eluBackward } from './kernel.js';
import { Tape, Tensor, elu, sum } from '../../autograd/index.js';
import { finiteDifference } from '../../../test/reference/conv.js';

const eluRef = (x: number, a: number) => (x > 0 ? x : a * Math.expm1(x));
const eluGradRef = (x: number, a: number) => (x > 0 ? 1 : a * Math.exp(x));

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('elu', () => {
  it('reference gradient agrees with finite differences', () => {
    const xs = Float64Array.from([-3, -0.5, -1e-3, 0.2, 2]);
    const dy = new Float64Array(5).fill(1);
    const fd = finiteDifference((v) => v.map((x) => eluRef(x, 0.7)), xs, dy, [0, 1, 2, 3, 4]);
    expect(maxRelError(fd, Array.from(xs, (x) => eluGradRef(x, 0.7)))).toBeLessThan(1e-8);
  });

  // Sizes that are not multiples of 4 (one element per invocation) and
  // multiples of 4 (four per invocation, as vec4s).
  for (const [n, alpha] of [[7, 1], [4099, 0.7], [4100, 0.7], [65_537, 1.3], [65_536, 1.3]] as const) {
    it(`forward and backward (plain and accumulating), ${n} elements, alpha ${alpha}`, async () => {
      const gpu = await testGpu();
      const xv = randomArray(n, n, -6, 6);
      const dyv = randomArray(n, n + 1);
      const x = allocTensor(gpu, [n], xv);
      const y = allocTensor(gpu, [n]);
      const dy = allocTensor(gpu, [n], dyv);
      const dx = allocTensor(gpu, [n]);
      const init = randomArray(n, n + 2);
      const acc = allocTensor(gpu, [n], init);
      eluKernel(gpu, x, y, alpha);
      eluBackward(gpu, dy, y, dx, alpha);
      eluBackward(gpu, dy, y, acc, alpha, { accumulate: true });
      const ey = maxRelError(await gpu.readFloat32(y.view, n), Array.from(xv, (v) => eluRef(v, alpha)));
      const edx = maxRelError(await gpu.readFloat32(dx.view, n), Array.from(xv, (v, i) => dyv[i]! * eluGradRef(v, alpha)));
      console.log(`elu n=${n} alpha=${alpha}: max rel error y ${ey.toExponential(2)} dx ${edx.toExponential(2)}`);
      expect(ey).toBeLessThan(1e-6);
      expect(edx).toBeLessThan(1e-6);
      const eacc = maxRelError(await gpu.readFloat32(acc.view, n), Array.from(xv, (v, i) => init[i]! + dyv[i]! * eluGradRef(v, alpha)));
      expect(eacc).toBeLessThan(1e-6);
      for (const t of [x, y, dy, dx, acc]) t.dispose();
    });
  }

  it('matches tfjs-core (cpu) tf.elu forward and gradient, through autograd', async () => {
    const gpu = await testGpu();
    const n = 1001;
    const xv = randomArray(n, 3, -5, 5);
    const want = tf.elu(tf.tensor1d(xv)).dataSync();
    const gwant = tf.grad((t: tf.Tensor) => tf.sum(tf.elu(t)))(tf.tensor1d(xv)).dataSync();
    const x = Tensor.from(gpu, [n], xv, true);
    const tape = new Tape(gpu);
    const y = tape.run(() => elu(x));
    const loss = tape.run(() => sum(y));
    tape.backward(loss);
    const ey = maxRelError(await y.read(), want);
    const edx = maxRelError(await x.grad!.read(), gwant);
    console.log(`elu vs tfjs-cpu: max rel error y ${ey.toExponential(2)} dx ${edx.toExponential(2)}`);
    expect(ey).toBeLessThan(1e-6);
    expect(edx).toBeLessThan(1e-6);
    tape.dispose();
    x.dispose();
  });

  it('rejects mismatched shapes and a bad alpha, naming the op', async () => {
    const gpu = await testGpu();
    const x = allocTensor(gpu, [2, 3]);
    const y = allocTensor(gpu, [3, 2]);
    expect(() => eluKernel(gpu, x, y)).toThrow('elu: y has shape [3, 2] but x has [2, 3]');
    const y2 = allocTensor(gpu, [2, 3]);
    expect(() => eluKernel(gpu, x, y2, -1)).toThrow('elu: alpha must be a positive number, got -1');
    for (const t of [x, y, y2]) t.dispose();
  });
});
