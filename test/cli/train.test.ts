/**
 * `wgsl-unet train` end to end, through the built CLI (npm test builds it
 * first): a tiny model on a tiny data set written as NumPy caches.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync, truncateSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeNpy } from '../../src/data/npy.js';
import { decodeCheckpoint } from '../../src/model/checkpoint.js';
import { decodeSafetensors, encodeSafetensors } from '../../src/model/safetensors.js';
import { decodeNpy } from '../../src/data/npy.js';
import { parseSubmission, validateSubmission } from '../../src/data/submission.js';
import { rng } from '../helpers/random.js';

const W = 580;
const H = 420;
const cli = join(__dirname, '../../dist/cli.js');
let root: string;
let dataDir: string;

function writeData(dir: string, n: number): void {
  const r = rng(5);
  const imgs = new Uint8Array(n * W * H);
  const masks = new Uint8Array(n * W * H);
  for (let i = 0; i < n; i++) {
    const cy = 100 + r() * 220;
    const cx = 120 + r() * 340;
    const nerve = i % 2 === 0;
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        const inside = nerve && ((y - cy) / 50) ** 2 + ((x - cx) / 70) ** 2 < 1;
        imgs[i * W * H + y * W + x] = Math.min(255, Math.floor(60 + 40 * r() + (inside ? 90 : 0)));
        masks[i * W * H + y * W + x] = inside ? 255 : 0;
      }
  }
  writeFileSync(join(dir, 'imgs_train.npy'), encodeNpy(imgs, [n, H, W]));
  writeFileSync(join(dir, 'imgs_mask_train.npy'), encodeNpy(masks, [n, H, W]));
}

function train(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, 'train', '--data', dataDir, '--base-width', '2', '--input-size', '16', '--batch-size', '4', ...args], {
    encoding: 'utf8',
    timeout: 240_000,
  });
  return { code: r.status, out: `${r.stdout}\n${r.stderr}${r.error ? `\nspawn: ${r.error.message}` : ''}${r.signal ? `\nsignal ${r.signal}` : ''}` };
}

const runFolder = (out: string) => /run folder: (.+)$/m.exec(out)?.[1]?.trim() ?? '';
const losses = (dir: string) => readFileSync(join(dir, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'wgsl-unet-train-'));
  dataDir = join(root, 'data');
  require('node:fs').mkdirSync(dataDir);
  writeData(dataDir, 20);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('npm run train', () => {
  let first = '';
  it('trains, writes the run folder, and is deterministic for a seed', () => {
    const a = train('--epochs', '2', '--out', join(root, 'a'), '--seed', '3');
    expect(a.code, a.out).toBe(0);
    first = runFolder(a.out);
    expect(readdirSync(first).sort()).toEqual(['best.safetensors', 'curves.svg', 'last.safetensors', 'log.jsonl']);
    const log = losses(first);
    expect(log.map((e) => e.epoch)).toEqual([1, 2]);
    for (const e of log) for (const k of ['loss', 'dice', 'val_loss', 'val_dice', 'seconds']) expect(Number.isFinite(e[k])).toBe(true);
    const best = decodeCheckpoint(new Uint8Array(readFileSync(join(first, 'best.safetensors'))), 'best');
    expect(best.meta.config.baseWidth).toBe(2);
    expect(best.meta.normalization.std).toBeGreaterThan(0);
    expect(best.adam).toBeUndefined();
    expect(best.weights.get('conv2d_1/kernel')!.shape).toEqual([3, 3, 1, 2]);
    const last = decodeCheckpoint(new Uint8Array(readFileSync(join(first, 'last.safetensors'))), 'last');
    expect(last.adam?.t).toBe(2 * 4); // 16 training images in batches of 4, two epochs
    // Adam's ε is the preset's: Keras's in the tutorial's, larger in the small one (docs/training.md).
    expect(last.meta.training?.epsilon).toBe(last.meta.training?.preset === 'cpu' ? 1e-4 : 1e-7);
    expect(readFileSync(join(first, 'curves.svg'), 'utf8')).toMatch(/^<svg/);

    const b = train('--epochs', '2', '--out', join(root, 'b'), '--seed', '3');
    expect(b.code, b.out).toBe(0);
    expect(losses(runFolder(b.out))).toEqual(log.map((e) => ({ ...e, seconds: expect.any(Number) })));
  });

  it('resumes from last.safetensors to the same curve as an uninterrupted run', () => {
    const a = train('--epochs', '1', '--out', join(root, 'r'), '--seed', '3');
    expect(a.code, a.out).toBe(0);
    const dir = runFolder(a.out);
    // A tuning (of mixed precision's convolutions) in the folder of an fp32 run is left alone, unread, and said so.
    writeFileSync(join(dir, 'tuning.json'), 'not read');
    const b = spawnSync(process.execPath, [cli, 'train', '--resume', dir, '--epochs', '2'], { encoding: 'utf8', timeout: 240_000 });
    expect(b.status, b.stderr).toBe(0);
    expect(b.stdout).toMatch(/resuming .* at epoch 2/);
    expect(b.stdout).toContain(`tuning: ${join(dir, 'tuning.json')} not applied: this run is in fp32`);
    const whole = losses(first).map(({ seconds: _s, ...rest }) => rest);
    expect(losses(dir).map(({ seconds: _s, ...rest }) => rest)).toEqual(whole);
  });

  it('refuses to resume from optimiser state that cannot be right, naming the checkpoint', () => {
    const a = train('--epochs', '1', '--out', join(root, 'bad-moments'), '--seed', '3');
    expect(a.code, a.out).toBe(0);
    const dir = runFolder(a.out);
    const path = join(dir, 'last.safetensors');
    const { tensors, metadata } = decodeSafetensors(new Uint8Array(readFileSync(path)), 'last');
    tensors.get('optimizer/v/conv2d_1/bias')!.data[1] = -1;
    writeFileSync(path, encodeSafetensors(tensors, metadata));
    const b = spawnSync(process.execPath, [cli, 'train', '--resume', dir, '--epochs', '2'], { encoding: 'utf8', timeout: 240_000 });
    expect(b.status).toBe(1);
    expect(b.stderr).toContain(`error: ${path}: Adam.loadState (v): second moments must be ≥ 0, but conv2d_1/bias[1] is -1`);
  });

  it('resumes with what shaped its data (anti-aliasing, split) and refuses a flag that contradicts it', () => {
    const a = train('--epochs', '1', '--out', join(root, 'shaped'), '--seed', '3', '--anti-alias', '--validation-split', '0.25', '--epsilon', '1e-6');
    expect(a.code, a.out).toBe(0);
    const dir = runFolder(a.out);
    const lastMeta = () => decodeCheckpoint(new Uint8Array(readFileSync(join(dir, 'last.safetensors'))), 'last').meta;
    const meta = lastMeta();
    expect([meta.antiAlias, meta.training?.validationSplit, meta.training?.epsilon]).toEqual([true, 0.25, 1e-6]);
    const dataLine = (out: string) => /data: .*normalisation mean [\d.]+, std [\d.]+/.exec(out)?.[0];
    const resume = (...args: string[]) => spawnSync(process.execPath, [cli, 'train', '--resume', dir, '--epochs', '2', ...args], { encoding: 'utf8', timeout: 240_000 });
    const wrongSplit = resume('--validation-split', '0.2');
    expect(wrongSplit.status).toBe(2);
    expect(wrongSplit.stderr).toMatch(/--validation-split 0\.2 conflicts with 0\.25, which .*last\.safetensors was trained with/);
    const b = resume();
    expect(b.status, b.stderr).toBe(0);
    expect(dataLine(b.stdout)).toBe(dataLine(a.out)); // the same frames, blurred alike: the same split, mean and std
    expect(b.stdout).toMatch(/Adam lr [\d.e-]+, ε 0\.000001/);
    expect(lastMeta().training?.epsilon).toBe(1e-6);
    // Caches changed since (every pixel brighter): the resumed run still normalises as it was trained.
    const brighter = join(root, 'brighter');
    mkdirSync(brighter);
    const imgs = decodeNpy(new Uint8Array(readFileSync(join(dataDir, 'imgs_train.npy'))), 'imgs');
    writeFileSync(join(brighter, 'imgs_train.npy'), encodeNpy((imgs.data as Uint8Array).map((v) => Math.min(255, v + 30)), imgs.shape));
    writeFileSync(join(brighter, 'imgs_mask_train.npy'), readFileSync(join(dataDir, 'imgs_mask_train.npy')));
    const moved = resume('--data', brighter, '--epochs', '3');
    expect(moved.status, moved.stderr).toBe(0);
    expect(/normalisation mean [\d.]+, std [\d.]+/.exec(moved.stdout)?.[0]).toBe(/normalisation mean [\d.]+, std [\d.]+/.exec(a.out)?.[0]);
    // A run trained without anti-aliasing refuses --anti-alias on resume.
    const plain = runFolder(train('--epochs', '1', '--out', join(root, 'plain'), '--seed', '3').out);
    const c = spawnSync(process.execPath, [cli, 'train', '--resume', plain, '--epochs', '2', '--anti-alias'], { encoding: 'utf8', timeout: 240_000 });
    expect(c.status).toBe(2);
    expect(c.stderr).toMatch(/--anti-alias conflicts with .*last\.safetensors, which was trained without it/);
  });

  it('trains the variant (ELU, batch normalisation, dropout), resumes it to the uninterrupted curve (the same dropout masks, the running statistics kept), and refuses a flag that contradicts it', () => {
    const variant = ['--seed', '3', '--activation', 'elu', '--dropout', '0.5', '--batch-norm'];
    const whole = train('--epochs', '2', '--out', join(root, 'variant'), ...variant);
    expect(whole.code, whole.out).toBe(0);
    expect(whole.out).toContain("model variant: ELU activations, batch normalisation, dropout 0.5 after the bottom's convolutions");
    const best = decodeCheckpoint(new Uint8Array(readFileSync(join(runFolder(whole.out), 'best.safetensors'))), 'best');
    expect(best.meta.config).toMatchObject({ baseWidth: 2, activation: 'elu', dropout: 0.5, batchNorm: true });
    expect(best.weights.get('batch_normalization_18/moving_variance')!.shape).toEqual([2]);

    const half = train('--epochs', '1', '--out', join(root, 'variant-r'), ...variant);
    expect(half.code, half.out).toBe(0);
    const dir = runFolder(half.out);
    const resume = (...args: string[]) => spawnSync(process.execPath, [cli, 'train', '--resume', dir, '--epochs', '2', ...args], { encoding: 'utf8', timeout: 240_000 });
    const wrong = resume('--activation', 'relu');
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toMatch(/--activation relu conflicts with .*last\.safetensors, whose model has elu activations/);
    const wrongRate = resume('--dropout', '0.2');
    expect(wrongRate.status).toBe(2);
    expect(wrongRate.stderr).toMatch(/--dropout 0\.2 conflicts with .*last\.safetensors, which was trained with dropout 0\.5/);
    const wrongSeed = resume('--seed', '4');
    expect(wrongSeed.status).toBe(2);
    expect(wrongSeed.stderr).toMatch(/--seed 4 conflicts with .*last\.safetensors, which was trained with seed 3/);
    const b = resume();
    expect(b.status, b.stderr).toBe(0);
    expect(b.stdout).toContain("model variant: ELU activations, batch normalisation, dropout 0.5 after the bottom's convolutions");
    expect(losses(dir).map(({ seconds: _s, ...rest }) => rest)).toEqual(losses(runFolder(whole.out)).map(({ seconds: _s, ...rest }) => rest));
    // The run's own seed, not the default, goes on (it seeds the dropout masks and the augmentation).
    const last = decodeCheckpoint(new Uint8Array(readFileSync(join(dir, 'last.safetensors'))), 'last').meta;
    expect([last.config.seed, last.training?.seed]).toEqual([3, 3]);
    // The steps begun (here all taken: fp32 skips none) seed the next masks.
    expect(last.training?.stepsBegun).toBe(8);

    const bad = train('--activation', 'tanh');
    expect(bad.code).toBe(2);
    expect(bad.out).toContain('--activation must be relu or elu, got "tanh"');
    const badRate = train('--dropout', '1');
    expect(badRate.code).toBe(2);
    expect(badRate.out).toContain('--dropout must be a rate in [0, 1), got 1');
  });

  it('resumes an augmented run to the uninterrupted curve: the augmentation goes on from the run\'s seed', () => {
    const args = ['--seed', '5', '--augment', 'rotate=5,elastic=0'];
    const whole = train('--epochs', '2', '--out', join(root, 'aug-whole'), ...args);
    expect(whole.code, whole.out).toBe(0);
    const half = train('--epochs', '1', '--out', join(root, 'aug-half'), ...args);
    expect(half.code, half.out).toBe(0);
    const dir = runFolder(half.out);
    const b = spawnSync(process.execPath, [cli, 'train', '--resume', dir, '--epochs', '2'], { encoding: 'utf8', timeout: 240_000 });
    expect(b.status, b.stderr).toBe(0);
    expect(losses(dir).map(({ seconds: _s, ...rest }) => rest)).toEqual(losses(runFolder(whole.out)).map(({ seconds: _s, ...rest }) => rest));
  });

  it('predicts the test frames and writes a valid submission', () => {
    // Test frames: the first training frames, under shuffled ids.
    const imgs = decodeNpy(new Uint8Array(readFileSync(join(dataDir, 'imgs_train.npy'))), 'imgs_train');
    const ids = Int32Array.from([7, 3, 12, 1, 5]);
    writeFileSync(join(dataDir, 'imgs_test.npy'), encodeNpy((imgs.data as Uint8Array).subarray(0, 5 * W * H), [5, H, W]));
    writeFileSync(join(dataDir, 'imgs_id_test.npy'), encodeNpy(ids, [5]));
    const out = join(root, 'pred');
    const model = join(first, 'best.safetensors');
    const p = spawnSync(process.execPath, [cli, 'predict', '--model', model, '--data', dataDir, '--out', out], { encoding: 'utf8', timeout: 120_000 });
    expect(p.status, p.stderr).toBe(0);
    const probs = decodeNpy(new Uint8Array(readFileSync(join(out, 'imgs_mask_test.npy'))), 'probs');
    expect(probs.dtype).toBe('float32');
    expect(probs.shape).toEqual([5, 16, 16]);
    expect((probs.data as Float32Array).every((v) => v >= 0 && v <= 1)).toBe(true);
    expect(readdirSync(join(out, 'preds')).sort()).toEqual(['12_pred.png', '1_pred.png', '3_pred.png', '5_pred.png', '7_pred.png']);
    const csvPath = join(out, 'submission.csv');
    const s = spawnSync(process.execPath, [cli, 'submit', '--model', model, '--data', dataDir, '--masks', join(out, 'imgs_mask_test.npy'), '--out', csvPath], { encoding: 'utf8' });
    expect(s.status, s.stderr).toBe(0);
    const csv = readFileSync(csvPath, 'utf8');
    const pp = decodeCheckpoint(new Uint8Array(readFileSync(model)), 'best').meta.postprocess!;
    expect(validateSubmission(csv, [...ids], { minArea: pp.minArea })).toEqual([]);
    expect(parseSubmission(csv, 'submission.csv').map((r) => r.id)).toEqual([1, 3, 5, 7, 12]);
  });

  it('predicts with an ensemble of runs and test-time augmentation: the mean of the single predictions', () => {
    // Needs the test frames the test above wrote, and the runs of the tests before it.
    const runIn = (dir: string) => join(root, dir, readdirSync(join(root, dir))[0]!);
    const other = train('--epochs', '1', '--out', join(root, 'other'), '--seed', '9');
    expect(other.code, other.out).toBe(0);
    const [one, two] = [first, runIn('other')];
    const predictInto = (out: string, data: string, ...args: string[]) => {
      const p = spawnSync(process.execPath, [cli, 'predict', '--data', data, '--out', out, ...args], { encoding: 'utf8', timeout: 120_000 });
      expect(p.status, p.stderr).toBe(0);
      return decodeNpy(new Uint8Array(readFileSync(join(out, 'imgs_mask_test.npy'))), 'probs').data as Float32Array;
    };
    const size = 16;
    const mirror = (maps: Float32Array) => maps.map((_, i) => maps[i - (i % size) + size - 1 - (i % size)]!);
    // The test frames mirrored left to right, in a data folder of their own.
    const test = decodeNpy(new Uint8Array(readFileSync(join(dataDir, 'imgs_test.npy'))), 'test').data as Uint8Array;
    const mirroredDir = join(root, 'mirrored-data');
    mkdirSync(mirroredDir, { recursive: true });
    writeFileSync(join(mirroredDir, 'imgs_test.npy'), encodeNpy(test.map((_, i) => test[i - (i % W) + W - 1 - (i % W)]!), [5, H, W]));
    writeFileSync(join(mirroredDir, 'imgs_id_test.npy'), readFileSync(join(dataDir, 'imgs_id_test.npy')));
    const single = [one, two].map((run, k) => predictInto(join(root, `single-${k}`), dataDir, '--model', run));
    const mirrored = [one, two].map((run, k) => mirror(predictInto(join(root, `mirrored-${k}`), mirroredDir, '--model', run)));
    const ensemble = predictInto(join(root, 'ensemble'), dataDir, '--model', `${one},${join(two, 'best.safetensors')}`, '--tta', 'mirror');
    expect(single[0]).not.toEqual(single[1]);
    expect(mirrored[0]).not.toEqual(single[0]);
    let worst = 0;
    for (let i = 0; i < ensemble.length; i++) {
      const mean = (single[0]![i]! + single[1]![i]! + mirrored[0]![i]! + mirrored[1]![i]!) / 4;
      worst = Math.max(worst, Math.abs(ensemble[i]! - mean));
    }
    expect(worst).toBeLessThan(1e-6);
    // Models that see differently prepared frames do not average.
    const bad = spawnSync(process.execPath, [cli, 'predict', '--data', dataDir, '--out', join(root, 'bad'), '--model', `${one},${runIn('shaped')}`], { encoding: 'utf8', timeout: 120_000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/anti-aliased, .* an ensemble's models must see the same frames/);
    const badViews = spawnSync(process.execPath, [cli, 'predict', '--data', dataDir, '--out', join(root, 'bad'), '--model', one, '--tta', 'flip'], { encoding: 'utf8', timeout: 120_000 });
    expect(badViews.status).toBe(2);
    expect(badViews.stderr).toContain('--tta must be one of none, shift, mirror, shift+mirror, got "flip"');
  });

  it('on Ctrl-C stops with status 130, keeps the last whole epoch, and resumes to the uninterrupted curve', async () => {
    const out = join(root, 'int');
    // A constant learning rate: the run is cut short of --epochs 500 and resumed to fewer.
    const args = ['--data', dataDir, '--base-width', '2', '--input-size', '16', '--batch-size', '4', '--seed', '4', '--schedule', 'constant'];
    const child = spawn(process.execPath, [cli, 'train', ...args, '--epochs', '500', '--out', out]);
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.resume();
    // Interrupt once an epoch has been saved.
    await new Promise<void>((ok) => {
      const poll = setInterval(() => {
        if (/run folder/.test(stdout) && /improved/.test(stdout)) {
          clearInterval(poll);
          child.kill('SIGINT');
          ok();
        }
      }, 50);
    });
    const code = await new Promise<number | null>((ok) => child.on('exit', ok));
    expect(code, stdout).toBe(130);
    expect(stdout).toMatch(/interrupted in epoch \d+: .*last\.safetensors holds the end of epoch \d+; continue with: npm run train -- --resume/);
    const dir = readdirSync(out).map((d) => join(out, d))[0]!;
    const last = decodeCheckpoint(new Uint8Array(readFileSync(join(dir, 'last.safetensors'))), 'last');
    const done = last.meta.epoch;
    expect(losses(dir).map((e) => e.epoch)).toEqual(Array.from({ length: done }, (_, i) => i + 1));
    expect(last.adam?.t).toBe(done * 4); // whole epochs only: 16 images in batches of 4
    const r = spawnSync(process.execPath, [cli, 'train', '--resume', dir, '--epochs', String(done + 1)], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`resuming .* at epoch ${done + 1}`));
    // The same run without the interruption: every epoch's figures equal, to the last bit.
    const whole = train('--seed', '4', '--schedule', 'constant', '--epochs', String(done + 1), '--out', join(root, 'int-whole'));
    expect(whole.code, whole.out).toBe(0);
    const strip = (log: Record<string, number>[]) => log.map(({ seconds: _s, ...rest }) => rest);
    expect(strip(losses(dir))).toEqual(strip(losses(runFolder(whole.out))));
  });

  it('checks numeric options before starting the adapter', () => {
    // A wrong adapter name would be reported first if the adapter started before the check.
    for (const [args, message] of [
      [['--epochs', '0'], /--epochs must be a positive integer, got 0/],
      [['--validation-split', '1.5'], /--validation-split must be in \(0, 1\), got 1\.5/],
      [['--lr', '-1'], /--lr must be positive, got -1/],
      [['--epsilon', '0'], /--epsilon must be positive, got 0/],
      [['--input-size', '40'], /--input-size must be divisible by 16/],
    ] as const) {
      const r = spawnSync(process.execPath, [cli, 'train', '--adapter', 'no-such-adapter', ...args], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
    }
  });

  it('rejects bad input with clear messages', () => {
    const size = train('--input-size', '50');
    expect(size.code, size.out).toBe(2);
    expect(size.out).toMatch(/--input-size must be divisible by 16/);
    const batch = train('--batch-size', '64');
    expect(batch.code).toBe(2);
    expect(batch.out).toMatch(/--batch-size 64 is larger than the 16 training images/);
    // Tuning chooses among mixed precision's configurations: an fp32 run has none.
    const tune = train('--tune', '--precision', 'fp32');
    expect(tune.code, tune.out).toBe(2);
    expect(tune.out).toMatch(/--tune chooses among the mixed-precision convolutions' configurations; this run is in fp32/);
    const tuning = train('--tuning', join(root, 'tuning.json'), '--precision', 'fp32');
    expect(tuning.code, tuning.out).toBe(2);
    expect(tuning.out).toMatch(/--tuning applies measurements of the mixed-precision convolutions' configurations; this run is in fp32/);
    const both = train('--tune', '--tuning', join(root, 'tuning.json'));
    expect(both.code, both.out).toBe(2);
    expect(both.out).toMatch(/--tune measures the convolutions on this GPU, --tuning applies measurements made before: give one of them/);
    const missing = spawnSync(process.execPath, [cli, 'train', '--data', join(root, 'nowhere')], { encoding: 'utf8' });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/no imgs_train.npy in .*nowhere/);
    // The default folder named by its absolute path (as recipe passes it) is still the default: the embedded set is made there.
    const fresh = mkdtempSync(join(tmpdir(), 'wgsl-unet-default-'));
    try {
      const made = spawnSync(process.execPath, [cli, 'train', '--data', join(fresh, 'data'), '--out', join(fresh, 'runs'), '--epochs', '1', '--limit', '16', '--base-width', '2', '--input-size', '16', '--batch-size', '4', '--skip-predict'], { encoding: 'utf8', cwd: fresh, timeout: 240_000 });
      expect(made.status, made.stderr).toBe(0);
      expect(made.stdout).toMatch(/using the embedded synthetic data set/);
      expect(existsSync(join(fresh, 'data', 'imgs_train.npy'))).toBe(true);
    } finally {
      rmSync(fresh, { recursive: true, force: true });
    }
    // A truncated checkpoint is refused, naming the file.
    const broken = join(root, 'broken');
    require('node:fs').mkdirSync(broken);
    require('node:fs').copyFileSync(join(first, 'last.safetensors'), join(broken, 'last.safetensors'));
    truncateSync(join(broken, 'last.safetensors'), Math.floor(statSync(join(broken, 'last.safetensors')).size / 2));
    const r = spawnSync(process.execPath, [cli, 'train', '--resume', broken], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/last\.safetensors.*(truncated|does not fit)/);
    expect(existsSync(join(broken, 'log.jsonl'))).toBe(false);
  });
});
