/**
 * `wgsl-unet recipe`: the competition toolkit in one command. It trains the
 * k folds of a subject-wise split, scores the out-of-fold maps with the
 * competition's metric (threshold and minimum area tuned on them all), writes
 * a report (JSON and a chart of the metric against both), and predicts the
 * test frames with the folds' ensemble for submission.csv. The toolkit:
 * contradictory near-duplicates left out of training, augmentation on the
 * GPU, with --seeds M an ensemble of M models a fold (out of fold, each
 * frame's map is the average of its fold's M models), test-time
 * augmentation; with --init-prior, the last layer's bias started at the
 * masks' prior; with --loss, another loss than the tutorial's Dice; with
 * --activation, --batch-norm and --dropout, the best teams' model variant. With
 * --compare it first trains the tutorial's recipe and each step of the
 * toolkit on the same folds, so the report shows what each step adds. With
 * --inner-validation every run chooses its epoch on the fold after its
 * held-out one, so the held-out fold decides nothing.
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DataError } from '../data/errors.js';
import { foldSplit } from '../data/folds.js';
import { type PostprocessChoice, choosePostprocess } from '../data/postprocess.js';
import { type Gate, fitGate, gateFeatures, gateScores } from '../data/gate.js';
import { gatherRows, resizeStack } from '../data/prepare.js';
import { SUBMISSION_HEIGHT, SUBMISSION_WIDTH } from '../data/submission.js';
import type { Gpu } from '../gpu/gpu.js';
import { decodeCheckpoint } from '../model/checkpoint.js';
import { type EnsembleMember, type TestTransform, predictEnsemble } from '../model/ensemble.js';
import { type UNet, type UNetVariant, describeVariant } from '../model/unet.js';
import { tuneForSoftwareAdapter } from '../software/platform.js';
import { GPU_OPTIONS, type OptionSpec, type Parsed, parseArgs, usage, UsageError } from './args.js';
import { type TrainingFrames, loadTrainingFrames } from './caches.js';
import { readBytes, writeAtomic } from './files.js';
import { PRECISION_OPTION, choosePrecision, openGpu } from './gpu-options.js';
import { checkpointMember, loadTestSet, predictTestSetWith, ttaViews } from './predict.js';
import { writeSubmission } from './submit.js';
import { askedVariant, checkModelVariant, train } from './train.js';
import { TRAINING_LOSSES } from '../model/trainer.js';

const SPEC: Record<string, OptionSpec> = {
  ...GPU_OPTIONS,
  ...PRECISION_OPTION,
  data: { type: 'string', help: 'folder with the caches (the embedded synthetic data when there are none)', default: 'data' },
  out: { type: 'string', help: 'folder that receives the recipe folder', default: 'runs' },
  folds: { type: 'number', help: 'folds of the subject-wise split', default: 5 },
  'fold-seed': { type: 'number', help: 'seed of the assignment of subjects to folds', default: 1 },
  seed: { type: 'number', help: 'seed of the weights, the shuffling and the augmentation', default: 1 },
  seeds: { type: 'number', help: 'models a fold in the toolkit, seeded --seed, --seed + 1, …, their maps averaged (out of fold and on the test frames)', default: 1 },
  augment: { type: 'string', help: 'augmentation of the training batches: "default", key=value pairs (see train --help), or "none"', default: 'default' },
  'keep-contradictions': { type: 'boolean', help: 'train on the contradictory near-duplicates too' },
  loss: { type: 'string', help: 'the toolkit\'s loss, as for train --loss: dice (the tutorial\'s), bce-dice (the tutorial\'s Dice plus the binary cross-entropy) or image-dice; with --compare, another loss is a step of its own', default: 'dice' },
  'init-prior': { type: 'boolean', help: 'start the last layer\'s bias at the log-odds of the training masks\' nerve pixels instead of at 0 (train --init-prior), in every step after the tutorial\'s' },
  weights: { type: 'string', help: 'which weights of each run are scored and submitted: best (lowest validation loss, as the tutorial keeps; chosen on the held-out fold itself unless --inner-validation) or last (the last epoch)', default: 'best' },
  'inner-validation': { type: 'boolean', help: 'nested validation (train --inner-validation, needs --folds ≥ 3): each run validates on the fold after its held-out one and trains on the rest, so its best epoch is not chosen on the frames it is scored on' },
  tta: { type: 'string', help: 'test-time augmentation, as a last step: shift (the frame moved a sixteenth of its side each way), mirror (left to right: only for models trained with mirrors, as the nerve sits off-centre), shift+mirror or none', default: 'none' },
  resume: { type: 'string', help: 'a recipe folder to go on with: its finished runs are reused, interrupted ones resumed, missing ones trained, and everything scored again; it keeps the options it was started with (recipe.json), and only --seeds, --compare, --tta, --weights and the adapter options may be given anew' },
  tune: { type: 'boolean', help: 'mixed precision: the first run trained measures which configuration of the mixed-precision convolution suits each layer on this GPU (train --tune), and every later one applies its measurements (train --tuning); a recipe resumed measures again in the first run it trains' },
  compare: { type: 'boolean', help: 'also train the tutorial\'s recipe and each step of the toolkit on the same folds, report what each adds, and submit from the step that scored best out of fold' },
  preset: { type: 'string', help: 'as for train: full or cpu (default: cpu on software adapters, full otherwise)' },
  epochs: { type: 'number', help: 'as for train' },
  lr: { type: 'number', help: 'as for train' },
  schedule: { type: 'string', help: 'as for train: constant or cosine' },
  warmup: { type: 'number', help: 'as for train' },
  epsilon: { type: 'number', help: 'as for train' },
  'batch-size': { type: 'number', help: 'as for train' },
  'base-width': { type: 'number', help: 'as for train' },
  'input-size': { type: 'number', help: 'as for train' },
  activation: { type: 'string', help: 'as for train: relu or elu, for the toolkit\'s models (with --compare, the variant is a step of its own)' },
  dropout: { type: 'number', help: 'as for train, for the toolkit\'s models (with --compare, the variant is a step of its own)' },
  'batch-norm': { type: 'boolean', help: 'as for train, for the toolkit\'s models (with --compare, the variant is a step of its own)' },
};

const SUMMARY = `Trains the k folds of a subject-wise split with the competition toolkit,
reports the out-of-fold competition metric (report.json, report.svg) and
writes the folds' ensemble's submission.csv.`;

/** One way of training, how many models a fold (seeds), and the views of each frame whose maps are averaged. */
interface Config {
  name: string;
  what: string;
  /** train's arguments for this way of training, the model variant's flags among them. */
  trainArgs: string[];
  /** The model variant those arguments ask for. */
  variant: UNetVariant;
  seeds: number;
  views: TestTransform[];
}

export interface ConfigResult {
  name: string;
  what: string;
  /** The run folders, fold by fold, `seeds` a fold. */
  runs: string[];
  seeds?: number;
  /** The metric out of fold; its `gate` field: with the presence gate (fitted out of fold too). */
  oof: PostprocessChoice;
  /** The gate fitted on every fold's out-of-fold maps, for the test frames. */
  gate: Gate;
}

const PASSED = ['preset', 'epochs', 'lr', 'epsilon', 'schedule', 'warmup', 'batch-size', 'base-width', 'input-size', 'backend', 'adapter', 'power-preference', 'precision'];

/** The given options of `keys` as train arguments. */
function passThrough(o: Parsed, keys: readonly string[] = PASSED): string[] {
  return keys.flatMap((k) => (o[k] === undefined ? [] : [`--${k}`, String(o[k])]));
}

/** The configs to train: the toolkit alone, or the tutorial and then one step of the toolkit at a time. */
function configs(o: Parsed): Config[] {
  const augment = o.augment as string;
  const seeds = o.seeds as number;
  const steps: Config[] = [];
  const drop = o['keep-contradictions'] !== true;
  const tta = o.tta as string;
  const views = ttaViews(tta);
  const plain: TestTransform[] = ['identity'];
  const prior = o['init-prior'] === true ? ['--init-prior'] : [];
  const loss = o.loss === undefined || o.loss === 'dice' ? [] : ['--loss', o.loss as string];
  const augmentArgs = augment !== 'none' ? ['--augment', augment] : [];
  const lossArgs = [...prior, ...(drop ? ['--drop-contradictions'] : []), ...augmentArgs, ...loss];
  const variant = askedVariant(o);
  const variantArgs = [
    ...(variant.activation ? ['--activation', variant.activation] : []),
    ...(variant.batchNorm ? ['--batch-norm'] : []),
    ...(variant.dropout ? ['--dropout', String(variant.dropout)] : []),
  ];
  const toolkitArgs = [...lossArgs, ...variantArgs];
  const tutorial: UNetVariant = {};
  if (o.compare === true) {
    steps.push({ name: 'tutorial', what: 'the tutorial\'s training', trainArgs: [], variant: tutorial, seeds: 1, views: plain });
    if (prior.length) steps.push({ name: 'prior', what: '+ output bias started at the masks\' prior', trainArgs: prior, variant: tutorial, seeds: 1, views: plain });
    if (drop) steps.push({ name: 'clean', what: '+ contradictory near-duplicates left out', trainArgs: [...prior, '--drop-contradictions'], variant: tutorial, seeds: 1, views: plain });
    if (augment !== 'none') steps.push({ name: 'augment', what: '+ augmentation on the GPU', trainArgs: [...prior, ...(drop ? ['--drop-contradictions'] : []), ...augmentArgs], variant: tutorial, seeds: 1, views: plain });
    if (loss.length) steps.push({ name: 'loss', what: o.loss === 'image-dice' ? '+ the Dice loss image by image' : '+ binary cross-entropy added to the loss', trainArgs: lossArgs, variant: tutorial, seeds: 1, views: plain });
    if (variantArgs.length) steps.push({ name: 'variant', what: `+ ${describeVariant(variant, { dropout: true }).join(', ')}`, trainArgs: toolkitArgs, variant, seeds: 1, views: plain });
    if (seeds > 1) steps.push({ name: 'ensemble', what: `+ ${seeds} models a fold (seeds ${o.seed} to ${(o.seed as number) + seeds - 1}), averaged`, trainArgs: toolkitArgs, variant, seeds, views: plain });
    // Without test-time augmentation the last step is the toolkit already.
    if (views.length === 1) return steps;
  }
  steps.push({ name: 'toolkit', what: views.length > 1 ? `+ test-time augmentation (${tta}: ${views.length} views)` : 'the toolkit', trainArgs: toolkitArgs, variant, seeds, views });
  return steps;
}

/** The only run folder train wrote under `dir`. */
function runIn(dir: string): string {
  const runs = existsSync(dir) ? readdirSync(dir).filter((d) => existsSync(join(dir, d, 'best.safetensors'))) : [];
  if (runs.length !== 1) throw new DataError(`${dir}: expected one trained run, found ${runs.length}; the training above says why`);
  return join(dir, runs[0]!);
}

/**
 * Out-of-fold maps of every fold's models (their `weights` checkpoint) on its held-out subjects,
 * scored together, without and with the presence gate (each fold's gate fitted
 * on the other folds' maps).
 */
async function scoreFolds(gpu: Gpu, frames: TrainingFrames, runs: string[], seeds: number, k: number, foldSeed: number, transforms: TestTransform[], weights: string): Promise<{ oof: PostprocessChoice; gate: Gate }> {
  const pixels = frames.width * frames.height;
  const probs: Float32Array[] = [];
  const held: Int32Array[] = [];
  let size = 0;
  for (let fold = 1; fold <= k; fold++) {
    const { valRows } = foldSplit(frames.index, frames.count, k, fold, foldSeed);
    const models: UNet[] = [];
    try {
      // The fold's models (one a seed) on its held-out subjects, their maps averaged.
      const fitted = loadMembers(gpu, runs.slice((fold - 1) * seeds, fold * seeds), weights, models);
      size = fitted.size;
      const small = resizeStack(gatherRows(frames.images, pixels, valRows), valRows.length, frames.width, frames.height, size, { antiAlias: fitted.antiAlias });
      probs.push(await predictEnsemble(fitted.members, small, valRows.length, size, transforms));
    } finally {
      for (const m of models) m.dispose();
    }
    held.push(valRows);
  }
  // Each fold's gate is fitted on the other folds' maps, so that its scores stay out of fold.
  const features = probs.map((p, i) => gateFeatures(p, held[i]!.length, size));
  const labels = held.map((rows) => Array.from(rows, (r) => (frames.masks.subarray(r * pixels, (r + 1) * pixels).some((v) => v !== 0) ? 1 : 0)));
  const joined = (parts: Float64Array[]) => Float64Array.from(parts.flatMap((f) => Array.from(f)));
  const scores = Float32Array.from(
    probs.flatMap((_, i) => Array.from(gateScores(fitGate(joined(features.filter((_, j) => j !== i)), labels.filter((_, j) => j !== i).flat()), features[i]!))),
  );
  const allRows = Int32Array.from(held.flatMap((rows) => Array.from(rows)));
  const allProbs = new Float32Array(allRows.length * size * size);
  probs.reduce((at, p) => (allProbs.set(p, at), at + p.length), 0);
  const allTruths = gatherRows(frames.masks, pixels, allRows);
  const count = allRows.length;
  return { oof: choosePostprocess(allProbs, size, allTruths, count, undefined, undefined, scores), gate: fitGate(joined(features), labels.flat()) };
}

/**
 * The `weights` checkpoints of `runs` as ensemble members on `gpu`, with the
 * input size and anti-aliasing they were trained with (the same for every
 * run of a recipe); their models go to `models`, for the caller to dispose.
 */
function loadMembers(gpu: Gpu, runs: readonly string[], weights: string, models: UNet[]): { members: EnsembleMember[]; size: number; antiAlias: boolean } {
  const loaded = runs.map((run) => {
    const path = join(run, `${weights}.safetensors`);
    const ckpt = decodeCheckpoint(readBytes(path, 'checkpoint'), path);
    return { ckpt, member: checkpointMember(gpu, path, ckpt, 16, models) };
  });
  const first = loaded[0]!.ckpt.meta;
  return { members: loaded.map((l) => l.member), size: first.config.inputSize, antiAlias: first.antiAlias ?? false };
}

/** Options a resumed recipe may take anew: they add or skip runs, or change only the scoring. */
const ANEW = new Set(['seeds', 'compare', 'tta', 'weights', 'backend', 'adapter', 'power-preference']);

/**
 * The options and folder of a recipe: a new folder under --out (`fresh`: the
 * caller makes it once the options are checked, with recipe.json); or with
 * --resume the folder given, its stored options, and those of ANEW given now.
 */
function recipeFolder(argv: string[], given: Parsed): { o: Parsed; dir: string; fresh: boolean } {
  if (given.resume === undefined) {
    const dir = resolve(given.out as string, `recipe-${new Date().toISOString().replace(/[:.]/g, '-')}`);
    return { o: { ...given, data: resolve(given.data as string) }, dir, fresh: true };
  }
  const dir = resolve(given.resume as string);
  const path = join(dir, 'recipe.json');
  if (!existsSync(path)) throw new UsageError(`--resume ${given.resume}: ${path} is missing; give the folder of a recipe run (runs/recipe-<time>)`);
  let stored: Parsed;
  try {
    stored = (JSON.parse(new TextDecoder().decode(readBytes(path, 'recipe options'))) as { options: Parsed }).options;
    if (typeof stored !== 'object' || stored === null) throw new Error('no options');
  } catch (e) {
    throw new DataError(`${path} is not a recipe's options (${(e as Error).message}); it was written by recipe when the run began`);
  }
  const o: Parsed = { ...stored, resume: given.resume };
  for (const key of Object.keys(SPEC)) {
    if (key === 'resume' || !argv.includes(`--${key}`)) continue;
    if (ANEW.has(key)) o[key] = given[key];
    else if (given[key] !== stored[key]) {
      throw new UsageError(`--${key} ${given[key]} conflicts with ${dir}, which was started with ${stored[key] === undefined ? 'no such option' : `--${key} ${stored[key]}`}; leave it out to go on as it was (only --${[...ANEW].join(', --')} may be given anew)`);
    }
  }
  return { o, dir, fresh: false };
}

/**
 * The run folder trained under `out` and whether it finished, or null where
 * none began an epoch. A run trained otherwise than `trainArgs` say (by an
 * earlier version of the recipe) is refused rather than reused.
 */
function runState(out: string, { trainArgs, variant }: Config, inner: boolean): { run: string; finished: boolean } | null {
  const runs = existsSync(out) ? readdirSync(out).filter((d) => existsSync(join(out, d, 'last.safetensors'))) : [];
  if (runs.length === 0) return null;
  if (runs.length > 1) throw new DataError(`${out}: ${runs.length} runs where the recipe trains one; move all but one away to go on`);
  const path = join(out, runs[0]!, 'last.safetensors');
  const meta = decodeCheckpoint(readBytes(path, 'checkpoint'), path).meta;
  const t = meta.training;
  const was = { '--init-prior': t?.outputBias !== undefined, '--drop-contradictions': t?.dropContradictions === true, '--augment': t?.augment !== undefined };
  for (const [flag, trained] of Object.entries(was)) {
    if (trained !== trainArgs.includes(flag)) throw new DataError(`${path} was trained ${trained ? 'with' : 'without'} ${flag}, where this step of the recipe trains ${trained ? 'without' : 'with'} it; start a new recipe, or move that run away`);
  }
  if ((t?.folds?.inner !== undefined) !== inner) throw new DataError(`${path} was trained ${inner ? 'without' : 'with'} --inner-validation, where this recipe trains ${inner ? 'with' : 'without'} it; start a new recipe, or move that run away`);
  const at = trainArgs.indexOf('--loss');
  const loss = at >= 0 ? trainArgs[at + 1] : 'dice';
  if ((t?.loss ?? 'dice') !== loss) throw new DataError(`${path} was trained with the ${t?.loss ?? 'dice'} loss, where this step of the recipe trains with the ${loss} loss; start a new recipe, or move that run away`);
  const asked = describeVariant(variant, { dropout: true });
  const has = describeVariant(meta.config, { dropout: true });
  if (asked.join() !== has.join()) throw new DataError(`${path} was trained as ${has.length ? has.join(', ') : 'the tutorial\'s model'}, where this step of the recipe trains ${asked.length ? asked.join(', ') : 'the tutorial\'s model'}; start a new recipe, or move that run away`);
  return { run: join(out, runs[0]!), finished: meta.epoch >= (t?.epochs ?? 0) };
}

export async function recipe(argv: string[]): Promise<void> {
  if (argv.includes('--help')) return void console.log(usage('recipe', SUMMARY, SPEC));
  const { options: given, positional } = parseArgs(argv, SPEC);
  if (positional.length > 0) throw new UsageError(`unexpected argument "${positional[0]}"; see wgsl-unet recipe --help`);
  const { o, dir, fresh } = recipeFolder(argv, given);
  const k = o.folds as number;
  if (!Number.isInteger(k) || k < 2) throw new UsageError(`--folds must be a whole number ≥ 2, got ${k}`);
  const seeds = o.seeds as number;
  if (!Number.isInteger(seeds) || seeds < 1) throw new UsageError(`--seeds must be a whole number ≥ 1, got ${seeds}`);
  const foldSeed = o['fold-seed'] as number;
  const dataArg = o.data as string;
  const dataDir = resolve(dataArg);
  const weights = o.weights as string;
  if (weights !== 'best' && weights !== 'last') throw new UsageError(`--weights must be best or last, got "${weights}"`);
  const inner = o['inner-validation'] === true;
  if (inner && k < 3) throw new UsageError(`--inner-validation needs --folds 3 or more (one fold held out, one to validate, the rest to train), got ${k}`);
  if (o.loss !== undefined && !(TRAINING_LOSSES as readonly unknown[]).includes(o.loss)) throw new UsageError(`--loss must be ${TRAINING_LOSSES.join(', ')}, got "${o.loss}"`);
  // The model variant, checked as train checks it, before the recipe's folder records it.
  checkModelVariant(o);
  const steps = configs(o);
  // --tune needs mixed precision and timestamp queries: refused here, before the folder is made, rather than by the first run.
  if (o.tune === true) {
    const gpu = await openGpu(o, () => {});
    try {
      const precision = choosePrecision(o, gpu, undefined, () => {});
      if (precision !== 'mixed') throw new UsageError(`--tune chooses among the mixed-precision convolutions' configurations; this recipe's runs are in ${precision} (--precision mixed, on an adapter with f16 subgroup matrices)`);
      if (!gpu.hasTimestamps) throw new UsageError(`--tune times the convolutions by timestamp queries, which adapter ${gpu.adapterInfo.description} does not offer`);
    } finally {
      await gpu.close();
    }
  }
  if (fresh) {
    mkdirSync(dir, { recursive: true });
    writeAtomic(join(dir, 'recipe.json'), JSON.stringify({ options: o }, null, 2) + '\n');
  }
  console.log(`recipe: ${k} folds by subject (fold seed ${foldSeed}), ${steps.map((s) => s.name).join(' → ')}, each run's ${weights} weights scored${inner ? ' (epochs chosen on the next fold: nested validation)' : ''}; folder ${dir}`);

  // Training: each config's k folds, `seeds` models a fold, through train itself (which builds the default
  // data when there is none). A model an earlier config trained with the same arguments and seed is reused:
  // the ensemble adds seeds to the augmented runs, and test-time augmentation differs only in prediction.
  const trained: { config: Config; runs: string[] }[] = [];
  const made = new Map<string, string>();
  // With --tune the first run this call trains measures the convolutions on this GPU (train --tune) and
  // the later ones, all of one shape, apply its tuning.json (train --tuning); resumed runs keep their own.
  let tuning: string | null = null;
  for (const config of steps) {
    const runs: string[] = [];
    for (let fold = 1; fold <= k; fold++) {
      for (let s = 0; s < config.seeds; s++) {
        const seed = (o.seed as number) + s;
        const key = `${config.trainArgs.join(' ')} | fold ${fold} | seed ${seed}`;
        const before = made.get(key);
        if (before) {
          runs.push(before);
          continue;
        }
        const what = `${config.name}: fold ${fold} of ${k}${config.seeds > 1 ? `, seed ${seed}` : ''}`;
        const out = join(dir, config.name, `fold-${fold}`, ...(s > 0 ? [`seed-${seed}`] : []));
        const state = runState(out, config, inner);
        if (state?.finished) {
          console.log(`== ${what}: trained before (${state.run})`);
        } else if (state) {
          console.log(`\n== ${what}: resuming ${state.run} ==`);
          // A resumed run keeps how it was trained; only the adapter is chosen anew.
          await train(['--resume', state.run, '--skip-predict', ...passThrough(o, ['backend', 'adapter', 'power-preference'])]);
        } else {
          console.log(`\n== ${what} ==`);
          const tuneArgs = o.tune !== true ? [] : tuning ? ['--tuning', tuning] : ['--tune'];
          await train(['--data', dataArg, '--out', out, '--folds', String(k), '--fold', String(fold), '--fold-seed', String(foldSeed), '--seed', String(seed), '--skip-predict', ...(inner ? ['--inner-validation'] : []), ...passThrough(o), ...config.trainArgs, ...tuneArgs]);
          if (!process.exitCode && tuneArgs[0] === '--tune') tuning = join(runIn(out), 'tuning.json');
        }
        if (process.exitCode === 130) {
          // Ctrl-C: train said what it kept; the recipe ends with its status.
          console.log(`recipe interrupted in ${config.name}, fold ${fold}, seed ${seed}; go on with: recipe --resume ${dir}`);
          return;
        }
        if (process.exitCode) throw new DataError(`${config.name}, fold ${fold}, seed ${seed}: training stopped (see above); go on with: recipe --resume ${dir}`);
        const run = runIn(out);
        made.set(key, run);
        runs.push(run);
      }
    }
    trained.push({ config, runs });
  }

  // Scoring and the submission, on one device.
  const frames = loadTrainingFrames(dataDir);
  if (frames.width !== SUBMISSION_WIDTH || frames.height !== SUBMISSION_HEIGHT) throw new DataError(`${dataDir}: the caches hold ${frames.width}×${frames.height} frames, not the competition's 580×420`);
  const gpu = await openGpu(o);
  const results: ConfigResult[] = [];
  let submission: string | null = null;
  let submitted = '';
  try {
    choosePrecision(o, gpu);
    tuneForSoftwareAdapter(gpu);
    for (const { config, runs } of trained) {
      const { oof, gate } = await scoreFolds(gpu, frames, runs, config.seeds, k, foldSeed, config.views, weights);
      results.push({ name: config.name, what: config.what, runs, ...(config.seeds > 1 ? { seeds: config.seeds } : {}), oof, gate });
      const g = oof.gate!;
      console.log(
        `${config.name}: out-of-fold metric ${oof.score.toFixed(4)} (threshold ${oof.threshold}, min area ${oof.minArea}); ${oof.defaultScore.toFixed(4)} at threshold 0.5, min area 10; ` +
          `with the presence gate ${g.score.toFixed(4)} (gate ${g.threshold}, threshold ${g.maskThreshold}, min area ${g.minArea}); all-empty ${oof.emptyScore.toFixed(4)}`,
      );
    }
    // The submission comes from the config that scored best out of fold (with its gate where that helped):
    // the toolkit alone, or with --compare whichever step won.
    const bestAt = (r: ConfigResult) => Math.max(r.oof.score, r.oof.gate && r.oof.gate.threshold > 0 ? r.oof.gate.score : -Infinity);
    const chosen = results.reduce((best, r, i) => (bestAt(r) > bestAt(results[best]!) ? i : best), results.length - 1);
    const last = results[chosen]!;
    const chosenViews = trained[chosen]!.config.views;
    submitted = last.name;
    if (results.length > 1) console.log(`submission: the ensemble of "${last.name}" (${last.runs.length} models), the best out of fold (${bestAt(last).toFixed(4)})`);
    if (existsSync(join(dataDir, 'imgs_test.npy'))) {
      // The folds' ensemble on the test frames, post-processed as tuned out of fold.
      const models: UNet[] = [];
      try {
        const { members, size, antiAlias } = loadMembers(gpu, last.runs, weights, models);
        const test = loadTestSet(dataDir);
        const probs = await predictTestSetWith(members, size, test, dir, antiAlias, chosenViews);
        // The gate where it helped out of fold: frames it scores under its threshold are cleared.
        const g = last.oof.gate!;
        const gated = g.threshold > 0 && g.score > last.oof.score;
        if (gated) {
          const scores = gateScores(last.gate, gateFeatures(probs, test.count, size));
          let cleared = 0;
          for (let n = 0; n < test.count; n++) if (scores[n]! < g.threshold) {
            probs.fill(0, n * size * size, (n + 1) * size * size);
            cleared++;
          }
          console.log(`presence gate: ${cleared} of ${test.count} test frames scored under ${g.threshold}, submitted empty`);
        }
        submission = join(dir, 'submission.csv');
        await writeSubmission(probs, test.count, size, test.ids, gated ? g.maskThreshold : last.oof.threshold, gated ? g.minArea : last.oof.minArea, submission);
      } finally {
        for (const m of models) m.dispose();
      }
    }
  } finally {
    await gpu.close();
  }
  const report = { data: dataDir, folds: k, foldSeed, ...(inner ? { innerValidation: true } : {}), seed: o.seed, seeds, weights, configs: results, submitted, submission };
  writeAtomic(join(dir, 'report.json'), JSON.stringify(report, null, 2) + '\n');
  writeAtomic(join(dir, 'report.svg'), reportSvg(results));
  console.log(`\n${reportTable(results)}\nreport: ${join(dir, 'report.json')}, ${join(dir, 'report.svg')}${submission ? `; submission: ${submission}` : ''}`);
}

/**
 * The steps as a Markdown table: the out-of-fold metric, what each step adds
 * to the one before, and each step's metric with its presence gate (fitted
 * out of fold as well; a gate threshold of 0 clears nothing).
 */
export function reportTable(results: ConfigResult[]): string {
  const rows = ['| step | out-of-fold metric | threshold, min area | gain | with the presence gate |', '| --- | ---: | --- | ---: | ---: |'];
  const first = results[0]!;
  rows.push(`| all-empty prediction | ${first.oof.emptyScore.toFixed(4)} | | | |`);
  rows.push(`| ${first.what}, threshold 0.5, min area 10 | ${first.oof.defaultScore.toFixed(4)} | 0.5, 10 | | |`);
  let previous = first.oof.defaultScore;
  for (const r of results) {
    const label = r === first && results.length > 1 ? `${r.what}, threshold and min area tuned` : r.what;
    const g = r.oof.gate;
    const gated = g ? `${g.score.toFixed(4)} (gate ${g.threshold})` : '';
    rows.push(`| ${label} | ${r.oof.score.toFixed(4)} | ${r.oof.threshold}, ${r.oof.minArea} | ${(r.oof.score - previous >= 0 ? '+' : '') + (r.oof.score - previous).toFixed(4)} | ${gated} |`);
    previous = r.oof.score;
  }
  return rows.join('\n');
}

const CHART = { w: 640, h: 260, pad: 46 };
const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2'];

/** One panel per config: the out-of-fold metric against the minimum area, a line per threshold. */
export function reportSvg(results: ConfigResult[]): string {
  const { w, h, pad } = CHART;
  const all = results.flatMap((r) => r.oof.table.flat().concat(r.oof.emptyScore));
  const lo = Math.min(...all);
  const hi = Math.max(...all, lo + 1e-3);
  const parts: string[] = [];
  results.forEach((r, k) => {
    const y0 = k * h;
    const pw = w - pad * 2 - 80;
    const ph = h - pad * 2;
    const areas = r.oof.minAreas;
    const px = (i: number) => pad + (i / Math.max(1, areas.length - 1)) * pw;
    const py = (v: number) => y0 + pad + (1 - (v - lo) / (hi - lo)) * ph;
    parts.push(`<text x="${pad}" y="${y0 + pad - 16}" font-size="13" font-family="sans-serif">${escape(r.what)}: out-of-fold metric against the minimum area (best ${r.oof.score.toFixed(4)})</text>`);
    parts.push(`<rect x="${pad}" y="${y0 + pad}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
    parts.push(`<text x="${pad - 4}" y="${y0 + pad + 4}" font-size="10" text-anchor="end" font-family="sans-serif">${hi.toFixed(3)}</text>`);
    parts.push(`<text x="${pad - 4}" y="${y0 + pad + ph}" font-size="10" text-anchor="end" font-family="sans-serif">${lo.toFixed(3)}</text>`);
    areas.forEach((a, i) => parts.push(`<text x="${px(i).toFixed(1)}" y="${y0 + pad + ph + 14}" font-size="9" text-anchor="middle" font-family="sans-serif">${a > SUBMISSION_WIDTH * SUBMISSION_HEIGHT ? 'all' : a}</text>`));
    const empty = py(r.oof.emptyScore).toFixed(1);
    parts.push(`<line x1="${pad}" x2="${pad + pw}" y1="${empty}" y2="${empty}" stroke="#777" stroke-dasharray="4 3"/><text x="${pad + pw + 6}" y="${empty}" font-size="10" font-family="sans-serif">all empty</text>`);
    r.oof.thresholds.forEach((t, ti) => {
      const color = COLORS[ti % COLORS.length]!;
      const pts = r.oof.table[ti]!.map((v, i) => `${px(i).toFixed(1)},${py(v).toFixed(1)}`).join(' ');
      parts.push(`<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${pts}"/>`);
      parts.push(`<text x="${pad + pw + 6}" y="${y0 + pad + 12 + 13 * ti}" font-size="10" fill="${color}" font-family="sans-serif">threshold ${t}</text>`);
    });
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h * results.length}" viewBox="0 0 ${w} ${h * results.length}">\n<rect width="100%" height="100%" fill="white"/>\n${parts.join('\n')}\n</svg>\n`;
}

function escape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/'/g, '&#39;');
}
