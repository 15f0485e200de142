/**
 * Plain-TypeScript convolutions in float64, written as direct loops over the
 * definitions (no GEMM, no flipped kernels) so they share no logic with the
 * shaders they check. NHWC; conv weights (kh, kw, in, out); transposed conv
 * weights (kh, kw, out, in).
 */
export type Shape4 = [number, number, number, number];
type Arr = ArrayLike<number>;

const idx4 = (s: Shape4, a: number, b: number, c: number, d: number) => ((a * s[1] + b) * s[2] + c) * s[3] + d;

export function conv2dRef(x: Arr, xs: Shape4, w: Arr, ws: Shape4, b: Arr, act: 'none' | 'relu' | 'sigmoid' | 'elu' = 'none'): Float64Array {
  const [n, h, wd, ci] = xs;
  const [k, , , co] = ws;
  const pad = (k - 1) / 2;
  const ys: Shape4 = [n, h, wd, co];
  const y = new Float64Array(n * h * wd * co);
  for (let bi = 0; bi < n; bi++)
    for (let oy = 0; oy < h; oy++)
      for (let ox = 0; ox < wd; ox++)
        for (let o = 0; o < co; o++) {
          let s = b[o]!;
          for (let ky = 0; ky < k; ky++)
            for (let kx = 0; kx < k; kx++) {
              const iy = oy + ky - pad;
              const ix = ox + kx - pad;
              if (iy < 0 || ix < 0 || iy >= h || ix >= wd) continue;
              for (let c = 0; c < ci; c++) s += x[idx4(xs, bi, iy, ix, c)]! * w[idx4(ws, ky, kx, c, o)]!;
            }
          y[idx4(ys, bi, oy, ox, o)] = act === 'relu' ? Math.max(0, s) : act === 'sigmoid' ? 1 / (1 + Math.exp(-s)) : act === 'elu' ? (s > 0 ? s : Math.expm1(s)) : s;
        }
  return y;
}

/** Gradients of L = Σ dy · conv2d(x, w, b) (no activation) by the chain rule on the loops above. */
export function conv2dBackwardRef(x: Arr, xs: Shape4, w: Arr, ws: Shape4, dy: Arr) {
  const [n, h, wd, ci] = xs;
  const [k, , , co] = ws;
  const pad = (k - 1) / 2;
  const ys: Shape4 = [n, h, wd, co];
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(w.length);
  const db = new Float64Array(co);
  for (let bi = 0; bi < n; bi++)
    for (let oy = 0; oy < h; oy++)
      for (let ox = 0; ox < wd; ox++)
        for (let o = 0; o < co; o++) {
          const g = dy[idx4(ys, bi, oy, ox, o)]!;
          db[o]! += g;
          for (let ky = 0; ky < k; ky++)
            for (let kx = 0; kx < k; kx++) {
              const iy = oy + ky - pad;
              const ix = ox + kx - pad;
              if (iy < 0 || ix < 0 || iy >= h || ix >= wd) continue;
              for (let c = 0; c < ci; c++) {
                dx[idx4(xs, bi, iy, ix, c)]! += g * w[idx4(ws, ky, kx, c, o)]!;
                dw[idx4(ws, ky, kx, c, o)]! += g * x[idx4(xs, bi, iy, ix, c)]!;
              }
            }
        }
  return { dx, dw, db };
}

export function convTranspose2x2Ref(x: Arr, xs: Shape4, w: Arr, ws: Shape4, b: Arr): Float64Array {
  const [n, h, wd, ci] = xs;
  const co = ws[2];
  const ys: Shape4 = [n, 2 * h, 2 * wd, co];
  const y = new Float64Array(n * 4 * h * wd * co);
  for (let bi = 0; bi < n; bi++)
    for (let oy = 0; oy < 2 * h; oy++)
      for (let ox = 0; ox < 2 * wd; ox++)
        for (let o = 0; o < co; o++) {
          // Output pixel (oy, ox) receives input (oy/2, ox/2) through kernel tap (oy%2, ox%2).
          const iy = oy >> 1;
          const ix = ox >> 1;
          let s = b[o]!;
          for (let c = 0; c < ci; c++) s += x[idx4(xs, bi, iy, ix, c)]! * w[idx4(ws, oy & 1, ox & 1, o, c)]!;
          y[idx4(ys, bi, oy, ox, o)] = s;
        }
  return y;
}

export function convTranspose2x2BackwardRef(x: Arr, xs: Shape4, w: Arr, ws: Shape4, dy: Arr) {
  const [n, h, wd, ci] = xs;
  const co = ws[2];
  const ys: Shape4 = [n, 2 * h, 2 * wd, co];
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(w.length);
  const db = new Float64Array(co);
  for (let bi = 0; bi < n; bi++)
    for (let oy = 0; oy < 2 * h; oy++)
      for (let ox = 0; ox < 2 * wd; ox++)
        for (let o = 0; o < co; o++) {
          const g = dy[idx4(ys, bi, oy, ox, o)]!;
          db[o]! += g;
          for (let c = 0; c < ci; c++) {
            dx[idx4(xs, bi, oy >> 1, ox >> 1, c)]! += g * w[idx4(ws, oy & 1, ox & 1, o, c)]!;
            dw[idx4(ws, oy & 1, ox & 1, o, c)]! += g * x[idx4(xs, bi, oy >> 1, ox >> 1, c)]!;
          }
        }
  return { dx, dw, db };
}

/**
 * Central finite differences of L(v) = Σ dy · f(v) at a few coordinates of v,
 * in float64: checks a reference backward against its own forward.
 */
export function finiteDifference(f: (v: Float64Array) => Float64Array, v: ArrayLike<number>, dy: ArrayLike<number>, coords: number[], eps = 1e-6): number[] {
  const base = Float64Array.from(v);
  return coords.map((i) => {
    const orig = base[i]!;
    base[i] = orig + eps;
    const up = f(base);
    base[i] = orig - eps;
    const down = f(base);
    base[i] = orig;
    let s = 0;
    for (let j = 0; j < up.length; j++) s += dy[j]! * (up[j]! - down[j]!);
    return s / (2 * eps);
  });
}
