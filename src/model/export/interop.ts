/**
 * The library's way to other frameworks, as the CLI's `export` and `import`
 * take it: a checkpoint written as the files of an ONNX model, a
 * TensorFlow.js layers model or a Keras 2 HDF5 weights file, and any model
 * `import` reads, given as files, made into a checkpoint. Each format's code
 * is loaded when it is first asked for (HDF5's is megabytes of WebAssembly).
 */
import type { Checkpoint } from '../checkpoint.js';
import { VERSION } from '../../version.js';
import { type ImportChoices, type ImportFormat, type ModelFile, importPicked } from './import.js';
import { type ExportableUNet, ExportError } from './keras-layers.js';

export const EXPORT_FORMATS = ['onnx', 'tfjs', 'keras-h5'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** What each format's files are, in words, and where the CLI's export writes them by default. */
export const EXPORT_FORMAT_INFO: Record<ExportFormat, { what: string; out: string }> = {
  onnx: { what: 'an ONNX model (opset 13), input and output NHWC', out: 'unet.onnx' },
  tfjs: { what: 'a folder with a TensorFlow.js layers model: model.json and group1-shard1of1.bin', out: 'tfjs-model' },
  'keras-h5': { what: "a Keras 2 HDF5 weights file, as the tutorial's model.save_weights writes", out: 'weights.h5' },
};

/**
 * The checkpoint's U-Net as `format`'s files: unet.onnx, weights.h5, or a
 * tfjs model.json and the shard it names (the two belong in one folder).
 * Each records the input size and the frames' normalisation, which
 * `importModel` reads back. `source` names the checkpoint in messages.
 */
export async function exportModel(ckpt: Checkpoint, format: ExportFormat, source = 'the checkpoint'): Promise<ModelFile[]> {
  if (!(EXPORT_FORMATS as readonly unknown[]).includes(format)) throw new ExportError(`unknown export format "${String(format)}"; known: ${EXPORT_FORMATS.join(', ')}`);
  const { config, normalization, antiAlias } = ckpt.meta;
  const model: ExportableUNet = {
    baseWidth: config.baseWidth,
    activation: config.activation ?? 'relu',
    batchNorm: config.batchNorm ?? false,
    inputSize: config.inputSize,
    weights: ckpt.weights,
    preprocessing: { mean: normalization.mean, std: normalization.std, antiAlias: antiAlias ?? false },
  };
  switch (format) {
    case 'onnx':
      return [{ name: 'unet.onnx', bytes: (await import('./onnx.js')).encodeOnnx(model, VERSION, source) }];
    case 'keras-h5':
      return [{ name: 'weights.h5', bytes: await (await import('./keras-h5.js')).encodeKerasH5(model, source) }];
    case 'tfjs': {
      const { encodeTfjs, TFJS_SHARD_NAME } = await import('./tfjs.js');
      const files = encodeTfjs(model, VERSION, source);
      return [{ name: 'model.json', bytes: new TextEncoder().encode(files.modelJson) }, { name: TFJS_SHARD_NAME, bytes: files.shard }];
    }
  }
}

/** What importModel gives: the checkpoint, the format it was read from, and what was carried over from the file's form. */
export interface ImportedModel {
  checkpoint: Checkpoint;
  format: ImportFormat;
  /** The model file's name (a tfjs model's model.json). */
  source: string;
  /** Differences of form carried over (an NCHW graph's concatenations reordered, say), in words. */
  notes: string[];
  /** What was taken where neither the file nor the choices say (the input size), in words; choices can set it. */
  assumed: string[];
}

/**
 * A U-Net from another framework as a checkpoint, for createUNet and
 * loadWeights: one model file (a Keras .h5, .weights.h5 or .keras file, or
 * an ONNX model, told by a name ending in .onnx) or a TensorFlow.js
 * model.json with the shards its manifest names (found by file name). Where
 * the file does not record how frames were normalised, `choices` must give
 * the training frames' mean and std after resizing.
 */
export async function importModel(files: readonly ModelFile[], choices: ImportChoices = {}): Promise<ImportedModel> {
  if (!Array.isArray(files) || files.some((f) => typeof f?.name !== 'string' || !(f.bytes instanceof Uint8Array))) {
    throw new TypeError('importModel: files must be an array of { name: string, bytes: Uint8Array }');
  }
  const result = await importPicked(files, choices, VERSION);
  if (result.kind === 'needs-normalization') {
    throw new ExportError(`${result.name} does not record how frames were normalised: give choices.mean and choices.std, the training frames' pixel mean and standard deviation after resizing`);
  }
  return { checkpoint: result.checkpoint, format: result.format, source: result.name, notes: result.notes, assumed: result.assumed };
}
