/**
 * `wgsl-unet train`: the tutorial's training on the engine. Reads the NumPy
 * caches (imgs_train.npy, imgs_mask_train.npy), resizes and normalises them,
 * holds out the last 20 % for validation, trains with Adam on −Dice, and
 * writes a run folder: best.safetensors (lowest validation loss),
 * last.safetensors (with optimiser and generator state, for --resume),
 * log.jsonl (one line per epoch) and curves.svg.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gatherRows, masksToUnit, meanStdOfRows, normalize, priorLogOdds, resizeStack } from '../data/prepare.js';
import type { DuplicateReport } from '../data/duplicates.js';
import { foldSplit, innerFoldOf, nestedFoldSplit } from '../data/folds.js';
import { encodeNpy } from '../data/npy.js';
import { detectContradictions } from './duplicates.js';
import { loadFrameCache, loadTrainIndex } from './caches.js';
import { DataError } from '../data/errors.js';
import { choosePostprocess } from '../data/postprocess.js';
import { SUBMISSION_HEIGHT, SUBMISSION_WIDTH } from '../data/submission.js';
import type { Gpu } from '../gpu/gpu.js';
import { formatAdapter } from '../gpu/gpu.js';
import { Adam, TUTORIAL_ADAM } from '../model/adam.js';
import { type CheckpointMeta, CHECKPOINT_FORMAT, CheckpointError, decodeCheckpoint, encodeCheckpoint, loadWeights } from '../model/checkpoint.js';
import { Rng } from '../model/rng.js';
import { cosineSchedule, fit } from '../model/fit.js';
import { Augmenter, type AugmentSpec, parseAugmentSpec } from '../model/augment.js';
import { NonFiniteLossError, TRAINING_LOSSES, Trainer, type ImageSet, type TrainingLoss } from '../model/trainer.js';
import { HIDDEN_ACTIVATIONS, type UNetConfig, type UNetVariant, createUNet, describeVariant } from '../model/unet.js';
import { GPU_OPTIONS, type OptionSpec, type Parsed, UsageError, parseArgs, usage } from './args.js';
import { curvesSvg, type EpochLog } from './curves.js';
import { FileError, readBytes, writeAtomic } from './files.js';
import { PRECISION_OPTION, choosePrecision, openGpu } from './gpu-options.js';
import { tuneForSoftwareAdapter } from '../software/platform.js';
import { progress } from './progress.js';
import { tuneForTraining } from '../model/tune.js';
import { type TuningRecord, TuningStoppedError, applyTuning, describeTuning, parseTuning, tuningRecord } from '../ops/conv/tune.js';
import { ensureDefaultData } from './default-data.js';
import { loadTestSet, predictTestSet } from './predict.js';
import { writeSubmission } from './submit.js';
import { VERSION } from '../version.js';

/** The run folder's record of train --tune's measurements. */
const TUNING_FILE = 'tuning.json';

const SPEC: Record<string, OptionSpec> = {
  ...GPU_OPTIONS,
  ...PRECISION_OPTION,
  data: { type: 'string', help: 'folder with imgs_train.npy and imgs_mask_train.npy', default: 'data' },
  out: { type: 'string', help: 'folder that receives the run folder', default: 'runs' },
  preset: { type: 'string', help: 'full (the tutorial: width 32, 96 px, batch 32, 20 epochs, lr 1e-5) or cpu (width 8, 48 px, batch 8, 30 epochs, lr 3e-4 warmed up 5 epochs then cosine-decayed: for software adapters); default: cpu on software adapters, full otherwise' },
  epochs: { type: 'number', help: 'epochs (overrides the preset)' },
  'batch-size': { type: 'number', help: 'images per step (overrides the preset)' },
  lr: { type: 'number', help: 'Adam learning rate (overrides the preset)' },
  epsilon: { type: 'number', help: 'Adam\'s ε (overrides the preset: 1e-7 in full, as Keras; 1e-4 in cpu)' },
  schedule: { type: 'string', help: 'learning rate over the epochs: constant, or cosine (decaying to nearly 0 by the last epoch); default: the preset\'s' },
  warmup: { type: 'number', help: 'with --schedule cosine: epochs whose learning rate rises linearly to --lr first (default: the preset\'s)' },
  'base-width': { type: 'number', help: 'filters of the first level (overrides the preset)' },
  'input-size': { type: 'number', help: 'model input size, a multiple of 16 (overrides the preset)' },
  limit: { type: 'number', help: 'use only the first N rows of the data (before the split)' },
  'validation-split': { type: 'number', help: 'fraction held out from the end of the data (default 0.2; a resumed run keeps its own)' },
  folds: { type: 'number', help: 'split by subject into K folds (needs imgs_train_index.npy) instead of holding out the last rows; with --fold' },
  fold: { type: 'number', help: 'the fold (1 … K) held out for validation; its out-of-fold maps go to oof.npy for `wgsl-unet oof`' },
  'inner-validation': { type: 'boolean', help: 'with --folds K --fold i (K ≥ 3): choose the best epoch on the next fold (i mod K + 1) and train on the other K − 2, so that fold i decides nothing and is only scored (oof.npy)' },
  'fold-seed': { type: 'number', help: 'seed of the assignment of subjects to folds (default 1; the same for every fold of one run)' },
  augment: { type: 'string', help: 'augment each training batch on the GPU: "default" (mirror, rotation, zoom, shift, elastic, brightness, contrast) or key=value pairs over it, such as "rotate=5,elastic=0"; off unless given' },
  'drop-contradictions': { type: 'boolean', help: 'leave the unmasked frame of each contradictory near-duplicate pair (wgsl-unet duplicates) out of training' },
  'init-prior': { type: 'boolean', help: 'start the last layer\'s bias at the log-odds of nerve pixels in the training masks, not at 0: the maps begin near that fraction instead of 0.5, and the Dice loss leaves its early plateau sooner' },
  loss: { type: 'string', help: 'the loss: dice (the tutorial\'s: −Dice over all the images of a step together), image-dice (minus the mean of each image\'s Dice, as the competition scores: an empty image predicted empty counts 1) or bce-dice (the tutorial\'s plus the mean binary cross-entropy); a resumed run keeps its own' },
  activation: { type: 'string', help: 'the hidden layers\' activation: relu (the tutorial\'s) or elu; a resumed run keeps its own' },
  dropout: { type: 'number', help: 'dropout rate in [0, 1) after the bottom\'s two convolutions while training (0, the tutorial\'s, for none); a resumed run keeps its own' },
  'batch-norm': { type: 'boolean', help: 'batch normalisation between each hidden convolution and its activation (Keras\'s BatchNormalization: the batch\'s statistics while training, running ones for validation and prediction); a resumed run keeps its own' },
  seed: { type: 'number', help: 'seed of the initial weights, the shuffling, the augmentation and the dropout masks (default 1); a resumed run keeps its own' },
  'anti-alias': { type: 'boolean', help: 'blur before downsampling, as scikit-image ≥ 0.19 does' },
  resume: { type: 'string', help: 'run folder to continue from its last.safetensors' },
  'skip-predict': { type: 'boolean', help: 'do not predict the test frames and write submission.csv after training' },
  tune: { type: 'boolean', help: 'mixed precision: before training, time every convolution of a step in each configuration of the mixed-precision shader (on a throwaway model) and run each in its fastest; takes a minute or more; kept in the run folder as tuning.json, which --resume applies again on the same adapter' },
  tuning: { type: 'string', help: 'mixed precision: run the convolutions as another run\'s --tune measured them (its tuning.json) instead of measuring again; applied where it was measured on this adapter, for the same shape (base width, input size, batch)' },
};

interface Preset {
  name: string;
  why: string;
  baseWidth: number;
  inputSize: number;
  batchSize: number;
  epochs: number;
  lr: number;
  /** Adam's ε. */
  epsilon: number;
  schedule: 'constant' | 'cosine';
  warmup: number;
  limit?: number;
}

const FULL: Omit<Preset, 'why'> = { name: 'full', baseWidth: 32, inputSize: 96, batchSize: 32, epochs: 20, lr: 1e-5, epsilon: TUTORIAL_ADAM.epsilon, schedule: 'constant', warmup: 0 };
// Sized to finish in a few minutes on a 2-core software adapter: a quarter of
// the width (1/16 of the work per pixel) at half the resolution, and a larger
// learning rate, warmed up and then decayed, so that a small model learns in
// few steps. A larger ε keeps it from collapsing into predicting nothing: the
// Dice loss never stops pushing background pixels down, and with ε 1e-7 Adam
// turns even vanishing gradients into full steps, until the logits saturate
// the sigmoid to exact 0s and 1s, whose gradients are exactly zero, and
// learning stops (docs/training.md).
const CPU: Omit<Preset, 'why'> = { name: 'cpu', baseWidth: 8, inputSize: 48, batchSize: 8, epochs: 30, lr: 3e-4, epsilon: 1e-4, schedule: 'cosine', warmup: 5 };

/** The numeric options given, each in its range (choosePreset checks them again with the preset's values), and the model variant's. */
function checkNumbers(o: Parsed): void {
  for (const k of ['epochs', 'batch-size', 'base-width', 'input-size', 'limit'] as const) {
    const v = o[k];
    if (v !== undefined && (!Number.isInteger(v) || (v as number) < 1)) throw new UsageError(`--${k} must be a positive integer, got ${v}`);
  }
  if (o['input-size'] !== undefined && (o['input-size'] as number) % 16 !== 0) throw new UsageError(`--input-size must be divisible by 16 (four 2 × 2 poolings), got ${o['input-size']}`);
  if (o.lr !== undefined && !((o.lr as number) > 0)) throw new UsageError(`--lr must be positive, got ${o.lr}`);
  if (o.epsilon !== undefined && !((o.epsilon as number) > 0)) throw new UsageError(`--epsilon must be positive, got ${o.epsilon}`);
  const split = o['validation-split'];
  if (split !== undefined && !((split as number) > 0 && (split as number) < 1)) throw new UsageError(`--validation-split must be in (0, 1), got ${split}`);
  if (o.seed !== undefined && !Number.isInteger(o.seed)) throw new UsageError(`--seed must be an integer, got ${o.seed}`);
  checkModelVariant(o);
  const folds = o.folds as number | undefined;
  const fold = o.fold as number | undefined;
  if (folds !== undefined && (!Number.isInteger(folds) || folds < 2)) throw new UsageError(`--folds must be a whole number ≥ 2, got ${folds}`);
  if ((folds === undefined) !== (fold === undefined)) throw new UsageError('--folds and --fold go together: --folds K --fold i holds out fold i of K');
  if (folds !== undefined && (!Number.isInteger(fold) || fold! < 1 || fold! > folds)) throw new UsageError(`--fold must be a whole number in 1 … ${folds}, got ${fold}`);
  if (folds !== undefined && split !== undefined) throw new UsageError('--validation-split and --folds are two ways to hold out validation data: give one');
  if (o['inner-validation'] === true && (folds === undefined || folds < 3)) throw new UsageError(`--inner-validation needs --folds K --fold i with K ≥ 3 (one fold held out, one to validate, the rest to train)${folds === undefined ? '' : `, got --folds ${folds}`}`);
  if (o['fold-seed'] !== undefined && (folds === undefined || !Number.isInteger(o['fold-seed']))) throw new UsageError(`--fold-seed needs --folds and a whole number, got ${o['fold-seed']}`);
}

function choosePreset(o: Parsed, gpu: Gpu): Preset {
  const asked = o.preset as string | undefined;
  if (asked && asked !== 'full' && asked !== 'cpu') throw new UsageError(`--preset must be full or cpu, got "${asked}"`);
  const soft = gpu.adapterInfo.isSoftware;
  const base = asked === 'full' ? FULL : asked === 'cpu' ? CPU : soft ? CPU : FULL;
  const why = asked
    ? 'chosen with --preset'
    : soft
      ? 'the adapter is a software one, where the tutorial\'s recipe would take days; pass --preset full to run it anyway'
      : 'a hardware adapter: the tutorial\'s recipe';
  const p: Preset = { ...base, why };
  const num = (k: string) => (o[k] === undefined ? undefined : (o[k] as number));
  p.epochs = num('epochs') ?? p.epochs;
  p.batchSize = num('batch-size') ?? p.batchSize;
  p.lr = num('lr') ?? p.lr;
  p.epsilon = num('epsilon') ?? p.epsilon;
  p.baseWidth = num('base-width') ?? p.baseWidth;
  p.inputSize = num('input-size') ?? p.inputSize;
  const schedule = o.schedule as string | undefined;
  if (schedule !== undefined && schedule !== 'constant' && schedule !== 'cosine') throw new UsageError(`--schedule must be constant or cosine, got "${schedule}"`);
  p.schedule = (schedule as Preset['schedule'] | undefined) ?? p.schedule;
  // The preset's warm-up keeps its share of the epochs when --epochs changes them.
  p.warmup = num('warmup') ?? Math.floor((p.warmup * p.epochs) / base.epochs);
  if (!Number.isInteger(p.warmup) || p.warmup < 0 || p.warmup >= p.epochs) throw new UsageError(`--warmup must be a whole number of epochs below --epochs (${p.epochs}), got ${p.warmup}`);
  for (const [k, v] of [['epochs', p.epochs], ['batch-size', p.batchSize], ['base-width', p.baseWidth], ['input-size', p.inputSize]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new UsageError(`--${k} must be a positive integer, got ${v}`);
  }
  if (p.inputSize % 16 !== 0) throw new UsageError(`--input-size must be divisible by 16 (four 2 × 2 poolings), got ${p.inputSize}`);
  if (!(p.lr > 0)) throw new UsageError(`--lr must be positive, got ${p.lr}`);
  return p;
}

/** How validation data is held out: the last rows (the tutorial), or one fold of subjects. */
type Holdout = { split: number } | { folds: number; fold: number; seed: number; nested: boolean };

interface Prepared {
  train: ImageSet;
  trainRows: Int32Array;
  valRows: Int32Array;
  /** Validation masks at the cache's full size, in valRows' order, for the competition's metric. */
  validationMasks: Uint8Array;
  /**
   * Folds only: the rows scored out of fold (the validation rows, or with nested
   * validation the held-out fold's) and their [subject, frame], for oof_index.npy.
   */
  heldOut?: { rows: Int32Array; index: Int32Array };
  fullWidth: number;
  fullHeight: number;
  mean: number;
  std: number;
  /** With --drop-contradictions: the pairs found, and the training rows left out. */
  contradictions?: { report: DuplicateReport; dropped: number };
}

function prepare(dir: string, p: Preset, limit: number | undefined, holdout: Holdout, antiAlias: boolean, dropContradictions: boolean, stored?: { mean: number; std: number }): Prepared {
  const imgs = loadFrameCache(dir, 'imgs_train.npy');
  const masks = loadFrameCache(dir, 'imgs_mask_train.npy');
  if (imgs.shape.join() !== masks.shape.join()) {
    throw new DataError(`${dir}: imgs_train.npy (${imgs.shape.join(', ')}) and imgs_mask_train.npy (${masks.shape.join(', ')}) differ in shape; rebuild them with npm run data`);
  }
  const [n0, h, w] = imgs.shape as [number, number, number];
  const count = Math.min(n0, limit ?? n0);
  if (count < 2) throw new DataError(`${dir}: ${count} training image(s); at least 2 are needed (one to train, one to validate)`);
  const index = 'folds' in holdout || dropContradictions ? loadTrainIndex(dir, n0) : undefined;
  let trainRows: Int32Array;
  let valRows: Int32Array;
  let heldOutRows: Int32Array | undefined;
  if ('folds' in holdout && holdout.nested) {
    ({ trainRows, valRows, heldOutRows } = nestedFoldSplit(index!, count, holdout.folds, holdout.fold, holdout.seed));
  } else if ('folds' in holdout) {
    ({ trainRows, valRows } = foldSplit(index!, count, holdout.folds, holdout.fold, holdout.seed));
    heldOutRows = valRows;
  } else {
    const trainCount = Math.floor(count * (1 - holdout.split));
    if (trainCount < 1 || trainCount >= count) throw new UsageError(`--validation-split ${holdout.split} leaves ${trainCount} of ${count} images for training; choose a value in (0, 1)`);
    trainRows = Int32Array.from({ length: trainCount }, (_, i) => i);
    valRows = Int32Array.from({ length: count - trainCount }, (_, i) => trainCount + i);
  }
  let contradictions: Prepared['contradictions'];
  if (dropContradictions) {
    // Only training rows are dropped: validation scores every frame, as a test set would hold them.
    const report = detectContradictions({ images: imgs.data.subarray(0, count * h * w), masks: masks.data.subarray(0, count * h * w), index: index!, count, width: w, height: h });
    const drop = new Set(report.contradictions.map((c) => c.unmaskedRow));
    const kept = trainRows.filter((r) => !drop.has(r));
    contradictions = { report, dropped: trainRows.length - kept.length };
    trainRows = kept;
  }
  if (p.batchSize > trainRows.length) {
    throw new UsageError(`--batch-size ${p.batchSize} is larger than the ${trainRows.length} training images; lower it or use more data`);
  }
  const size = p.inputSize;
  const bar = progress(`resizing ${w}×${h} → ${size}×${size}`, 2 * count, 'frames');
  const small = resizeStack(imgs.data.subarray(0, count * h * w), count, w, h, size, { antiAlias, onProgress: (d) => bar.update(d) });
  const smallMasks = resizeStack(masks.data.subarray(0, count * h * w), count, w, h, size, { antiAlias, onProgress: (d) => bar.update(count + d) });
  bar.finish();
  // Normalisation from the training rows only: validation images stay unseen.
  // A resumed run keeps the one it was trained with, even if the caches changed since.
  const { mean, std } = stored ?? meanStdOfRows(small, size * size, trainRows);
  return {
    train: { images: normalize(small, mean, std), masks: masksToUnit(smallMasks), count, size },
    trainRows,
    valRows,
    validationMasks: gatherRows(masks.data, w * h, valRows),
    ...(index && heldOutRows ? { heldOut: { rows: heldOutRows, index: Int32Array.from(Array.from(heldOutRows, (r) => [index[2 * r]!, index[2 * r + 1]!]).flat()) } } : {}),
    fullWidth: w,
    fullHeight: h,
    mean,
    std,
    ...(contradictions ? { contradictions } : {}),
  };
}

/** Validation Dice (mean over batches, as reported) of a model that predicts no nerve anywhere. */
function emptyPredictionDice(set: ImageSet, rows: Int32Array, batchSize: number): number {
  const px = set.size * set.size;
  let sum = 0;
  let batches = 0;
  for (let from = 0; from < rows.length; from += batchSize) {
    let mask = 0;
    for (let i = from; i < Math.min(rows.length, from + batchSize); i++) {
      for (let k = rows[i]! * px; k < (rows[i]! + 1) * px; k++) mask += set.masks[k]!;
    }
    sum += 1 / (mask + 1);
    batches++;
  }
  return sum / batches;
}

/**
 * The mixed-precision convolutions' configurations for a run: measured
 * here (--tune), or applied from a record (--tuning's, or on --resume the
 * run folder's tuning.json where there is one), where it was measured on
 * this adapter for this shape. Returns the record for the run folder to
 * keep: what was measured or taken from --tuning (a resumed run's own is
 * there already).
 */
async function tuneConvolutionsForRun(gpu: Gpu, o: Parsed, preset: { baseWidth: number; inputSize: number; batchSize: number }, variant: UNetVariant, precision: string, loss: TrainingLoss, recordPath: string | null, stopRequested: () => boolean): Promise<TuningRecord | null> {
  const asked = o.tuning !== undefined;
  if (o.tune === true) {
    let bar: ReturnType<typeof progress> | null = null;
    const report = await tuneForTraining(gpu, { baseWidth: preset.baseWidth, inputSize: preset.inputSize, batch: preset.batchSize, ...variant }, loss, {
      onProgress: (done, total, name) => {
        bar ??= progress('tuning the convolutions', total, 'configurations');
        bar.update(done, name);
      },
      shouldStop: stopRequested,
    }).catch((e: unknown) => {
      (bar as ReturnType<typeof progress> | null)?.finish(e instanceof TuningStoppedError ? 'interrupted' : 'failed');
      throw e;
    });
    (bar as ReturnType<typeof progress> | null)?.finish();
    console.log(describeTuning(report));
    return tuningRecord(gpu, report, tuningWorkload(preset, variant));
  }
  if (!recordPath || (!asked && !existsSync(recordPath))) return null;
  // (--tuning in fp32 is refused before this.)
  if (precision !== 'mixed') {
    console.log(`tuning: ${recordPath} not applied: this run is in ${precision}`);
    return null;
  }
  // What to do about a record that cannot be used: the run folder's is measured again or deleted.
  const remedy = asked ? "give a tuning measured on this GPU, or run on the planner's configurations by leaving out --tuning" : "pass --tune to measure again (which rewrites it), or delete it to run on the planner's configurations";
  let record: TuningRecord;
  try {
    record = parseTuning(new TextDecoder().decode(readBytes(recordPath, 'tuning record')), recordPath);
  } catch (e) {
    if (asked) throw e instanceof FileError ? e : new DataError((e as Error).message);
    throw new DataError(`${(e as Error).message}; ${remedy}`);
  }
  let applied: ReturnType<typeof applyTuning>;
  try {
    applied = applyTuning(gpu, record, tuningWorkload(preset, variant));
  } catch (e) {
    throw new DataError(`${recordPath}: ${(e as Error).message}; ${remedy}`);
  }
  if ('mismatch' in applied) {
    console.log(`tuning: ${recordPath} not applied: ${applied.mismatch}; the planner's configurations run (--tune measures for this one)`);
    return null;
  }
  console.log(`tuning: ${applied.changed} of ${applied.gemms} GEMMs in their measured configurations, from ${recordPath} (measured ${record.measuredAt})`);
  return asked ? record : null;
}

/**
 * What a training run's tuning is measured for: the GEMMs' shapes and flags
 * follow from these (the variant changes the convolutions' fused activations
 * and masks; the tutorial's model names none, as records made before it did).
 */
function tuningWorkload(p: { baseWidth: number; inputSize: number; batchSize: number }, variant: UNetVariant): Record<string, string | number> {
  return {
    baseWidth: p.baseWidth, inputSize: p.inputSize, batch: p.batchSize,
    ...(variant.activation ? { activation: variant.activation } : {}), ...(variant.batchNorm ? { batchNorm: 'yes' } : {}), ...(variant.dropout ? { dropout: variant.dropout } : {}),
  };
}

export async function train(argv: string[]): Promise<void> {
  if (argv.includes('--help')) return void console.log(usage('train', 'Trains the U-Net on the NumPy caches (the embedded synthetic data when there are none).', SPEC));
  const { options: o } = parseArgs(argv, SPEC);
  checkNumbers(o); // before the adapter starts, which takes seconds
  // Tuning times single passes: Dawn's timestamps at full resolution.
  const gpu = await openGpu(o, console.log, o.tune === true ? ['disable-dawn-features=timestamp_quantization'] : []);
  let interrupted = 0;
  const onSigint = () => {
    interrupted++;
    if (interrupted === 1) console.error('\ninterrupt: stopping at the end of this step (press Ctrl-C again to quit at once)');
    else process.exit(130);
  };
  process.on('SIGINT', onSigint);
  try {
    await run(gpu, o, () => interrupted > 0);
  } finally {
    process.off('SIGINT', onSigint);
    await gpu.close();
  }
}

/** --activation and --dropout, when given, in their ranges (train's and recipe's). */
export function checkModelVariant(o: Parsed): void {
  const activation = o.activation as string | undefined;
  if (activation !== undefined && !(HIDDEN_ACTIVATIONS as readonly string[]).includes(activation)) throw new UsageError(`--activation must be ${HIDDEN_ACTIVATIONS.join(' or ')}, got "${activation}"`);
  const dropout = o.dropout as number | undefined;
  if (dropout !== undefined && !(dropout >= 0 && dropout < 1)) throw new UsageError(`--dropout must be a rate in [0, 1), got ${dropout}`);
}

/**
 * The model variant (--activation, --dropout, --batch-norm) a run trains: as asked, or a
 * resumed run's own, with which a different request conflicts.
 */
function modelVariant(o: Parsed, stored: UNetConfig | undefined, resumedFrom: string): UNetVariant {
  // (Both checked by checkModelVariant.)
  const activation = o.activation as string | undefined;
  const dropout = o.dropout as number | undefined;
  if (stored) {
    const was = { activation: stored.activation ?? 'relu', dropout: stored.dropout ?? 0 };
    if (activation !== undefined && activation !== was.activation) throw new UsageError(`--activation ${activation} conflicts with ${resumedFrom}, whose model has ${was.activation} activations; leave the flag out to resume as it was`);
    if (dropout !== undefined && dropout !== was.dropout) throw new UsageError(`--dropout ${dropout} conflicts with ${resumedFrom}, which was trained with dropout ${was.dropout}; leave the flag out to resume as it was`);
    if (o['batch-norm'] === true && !stored.batchNorm) throw new UsageError(`--batch-norm conflicts with ${resumedFrom}, whose model has no batch normalisation; leave the flag out to resume as it was`);
    return { ...(stored.activation ? { activation: stored.activation } : {}), ...(stored.dropout ? { dropout: stored.dropout } : {}), ...(stored.batchNorm ? { batchNorm: true } : {}) };
  }
  return askedVariant(o);
}

/** The model variant the flags ask for (checked by checkModelVariant): only what differs from the tutorial's model. */
export function askedVariant(o: Parsed): UNetVariant {
  const dropout = o.dropout as number | undefined;
  return { ...(o.activation === 'elu' ? { activation: 'elu' } : {}), ...(dropout ? { dropout } : {}), ...(o['batch-norm'] === true ? { batchNorm: true } : {}) };
}

async function run(gpu: Gpu, o: Parsed, stopRequested: () => boolean): Promise<void> {
  const resumeDir = o.resume as string | undefined;
  let resumed: ReturnType<typeof decodeCheckpoint> | null = null;
  if (resumeDir) {
    const path = join(resumeDir, 'last.safetensors');
    resumed = decodeCheckpoint(readBytes(path, 'checkpoint to resume'), path);
    if (!resumed.meta.training || !resumed.adam) throw new UsageError(`${path} has no optimiser state; only last.safetensors of a run can be resumed`);
  }
  const preset = choosePreset(o, gpu);
  if (resumed) {
    const t = resumed.meta.training!;
    Object.assign(preset, { baseWidth: resumed.meta.config.baseWidth, inputSize: resumed.meta.config.inputSize, batchSize: t.batchSize, lr: t.lr, epsilon: t.epsilon ?? TUTORIAL_ADAM.epsilon, schedule: t.schedule ?? 'constant', warmup: t.warmup ?? 0, name: t.preset, why: `resumed from ${resumeDir}` });
    if (o.epochs === undefined) preset.epochs = t.epochs;
  }
  // A checkpoint without the field was trained in fp32 (checkpoint.ts).
  const precision = choosePrecision(o, gpu, resumed ? (resumed.meta.precision ?? 'fp32') : undefined);
  const askedTuning = o.tuning as string | undefined;
  if (askedTuning !== undefined && o.tune === true) throw new UsageError('--tune measures the convolutions on this GPU, --tuning applies measurements made before: give one of them');
  if (o.tune === true && precision !== 'mixed') throw new UsageError(`--tune chooses among the mixed-precision convolutions' configurations; this run is in ${precision} (--precision mixed, on an adapter with f16 subgroup matrices)`);
  if (askedTuning !== undefined && precision !== 'mixed') throw new UsageError(`--tuning applies measurements of the mixed-precision convolutions' configurations; this run is in ${precision} (--precision mixed, on an adapter with f16 subgroup matrices)`);
  if (o.tune === true && !gpu.hasTimestamps) throw new UsageError(`--tune times the convolutions by timestamp queries, which adapter ${gpu.adapterInfo.description} does not offer`);
  console.log(`preset ${preset.name} (${preset.why}): base width ${preset.baseWidth}, input ${preset.inputSize}×${preset.inputSize}, batch ${preset.batchSize}, ${preset.epochs} epochs, Adam lr ${preset.lr}, ε ${preset.epsilon}${preset.schedule === 'cosine' ? ` with cosine decay${preset.warmup ? ` after ${preset.warmup} warm-up epochs` : ''}` : ''}`);

  const dataArg = (resumed && o.data === SPEC.data!.default ? resumed.meta.training!.data : undefined) ?? (o.data as string);
  const dataDir = resolve(dataArg);
  if (!existsSync(join(dataDir, 'imgs_train.npy'))) {
    // The default folder, however spelled (recipe passes it as an absolute path), gets the default data.
    if (dataDir !== resolve(SPEC.data!.default as string)) throw new DataError(`no imgs_train.npy in ${dataDir}: run npm run data first, or leave out --data to use the embedded default`);
    await ensureDefaultData(dataDir, preset.name === 'full' ? 'full' : 'cpu');
  }
  const limit = resumed ? resumed.meta.training!.count : (o.limit as number | undefined);
  // What shapes the data comes from the checkpoint when resuming; a flag that says otherwise is an error.
  const resumedFrom = resumeDir ? join(resumeDir, 'last.safetensors') : '';
  const askedSplit = o['validation-split'] as number | undefined;
  const stored = resumed?.meta.training;
  if (stored?.validationSplit !== undefined && askedSplit !== undefined && askedSplit !== stored.validationSplit) {
    throw new UsageError(`--validation-split ${askedSplit} conflicts with ${stored.validationSplit}, which ${resumedFrom} was trained with; leave the flag out to resume as it was`);
  }
  const askedFolds = o.folds === undefined ? undefined : {
    k: o.folds as number,
    fold: o.fold as number,
    seed: (o['fold-seed'] as number | undefined) ?? 1,
    ...(o['inner-validation'] === true ? { inner: innerFoldOf(o.fold as number, o.folds as number) } : {}),
  };
  if (resumed && askedFolds && JSON.stringify(askedFolds) !== JSON.stringify(stored?.folds)) {
    const was = stored?.folds ? `fold ${stored.folds.fold} of ${stored.folds.k} (fold seed ${stored.folds.seed})${stored.folds.inner ? `, validated on fold ${stored.folds.inner}` : ''}` : `the last ${stored?.validationSplit} of the rows held out`;
    throw new UsageError(`--folds ${askedFolds.k} --fold ${askedFolds.fold}${askedFolds.inner ? ' --inner-validation' : ''} conflicts with ${resumedFrom}, which was trained with ${was}; leave the flags out to resume as it was`);
  }
  if (resumed && stored?.folds && askedSplit !== undefined) throw new UsageError(`--validation-split conflicts with ${resumedFrom}, which held out fold ${stored.folds.fold} of ${stored.folds.k}; leave the flag out to resume as it was`);
  const folds = stored?.folds ?? (resumed ? undefined : askedFolds);
  const split = folds ? undefined : askedSplit ?? stored?.validationSplit ?? 0.2;
  const holdout: Holdout = folds ? { folds: folds.k, fold: folds.fold, seed: folds.seed, nested: folds.inner !== undefined } : { split: split! };
  const storedAntiAlias = resumed ? resumed.meta.antiAlias ?? false : undefined;
  if (storedAntiAlias === false && o['anti-alias'] === true) {
    throw new UsageError(`--anti-alias conflicts with ${resumedFrom}, which was trained without it (anti-alias off); leave the flag out to resume as it was`);
  }
  const antiAlias = storedAntiAlias ?? o['anti-alias'] === true;
  if (resumed && o['drop-contradictions'] === true && !stored?.dropContradictions) throw new UsageError(`--drop-contradictions conflicts with ${resumedFrom}, which trained on every frame; leave the flag out to resume as it was`);
  const dropContradictions = stored?.dropContradictions ?? o['drop-contradictions'] === true;
  if (resumed && o['init-prior'] === true && stored?.outputBias === undefined) throw new UsageError(`--init-prior conflicts with ${resumedFrom}, which started its last layer's bias at 0; leave the flag out to resume as it was`);
  const askedLoss = o.loss as string | undefined;
  if (askedLoss !== undefined && !(TRAINING_LOSSES as readonly string[]).includes(askedLoss)) throw new UsageError(`--loss must be ${TRAINING_LOSSES.join(', ')}, got "${askedLoss}"`);
  const storedLoss: TrainingLoss | undefined = resumed ? stored?.loss ?? 'dice' : undefined;
  if (storedLoss !== undefined && askedLoss !== undefined && askedLoss !== storedLoss) throw new UsageError(`--loss ${askedLoss} conflicts with ${resumedFrom}, which was trained with the ${storedLoss} loss; leave the flag out to resume as it was`);
  const loss: TrainingLoss = storedLoss ?? (askedLoss as TrainingLoss | undefined) ?? 'dice';
  const variant = modelVariant(o, resumed ? resumed.meta.config : undefined, resumedFrom);
  // A resumed run's augmentation and dropout go on from its own seed.
  const askedSeed = o.seed as number | undefined;
  if (stored && askedSeed !== undefined && askedSeed !== stored.seed) throw new UsageError(`--seed ${askedSeed} conflicts with ${resumedFrom}, which was trained with seed ${stored.seed}; leave the flag out to resume as it was`);
  const seed = stored?.seed ?? askedSeed ?? 1;
  let augment: AugmentSpec | undefined;
  if (o.augment !== undefined) {
    try {
      augment = parseAugmentSpec(o.augment as string);
    } catch (e) {
      throw new UsageError(`--augment: ${(e as Error).message}`);
    }
  }
  if (resumed && augment && JSON.stringify(augment) !== JSON.stringify(stored?.augment)) throw new UsageError(`--augment conflicts with ${resumedFrom}, which was trained ${stored?.augment ? 'with other augmentation' : 'without augmentation'}; leave the flag out to resume as it was`);
  augment = resumed ? stored?.augment : augment;
  const data = prepare(dataDir, preset, limit, holdout, antiAlias, dropContradictions, resumed?.meta.normalization);
  // After the data step, whose worker threads would inherit a lowered priority.
  tuneForSoftwareAdapter(gpu);
  const { trainRows, valRows } = data;
  const valCount = valRows.length;
  const heldOut = !folds
    ? `the last ${Math.round(split! * 100)} %`
    : folds.inner
      ? `fold ${folds.inner} of ${folds.k} by subject, choosing the epoch; fold ${folds.fold}'s ${data.heldOut!.rows.length} held out, only scored`
      : `fold ${folds.fold} of ${folds.k} by subject`;
  console.log(`data: ${data.train.count} images from ${dataDir}: ${trainRows.length} train, ${valCount} validation (${heldOut}); normalisation mean ${data.mean.toFixed(3)}, std ${data.std.toFixed(3)}`);
  if (data.contradictions) {
    const { report, dropped } = data.contradictions;
    console.log(`contradictory near-duplicates: ${report.contradictions.length} pairs found; ${dropped} unmasked frames left out of training (validation keeps every frame)`);
  }

  // A resumed run loads its weights: the bias it started from is only kept in its record.
  const outputBias = resumed ? stored?.outputBias : o['init-prior'] === true ? priorLogOdds(data.train.masks, data.train.size ** 2, trainRows) : undefined;
  if (outputBias !== undefined && !resumed) console.log(`output bias: starts at ${outputBias.toFixed(3)}, the log-odds of the training masks' nerve pixels`);
  let tuned: TuningRecord | null;
  try {
    tuned = await tuneConvolutionsForRun(gpu, o, preset, variant, precision, loss, askedTuning ?? (resumeDir ? join(resumeDir, TUNING_FILE) : null), stopRequested);
  } catch (e) {
    if (!(e instanceof TuningStoppedError)) throw e;
    // Before the run folder exists: nothing to keep.
    console.log(`interrupted while tuning the convolutions (${e.message}): nothing was saved`);
    process.exitCode = 130;
    return;
  }
  const model = createUNet(gpu, { baseWidth: preset.baseWidth, inputSize: preset.inputSize, seed, ...variant, ...(outputBias !== undefined ? { outputBias } : {}) });
  const described = describeVariant(variant, { dropout: true });
  if (described.length) console.log(`model variant: ${described.join(', ')}`);
  // Mixed precision scales the loss, so that small gradients survive as f16 operands.
  const adam = new Adam(model.parameters, { lr: preset.lr, epsilon: preset.epsilon }, precision === 'mixed');
  let stepsTaken = resumed ? resumed.adam!.t : 0;
  let rng = new Rng((seed ^ 0x5eed) >>> 0);
  let firstEpoch = 1;
  const log: EpochLog[] = [];
  let runDir: string;
  if (resumed) {
    const path = join(resumeDir!, 'last.safetensors');
    loadWeights(model, resumed, path);
    try {
      adam.loadState(resumed.adam!);
    } catch (e) {
      throw new CheckpointError(`${path}: ${(e as Error).message}`);
    }
    // The dropout masks an uninterrupted run would draw next: a step skipped for
    // an overflow (mixed precision) drew its masks but is not in Adam's count.
    model.trainingSteps = resumed.meta.training!.stepsBegun ?? stepsTaken;
    rng = Rng.fromState(resumed.meta.training!.rngState);
    firstEpoch = resumed.meta.epoch + 1;
    runDir = resolve(resumeDir!);
    const logPath = join(runDir, 'log.jsonl');
    if (existsSync(logPath)) {
      for (const line of readFileSync(logPath, 'utf8').split('\n').filter(Boolean)) {
        const e = JSON.parse(line) as EpochLog;
        if (e.epoch < firstEpoch) log.push(e);
      }
    }
    // Temporary files of writes a killed run never finished (writeAtomic's): the files they were to replace are intact.
    for (const name of readdirSync(runDir)) if (/\.tmp-\d+$/.test(name)) rmSync(join(runDir, name), { force: true });
    console.log(`resuming ${runDir} at epoch ${firstEpoch} (step ${adam.t})`);
  } else {
    runDir = resolve(o.out as string, new Date().toISOString().replace(/[:.]/g, '-'));
  }
  console.log(`model: ${model.parameters.count.toLocaleString('en-US')} parameters; run folder ${runDir}`);
  if (data.contradictions) writeAtomic(join(runDir, 'contradictions.json'), JSON.stringify({ data: dataDir, ...data.contradictions.report, droppedFromTraining: data.contradictions.dropped }, null, 2) + '\n');

  if (augment) console.log(`augmentation: ${Object.entries(augment).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  if (loss !== 'dice') console.log(`loss: ${loss === 'image-dice' ? 'minus the mean Dice of the images of each batch' : '−Dice over each batch plus the mean binary cross-entropy'}`);
  const trainer = new Trainer(model, adam, preset.batchSize, augment ? new Augmenter(augment, seed) : undefined, loss);
  let bestValLoss = log.length ? Math.min(...log.map((e) => e.val_loss)) : Infinity;
  let bestMeta: CheckpointMeta | null = null;

  const meta = (epoch: number, metrics: Record<string, number>, rngState: number[]): CheckpointMeta => ({
    format: CHECKPOINT_FORMAT,
    version: VERSION,
    config: model.config,
    normalization: { mean: data.mean, std: data.std },
    ...(antiAlias ? { antiAlias } : {}),
    epoch,
    step: stepsTaken,
    metrics,
    adapter: formatAdapter(gpu.adapterInfo),
    precision,
    createdAt: new Date().toISOString(),
    training: {
      seed,
      batchSize: preset.batchSize,
      epochs: preset.epochs,
      lr: preset.lr,
      epsilon: preset.epsilon,
      ...(preset.schedule !== 'constant' ? { schedule: preset.schedule, warmup: preset.warmup } : {}),
      ...(split !== undefined ? { validationSplit: split } : {}),
      ...(folds ? { folds } : {}),
      ...(dropContradictions ? { dropContradictions } : {}),
      ...(outputBias !== undefined ? { outputBias } : {}),
      ...(loss !== 'dice' ? { loss } : {}),
      ...(augment ? { augment } : {}),
      ...(model.config.dropout ? { stepsBegun: model.trainingSteps } : {}),
      preset: preset.name,
      rngState,
      count: data.train.count,
      trainCount: trainRows.length,
      data: dataDir,
    },
  });

  let bar: ReturnType<typeof progress> | null = null;
  let run: Awaited<ReturnType<typeof fit>>;
  try {
    run = await fit(trainer, {
      set: data.train, trainRows, valRows, epochs: preset.epochs, firstEpoch, rng, shouldStop: stopRequested,
      ...(preset.schedule === 'cosine' ? { lrAt: cosineSchedule(preset.lr, preset.epochs, preset.warmup) } : {}),
      onEpochStart: (epoch) => {
        const b = (bar = progress(`epoch ${epoch}/${preset.epochs}`, trainRows.length, 'images'));
        return (r) => b.update(r.images, `loss ${r.loss.toFixed(4)}, dice ${r.dice.toFixed(4)}`);
      },
      onEpochEnd: async (entry, { steps }) => {
        stepsTaken = steps;
        log.push(entry);
        const scaleNote = entry.loss_scale !== undefined ? `, loss scale ${entry.loss_scale}, ${entry.skipped_steps} steps skipped` : '';
        bar!.finish(`loss ${entry.loss.toFixed(4)}, dice ${entry.dice.toFixed(4)}, val_loss ${entry.val_loss.toFixed(4)}, val_dice ${entry.val_dice.toFixed(4)}${scaleNote}`);
        bar = null;
        const metrics = { loss: entry.loss, dice: entry.dice, val_loss: entry.val_loss, val_dice: entry.val_dice };
        // last.safetensors is written last: it decides where --resume starts, and
        // a run killed before it resumes at this epoch, which rewrites the others
        // (the log's lines from this epoch on are dropped on resume).
        // The tuning with the first epoch's files: a run stopped before has nothing to resume.
        if (tuned) writeAtomic(join(runDir, TUNING_FILE), JSON.stringify(tuned, null, 2) + '\n');
        tuned = null;
        writeAtomic(join(runDir, 'log.jsonl'), log.map((e) => JSON.stringify(e)).join('\n') + '\n');
        writeAtomic(join(runDir, 'curves.svg'), curvesSvg(log));
        if (entry.val_loss < bestValLoss) {
          bestValLoss = entry.val_loss;
          bestMeta = meta(entry.epoch, metrics, rng.state());
          writeAtomic(join(runDir, 'best.safetensors'), await encodeCheckpoint(model, bestMeta));
          console.log(`  val_loss improved to ${entry.val_loss.toFixed(4)}: saved best.safetensors`);
        }
        writeAtomic(join(runDir, 'last.safetensors'), await encodeCheckpoint(model, meta(entry.epoch, metrics, rng.state()), adam));
      },
    });
  } catch (e) {
    (bar as ReturnType<typeof progress> | null)?.finish('stopped');
    if (e instanceof NonFiniteLossError) {
      console.error(`error: ${e.message}`);
      console.error(`the last good checkpoint is ${existsSync(join(runDir, 'last.safetensors')) ? join(runDir, 'last.safetensors') : '(none: this was the first epoch)'}`);
      process.exitCode = 1;
      model.dispose();
      adam.dispose();
      return;
    }
    throw e;
  }
  if (run.interrupted !== null) {
    // last.safetensors stays the end of the last whole epoch, with the
    // generator as it was then: --resume runs this epoch again from its
    // start and reproduces the uninterrupted run.
    const epoch = run.interrupted;
    (bar as ReturnType<typeof progress> | null)?.finish('interrupted');
    const last = join(runDir, 'last.safetensors');
    console.log(existsSync(last)
      ? `interrupted in epoch ${epoch}: ${last} holds the end of epoch ${epoch - 1}; continue with: npm run train -- --resume ${runDir}`
      : `interrupted in epoch ${epoch}, before any epoch was complete: nothing was saved`);
    process.exitCode = 130;
    model.dispose();
    adam.dispose();
    return;
  }
  const bestPath = join(runDir, 'best.safetensors');
  if (existsSync(bestPath)) {
    // The competition's metric on the validation part, with the best weights;
    // the threshold and minimum area chosen here are stored with them for `submit`.
    const best = decodeCheckpoint(readBytes(bestPath, 'best checkpoint'), bestPath);
    loadWeights(model, best, bestPath);
    const bar = progress('validation predictions', valCount, 'images');
    const probs = await trainer.predict(gatherRows(data.train.images, data.train.size ** 2, valRows), valCount, data.train.size, (d) => bar.update(d));
    bar.finish();
    if (data.heldOut) {
      // Out-of-fold maps, for the metric over all folds (wgsl-unet oof): the validation maps, or
      // with nested validation the held-out fold's, predicted apart.
      const { rows, index } = data.heldOut;
      let held = probs;
      if (rows !== valRows) {
        const bar = progress('held-out predictions', rows.length, 'images');
        held = await trainer.predict(gatherRows(data.train.images, data.train.size ** 2, rows), rows.length, data.train.size, (d) => bar.update(d));
        bar.finish();
      }
      writeAtomic(join(runDir, 'oof.npy'), encodeNpy(held, [rows.length, data.train.size, data.train.size]));
      writeAtomic(join(runDir, 'oof_index.npy'), encodeNpy(index, [rows.length, 2]));
    }
    if (data.fullWidth === SUBMISSION_WIDTH && data.fullHeight === SUBMISSION_HEIGHT) {
      const choice = choosePostprocess(probs, data.train.size, data.validationMasks, valCount);
      console.log(
        `competition metric on validation (mean per-image Dice at 580×420): ${choice.defaultScore.toFixed(4)} at threshold 0.5, min area 10; ` +
          `best ${choice.score.toFixed(4)} at threshold ${choice.threshold}, min area ${choice.minArea}${choice.minArea > SUBMISSION_WIDTH * SUBMISSION_HEIGHT ? ' (no mask is large enough: every mask is submitted empty)' : ''}; ` +
          `all-empty prediction ${choice.emptyScore.toFixed(4)}`,
      );
      const postprocess = { threshold: choice.threshold, minArea: choice.minArea, score: choice.score };
      writeAtomic(bestPath, await encodeCheckpoint(model, { ...(bestMeta ?? best.meta), postprocess }));
      if (o['skip-predict'] !== true && existsSync(join(dataDir, 'imgs_test.npy'))) {
        // All the way to a submission, with the best weights and the validated post-processing.
        const test = loadTestSet(dataDir);
        const probs = await predictTestSet(model, { mean: data.mean, std: data.std }, test, runDir, preset.batchSize, antiAlias);
        await writeSubmission(probs, test.count, model.config.inputSize, test.ids, choice.threshold, choice.minArea, join(runDir, 'submission.csv'));
      }
    } else {
      console.log(`competition metric skipped: the caches hold ${data.fullWidth}×${data.fullHeight} frames, not 580×420`);
    }
  }
  model.dispose();
  adam.dispose();
  const best = log.reduce((a, b) => (b.val_loss < a.val_loss ? b : a), log[0]!);
  if (best) {
    console.log(`best epoch ${best.epoch}: val_dice ${best.val_dice.toFixed(4)}; an all-empty prediction would score ${emptyPredictionDice(data.train, valRows, preset.batchSize).toFixed(4)}`);
  }
  console.log(`run folder: ${runDir}`);
}
