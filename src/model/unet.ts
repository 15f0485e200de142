/**
 * The Keras tutorial's U-Net (reference/seed-pipeline.md), on the autograd ops.
 *
 * Encoder: four levels of two 3 × 3 'same' ReLU convolutions (w, 2w, 4w, 8w
 * filters) each followed by 2 × 2 max-pooling; two 16w convolutions at the
 * bottom. Decoder: four levels of a 2 × 2 stride-2 transposed convolution
 * (8w, 4w, 2w, w filters, no activation), concatenated with the encoder
 * output of the same size (upsampled first, skip second), then two 3 × 3 ReLU
 * convolutions. Head: a 1 × 1 convolution to one channel with a sigmoid.
 * At w = 32 that is 7,759,521 parameters.
 *
 * Parameters are created in the order Keras creates the layers when the
 * tutorial's functional code runs, with Keras's automatic names (conv2d_1 …
 * conv2d_19, conv2d_transpose_1 … conv2d_transpose_4, each with /kernel and
 * /bias), so weights map one to one onto a Keras or tfjs-layers model.
 *
 * Variants from the competition's best teams, off by default: ELU in place
 * of every ReLU (`activation`); dropout after the bottom's two convolutions
 * while training (`dropout`, Keras's Dropout there); batch normalisation
 * between each hidden convolution and its activation (`batchNorm`, Keras's
 * BatchNormalization layers batch_normalization_1 … _18, whose γ and β are
 * parameters and whose running mean and variance are the model's `state`).
 * None changes the convolutions' weights' names or shapes.
 */
import type { Gpu } from '../gpu/gpu.js';
import { shapeStr } from '../gpu/errors.js';
import { Tensor } from '../autograd/tensor.js';
import { batchNorm, concat, conv2d, convTranspose2x2, dropout, maxPool2x2 } from '../autograd/index.js';
import { activeTape } from '../autograd/tape.js';
import { Replays } from '../autograd/replay.js';
import { ParameterStore } from './parameters.js';
import { glorotUniformKeras } from './init.js';
import { Rng } from './rng.js';

export interface UNetOptions {
  /** Filters of the first level (the tutorial: 32). */
  baseWidth?: number;
  /** Height and width of the square input the model is built for (the tutorial: 96); a multiple of 16. */
  inputSize?: number;
  /** Seed of the Glorot-uniform initialisation. */
  seed?: number;
  /**
   * Initial bias of the last (sigmoid) layer: 0, as Keras starts every bias.
   * Only the starting weights depend on it, not the model.
   */
  outputBias?: number;
  /** The hidden layers' activation: the tutorial's 'relu' (default) or 'elu' (α = 1). */
  activation?: HiddenActivation;
  /** Dropout rate after the bottom's convolutions while training, in [0, 1); 0 (default) for none. */
  dropout?: number;
  /** Batch normalisation between each hidden convolution and its activation (default false). */
  batchNorm?: boolean;
}

/** The activations the hidden convolutions can have. */
export type HiddenActivation = 'relu' | 'elu';
export const HIDDEN_ACTIVATIONS: readonly HiddenActivation[] = ['relu', 'elu'];

/** A model's configuration as checkpoints keep it; `activation`, `dropout` and `batchNorm` are absent for the tutorial's (ReLU, none, none). */
export interface UNetConfig {
  readonly baseWidth: number;
  readonly inputSize: number;
  readonly seed: number;
  readonly activation?: 'elu';
  readonly dropout?: number;
  readonly batchNorm?: true;
}

/** The variant of a model (absent fields: the tutorial's), as its config records it. */
export type UNetVariant = Pick<UNetConfig, 'activation' | 'dropout' | 'batchNorm'>;

/**
 * The variant's changes to the tutorial's layers in words ("ELU activations",
 * "batch normalisation"); with `dropout`, the training-only dropout too.
 */
export function describeVariant(v: UNetVariant, opts: { dropout?: boolean } = {}): string[] {
  return [
    ...(v.activation ? [`${v.activation.toUpperCase()} activations`] : []),
    ...(v.batchNorm ? ['batch normalisation'] : []),
    ...(opts.dropout && v.dropout ? [`dropout ${v.dropout} after the bottom's convolutions`] : []),
  ];
}

/** One layer with weights, as Keras would list it: a convolution or a batch normalisation. */
export type UNetLayerSpec = ConvLayerSpec | BatchNormLayerSpec;

export interface ConvLayerSpec {
  readonly name: string;
  readonly kind: 'conv2d' | 'conv2d_transpose';
  /** Keras kernel layout: Conv2D (kh, kw, in, out); Conv2DTranspose (kh, kw, out, in). */
  readonly kernelShape: readonly [number, number, number, number];
  /** Number of filters (output channels). */
  readonly filters: number;
  /** Fused activation (Conv2D only; transposed convolutions have none; none where a batch normalisation follows). */
  readonly activation: HiddenActivation | 'sigmoid' | 'none';
}

export interface BatchNormLayerSpec {
  readonly name: string;
  readonly kind: 'batch_normalization';
  /** Channels normalised: γ, β, the running mean and variance have one value each. */
  readonly filters: number;
  /** The hidden layer's activation, applied after the normalisation (fused into it). */
  readonly activation: HiddenActivation;
}

/** The running statistics of batch normalisation `name`, as the model's state names them (Keras's). */
export const runningStatNames = (name: string) => ({ mean: `${name}/moving_mean`, variance: `${name}/moving_variance` });

/** Encoder levels (and decoder levels); the input shrinks by 2^LEVELS at the bottom. */
const LEVELS = 4;

export function resolveUNetOptions(options: UNetOptions = {}): UNetConfig {
  const { baseWidth = 32, inputSize = 96, seed = 1 } = options;
  if (!Number.isInteger(baseWidth) || baseWidth < 1) throw new Error(`U-Net: baseWidth must be a positive integer, got ${baseWidth}`);
  if (!Number.isInteger(inputSize) || inputSize < 16 || inputSize % 16 !== 0) {
    throw new Error(`U-Net: inputSize must be a positive multiple of 16 (four 2 × 2 poolings, then four 2 × upsamplings), got ${inputSize}`);
  }
  if (!Number.isInteger(seed)) throw new Error(`U-Net: seed must be an integer, got ${seed}`);
  const { activation = 'relu', dropout = 0 } = options;
  if (!HIDDEN_ACTIVATIONS.includes(activation)) throw new Error(`U-Net: activation must be ${HIDDEN_ACTIVATIONS.join(' or ')}, got ${activation}`);
  if (!(dropout >= 0 && dropout < 1)) throw new Error(`U-Net: dropout must be a rate in [0, 1), got ${dropout}`);
  return { baseWidth, inputSize, seed, ...(activation === 'elu' ? { activation } : {}), ...(dropout > 0 ? { dropout } : {}), ...(options.batchNorm ? { batchNorm: true as const } : {}) };
}

/**
 * The layers with weights, in Keras creation order, for base width `w` and
 * the variant: the hidden layers' activation, and whether a batch
 * normalisation follows each hidden convolution.
 */
export function unetLayerSpecs(baseWidth: number, variant: UNetVariant = {}): UNetLayerSpec[] {
  const w = baseWidth;
  const hidden = variant.activation ?? 'relu';
  const specs: UNetLayerSpec[] = [];
  let convs = 0;
  let transposes = 0;
  let norms = 0;
  const conv = (inC: number, out: number, k = 3, head = false) => {
    const normalised = variant.batchNorm === true && !head;
    specs.push({ name: `conv2d_${++convs}`, kind: 'conv2d', kernelShape: [k, k, inC, out], filters: out, activation: head ? 'sigmoid' : normalised ? 'none' : hidden });
    if (normalised) specs.push({ name: `batch_normalization_${++norms}`, kind: 'batch_normalization', filters: out, activation: hidden });
  };
  const up = (inC: number, out: number) =>
    specs.push({ name: `conv2d_transpose_${++transposes}`, kind: 'conv2d_transpose', kernelShape: [2, 2, out, inC], filters: out, activation: 'none' });

  let channels = 1;
  for (let level = 0; level <= LEVELS; level++) {
    const f = w * 2 ** level; // the last iteration is the bottom (16w)
    conv(channels, f);
    conv(f, f);
    channels = f;
  }
  for (let level = LEVELS - 1; level >= 0; level--) {
    const f = w * 2 ** level;
    up(channels, f);
    conv(2 * f, f); // upsampled f channels + skip f channels
    conv(f, f);
    channels = f;
  }
  conv(channels, 1, 1, true);
  return specs;
}

/** A parameter store filled with the U-Net's initial weights, not yet on the GPU. */
export function buildUNetParameters(options: UNetOptions = {}): ParameterStore {
  const config = resolveUNetOptions(options);
  const rng = new Rng(config.seed);
  const store = new ParameterStore();
  const outputBias = options.outputBias ?? 0;
  if (!Number.isFinite(outputBias)) throw new Error(`U-Net: outputBias must be a finite number, got ${outputBias}`);
  for (const spec of unetLayerSpecs(config.baseWidth, config)) {
    if (spec.kind === 'batch_normalization') {
      // Keras's initial γ and β.
      store.add(`${spec.name}/gamma`, [spec.filters], new Float32Array(spec.filters).fill(1));
      store.add(`${spec.name}/beta`, [spec.filters], 'zeros');
      continue;
    }
    store.add(`${spec.name}/kernel`, spec.kernelShape, glorotUniformKeras(spec.kernelShape, rng));
    const bias = spec.activation === 'sigmoid' && outputBias !== 0 ? new Float32Array(spec.filters).fill(outputBias) : 'zeros';
    store.add(`${spec.name}/bias`, [spec.filters], bias);
  }
  return store;
}

/**
 * The model's state that is not trained by the optimiser, not yet on the
 * GPU: each batch normalisation's running mean and variance, at Keras's
 * initial 0 and 1; null for a model without batch normalisation.
 */
export function buildUNetState(options: UNetOptions = {}): ParameterStore | null {
  const config = resolveUNetOptions(options);
  if (!config.batchNorm) return null;
  const store = new ParameterStore();
  for (const spec of unetLayerSpecs(config.baseWidth, config)) {
    if (spec.kind !== 'batch_normalization') continue;
    const names = runningStatNames(spec.name);
    store.add(names.mean, [spec.filters], 'zeros');
    store.add(names.variance, [spec.filters], new Float32Array(spec.filters).fill(1));
  }
  return store;
}

export class UNet {
  readonly layers: readonly UNetLayerSpec[];
  /** Its training steps and forward passes as captured for replay (see trainer.ts). */
  readonly replays: Replays;

  /** With dropout: the u32 its masks are hashed from, written before each training step (beginTrainingStep). */
  private readonly dropoutSeed: Tensor | null;
  /**
   * Training steps begun: the next step's dropout seed. Resuming sets it to
   * the checkpoint's step count, so that a resumed run draws the masks an
   * uninterrupted one would have.
   */
  trainingSteps = 0;

  constructor(
    readonly gpu: Gpu,
    readonly config: UNetConfig,
    /** The weights, finalized on `gpu`. */
    readonly parameters: ParameterStore,
    /** The batch normalisations' running statistics (buildUNetState), finalized on `gpu`; null without them. */
    readonly state: ParameterStore | null = null,
  ) {
    this.layers = unetLayerSpecs(config.baseWidth, config);
    if (config.batchNorm && !state) throw new Error('UNet: a model with batch normalisation needs its state (buildUNetState)');
    this.replays = new Replays(gpu);
    this.dropoutSeed = config.dropout ? Tensor.empty(gpu, [1]) : null;
    if (this.dropoutSeed) gpu.upload(this.dropoutSeed.view, Uint32Array.of(0));
  }

  /**
   * Called before each training step's forward pass (trainingStep does):
   * gives its dropout a seed of its own. The seed is GPU data, so a replayed
   * step draws new masks too.
   */
  beginTrainingStep(): void {
    if (!this.dropoutSeed) return;
    const seed = (Math.imul(this.config.seed, 0x9e3779b1) + this.trainingSteps++) >>> 0;
    this.gpu.upload(this.dropoutSeed.view, Uint32Array.of(seed));
  }

  /**
   * Probabilities [N, H, W, 1] for images [N, H, W, 1] (H and W multiples of
   * 16; the model is fully convolutional, though trained at inputSize).
   * Dropout, if any, applies where a tape records (training) and is the
   * identity elsewhere.
   *
   * Inside a recording Tape the intermediates belong to the tape. Otherwise
   * (noGrad, or no tape) each intermediate is released as soon as the next
   * layer has been recorded, which keeps inference memory low; only the
   * result is left for the caller to dispose.
   */
  forward(x: Tensor): Tensor {
    const [n, h, w, c] = x.shape;
    if (x.shape.length !== 4 || c !== 1 || h! % 16 !== 0 || w! % 16 !== 0 || !(n! >= 1 && h! >= 16 && w! >= 16)) {
      throw new Error(`UNet.forward: input must be [batch, height, width, 1] with height and width positive multiples of 16, got ${shapeStr(x.shape)}`);
    }
    let layer = 0;
    const next = () => this.layers[layer++]!;
    const p = (name: string) => this.parameters.get(name);
    // Frees a tensor no later op needs, unless a tape keeps it for backward.
    const done = (t: Tensor) => {
      if (t !== x && !t.requiresGrad) t.dispose();
    };
    // A convolution, and the batch normalisation that follows it in the variant.
    const convLayer = (input: Tensor): Tensor => {
      const s = next();
      let y = conv2d(input, p(`${s.name}/kernel`), p(`${s.name}/bias`), s.activation);
      done(input);
      if (this.layers[layer]?.kind === 'batch_normalization') {
        const b = next();
        const names = runningStatNames(b.name);
        const running = { mean: this.state!.get(names.mean), variance: this.state!.get(names.variance) };
        const z = batchNorm(y, p(`${b.name}/gamma`), p(`${b.name}/beta`), running, { activation: b.activation as HiddenActivation });
        done(y);
        y = z;
      }
      return y;
    };

    const skips: Tensor[] = [];
    let t = x;
    for (let level = 0; level < LEVELS; level++) {
      t = convLayer(convLayer(t));
      skips.push(t);
      t = maxPool2x2(t);
    }
    t = convLayer(convLayer(t)); // bottom; convLayer frees the last pooled tensor
    if (this.dropoutSeed && activeTape([t])) t = dropout(t, this.config.dropout!, this.dropoutSeed.view);
    for (let level = 0; level < LEVELS; level++) {
      const s = next();
      const upsampled = convTranspose2x2(t, p(`${s.name}/kernel`), p(`${s.name}/bias`));
      done(t);
      const skip = skips.pop()!;
      const merged = concat(upsampled, skip);
      // Nothing reads the upsampled values again, in training either: the
      // concatenation copied them, and neither its backward nor the transposed
      // convolution's reads them (they need only shapes, inputs and weights).
      upsampled.dispose();
      done(skip);
      t = convLayer(convLayer(merged));
    }
    return convLayer(t);
  }

  dispose(): void {
    this.replays.dispose();
    this.dropoutSeed?.dispose();
    this.state?.dispose();
    this.parameters.dispose();
  }
}

/** Builds the tutorial's U-Net with Glorot-uniform kernels (seeded) and zero biases (but `outputBias`), on `gpu`. */
export function createUNet(gpu: Gpu, options: UNetOptions = {}): UNet {
  const config = resolveUNetOptions(options);
  const store = buildUNetParameters({ ...config, outputBias: options.outputBias });
  store.finalize(gpu);
  const state = buildUNetState(config);
  state?.finalize(gpu);
  return new UNet(gpu, config, store, state);
}
