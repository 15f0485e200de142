/**
 * Test-time augmentation and ensembles: the probability maps of several
 * models (the k fold models), each on the frames as they are and, with
 * test-time augmentation, mirrored left to right, averaged. Only the lateral
 * mirror is used: an ultrasound frame is not symmetric in depth (the skin is
 * at the top, echoes weaken with depth, shadows fall below what casts them),
 * while a frame mirrored across is what the probe sees on the other arm.
 */
import { DataError } from '../data/errors.js';
import { normalize } from '../data/prepare.js';

/** One model of an ensemble: its normalisation, and a prediction of normalised frames (count × size × size) to maps. */
export interface EnsembleMember {
  mean: number;
  std: number;
  /** `onProgress(done)`: frames of this pass done so far. */
  predict(images: Float32Array, count: number, onProgress?: (done: number) => void): Promise<Float32Array>;
}

/** The transforms averaged at test time. */
export type TestTransform = 'identity' | 'mirror';

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
      const input = transform === 'mirror' ? mirrorLateral(images, count, size) : images;
      const before = pass * count;
      let maps = await member.predict(input, count, (done) => onProgress?.(before + done, passes * count));
      if (transform === 'mirror') maps = mirrorLateral(maps, count, size);
      for (let i = 0; i < sum.length; i++) sum[i]! += maps[i]!;
      pass++;
    }
  }
  return Float32Array.from(sum, (v) => v / passes);
}
