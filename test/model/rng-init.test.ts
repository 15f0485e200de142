import { describe, expect, it } from 'vitest';
import { Rng, shuffle } from '../../src/model/rng.js';
import { glorotUniform, glorotUniformKeras, kerasFans } from '../../src/model/init.js';

describe('Rng (xoshiro128**)', () => {
  it('matches the reference algorithm from state [1, 2, 3, 4]', () => {
    const r = Rng.fromState([1, 2, 3, 4]);
    // Outputs of the reference C algorithm (compiled with gcc) from this state.
    const want = [11520, 0, 5927040, 70819200, 2031721883, 1637235492];
    expect(want.map(() => r.nextUint32())).toEqual(want);
  });

  it('saves and restores its state mid-stream', () => {
    const a = new Rng(42);
    for (let i = 0; i < 10; i++) a.next();
    const saved = a.state();
    expect(JSON.parse(JSON.stringify(saved))).toEqual(saved);
    const b = Rng.fromState(saved);
    for (let i = 0; i < 100; i++) expect(b.next()).toBe(a.next());
    expect(() => Rng.fromState([1, 2, 3])).toThrow(/4 unsigned 32-bit integers/);
    expect(() => Rng.fromState([0, 0, 0, 0])).toThrow(/all-zero/);
  });

  it('gives floats in [0, 1) with the right mean, and distinct streams for distinct seeds', () => {
    const r = new Rng(7);
    let sum = 0;
    const n = 100_000;
    for (let i = 0; i < n; i++) {
      const v = r.next();
      expect(v >= 0 && v < 1).toBe(true);
      sum += v;
    }
    expect(Math.abs(sum / n - 0.5)).toBeLessThan(0.005);
    expect(new Rng(1).next()).not.toBe(new Rng(2).next());
    expect(new Rng(5).state()).toEqual(new Rng(5).state());
  });

  it('shuffles into a permutation, deterministically, and uniformly', () => {
    const a = shuffle(Array.from({ length: 50 }, (_, i) => i), new Rng(3));
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(shuffle(Array.from({ length: 50 }, (_, i) => i), new Rng(3))).toEqual(a);
    expect(a).not.toEqual(Array.from({ length: 50 }, (_, i) => i));
    const typed = shuffle(Int32Array.from({ length: 10 }, (_, i) => i), new Rng(4));
    expect([...typed].sort((x, y) => x - y)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    // Each of the 6 orders of 3 items about equally often.
    const r = new Rng(9);
    const counts = new Map<string, number>();
    for (let i = 0; i < 60_000; i++) {
      const k = shuffle(['a', 'b', 'c'], r).join('');
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    expect(counts.size).toBe(6);
    for (const c of counts.values()) expect(Math.abs(c - 10_000)).toBeLessThan(400);
  });
});

describe('Glorot-uniform initialisation', () => {
  it('computes fans as Keras does, for Conv2D and Conv2DTranspose kernels', () => {
    expect(kerasFans([3, 3, 4, 8])).toEqual({ fanIn: 36, fanOut: 72 });
    // Conv2DTranspose kernel (kh, kw, out, in) = (2, 2, 8, 16): Keras takes shape[-2] as "in".
    expect(kerasFans([2, 2, 8, 16])).toEqual({ fanIn: 32, fanOut: 64 });
    expect(kerasFans([5, 7])).toEqual({ fanIn: 5, fanOut: 7 });
  });

  it('draws within ±√(6 / (fanIn + fanOut)) with the variance of a uniform', () => {
    const shape = [3, 3, 32, 64];
    const w = glorotUniformKeras(shape, new Rng(1));
    const limit = Math.sqrt(6 / (3 * 3 * 32 + 3 * 3 * 64));
    expect(w.length).toBe(3 * 3 * 32 * 64);
    let sum = 0;
    let sq = 0;
    for (const v of w) {
      expect(Math.abs(v)).toBeLessThanOrEqual(limit);
      sum += v;
      sq += v * v;
    }
    const mean = sum / w.length;
    const variance = sq / w.length - mean * mean;
    expect(Math.abs(mean)).toBeLessThan(0.02 * limit);
    expect(Math.abs(variance / (limit * limit / 3) - 1)).toBeLessThan(0.03);
    expect(glorotUniformKeras(shape, new Rng(1))).toEqual(w);
    expect(() => glorotUniform([2, 2], 0, 3, new Rng(1))).toThrow(/fans must be positive/);
  });
});
