// Convolutions as implicit GEMM, C[M × N] = A[M × K] · B[K × N], for CPU
// adapters. The modes and the A/B/C mappings are those of conv_tiled.wgsl:
//   0 conv forward, 1 conv ∂input, 2 conv ∂weights (split over pixels),
//   3 transposed forward, 4 transposed ∂input, 5 transposed ∂weights (split).
//
// Layouts: activations NHWC float32; conv weights (kh, kw, in, out);
// transposed conv weights (kh, kw, out, in).
//
// Why this shape: on lavapipe/llvmpipe an invocation is one lane of an 8-wide
// AVX2 vector and every per-invocation scalar is a whole vector register.
// Its NIR-to-LLVM translator (Mesa 25.0, gallivm) treats a storage-buffer load
// as uniform only when the offset is built from constants alone
// (nir_src_is_always_uniform); anything that depends on a loop counter, a
// uniform-buffer field or the workgroup id is loaded lane by lane: an 8-step
// loop with an execution-mask test, a bounds test and an insert per lane, per
// component. Such a load costs tens of times an FMA, whatever the addresses
// (the same address in every lane costs as much as eight different ones).
// So the design counts per-invocation loads and nothing else:
// - each invocation owns ROWS consecutive rows of C and 4·QUADS columns, so a
//   loaded A value feeds 4·QUADS FMAs and a loaded B value ROWS FMAs;
// - where the channel counts are multiples of 4 (A4 / B4, chosen by the
//   wrapper), loads are vec4 through the a4 / b4 views of the same buffers:
//   one per-lane loop fetches four values, about twice as cheap per value as
//   four scalar loads; otherwise guarded scalar loads are used;
// - the reduction advances four k at a time (a quad of channels of one tap,
//   or of the ∂weights rows), so every step does ROWS · 4·QUADS · 4 FMAs and
//   the loop bookkeeping (masks, a blend per loop-carried value) is amortised;
// - B is read contiguously in every mode: along n as rows (modes 0, 2, 4, 5) or
//   along k as columns (modes 1, 3: the flipped/transposed weights), which in
//   SoA form is only a renaming of registers;
// - no workgroup memory and no barriers (a barrier is a coroutine switch per
//   8-lane vector), no control flow that depends on the data; tails are
//   clamped indices and selects.
// Bounds: rows past M are clamped and not stored; column quads past N read a
// clamped index and are zeroed; taps outside the image read index 0 and are
// zeroed.
// Grid: x = blocks of GROUP·ROWS rows (invocation = ROWS consecutive rows),
//       y = blocks of 4·QUADS columns, z = splits of the reduction (modes 2, 5).

// Parameters (p), bindings 0–5 (a_src, b_src, bias, out, mask_src), MODE,
// ACCUMULATE, out_index(), write_out() and store() come from conv_common.wgsl,
// ACT and activate() from activation.wgsl; the wrapper appends both to this file.

// A may be read as vec4: the channels A is gathered along (k for modes 0, 1,
// 3, 4; the rows for modes 2, 5) come in multiples of 4.
override A4: bool = false;
// B may be read as vec4: along n for modes 0, 2, 4, 5 (n % 4 == 0), along k for
// modes 1, 3 (the same channel count as A4).
override B4: bool = false;
// k per reduction step: a quad with A4 (one vec4 per row), else one, so that the
// scalar fallback (odd channel counts: tests, the 1-channel input layer) keeps
// its code, and its compile time, small.
override KQ: u32 = select(1u, 4u, A4);

// Invocations per workgroup (a multiple of the 8-lane vector): the wrapper
// shrinks it when M is small, so that the last block of rows wastes little.
override GROUP: u32 = 64u;

// ROWS (rows of C per invocation) and QUADS (quads of its columns) are set
// in front of this file by gemm.ts from the planner's values.

// The same tensors as a_src / b_src seen as vec4 (a 16-byte dummy when A4 / B4 is off).
@group(0) @binding(6) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> b4: array<vec4<f32>>;

// Accumulators: acc[i][q] holds row i, columns col0 + 4q .. col0 + 4q + 3.
var<private> acc: array<array<vec4<f32>, QUADS>, ROWS>;
// One reduction step of four k: av[i] = A[row i, k .. k+3], bv[j][q] = B[k+j, quad q].
var<private> av: array<vec4<f32>, ROWS>;
var<private> bv: array<array<vec4<f32>, QUADS>, 4>;
var<private> col0: u32;
// Whether column quad q lies inside C (workgroup-uniform).
var<private> quad_ok: array<bool, QUADS>;

fn fma_step() {
  for (var j = 0u; j < KQ; j++) {
    for (var q = 0u; q < QUADS; q++) {
      for (var i = 0u; i < ROWS; i++) {
        acc[i][q] = fma(vec4<f32>(av[i][j]), bv[j][q], acc[i][q]);
      }
    }
  }
}

// Four consecutive values src[at .. at+3] of A, zero past `valid` of them.
fn a_quad(at: u32, valid: u32, ok: bool) -> vec4<f32> {
  if (A4) {
    return select(vec4<f32>(0.0), a4[at / 4u], ok);
  }
  var v = vec4<f32>(0.0);
  let last = arrayLength(&a_src) - 1u;
  for (var j = 0u; j < KQ; j++) {
    v[j] = select(0.0, a_src[min(at + j, last)], ok && j < valid);
  }
  return v;
}

// bv[j] = B[k + j, col0 ..] for the rows-contiguous modes: B[k, c] = b_src[base + k·n + c].
// Rows j ≥ rows_valid are zero.
fn b_rows(base: u32, rows_valid: u32) {
  for (var j = 0u; j < KQ; j++) {
    let row = base + j * p.n;
    if (B4) {
      for (var q = 0u; q < QUADS; q++) {
        let qi = select(0u, (row + col0) / 4u + q, quad_ok[q] && j < rows_valid);
        bv[j][q] = select(vec4<f32>(0.0), b4[qi], quad_ok[q] && j < rows_valid);
      }
    } else {
      let last = arrayLength(&b_src) - 1u;
      for (var q = 0u; q < QUADS; q++) {
        var v = vec4<f32>(0.0);
        for (var t = 0u; t < 4u; t++) {
          let c = col0 + 4u * q + t;
          v[t] = select(0.0, b_src[min(row + c, last)], c < p.n && j < rows_valid);
        }
        bv[j][q] = v;
      }
    }
  }
}

// bv[j][q][t] = B[k + j, col0 + 4q + t] for the columns-contiguous modes:
// column c starts at b_src[base + c·stride] and runs along k; `valid` k remain.
fn b_cols(base: u32, stride: u32, valid: u32) {
  let last = arrayLength(&b_src) - 1u;
  for (var q = 0u; q < QUADS; q++) {
    // col[t] = B[k .. k+3, col0 + 4q + t]
    var col: array<vec4<f32>, 4>;
    for (var t = 0u; t < 4u; t++) {
      let c = col0 + 4u * q + t;
      let at = base + c * stride;
      if (B4) {
        col[t] = select(vec4<f32>(0.0), b4[select(0u, at / 4u, c < p.n)], c < p.n);
      } else {
        var v = vec4<f32>(0.0);
        for (var j = 0u; j < KQ; j++) {
          v[j] = select(0.0, b_src[min(at + j, last)], c < p.n && j < valid);
        }
        col[t] = v;
      }
    }
    // Transposed into rows: in SoA form this only renames registers.
    bv[0][q] = vec4<f32>(col[0].x, col[1].x, col[2].x, col[3].x);
    bv[1][q] = vec4<f32>(col[0].y, col[1].y, col[2].y, col[3].y);
    bv[2][q] = vec4<f32>(col[0].z, col[1].z, col[2].z, col[3].z);
    bv[3][q] = vec4<f32>(col[0].w, col[1].w, col[2].w, col[3].w);
  }
}

// Rows are pixels (n, y, x): modes 0, 1 (im2col), 3 (plain), 4 (2 × 2 gather).
fn pixel_rows(row0: u32) {
  let h = p.h;
  let w = p.w;
  let a_c = p.a_c;
  let n_cols = p.n;
  var n: array<u32, ROWS>;
  var y: array<i32, ROWS>;
  var x: array<i32, ROWS>;
  var ok: array<bool, ROWS>;
  for (var i = 0u; i < ROWS; i++) {
    let r = row0 + i;
    ok[i] = r < p.m;
    let rr = min(r, p.m - 1u);
    x[i] = i32(rr % w);
    y[i] = i32((rr / w) % h);
    n[i] = rr / (w * h);
  }
  if (MODE == 0u || MODE == 1u) {
    for (var ky = 0u; ky < p.kh; ky++) {
      for (var kx = 0u; kx < p.kw; kx++) {
        // Where each row's tap lands, and whether it is inside the image.
        var at: array<u32, ROWS>;
        var inside: array<bool, ROWS>;
        for (var i = 0u; i < ROWS; i++) {
          let iy = y[i] + i32(ky) - i32(p.pad);
          let ix = x[i] + i32(kx) - i32(p.pad);
          inside[i] = ok[i] && iy >= 0 && ix >= 0 && iy < i32(h) && ix < i32(w);
          at[i] = select(0u, ((n[i] * h + u32(iy)) * w + u32(ix)) * a_c, inside[i]);
        }
        let tap = ky * p.kw + kx;
        // Mode 1 reads the kernel flipped, with in and out swapped:
        // B[(ky, kx, co), ci] = w[kh−1−ky, kw−1−kx, ci, co]: column ci runs along co.
        let flipped = ((p.kh - 1u - ky) * p.kw + (p.kw - 1u - kx)) * n_cols * a_c;
        for (var c = 0u; c < a_c; c += KQ) {
          let valid = a_c - c;
          for (var i = 0u; i < ROWS; i++) {
            av[i] = a_quad(at[i] + c, valid, inside[i]);
          }
          if (MODE == 0u) {
            b_rows((tap * a_c + c) * n_cols, valid);
          } else {
            b_cols(flipped + c, a_c, valid);
          }
          fma_step();
        }
      }
    }
  } else if (MODE == 3u) {
    // B[ci, (a, b, co)] = w[a, b, co, ci]: column (a, b, co) runs along ci.
    let k = p.k;
    for (var c = 0u; c < k; c += KQ) {
      let valid = k - c;
      for (var i = 0u; i < ROWS; i++) {
        av[i] = a_quad(min(row0 + i, p.m - 1u) * k + c, valid, ok[i]);
      }
      b_cols(c, k, valid);
      fma_step();
    }
  } else {
    // MODE 4: k = (ab, co); dy is (2h, 2w) with a_c = co channels; B = w as [(ab, co) × ci].
    for (var ab = 0u; ab < 4u; ab++) {
      var at: array<u32, ROWS>;
      for (var i = 0u; i < ROWS; i++) {
        at[i] = ((n[i] * 2u * h + 2u * u32(y[i]) + ab / 2u) * 2u * w + 2u * u32(x[i]) + ab % 2u) * a_c;
      }
      for (var c = 0u; c < a_c; c += KQ) {
        let valid = a_c - c;
        for (var i = 0u; i < ROWS; i++) {
          av[i] = a_quad(at[i] + c, valid, ok[i]);
        }
        b_rows((ab * a_c + c) * n_cols, valid);
        fma_step();
      }
    }
  }
}

// Rows are weights and the reduction runs over pixels [begin, end) of the
// split: mode 2 rows (ky, kx, ci) of im2col(x)ᵀ, mode 5 rows (a, b, co) of dy.
// The ROWS rows of an invocation are consecutive, so (with A4) each aligned
// quad of them is four channels of one tap: one vec4 per quad and pixel.
// The reduction advances four pixels per step (av[i] holds row i at the four
// pixels, bv[j] the B row of pixel j).
fn weight_rows(row0: u32, begin: u32, end: u32) {
  let h = p.h;
  let w = p.w;
  let a_c = p.a_c;
  let n_cols = p.n;
  const QR: u32 = ROWS / 4u;
  var off: array<vec2<i32>, ROWS>; // (dy, dx) of each row's tap
  var ch: array<u32, ROWS>;        // channel of each row
  var ok: array<bool, ROWS>;
  for (var r = 0u; r < ROWS; r++) {
    ok[r] = row0 + r < p.m;
    let row = min(row0 + r, p.m - 1u);
    ch[r] = row % a_c;
    let t = row / a_c;
    if (MODE == 2u) {
      off[r] = vec2<i32>(i32(t / p.kw) - i32(p.pad), i32(t % p.kw) - i32(p.pad));
    } else {
      off[r] = vec2<i32>(i32(t / 2u), i32(t % 2u));
    }
  }
  var x = begin % w;
  var y = (begin / w) % h;
  var n = begin / (w * h);
  for (var px = begin; px < end; px += KQ) {
    let left = end - px;
    // av[i][j] = A[row i, pixel px + j]; with A4 the rows 4g .. 4g+3 are four
    // channels of one tap, read as one vec4.
    for (var j = 0u; j < KQ; j++) {
      for (var g = 0u; g < QR; g++) {
        var quad = vec4<f32>(0.0);
        for (var r = 0u; r < 4u; r++) {
          if (A4 && r > 0u) {
            break;
          }
          let i = 4u * g + r;
          var inside = j < left && ok[i];
          var at = 0u;
          if (MODE == 2u) {
            let iy = i32(y) + off[i].x;
            let ix = i32(x) + off[i].y;
            inside = inside && iy >= 0 && ix >= 0 && iy < i32(h) && ix < i32(w);
            at = select(0u, ((n * h + u32(iy)) * w + u32(ix)) * a_c + ch[i], inside);
          } else {
            let oy = 2u * y + u32(off[i].x);
            let ox = 2u * x + u32(off[i].y);
            at = select(0u, ((n * 2u * h + oy) * 2u * w + ox) * a_c + ch[i], inside);
          }
          if (A4) {
            quad = select(vec4<f32>(0.0), a4[at / 4u], inside);
          } else {
            quad[r] = select(0.0, a_src[at], inside);
          }
        }
        for (var r = 0u; r < 4u; r++) {
          av[4u * g + r][j] = quad[r];
        }
      }
      x++;
      if (x == w) {
        x = 0u;
        y++;
        if (y == h) {
          y = 0u;
          n++;
        }
      }
    }
    b_rows(px * n_cols, left);
    fma_step();
  }
}

@compute @workgroup_size(GROUP, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lane: u32) {
  col0 = wg.y * 4u * QUADS;
  for (var q = 0u; q < QUADS; q++) {
    quad_ok[q] = col0 + 4u * q < p.n;
  }
  let row0 = (wg.x * GROUP + lane) * ROWS;
  for (var i = 0u; i < ROWS; i++) {
    for (var q = 0u; q < QUADS; q++) {
      acc[i][q] = vec4<f32>(0.0);
    }
  }
  if (MODE == 2u || MODE == 5u) {
    let begin = wg.z * p.k_per_split;
    weight_rows(row0, begin, min(p.k, begin + p.k_per_split));
  } else {
    pixel_rows(row0);
  }
  for (var i = 0u; i < ROWS; i++) {
    let row = row0 + i;
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
