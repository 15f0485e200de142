/**
 * Checkpoints: the weights under their Keras names (conv2d_1/kernel, …) in a
 * safetensors file, with what prediction and resuming need in its metadata:
 * the model's configuration, the training images' mean and std, the epoch,
 * the metrics, the adapter, and optionally the optimiser's moments
 * (optimizer/m/<name>, optimizer/v/<name>) and loss scale, and the data
 * order's generator state.
 */
import type { AugmentSpec } from './augment.js';
import type { Adam, AdamStateInput, LossScaleState } from './adam.js';
import type { UNet, UNetConfig } from './unet.js';
import type { ImportFormat } from './export/import.js';
import { type NamedTensor, decodeSafetensors, encodeSafetensors, nonFiniteTensor } from './safetensors.js';

export const CHECKPOINT_FORMAT = 'wgsl-unet/1';

export interface CheckpointMeta {
  format: typeof CHECKPOINT_FORMAT;
  /** Software version that wrote it. */
  version: string;
  config: UNetConfig;
  /** Training images' mean and std (of 0..255 pixel values), applied before the model. */
  normalization: { mean: number; std: number };
  /** Frames were blurred before downsampling (--anti-alias), so frames served to the model must be too; absent means not. */
  antiAlias?: boolean;
  /** Epochs completed. */
  epoch: number;
  /** Optimiser steps taken. */
  step: number;
  /** Mixed precision: the loss scale's state, so that a resumed run goes on with it (absent in older checkpoints). */
  lossScale?: LossScaleState;
  metrics: Record<string, number>;
  adapter: string;
  createdAt: string;
  /** How training was run; enough to resume it. */
  training?: {
    seed: number;
    batchSize: number;
    epochs: number;
    lr: number;
    /** Adam's ε; absent means the tutorial's 1e-7. */
    epsilon?: number;
    /** How the learning rate went over the epochs; absent means constant. */
    schedule?: 'constant' | 'cosine';
    /** Warm-up epochs of the cosine schedule. */
    warmup?: number;
    /** The fraction held out from the end of the data; absent when folds held out validation. */
    validationSplit?: number;
    /**
     * Subject-wise k-fold: fold `fold` (1-based) of `k` held out, subjects assigned with `seed`.
     * With `inner` (nested validation), fold `inner` chose the epoch and fold `fold` was only scored.
     */
    folds?: { k: number; fold: number; seed: number; inner?: number };
    /** The unmasked frames of contradictory near-duplicate pairs were left out of training. */
    dropContradictions?: boolean;
    /** The last layer's bias started here (train --init-prior), not at 0. */
    outputBias?: number;
    /** The training loss (train --loss, src/model/trainer.ts); absent means the tutorial's Dice over each batch. */
    loss?: 'image-dice' | 'bce-dice';
    /** Each training batch was augmented so (src/model/augment.ts). */
    augment?: AugmentSpec;
    /** With dropout: the training steps begun, skipped ones included (UNet.trainingSteps), whose count seeds the next step's masks. */
    stepsBegun?: number;
    preset: string;
    /** State of the generator that shuffles the training part each epoch. */
    rngState: number[];
    /** Rows of the data set used (the first `count`), and how many of them trained. */
    count: number;
    trainCount: number;
    /** Folder of the data caches it trained on. */
    data: string;
  };
  /** The convolutions' precision it was trained in (weights are float32 either way); absent means fp32. */
  precision?: 'fp32' | 'mixed';
  /** Threshold and minimum mask area chosen on validation data, used by `submit`. */
  postprocess?: { threshold: number; minArea: number; score?: number };
}

export interface Checkpoint {
  meta: CheckpointMeta;
  weights: Map<string, NamedTensor>;
  adam?: AdamStateInput;
}

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

/** Reads the model (and optimiser) from the GPU into a safetensors file's bytes. */
export async function encodeCheckpoint(model: UNet, meta: CheckpointMeta, adam?: Adam): Promise<Uint8Array> {
  const tensors = new Map<string, NamedTensor>();
  const weights = await model.parameters.readAll();
  const shapes = new Map(model.parameters.params.map((p) => [p.name, p.shape]));
  for (const [name, data] of weights) tensors.set(name, { shape: shapes.get(name)!, data });
  // The batch normalisations' running statistics, beside the weights under their Keras names.
  if (model.state) {
    const stateShapes = new Map(model.state.params.map((p) => [p.name, p.shape]));
    for (const [name, data] of await model.state.readAll()) tensors.set(name, { shape: stateShapes.get(name)!, data });
  }
  if (adam) {
    const state = await adam.readState();
    for (const [name, data] of state.m) tensors.set(`optimizer/m/${name}`, { shape: shapes.get(name)!, data });
    for (const [name, data] of state.v) tensors.set(`optimizer/v/${name}`, { shape: shapes.get(name)!, data });
    meta = { ...meta, step: state.t, ...(state.lossScale ? { lossScale: state.lossScale } : {}) };
  }
  return encodeCheckpointTensors(tensors, meta);
}

/** A checkpoint's bytes from tensors already on the host (weights, and optionally optimizer/m/…, optimizer/v/…). */
export function encodeCheckpointTensors(tensors: ReadonlyMap<string, NamedTensor>, meta: CheckpointMeta): Uint8Array {
  return encodeSafetensors(tensors, {
    format: CHECKPOINT_FORMAT,
    wgsl_unet: JSON.stringify(meta),
    mean: String(meta.normalization.mean),
    std: String(meta.normalization.std),
  });
}

export function decodeCheckpoint(bytes: Uint8Array, name: string): Checkpoint {
  let decoded: ReturnType<typeof decodeSafetensors>;
  try {
    decoded = decodeSafetensors(bytes, name);
  } catch (e) {
    const format = foreignModelFormat(bytes, name);
    if (format) throw new CheckpointError(`${name}: ${format.what}, not a wgsl-unet checkpoint; \`import --format ${format.flag} --in ${name}\` converts the U-Net in it into one`);
    throw e;
  }
  const { tensors, metadata } = decoded;
  if (metadata.format !== CHECKPOINT_FORMAT || !metadata.wgsl_unet) {
    throw new CheckpointError(`${name}: not a wgsl-unet checkpoint (metadata format is ${JSON.stringify(metadata.format)}, expected "${CHECKPOINT_FORMAT}")`);
  }
  const bad = nonFiniteTensor(tensors);
  if (bad) throw new CheckpointError(`${name}: ${bad}: the checkpoint is damaged`);
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(metadata.wgsl_unet) as CheckpointMeta;
  } catch (e) {
    throw new CheckpointError(`${name}: its wgsl_unet metadata is not JSON (${(e as Error).message}): the checkpoint is damaged`);
  }
  const weights = new Map<string, NamedTensor>();
  const m = new Map<string, NamedTensor>();
  const v = new Map<string, NamedTensor>();
  for (const [key, t] of tensors) {
    if (key.startsWith('optimizer/m/')) m.set(key.slice(12), t);
    else if (key.startsWith('optimizer/v/')) v.set(key.slice(12), t);
    else weights.set(key, t);
  }
  const ckpt: Checkpoint = { meta, weights };
  if (m.size || v.size) ckpt.adam = { t: meta.step, m, v, ...(meta.lossScale ? { lossScale: meta.lossScale } : {}) };
  return ckpt;
}

/** The model format that `import` reads which a file that is not safetensors looks like, by its first bytes (or, for ONNX, its name). */
export function foreignModelFormat(bytes: Uint8Array, name: string): { what: string; flag: ImportFormat } | undefined {
  const starts = (...b: number[]) => b.every((v, i) => bytes[i] === v);
  if (starts(0x89, 0x48, 0x44, 0x46)) return { what: 'an HDF5 file (Keras weights)', flag: 'keras-h5' };
  if (starts(0x50, 0x4b, 0x03, 0x04) && /\.keras$/i.test(name)) return { what: "a Keras 3 model (a .keras zip archive)", flag: 'keras' };
  if (/\.onnx$/i.test(name)) return { what: 'an ONNX model', flag: 'onnx' };
  const head = new TextDecoder().decode(bytes.subarray(0, 4096));
  if (/^\s*\{/.test(head) && head.includes('"modelTopology"')) return { what: 'a TensorFlow.js model.json', flag: 'tfjs' };
  return undefined;
}

/** Loads a checkpoint's weights into a model built with the same configuration. */
export function loadWeights(model: UNet, ckpt: Checkpoint, name: string): void {
  const a = ckpt.meta.config;
  const b = model.config;
  if (a.baseWidth !== b.baseWidth) {
    throw new CheckpointError(`${name}: checkpoint has base width ${a.baseWidth}, the model ${b.baseWidth}; build the model from the checkpoint's config`);
  }
  // The weights fit either way; the maps would not.
  if ((a.activation ?? 'relu') !== (b.activation ?? 'relu')) {
    throw new CheckpointError(`${name}: checkpoint has ${a.activation ?? 'relu'} activations, the model ${b.activation ?? 'relu'}; build the model from the checkpoint's config`);
  }
  if ((a.batchNorm ?? false) !== (b.batchNorm ?? false)) {
    throw new CheckpointError(`${name}: checkpoint has ${a.batchNorm ? '' : 'no '}batch normalisation, the model ${b.batchNorm ? 'has' : 'has none'}; build the model from the checkpoint's config`);
  }
  try {
    const state = model.state;
    if (!state) model.parameters.load(ckpt.weights);
    else {
      // The running statistics go to the model's state, the rest to its parameters.
      const names = new Set(state.params.map((p) => p.name));
      const isState = (key: string) => names.has(key);
      model.parameters.load(new Map([...ckpt.weights].filter(([key]) => !isState(key))));
      state.load(new Map([...ckpt.weights].filter(([key]) => isState(key))));
    }
  } catch (e) {
    throw new CheckpointError(`${name} does not match the model: ${(e as Error).message}`);
  }
}
