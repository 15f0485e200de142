/**
 * Test-time augmentation and ensembles: the probability maps of several
 * models (the k fold models), each on the frames as they are and, with
 * test-time augmentation, on transformed views whose maps are mapped back,
 * averaged. Two kinds of view:
 * - shifts: the frame moved a sixteenth of its side left, right, up and down
 *   (edge pixels repeated). They respect the anatomy, move the frame against
 *   the U-Net's four pooling grids, and match the shifts of the training
 *   augmentation;
 * - the lateral mirror: what the probe sees on the other arm. A model that
 *   learned where the nerve usually lies (off-centre) is asked about an
 *   image it never saw, so it helps only a model trained with mirrors
 *   (train --augment flip=0.5). An ultrasound frame is never mirrored in
 *   depth: the skin is at the top, echoes weaken with depth, shadows fall
 *   below what casts them.
 */
import { DataError } from '../data/errors.js';
import { normalize } from '../data/prepare.js';
import { predictProbabilities } from './trainer.js';
import type { UNet } from './unet.js';

/** One model of an ensemble: its normalisation, and a prediction of normalised frames (count × size × size) to maps. */
export interface EnsembleMember {
  mean: number;
  std: number;
  /** `onProgress(done)`: frames of this pass done so far. */
  predict(images: Float32Array, count: number, onProgress?: (done: number) => void): Promise<Float32Array>;
}

/** A loaded model as a member of an ensemble, with its training frames' normalisation, predicting in batches of `batch`. */
export function ensembleMember(model: UNet, norm: { mean: number; std: number }, batch: number): EnsembleMember {
  return { mean: norm.mean, std: norm.std, predict: (images, count, onProgress) => predictProbabilities(model, images, count, model.config.inputSize, batch, onProgress) };
}

/** The views averaged at test time: the frame as it is, shifted one way, or mirrored. */
export type TestTransform = 'identity' | 'left' | 'right' | 'up' | 'down' | 'mirror';

/** The choices of --tta and the views each averages. */
export const TTA_CHOICES: Record<string, TestTransform[]> = {
  none: ['identity'],
  shift: ['identity', 'left', 'right', 'up', 'down'],
  mirror: ['identity', 'mirror'],
  'shift+mirror': ['identity', 'left', 'right', 'up', 'down', 'mirror'],
};

/** Pixels a shifted view moves: a sixteenth of the side, at least one. */
export function shiftPixels(size: number): number {
  return Math.max(1, Math.round(size / 16));
}

/**
 * count maps of size × size moved by (dx, dy) pixels: out[y][x] =
 * in[y − dy][x − dx], coordinates clamped to the map (the edge repeated).
 */
export function shiftMaps(maps: Float32Array, count: number, size: number, dx: number, dy: number): Float32Array {
  if (maps.length !== count * size * size) throw new DataError(`shiftMaps: ${maps.length} values are not ${count} maps of ${size} × ${size}`);
  const out = new Float32Array(maps.length);
  const clamp = (v: number) => Math.min(size - 1, Math.max(0, v));
  for (let n = 0; n < count; n++) {
    const base = n * size * size;
    for (let y = 0; y < size; y++) {
      const from = base + clamp(y - dy) * size;
      const to = base + y * size;
      for (let x = 0; x < size; x++) out[to + x] = maps[from + clamp(x - dx)]!;
    }
  }
  return out;
}

/** count maps of size × size, each mirrored left to right (its own inverse). */
export function mirrorLateral(maps: Float32Array, count: number, size: number): Float32Array {
  if (maps.length !== count * size * size) throw new DataError(`mirrorLateral: ${maps.length} values are not ${count} maps of ${size} × ${size}`);
  const out = new Float32Array(maps.length);
  for (let row = 0; row < count * size; row++) {
    const at = row * size;
    for (let x = 0; x < size; x++) out[at + x] = maps[at + size - 1 - x]!;
  }
  return out;
}

/**
 * The mean over members and transforms of the predicted maps of `frames`
 * (count × size × size resized uint8 frames, normalised per member).
 * `onProgress(done, total)` counts frames over all the passes.
 */
export async function predictEnsemble(
  members: EnsembleMember[],
  frames: Uint8Array,
  count: number,
  size: number,
  transforms: TestTransform[] = ['identity'],
  onProgress?: (done: number, total: number) => void,
): Promise<Float32Array> {
  if (members.length === 0) throw new DataError('predictEnsemble: no models');
  if (transforms.length === 0) throw new DataError('predictEnsemble: no transforms');
  if (frames.length !== count * size * size) throw new DataError(`predictEnsemble: ${frames.length} pixels are not ${count} frames of ${size} × ${size}`);
  const sum = new Float64Array(count * size * size);
  const passes = members.length * transforms.length;
  let pass = 0;
  for (const member of members) {
    const images = normalize(frames, member.mean, member.std);
    for (const transform of transforms) {
      const view = applyView(transform, images, count, size, false);
      const before = pass * count;
      const predicted = await member.predict(view, count, (done) => onProgress?.(before + done, passes * count));
      const maps = applyView(transform, predicted, count, size, true);
      for (let i = 0; i < sum.length; i++) sum[i]! += maps[i]!;
      pass++;
    }
  }
  return Float32Array.from(sum, (v) => v / passes);
}

/** One view of count maps, or with `back` the map of a view returned to the frame's own coordinates. */
function applyView(transform: TestTransform, maps: Float32Array, count: number, size: number, back: boolean): Float32Array {
  const d = shiftPixels(size) * (back ? -1 : 1);
  switch (transform) {
    case 'identity':
      return maps;
    case 'mirror':
      return mirrorLateral(maps, count, size);
    case 'left':
      return shiftMaps(maps, count, size, -d, 0);
    case 'right':
      return shiftMaps(maps, count, size, d, 0);
    case 'up':
      return shiftMaps(maps, count, size, 0, -d);
    case 'down':
      return shiftMaps(maps, count, size, 0, d);
  }
}
