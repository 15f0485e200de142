// The f16 subgroup-matrix ceiling, the yardstick of the mixed-precision
// convolutions, on conv_mma.wgsl's layout: SUB_Y × SUB_X subgroups a
// workgroup, each holding 2 × 2 result matrices, SK deep; tiles of A
// (TM × TK) and B (TK × TN) staged as f16 in workgroup memory, rows PAD
// halves longer. VARIANT picks how far the loop goes toward conv_mma's:
//   0: the four operands loaded once, then only multiply-accumulates (the
//      tensor cores' own rate);
//   1: each step loads its four operands from the tiles, as conv_mma's inner
//      loop does;
//   2: as 1, and every TK / SK steps the tiles are written again between two
//      barriers, as conv_mma's k loop does, without its reads of global
//      memory (the remaining difference to a convolution's GEMM rate);
//   3: as 1 with 4 × 2 result matrices a subgroup (its two more left
//      matrices from the next rows of the tile, wrapping): six loads for
//      eight multiply-accumulates instead of four for four;
//   4: as 2, the tiles' values read from global memory as conv_mma's vec4
//      paths read them, four halves a load, but from consecutive addresses
//      (src4, spread over p.src_quads quads so that they come from L2, not
//      L1): conv_mma's loop without its gather's index arithmetic.
// gemm-like constants (SM, SN, SK, SG, SUB_Y, SUB_X, TK) come in front, from
// the default mixed-precision tile. Every operand is `ones[0]` (1), so every
// result element ends at p.iterations · SK, which the test checks; each
// subgroup stores 8 result matrices, of which all variants but 3 leave the
// last four zero.

struct Params {
  iterations: u32,
  src_quads: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ones: array<f16>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read> src4: array<vec4<f16>>;

override VARIANT: u32 = 0u;

const TM: u32 = SUB_Y * 2u * SM;
const TN: u32 = SUB_X * 2u * SN;
const PAD: u32 = 8u;
const A_STRIDE: u32 = TK + PAD;
const B_STRIDE: u32 = TN + PAD;
const THREADS: u32 = SUB_Y * SUB_X * SG;
const STEPS: u32 = TK / SK;
const_assert TK % SK == 0u;

var<workgroup> a_tile: array<f16, TM * A_STRIDE>; // [row][k]
var<workgroup> b_tile: array<f16, TK * B_STRIDE>; // [k][column]

// Every invocation writes its share of both tiles, a half at a time, as conv_mma's stage() does.
fn fill(li: u32, v: f16) {
  for (var i = li; i < TM * TK; i += THREADS) {
    a_tile[(i / TK) * A_STRIDE + i % TK] = v;
  }
  for (var i = li; i < TK * TN; i += THREADS) {
    b_tile[(i / TN) * B_STRIDE + i % TN] = v;
  }
}

// Both tiles from src4 from quad `base` on: each slot a vec4 (four halves of one row), A's quads first.
fn fill_from(li: u32, base: u32) {
  for (var q = li; q < (TM * TK + TK * TN) / 4u; q += THREADS) {
    let v = src4[(base + q) % p.src_quads];
    let i = 4u * q;
    var at: u32;
    if (i < TM * TK) {
      at = (i / TK) * A_STRIDE + i % TK;
      a_tile[at] = v.x;
      a_tile[at + 1u] = v.y;
      a_tile[at + 2u] = v.z;
      a_tile[at + 3u] = v.w;
    } else {
      let j = i - TM * TK;
      at = (j / TN) * B_STRIDE + j % TN;
      b_tile[at] = v.x;
      b_tile[at + 1u] = v.y;
      b_tile[at + 2u] = v.z;
      b_tile[at + 3u] = v.w;
    }
  }
}

fn left(row: u32, kk: u32) -> subgroup_matrix_left<f16, SK, SM> {
  return subgroupMatrixLoad<subgroup_matrix_left<f16, SK, SM>, row_major>(&a_tile, row * A_STRIDE + kk, A_STRIDE);
}

fn right(col: u32, kk: u32) -> subgroup_matrix_right<f16, SN, SK> {
  return subgroupMatrixLoad<subgroup_matrix_right<f16, SN, SK>, row_major>(&b_tile, kk * B_STRIDE + col, B_STRIDE);
}

@compute @workgroup_size(THREADS, 1, 1)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
  @builtin(subgroup_id) sid: u32,
) {
  let one = ones[0];
  fill(li, one);
  workgroupBarrier();
  // This subgroup's first row and column within the tiles (subgroup-uniform, as matrix offsets must be).
  let sub_row = (sid / SUB_X) * 2u * SM;
  let sub_col = (sid % SUB_X) * 2u * SN;

  var acc00 = subgroup_matrix_result<f32, SN, SM>();
  var acc01 = subgroup_matrix_result<f32, SN, SM>();
  var acc10 = subgroup_matrix_result<f32, SN, SM>();
  var acc11 = subgroup_matrix_result<f32, SN, SM>();
  var acc20 = subgroup_matrix_result<f32, SN, SM>();
  var acc21 = subgroup_matrix_result<f32, SN, SM>();
  var acc30 = subgroup_matrix_result<f32, SN, SM>();
  var acc31 = subgroup_matrix_result<f32, SN, SM>();
  let row2 = (sub_row + 2u * SM) % TM;
  let row3 = (sub_row + 3u * SM) % TM;
  var left0 = left(sub_row, 0u);
  var left1 = left(sub_row + SM, 0u);
  var right0 = right(sub_col, 0u);
  var right1 = right(sub_col + SN, 0u);

  for (var i = 0u; i < p.iterations; i += STEPS) {
    if (VARIANT == 2u) {
      workgroupBarrier();
      fill(li, one);
      workgroupBarrier();
    }
    if (VARIANT == 4u) {
      workgroupBarrier();
      // Each workgroup and k step its own stretch of src4.
      fill_from(li, (wg.x * 977u + i / STEPS) * ((TM * TK + TK * TN) / 4u));
      workgroupBarrier();
    }
    for (var s = 0u; s < STEPS; s++) {
      if (VARIANT != 0u) {
        // k rotates with i, so that no load repeats an earlier one the compiler could keep.
        let kk = ((i + s) % STEPS) * SK;
        left0 = left(sub_row, kk);
        left1 = left(sub_row + SM, kk);
        right0 = right(sub_col, kk);
        right1 = right(sub_col + SN, kk);
      }
      acc00 = subgroupMatrixMultiplyAccumulate(left0, right0, acc00);
      acc01 = subgroupMatrixMultiplyAccumulate(left0, right1, acc01);
      acc10 = subgroupMatrixMultiplyAccumulate(left1, right0, acc10);
      acc11 = subgroupMatrixMultiplyAccumulate(left1, right1, acc11);
      if (VARIANT == 3u) {
        let kk = ((i + s) % STEPS) * SK;
        let left2 = left(row2, kk);
        let left3 = left(row3, kk);
        acc20 = subgroupMatrixMultiplyAccumulate(left2, right0, acc20);
        acc21 = subgroupMatrixMultiplyAccumulate(left2, right1, acc21);
        acc30 = subgroupMatrixMultiplyAccumulate(left3, right0, acc30);
        acc31 = subgroupMatrixMultiplyAccumulate(left3, right1, acc31);
      }
    }
  }

  let base = (wg.x * SUB_Y * SUB_X + sid) * 8u * SM * SN;
  subgroupMatrixStore<row_major>(&out, base, acc00, SN);
  subgroupMatrixStore<row_major>(&out, base + SM * SN, acc01, SN);
  subgroupMatrixStore<row_major>(&out, base + 2u * SM * SN, acc10, SN);
  subgroupMatrixStore<row_major>(&out, base + 3u * SM * SN, acc11, SN);
  subgroupMatrixStore<row_major>(&out, base + 4u * SM * SN, acc20, SN);
  subgroupMatrixStore<row_major>(&out, base + 5u * SM * SN, acc21, SN);
  subgroupMatrixStore<row_major>(&out, base + 6u * SM * SN, acc30, SN);
  subgroupMatrixStore<row_major>(&out, base + 7u * SM * SN, acc31, SN);
}
