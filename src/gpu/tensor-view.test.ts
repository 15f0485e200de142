/**
 * The host side of f16 tensors (tensor-view.ts): float32 to IEEE binary16
 * rounded to nearest with ties to even, and back, checked over every f16
 * value and every midpoint between neighbours; and the storage sizes.
 */
import { describe, expect, it } from 'vitest';
import { fromHalf, storageBytes, toHalf, toHalfWords } from './tensor-view.js';

/** The value of f16 bits by the definition: (−1)^s · 2^(e − 15) · (1 + m/1024), subnormals 2⁻¹⁴ · m/1024. */
function halfValue(h: number): number {
  const s = h >> 15 ? -1 : 1;
  const e = (h >> 10) & 31;
  const m = h & 1023;
  if (e === 31) return m ? NaN : s * Infinity;
  return e === 0 ? s * 2 ** -14 * (m / 1024) : s * 2 ** (e - 15) * (1 + m / 1024);
}

describe('f16 conversion', () => {
  it('reads every f16 value as its definition says, and writes it back to the same bits', () => {
    for (let h = 0; h < 0x10000; h++) {
      const v = halfValue(h);
      if (Number.isNaN(v)) {
        expect(Number.isNaN(fromHalf(h)), `bits ${h.toString(16)}`).toBe(true);
        expect(toHalf(fromHalf(h)) & 0x7c00).toBe(0x7c00);
        expect(toHalf(fromHalf(h)) & 0x3ff).not.toBe(0);
        continue;
      }
      expect(Object.is(fromHalf(h), v), `bits ${h.toString(16)}`).toBe(true);
      expect(toHalf(v), `value ${v}`).toBe(h);
    }
  });

  it('rounds to the nearest f16, ties to the even one, between every pair of neighbours', () => {
    // Positive finite neighbours h, h + 1 (the negative side mirrors them through the sign bit).
    for (let h = 0; h < 0x7bff; h++) {
      const lo = halfValue(h);
      const hi = halfValue(h + 1);
      const mid = (lo + hi) / 2; // 12 significant bits at most: exact in float32
      expect(Math.fround(mid)).toBe(mid);
      const even = h % 2 === 0 ? h : h + 1;
      expect(toHalf(mid), `midpoint of ${lo} and ${hi}`).toBe(even);
      expect(toHalf(-mid)).toBe(even | 0x8000);
      const above = Math.fround(mid + (hi - lo) / 64);
      const below = Math.fround(mid - (hi - lo) / 64);
      expect(toHalf(above), `just above ${mid}`).toBe(h + 1);
      expect(toHalf(below), `just below ${mid}`).toBe(h);
    }
  });

  it('overflows to infinity from the midpoint past 65504 on, and underflows to a signed zero below 2⁻²⁵', () => {
    expect(toHalf(65504)).toBe(0x7bff);
    expect(toHalf(65519)).toBe(0x7bff);
    expect(toHalf(65520)).toBe(0x7c00);
    expect(toHalf(-1e9)).toBe(0xfc00);
    expect(toHalf(2 ** -25)).toBe(0); // a tie with 2⁻²⁴: to the even zero
    expect(toHalf(Math.fround(2 ** -25 * 1.0001))).toBe(1);
    expect(toHalf(-(2 ** -30))).toBe(0x8000);
  });

  it('pads f16 words and storage to whole 4-byte words', () => {
    expect(toHalfWords(new Float32Array([1, 2, 3])).length).toBe(4);
    expect([storageBytes(0, 'f16'), storageBytes(3, 'f16'), storageBytes(4, 'f16'), storageBytes(3), storageBytes(0)]).toEqual([4, 8, 8, 12, 4]);
  });
});
