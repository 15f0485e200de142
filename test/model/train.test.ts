/** Whole training steps of a tiny U-Net: memory stays flat, and Adam lowers the tutorial's loss. */
import { describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { createUNet, type UNet } from '../../src/model/unet.js';
import { Adam } from '../../src/model/adam.js';
import { Tape, Tensor, diceLoss } from '../../src/autograd/index.js';
import { blobBatch } from './blobs.js';

const SIZE = 16;
const BATCH = 4;

/** One tutorial training step: zero the gradients, forward, −Dice, backward, Adam; returns the loss. */
async function trainStep(unet: UNet, adam: Adam, x: Tensor, y: Tensor): Promise<number> {
  unet.parameters.zeroGrads();
  const tape = new Tape(unet.gpu);
  try {
    const loss = tape.run(() => diceLoss(unet.forward(x), y));
    tape.backward(loss);
    adam.step();
    return (await loss.read())[0]!;
  } finally {
    tape.dispose();
  }
}

describe('training a tiny U-Net', () => {
  it('keeps live GPU memory and buffer creation flat across steps', async () => {
    const gpu = await testGpu();
    const unet = createUNet(gpu, { baseWidth: 2, inputSize: SIZE, seed: 3 });
    const adam = new Adam(unet.parameters, { lr: 1e-3 });
    const { images, masks } = blobBatch(BATCH, SIZE, 1);
    const x = Tensor.from(gpu, [BATCH, SIZE, SIZE, 1], images);
    const y = Tensor.from(gpu, [BATCH, SIZE, SIZE, 1], masks);
    const after: { liveBytes: number; liveBuffers: number; created: number }[] = [];
    for (let step = 1; step <= 3; step++) {
      await trainStep(unet, adam, x, y);
      await gpu.sync();
      const m = gpu.memory();
      after.push({ liveBytes: m.liveBytes, liveBuffers: m.liveBuffers, created: m.created });
    }
    console.log(`memory after steps 1..3: ${after.map((m) => `${m.liveBuffers} buffers / ${m.liveBytes} B live, ${m.created} created`).join('; ')}`);
    expect(after[2]).toEqual(after[0]);
    x.dispose();
    y.dispose();
    adam.dispose();
    unet.dispose();
  });

  it('lowers −Dice on a fixed batch of synthetic blobs in 30 Adam steps', async () => {
    const gpu = await testGpu();
    // Width 4 rather than 2: at lr 1e-3, width 2 moves −Dice only from −0.309 to −0.326 in 30 steps.
    const unet = createUNet(gpu, { baseWidth: 4, inputSize: SIZE, seed: 1 });
    const adam = new Adam(unet.parameters, { lr: 1e-3 });
    const { images, masks } = blobBatch(BATCH, SIZE, 2);
    const x = Tensor.from(gpu, [BATCH, SIZE, SIZE, 1], images);
    const y = Tensor.from(gpu, [BATCH, SIZE, SIZE, 1], masks);
    const losses: number[] = [];
    for (let step = 0; step < 30; step++) losses.push(await trainStep(unet, adam, x, y));
    console.log(`−Dice over 30 steps: ${losses.map((l) => l.toFixed(3)).join(' ')}`);
    const first = losses[0]!;
    const last = losses.at(-1)!;
    expect(losses.every(Number.isFinite)).toBe(true);
    // Observed: −0.370 → −0.489, falling at every step.
    expect(last).toBeLessThan(first - 0.05);
    expect(losses.slice(10).every((l) => l < first)).toBe(true);
    expect(adam.t).toBe(30);
    x.dispose();
    y.dispose();
    adam.dispose();
    unet.dispose();
  });
});
