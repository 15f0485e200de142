/**
 * `wgsl-unet export` writes a checkpoint as an ONNX model, a TensorFlow.js
 * layers model (model.json and one weight shard) or a Keras 2 HDF5 weights
 * file; `wgsl-unet import` reads any of the three back into a checkpoint, and
 * Keras 3's files (.keras, .weights.h5) too. Neither needs a GPU. Every file
 * is written aside and renamed into place, so a failure leaves nothing
 * half-written.
 */
import { mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { CHECKPOINT_FORMAT, type CheckpointMeta, decodeCheckpoint, encodeCheckpointTensors } from '../model/checkpoint.js';
import { type ExportableUNet, ExportError, type ImportedUNet, exportVariant } from '../model/export/keras-layers.js';
import { describeNonFinite, nonFiniteTensor } from '../model/safetensors.js';
import { encodeOnnx } from '../model/export/onnx.js';
import { decodeOnnxUNet } from '../model/export/onnx-import.js';
import { TFJS_SHARD_NAME, encodeTfjs } from '../model/export/tfjs.js';
import { decodeTfjsUNet } from '../model/export/tfjs-import.js';
import { decodeKerasArchive, unetWeightsFromKeras3 } from '../model/export/keras-archive.js';
import { decodeKerasH5, encodeKerasH5, unetWeightsFromKeras } from '../model/export/keras-h5.js';
import { HIDDEN_ACTIVATIONS, type HiddenActivation, describeVariant, resolveUNetOptions } from '../model/unet.js';
import { type OptionSpec, type Parsed, parseArgs, usage, UsageError } from './args.js';
import { FileError, readBytes, syncFolder, writeAtomic, writeDurably } from './files.js';
import { latestRun } from './runs.js';
import { VERSION } from './train.js';

const FORMATS = {
  onnx: { out: 'unet.onnx', what: 'an ONNX model (opset 13), input and output NHWC' },
  tfjs: { out: 'tfjs-model', what: 'a folder with a TensorFlow.js layers model: model.json and group1-shard1of1.bin' },
  'keras-h5': { out: 'weights.h5', what: "a Keras 2 HDF5 weights file, as the tutorial's model.save_weights writes" },
} as const;
type Format = keyof typeof FORMATS;

const EXPORT_SPEC: Record<string, OptionSpec> = {
  format: { type: 'string', help: `onnx, tfjs or keras-h5` },
  model: { type: 'string', help: 'checkpoint (.safetensors); default: best.safetensors of the latest run in runs/' },
  out: { type: 'string', help: 'file to write (a folder for tfjs); default unet.onnx, tfjs-model or weights.h5' },
};

function formatOf(value: unknown, allowed: readonly string[]): string {
  if (typeof value !== 'string') throw new UsageError(`--format is required: ${allowed.join(', ')}`);
  if (!allowed.includes(value)) throw new UsageError(`unknown --format "${value}"; known: ${allowed.join(', ')}`);
  return value;
}

export async function exportModel(argv: string[]): Promise<void> {
  const summary = `Writes a checkpoint in another format:\n${Object.entries(FORMATS).map(([k, v]) => `  ${k.padEnd(9)} ${v.what}`).join('\n')}`;
  if (argv.includes('--help')) return void console.log(usage('export', summary, EXPORT_SPEC));
  const { options: o } = parseArgs(argv, EXPORT_SPEC);
  const format = formatOf(o.format, Object.keys(FORMATS)) as Format;
  const modelPath = (o.model as string | undefined) ?? join(latestRun('runs'), 'best.safetensors');
  const ckpt = decodeCheckpoint(readBytes(modelPath, 'checkpoint'), modelPath);
  const model: ExportableUNet = {
    baseWidth: ckpt.meta.config.baseWidth,
    activation: ckpt.meta.config.activation ?? 'relu',
    batchNorm: ckpt.meta.config.batchNorm ?? false,
    inputSize: ckpt.meta.config.inputSize,
    weights: ckpt.weights,
    preprocessing: { mean: ckpt.meta.normalization.mean, std: ckpt.meta.normalization.std, antiAlias: ckpt.meta.antiAlias ?? false },
  };
  const out = resolve((o.out as string | undefined) ?? FORMATS[format].out);
  if (format === 'onnx') writeAtomic(out, encodeOnnx(model, VERSION, modelPath));
  else if (format === 'keras-h5') writeAtomic(out, await encodeKerasH5(model, modelPath));
  else writeTfjsFolder(out, encodeTfjs(model, VERSION, modelPath));
  const p = model.preprocessing;
  console.log(`wrote ${out} (${format}): base width ${model.baseWidth}${describeVariant(exportVariant(model)).map((d) => `, ${d}`).join('')}, input ${model.inputSize}×${model.inputSize}; the model expects frames resized to that size${p.antiAlias ? ' (anti-aliased)' : ''}, then (pixel − ${p.mean}) / ${p.std}`);
}

/** model.json and its shard, written aside in the folder and renamed into place, model.json last since it names the shard. */
function writeTfjsFolder(dir: string, files: { modelJson: string; shard: Uint8Array }): void {
  const staging = join(dir, `.staging-${process.pid}`);
  try {
    mkdirSync(dir, { recursive: true });
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging);
    writeDurably(join(staging, TFJS_SHARD_NAME), files.shard);
    writeDurably(join(staging, 'model.json'), files.modelJson);
    renameSync(join(staging, TFJS_SHARD_NAME), join(dir, TFJS_SHARD_NAME));
    renameSync(join(staging, 'model.json'), join(dir, 'model.json'));
  } catch (e) {
    throw new FileError(`cannot write the tfjs model in ${dir}: ${(e as Error).message}`);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  syncFolder(dir);
}

const IMPORT_SPEC: Record<string, OptionSpec> = {
  format: { type: 'string', help: 'keras-h5, keras, onnx or tfjs' },
  in: { type: 'string', help: 'the file to read (e.g. the tutorial\'s weights.h5, a Keras 3 .weights.h5 or .keras file, the U-Net as torch.onnx.export writes it, or a TensorFlow.js model.json or its folder)' },
  out: { type: 'string', help: 'checkpoint to write', default: 'model.safetensors' },
  'input-size': { type: 'number', help: 'input size the model was trained at (default: the file\'s, if written by export or an ONNX graph of fixed square input; else 96)' },
  mean: { type: 'number', help: 'mean of the training frames\' pixels after resizing (default: the file\'s, if written by export)' },
  std: { type: 'number', help: 'their standard deviation (default: the file\'s, if written by export)' },
  'anti-alias': { type: 'boolean', help: 'frames were blurred before downsampling in training (default: the file\'s, if written by export; else not)' },
  activation: { type: 'string', help: 'keras-h5: the hidden layers\' activation, relu or elu (default: the file\'s, if written by export; else relu, the tutorial\'s); an ONNX graph, a tfjs model or a .keras file names its own' },
};

/** What import reads from any format (a weights file alone may not say its activation or preparation). */
type Imported = Omit<ImportedUNet, 'activation' | 'extras'> & Partial<Pick<ImportedUNet, 'activation' | 'extras'>>;

async function readImport(format: string, inPath: string, o: Parsed): Promise<Imported> {
  if (format !== 'keras-h5') {
    // Formats that carry the network, and so its activation.
    const m = format === 'onnx' ? decodeOnnxUNet(readBytes(inPath, 'ONNX model'), inPath) : format === 'keras' ? await decodeKerasArchive(readBytes(inPath, 'Keras model'), inPath) : readTfjs(inPath);
    if (o.activation !== undefined && !(HIDDEN_ACTIVATIONS as readonly unknown[]).includes(o.activation)) throw new UsageError(`--activation must be ${HIDDEN_ACTIVATIONS.join(' or ')}, got "${o.activation}"`);
    if (o.activation !== undefined && o.activation !== m.activation) throw new UsageError(`--activation ${o.activation} conflicts with ${inPath}, whose ${format === 'onnx' ? 'graph' : 'model'} applies ${m.activation}; leave it out`);
    return m;
  }
  const file = await decodeKerasH5(readBytes(inPath, 'weights file'), inPath);
  if (file.variables) return { ...unetWeightsFromKeras3(file.variables, inPath), notes: ["Keras 3's layout: each class's layers taken in the tutorial's order, as Keras's load_weights takes them"] };
  return { ...unetWeightsFromKeras(file, inPath), activation: file.extras?.activation, extras: file.extras, notes: [] };
}

/** A TensorFlow.js layers model: `inPath` is its model.json or the folder holding it; shards are read beside it. */
function readTfjs(inPath: string): Imported {
  let isFolder = false;
  try {
    isFolder = statSync(inPath).isDirectory();
  } catch {
    // readBytes names the missing file
  }
  const jsonPath = isFolder ? join(inPath, 'model.json') : inPath;
  const dir = dirname(jsonPath);
  const text = new TextDecoder().decode(readBytes(jsonPath, 'TensorFlow.js model.json'));
  return decodeTfjsUNet(text, (path) => {
    // As tfjs resolves them: relative to model.json's folder, which they may not leave.
    if (isAbsolute(path) || /^[a-z]+:/i.test(path) || path.split(/[\\/]/).includes('..')) throw new Error('the manifest names it outside model.json\'s folder');
    return readBytes(join(dir, path), 'weight shard');
  }, jsonPath);
}

export async function importModel(argv: string[]): Promise<void> {
  const summary = "Reads a Keras HDF5 weights file (the tutorial's weights.h5, one written by export, or Keras 3's .weights.h5), a Keras 3 model file (.keras), an ONNX model of the U-Net (written by export, or by torch.onnx.export of the same network) or a TensorFlow.js layers model of it (written by export, tfjs-layers' model.save or tfjs-converter) into a checkpoint for predict.";
  if (argv.includes('--help')) return void console.log(usage('import', summary, IMPORT_SPEC));
  const { options: o } = parseArgs(argv, IMPORT_SPEC);
  const format = formatOf(o.format, ['keras-h5', 'keras', 'onnx', 'tfjs']);
  if (typeof o.in !== 'string') throw new UsageError(`--in is required: the ${{ onnx: 'ONNX model', tfjs: "TensorFlow.js model's model.json (or its folder)", 'keras-h5': 'Keras HDF5 weights file', keras: 'Keras model (.keras)' }[format]} to read`);
  const inPath = o.in;
  const file = await readImport(format, inPath, o);
  const { baseWidth, batchNorm, weights } = file;
  const bad = nonFiniteTensor(weights);
  if (bad) throw new ExportError(`${inPath}: ${describeNonFinite(bad)}: the model would give NaN maps`);
  const mean = (o.mean as number | undefined) ?? file.extras?.mean;
  const std = (o.std as number | undefined) ?? file.extras?.std;
  if (mean === undefined || std === undefined) {
    throw new UsageError(`${inPath} does not record how frames were normalised: give --mean and --std, the training frames' pixel mean and standard deviation after resizing (the tutorial computes them from imgs_train)`);
  }
  if (!(std > 0)) throw new UsageError(`--std must be positive, got ${std}`);
  const activation = (o.activation as string | undefined) ?? file.activation ?? 'relu';
  if (!(HIDDEN_ACTIVATIONS as readonly string[]).includes(activation)) throw new UsageError(`--activation must be ${HIDDEN_ACTIVATIONS.join(' or ')}, got "${activation}"`);
  const config = resolveUNetOptions({ baseWidth, inputSize: (o['input-size'] as number | undefined) ?? file.extras?.inputSize ?? 96, activation: activation as HiddenActivation, batchNorm });
  const meta: CheckpointMeta = {
    format: CHECKPOINT_FORMAT,
    version: VERSION,
    config,
    normalization: { mean, std },
    antiAlias: (o['anti-alias'] as boolean | undefined) ?? file.extras?.antiAlias ?? false,
    epoch: 0,
    step: 0,
    metrics: {},
    adapter: `none (imported from ${inPath})`,
    createdAt: new Date().toISOString(),
  };
  const out = resolve(o.out as string);
  writeAtomic(out, encodeCheckpointTensors(weights, meta));
  console.log(`wrote ${out}: base width ${baseWidth}${describeVariant(config).map((d) => `, ${d}`).join('')}, input ${config.inputSize}×${config.inputSize}, mean ${mean}, std ${std}`);
  for (const note of file.notes) console.log(`  carried over: ${note}`);
}
