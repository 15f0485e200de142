/**
 * Models of the U-Net from other frameworks in the page: the files a user
 * picked (a Keras .h5 or .keras file, an ONNX model, or a TensorFlow.js
 * model.json with its shards) made into a checkpoint, as `import` makes one.
 * The page loads this module only when such a file is picked: the HDF5
 * reader alone is megabytes of WebAssembly.
 */
import { encodeCheckpointTensors, foreignModelFormat } from '../src/model/checkpoint.js';
import { type ImportChoices, type ImportFormat, importNormalization, importedCheckpoint, readForeignUNet, tfjsShardProblem } from '../src/model/export/import.js';
import { ExportError } from '../src/model/export/keras-layers.js';

export interface PickedFile {
  name: string;
  bytes: Uint8Array;
}

export type ImportResult =
  | { kind: 'imported'; name: string; format: ImportFormat; checkpoint: Uint8Array; notes: string[] }
  /** The file does not record how frames were normalised, and `choices` does not say. */
  | { kind: 'needs-normalization'; name: string; format: ImportFormat };

/**
 * The checkpoint of the model in `files`: one model file, or a tfjs
 * model.json and the shards its manifest names (found by file name, as the
 * picker gives no folders).
 */
export async function importPicked(files: readonly PickedFile[], choices: ImportChoices, version: string): Promise<ImportResult> {
  const models = files.map((f) => ({ file: f, format: foreignModelFormat(f.bytes, f.name) })).filter((m) => m.format);
  if (models.length !== 1) {
    throw new ExportError(
      models.length
        ? `pick one model at a time (${models.map((m) => m.file.name).join(', ')} are each a model)`
        : `${files.map((f) => f.name).join(', ')}: no model among them; pick a checkpoint (.safetensors), a Keras .h5 or .keras file, an ONNX model, or a TensorFlow.js model.json with its .bin shards`,
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
    if (!shard) throw new Error(`not picked: select model.json and its shards together`);
    return shard.bytes;
  });
  // A whole model names its activation; a weights file records one at most, which the choice overrides (as import's --activation).
  if (format !== 'keras-h5' && choices.activation !== undefined && choices.activation !== model.activation) {
    throw new ExportError(`${file.name}: the activation chosen, ${choices.activation}, conflicts with the model's own, ${model.activation}; leave the choice at "the file's"`);
  }
  if (!importNormalization(model, choices)) return { kind: 'needs-normalization', name: file.name, format };
  const { tensors, meta } = importedCheckpoint(model, choices, file.name, version);
  return { kind: 'imported', name: file.name, format, checkpoint: encodeCheckpointTensors(tensors, meta), notes: model.notes };
}
