/**
 * The library's browser entry in headless Chromium (SwiftShader where there
 * is no GPU): a page imports the built dist/lib/browser.js as `wgsl-unet`
 * (an import map; its chunks beside it), makes a device on navigator.gpu
 * and trains two convolutions on the task of examples/tiny-net.mjs; the
 * loss must fall. Then a small U-Net's checkpoint goes out to ONNX, tfjs
 * and Keras files and back in through the library (HDF5's module mapped
 * as a bundler would resolve it): the maps must not change. Fewer, smaller
 * steps than the example: SwiftShader took about half a second for each of
 * the example's. The files are served by request
 * interception on a localhost address (a secure context, as WebGPU needs),
 * so no server runs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Chromium, launchChromium } from '../browser/chromium.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const bundle = `${root}dist/lib/browser.js`;
const h5wasmDir = `${root}node_modules/h5wasm/dist/esm/`;
const origin = 'http://localhost:47613';

// Bright 6 × 6 squares in uniform noise, marked by two 3 × 3 convolutions; the loss at steps 0 and 20.
const trainScript = `
import { Adam, CHECKPOINT_FORMAT, EXPORT_FORMATS, ParameterStore, Rng, Tape, Tensor, conv2d, createGpu, createUNet, decodeCheckpoint, diceLoss, encodeCheckpoint, exportModel, formatAdapter, glorotUniformKeras, importModel, loadWeights, predictProbabilities } from 'wgsl-unet';
const gpu = await createGpu();
console.log('adapter: ' + formatAdapter(gpu.adapterInfo));
const rng = new Rng(7), n = 8, size = 16;
const images = new Float32Array(n * size * size), masks = new Float32Array(n * size * size);
for (let i = 0; i < n; i++) {
  const top = rng.nextInt(size - 6), left = rng.nextInt(size - 6);
  for (let k = i * size * size, r = 0; r < size; r++)
    for (let c = 0; c < size; c++, k++) {
      masks[k] = r >= top && r < top + 6 && c >= left && c < left + 6 ? 1 : 0;
      images[k] = masks[k] + 2 * rng.next() - 1;
    }
}
const params = new ParameterStore();
for (const [name, shape] of [['conv1', [3, 3, 1, 8]], ['conv2', [3, 3, 8, 1]]]) {
  params.add(name + '/kernel', shape, glorotUniformKeras(shape, rng));
  params.add(name + '/bias', [shape[3]], 'zeros');
}
params.finalize(gpu);
const w = (name) => params.get(name), adam = new Adam(params, { lr: 0.05 });
const x = Tensor.from(gpu, [n, size, size, 1], images), y = Tensor.from(gpu, [n, size, size, 1], masks);
for (let step = 0; step <= 20; step++) {
  params.zeroGrads();
  const tape = new Tape(gpu);
  const loss = tape.run(() => diceLoss(conv2d(conv2d(x, w('conv1/kernel'), w('conv1/bias'), 'relu'), w('conv2/kernel'), w('conv2/bias'), 'sigmoid'), y));
  tape.backward(loss);
  adam.step();
  if (step % 20 === 0) console.log('step ' + step + ' loss ' + (await loss.read())[0].toFixed(4));
  tape.dispose();
}
// A small U-Net's checkpoint out to each format and back in: the maps of two frames, before and after.
const unet = createUNet(gpu, { baseWidth: 2, inputSize: 16, seed: 5 });
const meta = { format: CHECKPOINT_FORMAT, version: 'page', config: unet.config, normalization: { mean: 99.5, std: 52.1 }, epoch: 0, step: 0, metrics: {}, adapter: 'page', createdAt: new Date().toISOString() };
const ckpt = decodeCheckpoint(await encodeCheckpoint(unet, meta), 'page.safetensors');
const frames = Float32Array.from({ length: 2 * 16 * 16 }, () => 2 * rng.next() - 1);
const expected = await predictProbabilities(unet, frames, 2, 16, 2);
unet.dispose();
for (const format of EXPORT_FORMATS) {
  const back = await importModel(await exportModel(ckpt, format));
  const again = createUNet(gpu, back.checkpoint.meta.config);
  loadWeights(again, back.checkpoint, format);
  const maps = await predictProbabilities(again, frames, 2, 16, 2);
  again.dispose();
  console.log(format + ' read back as ' + back.format + ', max difference ' + maps.reduce((m, v, i) => Math.max(m, Math.abs(v - expected[i])), 0));
}
await gpu.close();
console.log('done');
`;

const page = `<!doctype html>
<script type="importmap">{ "imports": { "wgsl-unet": "/browser.js", "h5wasm": "/h5wasm/hdf5_hl.js" } }</script>
<script type="module" src="/train.mjs"></script>`;

describe('the browser entry', () => {
  let browser: Chromium | null = null;

  beforeAll(async () => {
    if (!existsSync(bundle)) throw new Error(`${bundle} is missing: run \`node build.mjs\` (npm test does) first`);
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
  });

  it('trains a small network from dist/lib/browser.js on navigator.gpu, and its loss falls; a U-Net goes to ONNX, tfjs and Keras files and back unchanged', async () => {
    const files: Record<string, [string, string]> = {
      '/': ['text/html', page],
      '/browser.js': ['text/javascript', readFileSync(bundle, 'utf8')],
      '/train.mjs': ['text/javascript', trainScript],
    };
    const context = browser!.context;
    await context.route(`${origin}/**`, (route) => {
      // The entry's chunks, which it imports by relative paths, from dist/lib/chunks.
      const path = new URL(route.request().url()).pathname;
      const chunk = /^\/chunks\/[\w.-]+\.js$/.test(path) && existsSync(`${root}dist/lib${path}`) ? ['text/javascript', readFileSync(`${root}dist/lib${path}`, 'utf8')] as [string, string] : undefined;
      // HDF5, which the Keras formats' chunk imports as \`h5wasm\`: the package's ES module and the files beside it.
      const h5 = /^\/h5wasm\/[\w.-]+\.js$/.test(path) && existsSync(`${h5wasmDir}${path.slice(8)}`) ? ['text/javascript', readFileSync(`${h5wasmDir}${path.slice(8)}`, 'utf8')] as [string, string] : undefined;
      const file = files[path] ?? chunk ?? h5;
      return file ? route.fulfill({ contentType: file[0], body: file[1] }) : route.fulfill({ status: 404, body: 'not found' });
    });
    const tab = await context.newPage();
    const lines: string[] = [];
    const errors: string[] = [];
    tab.on('console', (m) => void lines.push(m.text()));
    tab.on('pageerror', (e) => void errors.push(e.stack ?? e.message));
    const finished = new Promise<void>((done) => tab.on('console', (m) => void (m.text() === 'done' && done())));
    const failed = new Promise<never>((_, fail) => tab.on('pageerror', (e) => fail(new Error(`the page failed: ${e.stack ?? e.message}\n${lines.join('\n')}`))));
    await tab.goto(`${origin}/`);
    await Promise.race([finished, failed]);
    expect(errors).toEqual([]);
    console.log(lines.join('\n'));
    const losses = lines.flatMap((l) => /^step \d+ loss (-?\d+\.\d+)$/.exec(l)?.[1] ?? []).map(Number);
    expect(losses.length).toBe(2);
    expect(losses.at(-1)!).toBeLessThan(losses[0]! - 0.3);
    // Every format read back gives the checkpoint's maps exactly.
    expect(lines.filter((l) => / read back as /.test(l))).toEqual(['onnx read back as onnx, max difference 0', 'tfjs read back as tfjs, max difference 0', 'keras-h5 read back as keras-h5, max difference 0']);
    await tab.close();
  });
});
