/** fit, the epoch loop the CLI and the browser page share. */
import { describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { blobBatch } from './blobs.js';
import { createUNet } from '../../src/model/unet.js';
import { Adam } from '../../src/model/adam.js';
import { Trainer } from '../../src/model/trainer.js';
import { type EpochLog, cosineSchedule, fit } from '../../src/model/fit.js';
import { Rng, shuffle } from '../../src/model/rng.js';

const SIZE = 16;

describe('fit', () => {
  it('trains epoch by epoch on the rows the generator shuffles, scores validation, and reports each epoch before the next', async () => {
    const gpu = await testGpu();
    const b = blobBatch(12, SIZE, 5);
    const set = { images: b.images, masks: b.masks, count: 12, size: SIZE };
    const trainRows = Int32Array.from({ length: 8 }, (_, i) => i);
    const valRows = [8, 9, 10, 11];
    const run = async (stopAfterSteps: number) => {
      const model = createUNet(gpu, { baseWidth: 2, inputSize: SIZE, seed: 3 });
      const adam = new Adam(model.parameters, { lr: 1e-3 });
      const trainer = new Trainer(model, adam, 4);
      const entries: EpochLog[] = [];
      const started: number[] = [];
      let steps = 0;
      const result = await fit(trainer, {
        set, trainRows, valRows, epochs: 3, firstEpoch: 2, rng: new Rng(7),
        onEpochStart: (epoch) => {
          started.push(epoch);
          return () => steps++;
        },
        onEpochEnd: async (entry, progress) => {
          entries.push(entry);
          expect(progress.steps).toBe(adam.t);
          // The next epoch waits for this one's report.
          await new Promise((r) => setTimeout(r, 5));
          expect(started.at(-1)).toBe(entry.epoch);
        },
        shouldStop: () => steps >= stopAfterSteps,
      });
      const valLoss = (await trainer.evaluate(set, valRows)).loss;
      model.dispose();
      adam.dispose();
      return { result, entries, started, steps, valLoss };
    };
    const whole = await run(Infinity);
    expect(whole.result).toEqual({ lastEpoch: 3, interrupted: null });
    expect(whole.started).toEqual([2, 3]);
    expect(whole.entries.map((e) => e.epoch)).toEqual([2, 3]);
    expect(whole.steps).toBe(4);
    for (const e of whole.entries) {
      expect(e.dice).toBe(-e.loss);
      expect(e.val_dice).toBe(-e.val_loss);
      expect(e.seconds).toBeGreaterThan(0);
      expect(e.loss_scale).toBeUndefined();
    }
    // The last epoch's validation figure is the model's as it ends.
    expect(whole.entries.at(-1)!.val_loss).toBeCloseTo(whole.valLoss, 6);
    // A stop as epoch 3 begins ends the run without reporting it (steps are
    // reported one step late, so after epoch 2 the count is 2).
    const cut = await run(2);
    expect(cut.result).toEqual({ lastEpoch: 2, interrupted: 3 });
    expect(cut.entries.map((e) => e.epoch)).toEqual([2]);
    // Each epoch trains on the rows in the order the generator gives.
    const rng = new Rng(7);
    const first = shuffle(Int32Array.from(trainRows), rng);
    expect(Array.from(first).sort((x, y) => x - y)).toEqual(Array.from(trainRows));
  });
});

describe('cosineSchedule', () => {
  it('starts at the learning rate and decays to nearly 0 by the last epoch, never below', () => {
    const at = cosineSchedule(1e-3, 10);
    expect(at(1)).toBe(1e-3);
    expect(at(6)).toBeCloseTo(0.5e-3, 12);
    const values = Array.from({ length: 10 }, (_, i) => at(i + 1));
    for (let i = 1; i < 10; i++) expect(values[i]!).toBeLessThan(values[i - 1]!);
    expect(values[9]!).toBeGreaterThan(0);
    expect(values[9]!).toBeLessThan(0.03e-3);
    // With warm-up: a linear rise to the learning rate, then the same decay over the epochs left.
    const warm = cosineSchedule(1e-3, 10, 3);
    expect([1, 2, 3, 4].map(warm)).toEqual([0.25e-3, 0.5e-3, 0.75e-3, 1e-3]);
    expect(warm(10)).toBeLessThan(warm(9));
  });
});
