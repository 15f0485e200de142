/**
 * Frames in, masks out: what `predict` and `submit` do to the test frames,
 * for any gray frames. Each frame is resized to the model's input as in
 * training, normalised, and predicted (by `predict`'s own ensemble code:
 * one model or several, each view of test-time augmentation); its map is
 * resized back to the frame's own size (bilinear, pixel centres),
 * thresholded, and left empty when it covers fewer pixels than the minimum
 * area. At 580 × 420 the mask is the one `submit` encodes.
 */
import { DataError } from '../data/errors.js';
import { resizeStack } from '../data/prepare.js';
import { binarize } from '../data/postprocess.js';
import { resizeBilinear } from '../data/resize.js';
import { DEFAULT_MIN_AREA, DEFAULT_THRESHOLD } from '../data/submission.js';
import type { GrayImage } from '../data/tiff.js';
import type { CheckpointMeta } from './checkpoint.js';
import { type EnsembleMember, type TestTransform, ensembleMember, predictEnsemble } from './ensemble.js';
import type { UNet } from './unet.js';

/** How frames are prepared for a model and its maps made masks. */
export interface SegmentSettings {
  /** The training frames' mean and standard deviation after resizing. */
  mean: number;
  std: number;
  /** Whether the training frames were blurred before downsampling. */
  antiAlias: boolean;
  /** A pixel is nerve where its probability exceeds this. */
  threshold: number;
  /** Masks of fewer pixels than this (at the frame's size) are left empty. */
  minArea: number;
}

/**
 * The settings a checkpoint records: its normalisation and preparation, and
 * the threshold and minimum area chosen on validation data where it has them
 * (else 0.5 and 10, the pipeline's defaults); `overrides` replace any.
 */
export function segmentSettings(meta: CheckpointMeta, overrides: Partial<SegmentSettings> = {}): SegmentSettings {
  const settings = {
    ...meta.normalization,
    antiAlias: meta.antiAlias ?? false,
    threshold: meta.postprocess?.threshold ?? DEFAULT_THRESHOLD,
    minArea: meta.postprocess?.minArea ?? DEFAULT_MIN_AREA,
    // An override left undefined keeps the checkpoint's value.
    ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)),
  };
  checkSettings(settings);
  return settings;
}

function checkSettings(s: SegmentSettings): void {
  if (!Number.isFinite(s.mean)) throw new DataError(`segment: the mean must be a finite number, got ${s.mean}`);
  if (!(Number.isFinite(s.std) && s.std > 0)) throw new DataError(`segment: the std must be a positive number, got ${s.std}`);
  if (!(s.threshold > 0 && s.threshold < 1)) throw new DataError(`segment: the threshold must lie between 0 and 1, got ${s.threshold}`);
  if (!(Number.isInteger(s.minArea) && s.minArea >= 0)) throw new DataError(`segment: the minimum area must be a non-negative integer, got ${s.minArea}`);
}

/** One frame's result. */
export interface Segmentation {
  /** The model's probabilities, inputSize × inputSize, row-major. */
  probabilities: Float32Array;
  /** 1 where nerve, 0 elsewhere, at the frame's width × height, row-major. */
  mask: Uint8Array;
  /** Pixels of the mask that are 1. */
  area: number;
  width: number;
  height: number;
}

export interface SegmentOptions {
  /** Frames a batch (default 16). */
  batchSize?: number;
  /** Test-time views whose maps are averaged (TTA_CHOICES; default: the frame as it is). */
  tta?: readonly TestTransform[];
  /** Called as batches finish with the frames done and their total, over every view. */
  onProgress?: (done: number, total: number) => void;
}

/** Segments `frames` with `model`, prepared and post-processed as `settings` say (segmentSettings). */
export async function segmentFrames(model: UNet, frames: readonly GrayImage[], settings: SegmentSettings, options: SegmentOptions = {}): Promise<Segmentation[]> {
  checkSettings(settings);
  const batch = options.batchSize ?? 16;
  if (!(Number.isInteger(batch) && batch >= 1)) throw new DataError(`segmentFrames: the batch size must be a positive integer, got ${batch}`);
  return segmentWith([ensembleMember(model, settings, batch)], model.config.inputSize, frames, settings, options);
}

/**
 * segmentFrames for an ensemble (each member with its own normalisation,
 * all of input `size`): the maps averaged over members and views, as
 * `predict` averages them, then made masks.
 */
export async function segmentWith(members: EnsembleMember[], size: number, frames: readonly GrayImage[], post: Pick<SegmentSettings, 'antiAlias' | 'threshold' | 'minArea'>, options: Pick<SegmentOptions, 'tta' | 'onProgress'> = {}): Promise<Segmentation[]> {
  const px = size * size;
  const resized = new Uint8Array(frames.length * px);
  frames.forEach((f, i) => {
    if (!(Number.isInteger(f.width) && Number.isInteger(f.height) && f.width >= 1 && f.height >= 1) || f.data.length !== f.width * f.height) {
      throw new DataError(`segmentFrames: frame ${i} has ${f.data.length} pixels for ${f.width} × ${f.height}`);
    }
    resized.set(resizeStack(f.data, 1, f.width, f.height, size, { antiAlias: post.antiAlias }), i * px);
  });
  if (frames.length === 0) return [];
  const probs = await predictEnsemble(members, resized, frames.length, size, [...(options.tta ?? ['identity'])], options.onProgress);
  return frames.map(({ width, height }, i) => {
    const probabilities = probs.slice(i * px, (i + 1) * px);
    const mask = binarize(resizeBilinear(probabilities, size, size, width, height), post.threshold, post.minArea);
    let area = 0;
    for (const v of mask) area += v;
    return { probabilities, mask, area, width, height };
  });
}
