/**
 * Tuning the mixed-precision convolutions on a real adapter (the sandbox's
 * lavapipe, GPUs): every GEMM of a U-Net step is timed in each
 * configuration, keeps its fastest, and the planner then runs each GEMM as
 * the table says. Runs where the adapter has f16 subgroup matrices and
 * timestamp queries; WGSL_UNET_REQUIRE_MIXED=1 makes their absence a failure.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { blobBatch } from '../model/blobs.js';
import { createUNet } from '../../src/model/unet.js';
import { Adam } from '../../src/model/adam.js';
import { trainingLoss } from '../../src/model/trainer.js';
import { Tape, Tensor, conv2d } from '../../src/autograd/index.js';
import { tuneForTraining } from '../../src/model/tune.js';
import { type MmaChoice, TuningStoppedError, applyTuning, canRunMixed, convOverrides, describeTuning, mmaChoice, parseTuning, setConvOverrides, setPrecision, setTunedConvolutions, tuneConvolutions, tunedConvolutions, tuningRecord } from '../../src/ops/conv/index.js';

const SIZE = 16;
const required = process.env.WGSL_UNET_REQUIRE_MIXED === '1';
const gpu = await testGpu();

describe.runIf((canRunMixed(gpu) && gpu.hasTimestamps) || required)('tuning the mixed-precision convolutions', () => {
  afterEach(() => {
    setTunedConvolutions(gpu, null);
    setConvOverrides(gpu, { storage: undefined, mmaPrefetch: undefined });
    setPrecision(gpu, 'fp32');
  });

  it('times every GEMM of a step in each configuration, keeps the fastest, and the planner follows the table', async () => {
    setPrecision(gpu, 'mixed');
    setConvOverrides(gpu, { storage: 'f16' });
    const b = blobBatch(2, SIZE, 1);
    const x = Tensor.from(gpu, [2, SIZE, SIZE, 1], b.images);
    const y = Tensor.from(gpu, [2, SIZE, SIZE, 1], b.masks);
    const model = createUNet(gpu, { baseWidth: 4, inputSize: SIZE, seed: 5 });
    const adam = new Adam(model.parameters, {}, { initial: 2 ** 10 });
    const step = () => {
      model.parameters.zeroGrads();
      const tape = new Tape(gpu);
      const loss = tape.run(() => trainingLoss(model.forward(x), y, 'dice'));
      tape.backward(loss, adam.lossScaleSeed());
      tape.dispose();
      loss.dispose();
    };
    // The GEMM passes of one step, by label, with the device's table as it is.
    const gemmLabels = async () => {
      const labels: string[] = [];
      gpu.observer = { timestampWrites: (label) => void labels.push(label) };
      try {
        step();
      } finally {
        gpu.observer = null;
      }
      await gpu.sync();
      return labels.filter((l) => l.includes(', GEMM '));
    };
    const before = { ...convOverrides(gpu) };
    const planned = await gemmLabels();
    expect(planned.length).toBeGreaterThan(40);

    const report = await tuneConvolutions(gpu, step, { candidates: ['32x32x32', '64x64x32+tall'], reps: 1 });
    expect(report.configurations).toEqual(['planner', '32x32x32', '64x64x32+tall']);
    expect(convOverrides(gpu), 'the overrides as before').toEqual(before);
    // Each GEMM timed in every configuration, its best the fastest (the planner's on a tie), the table those not the planner's.
    for (const g of report.gemms) {
      expect(planned.some((l) => l.startsWith(`${g.label} [mma `)), `${g.label}: the op's label`).toBe(true);
      expect(Object.keys(g.ms).sort(), g.label).toEqual([...report.configurations].sort());
      for (const ms of Object.values(g.ms)) expect(ms, g.label).toBeGreaterThan(0);
      expect(g.ms[g.best], g.label).toBe(Math.min(...Object.values(g.ms)));
      expect(tunedConvolutions(gpu)?.get(g.key), g.label).toEqual(g.best === 'planner' ? undefined : mmaChoice(g.best));
    }
    expect(report.tunedMs).toBeLessThanOrEqual(report.plannerMs);
    expect(report.gemms.length).toBeGreaterThan(0);

    // A table naming every GEMM the tuner saw: every GEMM pass of the step runs as it says.
    const wide: MmaChoice = { ...mmaChoice('64x64x32+tall'), mmaTile: '64x64x32' };
    setTunedConvolutions(gpu, new Map(report.gemms.map((g) => [g.key, wide])));
    const tuned = await gemmLabels();
    expect(tuned).toHaveLength(planned.length);
    for (const l of tuned) expect(l).toMatch(/\[mma 64×64 4×2 a subgroup, GEMM /);
    setTunedConvolutions(gpu, null);
    expect(await gemmLabels()).toEqual(planned);
    x.dispose();
    y.dispose();
    model.dispose();
    adam.dispose();
  }, 600_000);

  it('leaves out a candidate whose step fails, saying why, and fails where the planner\'s own does', async () => {
    setPrecision(gpu, 'mixed');
    const x = Tensor.from(gpu, [2, 8, 8, 8], new Float32Array(2 * 8 * 8 * 8).fill(0.5));
    const w = Tensor.from(gpu, [3, 3, 8, 8], new Float32Array(9 * 64).fill(0.25));
    const b = Tensor.from(gpu, [8], new Float32Array(8));
    const conv = () => conv2d(x, w, b, 'relu').dispose();
    const report = await tuneConvolutions(gpu, () => {
      if (convOverrides(gpu).mmaTile === '32x32x32') throw new Error('no pipeline for this one');
      conv();
    }, { candidates: ['32x32x32', '64x64x32', '128x64x32'], reps: 1 });
    // 128x64x32 is the planner's own here (MMA_DEFAULT_TILE), timed once, as 'planner'.
    expect(report.configurations).toEqual(['planner', '64x64x32']);
    expect(report.failed).toEqual([{ name: '32x32x32', error: 'no pipeline for this one' }]);
    expect(report.gemms).toHaveLength(1);
    expect(describeTuning(report)).toMatch(/; left out, failing: 32x32x32 \(no pipeline for this one\)$/);
    await expect(tuneConvolutions(gpu, () => {
      throw new Error('nothing runs');
    }, { candidates: ['64x64x32'], reps: 1 })).rejects.toThrow('nothing runs');
    expect(convOverrides(gpu)).toEqual({});
    for (const t of [x, w, b]) t.dispose();
  }, 600_000);

  it('tunes for a training run on a throwaway model (train --tune), the overrides as before', async () => {
    setPrecision(gpu, 'mixed');
    setConvOverrides(gpu, { mmaPrefetch: true });
    const report = await tuneForTraining(gpu, { baseWidth: 4, inputSize: SIZE, batch: 2 }, 'bce-dice', { candidates: ['32x32x32'], reps: 1 });
    expect(convOverrides(gpu)).toEqual({ mmaPrefetch: true });
    expect(report.configurations).toEqual(['planner', '32x32x32']);
    // The step's GEMMs: the 23 convolutions' forward, ∂weights and (but the first layer's) ∂input, less those of one name.
    expect(report.gemms.length).toBeGreaterThan(40);
    const table = tunedConvolutions(gpu);
    expect([...(table?.keys() ?? [])]).toEqual(report.gemms.filter((g) => g.best !== 'planner').map((g) => g.key));
    console.log(describeTuning(report));
    // Kept as a file and read back, the record gives the planner the same table without measuring.
    const record = parseTuning(JSON.stringify(tuningRecord(gpu, report)), 'tuning.json');
    setTunedConvolutions(gpu, null);
    expect(applyTuning(gpu, record)).toEqual({ gemms: report.gemms.length, changed: table?.size ?? 0 });
    expect(tunedConvolutions(gpu)).toEqual(table);
    // Measured elsewhere: nothing applied, and why.
    setTunedConvolutions(gpu, null);
    expect(applyTuning(gpu, { ...record, adapter: 'another GPU' })).toEqual({ mismatch: expect.stringMatching(/^measured on another GPU, not on this adapter, .+/) });
    expect(tunedConvolutions(gpu)).toBeNull();
  }, 600_000);

  it('stops between configurations when asked, the overrides and the table as they were', async () => {
    setPrecision(gpu, 'mixed');
    setConvOverrides(gpu, { mmaPrefetch: true });
    const table = new Map([['some GEMM', mmaChoice('64x64x32') as MmaChoice]]);
    setTunedConvolutions(gpu, table);
    const timed: string[] = [];
    const stopped = tuneForTraining(gpu, { baseWidth: 2, inputSize: SIZE, batch: 2 }, 'dice', {
      candidates: ['32x32x32', '64x32x32'],
      reps: 1,
      onProgress: (_done, _total, name) => void (name && timed.push(name)),
      shouldStop: () => timed.length >= 1,
    });
    await expect(stopped).rejects.toThrow(TuningStoppedError);
    await expect(stopped).rejects.toThrow('tuning stopped after 1 of 3 configurations');
    expect(timed).toEqual(['planner']);
    expect(convOverrides(gpu)).toEqual({ mmaPrefetch: true });
    expect(tunedConvolutions(gpu)).toBe(table);
  }, 600_000);
});
