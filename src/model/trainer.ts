/**
 * The training loop on the GPU: one command submission per step (forward,
 * backward, Adam), the loss read back one step late so the GPU never waits
 * for the host, and every step's tensors released when the step ends. A
 * step's forward and backward passes, and inference batches, are captured
 * the first time and replayed after (src/autograd/replay.ts).
 */
import { Tape, Tensor, diceLoss, noGrad } from '../autograd/index.js';
import type { Adam } from './adam.js';
import type { Augmenter } from './augment.js';
import type { UNet } from './unet.js';

/** Model-ready data: `count` images and masks of size × size, row-major. */
export interface ImageSet {
  images: Float32Array;
  masks: Float32Array;
  count: number;
  size: number;
}

export interface StepReport {
  epoch: number;
  /** Steps done in this epoch (1-based) and in all. */
  step: number;
  steps: number;
  images: number;
  /** Loss of the step just finished. */
  loss: number;
}

export class NonFiniteLossError extends Error {
  override name = 'NonFiniteLossError';
  constructor(
    readonly epoch: number,
    readonly step: number,
    readonly value: number,
  ) {
    super(`the loss became ${value} at epoch ${epoch}, step ${step}; the weights after this step are not saved (lower the learning rate, or check the data for NaN or constant images)`);
  }
}

/** Copies rows `indices` of `set` into one batch (images and masks). */
function gather(set: ImageSet, indices: ArrayLike<number>, from: number, to: number): { x: Float32Array; y: Float32Array } {
  const px = set.size * set.size;
  const x = new Float32Array((to - from) * px);
  const y = new Float32Array((to - from) * px);
  for (let i = from; i < to; i++) {
    const r = indices[i]!;
    x.set(set.images.subarray(r * px, (r + 1) * px), (i - from) * px);
    y.set(set.masks.subarray(r * px, (r + 1) * px), (i - from) * px);
  }
  return { x, y };
}

/**
 * Records one training step on a batch: the forward pass, the Dice loss and
 * the backward pass (replayed when this batch shape was captured before),
 * then Adam. Returns the loss, which the caller reads and disposes. The
 * caller zeroes the gradients first, before it uploads the batch:
 * `zeroGrads` also starts the pool's step (BufferPool.beginStep), so a
 * step's requests, the batch's included, repeat the step before's.
 */
export function trainingStep(model: UNet, adam: Adam, x: Tensor, y: Tensor): Tensor {
  // The loss scale (a GPU value of the optimiser's) is an input: another optimiser's takes its place.
  const seed = adam.lossScaleSeed();
  const inputs = seed ? [x, y, seed] : [x, y];
  const [loss] = model.replays.run(`training step ${x.shape.join('×')}${seed ? ', loss scaled' : ''}`, inputs, () => {
    const tape = new Tape(model.gpu);
    try {
      const l = tape.run(() => diceLoss(model.forward(x), y));
      tape.backward(l, seed, { releaseActivations: true });
      return [tape.detach(l)];
    } finally {
      tape.dispose();
    }
  });
  adam.step();
  return loss!;
}

export class Trainer {
  constructor(
    readonly model: UNet,
    readonly adam: Adam,
    readonly batchSize: number,
    /** Augments each training batch (not validation or prediction). */
    readonly augment?: Augmenter,
  ) {}

  private upload(set: ImageSet, indices: ArrayLike<number>, from: number, to: number): { x: Tensor; y: Tensor } {
    const gpu = this.model.gpu;
    const { x, y } = gather(set, indices, from, to);
    const shape = [to - from, set.size, set.size, 1];
    return { x: Tensor.from(gpu, shape, x), y: Tensor.from(gpu, shape, y) };
  }

  /**
   * One pass over `order` (row indices of `set`) in batches. Returns the mean
   * loss over batches (as Keras reports it). `stop()` is checked between
   * steps; when it returns true the epoch ends early and `completed` is false.
   */
  async trainEpoch(
    set: ImageSet,
    order: ArrayLike<number>,
    epoch: number,
    onStep?: (r: StepReport) => void,
    stop?: () => boolean,
  ): Promise<{ loss: number; completed: boolean }> {
    const steps = Math.ceil(order.length / this.batchSize);
    const params = this.model.parameters;
    let sum = 0;
    let done = 0;
    let pending: { read: Promise<Float32Array>; step: number; images: number } | null = null;
    const settle = async (p: { read: Promise<Float32Array>; step: number; images: number }) => {
      const value = (await p.read)[0]!;
      if (!Number.isFinite(value)) throw new NonFiniteLossError(epoch, p.step, value);
      sum += value;
      done++;
      onStep?.({ epoch, step: p.step, steps, images: p.images, loss: value });
    };
    let completed = true;
    try {
      for (let s = 0; s < steps; s++) {
        if (stop?.()) {
          completed = false;
          break;
        }
        const from = s * this.batchSize;
        const to = Math.min(order.length, from + this.batchSize);
        params.zeroGrads();
        let { x, y } = this.upload(set, order, from, to);
        if (this.augment) {
          const warped = this.augment.apply(x, y, epoch, s);
          x.dispose();
          y.dispose();
          ({ x, y } = warped);
        }
        const loss = trainingStep(this.model, this.adam, x, y);
        // Starts the readback (and submits the step); awaited after the next step is recorded.
        const read = loss.read();
        loss.dispose();
        x.dispose();
        y.dispose();
        const previous = pending;
        pending = { read, step: s + 1, images: to };
        if (previous) await settle(previous);
      }
    } catch (e) {
      // The step's loss, still being read back, fails with the same cause: the error thrown says it already.
      (pending as { read: Promise<Float32Array> } | null)?.read.catch(() => {});
      throw e;
    }
    if (pending) await settle(pending);
    return { loss: done ? sum / done : NaN, completed };
  }

  /** Mean loss over batches of rows `indices`, without gradients. */
  async evaluate(set: ImageSet, indices: ArrayLike<number>): Promise<number> {
    let sum = 0;
    let batches = 0;
    const reads: Promise<Float32Array>[] = [];
    for (let from = 0; from < indices.length; from += this.batchSize) {
      const to = Math.min(indices.length, from + this.batchSize);
      const { x, y } = this.upload(set, indices, from, to);
      const [loss] = this.model.replays.run(`evaluation ${x.shape.join('×')}`, [x, y], () =>
        noGrad(() => {
          const p = this.model.forward(x);
          const l = diceLoss(p, y);
          p.dispose();
          return [l];
        }),
      );
      reads.push(loss!.read());
      loss!.dispose();
      x.dispose();
      y.dispose();
      batches++;
    }
    for (const r of reads) sum += (await r)[0]!;
    return batches ? sum / batches : NaN;
  }

  /** Probabilities (count × size × size) for normalised images. */
  predict(images: Float32Array, count: number, size: number, onProgress?: (done: number, total: number) => void): Promise<Float32Array> {
    return predictProbabilities(this.model, images, count, size, this.batchSize, onProgress);
  }
}

/** Probabilities for one batch of normalised images, without gradients (replayed when this shape was captured before). */
export function predictBatch(model: UNet, x: Tensor): Tensor {
  return model.replays.run(`inference ${x.shape.join('×')}`, [x], () => [noGrad(() => model.forward(x))])[0]!;
}

/** Runs the model without gradients over normalised images, `batchSize` at a time. */
export async function predictProbabilities(
  model: UNet,
  images: Float32Array,
  count: number,
  size: number,
  batchSize: number,
  onProgress?: (done: number, total: number) => void,
): Promise<Float32Array> {
  const px = size * size;
  const out = new Float32Array(count * px);
  for (let from = 0; from < count; from += batchSize) {
    const to = Math.min(count, from + batchSize);
    const x = Tensor.from(model.gpu, [to - from, size, size, 1], images.subarray(from * px, to * px));
    const p = predictBatch(model, x);
    out.set(await p.read(), from * px);
    p.dispose();
    x.dispose();
    onProgress?.(to, count);
  }
  return out;
}
