// Convolutions as implicit GEMM, C[M × N] = A[M × K] · B[K × N], for CPU
// adapters that offer subgroups of at least 8 invocations (lavapipe: one
// subgroup is one 8-wide AVX2 vector). The modes and the A/B/C mappings are
// those of conv_gemm.wgsl:
//   0 conv forward, 1 conv ∂input, 2 conv ∂weights (split over pixels),
//   3 transposed forward, 4 transposed ∂input, 5 transposed ∂weights (split).
//
// Layouts: activations NHWC float32; conv weights (kh, kw, in, out);
// transposed conv weights (kh, kw, out, in). B is read one row at a time, so
// every mode needs B's rows contiguous: B[k, c] = b_src[k · n + c]. Modes 1 and
// 3 get their weights rearranged first (weights_transpose.wgsl): mode 1
// B[(tap, co), ci] = w[flipped tap, ci, co], mode 3 B[ci, (a, b, co)] = w[a, b, co, ci].
//
// Why this shape. On lavapipe an invocation is one lane of a SIMD vector, and
// a storage-buffer load whose address is not a compile-time constant is a
// loop over the lanes (see conv_direct.wgsl). Every lane of a workgroup needs
// the same B values, so loading them per lane repeats the same loop eight
// times. Here each invocation owns ROWS consecutive rows of C and all COLS
// columns of the workgroup's block, and one step of the reduction (one k) is:
// - each lane of the subgroup loads four of the 32 B values of row k (its
//   columns 4·lane .. 4·lane+3: one vec4 where n % 4 == 0, four scalars
//   otherwise);
// - subgroupBroadcast hands every lane all 32 values: a broadcast from a
//   constant lane is an extract and a splat, no memory access;
// - each lane loads its ROWS values of A (one scalar each) and does
//   ROWS × 32 multiply-adds into its accumulators.
// So one k costs one vector of B loads, ROWS scalar A loads and 256 FMAs per
// lane; the accumulators (256 floats per lane) live on the stack, which the
// CPU reads and writes at full speed. ROWS = 8 measured best against 4, 12
// and 16 on llvmpipe (AVX2), and 32 columns against 16.
// What an FMA costs there (LLVM's output for this loop): lavapipe lowers fma to
// a multiply and an add, and every value written inside a loop is blended with
// the loop's execution mask, so one FMA is a multiply, an add, a blend and the
// accumulator's load and store.
// The loads, not the FMAs, bound this shader: lavapipe makes a uniform
// (scalar) load only of addresses that are compile-time constants, so each of
// a k's loads here is a loop over the 8 lanes with a bounds check per value.
// Measured on the 12 × 12, 512 → 256 forward at batch 8 with a variant that
// walks four k per step (GALLIVM_DEBUG=asm shows the code): 10 GFLOP/s as
// written, 14 with B's loads replaced by constants, 33 with A's too. Two ways
// to load less per FMA were tried and left out: that four-k step (A read as
// vec4s, each accumulator read and written once per four FMAs) and 64
// columns per invocation. Together they made one profiled training step's
// convolutions about 10 % faster on llvmpipe, but the unrolled code (2,048
// multiplies per loop body) took 16–21 s to compile per pipeline against
// 1–5 s, and a training run compiles dozens. Also tried and left out, with
// no change in time: A read as vec4s (one load per four k, the four k then
// walked by a loop, so the code stays this size), and the loop over rows in
// step() written out row by row (LLVM's output already has it unrolled).
// The epilogue follows the same rules: the bias of the 32 columns is shared
// by broadcast too, and C is stored one vec4 per quad of columns (O4).
// No workgroup memory, no barriers, no divergent control flow (subgroupBroadcast
// needs every lane active): rows past M are clamped and not stored, columns
// past N and taps outside the image read index 0 and are zeroed.
// Grid: x = blocks of GROUP·ROWS rows, y = blocks of 32 columns, z = splits of
// the reduction (modes 2, 5).

// Parameters (p), bindings 0–4 (a_src, b_src, bias, out), MODE,
// ACCUMULATE, out_index(), write_out() and store() come from conv_common.wgsl,
// ACT, activate() and activate4() from activation.wgsl; the wrapper appends both to this file.

enable subgroups;

// n % 4 == 0: a lane's four columns of B are one aligned vec4 of b4 (the same
// buffer as b_src; a 16-byte dummy when off).
override B4: bool = false;
// C is stored a quad of columns at a time through out4: n % 4 == 0, and for
// mode 3 b_c % 4 == 0 (a quad never straddles two of the 2 × 2 positions).
override O4: bool = false;
// Modes 2, 5 with a_c % ROWS == 0: an invocation's ROWS rows are ROWS
// consecutive channels of one tap, so one address and one border test serve all.
override SHARED_TAP: bool = false;
// Invocations per workgroup, a multiple of 8: the wrapper shrinks it for small M.
override GROUP: u32 = 64u;

const ROWS: u32 = 8u;
const COLS: u32 = 32u;

@group(0) @binding(5) var<storage, read> b4: array<vec4<f32>>;
// out as vec4 (O4); whichever of out / out4 is not in use is bound to a 16-byte dummy.
@group(0) @binding(6) var<storage, read_write> out4: array<vec4<f32>>;

// acc[i][q]: row i, columns col0 + 4q .. col0 + 4q + 3.
var<private> acc: array<array<vec4<f32>, 8>, ROWS>;
// A[row i, k] for the current k.
var<private> av: array<f32, ROWS>;
var<private> col0: u32;
// This lane's first column: col0 + 4 · subgroup_invocation_id.
var<private> my_col: u32;

// This lane's four values of row k of B, zero for columns past N.
fn b_lane(k: u32) -> vec4<f32> {
  let row_at = k * p.n;
  if (B4) {
    let ok = my_col < p.n;
    return select(vec4<f32>(0.0), b4[select(0u, (row_at + my_col) / 4u, ok)], ok);
  }
  var v = vec4<f32>(0.0);
  for (var t = 0u; t < 4u; t++) {
    let c = my_col + t;
    let ok = c < p.n;
    v[t] = select(0.0, b_src[select(0u, row_at + c, ok)], ok);
  }
  return v;
}

// One k: every lane gets the 32 values of B's row from the lanes that loaded
// them and adds av[i] · B[k, ·] to its rows.
fn step(mine: vec4<f32>) {
  let q0 = subgroupBroadcast(mine, 0u);
  let q1 = subgroupBroadcast(mine, 1u);
  let q2 = subgroupBroadcast(mine, 2u);
  let q3 = subgroupBroadcast(mine, 3u);
  let q4 = subgroupBroadcast(mine, 4u);
  let q5 = subgroupBroadcast(mine, 5u);
  let q6 = subgroupBroadcast(mine, 6u);
  let q7 = subgroupBroadcast(mine, 7u);
  for (var i = 0u; i < ROWS; i++) {
    let a = vec4<f32>(av[i]);
    acc[i][0] = fma(a, q0, acc[i][0]);
    acc[i][1] = fma(a, q1, acc[i][1]);
    acc[i][2] = fma(a, q2, acc[i][2]);
    acc[i][3] = fma(a, q3, acc[i][3]);
    acc[i][4] = fma(a, q4, acc[i][4]);
    acc[i][5] = fma(a, q5, acc[i][5]);
    acc[i][6] = fma(a, q6, acc[i][6]);
    acc[i][7] = fma(a, q7, acc[i][7]);
  }
}

// This lane's four bias values (modes 0, 3: the bias of column c is bias[c % b_c]).
fn bias_lane() -> vec4<f32> {
  var v = vec4<f32>(0.0);
  for (var t = 0u; t < 4u; t++) {
    let c = my_col + t;
    let ok = c < p.n;
    v[t] = select(0.0, bias[select(0u, c % p.b_c, ok)], ok);
  }
  return v;
}

// Writes the accumulators: bias (shared across the subgroup like B) and
// activation for the forward modes, accumulation for the ∂input modes; one
// vec4 store per quad of columns where O4, else one store per value.
fn store_all(row0: u32, split: u32) {
  var bq: array<vec4<f32>, 8>;
  if (MODE == 0u || MODE == 3u) {
    let mine = bias_lane();
    bq[0] = subgroupBroadcast(mine, 0u);
    bq[1] = subgroupBroadcast(mine, 1u);
    bq[2] = subgroupBroadcast(mine, 2u);
    bq[3] = subgroupBroadcast(mine, 3u);
    bq[4] = subgroupBroadcast(mine, 4u);
    bq[5] = subgroupBroadcast(mine, 5u);
    bq[6] = subgroupBroadcast(mine, 6u);
    bq[7] = subgroupBroadcast(mine, 7u);
  }
  for (var i = 0u; i < ROWS; i++) {
    let row = row0 + i;
    if (row >= p.m) {
      continue;
    }
    for (var q = 0u; q < 8u; q++) {
      let col = col0 + 4u * q;
      if (col >= p.n) {
        continue;
      }
      var v = acc[i][q] + bq[q];
      if (MODE == 0u) {
        v = activate4(v);
      }
      if (O4) {
        // n % 4 == 0 (and b_c % 4 == 0 for mode 3): the quad is four
        // consecutive floats, 16-byte aligned.
        let at = out_index(row, col, split) / 4u;
        if (ACCUMULATE && (MODE == 1u || MODE == 4u)) {
          v += out4[at];
        }
        out4[at] = v;
      } else {
        for (var t = 0u; t < 4u; t++) {
          if (col + t < p.n) {
            write_out(out_index(row, col + t, split), v[t]);
          }
        }
      }
    }
  }
}

// Rows are pixels (n, y, x): modes 0, 1 (im2col), 3 (plain), 4 (2 × 2 gather).
fn pixel_rows(row0: u32) {
  let h = p.h;
  let w = p.w;
  let a_c = p.a_c;
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
        // k = (tap, c) in both modes (mode 1's B holds the flipped kernel).
        let k0 = (ky * p.kw + kx) * a_c;
        for (var c = 0u; c < a_c; c++) {
          for (var i = 0u; i < ROWS; i++) {
            av[i] = select(0.0, a_src[at[i] + c], inside[i]);
          }
          step(b_lane(k0 + c));
        }
      }
    }
  } else if (MODE == 3u) {
    let k = p.k;
    var at: array<u32, ROWS>;
    for (var i = 0u; i < ROWS; i++) {
      at[i] = min(row0 + i, p.m - 1u) * k;
    }
    for (var c = 0u; c < k; c++) {
      for (var i = 0u; i < ROWS; i++) {
        av[i] = select(0.0, a_src[at[i] + c], ok[i]);
      }
      step(b_lane(c));
    }
  } else {
    // MODE 4: k = (ab, co); dy is (2h, 2w) with a_c = co channels; B = w as [(ab, co) × ci].
    for (var ab = 0u; ab < 4u; ab++) {
      var at: array<u32, ROWS>;
      for (var i = 0u; i < ROWS; i++) {
        at[i] = ((n[i] * 2u * h + 2u * u32(y[i]) + ab / 2u) * 2u * w + 2u * u32(x[i]) + ab % 2u) * a_c;
      }
      for (var c = 0u; c < a_c; c++) {
        for (var i = 0u; i < ROWS; i++) {
          av[i] = select(0.0, a_src[at[i] + c], ok[i]);
        }
        step(b_lane(ab * a_c + c));
      }
    }
  }
}

// Rows are weights and the reduction runs over pixels [begin, end) of the
// split: mode 2 rows (ky, kx, ci) of im2col(x)ᵀ, mode 5 rows (a, b, co) of dy;
// B's row k is the pixel's row of dy (mode 2) or x (mode 5).
fn weight_rows(row0: u32, begin: u32, end: u32) {
  let h = p.h;
  let w = p.w;
  let a_c = p.a_c;
  var off: array<vec2<i32>, ROWS>; // (dy, dx) of each row's tap
  var ch: array<u32, ROWS>;        // channel of each row
  var ok: array<bool, ROWS>;
  for (var r = 0u; r < ROWS; r++) {
    ok[r] = row0 + r < p.m;
    let row = min(row0 + r, p.m - 1u);
    ch[r] = row % a_c;
    off[r] = tap_offset(row / a_c);
  }
  var x = begin % w;
  var y = (begin / w) % h;
  var n = begin / (w * h);
  for (var px = begin; px < end; px++) {
    if (SHARED_TAP) {
      // M is a multiple of ROWS here, so row 0 speaks for every row.
      let t = weight_tap(off[0], ch[0], ok[0], n, y, x);
      for (var i = 0u; i < ROWS; i++) {
        av[i] = select(0.0, a_src[t.at + i], t.inside);
      }
    } else {
      for (var i = 0u; i < ROWS; i++) {
        let t = weight_tap(off[i], ch[i], ok[i], n, y, x);
        av[i] = select(0.0, a_src[t.at], t.inside);
      }
    }
    step(b_lane(px));
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
}

@compute @workgroup_size(GROUP, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lane: u32,
        @builtin(subgroup_invocation_id) sub_lane: u32) {
  col0 = wg.y * COLS;
  my_col = col0 + 4u * sub_lane;
  let row0 = (wg.x * GROUP + lane) * ROWS;
  for (var i = 0u; i < ROWS; i++) {
    for (var q = 0u; q < 8u; q++) {
      acc[i][q] = vec4<f32>(0.0);
    }
  }
  if (MODE == 2u || MODE == 5u) {
    let begin = wg.z * p.k_per_split;
    weight_rows(row0, begin, min(p.k, begin + p.k_per_split));
  } else {
    pixel_rows(row0);
  }
  store_all(row0, wg.z);
}
