/**
 * GPU memory of the U-Net's training step and inference, per precision and
 * (in mixed precision) per storage of the activations: the peak of live
 * pooled bytes over one replayed step, with and without what stays live
 * between steps (the model, the optimiser and the batch). Memory does not
 * depend on speed, so this runs on any adapter in a few steps; on a
 * software adapter with f16 subgroup matrices (scripts/sandbox.sh) it gives
 * the mixed-precision figures a GPU would, up to the planner's per-device
 * choices (tiles, splits).
 *
 *   node dist/memory.js [--batch 32] [--size 96] [--width 32] [--json FILE]
 */
import { writeFileSync } from 'node:fs';
import { createNodeGpu } from '../src/gpu/node-gpu.js';
import { formatAdapter, type Gpu } from '../src/gpu/gpu.js';
import { parseArgs } from '../src/cli/args.js';
import { Tensor } from '../src/autograd/index.js';
import { createUNet } from '../src/model/unet.js';
import { Adam } from '../src/model/adam.js';
import { predictBatch, trainingStep } from '../src/model/trainer.js';
import { canRunMixed, setConvOverrides, setPrecision } from '../src/ops/conv/index.js';

const SPEC = {
  batch: { type: 'number' as const, help: 'images per step', default: 32 },
  size: { type: 'number' as const, help: 'input size of the U-Net', default: 96 },
  width: { type: 'number' as const, help: 'base width of the U-Net', default: 32 },
  json: { type: 'string' as const, help: 'write the results here' },
};

interface Entry {
  op: 'training_step' | 'inference';
  precision: 'fp32' | 'mixed';
  /** How activations and their gradients are stored. */
  storage: 'f32' | 'f16';
  batch: number;
  /** Live pooled memory at its highest, everything included. */
  peak_live_mib: number;
  /** The same less what stays live between steps: parameters, gradients, Adam's state, the batch. */
  peak_above_model_mib: number;
}

const MIB = 2 ** 20;

async function measure(gpu: Gpu, precision: 'fp32' | 'mixed', storage: 'f32' | 'f16', o: { batch: number; size: number; width: number }): Promise<Entry[]> {
  setPrecision(gpu, precision);
  setConvOverrides(gpu, { storage: precision === 'mixed' ? storage : undefined });
  await gpu.sync();
  // An empty pool: idle buffers sized for another configuration would serve (and count as) larger ones.
  gpu.trimPool();
  const model = createUNet(gpu, { baseWidth: o.width, inputSize: o.size });
  const adam = new Adam(model.parameters, { lr: 1e-5 }, precision === 'mixed');
  const pixels = o.batch * o.size * o.size;
  const x = Tensor.from(gpu, [o.batch, o.size, o.size, 1], Float32Array.from({ length: pixels }, (_, i) => Math.sin(i * 0.37)));
  const y = Tensor.from(gpu, [o.batch, o.size, o.size, 1], Float32Array.from({ length: pixels }, (_, i) => ((i % o.size) > o.size / 2 ? 1 : 0)));
  const step = () => {
    model.parameters.zeroGrads();
    trainingStep(model, adam, x, y).loss.dispose();
  };
  const entries: Entry[] = [];
  const peakOf = async (op: Entry['op'], run: () => void) => {
    // An idle buffer left by the step before may serve a smaller request, and counts as its own size.
    gpu.trimPool();
    run(); // captured; Adam's state made
    await gpu.sync();
    const base = gpu.memory().liveBytes;
    gpu.resetPeakMemory();
    run(); // replayed, as every later step
    await gpu.sync();
    const peak = gpu.memory().peakLiveBytes;
    entries.push({ op, precision, storage, batch: o.batch, peak_live_mib: peak / MIB, peak_above_model_mib: (peak - base) / MIB });
    console.log(`${op.padEnd(14)} ${precision.padEnd(6)} ${storage} activations: peak live ${(peak / MIB).toFixed(1)} MiB, ${((peak - base) / MIB).toFixed(1)} MiB above what stays live between steps`);
  };
  await peakOf('training_step', step);
  await peakOf('inference', () => predictBatch(model, x).dispose());
  for (const t of [x, y, model, adam]) t.dispose();
  setPrecision(gpu, 'fp32');
  setConvOverrides(gpu, { storage: undefined });
  return entries;
}

async function main(): Promise<void> {
  const { options } = parseArgs(process.argv.slice(2), SPEC);
  const o = { batch: options.batch as number, size: options.size as number, width: options.width as number };
  const gpu = await createNodeGpu({});
  try {
    console.log(`${formatAdapter(gpu.adapterInfo)}; batch ${o.batch}, ${o.size}², width ${o.width}`);
    const entries = await measure(gpu, 'fp32', 'f32', o);
    if (canRunMixed(gpu)) {
      entries.push(...(await measure(gpu, 'mixed', 'f16', o)));
      entries.push(...(await measure(gpu, 'mixed', 'f32', o)));
    } else {
      console.log('no f16 subgroup matrices on this adapter: fp32 only');
    }
    if (options.json) {
      writeFileSync(options.json as string, JSON.stringify({ adapter: gpu.adapterInfo, date: new Date().toISOString(), config: o, entries }, null, 2));
      console.log(`wrote ${options.json as string}`);
    }
  } finally {
    await gpu.close();
  }
}

await main();
