/**
 * The library's browser entry in headless Chromium (SwiftShader where there
 * is no GPU): a page imports the built dist/lib/browser.js as `wgsl-unet`
 * (an import map), makes a device on navigator.gpu and trains two
 * convolutions on the task of examples/tiny-net.mjs; the loss must fall.
 * Fewer, smaller steps than the example: SwiftShader took about half a
 * second for each of the example's. The files are served by request
 * interception on a localhost address (a secure context, as WebGPU needs),
 * so no server runs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Chromium, launchChromium } from '../browser/chromium.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const bundle = `${root}dist/lib/browser.js`;
const origin = 'http://localhost:47613';

// Bright 6 × 6 squares in uniform noise, marked by two 3 × 3 convolutions; the loss at steps 0 and 20.
const trainScript = `
import { Adam, ParameterStore, Rng, Tape, Tensor, conv2d, createGpu, diceLoss, formatAdapter, glorotUniformKeras } from 'wgsl-unet';
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
await gpu.close();
console.log('done');
`;

const page = `<!doctype html>
<script type="importmap">{ "imports": { "wgsl-unet": "/browser.js" } }</script>
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

  it('trains a small network from dist/lib/browser.js on navigator.gpu, and its loss falls', async () => {
    const files: Record<string, [string, string]> = {
      '/': ['text/html', page],
      '/browser.js': ['text/javascript', readFileSync(bundle, 'utf8')],
      '/train.mjs': ['text/javascript', trainScript],
    };
    const context = browser!.context;
    await context.route(`${origin}/**`, (route) => {
      const file = files[new URL(route.request().url()).pathname];
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
    await tab.close();
  });
});
