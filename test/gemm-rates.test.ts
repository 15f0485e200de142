/** bench/gemm-rates.mjs --best: each GEMM of a step side by side across the mixed-precision configurations profiled. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'gemm-rates-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = (json: unknown, ...args: string[]) => {
  const file = join(dir, 'results.json');
  writeFileSync(file, JSON.stringify(json));
  return execFileSync(process.execPath, [new URL('../bench/gemm-rates.mjs', import.meta.url).pathname, file, ...args], { encoding: 'utf8' });
};

// Two layers of one shape (told apart by their order), a weight gradient
// whose split sums count with its GEMM, and a pass without a GEMM.
const passes = (a: number, b: number, c: number, sum: number) => [
  { label: 'conv2d x [2, 8, 8, 4] w [3, 3, 4, 4] relu [mma 128×64, GEMM 128×4×36]', gpu_ms: a },
  { label: 'maxPool2x2 [2, 8, 8, 4] -> [2, 4, 4, 4]', gpu_ms: 5 },
  { label: 'conv2d x [2, 8, 8, 4] w [3, 3, 4, 4] relu [mma 128×64, GEMM 128×4×36]', gpu_ms: b },
  { label: 'conv2dBackwardWeights x [2, 8, 8, 4] dy [2, 8, 8, 4] and bias [mma 128×64, GEMM 37×4×128, 4 splits, bias row]', gpu_ms: c },
  { label: 'conv2dBackwardWeights x [2, 8, 8, 4] dy [2, 8, 8, 4] and bias: sum of 4 splits', gpu_ms: sum },
];
const profile = (tile: string, ...ms: [number, number, number, number]) => ({ precision: 'mixed', tile, dispatches: 5, gpu_ms: 0, passes: passes(...ms) });

describe('bench/gemm-rates.mjs --best', () => {
  it('sets each GEMM beside itself in every mixed configuration and sums the fastest of each', () => {
    const out = run({ stepProfiles: [{ precision: 'fp32', tile: null, passes: passes(9, 9, 9, 9) }, profile('A', 1, 4, 3, 1), profile('B', 2, 3, 1, 0.5)] }, '--best');
    expect(out).toContain('in 2 mixed-precision configurations: 3 GEMMs found in all');
    expect(out).toMatch(/\| conv2d x \[2, 8, 8, 4\] w \[3, 3, 4, 4\] relu \| \*\*1\.000\*\* \| 2\.000 \| A \|/);
    expect(out).toMatch(/\| conv2d x \[2, 8, 8, 4\] w \[3, 3, 4, 4\] relu \(2\) \| 4\.000 \| \*\*3\.000\*\* \| B \|/);
    // The weight gradient's GEMM with its split sums: 3 + 1 against 1 + 0.5.
    expect(out).toMatch(/\| conv2dBackwardWeights x \[2, 8, 8, 4\] dy \[2, 8, 8, 4\] and bias \| 4\.000 \| \*\*1\.500\*\* \| B \|/);
    expect(out).toContain('| all 3 GEMMs, ms | 9.000 | 6.500 | 5.500 with each GEMM\'s fastest |');
    expect(out).toContain('fastest for how many GEMMs: A 1, B 2');
  });

  it("prints a tuned step's own measurements: the longest GEMMs on the planner's choices with their fastest", () => {
    const tuning = {
      configurations: ['planner', 'A', 'B'], unfit: ['C'], seconds: 12.5, plannerMs: 5, tunedMs: 3.5,
      gemms: [
        { key: 'k1', label: 'conv2d x [2, 8, 8, 4]', ms: { planner: 1, A: 1.5, B: 2 }, best: 'planner' },
        { key: 'k2', label: 'conv2dBackwardInput dy [2, 8, 8, 4]', ms: { planner: 4, A: 2.5, B: 3 }, best: 'A' },
      ],
    };
    const out = run({ precisionRuns: [{ precision: 'mixed', tile: 'tuned', profile: { passes: passes(1, 1, 1, 1) }, tuning }] });
    expect(out).toContain("mixed, tile tuned: the tuner's 2 GEMMs over 3 configurations (12.5 s; left out, not fitting: C)");
    const rows = (text: string) => text.slice(text.indexOf("the tuner's")).split('\n').filter((l) => /^\| [\d.]+ \|/.test(l));
    expect(rows(out)).toEqual(['| 4.000 | A | 2.500 | conv2dBackwardInput dy [2, 8, 8, 4] |', '| 1.000 | planner | 1.000 | conv2d x [2, 8, 8, 4] |', '| 5.000 | | 3.500 | all 2 GEMMs |']);
    // A training run's tuning.json (train --tune) reads the same.
    const record = run({ format: 'wgsl-unet-tuning/1', adapter: 'GPU X', measuredAt: '2026-12-07T10:00:00.000Z', report: tuning });
    expect(record).toContain("measured on GPU X at 2026-12-07T10:00:00.000Z: the tuner's 2 GEMMs over 3 configurations");
    expect(rows(record)).toEqual(rows(out));
  });

  it('says so where fewer than two mixed configurations were profiled, and refuses unknown arguments', () => {
    expect(run({ stepProfiles: [profile('A', 1, 1, 1, 1)] }, '--best')).toContain('fewer than two mixed-precision configurations were profiled');
    expect(() => run({ stepProfiles: [] }, '--fast')).toThrow(/usage: node bench\/gemm-rates\.mjs/);
    // Results without a pass-by-pass profile (per-op sums only) say so rather than print nothing.
    expect(() => run({ stepProfiles: [{ precision: 'mixed', tile: 'A', byOp: [] }] })).toThrow(/has no pass-by-pass profile of a training step/);
  });
});
