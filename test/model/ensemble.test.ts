import { describe, expect, it } from 'vitest';
import { mirrorLateral, predictEnsemble, type EnsembleMember } from '../../src/model/ensemble.js';

describe('test-time augmentation and ensembles', () => {
  it('mirrors each map left to right, and twice gives it back', () => {
    const maps = Float32Array.from({ length: 2 * 3 * 3 }, (_, i) => i);
    expect(Array.from(mirrorLateral(maps, 2, 3))).toEqual([2, 1, 0, 5, 4, 3, 8, 7, 6, 11, 10, 9, 14, 13, 12, 17, 16, 15]);
    expect(mirrorLateral(mirrorLateral(maps, 2, 3), 2, 3)).toEqual(maps);
    expect(() => mirrorLateral(maps, 3, 3)).toThrow(/18 values are not 3 maps of 3 × 3/);
  });

  it('averages each member on its own normalisation, over the views, each mapped back', async () => {
    const size = 4;
    const count = 2;
    const frames = Uint8Array.from({ length: count * size * size }, (_, i) => (i * 37) % 251);
    // A "model" that is not mirror-symmetric: each pixel's map value is its input plus a ramp across the row.
    const ramp = (images: Float32Array, k: number) => images.map((v, i) => v * k + (i % size));
    const calls: number[] = [];
    const members: EnsembleMember[] = [
      { mean: 10, std: 2, predict: async (images, n, onProgress) => (calls.push(n), onProgress?.(n), ramp(images, 1)) },
      { mean: 0, std: 4, predict: async (images) => ramp(images, 3) },
    ];
    const progress: number[] = [];
    const got = await predictEnsemble(members, frames, count, size, ['identity', 'mirror'], (done) => progress.push(done));
    for (let i = 0; i < got.length; i++) {
      const x = i % size;
      const a = (frames[i]! - 10) / 2;
      const b = (frames[i]! - 0) / 4;
      // The mirrored view's ramp runs the other way once mapped back.
      const want = ((a + x) + (a + (size - 1 - x)) + (3 * b + x) + (3 * b + (size - 1 - x))) / 4;
      expect(got[i]).toBeCloseTo(want, 5);
    }
    expect(calls).toEqual([count, count]);
    expect(progress).toEqual([2, 4]);
    const alone = await predictEnsemble([members[1]!], frames, count, size);
    expect(alone).toEqual(Float32Array.from(ramp(Float32Array.from(frames, (v) => v / 4), 3)));
    await expect(predictEnsemble([], frames, count, size)).rejects.toThrow(/no models/);
  });
});
