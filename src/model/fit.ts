/**
 * The epoch loop, shared by the command line (src/cli/train.ts) and the
 * browser page (web/app.ts): each epoch shuffles the training rows, trains
 * on them, scores the validation rows and hands the figures to the caller,
 * which logs, charts or saves them before the next epoch starts.
 */
import { Rng, shuffle } from './rng.js';
import type { ImageSet, StepReport, Trainer } from './trainer.js';

/** One epoch's figures, as log.jsonl and the charts keep them. */
export interface EpochLog {
  epoch: number;
  loss: number;
  /** The tutorial's Dice (over each batch), whatever the loss: −loss where it is the tutorial's. */
  dice: number;
  val_loss: number;
  val_dice: number;
  /** Wall time of the epoch, validation included. */
  seconds: number;
  /** Mixed precision: the loss scale at the epoch's end and the steps skipped in it for infinite or NaN gradients. */
  loss_scale?: number;
  skipped_steps?: number;
}

export interface FitOptions {
  set: ImageSet;
  trainRows: ArrayLike<number>;
  valRows: ArrayLike<number>;
  /** Epochs firstEpoch … epochs run (firstEpoch 1 unless resuming). */
  epochs: number;
  firstEpoch?: number;
  /** Shuffles the training rows each epoch; its state is what a checkpoint saves to resume. */
  rng: Rng;
  /** Before each epoch; may return the step callback for it (a progress bar). */
  onEpochStart?(epoch: number): ((step: StepReport) => void) | void;
  /** After each whole epoch, awaited before the next. `steps`: optimizer steps taken so far (skipped ones not counted). */
  onEpochEnd?(entry: EpochLog, progress: { steps: number }): Promise<void> | void;
  /** Checked between steps: true ends the epoch early, and the run. */
  shouldStop?(): boolean;
  /** The learning rate of each epoch (a schedule); default: Adam's, unchanged. */
  lrAt?(epoch: number): number;
}

/**
 * Cosine decay from `lr` to nearly 0 in the last of `epochs`, after
 * `warmup` epochs that rise linearly to it (lr/(warmup+1), 2·lr/(warmup+1), …):
 * small first steps keep Adam from driving a fresh model into predicting
 * nothing, which the Dice loss does not recover from.
 */
export function cosineSchedule(lr: number, epochs: number, warmup = 0): (epoch: number) => number {
  return (epoch) => (epoch <= warmup ? (lr * epoch) / (warmup + 1) : lr * 0.5 * (1 + Math.cos((Math.PI * (epoch - 1 - warmup)) / (epochs - warmup))));
}

export interface FitResult {
  /** The last whole epoch (firstEpoch − 1 if none). */
  lastEpoch: number;
  /** The epoch a stop cut short, or null. */
  interrupted: number | null;
}

/** Trains `trainer`'s model for the epochs asked, or until shouldStop says so. A NaN loss throws NonFiniteLossError. */
export async function fit(trainer: Trainer, o: FitOptions): Promise<FitResult> {
  const first = o.firstEpoch ?? 1;
  let skippedBefore = (await trainer.adam.lossScaleStatus())?.skipped ?? 0;
  for (let epoch = first; epoch <= o.epochs; epoch++) {
    if (o.lrAt) trainer.adam.options.lr = o.lrAt(epoch);
    const order = shuffle(Int32Array.from(o.trainRows), o.rng);
    const t0 = performance.now();
    const onStep = o.onEpochStart?.(epoch) ?? undefined;
    const result = await trainer.trainEpoch(o.set, order, epoch, onStep, o.shouldStop);
    if (!result.completed) return { lastEpoch: epoch - 1, interrupted: epoch };
    const val = await trainer.evaluate(o.set, o.valRows);
    const entry: EpochLog = { epoch, loss: result.loss, dice: result.dice, val_loss: val.loss, val_dice: val.dice, seconds: (performance.now() - t0) / 1000 };
    // With loss scaling the GPU alone knows how many steps were taken and skipped.
    const scaling = await trainer.adam.lossScaleStatus();
    if (scaling) {
      Object.assign(entry, { loss_scale: scaling.scale, skipped_steps: scaling.skipped - skippedBefore });
      skippedBefore = scaling.skipped;
    }
    await o.onEpochEnd?.(entry, { steps: scaling ? scaling.t : trainer.adam.t });
  }
  return { lastEpoch: o.epochs, interrupted: null };
}
