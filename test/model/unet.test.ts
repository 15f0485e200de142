import { describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { randomArray } from '../helpers/random.js';
import { buildUNetParameters, createUNet, unetLayerSpecs } from '../../src/model/unet.js';
import { Tape, Tensor, diceLoss, noGrad, scope } from '../../src/autograd/index.js';

// The tutorial's model.summary(), layers with weights only: Keras kernel shape and parameter count.
const KERAS_SUMMARY: [string, number[], number][] = [
  ['conv2d_1', [3, 3, 1, 32], 320],
  ['conv2d_2', [3, 3, 32, 32], 9248],
  ['conv2d_3', [3, 3, 32, 64], 18496],
  ['conv2d_4', [3, 3, 64, 64], 36928],
  ['conv2d_5', [3, 3, 64, 128], 73856],
  ['conv2d_6', [3, 3, 128, 128], 147584],
  ['conv2d_7', [3, 3, 128, 256], 295168],
  ['conv2d_8', [3, 3, 256, 256], 590080],
  ['conv2d_9', [3, 3, 256, 512], 1180160],
  ['conv2d_10', [3, 3, 512, 512], 2359808],
  ['conv2d_transpose_1', [2, 2, 256, 512], 524544],
  ['conv2d_11', [3, 3, 512, 256], 1179904],
  ['conv2d_12', [3, 3, 256, 256], 590080],
  ['conv2d_transpose_2', [2, 2, 128, 256], 131200],
  ['conv2d_13', [3, 3, 256, 128], 295040],
  ['conv2d_14', [3, 3, 128, 128], 147584],
  ['conv2d_transpose_3', [2, 2, 64, 128], 32832],
  ['conv2d_15', [3, 3, 128, 64], 73792],
  ['conv2d_16', [3, 3, 64, 64], 36928],
  ['conv2d_transpose_4', [2, 2, 32, 64], 8224],
  ['conv2d_17', [3, 3, 64, 32], 18464],
  ['conv2d_18', [3, 3, 32, 32], 9248],
  ['conv2d_19', [1, 1, 32, 1], 33],
];

describe('the tutorial U-Net', () => {
  it('has the Keras layers, names, shapes and 7,759,521 parameters at width 32', () => {
    const specs = unetLayerSpecs(32);
    expect(specs.length).toBe(23);
    expect(specs.filter((s) => s.kind === 'conv2d').length).toBe(19);
    expect(specs.filter((s) => s.kind === 'conv2d_transpose').length).toBe(4);
    expect(KERAS_SUMMARY.reduce((a, [, , n]) => a + n, 0)).toBe(7_759_521);

    const store = buildUNetParameters({ baseWidth: 32, inputSize: 96, seed: 1 });
    console.log(`U-Net (32, 96): ${store.count} parameters in ${store.params.length} tensors, ${store.length} floats with padding`);
    expect(store.count).toBe(7_759_521);
    const want = KERAS_SUMMARY.flatMap(([name, shape]) => [
      { name: `${name}/kernel`, shape },
      { name: `${name}/bias`, shape: [name.startsWith('conv2d_transpose') ? shape[2]! : shape[3]!] },
    ]);
    expect(store.params.map((p) => ({ name: p.name, shape: [...p.shape] }))).toEqual(want);
    for (const [name, , n] of KERAS_SUMMARY) {
      const k = store.params.find((p) => p.name === `${name}/kernel`)!;
      const b = store.params.find((p) => p.name === `${name}/bias`)!;
      expect(k.size + b.size).toBe(n);
    }
    // Glorot-uniform kernels within Keras's limit, zero biases, reproducible from the seed.
    const values = store.initialValues();
    for (const [name, shape] of KERAS_SUMMARY) {
      const [kh, kw, a, b] = shape as [number, number, number, number];
      const limit = Math.sqrt(6 / (kh * kw * (a + b)));
      const k = values.get(`${name}/kernel`)!;
      let max = 0;
      for (const v of k) max = Math.max(max, Math.abs(v));
      expect(max).toBeLessThanOrEqual(limit);
      expect(max).toBeGreaterThan(0.9 * limit);
      expect(values.get(`${name}/bias`)!.every((v) => v === 0)).toBe(true);
    }
    const again = buildUNetParameters({ seed: 1 }).initialValues();
    expect(again.get('conv2d_5/kernel')).toEqual(values.get('conv2d_5/kernel'));
    const other = buildUNetParameters({ seed: 2 }).initialValues();
    expect(other.get('conv2d_5/kernel')).not.toEqual(values.get('conv2d_5/kernel'));
  });

  it('starts the last layer\'s bias at outputBias when given, every other weight as without it', () => {
    const plain = buildUNetParameters({ baseWidth: 4, inputSize: 16, seed: 3 }).initialValues();
    const prior = buildUNetParameters({ baseWidth: 4, inputSize: 16, seed: 3, outputBias: -4.5 }).initialValues();
    expect([...prior.keys()]).toEqual([...plain.keys()]);
    for (const [name, v] of prior) {
      if (name === 'conv2d_19/bias') expect([...v]).toEqual([-4.5]);
      else expect(v, name).toEqual(plain.get(name));
    }
    expect(() => buildUNetParameters({ outputBias: Number.NaN })).toThrow(/outputBias must be a finite number, got NaN/);
  });

  it('rejects input sizes the four poolings cannot halve', () => {
    expect(() => buildUNetParameters({ inputSize: 90 })).toThrow(/inputSize must be a positive multiple of 16.*got 90/);
    expect(() => buildUNetParameters({ baseWidth: 0 })).toThrow(/baseWidth must be a positive integer/);
  });

  it('leaves the ReLU\'s backward to the layers that read each activation, and the sigmoid\'s to the loss: no pass of their own', async () => {
    const gpu = await testGpu();
    const unet = createUNet(gpu, { baseWidth: 2, inputSize: 16, seed: 1 });
    const x = Tensor.from(gpu, [1, 16, 16, 1], randomArray(256, 4, -1, 1));
    const y = Tensor.from(gpu, [1, 16, 16, 1], randomArray(256, 5, 0, 1));
    const labels: string[] = [];
    gpu.observer = { timestampWrites: (label) => (labels.push(label), undefined) };
    const tape = new Tape(gpu);
    try {
      tape.backward(tape.run(() => diceLoss(unet.forward(x), y)));
    } finally {
      gpu.observer = null;
    }
    // 18 ReLU layers: 14 are read by one convolution, whose ∂input stores
    // the gradient masked (its GEMM, or its Winograd output pass); the second
    // of each of the 4 encoder levels feeds a skip and a pooling, whose
    // backward (the skip's written first) masks the sum.
    expect(labels.filter((l) => l.startsWith('binary reluBackward')), labels.join('\n')).toEqual([]);
    const stores = labels.filter((l) => /^(conv2dBackwardInput|convTranspose2x2BackwardInput) .*, masked( \[|: Winograd .* output tiles)/.test(l));
    expect(stores.length, labels.join('\n')).toBe(14);
    expect(labels.filter((l) => /^maxPool2x2Backward .*, masked$/.test(l)).length).toBe(4);
    // The Dice loss, the sigmoid output's only reader, writes the gradient of its logits.
    expect(labels.filter((l) => l.startsWith('binary sigmoidBackward')), labels.join('\n')).toEqual([]);
    expect(labels.filter((l) => /^diceLossBackward .* with respect to the logits$/.test(l)).length, labels.join('\n')).toBe(1);
    tape.dispose();
    for (const t of [x, y]) t.dispose();
    unet.dispose();
  });

  it('runs a full-size 96 × 96 image on the GPU and frees every intermediate outside a tape', async () => {
    const gpu = await testGpu();
    const unet = createUNet(gpu, { baseWidth: 32, inputSize: 96, seed: 1 });
    expect(unet.parameters.count).toBe(7_759_521);
    const x = Tensor.from(gpu, [1, 96, 96, 1], randomArray(96 * 96, 3, -1, 1));
    await gpu.sync();
    const before = gpu.memory().liveBuffers;
    const y = noGrad(() => unet.forward(x));
    expect(y.shape).toEqual([1, 96, 96, 1]);
    expect(gpu.memory().liveBuffers).toBe(before + 1); // only the output is still held
    const p = await y.read();
    expect(p.every((v) => v > 0 && v < 1)).toBe(true);
    y.dispose();
    expect(() => scope(() => unet.forward(Tensor.from(gpu, [1, 40, 40, 1], new Float32Array(1600))))).toThrow(/multiples of 16, got \[1, 40, 40, 1\]/);
    x.dispose();
    unet.dispose();
  });
});
