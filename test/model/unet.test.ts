import { describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { randomArray } from '../helpers/random.js';
import { buildUNetParameters, createUNet, resolveUNetOptions, unetLayerSpecs } from '../../src/model/unet.js';
import { Adam } from '../../src/model/adam.js';
import { trainingStep } from '../../src/model/trainer.js';
import { CHECKPOINT_FORMAT, CheckpointError, decodeCheckpoint, encodeCheckpoint, loadWeights } from '../../src/model/checkpoint.js';
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

describe('the variants: ELU activations, dropout after the bottom', () => {
  it('ELU in every hidden layer, the same weights; options checked; the tutorial\'s config records neither', () => {
    const specs = unetLayerSpecs(4, { activation: 'elu' });
    expect(specs.map((s) => s.activation)).toEqual(unetLayerSpecs(4).map((s) => (s.activation === 'relu' ? 'elu' : s.activation)));
    expect(specs.filter((s) => s.activation === 'elu')).toHaveLength(18);
    expect(buildUNetParameters({ baseWidth: 4, inputSize: 16, seed: 3, activation: 'elu', dropout: 0.5 }).initialValues()).toEqual(buildUNetParameters({ baseWidth: 4, inputSize: 16, seed: 3 }).initialValues());
    expect(resolveUNetOptions({})).toEqual({ baseWidth: 32, inputSize: 96, seed: 1 });
    expect(resolveUNetOptions({ activation: 'elu', dropout: 0.25 })).toEqual({ baseWidth: 32, inputSize: 96, seed: 1, activation: 'elu', dropout: 0.25 });
    expect(() => resolveUNetOptions({ activation: 'tanh' as 'elu' })).toThrow(/activation must be relu or elu, got tanh/);
    expect(() => resolveUNetOptions({ dropout: 1 })).toThrow(/dropout must be a rate in \[0, 1\), got 1/);
  });

  it('a checkpoint of one activation does not load into a model of the other', async () => {
    const gpu = await testGpu();
    const relu = createUNet(gpu, { baseWidth: 2, inputSize: 16 });
    const weights = new Map([...(await relu.parameters.readAll())].map(([k, v]) => [k, { shape: [...relu.parameters.get(k).shape], data: v }]));
    const ckpt = { meta: { config: relu.config }, weights } as unknown as Parameters<typeof loadWeights>[1];
    const elu = createUNet(gpu, { baseWidth: 2, inputSize: 16, activation: 'elu' });
    expect(() => loadWeights(elu, ckpt, 'relu.safetensors')).toThrow(CheckpointError);
    expect(() => loadWeights(elu, ckpt, 'relu.safetensors')).toThrow('relu.safetensors: checkpoint has relu activations, the model elu');
    relu.dispose();
    elu.dispose();
  });

  it('dropout only where a tape records, its backward on the same mask; an ELU model has one ELU backward pass per hidden layer', async () => {
    const gpu = await testGpu();
    const plain = createUNet(gpu, { baseWidth: 2, inputSize: 16, seed: 1, activation: 'elu' });
    const dropped = createUNet(gpu, { baseWidth: 2, inputSize: 16, seed: 1, activation: 'elu', dropout: 0.5 });
    const x = Tensor.from(gpu, [2, 16, 16, 1], randomArray(512, 4, -1, 1));
    const y = Tensor.from(gpu, [2, 16, 16, 1], randomArray(512, 5, 0, 1));
    // Inference: the identity.
    const a = noGrad(() => plain.forward(x));
    const b = noGrad(() => dropped.forward(x));
    expect(await b.read()).toEqual(await a.read());
    for (const t of [a, b]) t.dispose();
    const labels: string[] = [];
    gpu.observer = { timestampWrites: (label) => (labels.push(label), undefined) };
    const tape = new Tape(gpu);
    let p: Tensor;
    try {
      p = tape.run(() => dropped.forward(x));
      tape.backward(tape.run(() => diceLoss(p, y)));
    } finally {
      gpu.observer = null;
    }
    expect(labels.filter((l) => l.startsWith('dropout 0.5 [2, 1, 1, 32]'))).toHaveLength(2); // forward and backward
    // The ELU's gradient is its own pass (the ReLU's mask is the only one the stores apply).
    expect(labels.filter((l) => l.startsWith('binary eluBackward') || l.startsWith('binary eluBackward in place'))).toHaveLength(18);
    expect(labels.filter((l) => / masked( \[|: |$)/.test(l)), labels.join('\n')).toEqual([]);
    const q = noGrad(() => plain.forward(x));
    expect(await p!.read()).not.toEqual(await q.read());
    q.dispose();
    tape.dispose();
    for (const t of [x, y]) t.dispose();
    plain.dispose();
    dropped.dispose();
  });

  it('each training step draws new masks, replayed steps too; the same step count draws the same ones', async () => {
    const gpu = await testGpu();
    const n = 2;
    const x = Tensor.from(gpu, [n, 16, 16, 1], randomArray(n * 256, 6, -1, 1));
    const y = Tensor.from(gpu, [n, 16, 16, 1], randomArray(n * 256, 7, 0, 1).map((v) => (v > 0.5 ? 1 : 0)));
    // Adam at lr 0 leaves the weights as they are, so only the masks change a
    // step's gradients; the bottom's bias gradient passes through its mask
    // (ELU: no unit is dead, so each mask shows).
    const gradientsOf = async (dropout: number, steps: number, from = 0) => {
      const model = createUNet(gpu, { baseWidth: 2, inputSize: 16, seed: 1, dropout, activation: 'elu' });
      model.trainingSteps = from;
      const adam = new Adam(model.parameters, { lr: 0 });
      const out: string[] = [];
      for (let i = 0; i < steps; i++) {
        model.parameters.zeroGrads();
        trainingStep(model, adam, x, y).loss.dispose();
        out.push(Array.from((await model.parameters.readGrads()).get('conv2d_10/bias')!).join(','));
      }
      model.dispose();
      adam.dispose();
      return out;
    };
    const withDropout = await gradientsOf(0.5, 4);
    expect(new Set(withDropout).size).toBe(4);
    expect(await gradientsOf(0.5, 2, 2)).toEqual(withDropout.slice(2));
    const without = await gradientsOf(0, 3);
    expect(new Set(without).size).toBe(1);
    for (const t of [x, y]) t.dispose();
  });

  it('batch normalisation: 18 BatchNormalization layers after the hidden convolutions, γ and β trained, the running statistics as state', async () => {
    const specs = unetLayerSpecs(4, { batchNorm: true });
    const norms = specs.filter((s) => s.kind === 'batch_normalization');
    expect(norms.map((s) => s.name)).toEqual(Array.from({ length: 18 }, (_, i) => `batch_normalization_${i + 1}`));
    // Each follows its convolution, which then has no activation of its own.
    for (const [i, s] of specs.entries()) if (s.kind === 'batch_normalization') expect([specs[i - 1]!.kind, specs[i - 1]!.activation]).toEqual(['conv2d', 'none']);
    expect(specs[specs.length - 1]!.activation).toBe('sigmoid');
    const channels = norms.reduce((n, s) => n + s.filters, 0);
    const plain = buildUNetParameters({ baseWidth: 4, inputSize: 16 });
    const withNorm = buildUNetParameters({ baseWidth: 4, inputSize: 16, batchNorm: true });
    expect(withNorm.count).toBe(plain.count + 2 * channels);
    // The convolutions' initial weights are the tutorial model's.
    const a = plain.initialValues();
    for (const [name, v] of withNorm.initialValues()) if (!name.startsWith('batch_normalization')) expect(v, name).toEqual(a.get(name));

    const gpu = await testGpu();
    const model = createUNet(gpu, { baseWidth: 4, inputSize: 16, seed: 2, batchNorm: true });
    expect(model.state!.count).toBe(2 * channels);
    const before = await model.state!.readAll();
    const x = Tensor.from(gpu, [2, 16, 16, 1], randomArray(512, 8, -1, 1));
    const y = Tensor.from(gpu, [2, 16, 16, 1], randomArray(512, 9, 0, 1).map((v) => (v > 0.5 ? 1 : 0)));
    // Inference reads the running statistics and leaves them.
    const p0 = noGrad(() => model.forward(x));
    expect(await model.state!.readAll()).toEqual(before);
    const adam = new Adam(model.parameters, { lr: 1e-3 });
    model.parameters.zeroGrads();
    trainingStep(model, adam, x, y).loss.dispose();
    const grads = await model.parameters.readGrads();
    expect(grads.get('batch_normalization_3/gamma')!.some((g) => g !== 0)).toBe(true);
    const after = await model.state!.readAll();
    // A training step moves them a hundredth of the way to the batch's statistics.
    expect(after.get('batch_normalization_1/moving_mean')).not.toEqual(before.get('batch_normalization_1/moving_mean'));
    const p1 = noGrad(() => model.forward(x));
    expect(await p1.read()).not.toEqual(await p0.read());

    // Checkpoints keep the state: a model loaded from one predicts alike.
    const bytes = await encodeCheckpoint(model, { format: CHECKPOINT_FORMAT, version: 'test', config: model.config, normalization: { mean: 0, std: 1 }, epoch: 1, step: 1, metrics: {}, adapter: 'test', createdAt: '' });
    const ckpt = decodeCheckpoint(bytes, 'bn.safetensors');
    expect(ckpt.weights.get('batch_normalization_1/moving_variance')!.data).toEqual(after.get('batch_normalization_1/moving_variance'));
    const loaded = createUNet(gpu, ckpt.meta.config);
    loadWeights(loaded, ckpt, 'bn.safetensors');
    const p2 = noGrad(() => loaded.forward(x));
    expect(await p2.read()).toEqual(await p1.read());
    // A model without batch normalisation refuses the checkpoint, and the other way round.
    const plainModel = createUNet(gpu, { baseWidth: 4, inputSize: 16 });
    expect(() => loadWeights(plainModel, ckpt, 'bn.safetensors')).toThrow('bn.safetensors: checkpoint has batch normalisation, the model has none');
    for (const t of [p0, p1, p2, x, y, adam, model, loaded, plainModel]) t.dispose();
  });
});
