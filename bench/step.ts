/**
 * One full training step of the tutorial's U-Net (forward, backward, Adam),
 * ours against the same model in tfjs-layers on tfjs-backend-webgpu, on the
 * same adapter in the same run. Reports images/s and our peak GPU memory.
 */
import type * as tfType from '@tensorflow/tfjs-core';
import type { Gpu } from '../src/gpu/gpu.js';
import { Tensor } from '../src/autograd/index.js';
import { type ImageSet, Trainer, predictBatch, trainingStep } from '../src/model/trainer.js';
import { Adam } from '../src/model/adam.js';
import { type UNet, createUNet } from '../src/model/unet.js';
import { type Sample, type TfjsWebgpu, type Timing, sample, timeIt, timePaired } from './harness.js';
import { kerasDiceLoss, kerasUNet } from './tfjs-unet.js';
import { GpuTimer } from '../src/gpu/timer.js';
import { measureDispatchFloor } from './dispatch-floor.js';
import { type TuneOptions, type TuneReport, describeTuning, tuneConvolutions } from '../src/ops/conv/tune.js';

/** Training images per epoch in the tutorial's recipe (80 % of the 5,635 frames). */
export const TUTORIAL_TRAIN_IMAGES = 4508;

export interface StepResult {
  samples: Sample[];
  /** Highest bytes held by live tensors during a step, and the pool's total after it. */
  peakLiveBytes: number;
  poolBytes: number;
  /** Where one step's GPU time goes (timestamp queries), when the adapter has them. */
  profile?: StepProfile;
}

export interface StepProfile {
  dispatches: number;
  gpu_ms: number;
  /** GPU time per op (the first word of a dispatch's label), largest first. */
  byOp: { op: string; dispatches: number; gpu_ms: number }[];
  /**
   * Every dispatch in recording order: its label (shapes, the shader and tile
   * of a convolution, its splits) and GPU time. Timestamps on some adapters
   * are quantised (65.5 µs steps were seen on NVIDIA through Vulkan): sums
   * over many dispatches mean more than one dispatch's figure.
   */
  passes: { label: string; gpu_ms: number }[];
}

/** Records one training step as the trainer does (forward, Dice loss, backward, Adam; replayed after the first) without waiting. */
function stepRecorder(model: UNet, adam: Adam, xs: Tensor, ys: Tensor): () => void {
  return () => {
    model.parameters.zeroGrads();
    trainingStep(model, adam, xs, ys).loss.dispose();
  };
}

function batch(n: number, size: number): { x: Float32Array; y: Float32Array } {
  const x = new Float32Array(n * size * size);
  const y = new Float32Array(n * size * size);
  for (let i = 0; i < x.length; i++) {
    x[i] = Math.sin(i * 0.37);
    y[i] = (i % (size * size)) % size > size / 2 ? 1 : 0;
  }
  return { x, y };
}

/** Median host time of `record` over `reps` calls, the GPU drained before each. */
async function recordTime(gpu: Gpu, record: () => void, reps: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    await gpu.sync();
    const t0 = performance.now();
    record();
    times.push(performance.now() - t0);
  }
  await gpu.sync();
  return times.sort((a, b) => a - b)[times.length >> 1]!;
}

/**
 * Per-step time of `chain` steps run back to back with one wait for the GPU
 * at the end (median over `reps` chains): the rate of a training loop that,
 * like the trainer, does not wait for each step's loss before recording the
 * next. `record` records one step; `finish` waits for everything recorded.
 */
async function timeChained(record: () => void, finish: () => Promise<void>, chain: number, reps: number): Promise<Timing> {
  const t = await timeIt(async () => {
    for (let i = 0; i < chain; i++) record();
    await finish();
  }, reps, 0);
  return { median: t.median / chain, min: t.min / chain, max: t.max / chain };
}

export async function benchTrainingStep(gpu: Gpu, peer: TfjsWebgpu, opts: { batch: number; reps: number; baseWidth: number; size: number; chain: number }): Promise<StepResult> {
  const { tf } = peer;
  const { batch: n, size, baseWidth } = opts;
  const label = `batch ${n}, ${size}x${size}, width ${baseWidth}`;
  const flops = 3 * forwardFlops(baseWidth, size) * n; // backward ≈ 2 × forward
  const { x, y } = batch(n, size);

  // Measured from an empty pool: idle buffers left by other cases (the kernel
  // suite's) would serve the step's requests at their larger capacities and
  // inflate its peak.
  await gpu.sync();
  gpu.trimPool();
  const model = createUNet(gpu, { baseWidth, inputSize: size });
  const adam = new Adam(model.parameters, { lr: 1e-5 });
  const xs = Tensor.from(gpu, [n, size, size, 1], x);
  const ys = Tensor.from(gpu, [n, size, size, 1], y);
  const recordStep = stepRecorder(model, adam, xs, ys);
  const ourStep = async () => {
    recordStep();
    await gpu.sync();
  };
  await ourStep(); // compiles every pipeline and fills the pool
  gpu.resetPeakMemory();

  const { model: keras } = kerasUNet(baseWidth, size);
  const optimizer = tf.train.adam(1e-5, 0.9, 0.999, 1e-7);
  const tx = tf.tensor4d(x, [n, size, size, 1]);
  const ty = tf.tensor4d(y, [n, size, size, 1]);
  const recordTheirs = () => optimizer.minimize(() => kerasDiceLoss(ty, keras.apply(tx, { training: true }) as tfType.Tensor), true);
  const theirStep = async () => {
    const loss = recordTheirs();
    await peer.finish();
    loss?.dispose();
  };
  await theirStep();
  // Alternated, so that a load that comes and goes on a shared machine slows
  // both sides of a pair rather than one side of the comparison.
  const paired = await timePaired(ourStep, theirStep, opts.reps, 0);
  const [tOurs, tTheirs] = [paired.a, paired.b];
  const mem = gpu.memory();
  const profile = gpu.hasTimestamps ? await profileStep(gpu, ourStep) : undefined;
  const chainedOurs = opts.chain > 1 ? await timeChained(recordStep, () => gpu.sync(), opts.chain, opts.reps) : undefined;
  xs.dispose();
  ys.dispose();
  model.dispose();
  adam.dispose();
  let chainedTheirs: Timing | undefined;
  if (opts.chain > 1) {
    const losses: tfType.Scalar[] = [];
    chainedTheirs = await timeChained(
      () => {
        const loss = recordTheirs();
        if (loss) losses.push(loss);
      },
      async () => {
        await peer.finish();
        tf.dispose(losses.splice(0));
      },
      opts.chain,
      opts.reps,
    );
  }
  tx.dispose();
  ty.dispose();
  keras.dispose();
  optimizer.dispose();

  const rate = (t: { median: number }) => n / (t.median / 1000);
  const stepSample = (op: string, what: string, impl: string, t: Timing) =>
    ({ ...sample(op, what, impl, flops, t, opts.reps), images_per_s: rate(t), epoch_s: TUTORIAL_TRAIN_IMAGES / rate(t) }) as Sample & { epoch_s: number };
  const ours = stepSample('training_step', label, 'ours', tOurs);
  const theirs = { ...stepSample('training_step', label, 'tfjs-webgpu (tfjs-layers)', tTheirs), paired_ratio: paired.ratio };
  console.error(
    `  training step ${label}: ours ${rate(tOurs).toFixed(2)} images/s, tfjs-layers ${rate(tTheirs).toFixed(2)} images/s, ×${paired.ratio.toFixed(2)} (paired); ` +
      `an epoch of the tutorial (${TUTORIAL_TRAIN_IMAGES} images) ${ours.epoch_s.toFixed(0)} s against ${theirs.epoch_s.toFixed(0)} s; peak live GPU memory ${(mem.peakLiveBytes / 2 ** 20).toFixed(1)} MiB`,
  );
  const samples = [ours, theirs];
  if (chainedOurs && chainedTheirs) {
    const what = `${label}, ${opts.chain} steps back to back`;
    samples.push(stepSample('training_step_chained', what, 'ours', chainedOurs), stepSample('training_step_chained', what, 'tfjs-webgpu (tfjs-layers)', chainedTheirs));
    console.error(
      `  ${opts.chain} training steps back to back, one wait at the end: ours ${rate(chainedOurs).toFixed(2)} images/s, tfjs-layers ${rate(chainedTheirs).toFixed(2)} images/s, ×${(chainedTheirs.median / chainedOurs.median).toFixed(2)}; ` +
        `an epoch of ${TUTORIAL_TRAIN_IMAGES} images ${(TUTORIAL_TRAIN_IMAGES / rate(chainedOurs)).toFixed(1)} s against ${(TUTORIAL_TRAIN_IMAGES / rate(chainedTheirs)).toFixed(1)} s`,
    );
  }
  if (profile) {
    const top = profile.byOp.slice(0, 12).map((o) => `${o.op} ${o.gpu_ms.toFixed(2)} ms (${o.dispatches})`).join(', ');
    console.error(`  one step, ours: ${profile.dispatches} dispatches, ${profile.gpu_ms.toFixed(2)} ms of GPU time against ${tOurs.median.toFixed(2)} ms of wall time; by op: ${top}`);
  }
  return { samples, peakLiveBytes: mem.peakLiveBytes, poolBytes: mem.liveBytes + mem.freeBytes, profile };
}

/** One step with a timestamp on every pass, summed by op. */
async function profileStep(gpu: Gpu, step: () => Promise<void>): Promise<StepProfile> {
  const timer = new GpuTimer(gpu);
  try {
    const passes = await timer.passesOf(step);
    const byOp = new Map<string, { op: string; dispatches: number; gpu_ms: number }>();
    for (const p of passes) {
      const op = p.label.split(' ')[0]!.replace(/:$/, '');
      const o = byOp.get(op) ?? { op, dispatches: 0, gpu_ms: 0 };
      o.dispatches++;
      o.gpu_ms += p.ms;
      byOp.set(op, o);
    }
    return {
      dispatches: passes.length,
      gpu_ms: passes.reduce((s, p) => s + p.ms, 0),
      byOp: [...byOp.values()].sort((a, b) => b.gpu_ms - a.gpu_ms),
      passes: passes.map((p) => ({ label: p.label, gpu_ms: p.ms })),
    };
  } finally {
    timer.destroy();
  }
}

/** Inference of one batch (forward pass only), ours against tfjs-layers' predict on tfjs-webgpu. */
export async function benchInference(gpu: Gpu, peer: TfjsWebgpu, opts: { batch: number; reps: number; baseWidth: number; size: number }): Promise<Sample[]> {
  const { tf } = peer;
  const { batch: n, size, baseWidth } = opts;
  const label = `batch ${n}, ${size}x${size}, width ${baseWidth}`;
  const flops = forwardFlops(baseWidth, size) * n;
  const { x } = batch(n, size);
  const model = createUNet(gpu, { baseWidth, inputSize: size });
  const xs = Tensor.from(gpu, [n, size, size, 1], x);
  const { model: keras } = kerasUNet(baseWidth, size);
  const tx = tf.tensor4d(x, [n, size, size, 1]);
  const { a: tOurs, b: tTheirs, ratio } = await timePaired(
    async () => {
      predictBatch(model, xs).dispose();
      await gpu.sync();
    },
    async () => {
      const y = keras.predict(tx) as tfType.Tensor;
      await peer.finish();
      y.dispose();
    },
    opts.reps,
  );
  xs.dispose();
  model.dispose();
  tx.dispose();
  keras.dispose();
  console.error(`  inference ${label}: ours ${(n / (tOurs.median / 1000)).toFixed(2)} images/s, tfjs-layers ${(n / (tTheirs.median / 1000)).toFixed(2)} images/s, ×${ratio.toFixed(2)} (paired)`);
  return [
    { ...sample('inference', label, 'ours', flops, tOurs, opts.reps), images_per_s: n / (tOurs.median / 1000) },
    { ...sample('inference', label, 'tfjs-webgpu (tfjs-layers)', flops, tTheirs, opts.reps), images_per_s: n / (tTheirs.median / 1000), paired_ratio: ratio },
  ];
}

/** Multiply-adds × 2 of one forward pass of one image. */
export function forwardFlops(w: number, s: number): number {
  let f = 0;
  const conv = (hw: number, ci: number, co: number, k = 3) => (f += 2 * hw * hw * k * k * ci * co);
  let c = 1;
  for (let level = 0; level < 5; level++) {
    const hw = s >> level;
    const co = w << level;
    conv(hw, c, co);
    conv(hw, co, co);
    c = co;
  }
  for (let level = 3; level >= 0; level--) {
    const hw = s >> level;
    const co = w << level;
    f += 2 * (hw / 2) * (hw / 2) * c * 4 * co; // transposed conv
    conv(hw, 2 * co, co);
    conv(hw, co, co);
    c = co;
  }
  conv(s, w, 1, 1);
  return f;
}

/**
 * Per-step time of the trainer's epoch loop (Trainer.trainEpoch) over
 * `batches` batches of fresh data (median over `reps` epochs), `inFlight`
 * steps recorded ahead of the loss awaited: what training_step_chained
 * leaves out, each batch gathered and uploaded and each step's loss read
 * back while later steps run.
 */
async function timeTrainerLoop(model: UNet, adam: Adam, n: number, size: number, batches: number, reps: number, inFlight: number): Promise<Timing> {
  const { x, y } = batch(batches * n, size);
  const set: ImageSet = { images: x, masks: y, count: batches * n, size };
  const order = Int32Array.from({ length: set.count }, (_, i) => i);
  const trainer = new Trainer(model, adam, n);
  trainer.stepsInFlight = inFlight;
  await trainer.trainEpoch(set, order, 1); // the batch shapes captured for replay
  const t = await timeIt(async () => {
    await trainer.trainEpoch(set, order, 1);
  }, reps, 0);
  return { median: t.median / batches, min: t.min / batches, max: t.max / batches };
}

/**
 * Our training step and inference alone, in the device's current precision
 * (set by the caller): the step waited for and `chain` steps back to back,
 * the host time to record one step (what the CPU must keep under the GPU's
 * time), the trainer's loop, one profiled step, peak memory, and inference
 * waited for and back to back. Samples carry `precision` and `batch`.
 */
export async function benchOurStep(gpu: Gpu, precision: string, opts: { batch: number; reps: number; baseWidth: number; size: number; chain: number; tag?: string; tune?: TuneOptions }): Promise<{ samples: Sample[]; peakLiveBytes: number; poolBytes: number; profile?: StepProfile; tuning?: TuneReport }> {
  const { batch: n, size, baseWidth } = opts;
  const label = `batch ${n}, ${size}x${size}, width ${baseWidth}`;
  const flops = 3 * forwardFlops(baseWidth, size) * n;
  const { x, y } = batch(n, size);
  await gpu.sync();
  gpu.trimPool();
  const model = createUNet(gpu, { baseWidth, inputSize: size });
  // Mixed precision trains as the CLI does: with dynamic loss scaling.
  const adam = new Adam(model.parameters, { lr: 1e-5 }, precision === 'mixed');
  const xs = Tensor.from(gpu, [n, size, size, 1], x);
  const ys = Tensor.from(gpu, [n, size, size, 1], y);
  const recordStep = stepRecorder(model, adam, xs, ys);
  const infer = () => predictBatch(model, xs).dispose();
  await gpu.sync();
  recordStep();
  await gpu.sync();
  // With tune: each GEMM in the configuration it runs this step fastest in (the tuner's table), kept for the timings below.
  const tuning = opts.tune ? await tuneConvolutions(gpu, recordStep, opts.tune) : undefined;
  if (tuning) console.error(`    ${describeTuning(tuning)}`);
  gpu.resetPeakMemory();
  const waited = await timeIt(async () => {
    recordStep();
    await gpu.sync();
  }, opts.reps);
  const mem = gpu.memory();
  // Host time of recording alone, the GPU drained before each: replayed as
  // the trainer does, and traced (every op's code run) for comparison.
  const recordMs = await recordTime(gpu, recordStep, Math.max(opts.reps, 9));
  // Dawn's own cost of as many dispatches (dispatch-floor.ts): what our recording is to approach.
  const before = gpu.dispatchCount;
  recordStep();
  const stepDispatches = gpu.dispatchCount - before;
  await gpu.sync();
  const floorMs = await measureDispatchFloor(gpu, stepDispatches, Math.max(opts.reps, 9));
  // The same, submitting every 16 dispatches instead of ever fewer.
  const schedule = gpu.submitSchedule;
  gpu.submitSchedule = { first: 16, max: 16 };
  const recordEvery16Ms = await recordTime(gpu, recordStep, Math.max(opts.reps, 9));
  gpu.submitSchedule = schedule;
  gpu.replayEnabled = false;
  const tracedMs = await recordTime(gpu, recordStep, Math.max(opts.reps, 9));
  gpu.replayEnabled = true;
  const profile = gpu.hasTimestamps ? await profileStep(gpu, async () => {
    recordStep();
    await gpu.sync();
  }) : undefined;
  const chained = await timeChained(recordStep, () => gpu.sync(), Math.max(1, opts.chain), opts.reps);
  // The trainer's own loop over as many batches (each uploaded, its loss read back while later steps run), with 1 and 2 steps in flight.
  const loops = [];
  for (const inFlight of [1, 2]) loops.push({ inFlight, t: await timeTrainerLoop(model, adam, n, size, Math.max(1, opts.chain), opts.reps, inFlight) });
  const inferWaited = await timeIt(async () => {
    infer();
    await gpu.sync();
  }, opts.reps);
  const inferChained = await timeChained(infer, () => gpu.sync(), Math.max(1, opts.chain), opts.reps);
  const scaling = await adam.lossScaleStatus();
  if (scaling) console.error(`    loss scale ${scaling.scale}, ${scaling.skipped} of ${adam.t} steps skipped for infinite or NaN gradients`);
  xs.dispose();
  ys.dispose();
  model.dispose();
  adam.dispose();

  const impl = `ours${opts.tag ? ` (${opts.tag})` : ''}`;
  const rate = (t: Timing) => n / (t.median / 1000);
  const extra = { precision, batch: n };
  const samples: Sample[] = [
    { ...sample('training_step', label, impl, flops, waited, opts.reps), images_per_s: rate(waited), epoch_s: TUTORIAL_TRAIN_IMAGES / rate(waited), record_ms: recordMs, record_floor_ms: floorMs, step_dispatches: stepDispatches, record_every16_ms: recordEvery16Ms, record_traced_ms: tracedMs, ...(profile ? { gpu_ms: profile.gpu_ms } : {}), ...extra },
    { ...sample('training_step_chained', `${label}, ${opts.chain} back to back`, impl, flops, chained, opts.reps), images_per_s: rate(chained), ...extra },
    ...loops.map(({ inFlight, t }) => ({ ...sample('training_loop', `${label}, ${opts.chain} batches through Trainer.trainEpoch, ${inFlight} in flight`, impl, flops, t, opts.reps), images_per_s: rate(t), steps_in_flight: inFlight, ...extra })),
    { ...sample('inference', label, impl, flops / 3, inferWaited, opts.reps), images_per_s: rate(inferWaited), ...extra },
    { ...sample('inference_chained', `${label}, ${opts.chain} back to back`, impl, flops / 3, inferChained, opts.reps), images_per_s: rate(inferChained), ...extra },
  ];
  console.error(
    `  ${impl} ${precision}, ${label}: training ${rate(waited).toFixed(0)} images/s waited, ${rate(chained).toFixed(0)} back to back, ${loops.map(({ inFlight, t }) => `${rate(t).toFixed(0)} in the trainer's loop with ${inFlight} in flight`).join(', ')}; ` +
      `recording a step ${recordMs.toFixed(2)} ms of host time replayed (Dawn's floor for its ${stepDispatches} dispatches ${floorMs.toFixed(2)} ms; ${recordEvery16Ms.toFixed(2)} ms submitting every 16 dispatches), ${tracedMs.toFixed(2)} ms traced${profile ? `, ${profile.gpu_ms.toFixed(2)} ms of GPU time in ${profile.dispatches} dispatches` : ''}; ` +
      `inference ${rate(inferWaited).toFixed(0)} images/s waited, ${rate(inferChained).toFixed(0)} back to back; peak live ${(mem.peakLiveBytes / 2 ** 20).toFixed(1)} MiB`,
  );
  if (profile) {
    const top = profile.byOp.slice(0, 10).map((o) => `${o.op} ${o.gpu_ms.toFixed(2)} ms (${o.dispatches})`).join(', ');
    console.error(`    by op: ${top}`);
  }
  return { samples, peakLiveBytes: mem.peakLiveBytes, poolBytes: mem.liveBytes + mem.freeBytes, profile, tuning };
}
