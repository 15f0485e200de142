/**
 * `wgsl-unet export` writes a checkpoint as an ONNX model, a TensorFlow.js
 * layers model (model.json and one weight shard) or a Keras 2 HDF5 weights
 * file; `wgsl-unet import` reads any of the three back into a checkpoint, and
 * Keras 3's files (.keras, .weights.h5) too. Neither needs a GPU. Every file
 * is written aside and renamed into place, so a failure leaves nothing
 * half-written.
 */
import { closeSync, mkdirSync, openSync, readSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { decodeCheckpoint, encodeCheckpointTensors, foreignModelFormat } from '../model/checkpoint.js';
import { EXPORT_FORMATS, EXPORT_FORMAT_INFO, type ExportFormat, exportModel } from '../model/export/interop.js';
import { exportVariant } from '../model/export/keras-layers.js';
import { type ForeignUNet, IMPORT_FORMATS, IMPORT_FORMAT_NAMES, type ImportChoices, type ImportFormat, type ModelFile, assumedInputSize, importNormalization, importedCheckpoint, readForeignUNet, tfjsShardProblem } from '../model/export/import.js';
import { HIDDEN_ACTIVATIONS, type HiddenActivation, describeVariant } from '../model/unet.js';
import { type OptionSpec, type Parsed, parseArgs, usage, UsageError } from './args.js';
import { FileError, readBytes, syncFolder, writeAtomic, writeDurably } from './files.js';
import { latestRun } from './runs.js';
import { VERSION } from '../version.js';

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

export async function exportCommand(argv: string[]): Promise<void> {
  const summary = `Writes a checkpoint in another format:\n${EXPORT_FORMATS.map((f) => `  ${f.padEnd(9)} ${EXPORT_FORMAT_INFO[f].what}`).join('\n')}`;
  if (argv.includes('--help')) return void console.log(usage('export', summary, EXPORT_SPEC));
  const { options: o } = parseArgs(argv, EXPORT_SPEC);
  const format = formatOf(o.format, EXPORT_FORMATS) as ExportFormat;
  const modelPath = (o.model as string | undefined) ?? join(latestRun('runs'), 'best.safetensors');
  const ckpt = decodeCheckpoint(readBytes(modelPath, 'checkpoint'), modelPath);
  const files = await exportModel(ckpt, format, modelPath);
  const out = resolve((o.out as string | undefined) ?? EXPORT_FORMAT_INFO[format].out);
  if (format === 'tfjs') writeTfjsFolder(out, files);
  else writeAtomic(out, files[0]!.bytes);
  const { config, normalization: p } = ckpt.meta;
  console.log(`wrote ${out} (${format}): base width ${config.baseWidth}${describeVariant(exportVariant({ activation: config.activation ?? 'relu', batchNorm: config.batchNorm ?? false })).map((d) => `, ${d}`).join('')}, input ${config.inputSize}×${config.inputSize}; the model expects frames resized to that size${ckpt.meta.antiAlias ? ' (anti-aliased)' : ''}, then (pixel − ${p.mean}) / ${p.std}`);
}

/** model.json and its shard, written aside in the folder and renamed into place, model.json (files[0], which names the shard) last. */
function writeTfjsFolder(dir: string, files: readonly ModelFile[]): void {
  const staging = join(dir, `.staging-${process.pid}`);
  try {
    mkdirSync(dir, { recursive: true });
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging);
    for (const f of [...files].reverse()) writeDurably(join(staging, f.name), f.bytes);
    for (const f of [...files].reverse()) renameSync(join(staging, f.name), join(dir, f.name));
  } catch (e) {
    throw new FileError(`cannot write the tfjs model in ${dir}: ${(e as Error).message}`);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  syncFolder(dir);
}

const IMPORT_SPEC: Record<string, OptionSpec> = {
  format: { type: 'string', help: 'keras-h5, keras, onnx or tfjs (default: told by the file: HDF5, a .keras archive, a .onnx name, a model.json or its folder)' },
  in: { type: 'string', help: 'the file to read (e.g. the tutorial\'s weights.h5, a Keras 3 .weights.h5 or .keras file, the U-Net as torch.onnx.export writes it, or a TensorFlow.js model.json or its folder)' },
  out: { type: 'string', help: 'checkpoint to write', default: 'model.safetensors' },
  'input-size': { type: 'number', help: 'input size the model was trained at (default: the file\'s, if written by export or an ONNX graph of fixed square input; else 96)' },
  mean: { type: 'number', help: 'mean of the training frames\' pixels after resizing (default: the file\'s, if written by export)' },
  std: { type: 'number', help: 'their standard deviation (default: the file\'s, if written by export)' },
  'anti-alias': { type: 'boolean', help: 'frames were blurred before downsampling in training (default: the file\'s, if written by export; else not)' },
  activation: { type: 'string', help: 'keras-h5: the hidden layers\' activation, relu or elu (default: the file\'s, if written by export; else relu, the tutorial\'s); an ONNX graph, a tfjs model or a .keras file names its own' },
};

/** The format of the model at `path`, told by its first bytes and name (a folder is a tfjs model's), for an import without --format. */
function formatOfFile(path: string): ImportFormat {
  let head: Uint8Array;
  try {
    if (statSync(path).isDirectory()) return 'tfjs';
    const fd = openSync(path, 'r');
    try {
      head = new Uint8Array(4096);
      head = head.subarray(0, readSync(fd, head, 0, head.length, 0));
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new FileError(code === 'ENOENT' ? `model not found: ${path}` : `cannot read ${path}: ${(e as Error).message}`);
  }
  const found = foreignModelFormat(head, path);
  if (found) return found.flag;
  // safetensors: an 8-byte header length, then the header's JSON.
  if (head.length > 8 && head[8] === 0x7b) throw new UsageError(`${path} is a safetensors file, which is what import writes: predict and export read a checkpoint as it is`);
  throw new UsageError(`cannot tell which model ${path} is (not HDF5, a .keras archive, a .onnx file or a tfjs model.json): give --format ${IMPORT_FORMATS.join('|')}`);
}

async function readImport(format: ImportFormat, inPath: string, o: Parsed): Promise<ForeignUNet> {
  const m = format === 'tfjs' ? await readTfjs(inPath) : await readForeignUNet(format, readBytes(inPath, format === 'keras-h5' ? 'weights file' : IMPORT_FORMAT_NAMES[format]), inPath);
  if (format !== 'keras-h5') {
    // Formats that carry the network, and so its activation.
    if (o.activation !== undefined && !(HIDDEN_ACTIVATIONS as readonly unknown[]).includes(o.activation)) throw new UsageError(`--activation must be ${HIDDEN_ACTIVATIONS.join(' or ')}, got "${o.activation}"`);
    if (o.activation !== undefined && o.activation !== m.activation) throw new UsageError(`--activation ${o.activation} conflicts with ${inPath}, whose ${format === 'onnx' ? 'graph' : 'model'} applies ${m.activation}; leave it out`);
  }
  return m;
}

/** A TensorFlow.js layers model: `inPath` is its model.json or the folder holding it; shards are read beside it. */
async function readTfjs(inPath: string): Promise<ForeignUNet> {
  let isFolder = false;
  try {
    isFolder = statSync(inPath).isDirectory();
  } catch {
    // readBytes names the missing file
  }
  const jsonPath = isFolder ? join(inPath, 'model.json') : inPath;
  const dir = dirname(jsonPath);
  return readForeignUNet('tfjs', readBytes(jsonPath, 'TensorFlow.js model.json'), jsonPath, (path) => {
    const problem = tfjsShardProblem(path);
    if (problem) throw new Error(problem);
    return readBytes(join(dir, path), 'weight shard');
  });
}

export async function importCommand(argv: string[]): Promise<void> {
  const summary = "Reads a Keras HDF5 weights file (the tutorial's weights.h5, one written by export, or Keras 3's .weights.h5), a Keras 3 model file (.keras), an ONNX model of the U-Net (written by export, or by torch.onnx.export of the same network) or a TensorFlow.js layers model of it (written by export, tfjs-layers' model.save or tfjs-converter) into a checkpoint for predict.";
  if (argv.includes('--help')) return void console.log(usage('import', summary, IMPORT_SPEC));
  const { options: o } = parseArgs(argv, IMPORT_SPEC);
  if (typeof o.in !== 'string') {
    const what = typeof o.format === 'string' && (IMPORT_FORMATS as readonly string[]).includes(o.format) ? (o.format === 'tfjs' ? "TensorFlow.js model's model.json (or its folder)" : IMPORT_FORMAT_NAMES[o.format as ImportFormat]) : 'model';
    throw new UsageError(`--in is required: the ${what} to read`);
  }
  const inPath = o.in;
  const format = o.format === undefined ? formatOfFile(inPath) : (formatOf(o.format, IMPORT_FORMATS) as ImportFormat);
  if (o.format === undefined) console.log(`reading ${inPath} as --format ${format} (${IMPORT_FORMAT_NAMES[format]}), told by the file`);
  const file = await readImport(format, inPath, o);
  const choices: ImportChoices = { inputSize: o['input-size'] as number | undefined, mean: o.mean as number | undefined, std: o.std as number | undefined, antiAlias: o['anti-alias'] as boolean | undefined };
  const normalization = importNormalization(file, choices);
  if (!normalization) {
    throw new UsageError(`${inPath} does not record how frames were normalised: give --mean and --std, the training frames' pixel mean and standard deviation after resizing (the tutorial computes them from imgs_train)`);
  }
  if (!(normalization.std > 0)) throw new UsageError(`--std must be positive, got ${normalization.std}`);
  const activation = (o.activation as string | undefined) ?? file.activation ?? 'relu';
  if (!(HIDDEN_ACTIVATIONS as readonly string[]).includes(activation)) throw new UsageError(`--activation must be ${HIDDEN_ACTIVATIONS.join(' or ')}, got "${activation}"`);
  const { tensors, meta } = importedCheckpoint(file, { ...choices, activation: activation as HiddenActivation }, inPath, VERSION);
  const { config, normalization: n } = meta;
  const out = resolve(o.out as string);
  writeAtomic(out, encodeCheckpointTensors(tensors, meta));
  console.log(`wrote ${out}: base width ${config.baseWidth}${describeVariant(config).map((d) => `, ${d}`).join('')}, input ${config.inputSize}×${config.inputSize}, mean ${n.mean}, std ${n.std}`);
  for (const note of file.notes) console.log(`  carried over: ${note}`);
  const size = assumedInputSize(file, choices);
  if (size) console.log(`  assumed: input ${size} × ${size} (the tutorial's), as ${inPath} does not record the size the model was trained at; --input-size sets it`);
}
