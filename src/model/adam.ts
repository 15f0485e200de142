/**
 * Adam over a ParameterStore's flat buffers: the moments m and v are two more
 * flat buffers of the same padded layout, and a step is one dispatch of the
 * Keras-form kernel (src/ops/adam/kernel.ts); with loss scaling, two more around
 * it (src/ops/adam/loss-scale.ts).
 */
import type { BufferView, Gpu } from '../gpu/gpu.js';
import type { PooledBuffer } from '../gpu/buffer-pool.js';
import { adamStep } from '../ops/adam/kernel.js';
import { LOSS_SCALE_STATE_BYTES, type LossScaleRule, unscaleGradients, updateLossScale } from '../ops/adam/loss-scale.js';
import { Tensor } from '../autograd/tensor.js';
import type { FlatBuffer, NamedArrays, ParameterStore } from './parameters.js';

export interface AdamOptions {
  lr: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

/** The tutorial's optimiser: Adam(lr=1e-5) with Keras ≥ 2.1.3 defaults (epsilon 1e-7). */
export const TUTORIAL_ADAM: Readonly<AdamOptions> = Object.freeze({ lr: 1e-5, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 });

/**
 * Dynamic loss scaling, as PyTorch's GradScaler does it: the loss's gradient
 * starts at `initial`, which halves (backoff) on a step whose gradients hold
 * an infinite or NaN value — that step is skipped — and doubles (growth)
 * after `interval` clean steps.
 */
export interface LossScaleOptions extends LossScaleRule {
  initial: number;
}
export const DEFAULT_LOSS_SCALE: Readonly<LossScaleOptions> = Object.freeze({
  initial: 2 ** 16, interval: 2000, growth: 2, backoff: 0.5, maxScale: 2 ** 24, minScale: 1,
});

/** The loss scale's state as last read from the GPU. */
export interface LossScaleStatus {
  scale: number;
  /** Steps skipped for infinite or NaN gradients since the optimiser was made. */
  skipped: number;
  /** Adam steps taken. */
  t: number;
}

/**
 * Where dynamic loss scaling stands, all a resumed run needs to go on as the
 * uninterrupted one would: the scale, the clean steps since it last changed,
 * the steps skipped, and Adam's bias corrections as the GPU accumulated them
 * (f32 values, which 1 − β^t computed afresh need not equal to the bit).
 */
export interface LossScaleState {
  scale: number;
  good: number;
  skipped: number;
  corrections: [number, number];
}

/** What a checkpoint keeps of the optimiser: moments by parameter name, the step count, and the loss scale's state. */
export interface AdamState {
  /** Number of steps taken (the next step uses t + 1). */
  t: number;
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
  /** With loss scaling. */
  lossScale?: LossScaleState;
}

/**
 * The moments to restore: the same names and shapes as the store's
 * parameters. Without `lossScale`, an optimiser with loss scaling starts its
 * scale afresh (checkpoints written before it was kept).
 */
export interface AdamStateInput {
  t: number;
  m: NamedArrays;
  v: NamedArrays;
  lossScale?: LossScaleState;
}

export class Adam {
  /** Hyperparameters; `lr` may be changed between steps (schedules). */
  readonly options: AdamOptions;
  private stepCount = 0;
  private readonly gpu: Gpu;
  private readonly buffers: PooledBuffer[];
  private readonly m: FlatBuffer;
  private readonly v: FlatBuffer;
  private disposed = false;
  /** With loss scaling: its rule and where its state lives on the GPU (see lossScaleSeed). */
  private readonly scaling: { rule: LossScaleOptions; view: BufferView } | null = null;

  constructor(
    readonly store: ParameterStore,
    options: Partial<AdamOptions> = {},
    lossScale: boolean | Partial<LossScaleOptions> = false,
  ) {
    this.options = { ...TUTORIAL_ADAM, ...options };
    this.gpu = store.gpu; // throws if the store is not finalized
    const bytes = store.length * 4;
    const mBuf = this.gpu.acquire(bytes);
    let vBuf: PooledBuffer;
    try {
      vBuf = this.gpu.acquire(bytes);
    } catch (e) {
      this.gpu.release(mBuf);
      throw e;
    }
    this.buffers = [mBuf, vBuf];
    this.m = { view: { buffer: mBuf.buffer, offset: 0, size: bytes }, shape: [store.length] };
    this.v = { view: { buffer: vBuf.buffer, offset: 0, size: bytes }, shape: [store.length] };
    this.gpu.clear(this.m.view);
    this.gpu.clear(this.v.view);
    if (lossScale) {
      const rule = { ...DEFAULT_LOSS_SCALE, ...(lossScale === true ? {} : lossScale) };
      if (!(rule.minScale > 0 && rule.minScale <= rule.initial && rule.initial <= rule.maxScale && rule.growth >= 1 && rule.backoff > 0 && rule.backoff < 1 && Number.isInteger(rule.interval) && rule.interval >= 1)) {
        this.dispose();
        throw new Error(`Adam: invalid loss scaling ${JSON.stringify(rule)} (need 0 < minScale ≤ initial ≤ maxScale, growth ≥ 1, 0 < backoff < 1, an integer interval ≥ 1)`);
      }
      const state = this.gpu.acquire(LOSS_SCALE_STATE_BYTES);
      this.buffers.push(state);
      this.scaling = { rule, view: { buffer: state.buffer, offset: 0, size: LOSS_SCALE_STATE_BYTES } };
      this.writeScaleState(0, { scale: rule.initial, good: 0, skipped: 0 });
    }
  }

  /**
   * The seed for the tape's backward: a one-element view of the current loss
   * scale on the GPU (undefined without loss scaling, where it starts at 1).
   */
  lossScaleSeed(): Tensor | undefined {
    if (!this.scaling) return undefined;
    return Tensor.view(this.gpu, [1], { ...this.scaling.view, size: 4 }, false, 'loss scale');
  }

  /** Scale, skipped steps and step count, read from the GPU (null without loss scaling). */
  async lossScaleStatus(): Promise<LossScaleStatus | null> {
    const state = await this.readScaleState();
    return state && { scale: state.scale, t: state.t, skipped: state.skipped };
  }

  /** The whole loss-scale state (loss_scale.wgsl's State) read from the GPU, and the step count it holds. */
  private async readScaleState(): Promise<(LossScaleState & { t: number }) | null> {
    if (!this.scaling) return null;
    const b = await this.gpu.read(this.scaling.view, LOSS_SCALE_STATE_BYTES);
    const [t, good, skipped] = new Uint32Array(b, 4, 3);
    const [c1, c2] = new Float32Array(b, 20, 2);
    return { scale: new Float32Array(b, 0, 1)[0]!, t: t!, good: good!, skipped: skipped!, corrections: [c1!, c2!] };
  }

  /** Writes the loss-scale state for t steps taken; without `corrections`, Adam's bias corrections are computed in float64 here. */
  private writeScaleState(t: number, s: Omit<LossScaleState, 'corrections'> & { corrections?: [number, number] }): void {
    const b = new ArrayBuffer(LOSS_SCALE_STATE_BYTES);
    new Float32Array(b, 0, 1)[0] = s.scale;
    new Uint32Array(b, 4, 4).set([t, s.good, s.skipped, 0]);
    new Float32Array(b, 20, 2).set(s.corrections ?? [1 - this.options.beta1 ** t, 1 - this.options.beta2 ** t]);
    this.gpu.upload(this.scaling!.view, new Uint8Array(b));
  }

  /**
   * Steps recorded so far. With loss scaling some may have been skipped on
   * the GPU: readState and lossScaleStatus tell the steps taken.
   */
  get t(): number {
    return this.stepCount;
  }

  /**
   * Records one update of every parameter from the gradients accumulated in
   * the store; with loss scaling, the gradients are unscaled first and the
   * whole update is skipped on the GPU when any of them is infinite or NaN.
   */
  step(): void {
    this.checkLive('step');
    const t = this.stepCount + 1;
    if (this.scaling) {
      const { rule, view } = this.scaling;
      unscaleGradients(this.gpu, view, this.store.flatGrads, rule, this.options);
      adamStep(this.gpu, this.store.flatParams, this.store.flatGrads, this.m, this.v, { ...this.options, step: t }, view);
      updateLossScale(this.gpu, view, rule, this.options);
    } else {
      adamStep(this.gpu, this.store.flatParams, this.store.flatGrads, this.m, this.v, { ...this.options, step: t });
    }
    this.stepCount = t;
  }

  /** The moments by parameter name, the step count and the loss scale's state, from GPU readbacks. */
  async readState(): Promise<AdamState> {
    this.checkLive('readState');
    const n = this.store.length;
    const m = this.store.split(await this.gpu.readFloat32(this.m.view, n));
    const v = this.store.split(await this.gpu.readFloat32(this.v.view, n));
    const scaled = await this.readScaleState();
    if (!scaled) return { t: this.stepCount, m, v };
    const { t, ...lossScale } = scaled;
    return { t, m, v, lossScale };
  }

  /** Restores moments and step count saved by `readState`; checks everything before writing. */
  loadState(state: AdamStateInput): void {
    this.checkLive('loadState');
    if (!Number.isInteger(state.t) || state.t < 0) throw new Error(`Adam.loadState: the step count must be an integer ≥ 0, got ${state.t}`);
    const m = this.store.pack(state.m, 'Adam.loadState (m)');
    const v = this.store.pack(state.v, 'Adam.loadState (v)');
    for (const p of this.store.params) {
      for (let i = p.offset; i < p.offset + p.size; i++) {
        if (!(v[i]! >= 0)) throw new Error(`Adam.loadState (v): second moments must be ≥ 0, but ${p.name}[${i - p.offset}] is ${v[i]}`);
      }
    }
    const s = state.lossScale;
    if (s) checkLossScaleState(s, this.scaling?.rule, [1 - this.options.beta1 ** state.t, 1 - this.options.beta2 ** state.t]);
    this.gpu.upload(this.m.view, m);
    this.gpu.upload(this.v.view, v);
    this.stepCount = state.t;
    // Without a saved state (an fp32 run's, or an older checkpoint's) the scale starts afresh.
    if (this.scaling) this.writeScaleState(state.t, s ?? { scale: this.scaling.rule.initial, good: 0, skipped: 0 });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const b of this.buffers) this.gpu.release(b);
  }

  private checkLive(what: string): void {
    if (this.disposed) throw new Error(`Adam.${what}: the optimiser was disposed`);
  }
}

/**
 * A saved loss-scale state that the GPU's state can hold, within the rule's
 * bounds where it has one, whose bias corrections belong to the step count
 * saved with it (up to the small drift of the GPU's f32 recurrence,
 * docs/kernels.md).
 */
function checkLossScaleState(s: LossScaleState, rule: LossScaleRule | undefined, expected: [number, number]): void {
  const bad = (why: string) => new Error(`Adam.loadState (lossScale): ${why}, got ${JSON.stringify(s)}`);
  const u32 = (x: unknown) => Number.isInteger(x) && (x as number) >= 0 && (x as number) < 2 ** 32;
  if (!(typeof s.scale === 'number' && s.scale > 0 && Number.isFinite(s.scale))) throw bad('the scale must be a finite number > 0');
  if (rule && !(s.scale >= rule.minScale && s.scale <= rule.maxScale)) throw bad(`the scale must lie in [${rule.minScale}, ${rule.maxScale}]`);
  if (!u32(s.good) || !u32(s.skipped)) throw bad('good and skipped must be integers ≥ 0');
  if (rule && s.good >= rule.interval) throw bad(`good must be below the growth interval ${rule.interval}`);
  const c = s.corrections;
  if (!(Array.isArray(c) && c.length === 2 && c.every((x) => typeof x === 'number' && x >= 0 && x <= 1))) throw bad('the corrections must be two numbers in [0, 1]');
  if (c.some((x, i) => Math.abs(x - expected[i]!) > 1e-3 * expected[i]! + 1e-6)) throw bad(`the corrections do not belong to the step count (1 − β^t is ${expected.join(', ')})`);
}
