import { describe, expect, it } from 'vitest';
import { UNET_UP_SHAPES, caseFilter, convCases, convTransposeCases } from '../bench/cases.js';
import { UsageError } from '../src/cli/args.js';
import { readFileSync } from 'node:fs';
import { mmaTileChoices, mmaTileOverrides } from '../bench/mma-tiles.js';
import { MMA_TILES, type ConvCaps, fittingMmaTile, mmaConstants } from '../src/ops/conv/plan.js';
import { TUNE_CANDIDATES, TUNE_CANDIDATES_48K } from '../src/ops/conv/tune.js';

describe('bench --cases', () => {
  const names = [...convCases(8), ...convTransposeCases(8)].map((c) => `${c.op} ${c.shape}`);

  it('keeps the cases whose "op shape" matches, and every case without a pattern', () => {
    expect(names.filter(caseFilter('conv_transpose_forward'))).toEqual(UNET_UP_SHAPES.map(([h, ci, co]) => `conv_transpose_forward 8x${h}x${h} ${ci}->${co}`));
    expect(names.filter(caseFilter('^conv2d_backward_input 8x96x96 '))).toEqual(['conv2d_backward_input 8x96x96 32->32']);
    expect(names.filter(caseFilter(undefined))).toEqual(names);
    expect(names.filter(caseFilter('8x7x7'))).toEqual([]);
  });

  it('rejects a pattern that is not a regular expression', () => {
    expect(() => caseFilter('conv2d_forward (')).toThrow(UsageError);
    expect(() => caseFilter('conv2d_forward (')).toThrow(/--cases: not a regular expression/);
  });
});

describe('bench --mma-tiles', () => {
  it('reads tiles and auto with their flags, in any order, as the convolution overrides they stand for', () => {
    expect(mmaTileChoices(undefined)).toEqual([null]);
    expect(mmaTileChoices('128x64x32,auto+tall+prefetch')).toEqual(['128x64x32', 'auto+tall+prefetch']);
    expect(mmaTileOverrides('128x64x32')).toEqual({ mmaTile: '128x64x32', mmaPrefetch: undefined, mmaTall: undefined, mmaWide: undefined, mmaStepDecode: undefined, splitK: undefined });
    expect(mmaTileOverrides('auto+perquad+tall')).toEqual({ mmaTile: 'auto', mmaPrefetch: undefined, mmaTall: true, mmaWide: undefined, mmaStepDecode: false, splitK: undefined });
    expect(mmaTileOverrides('128x64x32+splitk')).toEqual({ mmaTile: '128x64x32', mmaPrefetch: undefined, mmaTall: undefined, mmaWide: undefined, mmaStepDecode: undefined, splitK: true });
    expect(mmaTileOverrides('128x128x32+wide+tall')).toMatchObject({ mmaTile: '128x128x32', mmaTall: true, mmaWide: true });
    expect(mmaTileOverrides(null)).toEqual({ mmaTile: undefined, mmaPrefetch: undefined, mmaTall: undefined, mmaWide: undefined, mmaStepDecode: undefined, splitK: undefined });
    // tuned: the planner's own overrides; its choices come from the tuner's table.
    expect(mmaTileChoices('128x64x32,tuned')).toEqual(['128x64x32', 'tuned']);
    expect(mmaTileOverrides('tuned')).toEqual(mmaTileOverrides(null));
    expect(mmaTileChoices('all')).toHaveLength(2 * (MMA_TILES.length + 1));
  });

  it('refuses an unknown tile or flag, and a flag given twice', () => {
    for (const bad of ['96x64x32', '128x64x32+fast', '128x64x32+tall+tall', '', 'auto,']) {
      expect(() => mmaTileChoices(bad), bad).toThrow(UsageError);
    }
    expect(() => mmaTileChoices('128x64x32+fast')).toThrow(/unknown mixed-precision configuration "128x64x32\+fast": use .* or auto, each optionally with \+prefetch, \+tall, \+wide, \+db, \+perquad, \+splitk, \+directb, or tuned, or all/);
    expect(() => mmaTileChoices('tuned+tall')).toThrow(UsageError);
  });

  it('bench/device-mixed.sh times choices that fit an H200 (16 × 16 × 16 matrices, subgroups of 32, 32 KiB of workgroup memory; the tuner\'s 48 KiB candidates where it has 48)', () => {
    // Device time is scarce: a list that fails on the GPU machine wastes a session's run.
    const script = readFileSync(new URL('../bench/device-mixed.sh', import.meta.url), 'utf8');
    const specs = [...script.matchAll(/dist\/bench\.js[^\n]*--mma-tiles (\S+)/g)].map((m) => m[1]!);
    expect(specs.length, 'the script passes --mma-tiles').toBeGreaterThan(0);
    expect(specs.some((s) => s.split(',').includes('tuned')), 'the script times the tuned step').toBe(true);
    const limits = { maxComputeWorkgroupsPerDimension: 65535, maxStorageBufferBindingSize: 2 ** 31 - 4, maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 1024 };
    const matrix = { M: 16, N: 16, K: 16 };
    // tuned tries every candidate: each must fit too, or it is left out untimed.
    const choices = specs.flatMap((s) => mmaTileChoices(s)).flatMap((c): (string | null)[] => (c === 'tuned' ? [...TUNE_CANDIDATES] : [c]));
    const fits = (choice: string | null, bytes: number) => {
      const o = mmaTileOverrides(choice);
      const at = { ...limits, maxComputeWorkgroupStorageSize: bytes };
      const caps: ConvCaps = { software: false, subgroups: { min: 32, max: 32 }, matrix, precision: 'mixed', limits: at, overrides: o };
      return o.mmaTile === 'auto' ? fittingMmaTile(caps) !== null : mmaConstants(matrix, 32, o.mmaTile!, at, o) !== null;
    };
    // All at 48 KiB; at 32 KiB all but the tuner's 48 KiB candidates, which it then leaves out as unfit.
    for (const choice of choices) expect(fits(choice, 49152), `${choice} on an H200 with 48 KiB`).toBe(true);
    expect(choices.filter((c) => !fits(c, 32768))).toEqual([...TUNE_CANDIDATES_48K]);
  });
});
