/**
 * exp(x) rounded to the nearest double. V8's Math.exp is sometimes one unit in
 * the last place off (exp(-0.31473260023222455) for one), while numpy and glibc
 * round correctly; the Gaussian weights in resize.ts must equal numpy's bit for
 * bit for the resized values to equal scikit-image's.
 *
 * Math.exp's answer or one of its two neighbours is the right one; we pick the
 * nearest to exp(x) computed in 256-bit fixed point with BigInt.
 */
const FRACTION_BITS = 256n;
const ONE = 1n << FRACTION_BITS;
/** exp(x) = exp(x / 2^16)^(2^16): the series then converges in a few dozen terms. */
const HALVINGS = 16n;
/** Outside this range the fixed-point value is too coarse (or huge); Math.exp is used as is. */
const EXACT_RANGE = 100;

export function expCorrectlyRounded(x: number): number {
  const guess = Math.exp(x);
  if (!(Math.abs(x) <= EXACT_RANGE) || x === 0) return guess; // also NaN; exp(0) = 1 exactly
  const exact = expFixedPoint(toFixedPoint(x));
  let best = guess;
  let bestError = absolute(toFixedPoint(guess) - exact);
  for (const candidate of [adjacentDouble(guess, -1), adjacentDouble(guess, 1)]) {
    const error = absolute(toFixedPoint(candidate) - exact);
    if (error < bestError) {
      best = candidate;
      bestError = error;
    }
  }
  return best;
}

function absolute(v: bigint): bigint {
  return v < 0n ? -v : v;
}

/** exp of a fixed-point number, in fixed point. */
function expFixedPoint(x: bigint): bigint {
  const t = x >> HALVINGS; // floor division also for negative x: an error of 2^-256 at most
  let sum = ONE;
  let term = ONE;
  for (let n = 1n; term !== 0n; n++) {
    term = (term * t) / (n << FRACTION_BITS);
    sum += term;
  }
  for (let i = 0n; i < HALVINGS; i++) sum = (sum * sum) >> FRACTION_BITS;
  return sum;
}

/** v · 2^256 as a BigInt, exact for every double whose lowest bit is at least 2^-256. */
function toFixedPoint(v: number): bigint {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, v);
  const high = view.getUint32(0);
  const biasedExponent = (high >>> 20) & 0x7ff;
  let mantissa = (BigInt(high & 0xfffff) << 32n) | BigInt(view.getUint32(4));
  let exponent = -1074n; // subnormals
  if (biasedExponent !== 0) {
    mantissa |= 1n << 52n;
    exponent = BigInt(biasedExponent) - 1075n;
  }
  const shift = exponent + FRACTION_BITS;
  const magnitude = shift >= 0n ? mantissa << shift : mantissa >> -shift;
  return v < 0 ? -magnitude : magnitude;
}

/** The next double above (direction 1) or below (−1) a positive finite double. */
function adjacentDouble(v: number, direction: 1 | -1): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, v);
  view.setBigUint64(0, view.getBigUint64(0) + BigInt(direction));
  return view.getFloat64(0);
}
