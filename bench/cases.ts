/**
 * The benchmark cases: each of our kernels at the U-Net's shapes, and the
 * tfjs op that computes the same thing. A case builds its own inputs for
 * each engine, runs once per timing, and disposes what it made.
 */
import type * as tfType from '@tensorflow/tfjs-core';
import type { Gpu } from '../src/gpu/gpu.js';
import { UsageError } from '../src/cli/args.js';
import { type OwnedGpuTensor, allocTensor } from '../src/gpu/tensor-view.js';
import { conv2d, conv2dBackwardInput, conv2dBackwardWeights, convTranspose2x2, convTranspose2x2BackwardInput, convTranspose2x2BackwardWeights, biasGradient } from '../src/ops/conv/index.js';
import { maxPool2x2, maxPool2x2Backward } from '../src/ops/maxpool/kernel.js';
import { concatChannels } from '../src/ops/concat/kernel.js';
import { unary } from '../src/ops/elementwise/kernel.js';
import { diceLoss, diceLossBackward } from '../src/ops/dice/kernel.js';
import { adamStep } from '../src/ops/adam/kernel.js';
import { elu, eluBackward } from '../src/ops/elu/kernel.js';

type Tf = typeof tfType;

export interface Runner {
  run(): void;
  dispose(): void;
}

export interface TfRunner {
  run(): tfType.Tensor | tfType.Tensor[];
  dispose(): void;
}

export interface Case {
  op: string;
  shape: string;
  /** Floating-point operations per run (compute-bound kernels) … */
  flops?: number;
  /** … or bytes moved (memory-bound ones). */
  bytes?: number;
  ours(gpu: Gpu): Runner;
  /** tfjs kernels the peer needs: a backend without one of them cannot run the case. */
  tfKernels: string[];
  theirs(tf: Tf): TfRunner;
}

function rand(n: number, seed: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s / 2 ** 32 - 0.5) * scale;
  }
  return a;
}

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** `--cases`: a test on a case's "op shape" (every case passes when the pattern is absent). */
export function caseFilter(pattern: string | undefined): (name: string) => boolean {
  if (pattern === undefined) return () => true;
  let re: RegExp;
  try {
    re = new RegExp(pattern);
  } catch (e) {
    throw new UsageError(`--cases: not a regular expression: ${(e as Error).message}`);
  }
  return (name) => re.test(name);
}

function tensors(gpu: Gpu, specs: [readonly number[], Float32Array | null][]): OwnedGpuTensor[] {
  return specs.map(([shape, data]) => allocTensor(gpu, shape, data ?? undefined));
}

function disposeAll(ts: { dispose(): void }[]): void {
  for (const t of ts) t.dispose();
}

/** [H (= W), Ci, Co] of the U-Net's 3 × 3 convolutions, one per distinct shape. */
export const UNET_CONV_SHAPES: [number, number, number][] = [
  [96, 32, 32],
  [48, 64, 64],
  [24, 128, 128],
  [12, 256, 256],
  [6, 512, 512],
  [12, 512, 256],
];

/** [input H (= W), Ci, Co] of the U-Net's transposed convolutions. */
export const UNET_UP_SHAPES: [number, number, number][] = [
  [6, 512, 256],
  [12, 256, 128],
  [24, 128, 64],
  [48, 64, 32],
];

export function convCases(n: number, shapes = UNET_CONV_SHAPES): Case[] {
  const out: Case[] = [];
  for (const [h, ci, co] of shapes) {
    const xs = [n, h, h, ci];
    const ws = [3, 3, ci, co];
    const ys = [n, h, h, co];
    const shape = `${n}x${h}x${h} ${ci}->${co}`;
    const flops = 2 * n * h * h * 9 * ci * co;
    const xv = rand(prod(xs), 1);
    const wv = rand(prod(ws), 2, 0.1);
    const dyv = rand(prod(ys), 3);
    out.push(
      {
        op: 'conv2d_forward',
        shape,
        flops,
        tfKernels: ['FusedConv2D'],
        ours(gpu) {
          const [x, w, b, y] = tensors(gpu, [[xs, xv], [ws, wv], [[co], new Float32Array(co)], [ys, null]]);
          return { run: () => conv2d(gpu, x!, w!, b!, y!, 'relu'), dispose: () => disposeAll([x!, w!, b!, y!]) };
        },
        theirs(tf) {
          const [x, w, b] = [tf.tensor4d(xv, xs as [number, number, number, number]), tf.tensor4d(wv, ws as [number, number, number, number]), tf.zeros([co]) as tfType.Tensor1D];
          return { run: () => tf.fused.conv2d({ x, filter: w, bias: b, strides: 1, pad: 'same', activation: 'relu' }), dispose: () => tf.dispose([x, w, b]) };
        },
      },
      {
        op: 'conv2d_backward_input',
        shape,
        flops,
        tfKernels: ['Conv2DBackpropInput'],
        ours(gpu) {
          const [dy, w, dx] = tensors(gpu, [[ys, dyv], [ws, wv], [xs, null]]);
          return { run: () => conv2dBackwardInput(gpu, dy!, w!, dx!), dispose: () => disposeAll([dy!, w!, dx!]) };
        },
        theirs(tf) {
          const [dy, w] = [tf.tensor4d(dyv, ys as [number, number, number, number]), tf.tensor4d(wv, ws as [number, number, number, number])];
          return {
            run: () => tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: w }, { strides: 1, pad: 'same', dataFormat: 'NHWC', inputShape: xs }) as tfType.Tensor,
            dispose: () => tf.dispose([dy, w]),
          };
        },
      },
      {
        op: 'conv2d_backward_filter',
        shape,
        flops,
        tfKernels: ['Conv2DBackpropFilter'],
        ours(gpu) {
          const [x, dy, dw, db] = tensors(gpu, [[xs, xv], [ys, dyv], [ws, null], [[co], null]]);
          // The weight gradient and the bias gradient, as a training step needs both.
          return {
            run: () => {
              conv2dBackwardWeights(gpu, x!, dy!, dw!);
              biasGradient(gpu, dy!, db!);
            },
            dispose: () => disposeAll([x!, dy!, dw!, db!]),
          };
        },
        theirs(tf) {
          const [x, dy] = [tf.tensor4d(xv, xs as [number, number, number, number]), tf.tensor4d(dyv, ys as [number, number, number, number])];
          return {
            run: () => [
              tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: ws }) as tfType.Tensor,
              tf.sum(dy, [0, 1, 2]),
            ],
            dispose: () => tf.dispose([x, dy]),
          };
        },
      },
    );
  }
  return out;
}

export function convTransposeCases(n: number, shapes = UNET_UP_SHAPES): Case[] {
  const out: Case[] = [];
  for (const [h, ci, co] of shapes) {
    const xs = [n, h, h, ci] as [number, number, number, number];
    const ws = [2, 2, co, ci] as [number, number, number, number];
    const ys = [n, 2 * h, 2 * h, co] as [number, number, number, number];
    const shape = `${n}x${h}x${h} ${ci}->${co}`;
    const flops = 2 * n * h * h * 4 * ci * co;
    const xv = rand(prod(xs), 4);
    const wv = rand(prod(ws), 5, 0.1);
    const dyv = rand(prod(ys), 6);
    out.push(
      {
        op: 'conv_transpose_forward',
        shape,
        flops,
        tfKernels: ['Conv2DBackpropInput'],
        ours(gpu) {
          const [x, w, b, y] = tensors(gpu, [[xs, xv], [ws, wv], [[co], new Float32Array(co)], [ys, null]]);
          return { run: () => convTranspose2x2(gpu, x!, w!, b!, y!), dispose: () => disposeAll([x!, w!, b!, y!]) };
        },
        theirs(tf) {
          const [x, w, b] = [tf.tensor4d(xv, xs), tf.tensor4d(wv, ws), tf.zeros([co])];
          return { run: () => tf.add(tf.conv2dTranspose(x, w, ys, 2, 'same'), b), dispose: () => tf.dispose([x, w, b]) };
        },
      },
      {
        op: 'conv_transpose_backward',
        shape,
        flops: 2 * flops,
        tfKernels: ['Conv2D', 'Conv2DBackpropFilter'],
        ours(gpu) {
          const [x, w, dy, dx, dw, db] = tensors(gpu, [[xs, xv], [ws, wv], [ys, dyv], [xs, null], [ws, null], [[co], null]]);
          return {
            run: () => {
              convTranspose2x2BackwardInput(gpu, dy!, w!, dx!);
              convTranspose2x2BackwardWeights(gpu, x!, dy!, dw!);
              biasGradient(gpu, dy!, db!);
            },
            dispose: () => disposeAll([x!, w!, dy!, dx!, dw!, db!]),
          };
        },
        theirs(tf) {
          const [x, w, dy] = [tf.tensor4d(xv, xs), tf.tensor4d(wv, ws), tf.tensor4d(dyv, ys)];
          // tfjs's own gradient of conv2dTranspose: a strided conv2d for ∂x, a backprop-filter for ∂w.
          const grads = tf.grads((a: tfType.Tensor, b: tfType.Tensor) => tf.conv2dTranspose(a as tfType.Tensor4D, b as tfType.Tensor4D, ys, 2, 'same'));
          return { run: () => [...grads([x, w], dy), tf.sum(dy, [0, 1, 2])], dispose: () => tf.dispose([x, w, dy]) };
        },
      },
    );
  }
  return out;
}

/** Max-pooling, concatenation and sigmoid at the U-Net's largest activation, [n, 96, 96, 32]. */
export function memoryBoundCases(n: number): Case[] {
  const s = [n, 96, 96, 32] as [number, number, number, number];
  const half = [n, 48, 48, 32] as [number, number, number, number];
  const cat = [n, 96, 96, 64];
  const e = prod(s);
  const shape = s.join('x');
  const xv = rand(e, 7);
  const bv = rand(e, 8);
  const dyv = rand(prod(half), 9);
  return [
    {
      op: 'maxpool_forward',
      shape,
      bytes: 4 * (e + e / 4),
      tfKernels: ['MaxPool'],
      ours(gpu) {
        const [x, y] = tensors(gpu, [[s, xv], [half, null]]);
        return { run: () => maxPool2x2(gpu, x!, y!), dispose: () => disposeAll([x!, y!]) };
      },
      theirs(tf) {
        const x = tf.tensor4d(xv, s);
        return { run: () => tf.maxPool(x, 2, 2, 'valid'), dispose: () => x.dispose() };
      },
    },
    {
      op: 'maxpool_backward',
      shape,
      bytes: 4 * (2 * e + e / 4),
      tfKernels: ['MaxPoolGrad'],
      ours(gpu) {
        const [x, dy, dx] = tensors(gpu, [[s, xv], [half, dyv], [s, null]]);
        return { run: () => maxPool2x2Backward(gpu, x!, dy!, dx!), dispose: () => disposeAll([x!, dy!, dx!]) };
      },
      theirs(tf) {
        const x = tf.tensor4d(xv, s);
        const y = tf.maxPool(x, 2, 2, 'valid');
        const dy = tf.tensor4d(dyv, half);
        return {
          run: () => tf.engine().runKernel('MaxPoolGrad', { dy, input: x, output: y }, { filterSize: 2, strides: 2, pad: 'valid' }) as tfType.Tensor,
          dispose: () => tf.dispose([x, y, dy]),
        };
      },
    },
    {
      op: 'concat',
      shape: `${shape} + ${shape}`,
      bytes: 4 * 4 * e,
      tfKernels: ['Concat'],
      ours(gpu) {
        const [a, b, y] = tensors(gpu, [[s, xv], [s, bv], [cat, null]]);
        return { run: () => concatChannels(gpu, a!, b!, y!), dispose: () => disposeAll([a!, b!, y!]) };
      },
      theirs(tf) {
        const [a, b] = [tf.tensor4d(xv, s), tf.tensor4d(bv, s)];
        return { run: () => tf.concat([a, b], 3), dispose: () => tf.dispose([a, b]) };
      },
    },
    {
      op: 'sigmoid',
      shape,
      bytes: 8 * e,
      tfKernels: ['Sigmoid'],
      ours(gpu) {
        const [x, y] = tensors(gpu, [[s, xv], [s, null]]);
        return { run: () => unary(gpu, 'sigmoid', x!, y!), dispose: () => disposeAll([x!, y!]) };
      },
      theirs(tf) {
        const x = tf.tensor4d(xv, s);
        return { run: () => tf.sigmoid(x), dispose: () => x.dispose() };
      },
    },
    {
      op: 'elu_forward_backward',
      shape,
      bytes: 20 * e,
      tfKernels: ['Elu', 'EluGrad'],
      ours(gpu) {
        const [x, y, dy, dx] = tensors(gpu, [[s, xv], [s, null], [s, bv], [s, null]]);
        return {
          run: () => {
            elu(gpu, x!, y!);
            eluBackward(gpu, dy!, y!, dx!);
          },
          dispose: () => disposeAll([x!, y!, dy!, dx!]),
        };
      },
      theirs(tf) {
        const [x, dy] = [tf.tensor4d(xv, s), tf.tensor4d(bv, s)];
        return {
          run: () => {
            const y = tf.elu(x);
            return [y, tf.engine().runKernel('EluGrad', { dy, y }) as tfType.Tensor];
          },
          dispose: () => tf.dispose([x, dy]),
        };
      },
    },
  ];
}

/** The Dice loss and its gradient over a batch of [n, 96, 96, 1] predictions. */
export function diceCase(n: number): Case {
  const s = [n, 96, 96, 1] as [number, number, number, number];
  const e = prod(s);
  const pv = rand(e, 10).map((v) => v + 0.5);
  const yv = rand(e, 11).map((v) => (v > 0.3 ? 1 : 0));
  return {
    op: 'dice_loss_forward_backward',
    shape: s.join('x'),
    bytes: 4 * 4 * e,
    tfKernels: ['Sum', 'Multiply'],
    ours(gpu) {
      const [p, y, loss, sums, dLoss, dp] = tensors(gpu, [[s, pv], [s, yv], [[1], null], [[3], null], [[1], Float32Array.of(1)], [s, null]]);
      return {
        run: () => {
          diceLoss(gpu, p!, y!, loss!, sums!);
          diceLossBackward(gpu, p!, y!, sums!, dLoss!, dp!);
        },
        dispose: () => disposeAll([p!, y!, loss!, sums!, dLoss!, dp!]),
      };
    },
    theirs(tf) {
      const [p, y] = [tf.tensor4d(pv, s), tf.tensor4d(yv, s)];
      const lossAndGrad = tf.valueAndGrad((q: tfType.Tensor) => {
        const inter = tf.sum(tf.mul(q, y));
        return tf.neg(tf.div(tf.add(tf.mul(inter, 2), 1), tf.add(tf.add(tf.sum(y), tf.sum(q)), 1))) as tfType.Scalar;
      });
      return {
        run: () => {
          const { value, grad } = lossAndGrad(p);
          return [value, grad];
        },
        dispose: () => tf.dispose([p, y]),
      };
    },
  };
}

/** One Adam step over the full U-Net's 7,759,521 parameters. */
export function adamCase(): Case {
  const n = 7_759_521;
  const pv = rand(n, 12, 0.1);
  const gv = rand(n, 13, 0.01);
  return {
    op: 'adam_step',
    shape: `${n} params`,
    bytes: 4 * 7 * n,
    tfKernels: ['Sqrt', 'RealDiv'],
    ours(gpu) {
      const [p, g, m, v] = tensors(gpu, [[[n], pv], [[n], gv], [[n], new Float32Array(n)], [[n], new Float32Array(n)]]);
      let t = 0;
      return {
        run: () => adamStep(gpu, p!, g!, m!, v!, { lr: 1e-5, beta1: 0.9, beta2: 0.999, epsilon: 1e-7, step: ++t }),
        dispose: () => disposeAll([p!, g!, m!, v!]),
      };
    },
    theirs(tf) {
      const init = tf.tensor1d(pv);
      const p = tf.variable(init, true, 'adam_bench_param');
      init.dispose();
      const g = tf.tensor1d(gv);
      const opt = tf.train.adam(1e-5, 0.9, 0.999, 1e-7);
      return {
        run: () => {
          opt.applyGradients({ adam_bench_param: g } as unknown as Parameters<typeof opt.applyGradients>[0]);
          return [];
        },
        dispose: () => {
          opt.dispose();
          tf.dispose([p, g]);
        },
      };
    },
  };
}
