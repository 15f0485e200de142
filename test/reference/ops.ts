/** Float64 references for max-pooling, concatenation and the Dice loss (NHWC). */
import type { Shape4 } from './conv.js';
type Arr = ArrayLike<number>;

export function maxPoolRef(x: Arr, [n, h, w, c]: Shape4): Float64Array {
  const oh = Math.floor(h / 2);
  const ow = Math.floor(w / 2);
  const y = new Float64Array(n * oh * ow * c);
  for (let b = 0; b < n; b++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++)
        for (let k = 0; k < c; k++) {
          let m = -Infinity;
          for (const [di, dj] of [[0, 0], [0, 1], [1, 0], [1, 1]] as const) m = Math.max(m, x[((b * h + 2 * i + di) * w + 2 * j + dj) * c + k]!);
          y[((b * oh + i) * ow + j) * c + k] = m;
        }
  return y;
}

export function concatRef(a: Arr, ca: number, b: Arr, cb: number): Float64Array {
  const pixels = a.length / ca;
  const y = new Float64Array(pixels * (ca + cb));
  for (let p = 0; p < pixels; p++) {
    for (let k = 0; k < ca; k++) y[p * (ca + cb) + k] = a[p * ca + k]!;
    for (let k = 0; k < cb; k++) y[p * (ca + cb) + ca + k] = b[p * cb + k]!;
  }
  return y;
}

export function diceLossRef(p: Arr, y: Arr): number {
  let inter = 0;
  let sy = 0;
  let sp = 0;
  for (let i = 0; i < p.length; i++) {
    inter += y[i]! * p[i]!;
    sy += y[i]!;
    sp += p[i]!;
  }
  return -(2 * inter + 1) / (sy + sp + 1);
}
