/** Synthetic segmentation batches for model tests: bright noisy disks and their soft masks. */
import { Rng } from '../../src/model/rng.js';

export interface BlobBatch {
  /** [n, size, size, 1], roughly zero mean, unit variance. */
  images: Float32Array;
  /** [n, size, size, 1] in [0, 1]: 1 inside the disk, soft at its edge. */
  masks: Float32Array;
}

export function blobBatch(n: number, size: number, seed: number): BlobBatch {
  const rng = new Rng(seed);
  const images = new Float32Array(n * size * size);
  const masks = new Float32Array(n * size * size);
  for (let b = 0; b < n; b++) {
    const r = size * (0.15 + 0.15 * rng.next());
    const cy = r + (size - 2 * r) * rng.next();
    const cx = r + (size - 2 * r) * rng.next();
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const i = (b * size + y) * size + x;
        const d = Math.hypot(y + 0.5 - cy, x + 0.5 - cx);
        const m = Math.min(1, Math.max(0, r + 0.5 - d)); // 1 inside, linear ramp over one pixel
        masks[i] = m;
        images[i] = 1.5 * m - 0.5 + 0.4 * (rng.next() - 0.5);
      }
    }
  }
  return { images, masks };
}
