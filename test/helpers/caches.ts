/**
 * Training caches for CLI tests: `n` frames of h × w with a bright ellipse
 * in every other one (moving down frame by frame), its mask, and textured
 * background, written as imgs_train.npy and imgs_mask_train.npy in `dir`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeNpy } from '../../src/data/npy.js';

export function writeEllipseCaches(dir: string, n: number, h: number, w: number): void {
  const imgs = new Uint8Array(n * h * w);
  const masks = new Uint8Array(n * h * w);
  for (let i = 0; i < n; i++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const inside = i % 2 === 0 && ((y - (0.42 * h + i)) / (0.21 * h)) ** 2 + ((x - 0.47 * w) / (0.22 * w)) ** 2 < 1;
        imgs[(i * h + y) * w + x] = (inside ? 180 : 60) + ((x * 7 + y * 13 + i) % 40);
        masks[(i * h + y) * w + x] = inside ? 255 : 0;
      }
    }
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'imgs_train.npy'), encodeNpy(imgs, [n, h, w]));
  writeFileSync(join(dir, 'imgs_mask_train.npy'), encodeNpy(masks, [n, h, w]));
}
