/**
 * A GPU lost in the middle of training: the epoch stops with a GpuError that
 * says so and names the work in flight, instead of hanging or training on.
 * The run folder's files are written only at the end of an epoch, so the CLI
 * keeps the last good checkpoint (test/cli/faults.test.ts kills mid-epoch).
 * Its own device, since this one is destroyed.
 */
import { describe, expect, it } from 'vitest';
import { createNodeGpu } from '../../src/gpu/node-gpu.js';
import { GpuError } from '../../src/gpu/errors.js';
import { createUNet } from '../../src/model/unet.js';
import { Adam } from '../../src/model/adam.js';
import { Trainer, type ImageSet } from '../../src/model/trainer.js';
import { blobBatch } from './blobs.js';

describe('a GPU lost during training', () => {
  it('stops the epoch with a GpuError naming the loss and the work it hit', async () => {
    const gpu = await createNodeGpu();
    const SIZE = 16;
    const b = blobBatch(16, SIZE, 3);
    const set: ImageSet = { images: b.images, masks: b.masks, count: 16, size: SIZE };
    const model = createUNet(gpu, { baseWidth: 2, inputSize: SIZE });
    const adam = new Adam(model.parameters, { lr: 1e-3 });
    const trainer = new Trainer(model, adam, 4);
    const rows = Int32Array.from({ length: 16 }, (_, i) => i);
    await trainer.trainEpoch(set, rows, 1); // a whole epoch first
    const err = await trainer.trainEpoch(set, rows, 2, (r) => {
      if (r.step === 1) gpu.device.destroy();
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GpuError);
    console.log(`after the device was destroyed: ${(err as Error).message.split('\n').slice(0, 3).join(' / ')}`);
    expect((err as Error).message).toMatch(/^GPU device lost \(destroyed\): .*; the work in flight: \w+/);
    expect((err as GpuError).dispatches.length).toBeGreaterThan(0);
    await gpu.close();
  });
});
