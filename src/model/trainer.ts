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
  /** Loss of the step just finished, and the tutorial's Dice of its maps. */
  loss: number;
  dice: number;
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
 * The training loss: `dice`, −Dice over the whole batch (the tutorial's);
 * `image-dice`, minus the mean Dice of the images (the competition's metric
 * is a mean over images, and an empty image predicted empty counts 1);
 * `bce-dice`, the tutorial's plus the mean binary cross-entropy, whose
 * gradient per logit, p − y, does not vanish while the maps are far from
 * the masks.
 */
export type TrainingLoss = 'dice' | 'image-dice' | 'bce-dice';
export const TRAINING_LOSSES: readonly TrainingLoss[] = ['dice', 'image-dice', 'bce-dice'];

/** The loss `kind` of probabilities p against masks y. */
export function trainingLoss(p: Tensor, y: Tensor, kind: TrainingLoss): Tensor {
  return diceLoss(p, y, kind === 'image-dice' ? 'image' : 'batch', kind === 'bce-dice' ? 1 : 0);
}

/** A training step's loss and, where the loss is not the tutorial's, the tutorial's −Dice of the same maps (for the log); the caller disposes both. */
export interface StepLoss {
  loss: Tensor;
  dice: Tensor | null;
}

/**
 * Records one training step on a batch: the forward pass, the loss (`kind`) and
 * the backward pass (replayed when this batch shape was captured before),
 * then Adam. Returns the loss (StepLoss), which the caller reads and disposes. The
 * caller zeroes the gradients first, before it uploads the batch:
 * `zeroGrads` also starts the pool's step (BufferPool.beginStep), so a
 * step's requests, the batch's included, repeat the step before's.
 */
export function trainingStep(model: UNet, adam: Adam, x: Tensor, y: Tensor, kind: TrainingLoss = 'dice'): StepLoss {
  // The loss scale (a GPU value of the optimiser's) is an input: another optimiser's takes its place.
  const seed = adam.lossScaleSeed();
  const inputs = seed ? [x, y, seed] : [x, y];
  model.beginTrainingStep();
  const [loss, dice] = model.replays.run(`training step ${x.shape.join('×')}, ${kind} loss${seed ? ', loss scaled' : ''}`, inputs, () => {
    const tape = new Tape(model.gpu);
    try {
      let d: Tensor | undefined;
      const l = tape.run(() => {
        const p = model.forward(x);
        // Outside the tape: the tutorial's Dice is only reported.
        if (kind !== 'dice') d = noGrad(() => diceLoss(p, y));
        return trainingLoss(p, y, kind);
      });
      tape.backward(l, seed, { releaseActivations: true });
      return d ? [tape.detach(l), tape.detach(d)] : [tape.detach(l)];
    } finally {
      tape.dispose();
    }
  });
  adam.step();
  return { loss: loss!, dice: dice ?? null };
}

/** Starts reading a loss and the tutorial's −Dice beside it (the loss itself where `negDice` is null); resolves to [loss, Dice]. */
function readLoss(loss: Tensor, negDice: Tensor | null): Promise<[number, number]> {
  const l = loss.read();
  const d = negDice ? negDice.read() : l;
  return Promise.all([l, d]).then(([a, b]) => [a[0]!, -b[0]!]);
}

export class Trainer {
  constructor(
    readonly model: UNet,
    readonly adam: Adam,
    readonly batchSize: number,
    /** Augments each training batch (not validation or prediction). */
    readonly augment?: Augmenter,
    /** The loss, in training and validation alike. */
    readonly loss: TrainingLoss = 'dice',
  ) {}

  /**
   * Training steps recorded ahead of the one whose loss is awaited: with 1,
   * step s's loss is read back while step s + 1 runs; more leave the GPU
   * more work queued while the host waits for a readback and records.
   */
  stepsInFlight = 1;

  private upload(set: ImageSet, indices: ArrayLike<number>, from: number, to: number): { x: Tensor; y: Tensor } {
    const gpu = this.model.gpu;
    const { x, y } = gather(set, indices, from, to);
    const shape = [to - from, set.size, set.size, 1];
    return { x: Tensor.from(gpu, shape, x), y: Tensor.from(gpu, shape, y) };
  }

  /**
   * One pass over `order` (row indices of `set`) in batches. Returns the mean
   * loss over batches (as Keras reports it) and the mean of the tutorial's
   * Dice. `stop()` is checked between steps; when it returns true the epoch
   * ends early and `completed` is false.
   */
  async trainEpoch(
    set: ImageSet,
    order: ArrayLike<number>,
    epoch: number,
    onStep?: (r: StepReport) => void,
    stop?: () => boolean,
  ): Promise<{ loss: number; dice: number; completed: boolean }> {
    const steps = Math.ceil(order.length / this.batchSize);
    const params = this.model.parameters;
    let sum = 0;
    let diceSum = 0;
    let done = 0;
    if (!(Number.isInteger(this.stepsInFlight) && this.stepsInFlight >= 1)) throw new Error(`stepsInFlight must be a whole number ≥ 1, not ${String(this.stepsInFlight)}`);
    // Steps recorded whose losses are still being read back, oldest first.
    const pending: { read: Promise<[number, number]>; step: number; images: number }[] = [];
    const settle = async (p: { read: Promise<[number, number]>; step: number; images: number }) => {
      const [value, dice] = await p.read;
      if (!Number.isFinite(value)) throw new NonFiniteLossError(epoch, p.step, value);
      sum += value;
      diceSum += dice;
      done++;
      onStep?.({ epoch, step: p.step, steps, images: p.images, loss: value, dice });
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
        const step = trainingStep(this.model, this.adam, x, y, this.loss);
        // Starts the readback (and submits the step); awaited once stepsInFlight more steps are recorded.
        const read = readLoss(step.loss, step.dice);
        step.loss.dispose();
        step.dice?.dispose();
        x.dispose();
        y.dispose();
        pending.push({ read, step: s + 1, images: to });
        if (pending.length > this.stepsInFlight) await settle(pending.shift()!);
      }
      while (pending.length) await settle(pending.shift()!);
    } catch (e) {
      // The steps' losses, still being read back, fail with the same cause: the error thrown says it already.
      for (const p of pending) p.read.catch(() => {});
      throw e;
    }
    return { loss: done ? sum / done : NaN, dice: done ? diceSum / done : NaN, completed };
  }

  /** Mean loss over batches of rows `indices`, and the mean of the tutorial's Dice, without gradients. */
  async evaluate(set: ImageSet, indices: ArrayLike<number>): Promise<{ loss: number; dice: number }> {
    let sum = 0;
    let diceSum = 0;
    let batches = 0;
    const reads: Promise<[number, number]>[] = [];
    for (let from = 0; from < indices.length; from += this.batchSize) {
      const to = Math.min(indices.length, from + this.batchSize);
      const { x, y } = this.upload(set, indices, from, to);
      const [loss, dice] = this.model.replays.run(`evaluation ${x.shape.join('×')}, ${this.loss} loss`, [x, y], () =>
        noGrad(() => {
          const p = this.model.forward(x);
          const l = trainingLoss(p, y, this.loss);
          const d = this.loss === 'dice' ? [] : [diceLoss(p, y)];
          p.dispose();
          return [l, ...d];
        }),
      );
      reads.push(readLoss(loss!, dice ?? null));
      loss!.dispose();
      dice?.dispose();
      x.dispose();
      y.dispose();
      batches++;
    }
    for (const r of reads) {
      const [l, d] = await r;
      sum += l;
      diceSum += d;
    }
    return { loss: batches ? sum / batches : NaN, dice: batches ? diceSum / batches : NaN };
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
