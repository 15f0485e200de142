/** The autograd tensor: a GPU buffer range with a shape, and gradient bookkeeping. */
import type { BufferView, Gpu } from '../gpu/gpu.js';
import type { PooledBuffer } from '../gpu/buffer-pool.js';
import { ShapeError, shapeStr } from '../gpu/errors.js';
import { type DType, type GpuTensor, elementBytes, numel, readElements, storageBytes } from '../gpu/tensor-view.js';
import { adopt } from './context.js';

/** How an op's result is turned into gradients of its inputs (see tape.ts). */
export interface TapeNode {
  readonly op: string;
  readonly inputs: readonly Tensor[];
  readonly output: Tensor;
  /** Writes or adds ∂L/∂input for inputs that require grad, given ∂L/∂output. */
  backward(dOut: Tensor, grads: GradSink): void;
  /**
   * The op ends in an activation: its output y is act(z), and its backward
   * first turns ∂L/∂y into ∂L/∂z (ReLU: times [y > 0]; sigmoid: times
   * y (1 − y)), which it skips where the gradient's writers did so already
   * (GradSink.activationApplied). A consumer of y may fold that step into the
   * kernel that writes ∂L/∂y (GradSink.foldableActivation).
   */
  readonly activation?: FoldableActivation;
}

/** The activations an op's output may end in whose backward a consumer can fold in. */
export type FoldableActivation = 'relu' | 'sigmoid';

export interface GradSink {
  /**
   * Where to write ∂L/∂t: the tensor's gradient buffer, and whether to add to
   * it (it already holds a contribution) or overwrite it.
   */
  target(t: Tensor): { grad: Tensor; accumulate: boolean };
  /** A temporary owned by the backward pass (freed with the tape). */
  temp(shape: readonly number[], dtype?: DType): Tensor;
  /**
   * Whether the op may overwrite `dOut`, the gradient it was handed: nothing
   * reads it after the op's backward (the tape frees it there), so the op
   * can turn it into what it needs in place instead of taking a temporary.
   */
  consumable(dOut: Tensor): boolean;
  /**
   * The activation whose backward an op writing ∂L/∂t may apply as it
   * writes, so that it writes ∂L/∂z for t = act(z); null where none may. t
   * must be the output of an activation-ending op (TapeNode.activation)
   * recorded on this tape, whose backward, still to come, only needs ∂L/∂z.
   * The ReLU's mask covers what other writers add, and masking twice changes
   * nothing, so any consumer of t may apply it; the sigmoid's factor does
   * neither, so only t's sole consumer on the tape may. A leaf's gradient,
   * which the caller reads, is never changed so.
   */
  foldableActivation(t: Tensor): FoldableActivation | null;
  /**
   * Records that ∂L/∂t, as written so far, is ∂L/∂z already: the op that
   * last wrote it applied the activation's backward (for a ReLU's mask, over
   * what earlier ops added too). Any later target(t) clears the mark.
   */
  markActivationApplied(t: Tensor): void;
  /** Whether ∂L/∂t is ∂L/∂z already (markActivationApplied). */
  activationApplied(t: Tensor): boolean;
}

export class Tensor implements GpuTensor {
  /** ∂L/∂this after backward(); for parameters, a view into the flat gradient buffer. */
  grad: Tensor | null = null;
  /** The op that produced this tensor, when it was recorded on a tape. */
  creator: TapeNode | null = null;
  private disposed = false;

  constructor(
    readonly gpu: Gpu,
    readonly shape: readonly number[],
    readonly view: BufferView,
    private readonly owned: PooledBuffer | null,
    public requiresGrad = false,
    readonly name = '',
    readonly dtype: DType = 'f32',
  ) {
    if (view.size < numel(shape) * elementBytes(dtype)) throw new ShapeError('Tensor', `buffer of ${view.size} bytes cannot hold shape ${shapeStr(shape)} in ${dtype}`);
    if (owned) adopt(this);
  }

  /** A new tensor with uninitialised contents from the pool. */
  static empty(gpu: Gpu, shape: readonly number[], requiresGrad = false, dtype: DType = 'f32'): Tensor {
    if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) {
      throw new ShapeError('Tensor', `shape must be an array of integers ≥ 0, got ${Array.isArray(shape) ? shapeStr(shape) : String(shape)}`);
    }
    const bytes = storageBytes(numel(shape), dtype);
    const pb = gpu.acquire(bytes);
    return new Tensor(gpu, [...shape], { buffer: pb.buffer, offset: 0, size: bytes }, pb, requiresGrad, '', dtype);
  }

  static zeros(gpu: Gpu, shape: readonly number[], requiresGrad = false): Tensor {
    const t = Tensor.empty(gpu, shape, requiresGrad);
    gpu.clear(t.view);
    return t;
  }

  static from(gpu: Gpu, shape: readonly number[], data: Float32Array, requiresGrad = false): Tensor {
    // JavaScript callers may hand over a plain array, which the upload would misread.
    if (!(data instanceof Float32Array)) throw new TypeError(`Tensor.from: data must be a Float32Array, got ${(data as unknown as object)?.constructor?.name ?? String(data)}`);
    if (data.length !== numel(shape)) {
      throw new ShapeError('Tensor.from', `${data.length} values given for shape ${shapeStr(shape)} (${numel(shape)} elements)`);
    }
    const t = Tensor.empty(gpu, shape, requiresGrad);
    gpu.upload(t.view, data);
    return t;
  }

  /** A tensor over a range of someone else's buffer (parameters); dispose does nothing. */
  static view(gpu: Gpu, shape: readonly number[], view: BufferView, requiresGrad: boolean, name: string): Tensor {
    return new Tensor(gpu, [...shape], view, null, requiresGrad, name);
  }

  get size(): number {
    return numel(this.shape);
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** The elements as float32 (f16 ones widened exactly). */
  async read(): Promise<Float32Array> {
    if (this.disposed) throw new Error(`Tensor ${shapeStr(this.shape)} was read after it was disposed`);
    return readElements(this.gpu, this.view, this.size, this.dtype);
  }

  /** Returns the buffer to the pool (no-op for views). Safe to call twice. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.owned) this.gpu.release(this.owned);
  }
}
