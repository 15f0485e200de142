/**
 * Reading the training caches that `npm run data` writes (src/data/dataset.ts
 * describes them), checked for type and shape, for the commands that train
 * on them or score against them.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../data/errors.js';
import { decodeNpy } from '../data/npy.js';
import { readBytes } from './files.js';

/** A uint8 (N, height, width) cache: imgs_train.npy or imgs_mask_train.npy. */
export function loadFrameCache(dir: string, file: string): { data: Uint8Array; shape: number[] } {
  const path = join(dir, file);
  const arr = decodeNpy(readBytes(path, 'data cache'), path);
  if (arr.dtype !== 'uint8' || arr.shape.length !== 3) {
    throw new DataError(`${path}: expected uint8 frames of shape (N, height, width), got ${arr.dtype} (${arr.shape.join(', ')}); rebuild it with npm run data`);
  }
  return { data: arr.data as Uint8Array, shape: arr.shape };
}

/** imgs_train_index.npy: [subject, frame] of each of the cache's `rows` rows. */
export function loadTrainIndex(dir: string, rows: number): Int32Array {
  const path = join(dir, 'imgs_train_index.npy');
  if (!existsSync(path)) throw new DataError(`${path}: missing; the subject of each frame is needed: rebuild the caches with npm run data (caches from before the index was kept lack it)`);
  const arr = decodeNpy(readBytes(path, 'data cache'), path);
  if (arr.dtype !== 'int32' || arr.shape.join() !== `${rows},2`) {
    throw new DataError(`${path}: expected int32 (${rows}, 2), the subject and frame of each row, got ${arr.dtype} (${arr.shape.join(', ')}); rebuild the caches with npm run data`);
  }
  return arr.data as Int32Array;
}

/** The training frames, their masks and their subjects. */
export interface TrainingFrames {
  images: Uint8Array;
  masks: Uint8Array;
  index: Int32Array;
  count: number;
  width: number;
  height: number;
}

export function loadTrainingFrames(dir: string): TrainingFrames {
  for (const file of ['imgs_train.npy', 'imgs_mask_train.npy']) {
    if (!existsSync(join(dir, file))) throw new DataError(`${join(dir, file)}: missing; build the caches with npm run data`);
  }
  const images = loadFrameCache(dir, 'imgs_train.npy');
  const masks = loadFrameCache(dir, 'imgs_mask_train.npy');
  if (masks.shape.join() !== images.shape.join()) {
    throw new DataError(`${dir}: imgs_train.npy (${images.shape.join(', ')}) and imgs_mask_train.npy (${masks.shape.join(', ')}) differ in shape; rebuild them with npm run data`);
  }
  const [count, height, width] = images.shape as [number, number, number];
  return { images: images.data, masks: masks.data, index: loadTrainIndex(dir, count), count, width, height };
}
