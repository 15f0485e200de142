// Convolutions as implicit GEMM, C[M × N] = A[M × K] · B[K × N], arranged so
// that every invocation of a workgroup reads the same B element at the same
// time. The modes and the A/B/C mappings are those of conv_gemm.wgsl:
//   0 conv forward, 1 conv ∂input, 2 conv ∂weights (split over pixels),
//   3 transposed forward, 4 transposed ∂input, 5 transposed ∂weights (split).
//
// Why a second formulation: on SIMD CPUs (lavapipe, SwiftShader) invocations
// are vector lanes and every per-invocation scalar occupies a whole vector
// register. Workgroup memory and barriers cost more there than they save, a
// load whose address is the same in every lane becomes one scalar load and a
// broadcast, and a large register block spills. So each invocation owns
// ROWS rows of C (pixels, or weight rows in modes 2 and 5) and the workgroup
// owns 4·QUADS columns: per step of the reduction an invocation gathers ROWS
// values of A, reads 4·QUADS values of B that are uniform across the
// workgroup, and does ROWS · 4·QUADS FMAs.
// The reduction is walked as nested loops ((ky, kx) then channels, or pixels
// as (n, y, x)) so nothing is divided inside it, and bounds are tested once
// per (ky, kx), not per element.
//
// Layouts: activations NHWC float32; conv weights (kh, kw, in, out);
// transposed conv weights (kh, kw, out, in).
// Grid: x = blocks of 64·ROWS rows (64 invocations, row = base + 64·i),
//       y = blocks of 4·QUADS columns, z = splits of the reduction (modes 2, 5).

override MODE: u32 = 0u;
override ACT: u32 = 0u;
override ACCUMULATE: bool = false;

const ROWS: u32 = 2u;
const QUADS: u32 = 2u;
const GROUP: u32 = 64u;

struct Params {
  batch: u32,
  h: u32,
  w: u32,
  a_c: u32,
  kh: u32,
  kw: u32,
  pad: u32,
  b_c: u32,
  m: u32,
  n: u32,
  k: u32,
  k_per_split: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a_src: array<f32>;
@group(0) @binding(2) var<storage, read> b_src: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

var<private> acc: array<array<vec4<f32>, QUADS>, ROWS>;
var<private> col0: u32;
// Whether the workgroup's columns are all inside C (uniform).
var<private> full_cols: bool;

// acc[i] += a[i] · B[k, col0 .. col0 + 4·QUADS), with B[k, c] = b_src[base + c·stride]:
// the caller walks k and keeps `base` current. Addresses are workgroup-uniform.
fn step(a: array<f32, ROWS>, base: u32, stride: u32) {
  for (var q = 0u; q < QUADS; q++) {
    let c = col0 + 4u * q;
    var b: vec4<f32>;
    if (full_cols) {
      b = vec4<f32>(b_src[base + c * stride], b_src[base + (c + 1u) * stride], b_src[base + (c + 2u) * stride], b_src[base + (c + 3u) * stride]);
    } else {
      for (var j = 0u; j < 4u; j++) {
        b[j] = select(0.0, b_src[min(base + (c + j) * stride, arrayLength(&b_src) - 1u)], c + j < p.n);
      }
    }
    for (var i = 0u; i < ROWS; i++) {
      acc[i][q] = fma(vec4<f32>(a[i]), b, acc[i][q]);
    }
  }
}

fn activate(v: f32) -> f32 {
  switch ACT {
    case 1u: { return max(v, 0.0); }
    case 2u: {
      if (v >= 0.0) {
        return 1.0 / (1.0 + exp(-v));
      }
      let e = exp(v);
      return e / (1.0 + e);
    }
    default: { return v; }
  }
}

fn store(row: u32, col: u32, split: u32, v: f32) {
  switch MODE {
    case 0u: {
      out[row * p.n + col] = activate(v + bias[col]);
    }
    case 3u: {
      let co = col % p.b_c;
      let ab = col / p.b_c;
      let j = row % p.w;
      let ni = row / p.w;
      let i = ni % p.h;
      let n = ni / p.h;
      out[((n * 2u * p.h + 2u * i + ab / 2u) * 2u * p.w + 2u * j + ab % 2u) * p.b_c + co] = v + bias[co];
    }
    case 2u, 5u: {
      out[(split * p.m + row) * p.n + col] = v;
    }
    default: {
      let idx = row * p.n + col;
      if (ACCUMULATE) {
        out[idx] = out[idx] + v;
      } else {
        out[idx] = v;
      }
    }
  }
}

// Rows are pixels (n, y, x): modes 0, 1 (im2col), 3 (plain), 4 (2 × 2 gather).
fn pixel_rows(row_base: u32) {
  var n: array<u32, ROWS>;
  var y: array<i32, ROWS>;
  var x: array<i32, ROWS>;
  var ok: array<bool, ROWS>;
  for (var i = 0u; i < ROWS; i++) {
    let r = row_base + i * GROUP;
    ok[i] = r < p.m;
    let rr = min(r, p.m - 1u);
    x[i] = i32(rr % p.w);
    y[i] = i32((rr / p.w) % p.h);
    n[i] = rr / (p.w * p.h);
  }
  var a: array<f32, ROWS>;
  if (MODE == 0u || MODE == 1u) {
    var kb = 0u;
    for (var ky = 0u; ky < p.kh; ky++) {
      for (var kx = 0u; kx < p.kw; kx++) {
        // Where each row's tap lands, and whether it is inside the image.
        var at: array<u32, ROWS>;
        var inside: array<bool, ROWS>;
        for (var i = 0u; i < ROWS; i++) {
          let iy = y[i] + i32(ky) - i32(p.pad);
          let ix = x[i] + i32(kx) - i32(p.pad);
          inside[i] = ok[i] && iy >= 0 && ix >= 0 && iy < i32(p.h) && ix < i32(p.w);
          at[i] = select(0u, ((n[i] * p.h + u32(iy)) * p.w + u32(ix)) * p.a_c, inside[i]);
        }
        // Mode 1 reads the kernel flipped, with in and out swapped:
        // B[(ky, kx, co), ci] = w[kh−1−ky, kw−1−kx, ci, co].
        let flipped = ((p.kh - 1u - ky) * p.kw + (p.kw - 1u - kx)) * p.n * p.a_c;
        for (var c = 0u; c < p.a_c; c++) {
          for (var i = 0u; i < ROWS; i++) {
            a[i] = select(0.0, a_src[at[i] + c], inside[i]);
          }
          if (MODE == 0u) {
            step(a, kb * p.n, 1u);
          } else {
            step(a, flipped + c, p.a_c);
          }
          kb++;
        }
      }
    }
  } else if (MODE == 3u) {
    var at: array<u32, ROWS>;
    for (var i = 0u; i < ROWS; i++) {
      at[i] = min(row_base + i * GROUP, p.m - 1u) * p.k;
    }
    for (var c = 0u; c < p.k; c++) {
      for (var i = 0u; i < ROWS; i++) {
        a[i] = select(0.0, a_src[at[i] + c], ok[i]);
      }
      // B[ci, (a, b, co)] = w[a, b, co, ci]
      step(a, c, p.k);
    }
  } else {
    // MODE 4: k = (ab, co); dy is (2h, 2w) with a_c = co channels.
    var kb = 0u;
    for (var ab = 0u; ab < 4u; ab++) {
      var at: array<u32, ROWS>;
      for (var i = 0u; i < ROWS; i++) {
        at[i] = ((n[i] * 2u * p.h + 2u * u32(y[i]) + ab / 2u) * 2u * p.w + 2u * u32(x[i]) + ab % 2u) * p.a_c;
      }
      for (var c = 0u; c < p.a_c; c++) {
        for (var i = 0u; i < ROWS; i++) {
          a[i] = select(0.0, a_src[at[i] + c], ok[i]);
        }
        step(a, kb * p.n, 1u);
        kb++;
      }
    }
  }
}

// Rows are weights and the reduction runs over pixels [begin, end) of the
// split: mode 2 rows (ky, kx, ci) of im2col(x)ᵀ, mode 5 rows (a, b, co) of dy.
fn weight_rows(row_base: u32, begin: u32, end: u32) {
  var off: array<vec2<i32>, ROWS>; // (dy, dx) of the row's tap
  var ch: array<u32, ROWS>;
  var ok: array<bool, ROWS>;
  for (var i = 0u; i < ROWS; i++) {
    let r = row_base + i * GROUP;
    ok[i] = r < p.m;
    let rr = min(r, p.m - 1u);
    ch[i] = rr % p.a_c;
    let t = rr / p.a_c;
    if (MODE == 2u) {
      off[i] = vec2<i32>(i32(t / p.kw) - i32(p.pad), i32(t % p.kw) - i32(p.pad));
    } else {
      off[i] = vec2<i32>(i32(t / 2u), i32(t % 2u));
    }
  }
  var x = begin % p.w;
  var y = (begin / p.w) % p.h;
  var n = begin / (p.w * p.h);
  var a: array<f32, ROWS>;
  for (var px = begin; px < end; px++) {
    for (var i = 0u; i < ROWS; i++) {
      if (MODE == 2u) {
        let iy = i32(y) + off[i].x;
        let ix = i32(x) + off[i].y;
        let inside = ok[i] && iy >= 0 && ix >= 0 && iy < i32(p.h) && ix < i32(p.w);
        a[i] = select(0.0, a_src[select(0u, ((n * p.h + u32(iy)) * p.w + u32(ix)) * p.a_c + ch[i], inside)], inside);
      } else {
        let oy = 2u * y + u32(off[i].x);
        let ox = 2u * x + u32(off[i].y);
        a[i] = select(0.0, a_src[((n * 2u * p.h + oy) * 2u * p.w + ox) * p.a_c + ch[i]], ok[i]);
      }
    }
    step(a, px * p.n, 1u);
    x++;
    if (x == p.w) {
      x = 0u;
      y++;
      if (y == p.h) {
        y = 0u;
        n++;
      }
    }
  }
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  col0 = wg.y * 4u * QUADS;
  full_cols = col0 + 4u * QUADS <= p.n;
  let row_base = wg.x * GROUP * ROWS + lane;
  for (var i = 0u; i < ROWS; i++) {
    for (var q = 0u; q < QUADS; q++) {
      acc[i][q] = vec4<f32>(0.0);
    }
  }
  if (MODE == 2u || MODE == 5u) {
    let begin = wg.z * p.k_per_split;
    weight_rows(row_base, begin, min(p.k, begin + p.k_per_split));
  } else {
    pixel_rows(row_base);
  }
  for (var i = 0u; i < ROWS; i++) {
    let row = row_base + i * GROUP;
    if (row >= p.m) {
      continue;
    }
    for (var q = 0u; q < QUADS; q++) {
      let v = acc[i][q];
      for (var j = 0u; j < 4u; j++) {
        let col = col0 + 4u * q + j;
        if (col < p.n) {
          store(row, col, wg.z, v[j]);
        }
      }
    }
  }
}
