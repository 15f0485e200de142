/**
 * The U-Net in mixed precision against fp32 on the same adapter: gradients of
 * one batch, an f16 overflow that the loss scale catches, and short training
 * runs of a few seeds. Runs where the adapter has f16 subgroup matrices (the
 * sandbox, GPUs); WGSL_UNET_REQUIRE_MIXED=1 makes their absence a failure.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { blobBatch } from '../model/blobs.js';
import { createUNet, type UNet } from '../../src/model/unet.js';
import { Adam } from '../../src/model/adam.js';
import { Trainer, type ImageSet, type TrainingLoss, trainingLoss } from '../../src/model/trainer.js';
import { Tape, Tensor } from '../../src/autograd/index.js';
import { canRunMixed, setPrecision } from '../../src/ops/conv/index.js';

const SIZE = 16;
const required = process.env.WGSL_UNET_REQUIRE_MIXED === '1';
const gpu = await testGpu();

function gradients(model: UNet, adam: Adam, x: Tensor, y: Tensor, kind: TrainingLoss = 'dice'): Promise<Float32Array> {
  model.parameters.zeroGrads();
  const tape = new Tape(gpu);
  const loss = tape.run(() => trainingLoss(model.forward(x), y, kind));
  tape.backward(loss, adam.lossScaleSeed());
  tape.dispose();
  loss.dispose();
  return gpu.readFloat32(model.parameters.flatGrads.view);
}

describe.runIf(canRunMixed(gpu) || required)('the U-Net in mixed precision', () => {
  afterEach(() => setPrecision(gpu, 'fp32'));

  // The tutorial's model, and the variant with ELU and dropout (one mask for
  // both precisions). Not batch normalisation: it subtracts each channel's
  // mean, so an operand's rounding counts relative to the spread left, not to
  // the value, and the bound below does not hold for it (its kernels' f16
  // forms are checked in f16-storage.test.ts).
  for (const variant of [{}, { activation: 'elu', dropout: 0.5 }] as const) {
    const name = 'dropout' in variant ? ' (ELU and dropout)' : '';
    it(`gives the gradients of fp32 within f16 rounding, tensor by tensor${name}`, async () => {
      const b = blobBatch(4, SIZE, 1);
      const x = Tensor.from(gpu, [4, SIZE, SIZE, 1], b.images);
      const y = Tensor.from(gpu, [4, SIZE, SIZE, 1], b.masks);
      const model = createUNet(gpu, { baseWidth: 4, inputSize: SIZE, seed: 3, ...variant });
      const plain = new Adam(model.parameters, {});
      const scaled = new Adam(model.parameters, {}, { initial: 2 ** 12 });
      const want = await gradients(model, plain, x, y);
      setPrecision(gpu, 'mixed');
      const got = (await gradients(model, scaled, x, y)).map((g) => g / 2 ** 12);
      // Each of the 23 convolutions rounds its operands to f16 (relative 2⁻¹¹ each)
      // on the way forward and again on the way back; the errors of ~46 GEMMs in a
      // row add up, in the worst case, to about 46 · 2 · 2⁻¹¹ ≈ 4.5 % of a tensor's
      // scale. The L2 error of each gradient tensor must stay below that (ELU,
      // like ReLU, does not enlarge an error; dropout scales by 2, exactly).
      const bound = 46 * 2 * 2 ** -11;
      let worst = 0;
      for (const p of model.parameters.params) {
        let num = 0;
        let den = 0;
        for (let i = p.offset; i < p.offset + p.size; i++) {
          num += (got[i]! - want[i]!) ** 2;
          den += want[i]! ** 2;
        }
        const rel = Math.sqrt(num / den);
        expect(rel, `${p.name}: relative L2 error ${rel}`).toBeLessThan(bound);
        worst = Math.max(worst, rel);
      }
      console.log(`mixed U-Net gradients${name}: worst relative L2 error of a tensor ${worst.toExponential(2)} (bound ${bound.toExponential(2)})`);
      for (const t of [plain, scaled, model, x, y]) t.dispose();
    });
  }

  it('skips the step when an f16 operand overflows, and halves the scale', async () => {
    const b = blobBatch(4, SIZE, 2);
    const x = Tensor.from(gpu, [4, SIZE, SIZE, 1], b.images);
    const y = Tensor.from(gpu, [4, SIZE, SIZE, 1], b.masks);
    const model = createUNet(gpu, { baseWidth: 4, inputSize: SIZE, seed: 2 });
    // A scale far past f16's largest value (65504): the scaled loss gradient overflows as an operand.
    const adam = new Adam(model.parameters, { lr: 1e-3 }, { initial: 2 ** 40, maxScale: 2 ** 40 });
    setPrecision(gpu, 'mixed');
    const before = await gpu.readFloat32(model.parameters.flatParams.view);
    await gradients(model, adam, x, y);
    adam.step();
    expect(await adam.lossScaleStatus()).toEqual({ scale: 2 ** 39, t: 0, skipped: 1 });
    expect(await gpu.readFloat32(model.parameters.flatParams.view)).toEqual(before);
    for (const t of [adam, model, x, y]) t.dispose();
  });

  it('gives the cross-entropy\'s gradient of fp32 from saturated maps, without an overflow', async () => {
    // An output bias of −30 starts every probability near 1e-13, far under the
    // cross-entropy's clip: its gradient there is ~1e13 / n per pixel, which
    // the sigmoid's backward must bring down to (p − y) / n before any f16
    // operand sees it. The last bias's gradient is then the mean of p − y.
    const b = blobBatch(4, SIZE, 6);
    const x = Tensor.from(gpu, [4, SIZE, SIZE, 1], b.images);
    const y = Tensor.from(gpu, [4, SIZE, SIZE, 1], b.masks);
    const model = createUNet(gpu, { baseWidth: 4, inputSize: SIZE, seed: 7, outputBias: -30 });
    const plain = new Adam(model.parameters, {});
    const scaled = new Adam(model.parameters, {}, { initial: 2 ** 12 });
    const want = await gradients(model, plain, x, y, 'bce-dice');
    setPrecision(gpu, 'mixed');
    const got = (await gradients(model, scaled, x, y, 'bce-dice')).map((g) => g / 2 ** 12);
    const last = model.parameters.params.at(-1)!;
    expect(last.name).toMatch(/bias$/);
    const meanPMinusY = -b.masks.reduce((s, v) => s + v, 0) / b.masks.length; // p ≈ 1e-13
    console.log(`bce-dice from saturated maps: last bias gradient fp32 ${want[last.offset]}, mixed ${got[last.offset]}, mean (p − y) ${meanPMinusY}`);
    expect(got.every(Number.isFinite)).toBe(true);
    expect(want[last.offset]!).toBeCloseTo(meanPMinusY, 5);
    expect(Math.abs(got[last.offset]! - want[last.offset]!)).toBeLessThan(1e-3 * Math.abs(meanPMinusY));
    for (const t of [plain, scaled, model, x, y]) t.dispose();
  });

  it('trains, with loss scaling, exactly as when every step is recorded op by op (replayed steps)', async () => {
    const b = blobBatch(12, SIZE, 4);
    const set: ImageSet = { images: b.images, masks: b.masks, count: 12, size: SIZE };
    const rows = Int32Array.from({ length: 12 }, (_, i) => i);
    setPrecision(gpu, 'mixed');
    const run = async (enabled: boolean) => {
      gpu.replayEnabled = enabled;
      const model = createUNet(gpu, { baseWidth: 4, inputSize: SIZE, seed: 5 });
      const adam = new Adam(model.parameters, { lr: 3e-3 }, true);
      const trainer = new Trainer(model, adam, 8);
      const losses: number[] = [];
      for (let epoch = 1; epoch <= 3; epoch++) losses.push((await trainer.trainEpoch(set, rows, epoch)).loss);
      const out = { losses, weights: await gpu.readFloat32(model.parameters.flatParams.view), scale: await adam.lossScaleStatus() };
      model.dispose();
      adam.dispose();
      return out;
    };
    const traced = await run(false);
    const replayed = await run(true);
    gpu.replayEnabled = true;
    expect(replayed.losses).toEqual(traced.losses);
    expect(replayed.scale).toEqual(traced.scale);
    expect(replayed.weights).toEqual(traced.weights);
  });

  it('trains to the validation Dice of fp32, within the spread of three seeds', async () => {
    const train = blobBatch(32, SIZE, 10);
    const val = blobBatch(16, SIZE, 11);
    const set: ImageSet = {
      images: new Float32Array([...train.images, ...val.images]), masks: new Float32Array([...train.masks, ...val.masks]), count: 48, size: SIZE,
    };
    const trainRows = Int32Array.from({ length: 32 }, (_, i) => i);
    const valRows = Int32Array.from({ length: 16 }, (_, i) => 32 + i);
    const dice: Record<'fp32' | 'mixed', number[]> = { fp32: [], mixed: [] };
    for (const seed of [1, 2, 3]) {
      for (const precision of ['fp32', 'mixed'] as const) {
        setPrecision(gpu, precision);
        const model = createUNet(gpu, { baseWidth: 4, inputSize: SIZE, seed });
        const adam = new Adam(model.parameters, { lr: 3e-3 }, precision === 'mixed');
        const trainer = new Trainer(model, adam, 8);
        for (let epoch = 1; epoch <= 6; epoch++) await trainer.trainEpoch(set, trainRows, epoch);
        dice[precision].push((await trainer.evaluate(set, valRows)).dice);
        model.dispose();
        adam.dispose();
      }
    }
    const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    const spread = Math.max(...dice.fp32) - Math.min(...dice.fp32);
    console.log(`validation Dice after 6 epochs, seeds 1–3: fp32 ${dice.fp32.map((d) => d.toFixed(4)).join(' ')}, mixed ${dice.mixed.map((d) => d.toFixed(4)).join(' ')}`);
    expect(Math.max(...dice.fp32)).toBeGreaterThan(0.3); // the runs do learn
    expect(Math.abs(mean(dice.mixed) - mean(dice.fp32))).toBeLessThanOrEqual(Math.max(spread, 0.01));
  });
});
