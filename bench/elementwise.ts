/** Memory-bound kernels against tfjs-backend-webgpu: ELU forward and backward. */
import type * as tfType from '@tensorflow/tfjs-core';
import type { Gpu } from '../src/kernels/gpu.js';
import { allocTensor } from '../src/kernels/tensor-view.js';
import { elu, eluBackward } from '../src/kernels/elu.js';
import { type Sample, sample, timeIt } from './harness.js';
import type { TfjsWebgpu } from './kernels.js';

export async function benchElementwise(gpu: Gpu, peer: TfjsWebgpu, opts: { batch: number; reps: number }): Promise<Sample[]> {
  const { tf } = peer;
  const shape = [opts.batch, 96, 96, 32];
  const n = shape.reduce((a, b) => a * b, 1);
  const label = shape.join('x');
  const xv = new Float32Array(n).map((_, i) => Math.sin(i) * 3);
  const x = allocTensor(gpu, shape, xv);
  const y = allocTensor(gpu, shape);
  const dy = allocTensor(gpu, shape, xv);
  const dx = allocTensor(gpu, shape);
  const tx = tf.tensor(xv, shape);
  const ty = tf.elu(tx);
  const out: Sample[] = [];
  const cases = [
    { op: 'elu_forward', bytes: 8 * n, ours: () => elu(gpu, x, y), theirs: () => tf.elu(tx) },
    {
      op: 'elu_backward',
      bytes: 12 * n,
      ours: () => eluBackward(gpu, dy, y, dx),
      theirs: () => tf.engine().runKernel('EluGrad', { dy: tx, y: ty }) as tfType.Tensor,
    },
  ];
  for (const c of cases) {
    const tOurs = await timeIt(async () => {
      c.ours();
      await gpu.sync();
    }, opts.reps);
    const tTheirs = await timeIt(async () => {
      const r = c.theirs();
      await peer.finish();
      r.dispose();
    }, opts.reps);
    out.push(sample(c.op, label, 'ours', 0, tOurs, opts.reps, c.bytes), sample(c.op, label, 'tfjs-webgpu', 0, tTheirs, opts.reps, c.bytes));
    console.error(`  ${c.op.padEnd(22)} ${label.padEnd(22)} ours ${tOurs.median.toFixed(1)} ms, tfjs-webgpu ${tTheirs.median.toFixed(1)} ms, ×${(tTheirs.median / tOurs.median).toFixed(2)}`);
  }
  for (const t of [x, y, dy, dx]) t.dispose();
  tx.dispose();
  ty.dispose();
  return out;
}
