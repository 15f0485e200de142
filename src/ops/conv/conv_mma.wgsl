// The convolutions' implicit GEMMs (every mode of conv_tiled.wgsl's table) on
// subgroup matrices: f16 operands, f32 accumulation — the tensor cores on
// NVIDIA. A, B and C are each stored as f32 or f16 (A_TYPE, B_TYPE,
// OUT_TYPE: mixed precision keeps activations and their gradients in f16,
// weights and weight gradients in f32); each tile of A and B is rounded to
// f16 as it is staged.
//
// gemm.ts puts before this file the `enable` directives and the
// constants of the adapter's matrix shape and the tile:
//   SM × SK left matrices times SK × SN right matrices (the adapter's config),
//   SG invocations a subgroup, SUB_Y × SUB_X subgroups per workgroup, WM × WN
//   result matrices a subgroup (rows × columns, each 2 or 4), TK values of k
//   staged at a time, STAGES pairs of staged tiles (1, or 2: double-buffered);
// and after it conv_gather.wgsl (row_info, a_quad), conv_common.wgsl (p,
// bindings 0–5, store) and activation.wgsl.
//
// Tiling: a workgroup computes a TM × TN tile of C, TM = SUB_Y·WM·SM rows
// and TN = SUB_X·WN·SN columns; subgroup (sy, sx) holds the WM × WN result
// matrices of rows sy·WM·SM… and columns sx·WN·SN…, as named variables
// (arrays of matrices indexed in loops may live in memory instead of
// registers). Each k piece loads WM + WN matrices for WM·WN products: 2 × 2
// four for four, 4 × 2 six for eight, 4 × 4 eight for sixteen, with fewer
// subgroups for the same tile and more registers each.
// K is walked TK at a time: TM × TK of A (four rows of one k gathered as in
// conv_tiled.wgsl) and TK × TN of B ([k][column]) are read into registers
// (fetch) and staged as f16 in workgroup memory (stage), then each subgroup
// runs TK / SK steps of WM + WN matrix loads and WM·WN multiply-accumulates.
// With STAGES = 2 (double-buffered tiles) the tiles are twice: a step
// multiplies one pair while the next step's values, fetched before, are
// staged into the other, and one barrier a step serves both, where one pair
// of tiles needs a barrier after staging and another after multiplying.
// A is staged in the order its invocations gather it, so that neighbouring
// invocations write neighbouring halves: row-major ([row][k]) where they
// take neighbouring k (the pixel-row modes, whose global reads are then
// neighbouring channels), column-major ([k][row]) where they take
// neighbouring rows (modes 2 and 5). B likewise: row-major ([k][column])
// in general, column-major ([column][k]) in modes 1 and 3, which read the
// weights as stored, along k, with no rearranging pass (b_stored). Where the
// channels A is read along come in fours (A4), each invocation loads four
// values of A with one vec4 (four k of a pixel row, or four channel rows of
// one k), and B likewise four columns, or four k of one column (B4),
// through vec4 views of the same buffers (bindings 6 and 7); otherwise A is
// gathered as in conv_tiled.wgsl, four rows of one k a slot. Rows of every
// staged tile are PAD halves longer than needed, so that the matrix loads,
// which read SK-long pieces of consecutive rows, fall in different banks.
// At the end each subgroup writes its result matrices one at a time through
// a small f32 scratch in workgroup memory, and its invocations pass every
// element to store() (bias, activation, the transposed convolution's
// scatter, split slices, accumulation), as the f32 shader does.

const TM: u32 = SUB_Y * WM * SM;
const TN: u32 = SUB_X * WN * SN;
const_assert (WM == 2u || WM == 4u) && (WN == 2u || WN == 4u);
const PAD: u32 = 8u;
// Halves between consecutive rows of a_tile (row-major) or consecutive k
// (column-major), and between consecutive k (row-major) or columns
// (column-major) of b_tile.
const A_ROW_STRIDE: u32 = TK + PAD;
const A_COL_STRIDE: u32 = TM + PAD;
const B_STRIDE: u32 = TN + PAD;
const B_COL_STRIDE: u32 = TK + PAD;
const TM4: u32 = TM / 4u;
const THREADS: u32 = SUB_Y * SUB_X * SG;
// Staging: each invocation fills A_PASSES quads of a_tile (four rows of one k,
// or with A4 in the pixel-row modes four k of one row) and B_PASSES quads of
// columns of b_tile per step.
const A_PASSES: u32 = TK * TM4 / THREADS;
const B_PASSES: u32 = TK * (TN / 4u) / THREADS;
const_assert TK % SK == 0u && TM % 4u == 0u && TN % 4u == 0u;
const_assert A_PASSES >= 1u && A_PASSES * THREADS == TK * TM4;
const_assert B_PASSES >= 1u && B_PASSES * THREADS == TK * (TN / 4u);

// Halves of one tile of A and of B; the tiles hold STAGES of each, one after the other.
const A_TILE: u32 = max(TM * A_ROW_STRIDE, TK * A_COL_STRIDE);
const B_TILE: u32 = max(TK * B_STRIDE, TN * B_COL_STRIDE);
const_assert STAGES == 1u || STAGES == 2u;
var<workgroup> a_tile: array<f16, STAGES * A_TILE>; // [row][k] or [k][row]
var<workgroup> b_tile: array<f16, STAGES * B_TILE>; // [k][column] or [column][k]

// Whether a_tile is row-major: the pixel-row modes (see above).
override A_BY_ROWS: bool = MODE != 2u && MODE != 5u;
// A's and B's values come in fours along what a slot reads (the wrapper checks the channel counts).
override A4: bool = false;
override B4: bool = false;
// Modes 1 and 3 read the weights as stored (b_stored), which runs along k,
// and stage b_tile column-major; the other modes read B as [k][column].
override B_BY_COLS: bool = false;
@group(0) @binding(6) var<storage, read> a4_src: array<vec4<A_TYPE>>;
@group(0) @binding(7) var<storage, read> b4_src: array<vec4<B_TYPE>>;
// With B_GLOBAL (the planner's, for a weight gradient whose ∂output B is
// stored in f16, [k][column] with n columns, filling whole tiles and k
// steps) each subgroup loads its right matrices from B in memory as they
// are, and b_tile is neither fetched nor staged: the staging work of B goes,
// and the memory's caches serve the subgroups that share a matrix. B is
// bound here as f16 (another view of b_src), so that the shader compiles
// whatever B_TYPE is; elsewhere a placeholder is bound.
override B_GLOBAL: bool = false;
@group(0) @binding(8) var<storage, read> bg_src: array<f16>;
// With A4 in the pixel-row modes a slot is one row and four k: slot s is row s / K4, k quad s % K4.
const K4: u32 = TK / 4u;

// A[row, k..k+3] for a pixel-row mode with A4 (zero outside the image or past
// M): one vec4 where A[row, k] lies (conv_gather.wgsl); info is row_info(row),
// k a multiple of 4 below K.
fn a_row_k4(row: u32, info: u32, k: u32) -> vec4<f32> {
  if (row >= p.m) {
    return vec4<f32>(0.0);
  }
  switch MODE {
    case 0u, 1u: {
      return a_row_tap4(row, info, conv_tap(k));
    }
    case 3u: {
      return vec4<f32>(a4_src[(row * p.k + k) / 4u]);
    }
    default: {
      return vec4<f32>(a4_src[(info * p.a_c + up_offset(k)) / 4u]);
    }
  }
}

// Modes 0 and 1 with A4: the four channels from tap.x at tap (dy, dx) of
// pixel `row` (below M), one vec4; zero outside the image.
fn a_row_tap4(row: u32, info: u32, tap: vec3<i32>) -> vec4<f32> {
  let at = conv_at(row, info, tap);
  if (at < 0) {
    return vec4<f32>(0.0);
  }
  return vec4<f32>(a4_src[u32(at) / 4u]);
}

// A[first..first+3, k] for modes 2 and 5 with A4: four channel rows of one
// tap at pixel k, one vec4; info is row_info(first).
fn a_rows4(first: u32, info: u32, k: u32) -> vec4<f32> {
  var yx = vec2<u32>(0u);
  if (MODE == 2u) {
    yx = pixel_yx(k);
  }
  return a_rows4_at(first, info, k, yx);
}

// a_rows4 with pixel k's (y, x) given (mode 2; unused in mode 5).
fn a_rows4_at(first: u32, info: u32, k: u32, yx: vec2<u32>) -> vec4<f32> {
  if (MODE == 2u && BIAS_ROW && info == ONES_ROW) {
    return vec4<f32>(1.0, 0.0, 0.0, 0.0); // the row of ones; the three after it lie past M
  }
  if (first >= p.m) {
    return vec4<f32>(0.0);
  }
  if (MODE == 2u) {
    let at = weight_at(k, info, yx);
    if (at < 0) {
      return vec4<f32>(0.0);
    }
    return vec4<f32>(a4_src[u32(at) / 4u]);
  }
  return vec4<f32>(a4_src[(up_base(k) + info) / 4u]);
}
// Where B[k, n] of modes 1 and 3 lies in the weights as stored (no
// rearranging pass): conv ∂input's B[(tap, co), ci] is w[flipped tap, ci, co]
// (w as kh × kw × ci × co, co = p.a_c); the transposed convolution's
// B[ci, (tap, co)] is w[tap, co, ci], at n·K + k. Both run along k: four k
// from a multiple of 4 are one vec4 where co (mode 1) or K (mode 3) is too.
fn b_stored(k: u32, n: u32) -> u32 {
  if (MODE == 1u) {
    let tap = k / p.a_c;
    return b_flipped(tap, k - tap * p.a_c, n);
  }
  return n * p.k + k;
}

// Mode 1: B[(tap, co), ci = n] as stored, w[flipped tap, n, co].
fn b_flipped(tap: u32, co: u32, n: u32) -> u32 {
  return ((p.kh * p.kw - 1u - tap) * p.n + n) * p.a_c + co;
}

// With STEP_TAP (the planner's: modes 0 and 1 with A4, where TK divides the
// channels A is read along) every k of a step lies in one tap: the step
// decodes its tap once, where otherwise each quad of A (and in mode 1 of B)
// divides its own k by the channel count.
override STEP_TAP: bool = false;
// With STEP_PIXEL (mode 2 with A4, where an image row holds at least TK
// pixels) a step's pixels k0 … k0 + TK − 1 span at most two rows: the step
// decodes the (y, x) of k0 once and each quad steps on from it (pixel_from),
// where otherwise each quad divides its own k by the width and height.
override STEP_PIXEL: bool = false;

// (y, x) of pixel k0 + d from k0's (y, x), for d < p.w: into the next row at
// most, and past the last row into the next image's first.
fn pixel_from(yx0: vec2<u32>, d: u32) -> vec2<u32> {
  var y = yx0.x;
  var x = yx0.y + d;
  if (x >= p.w) {
    x -= p.w;
    y += 1u;
    if (y == p.h) {
      y = 0u;
    }
  }
  return vec2<u32>(y, x);
}

var<workgroup> c_scratch: array<f32, SUB_Y * SUB_X * SM * SN>; // one result matrix per subgroup

// This invocation's A slots and their rows, decoded once by main() (slot
// order as in conv_tiled.wgsl; with A4 in the pixel-row modes, one row and a
// k quad): k within the step, row quad (or row), and row_info of each row.
var<private> a_kk: array<u32, A_PASSES>;
var<private> a_rq: array<u32, A_PASSES>;
var<private> a_info: array<vec4<u32>, A_PASSES>;
// One k step's values of A and B, read from memory and rounded to f16 by
// fetch() (half the registers of f32 while a prefetched step waits), put into
// the tiles by stage().
var<private> a_vals: array<vec4<f16>, A_PASSES>;
var<private> b_vals: array<vec4<f16>, B_PASSES>;

// With PREFETCH each step fetches the next step's values right after its
// tiles are staged, so that the memory reads are in flight while the
// subgroups multiply; without, a step fetches its own values just before
// staging them, and fewer registers stay live across the multiplies.
override PREFETCH: bool = false;

// A's and B's values of the step at k0, as f16, into a_vals and b_vals (zero past k_end, M or N).
fn fetch(k0: u32, k_end: u32, row0: u32, col0: u32, li: u32) {
  // STEP_TAP: the step's tap (its index, and conv_tap(k0): first channel, dy, dx).
  var tap_index = 0u;
  var tap0 = vec3<i32>(0);
  if (STEP_TAP) {
    tap_index = k0 / p.a_c;
    tap0 = vec3<i32>(i32(k0 - tap_index * p.a_c), i32(tap_index / p.kw) - i32(p.pad), i32(tap_index % p.kw) - i32(p.pad));
  }
  // STEP_PIXEL: the (y, x) of the step's first pixel.
  var yx0 = vec2<u32>(0u);
  if (STEP_PIXEL) {
    yx0 = pixel_yx(k0);
  }
  for (var q = 0u; q < A_PASSES; q++) {
    let k = k0 + a_kk[q];
    var v = vec4<f32>(0.0);
    if (k < k_end) {
      if (STEP_TAP) {
        let row = row0 + a_rq[q];
        if (row < p.m) {
          v = a_row_tap4(row, a_info[q][0], tap0 + vec3<i32>(i32(a_kk[q]), 0, 0));
        }
      } else if (A4 && A_BY_ROWS) {
        v = a_row_k4(row0 + a_rq[q], a_info[q][0], k);
      } else if (STEP_PIXEL) {
        v = a_rows4_at(row0 + 4u * a_rq[q], a_info[q][0], k, pixel_from(yx0, a_kk[q]));
      } else if (A4 && !A_BY_ROWS) {
        v = a_rows4(row0 + 4u * a_rq[q], a_info[q][0], k);
      } else {
        v = a_quad(row0 + 4u * a_rq[q], k, a_info[q]);
      }
    }
    a_vals[q] = vec4<f16>(v);
  }
  for (var q = 0u; q < B_PASSES; q++) {
    if (B_GLOBAL) {
      break;
    }
    let s = li + q * THREADS;
    var v = vec4<f32>(0.0);
    if (B_BY_COLS) {
      // One column, four k (slot s: column s / K4, k quad s % K4).
      let n = col0 + s / K4;
      let k = k0 + 4u * (s % K4);
      if (n < p.n) {
        if (B4) {
          if (k < k_end) {
            var at: u32;
            if (STEP_TAP && MODE == 1u) {
              at = b_flipped(tap_index, u32(tap0.x) + 4u * (s % K4), n);
            } else {
              at = b_stored(k, n);
            }
            v = vec4<f32>(b4_src[at / 4u]);
          }
        } else {
          for (var c = 0u; c < 4u; c++) {
            if (k + c < k_end) {
              v[c] = f32(b_src[b_stored(k + c, n)]);
            }
          }
        }
      }
      b_vals[q] = vec4<f16>(v);
      continue;
    }
    let k = k0 + s / (TN / 4u);
    let c4 = 4u * (s % (TN / 4u));
    if (B4) {
      if (k < k_end && col0 + c4 < p.n) {
        if (BIAS_COL && col0 + c4 == p.n - 1u) {
          v = vec4<f32>(1.0, 0.0, 0.0, 0.0); // the column of ones; the three after it lie past N
        } else {
          v = vec4<f32>(b4_src[(k * select(p.n, p.n - 1u, BIAS_COL) + col0 + c4) / 4u]);
        }
      }
    } else {
      for (var c = 0u; c < 4u; c++) {
        if (k < k_end && col0 + c4 + c < p.n) {
          v[c] = b_kn(k, col0 + c4 + c);
        }
      }
    }
    b_vals[q] = vec4<f16>(v);
  }
}

// a_vals and b_vals into tile pair `buf` of a_tile and b_tile, each
// invocation writing neighbouring halves where it can (see the top of this file).
fn stage(li: u32, buf: u32) {
  let a0 = buf * A_TILE;
  let b0 = buf * B_TILE;
  for (var q = 0u; q < A_PASSES; q++) {
    let v = a_vals[q];
    if (A4 && A_BY_ROWS) {
      // One row, four k: row-major, four neighbouring halves.
      let at = a0 + a_rq[q] * A_ROW_STRIDE + a_kk[q];
      for (var c = 0u; c < 4u; c++) {
        a_tile[at + c] = v[c];
      }
      continue;
    }
    let row = 4u * a_rq[q];
    for (var r = 0u; r < 4u; r++) {
      if (A_BY_ROWS) {
        a_tile[a0 + (row + r) * A_ROW_STRIDE + a_kk[q]] = v[r];
      } else {
        a_tile[a0 + a_kk[q] * A_COL_STRIDE + row + r] = v[r];
      }
    }
  }
  for (var q = 0u; q < B_PASSES; q++) {
    if (B_GLOBAL) {
      break;
    }
    let s = li + q * THREADS;
    if (B_BY_COLS) {
      let at = b0 + (s / K4) * B_COL_STRIDE + 4u * (s % K4);
      for (var c = 0u; c < 4u; c++) {
        b_tile[at + c] = b_vals[q][c];
      }
      continue;
    }
    let kk = s / (TN / 4u);
    let c4 = 4u * (s % (TN / 4u));
    for (var c = 0u; c < 4u; c++) {
      b_tile[b0 + kk * B_STRIDE + c4 + c] = b_vals[q][c];
    }
  }
}

@compute @workgroup_size(THREADS, 1, 1)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
  @builtin(subgroup_id) sid: u32,
  @builtin(subgroup_invocation_id) lane: u32,
) {
  let row0 = wg.y * TM;
  let col0 = wg.x * TN;
  let split = wg.z;
  // This subgroup's first row and column within the tile (subgroup-uniform: matrix offsets must be).
  let sub_row = (sid / SUB_X) * WM * SM;
  let sub_col = (sid % SUB_X) * WN * SN;

  let k_span = k_range(split);
  let k_begin = k_span.x;
  let k_end = k_span.y;

  for (var q = 0u; q < A_PASSES; q++) {
    let s = li + q * THREADS;
    if (A4 && A_BY_ROWS) {
      a_kk[q] = 4u * (s % K4);
      a_rq[q] = s / K4;
      a_info[q][0] = row_info(row0 + a_rq[q]);
      continue;
    }
    let slot = a_slot(s);
    a_kk[q] = slot.x;
    a_rq[q] = slot.y;
    for (var r = 0u; r < 4u; r++) {
      a_info[q][r] = row_info(row0 + 4u * a_rq[q] + r);
    }
  }

  // accIJ: result matrix row I, column J of the subgroup's; rows 2 and 3
  // only with WM = 4, columns 2 and 3 only with WN = 4.
  var acc00 = subgroup_matrix_result<f32, SN, SM>();
  var acc01 = subgroup_matrix_result<f32, SN, SM>();
  var acc10 = subgroup_matrix_result<f32, SN, SM>();
  var acc11 = subgroup_matrix_result<f32, SN, SM>();
  var acc20 = subgroup_matrix_result<f32, SN, SM>();
  var acc21 = subgroup_matrix_result<f32, SN, SM>();
  var acc30 = subgroup_matrix_result<f32, SN, SM>();
  var acc31 = subgroup_matrix_result<f32, SN, SM>();
  var acc02 = subgroup_matrix_result<f32, SN, SM>();
  var acc03 = subgroup_matrix_result<f32, SN, SM>();
  var acc12 = subgroup_matrix_result<f32, SN, SM>();
  var acc13 = subgroup_matrix_result<f32, SN, SM>();
  var acc22 = subgroup_matrix_result<f32, SN, SM>();
  var acc23 = subgroup_matrix_result<f32, SN, SM>();
  var acc32 = subgroup_matrix_result<f32, SN, SM>();
  var acc33 = subgroup_matrix_result<f32, SN, SM>();

  // Double-buffered: the first step's tiles staged before the loop, into pair 0.
  if (PREFETCH || STAGES == 2u) {
    fetch(k_begin, k_end, row0, col0, li);
  }
  if (STAGES == 2u) {
    stage(li, 0u);
    workgroupBarrier();
  }
  // The tile pair this step multiplies (always 0 with one pair).
  var buf = 0u;
  for (var k0 = k_begin; k0 < k_end; k0 += TK) {
    let more = k0 + TK < k_end;
    if (STAGES == 1u) {
      if (!PREFETCH) {
        fetch(k0, k_end, row0, col0, li);
      }
      stage(li, 0u);
      workgroupBarrier();
    }
    if ((PREFETCH || STAGES == 2u) && more) {
      fetch(k0 + TK, k_end, row0, col0, li);
    }

    for (var kk = 0u; kk < TK; kk += SK) {
      let left0 = left_matrix(sub_row, kk, buf);
      let left1 = left_matrix(sub_row + SM, kk, buf);
      let right0 = right_matrix(sub_col, kk, buf, k0, col0);
      let right1 = right_matrix(sub_col + SN, kk, buf, k0, col0);
      // Rows 2, 3 and columns 2, 3 are loaded only where the subgroup has them (WM, WN = 4).
      var left2 = left0;
      var left3 = left1;
      var right2 = right0;
      var right3 = right1;
      if (WM == 4u) {
        left2 = left_matrix(sub_row + 2u * SM, kk, buf);
        left3 = left_matrix(sub_row + 3u * SM, kk, buf);
      }
      if (WN == 4u) {
        right2 = right_matrix(sub_col + 2u * SN, kk, buf, k0, col0);
        right3 = right_matrix(sub_col + 3u * SN, kk, buf, k0, col0);
      }
      acc00 = subgroupMatrixMultiplyAccumulate(left0, right0, acc00);
      acc01 = subgroupMatrixMultiplyAccumulate(left0, right1, acc01);
      acc10 = subgroupMatrixMultiplyAccumulate(left1, right0, acc10);
      acc11 = subgroupMatrixMultiplyAccumulate(left1, right1, acc11);
      if (WM == 4u) {
        acc20 = subgroupMatrixMultiplyAccumulate(left2, right0, acc20);
        acc21 = subgroupMatrixMultiplyAccumulate(left2, right1, acc21);
        acc30 = subgroupMatrixMultiplyAccumulate(left3, right0, acc30);
        acc31 = subgroupMatrixMultiplyAccumulate(left3, right1, acc31);
      }
      if (WN == 4u) {
        acc02 = subgroupMatrixMultiplyAccumulate(left0, right2, acc02);
        acc03 = subgroupMatrixMultiplyAccumulate(left0, right3, acc03);
        acc12 = subgroupMatrixMultiplyAccumulate(left1, right2, acc12);
        acc13 = subgroupMatrixMultiplyAccumulate(left1, right3, acc13);
      }
      if (WM == 4u && WN == 4u) {
        acc22 = subgroupMatrixMultiplyAccumulate(left2, right2, acc22);
        acc23 = subgroupMatrixMultiplyAccumulate(left2, right3, acc23);
        acc32 = subgroupMatrixMultiplyAccumulate(left3, right2, acc32);
        acc33 = subgroupMatrixMultiplyAccumulate(left3, right3, acc33);
      }
    }
    // Double-buffered: the next step into the other pair, which no subgroup
    // reads until this step's barrier (its last readers passed the previous one).
    if (STAGES == 2u && more) {
      stage(li, 1u - buf);
    }
    workgroupBarrier();
    if (STAGES == 2u) {
      buf = 1u - buf;
    }
  }

  let r0 = row0 + sub_row;
  let c0 = col0 + sub_col;
  emit(acc00, r0, c0, sid, lane, split);
  emit(acc01, r0, c0 + SN, sid, lane, split);
  emit(acc10, r0 + SM, c0, sid, lane, split);
  emit(acc11, r0 + SM, c0 + SN, sid, lane, split);
  if (WM == 4u) {
    emit(acc20, r0 + 2u * SM, c0, sid, lane, split);
    emit(acc21, r0 + 2u * SM, c0 + SN, sid, lane, split);
    emit(acc30, r0 + 3u * SM, c0, sid, lane, split);
    emit(acc31, r0 + 3u * SM, c0 + SN, sid, lane, split);
  }
  if (WN == 4u) {
    emit(acc02, r0, c0 + 2u * SN, sid, lane, split);
    emit(acc03, r0, c0 + 3u * SN, sid, lane, split);
    emit(acc12, r0 + SM, c0 + 2u * SN, sid, lane, split);
    emit(acc13, r0 + SM, c0 + 3u * SN, sid, lane, split);
  }
  if (WM == 4u && WN == 4u) {
    emit(acc22, r0 + 2u * SM, c0 + 2u * SN, sid, lane, split);
    emit(acc23, r0 + 2u * SM, c0 + 3u * SN, sid, lane, split);
    emit(acc32, r0 + 3u * SM, c0 + 2u * SN, sid, lane, split);
    emit(acc33, r0 + 3u * SM, c0 + 3u * SN, sid, lane, split);
  }
}

// The SM × SK piece of staged A (tile pair `buf`) at tile row `row`, k `kk`, from either layout.
fn left_matrix(row: u32, kk: u32, buf: u32) -> subgroup_matrix_left<f16, SK, SM> {
  if (A_BY_ROWS) {
    return subgroupMatrixLoad<subgroup_matrix_left<f16, SK, SM>, row_major>(&a_tile, buf * A_TILE + row * A_ROW_STRIDE + kk, A_ROW_STRIDE);
  }
  return subgroupMatrixLoad<subgroup_matrix_left<f16, SK, SM>, col_major>(&a_tile, buf * A_TILE + kk * A_COL_STRIDE + row, A_COL_STRIDE);
}

// The SK × SN piece of staged B (tile pair `buf`) at k `kk`, tile column
// `col`, from either layout; with B_GLOBAL, of B in memory at k k0 + kk,
// column col0 + col (the step's and the tile's first).
fn right_matrix(col: u32, kk: u32, buf: u32, k0: u32, col0: u32) -> subgroup_matrix_right<f16, SN, SK> {
  if (B_GLOBAL) {
    return subgroupMatrixLoad<subgroup_matrix_right<f16, SN, SK>, row_major>(&bg_src, (k0 + kk) * p.n + col0 + col, p.n);
  }
  if (B_BY_COLS) {
    return subgroupMatrixLoad<subgroup_matrix_right<f16, SN, SK>, col_major>(&b_tile, buf * B_TILE + col * B_COL_STRIDE + kk, B_COL_STRIDE);
  }
  return subgroupMatrixLoad<subgroup_matrix_right<f16, SN, SK>, row_major>(&b_tile, buf * B_TILE + kk * B_STRIDE + col, B_STRIDE);
}

// Writes one result matrix, whose first element is C[r0, c0], through the
// subgroup's scratch: every invocation of the workgroup calls it alike (it
// holds barriers), and each subgroup's lanes store their share of elements.
fn emit(m: subgroup_matrix_result<f32, SN, SM>, r0: u32, c0: u32, sid: u32, lane: u32, split: u32) {
  let scratch = sid * SM * SN;
  subgroupMatrixStore<row_major>(&c_scratch, scratch, m, SN);
  workgroupBarrier();
  for (var e = lane; e < SM * SN; e += SG) {
    let row = r0 + e / SN;
    let col = c0 + e % SN;
    if (row < p.m && col < p.n) {
      store(row, col, split, c_scratch[scratch + e]);
    }
  }
  workgroupBarrier();
}
