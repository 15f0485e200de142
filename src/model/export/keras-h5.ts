/**
 * Keras 2 HDF5 weights files (what `model.save_weights('weights.h5')` writes
 * and `model.load_weights` reads), through h5wasm (the HDF5 C library in
 * WebAssembly), working on bytes in its in-memory file system.
 *
 * Layout: root attributes `layer_names` (every layer of `model.layers`, in
 * order, weightless ones included), `backend` ('tensorflow') and
 * `keras_version`; one group per layer with a `weight_names` attribute (empty
 * for weightless layers) and, for conv2d_1, datasets
 * `conv2d_1/conv2d_1/kernel:0` and `conv2d_1/conv2d_1/bias:0` in Keras's
 * layouts. Names are fixed-length byte strings, as h5py stores the bytes
 * Keras hands it. Keras loads such a file by position: the i-th layer with
 * weights in the file goes to the i-th layer with weights in the model.
 *
 * A root attribute `wgsl_unet` (ignored by Keras) keeps the input size and
 * the frames' preparation, so a round trip gives back a whole checkpoint.
 */
import * as h5wasm from 'h5wasm';
import { fromHalf } from '../../gpu/tensor-view.js';
import type { NamedTensor } from '../safetensors.js';
import type { HiddenActivation } from '../unet.js';
import { type ExportableUNet, ExportError, checkUNetWeights, exportVariant, kerasUNetLayers, layerTensors } from './keras-layers.js';

/** The Keras version written: a Keras 2 version, so Keras 2 loads the kernels without converting them (it converts files from Keras 1). */
export const KERAS_VERSION = '2.2.4';

/** What the wgsl_unet attribute holds. */
export interface KerasH5Extras {
  inputSize: number;
  /** The hidden layers' activation; absent in files written before it was recorded (relu). */
  activation?: HiddenActivation;
  mean: number;
  std: number;
  antiAlias: boolean;
}

let nextFile = 0;
/** A fresh path in h5wasm's in-memory file system. */
const memPath = () => `/wgsl-unet-${++nextFile}.h5`;

/** Where HDF5's error stack goes while a file is read (h5wasm's in-memory file system). */
const DIAGNOSTICS = '/wgsl-unet-hdf5-errors.txt';

/**
 * Runs `read` with HDF5's standard error (descriptor 2 of h5wasm's C
 * library, the console otherwise) in an in-memory file, so that a damaged
 * file's error stack is not printed; gives back its innermost message (the
 * cause, e.g. "incorrect metadata checksum after all read attempts") with
 * the result or the error. Synchronous: nothing else runs while fd 2 is moved.
 */
function withHdf5Diagnostics<T>(read: () => T): { value?: T; error?: unknown; diagnostic?: string } {
  type Fs = NonNullable<typeof h5wasm.FS>;
  // getStream is Emscripten's, left out of h5wasm's declarations.
  const FS = h5wasm.FS! as Fs & { getStream(fd: number): Parameters<Fs['close']>[0] };
  FS.close(FS.getStream(2));
  // The lowest free descriptor: 2 again.
  const capture = FS.open(DIAGNOSTICS, 'w+');
  const out: { value?: T; error?: unknown; diagnostic?: string } = {};
  try {
    out.value = read();
  } catch (e) {
    out.error = e;
  } finally {
    FS.close(capture);
    FS.open('/dev/stderr', 'w');
    const text = new TextDecoder().decode(FS.readFile(DIAGNOSTICS));
    FS.unlink(DIAGNOSTICS);
    // The first stack's last frame: the innermost call, which names the cause.
    const stack = text.split('HDF5-DIAG')[1] ?? '';
    const frames = [...stack.matchAll(/#\d{3}:.*? in [\w.]+\(\): (.*)/g)];
    if (frames.length) out.diagnostic = frames[frames.length - 1]![1]!.trim();
  }
  return out;
}

/** Fixed-length strings one byte wider than the longest, so each keeps a terminator (HDF5's null-terminated kind). */
function writeNames(target: h5wasm.Group, name: string, values: string[]): void {
  const width = Math.max(1, ...values.map((v) => new TextEncoder().encode(v).length)) + 1;
  target.create_attribute(name, values, [values.length], `A${width}`);
}

function writeString(target: h5wasm.Group, name: string, value: string): void {
  target.create_attribute(name, value, null, `A${new TextEncoder().encode(value).length + 1}`);
}

/** The weights file's bytes. */
export async function encodeKerasH5(model: ExportableUNet, source: string): Promise<Uint8Array> {
  checkUNetWeights(model.weights, model.baseWidth, source, model.batchNorm);
  return writeH5((file) => {
    const layers = kerasUNetLayers(model.baseWidth, exportVariant(model));
    writeNames(file, 'layer_names', layers.map((l) => l.name));
    writeString(file, 'backend', 'tensorflow');
    writeString(file, 'keras_version', KERAS_VERSION);
    const extras: KerasH5Extras = { inputSize: model.inputSize, activation: model.activation, ...model.preprocessing };
    writeString(file, 'wgsl_unet', JSON.stringify(extras));
    for (const layer of layers) {
      const group = file.create_group(layer.name);
      const weighted = layer.kind === 'conv2d' || layer.kind === 'conv2d_transpose' || layer.kind === 'batch_normalization';
      const names = weighted ? layerTensors(layer.spec).map(([name]) => `${name}:0`) : [];
      writeNames(group, 'weight_names', names);
      if (weighted) group.create_group(layer.name);
      for (const weightName of names) {
        const t = model.weights.get(weightName.slice(0, -2))!;
        group.create_dataset({ name: weightName, data: t.data, shape: [...t.shape], dtype: '<f' });
      }
    }
  });
}

/** The bytes of an HDF5 file that `fill` writes, made in h5wasm's in-memory file system. */
export async function writeH5(fill: (file: h5wasm.File) => void): Promise<Uint8Array> {
  await h5wasm.ready;
  const path = memPath();
  const file = new h5wasm.File(path, 'w');
  try {
    fill(file);
  } finally {
    file.close();
  }
  try {
    return h5wasm.FS!.readFile(path);
  } finally {
    h5wasm.FS!.unlink(path);
  }
}

/** A string attribute's values as strings (h5wasm gives one string for a scalar, an array for a list). */
function readNames(target: h5wasm.Group, name: string, source: string): string[] {
  const attr = target.attrs[name];
  if (!attr) throw new ExportError(`${source}: no attribute ${name} on ${target.path}; a Keras weights file has layer_names at its root and weight_names on each layer's group`);
  const value = attr.value;
  // h5py stores Keras's empty list (a weightless layer's weight_names) as an empty float64 array.
  if (ArrayBuffer.isView(value) && (value as Float64Array).length === 0) return [];
  const list = Array.isArray(value) ? value : [value];
  if (!list.every((v) => typeof v === 'string')) throw new ExportError(`${source}: attribute ${name} on ${target.path} is not a list of strings`);
  return list as string[];
}

/** A dataset's values as float32 (float64 narrowed, float16 widened exactly), or null for another type. */
function floatValues(dataset: h5wasm.Dataset): Float32Array | null {
  const meta = dataset.metadata;
  if (meta.type === h5wasm.Module.H5T_class_t.H5T_FLOAT.value && meta.size === 2) return halfValues(dataset);
  const value = dataset.value;
  return value instanceof Float32Array ? value.slice() : value instanceof Float64Array ? Float32Array.from(value) : null;
}

/**
 * A float16 dataset's values (Keras's float16 dtype policy keeps its
 * variables so), widened: h5wasm's `value` refuses float16, so the bytes
 * are read as stored, through the HDF5 library's own read.
 */
function halfValues(dataset: h5wasm.Dataset): Float32Array {
  const { Module } = h5wasm;
  const meta = dataset.metadata;
  const count = (meta.shape ?? []).reduce((a, b) => a * b, 1);
  const ptr = Module._malloc(Math.max(2 * count, 2));
  try {
    const status = Module.get_dataset_data(dataset.file_id, dataset.path, null, null, null, BigInt(ptr));
    if (status < 0) throw new ExportError(`dataset ${dataset.path}: HDF5 could not read its float16 values`);
    const bytes = Module.HEAPU8.subarray(ptr, ptr + 2 * count);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = fromHalf(view.getUint16(2 * i, meta.littleEndian));
    return out;
  } finally {
    Module._free(ptr);
  }
}

/** Every dataset below `group` (Keras 3's layers/), by its path from the file's root. */
function readVariables(group: h5wasm.Group, source: string): Map<string, NamedTensor> {
  const out = new Map<string, NamedTensor>();
  const walk = (g: h5wasm.Group) => {
    for (const key of g.keys()) {
      const item = g.get(key);
      if (item instanceof h5wasm.Group) walk(item);
      else if (item instanceof h5wasm.Dataset) {
        const path = item.path.replace(/^\//, '');
        const data = floatValues(item);
        if (!data) throw new ExportError(`${source}: dataset ${path} holds ${item.dtype}, expected floating-point weights`);
        out.set(path, { shape: item.shape ?? [], data });
      }
    }
  };
  walk(group);
  return out;
}

/** One layer of a weights file: its name and its weights in weight_names order. */
export interface KerasH5Layer {
  name: string;
  weights: { name: string; shape: number[]; data: Float32Array }[];
}

export interface KerasH5Weights {
  /** Every layer of layer_names, in order, weightless ones included (none in Keras 3's layout). */
  layers: KerasH5Layer[];
  /**
   * Keras 3's layout instead (`model.save_weights('x.weights.h5')`, and the
   * weights inside a .keras archive): every dataset under layers/, by its
   * path, layers/conv2d_1/vars/0 and so on (keras-archive.ts).
   */
  variables?: Map<string, NamedTensor>;
  /** What a file written by encodeKerasH5 records beyond Keras's layout. */
  extras?: KerasH5Extras;
}

/**
 * Reads the layers of a Keras 2 HDF5 weights file (the layout above, from
 * Keras or from encodeKerasH5). Checks only the file's own structure;
 * unetWeightsFromKeras matches the layers to the U-Net.
 */
export async function decodeKerasH5(bytes: Uint8Array, source: string): Promise<KerasH5Weights> {
  // HDF5 files start with an 8-byte signature (possibly after a user block of 512·2^k bytes; Keras writes none).
  const signature = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length < 8 || signature.some((b, i) => bytes[i] !== b)) throw new ExportError(`${source}: not an HDF5 file (no HDF5 signature at its start)`);
  await h5wasm.ready;
  const path = memPath();
  h5wasm.FS!.writeFile(path, bytes);
  let opened = false;
  const { value, error, diagnostic } = withHdf5Diagnostics(() => {
    const file = new h5wasm.File(path, 'r');
    opened = true;
    try {
      return readWeightsFile(file, source);
    } finally {
      file.close();
    }
  });
  h5wasm.FS!.unlink(path);
  if (!error) return value!;
  // HDF5 may fail quietly for h5wasm (an object that will not open reads as missing): its message says the file is damaged.
  if (error instanceof ExportError) throw diagnostic ? new ExportError(`${error.message} (HDF5: ${diagnostic}: the file is damaged)`) : error;
  // h5wasm reports a damaged file as a plain Error, opening or walking it; HDF5's innermost message names the cause.
  const why = diagnostic ? `HDF5: ${diagnostic}` : String((error as Error)?.message ?? error);
  throw new ExportError(opened ? `${source}: HDF5 cannot read it (${why}): the file is damaged, or not a Keras weights file` : `${source}: HDF5 cannot open it (${why})`);
}

/** The layers (Keras 2's layout) or variables (Keras 3's) of an open weights file. */
function readWeightsFile(file: h5wasm.File, source: string): KerasH5Weights {
  if (!file.attrs['layer_names'] && file.get('layers') instanceof h5wasm.Group) return { layers: [], variables: readVariables(file.get('layers') as h5wasm.Group, source) };
  // A whole model saved with model.save() keeps its weights in a model_weights group.
  const root = file.attrs['layer_names'] ? (file as h5wasm.Group) : file.get('model_weights');
  if (!(root instanceof h5wasm.Group) || !root.attrs['layer_names']) {
    throw new ExportError(`${source}: no layer_names attribute at the root: not a Keras HDF5 weights file`);
  }
  const layers: KerasH5Layer[] = [];
  for (const layer of readNames(root, 'layer_names', source)) {
    const group = root.get(layer);
    if (!(group instanceof h5wasm.Group)) throw new ExportError(`${source}: layer_names lists ${layer}, but the file has no group ${layer}`);
    const entry: KerasH5Layer = { name: layer, weights: [] };
    layers.push(entry);
    for (const weightName of readNames(group, 'weight_names', source)) {
      const dataset = group.get(weightName);
      if (!(dataset instanceof h5wasm.Dataset)) throw new ExportError(`${source}: ${layer}'s weight_names lists ${weightName}, but the file has no dataset ${layer}/${weightName}`);
      const shape = dataset.shape ?? [];
      const data = floatValues(dataset);
      if (!data) throw new ExportError(`${source}: dataset ${layer}/${weightName} holds ${dataset.dtype}, expected floating-point weights`);
      entry.weights.push({ name: weightName, shape, data });
    }
  }
  const extrasText = file.attrs['wgsl_unet']?.value;
  const result: KerasH5Weights = { layers };
  if (typeof extrasText === 'string') result.extras = parseExtras(extrasText, source);
  return result;
}

/** The wgsl_unet attribute, each field checked for its type. */
function parseExtras(text: string, source: string): KerasH5Extras {
  let v: Partial<Record<keyof KerasH5Extras, unknown>>;
  try {
    v = JSON.parse(text) as typeof v;
  } catch (e) {
    throw new ExportError(`${source}: its wgsl_unet attribute is not JSON (${(e as Error).message})`);
  }
  const finite = (x: unknown) => typeof x === 'number' && Number.isFinite(x);
  if (typeof v !== 'object' || v === null || !finite(v.inputSize) || !finite(v.mean) || !finite(v.std) || typeof v.antiAlias !== 'boolean' || (v.activation !== undefined && v.activation !== 'relu' && v.activation !== 'elu')) {
    throw new ExportError(`${source}: its wgsl_unet attribute does not hold inputSize, mean, std, antiAlias and an activation of relu or elu`);
  }
  return v as KerasH5Extras;
}

/**
 * The U-Net's weights from a weights file's layers, matched as Keras's
 * `load_weights` matches them: by position, the i-th layer with weights in
 * the file to the i-th in the model (so tf.keras's names, conv2d, conv2d_1,
 * …, load too). Each convolution must hold a kernel and a bias of the
 * U-Net's shapes, each batch normalisation (a file with them is the variant
 * with batch normalisation) γ, β, the running mean and variance; the base
 * width is read from the first kernel (3, 3, 1, w).
 */
export function unetWeightsFromKeras(file: KerasH5Weights, source: string): { baseWidth: number; batchNorm: boolean; weights: Map<string, NamedTensor> } {
  const weighted = file.layers.filter((l) => l.weights.length > 0);
  const first = weighted[0]?.weights[0];
  if (!first) throw new ExportError(`${source}: no layer has weights`);
  const baseWidth = first.shape.length === 4 ? first.shape[3]! : 0;
  if (!(baseWidth >= 1) || first.shape[0] !== 3 || first.shape[1] !== 3 || first.shape[2] !== 1) {
    throw new ExportError(`${source}: the first kernel (${weighted[0]!.name}) has shape [${first.shape.join(', ')}]; the U-Net's first layer is a 3 × 3 convolution of one input channel, (3, 3, 1, width)`);
  }
  const batchNorm = weighted.some((l) => l.weights.length === 4);
  const specs = kerasUNetLayers(baseWidth, { batchNorm: batchNorm || undefined }).flatMap((l) => (l.kind === 'conv2d' || l.kind === 'conv2d_transpose' || l.kind === 'batch_normalization' ? [l.spec] : []));
  if (weighted.length !== specs.length) {
    throw new ExportError(`${source}: ${weighted.length} layers with weights, the U-Net has ${specs.length} (${specs[0]!.name} … ${specs[specs.length - 1]!.name})`);
  }
  const weights = new Map<string, NamedTensor>();
  for (const [i, layer] of weighted.entries()) {
    const spec = specs[i]!;
    const want = layerTensors(spec).map(([name]) => name);
    const parts = layer.weights.map((w) => /\/(kernel|bias|gamma|beta|moving_mean|moving_variance)(:\d+)?$/.exec(w.name)?.[1]);
    const wantParts = want.map((name) => name.slice(name.lastIndexOf('/') + 1));
    if (layer.weights.length !== want.length || parts.some((part, j) => part !== wantParts[j])) {
      throw new ExportError(`${source}: layer ${layer.name} (the U-Net's ${spec.name}) has weights ${layer.weights.map((w) => w.name).join(', ')}; expected ${wantParts.join(', ')}`);
    }
    layer.weights.forEach((w, j) => weights.set(want[j]!, { shape: w.shape, data: w.data }));
  }
  try {
    checkUNetWeights(weights, baseWidth, source, batchNorm);
  } catch (e) {
    // Name the file's layer beside the U-Net's, which may be named differently.
    const match = /tensor (\S+)\//.exec((e as Error).message);
    const index = match ? specs.findIndex((s) => s.name === match[1]) : -1;
    throw new ExportError(index >= 0 ? `${(e as Error).message} (the file's layer ${weighted[index]!.name})` : (e as Error).message);
  }
  return { baseWidth, batchNorm, weights };
}
