import { describe, expect, it } from 'vitest';
import { UNET_UP_SHAPES, caseFilter, convCases, convTransposeCases } from '../bench/cases.js';
import { UsageError } from '../src/cli/args.js';

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
