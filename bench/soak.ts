/**
 * Soak: trains a tiny U-Net for many steps (3,000 by default) through the
 * trainer the CLI uses, and prints, every --every steps, the GPU pool's live
 * and pooled bytes, the buffers it has ever created, and the process's RSS.
 * After the second step none of them should grow: the last line says
 * whether they stayed flat. A script with printed figures, not a timed test.
 *   node dist/soak.js [--steps N] [--every N] [--precision fp32|mixed]
 */
import { parseArgs } from 'node:util';
import { createNodeGpu } from '../src/gpu/node-gpu.js';
import { tuneForSoftwareAdapter } from '../src/software/platform.js';
import { formatAdapter } from '../src/gpu/gpu.js';
import { type Precision, defaultPrecision, setPrecision } from '../src/ops/conv/index.js';
import { createUNet } from '../src/model/unet.js';
import { Adam } from '../src/model/adam.js';
import { Trainer, type ImageSet } from '../src/model/trainer.js';
import { Rng } from '../src/model/rng.js';

const { values } = parseArgs({ options: { steps: { type: 'string', default: '3000' }, every: { type: 'string', default: '300' }, precision: { type: 'string' } } });
const steps = Number(values.steps);
const every = Number(values.every);
if (!Number.isInteger(steps) || steps < 3 || !Number.isInteger(every) || every < 1) throw new Error('--steps must be an integer ≥ 3 and --every an integer ≥ 1');

const SIZE = 16;
const BATCH = 4;
const gpu = await createNodeGpu();
const precision = (values.precision ?? defaultPrecision(gpu)) as Precision;
setPrecision(gpu, precision);
tuneForSoftwareAdapter(gpu);
console.log(`adapter: ${formatAdapter(gpu.adapterInfo)}; precision ${precision}; ${steps} steps of batch ${BATCH}, ${SIZE}×${SIZE}, base width 4`);

// Noisy disks and their masks: enough for the model to learn something.
const n = 32;
const rng = new Rng(7);
const images = new Float32Array(n * SIZE * SIZE);
const masks = new Float32Array(n * SIZE * SIZE);
for (let b = 0; b < n; b++) {
  const cy = 4 + 8 * rng.next();
  const cx = 4 + 8 * rng.next();
  for (let i = 0; i < SIZE * SIZE; i++) {
    const inside = Math.hypot((i / SIZE | 0) - cy, (i % SIZE) - cx) < 3 ? 1 : 0;
    masks[b * SIZE * SIZE + i] = inside;
    images[b * SIZE * SIZE + i] = inside - 0.5 + 0.3 * (rng.next() - 0.5);
  }
}
const set: ImageSet = { images, masks, count: n, size: SIZE };
const model = createUNet(gpu, { baseWidth: 4, inputSize: SIZE, seed: 1 });
const adam = new Adam(model.parameters, { lr: 1e-3 }, precision === 'mixed');
const trainer = new Trainer(model, adam, BATCH);
const rows = Int32Array.from({ length: n }, (_, i) => i);

interface Reading { step: number; live: number; pooled: number; created: number; rss: number; loss: number }
const readings: Reading[] = [];
const mib = (b: number) => (b / 2 ** 20).toFixed(2);
let step = 0;
let epoch = 0;
while (step < steps) {
  epoch++;
  await trainer.trainEpoch(set, rows, epoch, (r) => {
    step++;
    if (step === 2 || step % every === 0 || step === steps) {
      const m = gpu.memory();
      readings.push({ step, live: m.liveBytes, pooled: m.liveBytes + m.freeBytes, created: m.created, rss: process.memoryUsage().rss, loss: r.loss });
    }
  }, () => step >= steps);
}
await gpu.sync();
for (const r of readings) {
  console.log(`step ${String(r.step).padStart(6)}: live ${mib(r.live)} MiB, pooled ${mib(r.pooled)} MiB, buffers created ${r.created}, RSS ${mib(r.rss)} MiB, loss ${r.loss.toFixed(4)}`);
}
const second = readings[0]!;
const last = readings.at(-1)!;
const gpuFlat = readings.every((r) => r.live <= second.live && r.pooled <= second.pooled && r.created === second.created);
// RSS settles over the first hundreds of steps (code compiled, heaps sized): its growth is shown over the second half.
const base = readings.find((r) => r.step >= steps / 2) ?? second;
const rssGrowth = last.rss - base.rss;
console.log(
  `after step 2: GPU memory ${gpuFlat ? 'flat' : 'GREW'} (live ${mib(second.live)} → ${mib(last.live)} MiB, pooled ${mib(second.pooled)} → ${mib(last.pooled)} MiB, buffers created ${second.created} → ${last.created}); ` +
    `RSS from step ${base.step} to ${last.step}: ${rssGrowth >= 0 ? '+' : ''}${mib(rssGrowth)} MiB`,
);
model.dispose();
adam.dispose();
await gpu.close();
process.exitCode = gpuFlat ? 0 : 1;
