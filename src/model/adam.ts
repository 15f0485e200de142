/**
 * Adam over a ParameterStore's flat buffers: the moments m and v are two more
 * flat buffers of the same padded layout, and a step is one dispatch of the
 * Keras-form kernel (src/kernels/adam.ts).
 */
import type { Gpu } from '../kernels/gpu.js';
import type { PooledBuffer } from '../kernels/pool.js';
import { adamStep } from '../kernels/adam.js';
import type { FlatBuffer, NamedArrays, ParameterStore } from './parameters.js';

export interface AdamOptions {
  lr: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

/** The tutorial's optimiser: Adam(lr=1e-5) with Keras ≥ 2.1.3 defaults (epsilon 1e-7). */
export const TUTORIAL_ADAM: Readonly<AdamOptions> = Object.freeze({ lr: 1e-5, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 });

/** What a checkpoint keeps of the optimiser: moments by parameter name, and the step count. */
export interface AdamState {
  /** Number of steps taken (the next step uses t + 1). */
  t: number;
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
}

/** The moments to restore: the same names and shapes as the store's parameters. */
export interface AdamStateInput {
  t: number;
  m: NamedArrays;
  v: NamedArrays;
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

  constructor(
    readonly store: ParameterStore,
    options: Partial<AdamOptions> = {},
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
  }

  /** Steps taken so far. */
  get t(): number {
    return this.stepCount;
  }

  /** Records one update of every parameter from the gradients accumulated in the store. */
  step(): void {
    this.checkLive('step');
    const t = this.stepCount + 1;
    adamStep(this.gpu, this.store.flatParams, this.store.flatGrads, this.m, this.v, { ...this.options, step: t });
    this.stepCount = t;
  }

  /** The moments by parameter name and the step count, from two readbacks. */
  async readState(): Promise<AdamState> {
    this.checkLive('readState');
    const n = this.store.length;
    const m = this.store.split(await this.gpu.readFloat32(this.m.view, n));
    const v = this.store.split(await this.gpu.readFloat32(this.v.view, n));
    return { t: this.stepCount, m, v };
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
    this.gpu.upload(this.m.view, m);
    this.gpu.upload(this.v.view, v);
    this.stepCount = state.t;
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
