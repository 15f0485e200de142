/** The generator's seeded random numbers and small numeric helpers. */
import type { QuantilePoint } from './mask-stats.js';

// Random numbers: every draw comes from a generator seeded by hashing
// (seed, stream, subject, frame), so any frame can be made on its own.

export const STREAM = { subject: 1, frame: 2, speckle: 3, grid: 4, layout: 5, traps: 6 } as const;

export function rotl32(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** MurmurHash3's mixing of 32-bit words, finalised. */
export function hashWords(words: readonly number[]): number {
  let h = 0x5eed1e55;
  for (const word of words) {
    let k = Math.imul(word | 0, 0xcc9e2d51);
    k = Math.imul(rotl32(k, 15), 0x1b873593);
    h = (Math.imul(rotl32(h ^ k, 13), 5) + 0xe6546b64) | 0;
  }
  h ^= words.length * 4;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** The seed's low and high 32 bits, so that seeds beyond 2^32 still differ. */
export function seedWords(seed: number): [number, number] {
  return [seed >>> 0, Math.floor(seed / 4294967296) >>> 0];
}

/** sfc32: a small, fast generator with good statistical quality. */
export class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spareNormal: number | undefined;

  constructor(words: readonly number[]) {
    this.a = hashWords([...words, 1]);
    this.b = hashWords([...words, 2]);
    this.c = hashWords([...words, 3]);
    this.d = 1;
    for (let i = 0; i < 12; i++) this.uint32();
  }

  uint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = rotl32(this.c, 21);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Fills `out` with random 32-bit words (the same words uint32() would give, faster). */
  fill(out: Uint32Array): void {
    let a = this.a;
    let b = this.b;
    let c = this.c;
    let d = this.d;
    for (let i = 0; i < out.length; i++) {
      const t = (((a + b) | 0) + d) | 0;
      d = (d + 1) | 0;
      a = b ^ (b >>> 9);
      b = (c + (c << 3)) | 0;
      c = ((c << 21) | (c >>> 11)) + t;
      c |= 0;
      out[i] = t;
    }
    this.a = a;
    this.b = b;
    this.c = c;
    this.d = d;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.uint32() / 4294967296;
  }

  range(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** An integer in [lo, hi], both included. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  /** Standard normal (Box–Muller). */
  normal(): number {
    if (this.spareNormal !== undefined) {
      const v = this.spareNormal;
      this.spareNormal = undefined;
      return v;
    }
    const u = 1 - this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    const angle = 2 * Math.PI * this.next();
    this.spareNormal = r * Math.sin(angle);
    return r * Math.cos(angle);
  }
}

/** The standard normal CDF (Abramowitz & Stegun 7.1.26, error < 1.5e-7). */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

/** Piecewise-linear inverse CDF through the quantile points. */
export function quantileAt(points: readonly QuantilePoint[], p: number): number {
  if (p <= points[0]!.p) return points[0]!.value;
  for (let i = 1; i < points.length; i++) {
    const hi = points[i]!;
    if (p <= hi.p) {
      const lo = points[i - 1]!;
      return lo.value + ((hi.value - lo.value) * (p - lo.p)) / (hi.p - lo.p);
    }
  }
  return points[points.length - 1]!.value;
}

export function fastHypot(x: number, y: number): number {
  return Math.sqrt(x * x + y * y);
}

export function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

export function smoothstep(t: number): number {
  const c = clamp(t, 0, 1);
  return c * c * (3 - 2 * c);
}
