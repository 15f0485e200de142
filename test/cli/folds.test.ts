/**
 * Subject-wise k-fold training, the out-of-fold metric over the folds, and
 * leaving contradictory near-duplicates out of training: through the built CLI.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { foldSplit } from '../../src/data/folds.js';
import { decodeNpy, encodeNpy } from '../../src/data/npy.js';
import { masksToUnit, priorLogOdds, resizeStack } from '../../src/data/prepare.js';
import { decodeCheckpoint, encodeCheckpointTensors } from '../../src/model/checkpoint.js';
import type { NamedTensor } from '../../src/model/safetensors.js';
import { rng } from '../helpers/random.js';

const W = 580;
const H = 420;
const cli = join(__dirname, '../../dist/cli.js');
let root: string;
let dataDir: string;
const SUBJECTS = 4;
const FRAMES = 6;

/** SUBJECTS × FRAMES frames with a bright blob in every other one; frame 6 of each subject copies frame 1 (which has the blob) with an empty mask. */
function writeData(dir: string): void {
  const r = rng(8);
  const n = SUBJECTS * FRAMES;
  const imgs = new Uint8Array(n * W * H);
  const masks = new Uint8Array(n * W * H);
  const index = new Int32Array(2 * n);
  for (let s = 0; s < SUBJECTS; s++) {
    for (let f = 0; f < FRAMES; f++) {
      const row = s * FRAMES + f;
      index[2 * row] = s + 1;
      index[2 * row + 1] = f + 1;
      if (f === FRAMES - 1) {
        imgs.copyWithin(row * W * H, (row - f) * W * H, (row - f + 1) * W * H);
        continue; // mask left empty: the contradiction
      }
      const cy = 100 + r() * 220;
      const cx = 120 + r() * 340;
      const nerve = f % 2 === 0;
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const inside = nerve && ((y - cy) / 50) ** 2 + ((x - cx) / 70) ** 2 < 1;
          imgs[row * W * H + y * W + x] = Math.min(255, Math.floor(60 + 40 * r() + (inside ? 90 : 0)));
          masks[row * W * H + y * W + x] = inside ? 255 : 0;
        }
      }
    }
  }
  writeFileSync(join(dir, 'imgs_train.npy'), encodeNpy(imgs, [n, H, W]));
  writeFileSync(join(dir, 'imgs_mask_train.npy'), encodeNpy(masks, [n, H, W]));
  writeFileSync(join(dir, 'imgs_train_index.npy'), encodeNpy(index, [n, 2]));
}

function cliRun(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 240_000 });
  return { code: r.status, out: `${r.stdout}\n${r.stderr}` };
}

function train(...args: string[]) {
  return cliRun('train', '--data', dataDir, '--base-width', '2', '--input-size', '16', '--batch-size', '4', '--epochs', '1', '--skip-predict', ...args);
}

const runFolder = (out: string) => /run folder: (.+)$/m.exec(out)?.[1]?.trim() ?? '';

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'wgsl-unet-folds-'));
  dataDir = join(root, 'data');
  mkdirSync(dataDir);
  writeData(dataDir);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('train --augment', () => {
  it('augments the training batches with the spec given, and keeps it in the checkpoint', () => {
    const r = train('--augment', 'rotate=5,elastic=0', '--out', join(root, 'aug'), '--seed', '2', '--schedule', 'cosine');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/augmentation: flip 0, rotate 5, zoom 0.1, shift 0.08, elastic 0, grid 4, brightness 0.1, contrast 0.1/);
    const dir = runFolder(r.out);
    const meta = decodeCheckpoint(new Uint8Array(readFileSync(join(dir, 'last.safetensors'))), 'last').meta;
    expect(meta.training!.augment).toMatchObject({ rotate: 5, elastic: 0, flip: 0 });
    expect(meta.training!.schedule).toBe('cosine');
    const plain = train('--out', join(root, 'plain'), '--seed', '2');
    const loss = (out: string) => JSON.parse(readFileSync(join(runFolder(out), 'log.jsonl'), 'utf8').split('\n')[0]!).loss as number;
    expect(loss(r.out)).not.toBe(loss(plain.out));
  });
});

describe('train --init-prior', () => {
  it('starts the last layer\'s bias at the log-odds of the training masks\' nerve pixels, records it, and keeps a resumed run as it began', () => {
    const r = train('--init-prior', '--out', join(root, 'prior'));
    expect(r.code, r.out).toBe(0);
    // The training rows (the first 19 of 24, the last 20 % held out) at the model's 16 × 16.
    const masks = decodeNpy(new Uint8Array(readFileSync(join(dataDir, 'imgs_mask_train.npy'))), 'masks').data as Uint8Array;
    const unit = masksToUnit(resizeStack(masks, SUBJECTS * FRAMES, W, H, 16));
    const expected = priorLogOdds(unit, 256, Array.from({ length: 19 }, (_, i) => i));
    expect(expected).toBeLessThan(-1);
    expect(r.out).toContain(`output bias: starts at ${expected.toFixed(3)}, the log-odds of the training masks' nerve pixels`);
    const dir = runFolder(r.out);
    const meta = decodeCheckpoint(new Uint8Array(readFileSync(join(dir, 'last.safetensors'))), 'last').meta;
    expect(meta.training!.outputBias).toBeCloseTo(expected, 12);
    const resumed = cliRun('train', '--resume', dir, '--epochs', '2', '--skip-predict');
    expect(resumed.code, resumed.out).toBe(0);
    expect(decodeCheckpoint(new Uint8Array(readFileSync(join(dir, 'last.safetensors'))), 'last').meta.training!.outputBias).toBe(meta.training!.outputBias);
    const plain = train('--out', join(root, 'no-prior'));
    expect(plain.code, plain.out).toBe(0);
    expect(plain.out).not.toContain('output bias');
    const refused = cliRun('train', '--resume', runFolder(plain.out), '--epochs', '2', '--init-prior', '--skip-predict');
    expect(refused.code).toBe(2);
    expect(refused.out).toMatch(/--init-prior conflicts with .*last\.safetensors, which started its last layer's bias at 0/);
  });
});

describe('train --loss', () => {
  it('takes the Dice image by image with --loss image-dice, records it, keeps a resumed run as it began, and refuses an unknown value', () => {
    const r = train('--loss', 'image-dice', '--out', join(root, 'image-loss'), '--seed', '3');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('loss: minus the mean Dice of the images of each batch');
    const dir = runFolder(r.out);
    expect(decodeCheckpoint(new Uint8Array(readFileSync(join(dir, 'last.safetensors'))), 'last').meta.training!.loss).toBe('image-dice');
    // The same training with the batch's Dice: another loss from the first step on.
    const plain = train('--out', join(root, 'batch-loss'), '--seed', '3');
    expect(plain.code, plain.out).toBe(0);
    expect(plain.out).not.toContain('loss: minus the mean Dice');
    expect(decodeCheckpoint(new Uint8Array(readFileSync(join(runFolder(plain.out), 'last.safetensors'))), 'last').meta.training!.loss).toBeUndefined();
    const firstLoss = (out: string) => JSON.parse(readFileSync(join(runFolder(out), 'log.jsonl'), 'utf8').split('\n')[0]!).loss as number;
    expect(firstLoss(r.out)).not.toBe(firstLoss(plain.out));
    const resumed = cliRun('train', '--resume', dir, '--epochs', '2', '--skip-predict');
    expect(resumed.code, resumed.out).toBe(0);
    expect(resumed.out).toContain('loss: minus the mean Dice of the images of each batch');
    const refused = cliRun('train', '--resume', dir, '--epochs', '3', '--loss', 'dice', '--skip-predict');
    expect(refused.code).toBe(2);
    expect(refused.out).toMatch(/--loss dice conflicts with .*last\.safetensors, which was trained with the image-dice loss/);
    const unknown = train('--loss', 'pixel', '--out', join(root, 'bad-loss'));
    expect(unknown.code).toBe(2);
    expect(unknown.out).toContain('--loss must be dice, image-dice, bce-dice, got "pixel"');
  });
});

describe('train --folds, oof, --drop-contradictions', () => {
  const runs: string[] = [];

  it('trains each fold on the other subjects and writes its out-of-fold maps', () => {
    for (const fold of [1, 2]) {
      const r = train('--folds', '2', '--fold', String(fold), '--out', join(root, `fold${fold}`), '--drop-contradictions');
      expect(r.code, r.out).toBe(0);
      expect(r.out).toMatch(/10 train, 12 validation \(fold \d of 2 by subject\)/);
      expect(r.out).toMatch(/contradictory near-duplicates: 4 pairs found; 2 unmasked frames left out of training/);
      const dir = runFolder(r.out);
      runs.push(dir);
      const meta = decodeCheckpoint(new Uint8Array(readFileSync(join(dir, 'last.safetensors'))), 'last').meta;
      expect(meta.training!.folds).toEqual({ k: 2, fold, seed: 1 });
      expect(meta.training!.dropContradictions).toBe(true);
      expect(meta.training!.validationSplit).toBeUndefined();
      expect(meta.training!.trainCount).toBe(10);
      const oofIndex = decodeNpy(new Uint8Array(readFileSync(join(dir, 'oof_index.npy'))), 'oof_index');
      expect(oofIndex.shape).toEqual([12, 2]);
      const probs = decodeNpy(new Uint8Array(readFileSync(join(dir, 'oof.npy'))), 'oof');
      expect(probs.shape).toEqual([12, 16, 16]);
      const report = JSON.parse(readFileSync(join(dir, 'contradictions.json'), 'utf8'));
      expect(report.contradictions.map((c: { subject: number; frames: number[] }) => [c.subject, c.frames])).toEqual([1, 2, 3, 4].map((s) => [s, [1, 6]]));
      expect(report.droppedFromTraining).toBe(2);
    }
    // Two subjects each side, and no subject on both.
    const held = runs.map((dir) => {
      const index = decodeNpy(new Uint8Array(readFileSync(join(dir, 'oof_index.npy'))), 'oof_index').data as Int32Array;
      return new Set(Array.from({ length: index.length / 2 }, (_, k) => index[2 * k]));
    });
    expect(held.map((s) => s.size)).toEqual([2, 2]);
    for (const s of held[0]!) expect(held[1]!.has(s)).toBe(false);
  });

  it('scores the folds together with the competition metric, and refuses overlapping folds', () => {
    const json = join(root, 'oof.json');
    const r = cliRun('oof', ...runs, '--json', json);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/out-of-fold competition metric over 2 folds, 24 frames of .*: [\d.]+ at threshold 0.5, min area 10; best [\d.]+ at threshold [\d.]+, min area \d+; all-empty prediction 0.5000/);
    const result = JSON.parse(readFileSync(json, 'utf8'));
    expect(result.frames).toBe(24);
    expect(result.choice.score).toBeGreaterThanOrEqual(result.choice.emptyScore);
    const twice = cliRun('oof', runs[0]!, runs[0]!);
    expect(twice.code).toBe(1);
    expect(twice.out).toMatch(/fold 1 is given twice/);
    const one = cliRun('oof', runs[1]!);
    expect(one.out).toMatch(/note: 1 of the 2 folds given/);
    // A fold of another split (three folds) does not score with these.
    const other = train('--folds', '3', '--fold', '1', '--out', join(root, 'three'));
    expect(other.code, other.out).toBe(0);
    const mixed = cliRun('oof', runs[0]!, runFolder(other.out));
    expect(mixed.out).toMatch(/is fold 1 of 3 .* of a split into 2 .*: score the folds of one split together/);
    const none = cliRun('oof', dataDir);
    expect(none.out).toMatch(/no oof\.npy and oof_index\.npy/);
  });

  it('rejects fold options that do not fit, and keeps a resumed run on its fold', () => {
    const bad: [string[], RegExp][] = [
      [['--fold', '1'], /--folds and --fold go together/],
      [['--folds', '2', '--fold', '3'], /--fold must be a whole number in 1 … 2, got 3/],
      [['--folds', '1', '--fold', '1'], /--folds must be a whole number ≥ 2/],
      [['--folds', '2', '--fold', '1', '--validation-split', '0.3'], /--validation-split and --folds are two ways/],
      [['--folds', '9', '--fold', '1'], /9 folds need at least 9 subjects; the data has 4/],
      [['--augment', 'spin=1'], /--augment: augment: "spin=1" is not key=value/],
      [['--schedule', 'step'], /--schedule must be constant or cosine, got "step"/],
    ];
    for (const [args, message] of bad) {
      const r = train(...args, '--out', join(root, 'bad'));
      expect(r.code, r.out).not.toBe(0);
      expect(r.out).toMatch(message);
    }
    const resumed = cliRun('train', '--resume', runs[0]!, '--epochs', '2', '--folds', '2', '--fold', '2', '--skip-predict');
    expect(resumed.code).toBe(2);
    expect(resumed.out).toMatch(/--folds 2 --fold 2 conflicts with .*last\.safetensors, which was trained with fold 1 of 2/);
    const ok = cliRun('train', '--resume', runs[0]!, '--epochs', '2', '--skip-predict');
    expect(ok.code, ok.out).toBe(0);
    expect(ok.out).toMatch(/validation \(fold 1 of 2 by subject\)/);
    expect(existsSync(join(root, 'bad')) ? readdirSync(join(root, 'bad')) : []).toEqual([]);
  });
});

describe('train --inner-validation', () => {
  it('chooses the epoch on the next fold, trains on the rest, and predicts the held-out fold for oof', () => {
    const r = train('--folds', '3', '--fold', '2', '--inner-validation', '--out', join(root, 'nested'));
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/12 train, 6 validation \(fold 3 of 3 by subject, choosing the epoch; fold 2's 6 held out, only scored\)/);
    expect(r.out).toMatch(/held-out predictions: 6\/6 images/);
    const dir = runFolder(r.out);
    const meta = decodeCheckpoint(new Uint8Array(readFileSync(join(dir, 'best.safetensors'))), 'best').meta;
    expect(meta.training!.folds).toEqual({ k: 3, fold: 2, seed: 1, inner: 3 });
    expect(meta.training!.trainCount).toBe(12);
    // oof.npy holds fold 2's frames: the subjects neither trained on nor validated with.
    const index = decodeNpy(new Uint8Array(readFileSync(join(dir, 'oof_index.npy'))), 'oof_index').data as Int32Array;
    const all = decodeNpy(new Uint8Array(readFileSync(join(dataDir, 'imgs_train_index.npy'))), 'index').data as Int32Array;
    const held = foldSplit(all, SUBJECTS * FRAMES, 3, 2, 1).valRows;
    expect(Array.from(index)).toEqual(Array.from(held).flatMap((row) => [all[2 * row], all[2 * row + 1]]));
    const validating = new Set(Array.from(foldSplit(all, SUBJECTS * FRAMES, 3, 3, 1).valRows, (row) => all[2 * row]));
    for (let k = 0; k < index.length; k += 2) expect(validating.has(index[k]!)).toBe(false);
    expect(decodeNpy(new Uint8Array(readFileSync(join(dir, 'oof.npy'))), 'oof').shape).toEqual([6, 16, 16]);

    // A resumed run keeps its nesting; asking for the plain fold is refused.
    const plain = cliRun('train', '--resume', dir, '--epochs', '2', '--folds', '3', '--fold', '2', '--skip-predict');
    expect(plain.code).toBe(2);
    expect(plain.out).toMatch(/--folds 3 --fold 2 conflicts with .*last\.safetensors, which was trained with fold 2 of 3 \(fold seed 1\), validated on fold 3/);
    const ok = cliRun('train', '--resume', dir, '--epochs', '2', '--skip-predict');
    expect(ok.code, ok.out).toBe(0);
    expect(ok.out).toMatch(/validation \(fold 3 of 3 by subject, choosing the epoch; fold 2's 6 held out/);

    for (const [args, message] of [
      [['--inner-validation'], /--inner-validation needs --folds K --fold i with K ≥ 3/],
      [['--folds', '2', '--fold', '1', '--inner-validation'], /--inner-validation needs .*, got --folds 2/],
    ] as [string[], RegExp][]) {
      const bad = train(...args, '--out', join(root, 'bad-nested'));
      expect(bad.code, bad.out).toBe(2);
      expect(bad.out).toMatch(message);
    }
    expect(existsSync(join(root, 'bad-nested'))).toBe(false);
  });

  it('nests every run of a recipe, records it in the report, and does not reuse runs trained otherwise', () => {
    const out = join(root, 'nested-recipe');
    const two = cliRun('recipe', '--data', dataDir, '--out', out, '--folds', '2', '--inner-validation');
    expect(two.code).toBe(2);
    expect(two.out).toContain('--inner-validation needs --folds 3 or more');
    expect(existsSync(out)).toBe(false);
    // --tune measures mixed precision's configurations: refused in fp32 before the recipe's folder is made.
    const tuned = cliRun('recipe', '--data', dataDir, '--out', join(root, 'tuned-recipe'), '--folds', '2', '--tune', '--precision', 'fp32', '--epochs', '1', '--base-width', '2', '--input-size', '16', '--batch-size', '4');
    expect(tuned.code, tuned.out).toBe(2);
    expect(tuned.out).toContain("--tune chooses among the mixed-precision convolutions' configurations; this recipe's runs are in fp32");
    expect(existsSync(join(root, 'tuned-recipe'))).toBe(false);
    // A model variant train would refuse is refused before the folder records it.
    for (const [flag, value, message] of [['--activation', 'tanh', '--activation must be relu or elu, got "tanh"'], ['--dropout', '1.5', '--dropout must be a rate in [0, 1), got 1.5']]) {
      const bad = cliRun('recipe', '--data', dataDir, '--out', join(root, 'bad-variant'), '--folds', '2', flag!, value!);
      expect(bad.code, bad.out).toBe(2);
      expect(bad.out).toContain(message);
      expect(existsSync(join(root, 'bad-variant'))).toBe(false);
    }
    const r = cliRun('recipe', '--data', dataDir, '--out', out, '--folds', '3', '--inner-validation', '--epochs', '1', '--base-width', '2', '--input-size', '16', '--batch-size', '4', '--augment', 'none', '--keep-contradictions');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('(epochs chosen on the next fold: nested validation)');
    const dir = join(out, readdirSync(out)[0]!);
    const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
    expect(report.innerValidation).toBe(true);
    const nesting = report.configs[0].runs.map((run: string) => decodeCheckpoint(new Uint8Array(readFileSync(join(run, 'best.safetensors'))), 'best').meta.training!.folds);
    expect(nesting).toEqual([1, 2, 3].map((fold) => ({ k: 3, fold, seed: 1, inner: (fold % 3) + 1 })));
    expect(report.configs[0].oof.score).toBeGreaterThanOrEqual(report.configs[0].oof.emptyScore);
    // The same folder without nesting refuses the nested runs instead of scoring them as plain folds.
    const options = JSON.parse(readFileSync(join(dir, 'recipe.json'), 'utf8'));
    delete options.options['inner-validation'];
    writeFileSync(join(dir, 'recipe.json'), JSON.stringify(options));
    const plain = cliRun('recipe', '--resume', dir);
    expect(plain.code).toBe(1);
    expect(plain.out).toMatch(/toolkit[/\\]fold-1[/\\].*last\.safetensors was trained with --inner-validation, where this recipe trains without it/);
  });
});

describe('wgsl-unet recipe', () => {
  it('trains the folds of each step, reports the out-of-fold metric of each, and writes the ensemble\'s submission', () => {
    const imgs = decodeNpy(new Uint8Array(readFileSync(join(dataDir, 'imgs_train.npy'))), 'imgs').data as Uint8Array;
    writeFileSync(join(dataDir, 'imgs_test.npy'), encodeNpy(imgs.subarray(0, 3 * W * H), [3, H, W]));
    writeFileSync(join(dataDir, 'imgs_id_test.npy'), encodeNpy(Int32Array.from([3, 1, 2]), [3]));
    const out = join(root, 'recipe');
    const r = cliRun('recipe', '--data', dataDir, '--out', out, '--folds', '2', '--compare', '--epochs', '1', '--base-width', '2', '--input-size', '16', '--batch-size', '4', '--augment', 'rotate=5,flip=0.5', '--tta', 'shift+mirror', '--seeds', '2', '--init-prior', '--loss', 'bce-dice', '--activation', 'elu', '--batch-norm', '--dropout', '0.3');
    expect(r.code, r.out).toBe(0);
    const dir = join(out, readdirSync(out)[0]!);
    const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
    expect(report.configs.map((c: { name: string }) => c.name)).toEqual(['tutorial', 'prior', 'clean', 'augment', 'loss', 'variant', 'ensemble', 'toolkit']);
    for (const c of report.configs) {
      expect(c.runs).toHaveLength(['ensemble', 'toolkit'].includes(c.name) ? 4 : 2);
      expect(c.oof.score).toBeGreaterThanOrEqual(c.oof.emptyScore);
      expect(c.oof.table).toHaveLength(c.oof.thresholds.length);
      expect(c.oof.gate.score).toBeGreaterThanOrEqual(c.oof.score);
      expect(c.gate.weights).toHaveLength(6);
    }
    // The tutorial trains on every frame from a zero output bias with the Dice loss; the others start it
    // at the prior, from the clean step on leave the contradictions out, and from the loss step on add
    // the cross-entropy to the loss.
    const meta = (run: string) => decodeCheckpoint(new Uint8Array(readFileSync(join(run, 'best.safetensors'))), 'best').meta.training!;
    expect(meta(report.configs[0].runs[0]).dropContradictions).toBeUndefined();
    expect(meta(report.configs[0].runs[0]).outputBias).toBeUndefined();
    expect(meta(report.configs[1].runs[0]).outputBias).toBeLessThan(0);
    expect(meta(report.configs[1].runs[0]).dropContradictions).toBeUndefined();
    expect(meta(report.configs[2].runs[0]).dropContradictions).toBe(true);
    expect(meta(report.configs[3].runs[1]).augment).toMatchObject({ rotate: 5, flip: 0.5 });
    expect(meta(report.configs[3].runs[1]).folds).toEqual({ k: 2, fold: 2, seed: 1 });
    expect(meta(report.configs[3].runs[1]).outputBias).toBeLessThan(0);
    expect(meta(report.configs[3].runs[1]).loss).toBeUndefined();
    expect(meta(report.configs[4].runs[0]).loss).toBe('bce-dice');
    expect(meta(report.configs[4].runs[0]).augment).toMatchObject({ rotate: 5, flip: 0.5 });
    // The model variant is a step of its own: the steps before it train the tutorial's model.
    const model = (run: string) => decodeCheckpoint(new Uint8Array(readFileSync(join(run, 'best.safetensors'))), 'best').meta.config;
    for (const c of report.configs.slice(0, 5)) expect(model(c.runs[0])).not.toHaveProperty('activation');
    expect(model(report.configs[5].runs[1])).toMatchObject({ activation: 'elu', batchNorm: true, dropout: 0.3 });
    expect(meta(report.configs[5].runs[1]).loss).toBe('bce-dice');
    expect(report.configs[5].what).toBe('+ ELU activations, batch normalisation, dropout 0.3 after the bottom\'s convolutions');
    // The ensemble adds a second seed a fold to the variant step's models (fold by fold: seed 1, seed 2).
    const ensemble = report.configs[6].runs;
    expect([ensemble[0], ensemble[2]]).toEqual(report.configs[5].runs);
    expect(ensemble.map((run: string) => [meta(run).folds!.fold, meta(run).seed])).toEqual([[1, 1], [1, 2], [2, 1], [2, 2]]);
    expect(meta(ensemble[1]).augment).toMatchObject({ rotate: 5, flip: 0.5 });
    expect(meta(ensemble[1]).loss).toBe('bce-dice');
    expect(model(ensemble[1])).toMatchObject({ activation: 'elu', batchNorm: true, dropout: 0.3 });
    expect(ensemble[1]).toContain(join('ensemble', 'fold-1', 'seed-2'));
    expect(report.configs[6].seeds).toBe(2);
    // The toolkit (test-time augmentation) predicts with the ensemble's models.
    expect(report.configs[7].runs).toEqual(ensemble);
    expect(readdirSync(dir).sort()).toEqual(['augment', 'clean', 'ensemble', 'imgs_mask_test.npy', 'loss', 'preds', 'prior', 'recipe.json', 'report.json', 'report.svg', 'submission.csv', 'tutorial', 'variant']);
    expect(readFileSync(join(dir, 'report.svg'), 'utf8')).toMatch(/^<svg[\s\S]*threshold 0.5/);
    expect(r.out).toMatch(/\| step \| out-of-fold metric \| threshold, min area \| gain \| with the presence gate \|/);
    // Every step's row ends with its metric under its own gate.
    for (const c of report.configs) expect(r.out).toContain(`| ${c.oof.gate.score.toFixed(4)} (gate ${c.oof.gate.threshold}) |`);
    const csv = readFileSync(join(dir, 'submission.csv'), 'utf8').trim().split('\n');
    expect(csv.map((l) => l.split(',')[0])).toEqual(['img', '1', '2', '3']);
    // The submission comes from the step that scored best out of fold, its gate counted where it was used.
    const scoreOf = (c: { oof: { score: number; gate: { threshold: number; score: number } } }) => Math.max(c.oof.score, c.oof.gate.threshold > 0 ? c.oof.gate.score : -Infinity);
    const chosen = report.configs.find((c: { name: string }) => c.name === report.submitted);
    expect(scoreOf(chosen)).toBe(Math.max(...report.configs.map(scoreOf)));
    expect(r.out).toContain(`submission: the ensemble of "${report.submitted}" (${chosen.runs.length} models), the best out of fold`);
  });

  it('goes on with a recipe folder: finished runs reused, an interrupted one resumed, a missing one trained, all scored again', () => {
    const out = join(root, 'recipe');
    const dir = join(out, readdirSync(out)[0]!);
    const before = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
    const stored = JSON.parse(readFileSync(join(dir, 'recipe.json'), 'utf8')).options;
    expect(stored).toMatchObject({ folds: 2, seeds: 2, epochs: 1, tta: 'shift+mirror', data: dataDir, 'init-prior': true });
    // The tutorial's second fold never ran; the clean step's first was cut short after 1 of 2 epochs.
    rmSync(join(dir, 'tutorial', 'fold-2'), { recursive: true });
    const cut = before.configs[2].runs[0];
    const last = decodeCheckpoint(new Uint8Array(readFileSync(join(cut, 'last.safetensors'))), 'last');
    // decodeCheckpoint hands the moments back as the tensors it read.
    const moments = (m: ReadonlyMap<string, unknown>, prefix: string) => [...m].map(([k, t]) => [`${prefix}${k}`, t as NamedTensor] as const);
    const tensors = new Map([...last.weights, ...moments(last.adam!.m, 'optimizer/m/'), ...moments(last.adam!.v, 'optimizer/v/')]);
    writeFileSync(join(cut, 'last.safetensors'), encodeCheckpointTensors(tensors, { ...last.meta, training: { ...last.meta.training!, epochs: 2 } }));

    const r = cliRun('recipe', '--resume', dir, '--tta', 'shift', '--weights', 'last');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/== tutorial: fold 1 of 2: trained before/);
    expect(r.out).toMatch(/== tutorial: fold 2 of 2 ==/);
    expect(r.out).toContain(`== clean: fold 1 of 2: resuming ${cut} ==`);
    expect(r.out.match(/trained before/g)).toHaveLength(1 + 2 + 1 + 2 + 2 + 2 + 2); // tutorial 1, prior 1 and 2, clean 2, augment 1 and 2, loss 1 and 2, variant 1 and 2, the ensemble's second seeds
    const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
    expect(report.configs.map((c: { name: string }) => c.name)).toEqual(['tutorial', 'prior', 'clean', 'augment', 'loss', 'variant', 'ensemble', 'toolkit']);
    expect(report.configs[7].what).toBe('+ test-time augmentation (shift: 5 views)');
    expect([before.weights, report.weights]).toEqual(['best', 'last']);
    expect(r.out).toContain("each run's last weights scored");
    expect(report.configs[2].runs[0]).toBe(cut);
    expect(decodeCheckpoint(new Uint8Array(readFileSync(join(cut, 'last.safetensors'))), 'last').meta.epoch).toBe(2);
    expect(report.configs[3].runs).toEqual(before.configs[3].runs);

    // Training options are the folder's own; a different one is refused, saying which.
    const bad = cliRun('recipe', '--resume', dir, '--folds', '3');
    expect(bad.code).toBe(2);
    expect(bad.out).toContain(`--folds 3 conflicts with ${dir}, which was started with --folds 2; leave it out to go on as it was`);
    // Options are checked before a recipe makes its folder.
    const badWeights = cliRun('recipe', '--data', dataDir, '--out', join(root, 'bad-recipe'), '--weights', 'middle');
    expect(badWeights.code).toBe(2);
    expect(badWeights.out).toContain('--weights must be best or last, got "middle"');
    expect(existsSync(join(root, 'bad-recipe'))).toBe(false);
    const none = cliRun('recipe', '--resume', join(root, 'nowhere'));
    expect(none.code).toBe(2);
    expect(none.out).toMatch(/recipe\.json is missing; give the folder of a recipe run/);
    // Without the prior's bias the steps after the tutorial's do not reuse runs trained with it.
    const options = JSON.parse(readFileSync(join(dir, 'recipe.json'), 'utf8'));
    expect(options.options['init-prior']).toBe(true);
    delete options.options['init-prior'];
    writeFileSync(join(dir, 'recipe.json'), JSON.stringify(options));
    const without = cliRun('recipe', '--resume', dir);
    expect(without.code).toBe(1);
    expect(without.out).toMatch(/tutorial → clean → augment → loss → variant → ensemble → toolkit/);
    expect(without.out).toMatch(/clean[/\\]fold-1[/\\].*last\.safetensors was trained with --init-prior, where this step of the recipe trains without it/);
    options.options['init-prior'] = true;
    // Nor do the steps from the loss step on reuse runs trained with another loss.
    expect(options.options.loss).toBe('bce-dice');
    writeFileSync(join(dir, 'recipe.json'), JSON.stringify({ options: { ...options.options, loss: 'image-dice' } }));
    const otherLoss = cliRun('recipe', '--resume', dir);
    expect(otherLoss.code).toBe(1);
    expect(otherLoss.out).toMatch(/loss[/\\]fold-1[/\\].*last\.safetensors was trained with the bce-dice loss, where this step of the recipe trains with the image-dice loss/);
    // Nor do the ensemble's runs, without the variant, reuse models of the variant.
    const { activation: _a, 'batch-norm': _b, dropout: _d, ...plainModel } = options.options;
    writeFileSync(join(dir, 'recipe.json'), JSON.stringify({ options: plainModel }));
    const otherModel = cliRun('recipe', '--resume', dir);
    expect(otherModel.code).toBe(1);
    expect(otherModel.out).toMatch(/ensemble[/\\]fold-1[/\\]seed-2[/\\].*last\.safetensors was trained as ELU activations, batch normalisation, dropout 0\.3 after the bottom's convolutions, where this step of the recipe trains the tutorial's model; start a new recipe/);
    writeFileSync(join(dir, 'recipe.json'), JSON.stringify(options));
    // A run in a step's folder that was trained otherwise (as by an earlier recipe) is refused, not reused.
    rmSync(join(dir, 'prior', 'fold-1'), { recursive: true });
    cpSync(join(dir, 'tutorial', 'fold-1'), join(dir, 'prior', 'fold-1'), { recursive: true });
    const other = cliRun('recipe', '--resume', dir);
    expect(other.code).toBe(1);
    expect(other.out).toMatch(/prior[/\\]fold-1[/\\].*last\.safetensors was trained without --init-prior, where this step of the recipe trains with it; start a new recipe, or move that run away/);
  });
});
