/**
 * Convolution kernels against tfjs-backend-webgpu on the same adapter, in one
 * run: forward, gradient with respect to the input, and with respect to the
 * weights, at the U-Net's shapes.
 */
import type * as tfType from '@tensorflow/tfjs-core';
import type { Gpu } from '../src/kernels/gpu.js';
import { allocTensor } from '../src/kernels/tensor-view.js';
import { conv2d, conv2dBackwardInput, conv2dBackwardWeights } from '../src/kernels/conv.js';
import { type Sample, sample, timeIt } from './harness.js';

type Tf = typeof tfType;
/** [H (=W), Ci, Co] of the U-Net's 3 × 3 convolutions, one per distinct shape. */
export const UNET_CONV_SHAPES: [number, number, number][] = [
  [96, 32, 32],
  [48, 64, 64],
  [24, 128, 128],
  [12, 256, 256],
  [6, 512, 512],
  [12, 512, 256],
];

function rand(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
}

export interface TfjsWebgpu {
  tf: Tf;
  /** Submits tfjs's pending work and resolves when the GPU is done. */
  finish(): Promise<void>;
}

export async function benchConvolutions(gpu: Gpu, peer: TfjsWebgpu, opts: { batch: number; reps: number; shapes: [number, number, number][] }): Promise<Sample[]> {
  const { tf } = peer;
  const out: Sample[] = [];
  for (const [h, ci, co] of opts.shapes) {
    const n = opts.batch;
    const xs = [n, h, h, ci] as [number, number, number, number];
    const ws = [3, 3, ci, co] as [number, number, number, number];
    const ys = [n, h, h, co] as [number, number, number, number];
    const shape = `${n}x${h}x${h} ${ci}->${co}`;
    const flops = 2 * n * h * h * 9 * ci * co;
    const xv = rand(n * h * h * ci, 1);
    const wv = rand(9 * ci * co, 2);
    const dyv = rand(n * h * h * co, 3);

    const x = allocTensor(gpu, xs, xv);
    const w = allocTensor(gpu, ws, wv);
    const b = allocTensor(gpu, [co], new Float32Array(co));
    const y = allocTensor(gpu, ys);
    const dy = allocTensor(gpu, ys, dyv);
    const dx = allocTensor(gpu, xs);
    const dw = allocTensor(gpu, ws);
    const ours = {
      forward: () => conv2d(gpu, x, w, b, y, 'relu'),
      backward_input: () => conv2dBackwardInput(gpu, dy, w, dx),
      backward_filter: () => conv2dBackwardWeights(gpu, x, dy, dw),
    };
    const tx = tf.tensor4d(xv, xs);
    const tw = tf.tensor4d(wv, ws);
    const tb = tf.zeros([co]) as tfType.Tensor1D;
    const tdy = tf.tensor4d(dyv, ys);
    const theirs = {
      // Bias and ReLU fused, as ours: tfjs's fused conv2d.
      forward: () => tf.fused.conv2d({ x: tx, filter: tw, bias: tb, strides: 1, pad: 'same', activation: 'relu' }),
      backward_input: () => tf.engine().runKernel('Conv2DBackpropInput', { dy: tdy, filter: tw }, { strides: 1, pad: 'same', dataFormat: 'NHWC', inputShape: xs }) as tfType.Tensor,
      backward_filter: () => tf.engine().runKernel('Conv2DBackpropFilter', { x: tx, dy: tdy }, { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: ws }) as tfType.Tensor,
    };
    for (const op of ['forward', 'backward_input', 'backward_filter'] as const) {
      const tOurs = await timeIt(async () => {
        ours[op]();
        await gpu.sync();
      }, opts.reps);
      out.push(sample(`conv2d_${op}`, shape, 'ours', flops, tOurs, opts.reps));
      const tTheirs = await timeIt(async () => {
        const r = theirs[op]();
        await peer.finish();
        r.dispose();
      }, opts.reps);
      out.push(sample(`conv2d_${op}`, shape, 'tfjs-webgpu', flops, tTheirs, opts.reps));
      const ratio = tTheirs.median / tOurs.median;
      console.error(`  conv2d ${op.padEnd(15)} ${shape.padEnd(22)} ours ${tOurs.median.toFixed(1)} ms, tfjs-webgpu ${tTheirs.median.toFixed(1)} ms, ×${ratio.toFixed(2)}`);
    }
    for (const t of [x, w, b, y, dy, dx, dw]) t.dispose();
    for (const t of [tx, tw, tb, tdy]) t.dispose();
  }
  return out;
}
