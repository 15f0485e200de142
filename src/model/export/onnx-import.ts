/**
 * An ONNX model of the tutorial's U-Net back to its weights under Keras's
 * names: one written by export, or one exported elsewhere (torch.onnx.export
 * of the same network, say). The graph is matched node by node to the layers
 * kerasUNetLayers lists: every tensor is named after the Keras layer that
 * would produce it, and each node must read what its layer reads, so a graph
 * wired otherwise is refused rather than loaded into the wrong places. What
 * differs only in form is carried over:
 * - NCHW or NHWC at the ends (the image and the mask have one channel, so a
 *   Transpose there changes nothing);
 * - a concatenation of [skip, upsampled] instead of Keras's [upsampled, skip]:
 *   the next convolution's input channels are reordered to match;
 * - a convolution without a bias: a zero bias;
 * - a batch normalisation's ε other than the engine's 1e-3: γ scaled by
 *   √((σ² + 1e-3) / (σ² + ε)), which normalises alike;
 * - Identity and Dropout nodes (inference leaves them as they are).
 */
import { BATCH_NORM_DEFAULTS } from '../../ops/batchnorm/kernel.js';
import { fromHalf } from '../../gpu/tensor-view.js';
import type { NamedTensor } from '../safetensors.js';
import type { ConvLayerSpec, HiddenActivation } from '../unet.js';
import { ExportError, type ImportedUNet, type KerasLayer, concatSwapChannel, gammaForEngineEpsilon, kerasUNetLayers, kernelFromOIHW, layerTensors } from './keras-layers.js';
import { onnxModelType } from './onnx.js';

interface Attribute { name: string; f?: number; i?: number; ints?: number[]; floats?: number[]; s?: Uint8Array; t?: TensorProto }
interface NodeProto { input?: string[]; output?: string[]; name?: string; opType?: string; domain?: string; attribute?: Attribute[] }
interface TensorProto { dims?: number[]; dataType?: number; floatData?: number[]; int32Data?: number[]; doubleData?: number[]; name?: string; rawData?: Uint8Array; dataLocation?: number }
interface ValueInfo { name?: string; type?: { tensorType?: { shape?: { dim?: { dimValue?: number }[] } } } }
interface ModelProto {
  graph?: { node?: NodeProto[]; initializer?: TensorProto[]; input?: ValueInfo[]; output?: ValueInfo[] };
  metadataProps?: { key?: string; value?: string }[];
}

type WeightedLayer = Extract<KerasLayer, { kind: 'conv2d' | 'conv2d_transpose' | 'batch_normalization' }>;

/**
 * ONNX's floating-point data types a weight may be stored in, widened to
 * float32 exactly (a double narrowed, as Keras's float64 weights are): the
 * bytes of a value in raw_data, and where the values lie otherwise
 * (float16 and bfloat16 as 16-bit patterns in int32_data).
 */
const FLOAT_TYPES: Record<number, { name: string; bytes: number; raw: (view: DataView, at: number) => number; field: 'floatData' | 'int32Data' | 'doubleData'; fromField: (v: number) => number }> = {
  1: { name: 'float32', bytes: 4, raw: (v, at) => v.getFloat32(at, true), field: 'floatData', fromField: (v) => v },
  10: { name: 'float16', bytes: 2, raw: (v, at) => fromHalf(v.getUint16(at, true)), field: 'int32Data', fromField: (v) => fromHalf(v & 0xffff) },
  11: { name: 'float64', bytes: 8, raw: (v, at) => v.getFloat64(at, true), field: 'doubleData', fromField: (v) => v },
  16: { name: 'bfloat16', bytes: 2, raw: (v, at) => fromBfloat16(v.getUint16(at, true)), field: 'int32Data', fromField: (v) => fromBfloat16(v & 0xffff) },
};
const EXTERNAL = 1;

/** A bfloat16's value: the upper half of a float32's bits. */
function fromBfloat16(bits: number): number {
  return new Float32Array(new Uint32Array([bits << 16]).buffer)[0]!;
}
/** The activation ops of the U-Net's layers. */
const ACTIVATION_OPS: Record<string, ConvLayerSpec['activation']> = { Relu: 'relu', Elu: 'elu', Sigmoid: 'sigmoid' };

/** A floating-point initializer's dimensions and values, as float32. */
function tensorValues(t: TensorProto, source: string): NamedTensor {
  const name = t.name ?? '(unnamed)';
  if (t.dataLocation === EXTERNAL) throw new ExportError(`${source}: initializer ${name} keeps its values in an external file; save the model with its weights inside it`);
  const type = FLOAT_TYPES[t.dataType ?? 0];
  if (!type) throw new ExportError(`${source}: initializer ${name} holds ONNX data type ${t.dataType ?? 0}, not floating point (float32, float16, bfloat16 or float64)`);
  const dims = t.dims ?? [];
  const count = dims.reduce((a, b) => a * b, 1);
  let data: Float32Array;
  if (t.rawData && t.rawData.length > 0) {
    if (t.rawData.length !== count * type.bytes) throw new ExportError(`${source}: initializer ${name} has ${t.rawData.length} bytes for ${count} ${type.name} values`);
    const view = new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength);
    data = Float32Array.from({ length: count }, (_, i) => type.raw(view, i * type.bytes));
  } else {
    const values = t[type.field] ?? [];
    if (values.length !== count) throw new ExportError(`${source}: initializer ${name} has ${values.length} values for dimensions [${dims.join(', ')}]`);
    data = Float32Array.from(values, type.fromField);
  }
  return { shape: dims, data };
}

const attr = (node: NodeProto, name: string) => node.attribute?.find((a) => a.name === name);
const intsOr = (node: NodeProto, name: string, fallback: number[]) => attr(node, name)?.ints ?? fallback;
const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

/** Reads an ONNX model of the U-Net; every refusal says which node or tensor and why. */
export function decodeOnnxUNet(bytes: Uint8Array, source: string): ImportedUNet {
  let model: ModelProto;
  try {
    model = onnxModelType.toObject(onnxModelType.decode(bytes), { longs: Number, arrays: true }) as ModelProto;
  } catch (e) {
    throw new ExportError(`${source}: not an ONNX model (${(e as Error).message})`);
  }
  const graph = model.graph;
  const nodes = graph?.node ?? [];
  if (!graph || nodes.length === 0) throw new ExportError(`${source}: not an ONNX model of a network (no graph nodes)`);
  const where = (n: NodeProto) => `node ${n.name || '(unnamed)'} (${n.opType})`;

  // Constant values by name: initializers, Constant nodes, and Identity nodes over either.
  const constants = new Map<string, TensorProto>();
  for (const t of graph.initializer ?? []) constants.set(t.name ?? '', t);
  for (const n of nodes) {
    if (n.opType === 'Constant' && attr(n, 'value')?.t) constants.set(n.output![0]!, attr(n, 'value')!.t!);
    else if (n.opType === 'Identity' && constants.has(n.input![0]!)) constants.set(n.output![0]!, constants.get(n.input![0]!)!);
  }
  const value = (n: NodeProto, i: number, what: string): NamedTensor | undefined => {
    const name = n.input?.[i];
    if (!name) return undefined;
    const t = constants.get(name);
    if (!t) throw new ExportError(`${source}: ${where(n)} takes its ${what} from ${name}, which is not a constant of the file`);
    return tensorValues({ ...t, name }, source);
  };

  const firstConv = nodes.find((n) => n.opType === 'Conv');
  const firstKernel = firstConv && value(firstConv, 1, 'kernel');
  const baseWidth = firstKernel?.shape.length === 4 ? firstKernel.shape[0]! : 0;
  if (!(baseWidth >= 1) || !same(firstKernel!.shape.slice(1), [1, 3, 3])) {
    throw new ExportError(`${source}: the first convolution's kernel has dimensions [${firstKernel?.shape.join(', ') ?? ''}]; the U-Net's first layer is a 3 × 3 convolution of one input channel, [width, 1, 3, 3]`);
  }
  const batchNorm = nodes.some((n) => n.opType === 'BatchNormalization');
  const activation: HiddenActivation = nodes.some((n) => n.opType === 'Elu') ? 'elu' : 'relu';
  const layers = kerasUNetLayers(baseWidth, { ...(activation === 'elu' ? { activation } : {}), ...(batchNorm ? { batchNorm } : {}) });
  const weighted = layers.filter((l): l is WeightedLayer => l.kind === 'conv2d' || l.kind === 'conv2d_transpose' || l.kind === 'batch_normalization');
  const head = weighted[weighted.length - 1]!.name;

  // Each tensor of the graph, named as the Keras layer producing it; a fused activation's input is `<conv>/linear`.
  const initializers = new Set(constants.keys());
  const inputs = (graph.input ?? []).map((v) => v.name ?? '').filter((name) => !initializers.has(name));
  if (inputs.length !== 1) throw new ExportError(`${source}: the graph has ${inputs.length} inputs besides its weights; the U-Net has one, the image`);
  const keras = new Map<string, string>([[inputs[0]!, 'input_1']]);
  const kerasOf = (n: NodeProto, i: number) => {
    const name = keras.get(n.input?.[i] ?? '');
    if (name === undefined) throw new ExportError(`${source}: ${where(n)} reads ${n.input?.[i]}, which is neither the image nor a layer of the U-Net`);
    return name;
  };
  const swapped = new Set<string>();
  const notes = new Set<string>();
  const weights = new Map<string, NamedTensor>();
  let next = 0;

  for (const n of nodes) {
    if (n.domain && n.domain !== 'ai.onnx') throw new ExportError(`${source}: ${where(n)} is of operator set ${n.domain}; the U-Net uses ONNX's own operators (export with functions inlined)`);
    const op = n.opType ?? '';
    if (op === 'Constant' || (op === 'Identity' && constants.has(n.output![0]!))) continue;
    if (op === 'Identity' || op === 'Dropout') {
      // A Dropout is the identity unless its training_mode input is a constant true.
      const training = op === 'Dropout' && n.input?.[2] ? constants.get(n.input[2]) : undefined;
      if (training && (training.rawData?.some((b) => b !== 0) || training.int32Data?.some((v) => v !== 0))) throw new ExportError(`${source}: ${where(n)} drops in training mode; export the model for inference`);
      keras.set(n.output![0]!, kerasOf(n, 0));
      continue;
    }
    if (op === 'Transpose') {
      // Only between NHWC and NCHW where one channel makes it a reshaping: the image in, the mask out.
      const from = kerasOf(n, 0);
      const perm = intsOr(n, 'perm', []);
      const ok = from === 'input_1' ? same(perm, [0, 3, 1, 2]) : from === head || from === `${head}/linear` ? same(perm, [0, 2, 3, 1]) : false;
      if (!ok) throw new ExportError(`${source}: ${where(n)} transposes ${from} by [${perm.join(', ')}]; the U-Net transposes nothing but its one-channel image to NCHW and its mask back`);
      keras.set(n.output![0]!, from);
      continue;
    }
    if (op in ACTIVATION_OPS) {
      const from = kerasOf(n, 0);
      const fused = from.endsWith('/linear') ? weighted.find((l) => `${l.name}/linear` === from) : undefined;
      const layer = fused ?? layers.find((l) => l.kind === 'activation' && l.input === from);
      const wanted = fused?.kind === 'conv2d' || fused?.kind === 'conv2d_transpose' ? fused.spec.activation : layer?.kind === 'activation' ? layer.activation : undefined;
      if (!layer || wanted !== ACTIVATION_OPS[op]) throw new ExportError(`${source}: ${where(n)} applies ${op} to ${from}, where the U-Net applies ${wanted ?? 'no activation'}`);
      if (op === 'Elu' && (attr(n, 'alpha')?.f ?? 1) !== 1) throw new ExportError(`${source}: ${where(n)} has α ${attr(n, 'alpha')!.f}; the U-Net's ELU has α 1`);
      keras.set(n.output![0]!, layer.name);
      continue;
    }
    if (op === 'MaxPool') {
      const from = kerasOf(n, 0);
      const layer = layers.find((l) => l.kind === 'max_pooling2d' && l.input === from);
      const pads = intsOr(n, 'pads', [0, 0, 0, 0]);
      if (!layer || pads.length !== 4 || !same(intsOr(n, 'kernel_shape', []), [2, 2]) || !same(intsOr(n, 'strides', [1, 1]), [2, 2]) || pads.some((p) => p !== 0) || intsOr(n, 'dilations', [1, 1]).some((d) => d !== 1)) {
        throw new ExportError(`${source}: ${where(n)} pools ${from}; the U-Net pools 2 × 2 with stride 2 after each level's second convolution`);
      }
      keras.set(n.output![0]!, layer.name);
      continue;
    }
    if (op === 'Concat') {
      const axis = attr(n, 'axis')?.i;
      const from = [kerasOf(n, 0), kerasOf(n, 1)];
      const layer = layers.find((l) => l.kind === 'concatenate' && n.input!.length === 2 && [...l.inputs].sort().join() === [...from].sort().join());
      if (!layer || layer.kind !== 'concatenate' || (axis !== 1 && axis !== -3)) throw new ExportError(`${source}: ${where(n)} joins ${from.join(' and ')} on axis ${axis}; the U-Net joins each upsampling with its level's skip, on the channels`);
      if (from[0] !== layer.inputs[0]) {
        swapped.add(layer.name);
        notes.add("concatenations of [skip, upsampled]: the input channels of the convolutions after them reordered to Keras's [upsampled, skip]");
      }
      keras.set(n.output![0]!, layer.name);
      continue;
    }
    if (op !== 'Conv' && op !== 'ConvTranspose' && op !== 'BatchNormalization') throw new ExportError(`${source}: ${where(n)} has no counterpart in the tutorial's U-Net`);

    const layer = weighted[next++];
    const kind = { Conv: 'conv2d', ConvTranspose: 'conv2d_transpose', BatchNormalization: 'batch_normalization' }[op];
    if (!layer || layer.kind !== kind) throw new ExportError(`${source}: ${where(n)} comes where the U-Net has ${layer ? `${layer.name} (${layer.kind})` : 'no more layers with weights'}`);
    const input = kerasOf(n, 0);
    if (input !== layer.input) throw new ExportError(`${source}: ${where(n)} reads ${input}, where the U-Net's ${layer.name} reads ${layer.input}`);
    if (layer.kind === 'batch_normalization') {
      batchNormWeights(n, layer, value, weights, notes, `${source}: ${where(n)}`);
      keras.set(n.output![0]!, layer.name);
    } else {
      const spec = layer.spec;
      const kernel = value(n, 1, 'kernel');
      if (!kernel) throw new ExportError(`${source}: ${where(n)} has no kernel`);
      const bias = value(n, 2, 'bias');
      const [kh, kw, a, b] = spec.kernelShape;
      // ONNX's (out, in, kh, kw) for Conv and (in, out, kh, kw) for ConvTranspose: Keras's (kh, kw, a, b) as (b, a, kh, kw).
      if (!same(kernel.shape, [b, a, kh, kw])) throw new ExportError(`${source}: ${where(n)} has a kernel of dimensions [${kernel.shape.join(', ')}], where the U-Net's ${spec.name} needs [${[b, a, kh, kw].join(', ')}]`);
      checkConvAttributes(n, layer.kind, kh, `${source}: ${where(n)}`);
      // After a concatenation of [skip, upsampled], the kernel's first input channels are the skip's.
      const concat = layers.find((l) => l.name === layer.input);
      const upsampled = concat?.kind === 'concatenate' && swapped.has(concat.name) ? (weighted.find((l) => l.name === concat.inputs[0])!.spec.filters) : 0;
      weights.set(`${spec.name}/kernel`, { shape: [...spec.kernelShape], data: kernelFromOIHW(kernel.data, spec.kernelShape, upsampled ? concatSwapChannel(upsampled, a) : undefined) });
      if (bias && !same(bias.shape, [spec.filters])) throw new ExportError(`${source}: ${where(n)} has a bias of dimensions [${bias.shape.join(', ')}], where the U-Net's ${spec.name} needs [${spec.filters}]`);
      if (!bias) notes.add('convolutions without a bias: zero biases');
      weights.set(`${spec.name}/bias`, bias ?? { shape: [spec.filters], data: new Float32Array(spec.filters) });
      keras.set(n.output![0]!, spec.activation === 'none' ? spec.name : `${spec.name}/linear`);
    }
  }
  if (next !== weighted.length) throw new ExportError(`${source}: the graph ends after ${next} of the U-Net's ${weighted.length} layers with weights (the next is ${weighted[next]!.name})`);
  const outputs = (graph.output ?? []).map((v) => keras.get(v.name ?? ''));
  if (outputs.length === 1 && outputs[0] === `${head}/linear`) throw new ExportError(`${source}: the graph ends at ${head} without its sigmoid (logits, as for a loss that applies it); the U-Net's output is probabilities: export the model with its sigmoid`);
  if (outputs.length !== 1 || outputs[0] !== head) throw new ExportError(`${source}: the graph's output is ${outputs.join(', ') || 'missing'}, not the U-Net's mask (${head} after its sigmoid)`);

  const props = new Map((model.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? '']));
  const number = (key: string) => (props.has(key) && Number.isFinite(Number(props.get(key))) ? Number(props.get(key)) : undefined);
  const extras = {
    ...(number('wgsl_unet.mean') !== undefined ? { mean: number('wgsl_unet.mean')! } : {}),
    ...(number('wgsl_unet.std') !== undefined ? { std: number('wgsl_unet.std')! } : {}),
    ...(number('wgsl_unet.input_size') !== undefined ? { inputSize: number('wgsl_unet.input_size')! } : squareInput(graph.input?.find((v) => v.name === inputs[0]))),
    ...(props.has('wgsl_unet.anti_alias') ? { antiAlias: props.get('wgsl_unet.anti_alias') === 'true' } : {}),
  };
  return { baseWidth, activation, batchNorm, weights, extras, notes: [...notes] };
}

/** The square input size a graph input of fixed NCHW or NHWC dimensions (one channel) names, as extras take it. */
function squareInput(v: { type?: { tensorType?: { shape?: { dim?: { dimValue?: number }[] } } } } | undefined): { inputSize?: number } {
  const dims = (v?.type?.tensorType?.shape?.dim ?? []).map((d) => d.dimValue ?? 0);
  const [h, w] = dims.length !== 4 ? [0, 0] : dims[1] === 1 ? [dims[2]!, dims[3]!] : dims[3] === 1 ? [dims[1]!, dims[2]!] : [0, 0];
  return h > 0 && h === w ? { inputSize: h } : {};
}

/** Stride, padding, dilation and groups of the U-Net's convolutions: 'same' k × k with stride 1, or 2 × 2 with stride 2. */
function checkConvAttributes(n: NodeProto, kind: 'conv2d' | 'conv2d_transpose', k: number, where: string): void {
  const pad = kind === 'conv2d' ? (k - 1) / 2 : 0;
  const autoPad = attr(n, 'auto_pad')?.s ? new TextDecoder().decode(attr(n, 'auto_pad')!.s) : 'NOTSET';
  const pads = intsOr(n, 'pads', [0, 0, 0, 0]);
  const padsOk = autoPad === 'NOTSET' ? pads.length === 4 && pads.every((p) => p === pad) : autoPad === 'VALID' ? pad === 0 : kind === 'conv2d' && (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER');
  const stride = kind === 'conv2d' ? 1 : 2;
  const ok = padsOk &&
    same(intsOr(n, 'strides', [1, 1]), [stride, stride]) &&
    intsOr(n, 'dilations', [1, 1]).every((d) => d === 1) &&
    (attr(n, 'group')?.i ?? 1) === 1 &&
    intsOr(n, 'output_padding', [0, 0]).every((p) => p === 0) &&
    !attr(n, 'output_shape');
  if (!ok) throw new ExportError(`${where}: ${kind === 'conv2d' ? `the U-Net's ${k} × ${k} convolutions pad ${pad} on each side, with stride 1` : "the U-Net's transposed convolutions are 2 × 2 with stride 2 and no padding"}, no dilation, one group`);
}

/** γ, β and the running statistics of an inference-mode BatchNormalization, its ε folded into the variance. */
function batchNormWeights(
  n: NodeProto,
  layer: Extract<KerasLayer, { kind: 'batch_normalization' }>,
  value: (n: NodeProto, i: number, what: string) => NamedTensor | undefined,
  weights: Map<string, NamedTensor>,
  notes: Set<string>,
  where: string,
): void {
  if ((attr(n, 'training_mode')?.i ?? 0) !== 0 || (n.output?.length ?? 0) !== 1) throw new ExportError(`${where}: a batch normalisation in training mode; export the model for inference`);
  const parts = ['γ', 'β', 'mean', 'variance'].map((what, i) => value(n, i + 1, what));
  const names = layerTensors(layer.spec).map(([name]) => name);
  const filters = layer.spec.filters;
  for (const [i, t] of parts.entries()) {
    if (!t || !same(t.shape, [filters])) throw new ExportError(`${where}: its ${['γ', 'β', 'mean', 'variance'][i]} has dimensions [${t?.shape.join(', ') ?? ''}], where the U-Net's ${layer.name} has ${filters} channels`);
    weights.set(names[i]!, t);
  }
  // ONNX's default ε is 1e-5; an attribute of 1e-3 is 1e-3 rounded to f32.
  const epsilon = attr(n, 'epsilon')?.f ?? 1e-5;
  const engine = BATCH_NORM_DEFAULTS.epsilon;
  if (Math.abs(epsilon - engine) < 1e-9) return;
  weights.set(names[0]!, { shape: [filters], data: gammaForEngineEpsilon(parts[0]!.data, parts[3]!.data, epsilon, engine) });
  notes.add(`batch normalisations with ε ${Number(epsilon.toPrecision(6))}: γ scaled to normalise alike with the engine's ε ${engine}`);
}
