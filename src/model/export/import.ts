/**
 * A foreign model of the U-Net into a checkpoint, the same in Node (`import`)
 * and in browsers (the page): each format's reader, loaded when its format
 * is asked for (HDF5 alone is megabytes of WebAssembly), and the checkpoint's
 * metadata from what the file records and what the caller adds.
 */
import { CHECKPOINT_FORMAT, type Checkpoint, type CheckpointMeta, foreignModelFormat } from '../checkpoint.js';
import { type NamedTensor, nonFiniteTensor } from '../safetensors.js';
import { type HiddenActivation, resolveUNetOptions } from '../unet.js';
import { ExportError, type ImportedUNet } from './keras-layers.js';

export const IMPORT_FORMATS = ['keras-h5', 'keras', 'onnx', 'tfjs'] as const;
export type ImportFormat = (typeof IMPORT_FORMATS)[number];

/** What a model file holds, by format, for messages. */
export const IMPORT_FORMAT_NAMES: Record<ImportFormat, string> = {
  'keras-h5': 'Keras HDF5 weights file',
  keras: 'Keras model (.keras)',
  onnx: 'ONNX model',
  tfjs: "TensorFlow.js model's model.json",
};

/** What an importer gives: a weights file alone may not say its activation or how frames were prepared. */
export type ForeignUNet = Omit<ImportedUNet, 'activation' | 'extras'> & Partial<Pick<ImportedUNet, 'activation' | 'extras'>>;

/**
 * Reads a model of the U-Net in `format` from `bytes` (for tfjs, model.json's
 * text as bytes, and `readShard` for the shards it names; see
 * `tfjsShardProblem`). `source` names the file in messages.
 */
export async function readForeignUNet(format: ImportFormat, bytes: Uint8Array, source: string, readShard?: (path: string) => Uint8Array): Promise<ForeignUNet> {
  switch (format) {
    case 'onnx':
      return (await import('./onnx-import.js')).decodeOnnxUNet(bytes, source);
    case 'keras':
      return (await import('./keras-archive.js')).decodeKerasArchive(bytes, source);
    case 'tfjs': {
      if (!readShard) throw new ExportError(`${source}: a TensorFlow.js model needs its weight shards beside model.json`);
      return (await import('./tfjs-import.js')).decodeTfjsUNet(new TextDecoder().decode(bytes), readShard, source);
    }
    case 'keras-h5': {
      const { decodeKerasH5, unetWeightsFromKeras } = await import('./keras-h5.js');
      const file = await decodeKerasH5(bytes, source);
      if (file.variables) {
        const { unetWeightsFromKeras3 } = await import('./keras-archive.js');
        return { ...unetWeightsFromKeras3(file.variables, source), notes: ["Keras 3's layout: each class's layers taken in the tutorial's order, as Keras's load_weights takes them"] };
      }
      return { ...unetWeightsFromKeras(file, source), activation: file.extras?.activation, extras: file.extras, notes: [] };
    }
  }
}

/**
 * Why a shard path from a tfjs manifest may not be read, or undefined: tfjs
 * resolves shards relative to model.json's folder, which they may not leave.
 */
export function tfjsShardProblem(path: string): string | undefined {
  // Absolute (a root, a drive or a URL scheme) or climbing out.
  if (/^[\\/]/.test(path) || /^[a-z]+:/i.test(path) || path.split(/[\\/]/).includes('..')) return "the manifest names it outside model.json's folder";
  return undefined;
}

/** What the caller says of a model where the file does not (or overrides it). */
export interface ImportChoices {
  /** Side of the square input it was trained at (default: the file's, else 96, the tutorial's). */
  inputSize?: number;
  /** The training frames' pixel mean and standard deviation after resizing (required where the file does not record them). */
  mean?: number;
  std?: number;
  /** Frames were blurred before downsampling in training (default: the file's, else not). */
  antiAlias?: boolean;
  /** The hidden layers' activation: for a weights file, which records it at most (default relu); a network's own is checked by the caller. */
  activation?: HiddenActivation;
}

/** The input size taken where neither the file nor the caller gives one: the tutorial's. */
export const ASSUMED_INPUT_SIZE = 96;

/** The input size assumed for the model (neither the file nor `choices` gives one), or undefined. */
export function assumedInputSize(model: ForeignUNet, choices: ImportChoices): number | undefined {
  return choices.inputSize === undefined && model.extras?.inputSize === undefined ? ASSUMED_INPUT_SIZE : undefined;
}

/** The normalisation the file records or the caller gives, or undefined when neither does. */
export function importNormalization(model: ForeignUNet, choices: ImportChoices): { mean: number; std: number } | undefined {
  const mean = choices.mean ?? model.extras?.mean;
  const std = choices.std ?? model.extras?.std;
  return mean === undefined || std === undefined ? undefined : { mean, std };
}

/**
 * The checkpoint of an imported model: its weights (refused if any is NaN
 * or infinite) and the metadata, the file's record completed by `choices`.
 * `version` is the engine's, `source` names the file.
 */
export function importedCheckpoint(model: ForeignUNet, choices: ImportChoices, source: string, version: string): { tensors: Map<string, NamedTensor>; meta: CheckpointMeta } {
  const bad = nonFiniteTensor(model.weights);
  if (bad) throw new ExportError(`${source}: ${bad}: the model would give NaN maps`);
  const normalization = importNormalization(model, choices);
  if (!normalization) throw new ExportError(`${source} does not record how frames were normalised: give the training frames' pixel mean and standard deviation after resizing (the tutorial computes them from imgs_train)`);
  if (!Number.isFinite(normalization.mean)) throw new ExportError(`${source}: the frames' mean must be a finite number, got ${normalization.mean}`);
  if (!(normalization.std > 0 && Number.isFinite(normalization.std))) throw new ExportError(`${source}: the frames' standard deviation must be positive and finite, got ${normalization.std}`);
  const activation = choices.activation ?? model.activation ?? 'relu';
  const config = resolveUNetOptions({ baseWidth: model.baseWidth, inputSize: choices.inputSize ?? model.extras?.inputSize ?? ASSUMED_INPUT_SIZE, activation, batchNorm: model.batchNorm });
  const meta: CheckpointMeta = {
    format: CHECKPOINT_FORMAT,
    version,
    config,
    normalization,
    antiAlias: choices.antiAlias ?? model.extras?.antiAlias ?? false,
    epoch: 0,
    step: 0,
    metrics: {},
    adapter: `none (imported from ${source})`,
    createdAt: new Date().toISOString(),
  };
  return { tensors: model.weights, meta };
}

/** A file of a model: its name (an ONNX model is told by `.onnx`, a tfjs shard found by its name) and its bytes. */
export interface ModelFile {
  name: string;
  bytes: Uint8Array;
}

export type PickedImport =
  | { kind: 'imported'; name: string; format: ImportFormat; checkpoint: Checkpoint; notes: string[]; assumed: string[] }
  /** The file does not record how frames were normalised, and the choices do not say. */
  | { kind: 'needs-normalization'; name: string; format: ImportFormat };

/**
 * The checkpoint of the model in `files`, its format told by their bytes:
 * one model file, or a tfjs model.json and the shards its manifest names
 * (found by file name, as a file picker gives no folders). `version` is the
 * engine's.
 */
export async function importPicked(files: readonly ModelFile[], choices: ImportChoices, version: string): Promise<PickedImport> {
  const models = files.map((f) => ({ file: f, format: foreignModelFormat(f.bytes, f.name) })).filter((m) => m.format);
  if (models.length !== 1) {
    throw new ExportError(
      models.length
        ? `pick one model at a time (${models.map((m) => m.file.name).join(', ')} are each a model)`
        : `${files.map((f) => f.name).join(', ') || 'no files'}: no model of another framework among them: a Keras .h5 or .keras file, an ONNX model (.onnx), or a TensorFlow.js model.json with its .bin shards`,
    );
  }
  const { file, format } = { file: models[0]!.file, format: models[0]!.format!.flag };
  const others = files.filter((f) => f !== file);
  if (format !== 'tfjs' && others.length) throw new ExportError(`${file.name} is a whole model: pick it alone (also picked: ${others.map((f) => f.name).join(', ')})`);
  const model = await readForeignUNet(format, file.bytes, file.name, (path) => {
    const problem = tfjsShardProblem(path);
    if (problem) throw new Error(problem);
    const base = path.split('/').pop()!;
    const shard = others.find((f) => f.name === base);
    if (!shard) throw new Error('not picked: give model.json and its shards together');
    return shard.bytes;
  });
  // A whole model names its activation; a weights file records one at most, which the choice overrides (as import's --activation).
  if (format !== 'keras-h5' && choices.activation !== undefined && choices.activation !== model.activation) {
    throw new ExportError(`${file.name}: the activation chosen, ${choices.activation}, conflicts with the model's own, ${model.activation}; leave the activation to the file`);
  }
  if (!importNormalization(model, choices)) return { kind: 'needs-normalization', name: file.name, format };
  const { tensors, meta } = importedCheckpoint(model, choices, file.name, version);
  const size = assumedInputSize(model, choices);
  const assumed = size ? [`input ${size} × ${size} (the tutorial's): ${file.name} does not record the size the model was trained at`] : [];
  return { kind: 'imported', name: file.name, format, checkpoint: { meta, weights: tensors }, notes: model.notes, assumed };
}
