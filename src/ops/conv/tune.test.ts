/**
 * The tuner's parts that need no GPU: the names of configurations, how a
 * GEMM is named in the table, how the planner reads the table, and how the
 * fastest configuration is picked from measured times. Tuning itself runs
 * on an adapter in test/mixed/tune.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { type ConvCaps, type GemmShape, type MmaChoice, Mode, gemmKey, planGemm } from './plan.js';
import { setPrecision, tunedConvolutions } from './device.js';
import { formatAdapter } from '../../gpu/gpu.js';
import { TUNE_CANDIDATES, TUNING_FORMAT, type TuningRecord, applyTuning, describeTuning, fastest, mmaChoice, parseTuning, tuneConvolutions } from './tune.js';
import type { Gpu } from '../../gpu/gpu.js';

const limits = { maxComputeWorkgroupsPerDimension: 65535, maxStorageBufferBindingSize: 2 ** 31 - 4, maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 1024 };
const h200 = (precision: 'fp32' | 'mixed', tuned?: ReadonlyMap<string, MmaChoice>): ConvCaps => ({
  software: false, subgroups: { min: 32, max: 32 }, matrix: { M: 16, N: 16, K: 16 }, precision, limits, overrides: {}, ...(tuned ? { tuned } : {}),
});
const forward = (n: number, h: number, ci: number, co: number): GemmShape => ({
  mode: Mode.ConvForward, batch: n, h, w: h, aC: ci, kh: 3, kw: 3, pad: 1, bC: co, m: n * h * h, n: co, k: 9 * ci,
  activation: 'relu', bias: true, aBytes: 2 * n * h * h * ci, bBytes: 4 * 9 * ci * co, f16: true,
});
const choice = (name: string) => mmaChoice(name) as MmaChoice;

describe('configuration names', () => {
  it('reads a tile with its flags, every key set', () => {
    expect(mmaChoice('64x128x32+tall+prefetch')).toEqual({ mmaTile: '64x128x32', mmaPrefetch: true, mmaTall: true, mmaWide: undefined, mmaStepDecode: undefined, splitK: undefined });
    expect(mmaChoice('128x64x32+perquad+splitk')).toEqual({ mmaTile: '128x64x32', mmaPrefetch: undefined, mmaTall: undefined, mmaWide: undefined, mmaStepDecode: false, splitK: true });
    expect(mmaChoice('128x128x32+tall+db')).toMatchObject({ mmaTile: '128x128x32', mmaTall: true, mmaDoubleBuffer: true });
    expect(mmaChoice('128x32x32+directb')).toMatchObject({ mmaTile: '128x32x32', mmaDirectB: true });
    for (const bad of ['96x64x32', '128x64x32+fast', '128x64x32+wide+wide', '']) expect(() => mmaChoice(bad), bad).toThrow(/unknown mixed-precision configuration/);
  });

  it('lists candidates that all parse and are all different', () => {
    for (const c of TUNE_CANDIDATES) expect(mmaChoice(c).mmaTile).not.toBe('auto');
    expect(new Set(TUNE_CANDIDATES.map((c) => JSON.stringify(mmaChoice(c)))).size).toBe(TUNE_CANDIDATES.length);
  });
});

describe('the table', () => {
  it('names two GEMMs alike only where every size and flag is alike', () => {
    const g = forward(32, 48, 64, 64);
    expect(gemmKey({ ...g })).toBe(gemmKey(g));
    const variants: Partial<GemmShape>[] = [
      { batch: 16, m: 16 * 48 * 48 }, { aC: 32 }, { n: 32, bC: 32 }, { activation: 'none' }, { accumulate: true }, { bias: false },
      { mask: true }, { f16: false }, { aBytes: 8 }, { pad: 0 }, { mode: Mode.ConvInput },
    ];
    const keys = new Set([gemmKey(g), ...variants.map((v) => gemmKey({ ...g, ...v }))]);
    expect(keys.size).toBe(variants.length + 1);
  });

  it('gives the GEMMs it names their configuration and leaves the others to the planner', () => {
    const tuned = forward(32, 48, 64, 64);
    const other = forward(32, 24, 128, 128);
    const table = new Map([[gemmKey(tuned), choice('64x128x32+tall')]]);
    const plan = planGemm(h200('mixed', table), tuned);
    const plain = planGemm(h200('mixed'), tuned);
    if (plan.kind !== 'gemm' || plain.kind !== 'gemm') throw new Error('expected GEMM plans');
    expect(plain.tile).toEqual({ rows: 128, cols: 64 });
    expect(plan.tile).toEqual({ rows: 64, cols: 128 });
    expect(plan.shader.defines).toMatchObject({ WM: 4, WN: 2, TK: 32 });
    expect(planGemm(h200('mixed', table), other)).toEqual(planGemm(h200('mixed'), other));
    // The table is mixed precision's: an fp32 GEMM of the same sizes keeps the tiled shader's plan.
    const fp32 = { ...tuned, f16: false };
    const fp32Table = new Map([[gemmKey(fp32), choice('64x128x32+tall')]]);
    expect(planGemm(h200('fp32', fp32Table), fp32)).toEqual(planGemm(h200('fp32'), fp32));
  });

  it('splits the reduction of a GEMM whose configuration says splitk', () => {
    const deep = forward(32, 6, 512, 512);
    const plan = planGemm(h200('mixed', new Map([[gemmKey(deep), choice('128x64x32+splitk')]])), deep);
    if (plan.kind !== 'gemm') throw new Error('expected a GEMM plan');
    expect(plan.splits?.count).toBeGreaterThan(1);
    expect(planGemm(h200('mixed'), deep)).not.toHaveProperty('splits');
  });
});

describe('the fastest configuration', () => {
  const choices = new Map(['128x64x32+tall', '64x64x32'].map((n) => [n, choice(n)]));
  const ms = (entries: [string, number][]) => new Map(entries);

  it('keeps each GEMM\'s fastest, the planner\'s on a tie, and tables only those that are not the planner\'s', () => {
    const times = new Map([
      ['a', ms([['planner', 2], ['128x64x32+tall', 1.5], ['64x64x32', 1.8]])],
      ['b', ms([['planner', 1], ['128x64x32+tall', 1], ['64x64x32', 1.2]])],
      ['c', ms([['planner', 3], ['64x64x32', 2.5]])],
    ]);
    const r = fastest(times, choices, new Map([['a', 'conv a']]));
    expect(r.gemms.map((g) => [g.key, g.best])).toEqual([['a', '128x64x32+tall'], ['b', 'planner'], ['c', '64x64x32']]);
    expect([...r.table]).toEqual([['a', choices.get('128x64x32+tall')], ['c', choices.get('64x64x32')]]);
    expect(r.plannerMs).toBe(6);
    expect(r.tunedMs).toBe(5);
    expect(r.gemms[0]!.label).toBe('conv a');
    expect(r.gemms[1]!.label).toBe('b');
    const line = describeTuning({ configurations: ['planner', ...choices.keys()], unfit: [], failed: [], ...r, seconds: 1.25 });
    expect(line).toBe("tuned 3 GEMMs over 3 configurations in 1.3 s: 2 changed (128x64x32+tall ×1, 64x64x32 ×1); their GPU time a step 6.000 ms on the planner's choices, 5.000 ms tuned");
    const failing = describeTuning({ configurations: ['planner', ...choices.keys()], unfit: [], failed: [{ name: '32x32x32', error: 'no pipeline\nmore' }], ...r, seconds: 1.25 });
    expect(failing).toMatch(/5\.000 ms tuned; left out, failing: 32x32x32 \(no pipeline\)$/);
  });
});

describe('tuneConvolutions', () => {
  it('refuses fp32, where no GEMM has configurations to choose from', async () => {
    const gpu = { hasTimestamps: true } as unknown as Gpu;
    await expect(tuneConvolutions(gpu, () => {})).rejects.toThrow(/needs mixed precision/);
  });
});

describe('tuning records', () => {
  const record = {
    format: TUNING_FORMAT, adapter: 'another GPU (vendor v, architecture a, f16, subgroup matrices 16×16×16)', measuredAt: '2026-12-07T10:00:00.000Z',
    report: { configurations: ['planner', '64x64x32+tall'], unfit: [], failed: [], plannerMs: 2, tunedMs: 1.5, seconds: 3, gemms: [
      { key: 'g1', label: 'conv a', ms: { planner: 1, '64x64x32+tall': 0.5 }, best: '64x64x32+tall' },
      { key: 'g2', label: 'conv b', ms: { planner: 1, '64x64x32+tall': 1.5 }, best: 'planner' },
    ] },
  };

  it('reads back what it wrote', () => {
    expect(parseTuning(JSON.stringify(record), 'tuning.json')).toEqual(record);
  });

  it('says what is wrong with a file that is not one', () => {
    const bad = (text: string) => () => parseTuning(text, 'run/tuning.json');
    expect(bad('{"format": ')).toThrow(/^run\/tuning\.json is not a tuning record: .*JSON/);
    expect(bad('null')).toThrow(/is not a tuning record: its format is not "wgsl-unet-tuning\/1"/);
    expect(bad(JSON.stringify({ ...record, format: 'other' }))).toThrow(/its format is not/);
    expect(bad(JSON.stringify({ ...record, report: {} }))).toThrow(/it lacks the adapter or the GEMMs/);
    expect(bad(JSON.stringify({ ...record, adapter: 3 }))).toThrow(/it lacks the adapter or the GEMMs/);
    expect(bad(JSON.stringify({ ...record, workload: { batch: [32] } }))).toThrow(/its workload is not a list of names and values/);
    const withBest = (best: unknown) => JSON.stringify({ ...record, report: { ...record.report, gemms: [{ key: 'g9', best }] } });
    expect(bad(withBest('96x64x32'))).toThrow(/run\/tuning\.json: GEMM "g9": unknown mixed-precision configuration "96x64x32"/);
    expect(bad(withBest('auto'))).toThrow(/GEMM "g9": auto picks by rule/);
    expect(bad(withBest(7))).toThrow(/a GEMM without a key or a best configuration/);
  });

  it('applies in mixed precision on the adapter it was measured on, and refuses a configuration that does not fit', () => {
    // A GPU of 16 × 16 × 16 matrices and 16 KiB of workgroup memory, as the planner sees one (no device behind it).
    const adapterInfo = { description: 'some GPU', vendor: 'v', architecture: 'a', device: 'd', isSoftware: false, features: ['shader-f16', 'chromium-experimental-subgroup-matrix'], subgroupMinSize: 32, subgroupMaxSize: 32, matrixConfigs: [{ M: 16, N: 16, K: 16 }] };
    const gpu = { adapterInfo, hasSubgroups: true, matrix: { M: 16, N: 16, K: 16 }, limits: { ...limits, maxComputeWorkgroupStorageSize: 16384 }, invalidatePrograms: () => {} } as unknown as Gpu;
    const here = { ...record, adapter: formatAdapter(gpu.adapterInfo) } as TuningRecord;
    expect(() => applyTuning(gpu, here)).toThrow(/applies to mixed precision/);
    setPrecision(gpu, 'mixed');
    expect(applyTuning(gpu, record as TuningRecord)).toEqual({ mismatch: `measured on ${record.adapter}, not on this adapter, ${here.adapter}` });
    expect(tunedConvolutions(gpu)).toBeNull();
    // Given a workload, only a record made for it applies.
    const batch32 = { ...here, workload: { baseWidth: 32, inputSize: 96, batch: 32 } };
    expect(applyTuning(gpu, batch32, { baseWidth: 32, inputSize: 96, batch: 16 })).toEqual({ mismatch: 'measured for baseWidth 32, batch 32, inputSize 96, not for baseWidth 32, batch 16, inputSize 96' });
    expect(applyTuning(gpu, here, { batch: 16 })).toEqual({ mismatch: 'measured for a workload it does not name, not for batch 16' });
    expect(tunedConvolutions(gpu)).toBeNull();
    expect(applyTuning(gpu, batch32, { batch: 32, inputSize: 96, baseWidth: 32 })).toEqual({ gemms: 2, changed: 1 });
    expect(applyTuning(gpu, here)).toEqual({ gemms: 2, changed: 1 });
    expect([...tunedConvolutions(gpu)!]).toEqual([['g1', mmaChoice('64x64x32+tall')]]);
    const big = { ...here, report: { ...here.report, gemms: [{ ...here.report.gemms[0]!, best: '128x128x32+tall' }] } };
    expect(() => applyTuning(gpu, big)).toThrow(/the tuning's configuration 128x128x32\+tall does not fit this device's matrices and limits/);
    expect([...tunedConvolutions(gpu)!]).toEqual([['g1', mmaChoice('64x64x32+tall')]]);
  });
});
