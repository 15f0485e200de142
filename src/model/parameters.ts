/**
 * Every trainable value of a model in one flat GPU buffer, and every gradient
 * in another, so that zeroing the gradients is one clear, Adam is one
 * dispatch and a checkpoint is one readback.
 *
 * Each parameter starts at an offset that is a multiple of 64 floats
 * (256 bytes), because WebGPU storage-buffer bindings must start at a
 * multiple of minStorageBufferOffsetAlignment (256 on every adapter we
 * know). The padding between parameters stays zero in both buffers, and
 * Adam leaves zeros with zero gradients at zero, so it can run over the
 * whole padded range.
 *
 * Use: `add()` every parameter while building the model, then `finalize(gpu)`
 * once; from then on each parameter is a Tensor view (requiresGrad, with its
 * `.grad` a view into the gradient buffer, where backward passes add).
 */
import type { BufferView, Gpu } from '../gpu/gpu.js';
import type { PooledBuffer } from '../gpu/buffer-pool.js';
import type { GpuTensor } from '../gpu/tensor-view.js';
import { shapeStr } from '../gpu/errors.js';
import { Tensor } from '../autograd/tensor.js';

/** Floats per alignment unit: 256 bytes. */
export const PARAMETER_ALIGNMENT_FLOATS = 64;

export interface ParameterInfo {
  readonly name: string;
  readonly shape: readonly number[];
  /** Offset in floats into the flat buffers; a multiple of PARAMETER_ALIGNMENT_FLOATS. */
  readonly offset: number;
  /** Number of values (product of the shape). */
  readonly size: number;
}

/** A host array with the shape it claims to have (for checks on load). */
export interface ShapedArray {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** Values by parameter name: bare arrays (checked by length) or shaped ones (checked by shape). */
export type NamedArrays = ReadonlyMap<string, Float32Array | ShapedArray>;

/** A tensor-like view of a whole flat buffer, for kernels such as adamStep. */
export interface FlatBuffer extends GpuTensor {
  readonly view: BufferView;
  readonly shape: readonly [number];
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function alignUp(n: number): number {
  return Math.ceil(n / PARAMETER_ALIGNMENT_FLOATS) * PARAMETER_ALIGNMENT_FLOATS;
}

interface Pending {
  info: ParameterInfo;
  init: Float32Array | null; // null: zeros
}

interface Allocated {
  gpu: Gpu;
  paramsBuffer: PooledBuffer;
  gradsBuffer: PooledBuffer;
  flatParams: FlatBuffer;
  flatGrads: FlatBuffer;
  tensors: Map<string, Tensor>;
}

export class ParameterStore {
  private readonly pending: Pending[] = [];
  private readonly byName = new Map<string, ParameterInfo>();
  private paddedLength = 0;
  private scalarCount = 0;
  private allocated: Allocated | null = null;
  private disposed = false;

  /**
   * Declares a parameter. `init` holds its initial values in row-major order
   * of `shape`, or is 'zeros'. Only allowed before `finalize`.
   */
  add(name: string, shape: readonly number[], init: Float32Array | 'zeros'): ParameterInfo {
    if (this.allocated || this.disposed) throw new Error(`ParameterStore.add(${name}): the store is already finalized; add every parameter before finalize()`);
    if (!name) throw new Error('ParameterStore.add: a parameter needs a name');
    if (this.byName.has(name)) throw new Error(`ParameterStore.add: a parameter named ${name} already exists`);
    if (shape.length === 0 || shape.some((d) => !Number.isInteger(d) || d < 1)) {
      throw new Error(`ParameterStore.add(${name}): invalid shape ${shapeStr(shape)}; every dimension must be a positive integer`);
    }
    const size = numel(shape);
    if (init !== 'zeros' && init.length !== size) {
      throw new Error(`ParameterStore.add(${name}): ${init.length} initial values given for shape ${shapeStr(shape)} (${size} values)`);
    }
    const info: ParameterInfo = { name, shape: [...shape], offset: this.paddedLength, size };
    this.pending.push({ info, init: init === 'zeros' ? null : init });
    this.byName.set(name, info);
    this.paddedLength = alignUp(this.paddedLength + size);
    this.scalarCount += size;
    return info;
  }

  /** The parameters in the order they were added. */
  get params(): readonly ParameterInfo[] {
    return this.pending.map((p) => p.info);
  }

  /** Number of trainable scalars, padding not counted. */
  get count(): number {
    return this.scalarCount;
  }

  /** Length in floats of each flat buffer, padding included. */
  get length(): number {
    return this.paddedLength;
  }

  get isFinalized(): boolean {
    return this.allocated !== null;
  }

  /** The initial values given to `add` (zeros expanded), before finalize; for tests and exports. */
  initialValues(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const p of this.pending) out.set(p.info.name, p.init ? p.init.slice() : new Float32Array(p.info.size));
    return out;
  }

  /**
   * Allocates the two flat buffers, uploads the initial values, zeroes the
   * gradients and creates the parameter tensors. The host copies of the
   * initial values are dropped afterwards.
   */
  finalize(gpu: Gpu): void {
    if (this.disposed) throw new Error('ParameterStore.finalize: the store was disposed');
    if (this.allocated) throw new Error('ParameterStore.finalize: already finalized');
    if (this.pending.length === 0) throw new Error('ParameterStore.finalize: no parameters were added');
    const bytes = this.paddedLength * 4;
    const host = new Float32Array(this.paddedLength);
    for (const p of this.pending) if (p.init) host.set(p.init, p.info.offset);
    const paramsBuffer = gpu.acquire(bytes);
    let gradsBuffer: PooledBuffer;
    try {
      gradsBuffer = gpu.acquire(bytes);
    } catch (e) {
      gpu.release(paramsBuffer);
      throw e;
    }
    const flatParams: FlatBuffer = { view: { buffer: paramsBuffer.buffer, offset: 0, size: bytes }, shape: [this.paddedLength] };
    const flatGrads: FlatBuffer = { view: { buffer: gradsBuffer.buffer, offset: 0, size: bytes }, shape: [this.paddedLength] };
    gpu.upload(flatParams.view, host);
    gpu.clear(flatGrads.view);
    const tensors = new Map<string, Tensor>();
    for (const { info } of this.pending) {
      const at = (buffer: GPUBuffer): BufferView => ({ buffer, offset: info.offset * 4, size: info.size * 4 });
      const t = Tensor.view(gpu, info.shape, at(paramsBuffer.buffer), true, info.name);
      t.grad = Tensor.view(gpu, info.shape, at(gradsBuffer.buffer), false, `${info.name}/grad`);
      tensors.set(info.name, t);
    }
    for (const p of this.pending) p.init = null;
    this.allocated = { gpu, paramsBuffer, gradsBuffer, flatParams, flatGrads, tensors };
  }

  /** The parameter tensor named `name` (after finalize). */
  get(name: string): Tensor {
    const a = this.live('get');
    const t = a.tensors.get(name);
    if (!t) throw new Error(`ParameterStore.get: no parameter named ${name}; known: ${[...a.tensors.keys()].join(', ')}`);
    return t;
  }

  /** All parameter tensors in order (after finalize). */
  tensors(): Tensor[] {
    return [...this.live('tensors').tensors.values()];
  }

  get flatParams(): FlatBuffer {
    return this.live('flatParams').flatParams;
  }

  get flatGrads(): FlatBuffer {
    return this.live('flatGrads').flatGrads;
  }

  get gpu(): Gpu {
    return this.live('gpu').gpu;
  }

  /**
   * Records one clear of the whole gradient buffer. This starts a training
   * step, so it also tells the buffer pool that one begins (Gpu.beginStep).
   */
  zeroGrads(): void {
    const a = this.live('zeroGrads');
    a.gpu.beginStep();
    a.gpu.clear(a.flatGrads.view);
  }

  /** Every parameter's current values, by name, from one readback. */
  async readAll(): Promise<Map<string, Float32Array>> {
    const a = this.live('readAll');
    return this.split(await a.gpu.readFloat32(a.flatParams.view, this.paddedLength));
  }

  /** Every parameter's accumulated gradient, by name, from one readback. */
  async readGrads(): Promise<Map<string, Float32Array>> {
    const a = this.live('readGrads');
    return this.split(await a.gpu.readFloat32(a.flatGrads.view, this.paddedLength));
  }

  /**
   * Replaces every parameter's values. `values` must name exactly the store's
   * parameters with their shapes; the first missing, unknown or misshapen one
   * is reported and nothing is written.
   */
  load(values: NamedArrays): void {
    const a = this.live('load');
    a.gpu.upload(a.flatParams.view, this.pack(values, 'ParameterStore.load'));
  }

  /** Cuts a flat array laid out like the buffers into per-parameter copies. */
  split(flat: Float32Array): Map<string, Float32Array> {
    if (flat.length !== this.paddedLength) {
      throw new Error(`ParameterStore.split: expected ${this.paddedLength} floats (the padded layout), got ${flat.length}`);
    }
    const out = new Map<string, Float32Array>();
    for (const { info } of this.pending) out.set(info.name, flat.slice(info.offset, info.offset + info.size));
    return out;
  }

  /**
   * Lays out per-parameter values as one flat array with zero padding, after
   * checking names and shapes; `what` prefixes error messages.
   */
  pack(values: NamedArrays, what: string): Float32Array {
    for (const { info } of this.pending) {
      const v = values.get(info.name);
      if (!v) throw new Error(`${what}: tensor ${info.name} (shape ${shapeStr(info.shape)}) is missing`);
      if (v instanceof Float32Array) {
        if (v.length !== info.size) {
          throw new Error(`${what}: tensor ${info.name} expects shape ${shapeStr(info.shape)} (${info.size} values) but got ${v.length} values`);
        }
      } else {
        const same = v.shape.length === info.shape.length && v.shape.every((d, i) => d === info.shape[i]);
        if (!same) throw new Error(`${what}: tensor ${info.name} expects shape ${shapeStr(info.shape)} but got ${shapeStr(v.shape)}`);
        if (v.data.length !== info.size) {
          throw new Error(`${what}: tensor ${info.name} claims shape ${shapeStr(v.shape)} but holds ${v.data.length} values`);
        }
      }
    }
    for (const name of values.keys()) {
      if (!this.byName.has(name)) throw new Error(`${what}: unexpected tensor ${name}; this model has no parameter of that name`);
    }
    const flat = new Float32Array(this.paddedLength);
    for (const { info } of this.pending) {
      const v = values.get(info.name)!;
      flat.set(v instanceof Float32Array ? v : v.data, info.offset);
    }
    return flat;
  }

  /** Returns both buffers to the pool; the parameter tensors become unusable. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const a = this.allocated;
    if (!a) return;
    for (const t of a.tensors.values()) {
      t.grad?.dispose();
      t.dispose();
    }
    a.gpu.release(a.paramsBuffer);
    a.gpu.release(a.gradsBuffer);
    this.allocated = null;
  }

  private live(what: string): Allocated {
    if (this.disposed) throw new Error(`ParameterStore.${what}: the store was disposed`);
    if (!this.allocated) throw new Error(`ParameterStore.${what}: call finalize(gpu) first`);
    return this.allocated;
  }
}
