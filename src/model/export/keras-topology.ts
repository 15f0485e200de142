/**
 * A Keras functional model's topology (the `layers` of its configuration, as
 * Keras 2, Keras 3, tfjs-layers and tfjs-converter write it) matched layer by
 * layer to the tutorial's U-Net as kerasUNetLayers lists it, the way the
 * ONNX import matches nodes: each layer must read what its counterpart reads
 * and be configured as it is, so a model wired or configured otherwise is
 * refused, naming the layer. The formats differ only in where the weights
 * are (WeightSource). What differs only in form is carried over:
 * - layer names (tfjs names layers conv2d_Conv2D1, Keras 3 counts on across
 *   models): the wiring decides;
 * - a concatenation of [skip, upsampled]: the next convolution's input
 *   channels are reordered to Keras's [upsampled, skip];
 * - a convolution without a bias, a batch normalisation without β or γ:
 *   zeros and ones;
 * - a batch normalisation's ε other than the engine's 1e-3: γ rescaled;
 * - an activation as a layer of its own (Activation, ReLU, ELU) after a
 *   linear convolution; Dropout layers (the identity at inference).
 */
import { BATCH_NORM_DEFAULTS } from '../../ops/batchnorm/kernel.js';
import type { NamedTensor } from '../safetensors.js';
import type { ConvLayerSpec, HiddenActivation } from '../unet.js';
import { ExportError, type KerasLayer, concatSwapChannel, gammaForEngineEpsilon, kerasUNetLayers, layerTensors, reorderKernelInputs } from './keras-layers.js';

/** A layer of the topology, its inputs resolved to layer names; `index` is its place in the file's list. */
export interface TopologyLayer {
  name: string;
  className: string;
  config: Record<string, unknown>;
  inputs: string[];
  index: number;
}

/** Where a format keeps a layer's weights: `part` is kernel, bias, gamma, beta, moving_mean or moving_variance. */
export interface WeightSource {
  take(layer: TopologyLayer, part: string): NamedTensor | undefined;
}

export interface MatchedUNet {
  baseWidth: number;
  activation: HiddenActivation;
  batchNorm: boolean;
  weights: Map<string, NamedTensor>;
  /** The input layer's size, where its shape is fixed and square. */
  inputSize?: number;
  /** What was carried over from another form, in words. */
  notes: Set<string>;
}

type WeightedLayer = Extract<KerasLayer, { kind: 'conv2d' | 'conv2d_transpose' | 'batch_normalization' }>;

/** Layers that pass their input on unchanged at inference. */
const IDENTITY_LAYERS = new Set(['Dropout', 'SpatialDropout2D', 'GaussianDropout', 'GaussianNoise', 'AlphaDropout']);

export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const same = (a: readonly unknown[], b: readonly unknown[]) => a.length === b.length && a.every((v, i) => v === b[i]);
/** A pair option as Keras writes it: [a, b], or one number for both. */
const pair = (v: unknown): unknown[] => (typeof v === 'number' ? [v, v] : Array.isArray(v) ? v : []);

/** The names of the layers a functional configuration's output_layers name ([[name, node, tensor], …]). */
export function outputLayerNames(config: Record<string, unknown>): string[] {
  return (Array.isArray(config.output_layers) ? config.output_layers : []).map((o) => (Array.isArray(o) ? String(o[0]) : ''));
}

/**
 * The U-Net's weights under Keras's names from a functional model's layers
 * (topologyLayers) and output layers, its weights read through `weightsOf`.
 * Every refusal names the layer and why.
 */
export function matchKerasUNet(layers: readonly TopologyLayer[], outputLayers: readonly string[], weightsOf: WeightSource, source: string): MatchedUNet {
  const firstConv = layers.find((l) => l.className === 'Conv2D');
  const firstKernel = firstConv && weightsOf.take(firstConv, 'kernel');
  const baseWidth = firstKernel?.shape.length === 4 ? firstKernel.shape[3]! : 0;
  if (!(baseWidth >= 1) || !same(firstKernel!.shape.slice(0, 3), [3, 3, 1])) {
    throw new ExportError(`${source}: the first convolution's kernel ${firstConv ? `(${firstConv.name}) ` : ''}has shape [${firstKernel?.shape.join(', ') ?? ''}]; the U-Net's first layer is a 3 × 3 convolution of one input channel, (3, 3, 1, width)`);
  }
  const batchNorm = layers.some((l) => l.className === 'BatchNormalization');
  const usesElu = layers.some((l) => l.className === 'ELU' || l.config.activation === 'elu');
  const activation: HiddenActivation = usesElu ? 'elu' : 'relu';
  const keras = kerasUNetLayers(baseWidth, { ...(usesElu ? { activation: 'elu' as const } : {}), ...(batchNorm ? { batchNorm } : {}) });
  const weighted = keras.filter((l): l is WeightedLayer => l.kind === 'conv2d' || l.kind === 'conv2d_transpose' || l.kind === 'batch_normalization');
  const head = weighted[weighted.length - 1]!.name;

  // Each file layer's output, named as the Keras layer producing it; a linear convolution whose activation follows is `<conv>/linear`.
  const kerasName = new Map<string, string>();
  const kerasOf = (l: TopologyLayer, i: number) => {
    const name = kerasName.get(l.inputs[i] ?? '');
    if (name === undefined) throw new ExportError(`${source}: layer ${l.name} (${l.className}) reads ${l.inputs[i] ?? 'nothing'}, which is neither the image nor a layer of the U-Net`);
    return name;
  };
  const swapped = new Set<string>();
  const notes = new Set<string>();
  const weights = new Map<string, NamedTensor>();
  const matched = new Set<string>();
  let inputSize: number | undefined;

  for (const l of layers) {
    const where = `${source}: layer ${l.name} (${l.className})`;
    if (l.className === 'InputLayer') {
      if (kerasName.size > 0) throw new ExportError(`${where}: a second input; the U-Net has one, the image`);
      // Keras 2 and tfjs write batch_input_shape, Keras 3 batch_shape.
      const shape = pair(l.config.batch_input_shape ?? l.config.batch_shape);
      if (shape.length !== 4 || shape[3] !== 1) throw new ExportError(`${where}: takes [${shape.join(', ')}]; the U-Net takes images of one channel, [batch, height, width, 1]`);
      if (typeof shape[1] === 'number' && shape[1] === shape[2]) inputSize = shape[1];
      kerasName.set(l.name, 'input_1');
      continue;
    }
    if (l.inputs.length === 0) throw new ExportError(`${where}: reads nothing`);
    if (dataFormat(l) !== 'channels_last') throw new ExportError(`${where}: data_format ${dataFormat(l)}; the U-Net's layers are channels_last`);
    if (IDENTITY_LAYERS.has(l.className)) {
      kerasName.set(l.name, kerasOf(l, 0));
      continue;
    }
    const act = activationOf(l, where);
    if (act !== undefined) {
      const from = kerasOf(l, 0);
      if (act === 'linear') {
        kerasName.set(l.name, from);
        continue;
      }
      const fused = from.endsWith('/linear') ? weighted.find((w) => `${w.name}/linear` === from) : undefined;
      const layer = fused ?? keras.find((k) => k.kind === 'activation' && k.input === from);
      const wanted = fused?.kind === 'conv2d' || fused?.kind === 'conv2d_transpose' ? fused.spec.activation : layer?.kind === 'activation' ? layer.activation : undefined;
      if (!layer || wanted !== act) throw new ExportError(`${where}: applies ${act} to ${from}, where the U-Net applies ${wanted ?? 'no activation'}`);
      kerasName.set(l.name, layer.name);
      continue;
    }
    if (l.className === 'MaxPooling2D') {
      const from = kerasOf(l, 0);
      const layer = keras.find((k) => k.kind === 'max_pooling2d' && k.input === from);
      const size = pair(l.config.pool_size);
      const strides = l.config.strides === null || l.config.strides === undefined ? size : pair(l.config.strides);
      if (!layer || !same(size, [2, 2]) || !same(strides, [2, 2])) throw new ExportError(`${where}: pools ${from} ${size.join(' × ')} with stride ${strides.join(' × ')}; the U-Net pools 2 × 2 with stride 2 after each level's second convolution`);
      kerasName.set(l.name, layer.name);
      continue;
    }
    if (l.className === 'Concatenate') {
      const from = l.inputs.map((_, i) => kerasOf(l, i));
      const layer = keras.find((k) => k.kind === 'concatenate' && from.length === 2 && [...k.inputs].sort().join() === [...from].sort().join());
      const axis = l.config.axis ?? -1;
      if (!layer || layer.kind !== 'concatenate' || (axis !== -1 && axis !== 3)) throw new ExportError(`${where}: joins ${from.join(' and ')} on axis ${String(axis)}; the U-Net joins each upsampling with its level's skip, on the channels`);
      if (from[0] !== layer.inputs[0]) {
        swapped.add(layer.name);
        notes.add("concatenations of [skip, upsampled]: the input channels of the convolutions after them reordered to Keras's [upsampled, skip]");
      }
      kerasName.set(l.name, layer.name);
      continue;
    }
    const kinds: Record<string, WeightedLayer['kind']> = { Conv2D: 'conv2d', Conv2DTranspose: 'conv2d_transpose', BatchNormalization: 'batch_normalization' };
    const kind = kinds[l.className];
    if (!kind) throw new ExportError(`${where}: has no counterpart in the tutorial's U-Net`);
    // Each tensor of the U-Net feeds one layer with weights at most: what a layer reads says which it is.
    const input = kerasOf(l, 0);
    const layer = weighted.find((w) => w.input === input);
    if (l.inputs.length !== 1 || !layer || layer.kind !== kind || matched.has(layer.name)) {
      throw new ExportError(`${where}: reads ${l.inputs.map((_, i) => kerasOf(l, i)).join(', ')}, where the U-Net has ${layer && !matched.has(layer.name) ? `${layer.name} (${layer.kind})` : 'no layer with weights'}`);
    }
    matched.add(layer.name);
    if (layer.kind === 'batch_normalization') {
      batchNormWeights(l, layer, weightsOf, weights, notes, where);
      kerasName.set(l.name, layer.name);
      continue;
    }
    const spec = layer.spec;
    checkConvConfig(l, spec, where);
    const kernel = weightsOf.take(l, 'kernel');
    if (!kernel || !same(kernel.shape, spec.kernelShape)) throw new ExportError(`${where}: its kernel has shape [${kernel?.shape.join(', ') ?? ''}], where the U-Net's ${spec.name} needs [${spec.kernelShape.join(', ')}]`);
    // After a concatenation of [skip, upsampled], the kernel's first input channels are the skip's.
    const concat = keras.find((k) => k.name === layer.input);
    const upsampled = concat?.kind === 'concatenate' && swapped.has(concat.name) ? weighted.find((w) => w.name === concat.inputs[0])!.spec.filters : 0;
    weights.set(`${spec.name}/kernel`, { shape: [...spec.kernelShape], data: upsampled ? reorderKernelInputs(kernel.data, spec.kernelShape, concatSwapChannel(upsampled, spec.kernelShape[2])) : kernel.data });
    const useBias = l.config.use_bias !== false;
    const bias = useBias ? weightsOf.take(l, 'bias') : undefined;
    if (useBias && (!bias || !same(bias.shape, [spec.filters]))) throw new ExportError(`${where}: its bias has shape [${bias?.shape.join(', ') ?? ''}], where the U-Net's ${spec.name} needs [${spec.filters}]`);
    if (!useBias) notes.add('convolutions without a bias: zero biases');
    weights.set(`${spec.name}/bias`, bias ?? { shape: [spec.filters], data: new Float32Array(spec.filters) });
    const own = convActivation(l, where);
    if (own === 'linear' && spec.activation !== 'none') {
      kerasName.set(l.name, `${spec.name}/linear`);
    } else if (own === (spec.activation === 'none' ? 'linear' : spec.activation)) {
      kerasName.set(l.name, spec.name);
    } else {
      throw new ExportError(`${where}: activation ${own}, where the U-Net's ${spec.name} applies ${spec.activation === 'none' ? 'none' : spec.activation}`);
    }
  }
  const missing = weighted.find((w) => !matched.has(w.name));
  if (missing) throw new ExportError(`${source}: the model has ${matched.size} of the U-Net's ${weighted.length} layers with weights; none is its ${missing.name} (${missing.kind}, reading ${missing.input})`);
  const outputs = outputLayers.map((name) => kerasName.get(name));
  if (outputs.length === 1 && outputs[0] === `${head}/linear`) throw new ExportError(`${source}: the model ends at ${head} without its sigmoid (logits, as for a loss that applies it); the U-Net's output is probabilities: save the model with its sigmoid`);
  if (outputs.length !== 1 || outputs[0] !== head) throw new ExportError(`${source}: the model's output is ${outputs.join(', ') || 'missing'}, not the U-Net's mask (${head} after its sigmoid)`);
  return { baseWidth, activation, batchNorm, weights, ...(inputSize !== undefined ? { inputSize } : {}), notes };
}

/** The keras_history of every __keras_tensor__ in a Keras 3 node's arguments, in order. */
function kerasTensors(v: unknown): unknown[] {
  if (Array.isArray(v)) return v.flatMap(kerasTensors);
  if (!isObject(v)) return [];
  if (v.class_name === '__keras_tensor__') return [isObject(v.config) ? v.config.keras_history : undefined];
  return Object.values(v).flatMap(kerasTensors);
}

/**
 * The layers of a functional configuration with their inputs, in an order
 * where every layer comes after what it reads. Inputs are listed as Keras 2
 * and tfjs do ([[[name, node, tensor, kwargs], …]]) or as Keras 3 does
 * ([{args: […], kwargs: {}}], each input a __keras_tensor__ whose
 * keras_history is [name, node, tensor]).
 */
export function topologyLayers(list: unknown[], source: string): TopologyLayer[] {
  const layers = list.map((raw, i): TopologyLayer => {
    if (!isObject(raw) || typeof raw.class_name !== 'string') throw new ExportError(`${source}: layer ${i} of the topology has no class_name`);
    const config = isObject(raw.config) ? raw.config : {};
    const name = typeof raw.name === 'string' ? raw.name : typeof config.name === 'string' ? config.name : '';
    if (!name) throw new ExportError(`${source}: layer ${i} (${raw.class_name}) has no name`);
    const nodes = Array.isArray(raw.inbound_nodes) ? raw.inbound_nodes : [];
    if (nodes.length > 1) throw new ExportError(`${source}: layer ${name} (${raw.class_name}) is applied ${nodes.length} times; each of the U-Net's layers is applied once`);
    const node: unknown = nodes[0];
    const history = (entry: unknown): string => {
      if (!Array.isArray(entry) || typeof entry[0] !== 'string' || (entry[1] ?? 0) !== 0 || (entry[2] ?? 0) !== 0) {
        throw new ExportError(`${source}: layer ${name} (${raw.class_name}) reads ${JSON.stringify(entry)?.slice(0, 200)}; each input must be another layer's one output, [name, 0, 0]`);
      }
      return entry[0];
    };
    let inputs: string[];
    if (node === undefined) inputs = [];
    else if (Array.isArray(node)) inputs = node.map(history);
    else if (isObject(node) && Array.isArray(node.args)) {
      if (kerasTensors(node.kwargs).length) throw new ExportError(`${source}: layer ${name} (${raw.class_name}) takes a tensor as a keyword argument; the U-Net's layers take theirs positionally`);
      inputs = kerasTensors(node.args).map(history);
    } else {
      throw new ExportError(`${source}: layer ${name} (${raw.class_name}) lists its inputs in neither Keras 2's form [[layer, node, tensor, kwargs], …] nor Keras 3's {args, kwargs}`);
    }
    return { name, className: raw.class_name, config, inputs, index: i };
  });
  const names = new Set<string>();
  for (const l of layers) {
    if (names.has(l.name)) throw new ExportError(`${source}: two layers are named ${l.name}`);
    names.add(l.name);
  }
  for (const l of layers) {
    const missing = l.inputs.find((i) => !names.has(i));
    if (missing) throw new ExportError(`${source}: layer ${l.name} (${l.className}) reads ${missing}, which the topology does not list`);
  }
  // Kahn's order: a layer once everything it reads is placed (the list's own order where it already is one).
  const placed = new Set<string>();
  const order: TopologyLayer[] = [];
  while (order.length < layers.length) {
    const ready = layers.find((l) => !placed.has(l.name) && l.inputs.every((i) => placed.has(i)));
    if (!ready) throw new ExportError(`${source}: the layers read each other in a cycle`);
    placed.add(ready.name);
    order.push(ready);
  }
  return order;
}

function dataFormat(l: TopologyLayer): string {
  const f = l.config.data_format ?? l.config.dataFormat;
  return typeof f === 'string' ? f : 'channels_last';
}

/** The activation an activation layer applies (undefined for other layers). */
function activationOf(l: TopologyLayer, where: string): string | undefined {
  if (l.className === 'Activation') return typeof l.config.activation === 'string' ? l.config.activation : 'linear';
  if (l.className === 'ReLU') {
    const plain = (l.config.max_value ?? null) === null && (l.config.negative_slope ?? 0) === 0 && (l.config.threshold ?? 0) === 0;
    if (!plain) throw new ExportError(`${where}: a ReLU with a cap, slope or threshold; the U-Net's is max(x, 0)`);
    return 'relu';
  }
  if (l.className === 'ELU') {
    if ((l.config.alpha ?? 1) !== 1) throw new ExportError(`${where}: α ${String(l.config.alpha)}; the U-Net's ELU has α 1`);
    return 'elu';
  }
  return undefined;
}

/** A convolution's fused activation, as Keras names it. */
function convActivation(l: TopologyLayer, where: string): string {
  const a = l.config.activation ?? 'linear';
  if (typeof a !== 'string') throw new ExportError(`${where}: an activation of its own kind (${JSON.stringify(a)}); the U-Net's are relu, elu, sigmoid or none`);
  return a;
}

/** Kernel size, strides, padding and dilation of the U-Net's convolutions: 'same' k × k with stride 1, or 2 × 2 with stride 2. */
function checkConvConfig(l: TopologyLayer, spec: ConvLayerSpec, where: string): void {
  const [kh, kw] = spec.kernelShape;
  const stride = spec.kind === 'conv2d' ? 1 : 2;
  const padding = l.config.padding ?? 'valid';
  // 'valid' and 'same' agree for the transposed convolution's 2 × 2 stride-2 kernel, and for the 1 × 1 head.
  const paddingOk = padding === 'same' || (padding === 'valid' && (spec.kind === 'conv2d_transpose' || kh === 1));
  const ok = paddingOk &&
    same(pair(l.config.kernel_size), [kh, kw]) &&
    same(pair(l.config.strides ?? 1), [stride, stride]) &&
    same(pair(l.config.dilation_rate ?? 1), [1, 1]) &&
    (l.config.groups ?? 1) === 1 &&
    (l.config.output_padding ?? null) === null;
  if (!ok) throw new ExportError(`${where}: ${spec.kind === 'conv2d' ? `the U-Net's ${spec.name} is a ${kh} × ${kw} convolution, padding 'same', stride 1` : `the U-Net's ${spec.name} is a 2 × 2 transposed convolution with stride 2`}, no dilation, one group`);
}

/** γ, β and the running statistics of a batch normalisation, its ε carried to the engine's. */
function batchNormWeights(
  l: TopologyLayer,
  layer: Extract<KerasLayer, { kind: 'batch_normalization' }>,
  weightsOf: WeightSource,
  weights: Map<string, NamedTensor>,
  notes: Set<string>,
  where: string,
): void {
  const axis = l.config.axis ?? -1;
  if (axis !== -1 && axis !== 3 && !(Array.isArray(axis) && axis.length === 1 && (axis[0] === -1 || axis[0] === 3))) throw new ExportError(`${where}: normalises axis ${JSON.stringify(axis)}; the U-Net normalises the channels (axis -1)`);
  const filters = layer.spec.filters;
  const names = layerTensors(layer.spec).map(([name]) => name);
  const parts = ['gamma', 'beta', 'moving_mean', 'moving_variance'].map((part, i) => {
    const off = (part === 'gamma' && l.config.scale === false) || (part === 'beta' && l.config.center === false);
    const t = off ? { shape: [filters], data: new Float32Array(filters).fill(part === 'gamma' ? 1 : 0) } : weightsOf.take(l, part);
    if (off) notes.add('batch normalisations without a scale (γ) or centre (β): ones and zeros');
    if (!t || !same(t.shape, [filters])) throw new ExportError(`${where}: its ${part} has shape [${t?.shape.join(', ') ?? ''}], where the U-Net's ${layer.name} has ${filters} channels`);
    weights.set(names[i]!, t);
    return t;
  });
  const epsilon = typeof l.config.epsilon === 'number' ? l.config.epsilon : BATCH_NORM_DEFAULTS.epsilon;
  const engine = BATCH_NORM_DEFAULTS.epsilon;
  if (Math.abs(epsilon - engine) < 1e-9) return;
  weights.set(names[0]!, { shape: [filters], data: gammaForEngineEpsilon(parts[0]!.data, parts[3]!.data, epsilon, engine) });
  notes.add(`batch normalisations with ε ${epsilon}: γ scaled to normalise alike with the engine's ε ${engine}`);
}
