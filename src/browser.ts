/**
 * The browser entry point: the engine on navigator.gpu, the model, training,
 * checkpoints and the data layer, plus the few steps a page needs around them
 * (reading a dropped frame, loading a checkpoint). Nothing here or in
 * what it imports uses Node APIs; dist/browser/wgsl-unet.js is this module.
 */
import { decodeTiff, type GrayImage } from './data/tiff.js';
import { DataError } from './data/errors.js';
import type { Gpu } from './gpu/gpu.js';
import { type Checkpoint, decodeCheckpoint, loadWeights } from './model/checkpoint.js';
import { type UNet, createUNet } from './model/unet.js';

// The engine.
export { createBrowserGpu } from './gpu/browser-gpu.js';
export { Gpu, describeAdapter, formatAdapter, type AdapterDescription } from './gpu/gpu.js';
export { GpuError, ShapeError } from './gpu/errors.js';
export { allocTensor } from './gpu/tensor-view.js';
export { type Precision, canRunMixed, defaultPrecision, precisionOf, setPrecision } from './ops/conv/index.js';
export { unary, binary } from './ops/elementwise/kernel.js';
export { Tensor, Tape, noGrad, diceLoss } from './autograd/index.js';

// The model, training and checkpoints.
export { UNet, createUNet, unetLayerSpecs, type UNetConfig, type UNetOptions } from './model/unet.js';
export { Adam, TUTORIAL_ADAM, type AdamOptions } from './model/adam.js';
export { Trainer, NonFiniteLossError, predictBatch, predictProbabilities, trainingStep, type ImageSet, type StepReport } from './model/trainer.js';
export { CHECKPOINT_FORMAT, CheckpointError, decodeCheckpoint, encodeCheckpoint, loadWeights, type Checkpoint, type CheckpointMeta } from './model/checkpoint.js';
export { decodeSafetensors, encodeSafetensors, SafetensorsError, type NamedTensor } from './model/safetensors.js';
export { Rng, shuffle } from './model/rng.js';
export { fit, type EpochLog, type FitOptions } from './model/fit.js';

// Data: frames, pre-processing, synthetic frames, metrics.
export { decodeTiff, encodeTiffGray8, type GrayImage } from './data/tiff.js';
export { resizeBilinear, resizeBilinear64 } from './data/resize.js';
export { masksToUnit, meanStd, normalize, resizeStack } from './data/prepare.js';
export { binarize } from './data/postprocess.js';
export { type SegmentSettings, type Segmentation, segmentFrames, segmentSettings } from './model/segment.js';
export { FRAME_HEIGHT, FRAME_WIDTH, generateFrame, type SyntheticFrame } from './data/synthetic.js';
export { batchDice, diceScoreBinary } from './data/metrics.js';
export { DataError } from './data/errors.js';

/** A model built from a checkpoint's configuration with the checkpoint's weights, on `gpu`. */
export function modelFromCheckpoint(gpu: Gpu, bytes: Uint8Array, name: string): { model: UNet; checkpoint: Checkpoint } {
  const checkpoint = decodeCheckpoint(bytes, name);
  const model = createUNet(gpu, checkpoint.meta.config);
  try {
    loadWeights(model, checkpoint, name);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return { model, checkpoint };
}

const isTiff = (b: Uint8Array) => b.length >= 4 && ((b[0] === 0x49 && b[1] === 0x49 && b[2] === 42 && b[3] === 0) || (b[0] === 0x4d && b[1] === 0x4d && b[2] === 0 && b[3] === 42));

/** Pixels of a decoded picture as 8-bit gray: BT.601 luma, rounded, as decodeTiff does for RGB; alpha ignored. */
export function rgbaToGray(rgba: Uint8ClampedArray | Uint8Array, width: number, height: number): GrayImage {
  if (rgba.length !== width * height * 4) throw new DataError(`rgbaToGray: ${rgba.length} bytes is not ${width} × ${height} RGBA pixels`);
  const data = new Uint8Array(width * height);
  for (let i = 0, j = 0; i < data.length; i++, j += 4) data[i] = Math.round(0.299 * rgba[j]! + 0.587 * rgba[j + 1]! + 0.114 * rgba[j + 2]!);
  return { width, height, data };
}

/**
 * Reads a frame file (a TIFF such as the competition's, or anything the
 * browser decodes: PNG, JPEG, …) into 8-bit gray. Pictures other than TIFF go
 * through createImageBitmap and a canvas, without colour-space conversion.
 */
export async function decodeFrameFile(file: Blob, name: string): Promise<GrayImage> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  if (isTiff(bytes)) return decodeTiff(bytes, name);
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(new Blob([bytes], { type: file.type || 'image/png' }), { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch (e) {
    throw new DataError(`${name}: not a TIFF, and the browser cannot decode it as a picture (${(e as Error).message || String(e)}); use a TIFF or PNG frame`);
  }
  try {
    const { width, height } = bitmap;
    const canvas = typeof OffscreenCanvas === 'function' ? new OffscreenCanvas(width, height) : Object.assign(document.createElement('canvas'), { width, height });
    const ctx = canvas.getContext('2d', { willReadFrequently: true }) as CanvasRenderingContext2D | OffscreenCanvasRenderingContext2D | null;
    if (!ctx) throw new DataError(`${name}: this browser gives no 2D canvas to read the picture's pixels`);
    ctx.drawImage(bitmap, 0, 0);
    return rgbaToGray(ctx.getImageData(0, 0, width, height).data, width, height);
  } finally {
    bitmap.close();
  }
}
