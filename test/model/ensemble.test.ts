import { describe, expect, it } from 'vitest';
import { mirrorLateral, predictEnsemble, shiftMaps, shiftPixels, TTA_CHOICES, type EnsembleMember } from '../../src/model/ensemble.js';

describe('test-time augmentation and ensembles', () => {
  it('mirrors each map left to right, and twice gives it back', () => {
    const maps = Float32Array.from({ length: 2 * 3 * 3 }, (_, i) => i);
    expect(Array.from(mirrorLateral(maps, 2, 3))).toEqual([2, 1, 0, 5, 4, 3, 8, 7, 6, 11, 10, 9, 14, 13, 12, 17, 16, 15]);
    expect(mirrorLateral(mirrorLateral(maps, 2, 3), 2, 3)).toEqual(maps);
    expect(() => mirrorLateral(maps, 3, 3)).toThrow(/18 values are not 3 maps of 3 × 3/);
  });

  it('shifts each map with its edge repeated, and back again except where the edge was lost', () => {
    // Two 3 × 3 maps: 0..8 and 9..17, row-major.
    const maps = Float32Array.from({ length: 2 * 3 * 3 }, (_, i) => i);
    // Moved one right: each row's first value repeated, its last dropped.
    expect(Array.from(shiftMaps(maps, 2, 3, 1, 0))).toEqual([0, 0, 1, 3, 3, 4, 6, 6, 7, 9, 9, 10, 12, 12, 13, 15, 15, 16]);
    // Moved one up: the rows below come up, the last row repeated.
    expect(Array.from(shiftMaps(maps, 2, 3, 0, -1))).toEqual([3, 4, 5, 6, 7, 8, 6, 7, 8, 12, 13, 14, 15, 16, 17, 15, 16, 17]);
    // There and back restores every pixel not within the shift of the edge it left.
    const back = shiftMaps(shiftMaps(maps, 2, 3, -1, 1), 2, 3, 1, -1);
    for (let n = 0; n < 2; n++) for (let y = 0; y < 2; y++) for (let x = 1; x < 3; x++) expect(back[n * 9 + y * 3 + x]).toBe(maps[n * 9 + y * 3 + x]);
    expect(() => shiftMaps(maps, 1, 3, 1, 0)).toThrow(/18 values are not 1 maps of 3 × 3/);
    expect([shiftPixels(8), shiftPixels(48), shiftPixels(96)]).toEqual([1, 3, 6]);
  });

  it('maps each shifted view back, so that a model that commutes with shifts sees no change inside the frame', async () => {
    const size = 32;
    const count = 2;
    const frames = Uint8Array.from({ length: count * size * size }, (_, i) => (i * 53) % 241);
    // A pointwise "model" commutes with shifts: averaged over the shifted views,
    // each map equals the plain one wherever no view moved the pixel off the frame.
    const pointwise: EnsembleMember = { mean: 0, std: 1, predict: async (images) => images.map((v) => v / 255) };
    const got = await predictEnsemble([pointwise], frames, count, size, TTA_CHOICES.shift!);
    const d = shiftPixels(size);
    for (let n = 0; n < count; n++) {
      for (let y = d; y < size - d; y++) {
        for (let x = d; x < size - d; x++) {
          const i = n * size * size + y * size + x;
          expect(got[i]).toBeCloseTo(frames[i]! / 255, 6);
        }
      }
    }
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
