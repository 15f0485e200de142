/**
 * Dynamic loss scaling (loss_scale.wgsl, Adam's scaled entry points):
 * the scaled backward, an overflowing step skipped with nothing changed and
 * the scale halved, growth after a run of clean steps, clean steps that
 * update exactly as unscaled Adam does, and the state kept in a checkpoint. Runs on any adapter: the machinery
 * is f32; the mixed-precision kernels it serves are tested in test/mixed.
 */
import { describe, expect, it } from 'vitest';
import { testGpu } from '../../../test/helpers/gpu.js';
import { blobBatch } from '../../../test/model/blobs.js';
import { createUNet, type UNet } from '../../model/unet.js';
import { Adam } from '../../model/adam.js';
import { CHECKPOINT_FORMAT, type CheckpointMeta, decodeCheckpoint, encodeCheckpoint } from '../../model/checkpoint.js';
import { Tape, Tensor, diceLoss } from '../../autograd/index.js';
import type { Gpu } from '../../gpu/gpu.js';

const SIZE = 16;

async function flat(gpu: Gpu, t: { view: { buffer: GPUBuffer; offset: number; size: number } }): Promise<Float32Array> {
  return gpu.readFloat32(t.view);
}

/** Records forward and backward of one batch, seeded as the trainer does; returns the loss. */
function backward(model: UNet, adam: Adam, x: Tensor, y: Tensor): Tensor {
  model.parameters.zeroGrads();
  const tape = new Tape(model.gpu);
  const loss = tape.run(() => diceLoss(model.forward(x), y));
  tape.backward(loss, adam.lossScaleSeed());
  tape.dispose();
  return loss;
}

async function setup(seed: number) {
  const gpu = await testGpu();
  const b = blobBatch(4, SIZE, seed);
  const x = Tensor.from(gpu, [4, SIZE, SIZE, 1], b.images);
  const y = Tensor.from(gpu, [4, SIZE, SIZE, 1], b.masks);
  const model = createUNet(gpu, { baseWidth: 2, inputSize: SIZE, seed });
  return { gpu, x, y, model };
}

describe('dynamic loss scaling', () => {
  it('seeds the backward with the scale: gradients are the unscaled ones times the scale', async () => {
    const { gpu, x, y, model } = await setup(1);
    const plain = new Adam(model.parameters, { lr: 1e-3 });
    backward(model, plain, x, y).dispose();
    const want = await flat(gpu, model.parameters.flatGrads);
    const scaled = new Adam(model.parameters, { lr: 1e-3 }, { initial: 1024 });
    backward(model, scaled, x, y).dispose();
    const got = await flat(gpu, model.parameters.flatGrads);
    let worst = 0;
    let scale = 0;
    for (let i = 0; i < want.length; i++) {
      worst = Math.max(worst, Math.abs(got[i]! - 1024 * want[i]!));
      scale = Math.max(scale, Math.abs(1024 * want[i]!));
    }
    expect(scale).toBeGreaterThan(0);
    // A power of two scales every product exactly: only summation order could differ.
    expect(worst / scale).toBeLessThan(1e-6);
    for (const t of [plain, scaled, model, x, y]) t.dispose();
  });

  it('skips a step whose gradients overflow: weights and moments unchanged, scale halved, the skip counted', async () => {
    const { gpu, x, y, model } = await setup(2);
    const adam = new Adam(model.parameters, { lr: 1e-3 }, { initial: 2 ** 16 });
    // A clean step first, so the moments are not zero.
    backward(model, adam, x, y).dispose();
    adam.step();
    expect(await adam.lossScaleStatus()).toEqual({ scale: 2 ** 16, t: 1, skipped: 0 });
    const before = { p: await flat(gpu, model.parameters.flatParams), s: await adam.readState() };

    backward(model, adam, x, y).dispose();
    // Force the overflow: one gradient infinite, as an f16 operand past 65504 makes it.
    const g = await flat(gpu, model.parameters.flatGrads);
    g[7] = Infinity;
    gpu.upload(model.parameters.flatGrads.view, g);
    adam.step();
    expect(await adam.lossScaleStatus()).toEqual({ scale: 2 ** 15, t: 1, skipped: 1 });
    expect(await flat(gpu, model.parameters.flatParams)).toEqual(before.p);
    const after = await adam.readState();
    expect(after.t).toBe(1);
    for (const [name, m] of before.s.m) expect(after.m.get(name), `m of ${name}`).toEqual(m);
    for (const [name, v] of before.s.v) expect(after.v.get(name), `v of ${name}`).toEqual(v);

    // A NaN is caught the same way; then a clean step goes through.
    g[3] = NaN;
    g[7] = 0;
    gpu.upload(model.parameters.flatGrads.view, g);
    adam.step();
    expect(await adam.lossScaleStatus()).toEqual({ scale: 2 ** 14, t: 1, skipped: 2 });
    backward(model, adam, x, y).dispose();
    adam.step();
    expect(await adam.lossScaleStatus()).toEqual({ scale: 2 ** 14, t: 2, skipped: 2 });
    expect(await flat(gpu, model.parameters.flatParams)).not.toEqual(before.p);
    for (const t of [adam, model, x, y]) t.dispose();
  });

  it('doubles the scale after `interval` clean steps, up to the maximum', async () => {
    const { x, y, model } = await setup(3);
    const adam = new Adam(model.parameters, { lr: 1e-4 }, { initial: 8, interval: 2, maxScale: 16 });
    const scales: number[] = [];
    for (let i = 0; i < 5; i++) {
      backward(model, adam, x, y).dispose();
      adam.step();
      scales.push((await adam.lossScaleStatus())!.scale);
    }
    expect(scales).toEqual([8, 16, 16, 16, 16]);
    expect((await adam.lossScaleStatus())!.t).toBe(5);
    for (const t of [adam, model, x, y]) t.dispose();
  });

  it('a clean scaled step updates as unscaled Adam does: the same moments, the weights within f32 rounding of lr_t', async () => {
    const a = await setup(4);
    const b = await setup(4);
    const plain = new Adam(a.model.parameters, { lr: 1e-3 });
    const scaled = new Adam(b.model.parameters, { lr: 1e-3 }, { initial: 2 ** 12 });
    const start = await flat(a.gpu, a.model.parameters.flatParams);
    backward(a.model, plain, a.x, a.y).dispose();
    plain.step();
    backward(b.model, scaled, b.x, b.y).dispose();
    scaled.step();
    // A power-of-two scale multiplies every gradient exactly and unscaling
    // divides it back exactly, so the moments agree to the bit.
    const [sa, sb] = [await plain.readState(), await scaled.readState()];
    for (const [name, m] of sa.m) expect(sb.m.get(name), `m of ${name}`).toEqual(m);
    for (const [name, v] of sa.v) expect(sb.v.get(name), `v of ${name}`).toEqual(v);
    // The scaled kernel forms lr_t in f32 from the bias corrections the state
    // keeps: at t = 1, and at 41 from corrections written in float64 on
    // resume, a few f32 roundings (relative error under 1e-6; over thousands
    // of steps the kept recurrence drifts to about 3e-5, docs/kernels.md). A
    // first step moves a weight by about lr; each result is then rounded to
    // f32 (half an ulp, on either side).
    const want = await flat(a.gpu, a.model.parameters.flatParams);
    const got = await flat(b.gpu, b.model.parameters.flatParams);
    let moved = 0;
    for (let i = 0; i < want.length; i++) {
      moved = Math.max(moved, Math.abs(want[i]! - start[i]!));
      const ulp = 2 ** (Math.floor(Math.log2(Math.max(Math.abs(want[i]!), 2 ** -126))) - 23);
      expect(Math.abs(got[i]! - want[i]!), `weight ${i}`).toBeLessThanOrEqual(1e-6 * 1e-3 + ulp);
    }
    expect(moved).toBeGreaterThan(5e-4); // the weights did move, by about lr

    // Resumed at step 40 (as from a checkpoint): the bias corrections start from t = 40 alike.
    const resumed = { ...sa, t: 40 };
    plain.loadState(resumed);
    scaled.loadState(resumed);
    a.gpu.upload(a.model.parameters.flatParams.view, want);
    b.gpu.upload(b.model.parameters.flatParams.view, want);
    backward(a.model, plain, a.x, a.y).dispose();
    plain.step();
    backward(b.model, scaled, b.x, b.y).dispose();
    scaled.step();
    expect((await scaled.lossScaleStatus())!.t).toBe(41);
    const want41 = await flat(a.gpu, a.model.parameters.flatParams);
    const got41 = await flat(b.gpu, b.model.parameters.flatParams);
    for (let i = 0; i < want41.length; i++) {
      const ulp = 2 ** (Math.floor(Math.log2(Math.max(Math.abs(want41[i]!), 2 ** -126))) - 23);
      expect(Math.abs(got41[i]! - want41[i]!), `weight ${i} at step 41`).toBeLessThanOrEqual(1e-6 * 1e-3 + ulp);
    }
    for (const t of [plain, scaled, a.model, a.x, a.y, b.model, b.x, b.y]) t.dispose();
  });

  it('goes on from a checkpoint as the uninterrupted run does: the same scale, clean-step count, skips and weights, to the bit', async () => {
    const { gpu, x, y, model } = await setup(6);
    const rule = { initial: 8, interval: 3, maxScale: 64 };
    const adam = new Adam(model.parameters, { lr: 1e-3 }, rule);
    const step = async (a: Adam, overflow = false) => {
      backward(model, a, x, y).dispose();
      if (overflow) {
        const g = await flat(gpu, model.parameters.flatGrads);
        g[5] = Infinity;
        gpu.upload(model.parameters.flatGrads.view, g);
      }
      a.step();
      return (await a.lossScaleStatus())!.scale;
    };
    // Two clean steps, a skipped one (scale 4, the clean run restarted), two clean: saved one step before the scale grows.
    for (const overflow of [false, false, true, false, false]) await step(adam, overflow);
    const meta: CheckpointMeta = {
      format: CHECKPOINT_FORMAT, version: 'test', config: model.config, normalization: { mean: 0, std: 1 },
      epoch: 1, step: 0, metrics: {}, adapter: 'test', createdAt: 'now',
    };
    const ckpt = decodeCheckpoint(await encodeCheckpoint(model, meta, adam), 'ckpt');
    expect(ckpt.adam!.t).toBe(4);
    expect(ckpt.adam!.lossScale).toMatchObject({ scale: 4, good: 2, skipped: 1 });
    const saved = await flat(gpu, model.parameters.flatParams);
    const run = async (a: Adam) => ({ scales: [await step(a), await step(a), await step(a)], status: await a.lossScaleStatus(), weights: await flat(gpu, model.parameters.flatParams) });
    const whole = await run(adam);
    expect(whole.scales).toEqual([8, 8, 8]);
    adam.dispose();

    const resumed = new Adam(model.parameters, { lr: 1e-3 }, rule);
    gpu.upload(model.parameters.flatParams.view, saved);
    resumed.loadState(ckpt.adam!);
    expect(await run(resumed)).toEqual(whole);
    // A checkpoint without the state (an older one) starts the scale afresh, as before: another run.
    gpu.upload(model.parameters.flatParams.view, saved);
    const { lossScale: _dropped, ...older } = ckpt.adam!;
    resumed.loadState(older);
    const afresh = await run(resumed);
    expect(afresh.scales).toEqual([8, 8, 16]);
    expect(afresh.status).toEqual({ scale: 16, t: 7, skipped: 0 });
    // A state the rule cannot hold is refused, naming the field.
    expect(() => resumed.loadState({ ...ckpt.adam!, lossScale: { ...ckpt.adam!.lossScale!, scale: 128 } })).toThrow(/Adam\.loadState \(lossScale\): the scale must lie in \[1, 64\]/);
    expect(() => resumed.loadState({ ...ckpt.adam!, lossScale: { ...ckpt.adam!.lossScale!, good: -1 } })).toThrow(/good and skipped must be integers/);
    expect(() => resumed.loadState({ ...ckpt.adam!, t: 40 })).toThrow(/the corrections do not belong to the step count/);
    expect(() => resumed.loadState({ ...ckpt.adam!, lossScale: { ...ckpt.adam!.lossScale!, good: 3 } })).toThrow(/good must be below the growth interval 3/);
    for (const t of [resumed, model, x, y]) t.dispose();
  });

  it('rejects an invalid rule, naming it', async () => {
    const { x, y, model } = await setup(5);
    expect(() => new Adam(model.parameters, {}, { backoff: 2 })).toThrow(/invalid loss scaling.*backoff/);
    for (const t of [model, x, y]) t.dispose();
  });
});
