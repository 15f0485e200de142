/**
 * Subject-wise k-fold splits. Frames of one subject are near-copies of each
 * other, so a validation frame whose subject also trains is partly seen: the
 * tutorial's split (the last rows) leaks that way. Here every subject's frames
 * go to one fold. Subjects are shuffled by a generator of their own seed (not
 * the training seed, so that models trained with different seeds share folds)
 * and dealt out in turn, so that fold sizes differ by at most one subject.
 */
import { DataError } from './errors.js';
import { Rng, shuffle } from '../model/rng.js';

/** fold (0-based) of each subject in `subjects`, for k folds. */
export function assignFolds(subjects: Iterable<number>, k: number, seed: number): Map<number, number> {
  const distinct = [...new Set(subjects)].sort((a, b) => a - b);
  if (!Number.isInteger(k) || k < 2) throw new DataError(`folds: the number of folds must be a whole number ≥ 2, got ${k}`);
  if (k > distinct.length) throw new DataError(`folds: ${k} folds need at least ${k} subjects; the data has ${distinct.length}`);
  const order = shuffle(Int32Array.from(distinct), new Rng(seed >>> 0));
  return new Map(Array.from(order, (subject, i) => [subject, i % k]));
}

export interface FoldSplit {
  trainRows: Int32Array;
  valRows: Int32Array;
  /** The subjects held out. */
  valSubjects: number[];
}

/**
 * The rows (of `count`, whose subjects are index[2·row], as imgs_train_index.npy
 * holds them) that train and that validate in fold `fold` (1-based) of k.
 */
export function foldSplit(index: Int32Array, count: number, k: number, fold: number, seed: number): FoldSplit {
  if (index.length < 2 * count) throw new DataError(`folds: the index has ${index.length / 2} rows for ${count} frames`);
  if (!Number.isInteger(fold) || fold < 1 || fold > k) throw new DataError(`folds: the fold must be a whole number in 1 … ${k}, got ${fold}`);
  const subjects = Array.from({ length: count }, (_, row) => index[2 * row]!);
  const folds = assignFolds(subjects, k, seed);
  const train: number[] = [];
  const val: number[] = [];
  for (let row = 0; row < count; row++) (folds.get(subjects[row]!) === fold - 1 ? val : train).push(row);
  const valSubjects = [...folds].filter(([, f]) => f === fold - 1).map(([s]) => s).sort((a, b) => a - b);
  return { trainRows: Int32Array.from(train), valRows: Int32Array.from(val), valSubjects };
}

export interface NestedFoldSplit {
  trainRows: Int32Array;
  /** The inner fold's rows: they choose the epoch (and the post-processing) of the run. */
  valRows: Int32Array;
  /** Fold `fold`'s rows: never trained on nor chosen by, only scored. */
  heldOutRows: Int32Array;
}

/** The fold (1-based) that validates a nested run holding out `fold` of k: the next one, the last wrapping to the first. */
export function innerFoldOf(fold: number, k: number): number {
  return (fold % k) + 1;
}

/**
 * Nested validation for fold `fold` of k: the held-out fold decides nothing.
 * The next fold validates (the best epoch is chosen on it) and the other
 * k − 2 folds train, so a metric on the held-out fold is out of fold in every
 * choice the run makes. Needs k ≥ 3.
 */
export function nestedFoldSplit(index: Int32Array, count: number, k: number, fold: number, seed: number): NestedFoldSplit {
  if (!Number.isInteger(k) || k < 3) throw new DataError(`folds: nested validation needs at least 3 folds (one held out, one to validate, the rest to train), got ${k}`);
  const heldOut = foldSplit(index, count, k, fold, seed);
  const inner = foldSplit(index, count, k, innerFoldOf(fold, k), seed);
  const outside = new Set([...heldOut.valRows, ...inner.valRows]);
  const trainRows = Int32Array.from({ length: count }, (_, row) => row).filter((row) => !outside.has(row));
  return { trainRows, valRows: inner.valRows, heldOutRows: heldOut.valRows };
}
