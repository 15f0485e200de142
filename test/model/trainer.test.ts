import { describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { blobBatch } from './blobs.js';
import { type UNetVariant, createUNet } from '../../src/model/unet.js';
import { Adam } from '../../src/model/adam.js';
import { NonFiniteLossError, TRAINING_LOSSES, Trainer, type ImageSet, type TrainingLoss, trainingLoss } from '../../src/model/trainer.js';
import { Tape, Tensor, noGrad } from '../../src/autograd/index.js';
import { relErrorToScale } from '../helpers/compare.js';
import { rng } from '../helpers/random.js';
import { Augmenter, DEFAULT_AUGMENT } from '../../src/model/augment.js';
import { CHECKPOINT_FORMAT, type CheckpointMeta, decodeCheckpoint, encodeCheckpoint, encodeCheckpointTensors, loadWeights } from '../../src/model/checkpoint.js';
import { decodeSafetensors, encodeSafetensors } from '../../src/model/safetensors.js';

const SIZE = 16;
function set(n: number, seed: number): ImageSet {
  const b = blobBatch(n, SIZE, seed);
  return { images: b.images, masks: b.masks, count: n, size: SIZE };
}

function meta(): CheckpointMeta {
  return {
    format: CHECKPOINT_FORMAT, version: 'test', config: { baseWidth: 2, inputSize: SIZE, seed: 1 },
    normalization: { mean: 100, std: 20 }, epoch: 1, step: 0, metrics: { loss: -0.5 }, adapter: 'test', createdAt: 'now',
  };
}

describe('Trainer', () => {
  it('stops with the step named when the loss is not finite', async () => {
    const gpu = await testGpu();
    const model = createUNet(gpu, { baseWidth: 2, inputSize: SIZE });
    const adam = new Adam(model.parameters, { lr: 1e-3 });
    const data = set(8, 1);
    data.masks[5 * SIZE * SIZE + 3] = NaN; // in the second batch of 4 (ReLU would swallow a NaN pixel)
    const trainer = new Trainer(model, adam, 4);
    const err = await trainer.trainEpoch(data, [0, 1, 2, 3, 4, 5, 6, 7], 3).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NonFiniteLossError);
    expect((err as Error).message).toMatch(/epoch 3, step 2/);
    await gpu.sync();
    model.dispose();
    adam.dispose();
  });

  it('trains alike with more steps in flight: the same losses, reported in order, and the same weights', async () => {
    const gpu = await testGpu();
    const data = set(16, 4);
    const rows = Array.from({ length: 16 }, (_, i) => i);
    const run = async (inFlight: number) => {
      const model = createUNet(gpu, { baseWidth: 2, inputSize: SIZE, seed: 9 });
      const adam = new Adam(model.parameters, { lr: 1e-3 });
      const trainer = new Trainer(model, adam, 4);
      trainer.stepsInFlight = inFlight;
      const steps: [number, number, number][] = [];
      const epoch = await trainer.trainEpoch(data, rows, 1, (r) => void steps.push([r.step, r.images, r.loss]));
      const weights = await model.parameters.get('conv2d_1/kernel').read();
      model.dispose();
      adam.dispose();
      return { steps, epoch, weights };
    };
    const one = await run(1);
    expect(one.steps.map(([step, images]) => [step, images])).toEqual([[1, 4], [2, 8], [3, 12], [4, 16]]);
    for (const n of [2, 5]) expect(await run(n), `${n} steps in flight`).toEqual(one);
    const model = createUNet(gpu, { baseWidth: 2, inputSize: SIZE });
    const adam = new Adam(model.parameters, {});
    const trainer = new Trainer(model, adam, 4);
    trainer.stepsInFlight = 0;
    await expect(trainer.trainEpoch(data, rows, 1)).rejects.toThrow('stepsInFlight must be a whole number ≥ 1, not 0');
    model.dispose();
    adam.dispose();
  });

  it('keeps live GPU memory flat across epochs, and evaluation and prediction agree', async () => {
    const gpu = await testGpu();
    const model = createUNet(gpu, { baseWidth: 2, inputSize: SIZE });
    const adam = new Adam(model.parameters, { lr: 1e-3 });
    const data = set(12, 2);
    const trainer = new Trainer(model, adam, 4);
    const rows = Array.from({ length: 12 }, (_, i) => i);
    await trainer.trainEpoch(data, rows, 1);
    const live = gpu.memory().liveBytes;
    const created = gpu.memory().created;
    await trainer.trainEpoch(data, rows, 2);
    expect(gpu.memory().liveBytes).toBe(live);
    expect(gpu.memory().created).toBe(created);
    // The validation loss is the mean over batches of −Dice of the predictions.
    const { loss, dice } = await trainer.evaluate(data, rows);
    expect(dice).toBe(-loss);
    const probs = await trainer.predict(data.images, 12, SIZE);
    let mean = 0;
    for (let b = 0; b < 3; b++) {
      let inter = 0;
      let sp = 0;
      let sy = 0;
      for (let i = b * 4 * SIZE * SIZE; i < (b + 1) * 4 * SIZE * SIZE; i++) {
        inter += probs[i]! * data.masks[i]!;
        sp += probs[i]!;
        sy += data.masks[i]!;
      }
      mean += -(2 * inter + 1) / (sy + sp + 1) / 3;
    }
    expect(Math.abs(loss - mean)).toBeLessThan(1e-5);
    model.dispose();
    adam.dispose();
  });
});

describe('replayed steps', () => {
  // The tutorial's loss, one that also reports the tutorial's Dice beside it (a second output of each step),
  // and the model variant (batch statistics and running statistics, dropout masks drawn anew each step).
  const cases: { kind: 'dice' | 'bce-dice'; variant?: UNetVariant }[] = [{ kind: 'dice' }, { kind: 'bce-dice' }, { kind: 'dice', variant: { activation: 'elu', batchNorm: true, dropout: 0.3 } }];
  for (const { kind, variant } of cases)
  it(`train, evaluate and predict exactly as steps recorded op by op, and are replayed from the second step of a shape (${kind} loss${variant ? ', the model variant' : ''})`, async () => {
    const gpu = await testGpu();
    const data = set(10, 5);
    const rows = [3, 1, 4, 0, 9, 2, 6, 5, 8, 7]; // batches of 4, 4 and 2
    const run = async (enabled: boolean) => {
      gpu.replayEnabled = enabled;
      const model = createUNet(gpu, { baseWidth: 2, inputSize: SIZE, seed: 6, ...variant });
      const adam = new Adam(model.parameters, { lr: 1e-3 });
      const trainer = new Trainer(model, adam, 4, new Augmenter(DEFAULT_AUGMENT, 3), kind);
      const losses: { loss: number; dice: number }[] = [];
      const replayed = { hits: 0, misses: 0 };
      const replay = gpu.replay.bind(gpu);
      gpu.replay = (p, inputs) => {
        const out = replay(p, inputs);
        replayed[out ? 'hits' : 'misses']++;
        return out;
      };
      for (let epoch = 1; epoch <= 3; epoch++) {
        const { loss, dice } = await trainer.trainEpoch(data, rows, epoch);
        losses.push({ loss, dice });
      }
      const val = await trainer.evaluate(data, rows);
      const val2 = await trainer.evaluate(data, rows);
      const probs = await trainer.predict(data.images, 10, SIZE);
      const weights = await model.parameters.readAll();
      const running = model.state ? await model.state.readAll() : new Map<string, Float32Array>();
      const state = await adam.readState();
      gpu.replay = replay;
      model.dispose();
      adam.dispose();
      return { losses, val, val2, probs, weights, running, m: state.m, replayed };
    };
    const traced = await run(false);
    const replayed = await run(true);
    gpu.replayEnabled = true;
    expect(traced.replayed).toEqual({ hits: 0, misses: 0 });
    // Training: batches of 4 captured at step 1 and replayed at the 5 full
    // steps after it; the batch of 2 captured in epoch 1 and replayed in
    // epochs 2 and 3. Evaluation: 4 captured, replayed once; 2 captured; the
    // second evaluation replays all three batches. Prediction is a pass of its
    // own: 4 captured, replayed once; 2 captured.
    expect(replayed.replayed).toEqual({ hits: 5 + 2 + 1 + 3 + 1, misses: 0 });
    expect(replayed.losses).toEqual(traced.losses);
    // The Dice is the loss itself, or another figure beside it.
    for (const l of [...traced.losses, traced.val]) expect(l.dice === -l.loss).toBe(kind === 'dice');
    expect(replayed.val).toEqual(traced.val);
    expect(replayed.val2).toEqual(traced.val);
    expect(replayed.probs).toEqual(traced.probs);
    for (const [k, v] of traced.weights) expect(replayed.weights.get(k), k).toEqual(v);
    expect(traced.running.size).toBe(variant ? 36 : 0);
    for (const [k, v] of traced.running) expect(replayed.running.get(k), k).toEqual(v);
    for (const [k, v] of traced.m) expect(replayed.m.get(k), k).toEqual(v);
  });
});

describe('checkpoints', () => {
  it('round-trip weights and optimiser state, and name the first tensor that does not match', async () => {
    const gpu = await testGpu();
    const model = createUNet(gpu, { baseWidth: 2, inputSize: SIZE, seed: 4 });
    const adam = new Adam(model.parameters, { lr: 1e-3 });
    const trainer = new Trainer(model, adam, 4);
    await trainer.trainEpoch(set(4, 3), [0, 1, 2, 3], 1);
    const bytes = await encodeCheckpoint(model, meta(), adam);
    const ckpt = decodeCheckpoint(bytes, 'ckpt');
    expect(ckpt.adam?.t).toBe(1);
    expect(ckpt.meta.normalization).toEqual({ mean: 100, std: 20 });

    const other = createUNet(gpu, { baseWidth: 2, inputSize: SIZE, seed: 9 });
    loadWeights(other, ckpt, 'ckpt');
    const a = await model.parameters.readAll();
    const b = await other.parameters.readAll();
    for (const [k, v] of a) expect(b.get(k)).toEqual(v);

    // A tensor of the wrong shape: the error names it.
    const { tensors, metadata } = decodeSafetensors(bytes, 'ckpt');
    tensors.set('conv2d_3/kernel', { shape: [3, 3, 2, 5], data: new Float32Array(90) });
    const bad = decodeCheckpoint(encodeSafetensors(tensors, metadata), 'bad.safetensors');
    expect(() => loadWeights(other, bad, 'bad.safetensors')).toThrow(/bad\.safetensors .*conv2d_3\/kernel/);
    // Another width is refused before any tensor is compared.
    const wide = createUNet(gpu, { baseWidth: 4, inputSize: SIZE });
    expect(() => loadWeights(wide, ckpt, 'ckpt')).toThrow(/base width 2, the model 4/);
    for (const m of [model, other, wide]) m.dispose();
    adam.dispose();
  });

  it('refuses files that are not wgsl-unet checkpoints or are truncated', () => {
    const plain = encodeSafetensors(new Map([['w', { shape: [2], data: new Float32Array([1, 2]) }]]));
    expect(() => decodeCheckpoint(plain, 'plain.safetensors')).toThrow(/plain\.safetensors: not a wgsl-unet checkpoint/);
    expect(() => decodeSafetensors(plain.subarray(0, plain.length - 4), 'cut.safetensors')).toThrow(/cut\.safetensors: tensor "w"/);
  });

  it('refuses a checkpoint holding a NaN or an infinity, or unreadable metadata, naming what is wrong', () => {
    const meta = { format: CHECKPOINT_FORMAT, normalization: { mean: 0, std: 1 } } as CheckpointMeta;
    const tensors = (data: number[]) => new Map([['conv2d_1/kernel', { shape: [2], data: new Float32Array([1, 2]) }], ['conv2d_1/bias', { shape: [data.length], data: new Float32Array(data) }]]);
    expect(decodeCheckpoint(encodeCheckpointTensors(tensors([0, -3, 5]), meta), 'good.safetensors').weights.size).toBe(2);
    expect(() => decodeCheckpoint(encodeCheckpointTensors(tensors([0, NaN, 5, -Infinity]), meta), 'nan.safetensors')).toThrow(
      /^nan\.safetensors: tensor conv2d_1\/bias holds 2 values that are not finite \(the first, NaN, at index 1\): the checkpoint is damaged$/,
    );
    expect(() => decodeCheckpoint(encodeCheckpointTensors(tensors([Infinity]), meta), 'inf.safetensors')).toThrow(/tensor conv2d_1\/bias holds 1 value that is not finite \(the first, Infinity, at index 0\)/);
    const torn = encodeSafetensors(tensors([0]), { format: CHECKPOINT_FORMAT, wgsl_unet: '{"config": ' });
    expect(() => decodeCheckpoint(torn, 'torn.safetensors')).toThrow(/^torn\.safetensors: its wgsl_unet metadata is not JSON \(.*\): the checkpoint is damaged$/);
  });
});

/** Float64 reference of each training loss; images are runs of `px` values. */
function referenceLoss(p: ArrayLike<number>, y: ArrayLike<number>, px: number, kind: TrainingLoss): number {
  const dice = (from: number, to: number) => {
    let i = 0;
    let u = 1;
    for (let k = from; k < to; k++) {
      i += y[k]! * p[k]!;
      u += y[k]! + p[k]!;
    }
    return (2 * i + 1) / u;
  };
  const images = p.length / px;
  let mean = 0;
  for (let g = 0; g < images; g++) mean += dice(g * px, (g + 1) * px) / images;
  let ce = 0;
  for (let k = 0; k < p.length; k++) ce -= (y[k]! * Math.log(p[k]!) + (1 - y[k]!) * Math.log(1 - p[k]!)) / p.length; // p inside the clip
  return kind === 'dice' ? -dice(0, p.length) : kind === 'image-dice' ? -mean : -dice(0, p.length) + ce;
}

describe('training losses', () => {
  it('each loss and its gradient through the tape match finite differences of a float64 reference; evaluation outside a tape agrees', async () => {
    const gpu = await testGpu();
    const shape = [3, 5, 6, 1];
    const px = 30;
    const n = 90;
    const r = rng(17);
    const ps = Float32Array.from({ length: n }, () => 0.02 + 0.96 * r());
    const ys = Float32Array.from({ length: n }, (_, k) => (k >= px && k < 2 * px ? 0 : r() < 0.4 ? 1 : 0)); // the second image empty
    for (const kind of TRAINING_LOSSES) {
      const p = Tensor.from(gpu, shape, ps, true);
      const y = Tensor.from(gpu, shape, ys);
      const tape = new Tape(gpu);
      const loss = tape.run(() => trainingLoss(p, y, kind));
      tape.backward(loss);
      const got = (await loss.read())[0]!;
      const grad = await p.grad!.read();
      tape.dispose();
      const evaluated = noGrad(() => trainingLoss(p, y, kind));
      const again = (await evaluated.read())[0]!;
      evaluated.dispose();
      const p64 = Float64Array.from(ps);
      const h = 1e-4;
      const fd = Float64Array.from(p64, (v, k) => {
        p64[k] = v + h;
        const up = referenceLoss(p64, ys, px, kind);
        p64[k] = v - h;
        const down = referenceLoss(p64, ys, px, kind);
        p64[k] = v;
        return (up - down) / (2 * h);
      });
      const want = referenceLoss(ps, ys, px, kind);
      const err = relErrorToScale(grad, fd);
      console.log(`${kind} loss: ${got} (reference ${want.toPrecision(8)}), gradient vs finite differences ${err.toExponential(2)}`);
      expect(Math.abs(got - want)).toBeLessThan(1e-6);
      expect(again).toBe(got);
      expect(err).toBeLessThan(1e-4);
      p.dispose();
      y.dispose();
    }
    // The three are different functions of the same maps.
    const values = TRAINING_LOSSES.map((k) => referenceLoss(ps, ys, px, k));
    expect(new Set(values).size).toBe(3);
  });
});
