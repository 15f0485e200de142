import { describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { blobBatch } from './blobs.js';
import { createUNet } from '../../src/model/unet.js';
import { Adam } from '../../src/model/adam.js';
import { NonFiniteLossError, Trainer, type ImageSet } from '../../src/model/trainer.js';
import { Augmenter, DEFAULT_AUGMENT } from '../../src/model/augment.js';
import { CHECKPOINT_FORMAT, type CheckpointMeta, decodeCheckpoint, encodeCheckpoint, loadWeights } from '../../src/model/checkpoint.js';
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
    const loss = await trainer.evaluate(data, rows);
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
  it('train, evaluate and predict exactly as steps recorded op by op, and are replayed from the second step of a shape', async () => {
    const gpu = await testGpu();
    const data = set(10, 5);
    const rows = [3, 1, 4, 0, 9, 2, 6, 5, 8, 7]; // batches of 4, 4 and 2
    const run = async (enabled: boolean) => {
      gpu.replayEnabled = enabled;
      const model = createUNet(gpu, { baseWidth: 2, inputSize: SIZE, seed: 6 });
      const adam = new Adam(model.parameters, { lr: 1e-3 });
      const trainer = new Trainer(model, adam, 4, new Augmenter(DEFAULT_AUGMENT, 3));
      const losses: number[] = [];
      const replayed = { hits: 0, misses: 0 };
      const replay = gpu.replay.bind(gpu);
      gpu.replay = (p, inputs) => {
        const out = replay(p, inputs);
        replayed[out ? 'hits' : 'misses']++;
        return out;
      };
      for (let epoch = 1; epoch <= 3; epoch++) losses.push((await trainer.trainEpoch(data, rows, epoch)).loss);
      const val = await trainer.evaluate(data, rows);
      const val2 = await trainer.evaluate(data, rows);
      const probs = await trainer.predict(data.images, 10, SIZE);
      const weights = await model.parameters.readAll();
      const state = await adam.readState();
      gpu.replay = replay;
      model.dispose();
      adam.dispose();
      return { losses, val, val2, probs, weights, m: state.m, replayed };
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
    expect(replayed.val).toBe(traced.val);
    expect(replayed.val2).toBe(traced.val);
    expect(replayed.probs).toEqual(traced.probs);
    for (const [k, v] of traced.weights) expect(replayed.weights.get(k), k).toEqual(v);
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
});
