/**
 * A seeded random number generator whose whole state is four 32-bit words
 * (xoshiro128**), so a training run can save it in a checkpoint and resume
 * with exactly the same shuffles and initial weights.
 */

const STATE_WORDS = 4;

/** splitmix32: spreads a small seed over the state so nearby seeds give unrelated streams. */
function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export class Rng {
  private readonly s: Uint32Array;

  /** A generator seeded from an integer (any integer; only its low 32 bits count). */
  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new Error(`Rng: the seed must be a finite number, got ${seed}`);
    const mix = splitmix32(Math.trunc(seed));
    this.s = new Uint32Array(STATE_WORDS);
    for (let i = 0; i < STATE_WORDS; i++) this.s[i] = mix();
    // The all-zero state is a fixed point of xoshiro; splitmix32 never yields it for 4 draws, but be sure.
    if (this.s.every((w) => w === 0)) this.s[0] = 1;
  }

  /** A generator that continues exactly where the one that produced `state` (see `state()`) stopped. */
  static fromState(state: readonly number[]): Rng {
    if (state.length !== STATE_WORDS || state.some((w) => !Number.isInteger(w) || w < 0 || w > 0xffffffff)) {
      throw new Error(`Rng.fromState: expected ${STATE_WORDS} unsigned 32-bit integers, got [${state.join(', ')}]`);
    }
    if (state.every((w) => w === 0)) throw new Error('Rng.fromState: the all-zero state is invalid for xoshiro128**');
    const r = new Rng(0);
    r.s.set(state);
    return r;
  }

  /** The next 32 random bits as an unsigned integer. */
  nextUint32(): number {
    const s = this.s;
    let s0 = s[0]!;
    let s1 = s[1]!;
    let s2 = s[2]!;
    let s3 = s[3]!;
    const result = Math.imul(rotl(Math.imul(s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (s1 << 9) >>> 0;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3 >>> 0, 11);
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    s[3] = s3;
    return result;
  }

  /** A float uniformly distributed in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** An integer uniformly distributed in [0, n), without modulo bias. */
  nextInt(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 4294967296) throw new Error(`Rng.nextInt: n must be an integer in [1, 2^32], got ${n}`);
    const limit = 4294967296 - (4294967296 % n); // largest multiple of n that fits
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** A copy of the state: four unsigned 32-bit integers, safe to put in JSON. */
  state(): number[] {
    return Array.from(this.s);
  }
}

/** Anything indexable and writable: arrays and typed arrays. */
export interface MutableIndexable<T> {
  readonly length: number;
  [index: number]: T;
}

/** Shuffles `array` in place (Fisher–Yates, every permutation equally likely) and returns it. */
export function shuffle<T, A extends MutableIndexable<T>>(array: A, rng: Rng): A {
  const a: MutableIndexable<T> = array;
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    const tmp = a[i]!;
    a[i] = a[j]!;
    a[j] = tmp;
  }
  return array;
}
