/**
 * The U-Net as Keras lists it in `model.layers`, weightless layers included:
 * input_1, conv2d_1, conv2d_2, max_pooling2d_1, …, conv2d_transpose_1,
 * concatenate_1, …, conv2d_19. For the tutorial's functional model that is
 * the order the layers are created in (each skip joins the decoder later than
 * the pooling that follows it, so depth order and creation order agree).
 * Every exporter walks this one list: the ONNX graph, the tfjs topology and
 * the HDF5 file's layer_names.
 */
import type { NamedTensor } from '../safetensors.js';
import { type BatchNormLayerSpec, type ConvLayerSpec, type HiddenActivation, type UNetVariant, runningStatNames, unetLayerSpecs } from '../unet.js';

export type KerasLayer =
  | { readonly kind: 'input'; readonly name: string }
  | { readonly kind: 'conv2d' | 'conv2d_transpose'; readonly name: string; readonly input: string; readonly spec: ConvLayerSpec }
  | { readonly kind: 'batch_normalization'; readonly name: string; readonly input: string; readonly spec: BatchNormLayerSpec }
  | { readonly kind: 'activation'; readonly name: string; readonly input: string; readonly activation: HiddenActivation }
  | { readonly kind: 'max_pooling2d'; readonly name: string; readonly input: string }
  | { readonly kind: 'concatenate'; readonly name: string; readonly inputs: readonly [string, string] };

const LEVELS = 4;

/**
 * The layers of the U-Net of base width `baseWidth` and the variant
 * (`activation`, `batchNorm`), in Keras's order; each layer's one output is
 * named after it. With batch normalisation a hidden layer is Keras's
 * Conv2D (linear), BatchNormalization and Activation. These are inference
 * graphs: a model's dropout, active only in training, has no layer here.
 */
export function kerasUNetLayers(baseWidth: number, variant: UNetVariant = {}): KerasLayer[] {
  const specs = unetLayerSpecs(baseWidth, variant);
  let nextSpec = 0;
  let pools = 0;
  let concats = 0;
  let activations = 0;
  const layers: KerasLayer[] = [{ kind: 'input', name: 'input_1' }];
  let last = 'input_1';
  // A convolution, with the batch normalisation and activation that follow it in the variant.
  const weighted = (): string => {
    const spec = specs[nextSpec++]!;
    if (spec.kind === 'batch_normalization') throw new Error(`kerasUNetLayers: ${spec.name} does not follow a convolution`);
    layers.push({ kind: spec.kind, name: spec.name, input: last, spec });
    last = spec.name;
    const norm = specs[nextSpec];
    if (norm?.kind === 'batch_normalization') {
      nextSpec++;
      layers.push({ kind: 'batch_normalization', name: norm.name, input: last, spec: norm });
      const name = `activation_${++activations}`;
      layers.push({ kind: 'activation', name, input: norm.name, activation: norm.activation });
      last = name;
    }
    return last;
  };
  const skips: string[] = [];
  for (let level = 0; level < LEVELS; level++) {
    weighted();
    skips.push(weighted());
    const name = `max_pooling2d_${++pools}`;
    layers.push({ kind: 'max_pooling2d', name, input: last });
    last = name;
  }
  weighted();
  weighted();
  for (let level = 0; level < LEVELS; level++) {
    const upsampled = weighted();
    const name = `concatenate_${++concats}`;
    layers.push({ kind: 'concatenate', name, inputs: [upsampled, skips.pop()!] });
    last = name;
    weighted();
    weighted();
  }
  weighted(); // the 1 × 1 sigmoid head
  if (nextSpec !== specs.length) throw new Error(`kerasUNetLayers: placed ${nextSpec} of ${specs.length} weighted layers`);
  return layers;
}

/** What an exporter needs: the weights under their Keras names, and how frames are prepared for the model. */
export interface ExportableUNet {
  readonly baseWidth: number;
  /** The hidden layers' activation (the tutorial's: relu). */
  readonly activation: HiddenActivation;
  /** Batch normalisation after each hidden convolution (its γ, β and running statistics among the weights). */
  readonly batchNorm: boolean;
  /** The square input size the model was trained at (the graphs accept any multiple of 16). */
  readonly inputSize: number;
  readonly weights: ReadonlyMap<string, NamedTensor>;
  /** Frames resized to inputSize (blurred first when antiAlias), then (pixel − mean) / std, are the model's input. */
  readonly preprocessing: { readonly mean: number; readonly std: number; readonly antiAlias: boolean };
}

/** A U-Net read from another format by an importer: its weights under Keras's names, and what the file says of itself. */
export interface ImportedUNet {
  baseWidth: number;
  activation: HiddenActivation;
  batchNorm: boolean;
  weights: Map<string, NamedTensor>;
  /** How the file says frames are prepared (where export recorded it), and the input size where the file fixes a square one. */
  extras: { mean?: number; std?: number; inputSize?: number; antiAlias?: boolean };
  /** What was carried over from another form, in words. */
  notes: string[];
}

export class ExportError extends Error {
  override name = 'ExportError';
}

/** The variant a model to export has, as unetLayerSpecs and kerasUNetLayers take it. */
export function exportVariant(model: Pick<ExportableUNet, 'activation' | 'batchNorm'>): UNetVariant {
  return { ...(model.activation === 'elu' ? { activation: 'elu' as const } : {}), ...(model.batchNorm ? { batchNorm: true as const } : {}) };
}

/** The tensors of a weighted layer under their Keras names: kernel and bias, or γ, β and the running statistics. */
export function layerTensors(spec: ConvLayerSpec | BatchNormLayerSpec): [string, readonly number[]][] {
  if (spec.kind !== 'batch_normalization') return [[`${spec.name}/kernel`, spec.kernelShape], [`${spec.name}/bias`, [spec.filters]]];
  const running = runningStatNames(spec.name);
  return [[`${spec.name}/gamma`, [spec.filters]], [`${spec.name}/beta`, [spec.filters]], [running.mean, [spec.filters]], [running.variance, [spec.filters]]];
}

/**
 * Checks that `weights` holds exactly the tensors of every weighted layer of
 * the U-Net of base width `baseWidth` (and `batchNorm`), with Keras's shapes;
 * names the first tensor that is missing, misshapen or unexpected.
 */
export function checkUNetWeights(weights: ReadonlyMap<string, NamedTensor>, baseWidth: number, source: string, batchNorm = false): void {
  const expected = new Map<string, readonly number[]>();
  for (const spec of unetLayerSpecs(baseWidth, { batchNorm: batchNorm || undefined })) {
    for (const [name, shape] of layerTensors(spec)) expected.set(name, shape);
  }
  for (const [name, shape] of expected) {
    const t = weights.get(name);
    if (!t) throw new ExportError(`${source}: tensor ${name} is missing (a U-Net of base width ${baseWidth} has ${expected.size} tensors)`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new ExportError(`${source}: tensor ${name} has shape [${t.shape.join(', ')}], the U-Net of base width ${baseWidth} needs [${shape.join(', ')}]`);
    }
  }
  for (const name of weights.keys()) {
    if (!expected.has(name)) throw new ExportError(`${source}: unexpected tensor ${name}: the U-Net of base width ${baseWidth} has no such weight`);
  }
}

/**
 * The values of a (kh, kw, a, b) kernel rearranged to (b, a, kh, kw): ONNX's
 * layout for both convolutions (Conv2D (kh, kw, in, out) → (out, in, kh, kw);
 * Conv2DTranspose (kh, kw, out, in) → (in, out, kh, kw)).
 */
export function kernelToOIHW(t: NamedTensor): Float32Array {
  const [kh, kw, a, b] = t.shape as [number, number, number, number];
  const out = new Float32Array(t.data.length);
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      for (let i = 0; i < a; i++) {
        for (let o = 0; o < b; o++) out[((o * a + i) * kh + y) * kw + x] = t.data[((y * kw + x) * a + i) * b + o]!;
      }
    }
  }
  return out;
}

/**
 * The inverse of kernelToOIHW: values in ONNX's (b, a, kh, kw) as Keras's
 * (kh, kw, a, b). `channel(i)` is where Keras's input channel i lies in the
 * ONNX tensor's a axis (the identity unless the channels come in another order).
 */
export function kernelFromOIHW(values: Float32Array, [kh, kw, a, b]: readonly number[], channel: (i: number) => number = (i) => i): Float32Array {
  const out = new Float32Array(values.length);
  for (let y = 0; y < kh!; y++) {
    for (let x = 0; x < kw!; x++) {
      for (let i = 0; i < a!; i++) {
        for (let o = 0; o < b!; o++) out[((y * kw! + x) * a! + i) * b! + o] = values[((o * a! + channel(i)) * kh! + y) * kw! + x]!;
      }
    }
  }
  return out;
}

/**
 * Where Keras's input channel i of the convolution after a concatenation lies
 * in a file that joins [skip, upsampled] instead of Keras's [upsampled, skip]
 * (`upsampled` of `total` channels): importers pass it to the kernel's
 * rearrangement so that each channel meets its own weights.
 */
export function concatSwapChannel(upsampled: number, total: number): (i: number) => number {
  return (i) => (i < upsampled ? i + (total - upsampled) : i - upsampled);
}

/** A (kh, kw, a, b) kernel with its a axis reordered: Keras's channel i taken from the values' channel(i). */
export function reorderKernelInputs(values: Float32Array, [kh, kw, a, b]: readonly number[], channel: (i: number) => number): Float32Array {
  const out = new Float32Array(values.length);
  for (let tap = 0; tap < kh! * kw!; tap++) {
    for (let i = 0; i < a!; i++) out.set(values.subarray((tap * a! + channel(i)) * b!, (tap * a! + channel(i) + 1) * b!), (tap * a! + i) * b!);
  }
  return out;
}

/**
 * γ for the engine's ε (BATCH_NORM_DEFAULTS) from a batch normalisation with
 * ε `epsilon`: a channel is scaled by γ / √(σ² + ε), so γ·√((σ² + 1e-3) /
 * (σ² + ε)) normalises alike, exactly for inference.
 */
export function gammaForEngineEpsilon(gamma: Float32Array, variance: Float32Array, epsilon: number, engine: number): Float32Array {
  return Float32Array.from(gamma, (g, c) => g * Math.sqrt((variance[c]! + engine) / (variance[c]! + epsilon)));
}
