/**
 * The browser page end to end, in real headless Chromium (Debian's, through
 * playwright-core) on its WebGPU — SwiftShader where there is no GPU — served
 * by the built CLI's `serve` (npm test builds first):
 * - a checkpoint made here in Node is loaded through ?model=, and its
 *   probability map for a real Kaggle frame (TIFF, then the same frame as
 *   PNG) matches the Node engine's for the same weights and input;
 * - a few training steps in the page lower the loss, and the downloaded
 *   weights are accepted by `predict`;
 * - without WebGPU the page says so;
 * - the bundles hold no Node modules.
 * A screenshot goes to test-artifacts/browser-page.png.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as h5node from 'h5wasm/node';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Download, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePngGray8 } from '../../src/cli/png.js';
import { encodeNpy, decodeNpy } from '../../src/data/npy.js';
import { binarize } from '../../src/data/postprocess.js';
import { masksToUnit, meanStd, normalize, resizeStack } from '../../src/data/prepare.js';
import { resizeBilinear } from '../../src/data/resize.js';
import { decodeTiff } from '../../src/data/tiff.js';
import { formatAdapter } from '../../src/gpu/gpu.js';
import { Adam } from '../../src/model/adam.js';
import { CHECKPOINT_FORMAT, decodeCheckpoint, encodeCheckpoint, loadWeights } from '../../src/model/checkpoint.js';
import { Trainer, predictProbabilities } from '../../src/model/trainer.js';
import { segmentSettings } from '../../src/model/segment.js';
import { createUNet } from '../../src/model/unet.js';
import { KAGGLE_SAMPLE_DIR, readFixture } from '../data/fixtures.js';
import { kerasArchiveOf } from '../helpers/keras3.js';
import { maxAbsError } from '../helpers/compare.js';
import { testGpu } from '../helpers/gpu.js';
import { type Chromium, launchChromium } from './chromium.js';
import type { PageState } from '../../web/app.js';

const ROOT = resolve(__dirname, '../..');
const CLI = join(ROOT, 'dist/cli.js');
const ARTIFACTS = join(ROOT, 'test-artifacts');
const FRAME = '1_1.tif';
/** The checkpoint's model: small, so SwiftShader runs it in moments. */
const WIDTH = 4;
const SIZE = 32;
/** SwiftShader (browser) and the Node adapter both compute in fp32; they may differ by rounding only. */
const TOLERANCE = 1e-4;

let tmp: string;
let checkpointPath: string;
let norm: { mean: number; std: number };
let server: ChildProcess | null = null;
let baseUrl: string;
let browser: Chromium | null = null;
let page: Page;
const pageErrors: string[] = [];

/**
 * A model fitted to the five sample frames (one step per epoch), so that its
 * map for 1_1 is far from the flat one of fresh weights.
 */
async function makeCheckpoint(): Promise<Uint8Array> {
  const EPOCHS = 25;
  const gpu = await testGpu();
  const ids = ['1_1', '1_2', '1_3', '1_4', '1_5'];
  const frames = ids.map((id) => decodeTiff(readFixture(`${id}.tif`), `${id}.tif`));
  const masks = ids.map((id) => decodeTiff(readFixture(`${id}_mask.tif`), `${id}_mask.tif`));
  const { width, height } = frames[0]!;
  const stack = (imgs: { data: Uint8Array }[]) => {
    const all = new Uint8Array(imgs.length * width * height);
    imgs.forEach((im, i) => all.set(im.data, i * width * height));
    return resizeStack(all, imgs.length, width, height, SIZE);
  };
  const images = stack(frames);
  norm = meanStd(images, SIZE * SIZE, 0, ids.length);
  const set = { images: normalize(images, norm.mean, norm.std), masks: masksToUnit(stack(masks)), count: ids.length, size: SIZE };
  const model = createUNet(gpu, { baseWidth: WIDTH, inputSize: SIZE, seed: 11 });
  const adam = new Adam(model.parameters, { lr: 0.003 });
  const trainer = new Trainer(model, adam, ids.length);
  for (let epoch = 1; epoch <= EPOCHS; epoch++) await trainer.trainEpoch(set, Int32Array.from([0, 1, 2, 3, 4]), epoch);
  const bytes = await encodeCheckpoint(model, {
    format: CHECKPOINT_FORMAT,
    version: 'test',
    config: model.config,
    normalization: norm,
    epoch: EPOCHS,
    step: adam.t,
    metrics: {},
    adapter: formatAdapter(gpu.adapterInfo),
    createdAt: new Date().toISOString(),
  });
  model.dispose();
  adam.dispose();
  return bytes;
}

/** What `predict` computes in Node for `image` with the checkpoint's weights. */
async function nodeProbabilities(image: { width: number; height: number; data: Uint8Array }): Promise<Float32Array> {
  const gpu = await testGpu();
  const ckpt = decodeCheckpoint(new Uint8Array(readFileSync(checkpointPath)), checkpointPath);
  const model = createUNet(gpu, { baseWidth: ckpt.meta.config.baseWidth, inputSize: ckpt.meta.config.inputSize });
  loadWeights(model, ckpt, checkpointPath);
  const size = model.config.inputSize;
  const input = normalize(resizeStack(image.data, 1, image.width, image.height, size), ckpt.meta.normalization.mean, ckpt.meta.normalization.std);
  const probs = await predictProbabilities(model, input, 1, size, 1);
  model.dispose();
  return probs;
}

function startServer(model: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--model', model], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`serve printed no address within 15 s:\n${out}`)), 15_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /serving the page at (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        ok({ child, url: m[1]! });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`serve exited with code ${code}:\n${out}`));
    });
  });
}

const state = (p: Page): Promise<PageState> =>
  p.evaluate(() => {
    const s = window.wgslUnetPage;
    return { ...s, prediction: s.prediction && { ...s.prediction, probabilities: Array.from(s.prediction.probabilities) } } as unknown as PageState;
  });

async function waitForPrediction(seq: number): Promise<Float32Array> {
  await page.waitForFunction((n) => (window.wgslUnetPage.prediction?.seq ?? 0) >= n || window.wgslUnetPage.state === 'error', seq, { timeout: 30_000 });
  const s = await state(page);
  expect(s.errors).toEqual([]);
  return Float32Array.from(s.prediction!.probabilities as unknown as number[]);
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'wgsl-unet-browser-'));
  checkpointPath = join(tmp, 'node.safetensors');
  const t0 = performance.now();
  writeFileSync(checkpointPath, await makeCheckpoint());
  console.log(`checkpoint made in Node in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const s = await startServer(checkpointPath);
  server = s.child;
  baseUrl = s.url;
  browser = await launchChromium();
  page = await browser.context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(m.text());
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('the browser page', () => {
  it('serves the page, the library and the model, and nothing outside them', async () => {
    expect(baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const get = (path: string, init?: RequestInit) => fetch(new URL(path, baseUrl), init);
    const index = await get('/');
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toMatch(/text\/html/);
    expect((await get('/browser/wgsl-unet.js')).headers.get('content-type')).toMatch(/javascript/);
    const served = Buffer.from(await (await get('/model.safetensors')).arrayBuffer());
    expect(served.equals(readFileSync(checkpointPath)), 'the served model is the --model file').toBe(true);
    expect((await get('/%2e%2e/cli.js')).status).toBe(404);
    expect((await get('/browser/..%2f..%2fpackage.json')).status).toBe(404);
    expect((await get('/', { method: 'POST' })).status).toBe(405);
    const open = spawnSync(process.execPath, [CLI, 'serve', '--host', '0.0.0.0', '--port', '0'], { encoding: 'utf8', timeout: 10_000 });
    expect(open.status, open.stderr).toBe(2);
    expect(open.stderr).toMatch(/--host must be a loopback address/);
  });

  it('shows the adapter and loads the checkpoint given by ?model=', async () => {
    await page.goto(`${baseUrl}?model=/model.safetensors`);
    await page.waitForFunction(() => window.wgslUnetPage.model !== null || ['error', 'no-webgpu'].includes(window.wgslUnetPage.state), null, { timeout: 30_000 });
    const s = await state(page);
    expect(s.errors, s.message).toEqual([]);
    expect(s.adapter).not.toBeNull();
    console.log(`browser adapter: ${formatAdapter(s.adapter!)}`);
    const text = await page.locator('#adapter-text').innerText();
    expect(text).toContain(`architecture ${s.adapter!.architecture}`);
    expect(text).toMatch(s.adapter!.isSoftware ? /software/ : /hardware/);
    expect(s.model).toMatchObject({ baseWidth: WIDTH, inputSize: SIZE, mean: norm.mean, std: norm.std, threshold: 0.5 });
    expect(await page.locator('#model-info').innerText()).toContain('model.safetensors');
  });

  let tiffProbs: Float32Array;
  it('segments a Kaggle TIFF frame as the Node engine does', async () => {
    await page.setInputFiles('#frame-file', join(KAGGLE_SAMPLE_DIR, FRAME));
    tiffProbs = await waitForPrediction(1);
    const expected = await nodeProbabilities(decodeTiff(readFixture(FRAME), FRAME));
    expect(tiffProbs.length).toBe(SIZE * SIZE);
    const diff = maxAbsError(tiffProbs, expected);
    let lo = 1;
    let hi = 0;
    for (const p of expected) [lo, hi] = [Math.min(lo, p), Math.max(hi, p)];
    console.log(`page vs Node probabilities for ${FRAME}: max |difference| ${diff.toExponential(2)} (Node's range ${lo.toFixed(4)}…${hi.toFixed(4)})`);
    expect(hi - lo, 'the checkpoint should give a map that is not flat').toBeGreaterThan(0.05);
    expect(diff).toBeLessThanOrEqual(TOLERANCE);
    expect(await page.locator('#predict-info').innerText()).toContain(FRAME);
  });

  it('reads the same frame as PNG to the same probabilities', async () => {
    const img = decodeTiff(readFixture(FRAME), FRAME);
    const png = join(tmp, '1_1.png');
    writeFileSync(png, encodePngGray8(img.width, img.height, img.data));
    await page.setInputFiles('#frame-file', png);
    const probs = await waitForPrediction(2);
    expect(maxAbsError(probs, tiffProbs)).toBe(0);
  });

  it('trains a small U-Net in the page: the loss falls, predict accepts the downloaded weights, and import those downloaded as ONNX, tfjs and Keras', async () => {
    // Six steps of about 2 s each on SwiftShader with two cores.
    await page.selectOption('#train-width', '4');
    await page.selectOption('#train-size', '32');
    await page.fill('#train-frames', '10');
    await page.fill('#train-epochs', '3');
    await page.fill('#train-batch', '4');
    await page.fill('#train-lr', '0.01');
    await page.fill('#train-seed', '3');
    const t0 = performance.now();
    await page.click('#train-start');
    await page.waitForFunction(() => window.wgslUnetPage.training.done || window.wgslUnetPage.state === 'error', null, { timeout: 150_000 });
    const s = await state(page);
    expect(s.errors).toEqual([]);
    const { steps, epochs, stepsPerEpoch } = s.training;
    expect(stepsPerEpoch).toBe(2); // 8 training frames (2 held out) in batches of 4
    expect(steps.length).toBe(6);
    expect(epochs.map((e) => e.epoch)).toEqual([0, 1, 2, 3]);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const firstEpoch = mean(steps.filter((x) => x.epoch === 1).map((x) => x.loss));
    const lastEpoch = mean(steps.filter((x) => x.epoch === 3).map((x) => x.loss));
    console.log(
      `in-page training (${((performance.now() - t0) / 1000).toFixed(1)} s): first step loss ${steps[0]!.loss.toFixed(4)}, ` +
        `epoch 1 mean ${firstEpoch.toFixed(4)} → epoch 3 mean ${lastEpoch.toFixed(4)}; ` +
        `validation loss ${epochs[0]!.val_loss.toFixed(4)} → ${epochs[3]!.val_loss.toFixed(4)}; ` +
        `seconds: data ${s.training.dataSeconds.toFixed(1)}, after epochs ${epochs.map((e) => e.seconds.toFixed(1)).join(', ')}`,
    );
    expect(lastEpoch).toBeLessThan(firstEpoch);
    expect(epochs[3]!.val_loss).toBeLessThan(epochs[0]!.val_loss);
    // The trained model now segments the open frame.
    await waitForPrediction(3);
    expect((await state(page)).model?.source).toMatch(/trained in this page/);


    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    const weights = join(tmp, download.suggestedFilename());
    await download.saveAs(weights);
    const ckpt = decodeCheckpoint(new Uint8Array(readFileSync(weights)), weights);
    expect(ckpt.meta.config).toMatchObject({ baseWidth: 4, inputSize: 32 });
    expect(ckpt.meta.epoch).toBe(3);
    expect(ckpt.meta.step).toBe(6);
    expect(ckpt.meta.normalization.std).toBeGreaterThan(0);
    const data = join(tmp, 'data');
    mkdirSync(data);
    const img = decodeTiff(readFixture(FRAME), FRAME);
    writeFileSync(join(data, 'imgs_test.npy'), encodeNpy(img.data, [1, img.height, img.width]));
    writeFileSync(join(data, 'imgs_id_test.npy'), encodeNpy(Int32Array.from([1]), [1]));
    const out = join(tmp, 'pred');
    const r = spawnSync(process.execPath, [CLI, 'predict', '--model', weights, '--data', data, '--out', out], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    const probs = decodeNpy(new Uint8Array(readFileSync(join(out, 'imgs_mask_test.npy'))), 'imgs_mask_test.npy');
    expect(probs.shape).toEqual([1, 32, 32]);
    // Node's prediction with the downloaded weights matches the page's own for that frame.
    const pageProbs = Float32Array.from((await state(page)).prediction!.probabilities as unknown as number[]);
    expect(maxAbsError(probs.data as Float32Array, pageProbs)).toBeLessThanOrEqual(TOLERANCE);

    // The same weights downloaded as ONNX, TensorFlow.js (two files) and Keras HDF5: import gives back the checkpoint's tensors.
    for (const [format, count] of [['onnx', 1], ['tfjs', 2], ['keras-h5', 1]] as const) {
      await page.selectOption('#download-format', format);
      const saved: string[] = [];
      const folder = join(tmp, `download-${format}`);
      mkdirSync(folder);
      const all = new Promise<void>((done) => {
        const take = async (d: Download) => {
          const path = join(folder, d.suggestedFilename());
          await d.saveAs(path);
          saved.push(path);
          if (saved.length === count) {
            page.off('download', take);
            done();
          }
        };
        page.on('download', take);
      });
      await page.click('#download');
      await all;
      const names = saved.map((f) => f.split('/').pop()).sort();
      console.log(`downloaded as ${format}: ${names.join(', ')}`);
      expect(names).toEqual(format === 'tfjs' ? ['group1-shard1of1.bin', 'model.json'] : [`wgsl-unet-browser-w4-32px.${format === 'onnx' ? 'onnx' : 'h5'}`]);
      const back = join(tmp, `back-${format}.safetensors`);
      const r2 = spawnSync(process.execPath, [CLI, 'import', '--in', format === 'tfjs' ? folder : saved[0]!, '--out', back], { encoding: 'utf8', timeout: 60_000 });
      expect(r2.status, `${r2.stdout}\n${r2.stderr}`).toBe(0);
      const again = decodeCheckpoint(new Uint8Array(readFileSync(back)), back);
      expect(again.meta.normalization).toEqual(ckpt.meta.normalization);
      expect([...again.weights.keys()].sort()).toEqual([...ckpt.weights.keys()].sort());
      for (const [name, t] of ckpt.weights) expect(again.weights.get(name)!.data, `${format}: ${name}`).toEqual(t.data);
    }
    expect((await state(page)).errors).toEqual([]);
  });

  it('loads a checkpoint from the file input, and segments the open frame with it', async () => {
    await page.setInputFiles('#model-file', checkpointPath);
    const probs = await waitForPrediction(4);
    expect(maxAbsError(probs, tiffProbs)).toBe(0);
    const s = await state(page);
    expect(s.model?.source).toMatch(/node\.safetensors/);
    console.log(`the Node checkpoint's mask for ${FRAME}: ${s.prediction!.area} px of 580 × 420`);
    expect(await page.locator('#download').isDisabled(), 'only weights trained in the page are offered').toBe(true);

    // Download mask: the page's map made a mask with the checkpoint's settings, as TIFF (the competition's form) and as PNG.
    const { threshold, minArea } = segmentSettings(decodeCheckpoint(new Uint8Array(readFileSync(checkpointPath)), checkpointPath).meta);
    const expected = binarize(resizeBilinear(probs, SIZE, SIZE, 580, 420), threshold, minArea).map((v) => v * 255);
    expect(s.prediction!.area).toBeGreaterThan(0);
    expect(expected.reduce((a, v) => a + (v ? 1 : 0), 0)).toBe(s.prediction!.area);
    for (const format of ['tif', 'png']) {
      await page.selectOption('#mask-format', format);
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-mask')]);
      expect(download.suggestedFilename()).toBe(`1_1_mask.${format}`);
      const saved = join(tmp, `mask.${format}`);
      await download.saveAs(saved);
      const bytes = new Uint8Array(readFileSync(saved));
      // The PNG decoded by the browser itself, each pixel's red (= green = blue, alpha 255).
      const gray = format === 'tif' ? decodeTiff(bytes, saved).data : Uint8Array.from(await page.evaluate(async (b64) => {
        const bitmap = await createImageBitmap(new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], { type: 'image/png' }));
        const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
        const ctx = canvas.getContext('2d')!;
        ctx.drawImage(bitmap, 0, 0);
        const rgba = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
        const out: number[] = [];
        for (let i = 0; i < rgba.length; i += 4) out.push(rgba[i] === rgba[i + 1] && rgba[i] === rgba[i + 2] && rgba[i + 3] === 255 ? rgba[i]! : -1);
        return out;
      }, Buffer.from(bytes).toString('base64')));
      expect(gray.length).toBe(580 * 420);
      expect(gray, format).toEqual(expected);
    }
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'browser-page.png'), fullPage: true });
  });

  it('loads the same model exported as ONNX, Keras HDF5 and TensorFlow.js, and segments the frame as the checkpoint did', async () => {
    const exported = (format: string, out: string) => {
      const r = spawnSync(process.execPath, [CLI, 'export', '--format', format, '--model', checkpointPath, '--out', out], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stderr).toBe(0);
      return out;
    };
    const tfjsDir = exported('tfjs', join(tmp, 'tfjs-model'));
    const cases: [string, string[]][] = [
      ['onnx', [exported('onnx', join(tmp, 'unet.onnx'))]],
      ['keras-h5', [exported('keras-h5', join(tmp, 'weights.h5'))]],
      ['tfjs', readdirSync(tfjsDir).map((f) => join(tfjsDir, f))],
    ];
    let seq = 4;
    for (const [format, files] of cases) {
      await page.setInputFiles('#model-file', files);
      const probs = await waitForPrediction(++seq);
      const s = await state(page);
      expect(s.model, format).toMatchObject({ baseWidth: WIDTH, inputSize: SIZE, mean: norm.mean, std: norm.std });
      expect(s.model!.source, format).toContain(`imported from ${format}`);
      // The same weights bit for bit, so the same map.
      expect(maxAbsError(probs, tiffProbs), format).toBe(0);
    }
  });

  it("asks for the normalisation of a model that does not record it (Keras's own files), and loads it with the values given", async () => {
    const plain = join(tmp, 'keras-plain.h5');
    writeFileSync(plain, readFileSync(join(tmp, 'weights.h5')));
    await h5node.ready;
    const f = new h5node.File(plain, 'a');
    f.delete_attribute('wgsl_unet');
    f.close();
    await page.setInputFiles('#model-file', plain);
    await page.waitForFunction(() => !(document.getElementById('import-again') as HTMLButtonElement).disabled, null, { timeout: 30_000 });
    expect(await page.locator('#model-info').innerText()).toMatch(/keras-plain\.h5 does not record how its frames were normalised/);
    expect(await page.locator('#import-options').getAttribute('open')).not.toBeNull();
    await page.fill('#import-mean', String(norm.mean));
    await page.fill('#import-std', String(norm.std));
    await page.fill('#import-size', String(SIZE));
    await page.click('#import-again');
    let probs = await waitForPrediction(8);
    expect((await state(page)).model).toMatchObject({ source: 'keras-plain.h5 (imported from keras-h5)', inputSize: SIZE, mean: norm.mean, std: norm.std });
    expect(maxAbsError(probs, tiffProbs)).toBe(0);

    // A Keras 3 archive records none either: the values in the fields serve it.
    const ckpt = decodeCheckpoint(new Uint8Array(readFileSync(checkpointPath)), checkpointPath);
    const c = ckpt.meta.config;
    const keras3 = join(tmp, 'unet.keras');
    writeFileSync(keras3, await kerasArchiveOf({ baseWidth: c.baseWidth, activation: 'relu', batchNorm: false, inputSize: c.inputSize, weights: ckpt.weights, preprocessing: { ...ckpt.meta.normalization, antiAlias: false } }));
    await page.setInputFiles('#model-file', keras3);
    probs = await waitForPrediction(9);
    expect((await state(page)).model).toMatchObject({ source: 'unet.keras (imported from keras)', mean: norm.mean, std: norm.std });
    expect(maxAbsError(probs, tiffProbs)).toBe(0);
  });

  it('refuses two models picked together, naming them', async () => {
    await page.setInputFiles('#model-file', [join(tmp, 'unet.onnx'), join(tmp, 'unet.keras')]);
    await page.waitForFunction(() => window.wgslUnetPage.state === 'error', null, { timeout: 30_000 });
    const s = await state(page);
    expect(s.errors).toEqual([expect.stringMatching(/pick one model at a time \(unet\.onnx, unet\.keras are each a model\)/)]);
    // An error the test asked for: cleared, so that the page's last check sees only unexpected ones.
    await page.evaluate(() => void (window.wgslUnetPage.errors.length = 0));
    pageErrors.splice(0, pageErrors.length, ...pageErrors.filter((e) => !/pick one model at a time/.test(e)));
  });

  it('takes the activation of Keras weights from its field, and refuses one that contradicts a whole model', async () => {
    await page.selectOption('#import-activation', 'elu');
    await page.setInputFiles('#model-file', join(tmp, 'keras-plain.h5'));
    // The page is still in the last test's error state until this model is set.
    await page.waitForFunction(() => window.wgslUnetPage.model?.activation === 'elu', null, { timeout: 30_000 });
    const probs = await waitForPrediction(10);
    expect((await state(page)).model).toMatchObject({ source: 'keras-plain.h5 (imported from keras-h5)', activation: 'elu' });
    // The same weights under ELU: another map.
    expect(maxAbsError(probs, tiffProbs)).toBeGreaterThan(1e-3);
    await page.setInputFiles('#model-file', join(tmp, 'unet.onnx'));
    await page.waitForFunction(() => window.wgslUnetPage.state === 'error', null, { timeout: 30_000 });
    expect((await state(page)).errors).toEqual([expect.stringMatching(/unet\.onnx: the activation chosen, elu, conflicts with the model's own, relu/)]);
    expect((await state(page)).model!.activation).toBe('elu');
    await page.selectOption('#import-activation', '');
    await page.evaluate(() => void (window.wgslUnetPage.errors.length = 0));
    pageErrors.splice(0, pageErrors.length, ...pageErrors.filter((e) => !/conflicts with the model's own/.test(e)));
  });

  it('says plainly when the browser has no WebGPU', async () => {
    const bare = await browser!.context.newPage();
    await bare.addInitScript(() => {
      Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true });
    });
    await bare.goto(baseUrl);
    await bare.waitForFunction(() => window.wgslUnetPage?.state === 'no-webgpu', null, { timeout: 15_000 });
    const banner = bare.locator('#banner');
    expect(await banner.isVisible()).toBe(true);
    expect(await banner.innerText()).toMatch(/WebGPU is not available/);
    expect(await bare.locator('#train-start').isDisabled()).toBe(true);
    await bare.close();
  });

  it('had no errors in the page', () => {
    expect(pageErrors).toEqual([]);
  });

  it('bundles no Node modules into the browser builds', () => {
    const chunks = readdirSync(join(ROOT, 'dist/web/chunks')).filter((f) => f.endsWith('.js')).map((f) => `dist/web/chunks/${f}`);
    expect(chunks.length).toBeGreaterThan(0);
    for (const file of ['dist/browser/wgsl-unet.js', 'dist/web/app.js', ...chunks]) {
      const code = readFileSync(join(ROOT, file), 'utf8');
      expect(code.match(/(?:from|import|require)\s*\(?\s*["'](?:node:[\w/]+|fs|path|os|zlib|crypto|child_process)["']/g), file).toBeNull();
      expect(code.match(/\bprocess\.(?:env|argv|exit)\b/g), file).toBeNull();
    }
  });
});
