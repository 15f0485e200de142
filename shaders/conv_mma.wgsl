// The convolutions' implicit GEMMs (every mode of conv_gemm.wgsl's table) on
// subgroup matrices: f16 operands, f32 accumulation — the tensor cores on
// NVIDIA. Activations, weights and results stay f32 in memory; each tile of
// A and B is rounded to f16 as it is staged.
//
// src/kernels/conv.ts puts before this file the `enable` directives and the
// constants of the adapter's matrix shape and the tile:
//   SM × SK left matrices times SK × SN right matrices (the adapter's config),
//   SG invocations a subgroup, FM × FN result matrices per subgroup,
//   SUB_Y × SUB_X subgroups per workgroup;
// and after it conv_gather.wgsl (row_info, a_quad), conv_common.wgsl (p,
// bindings 0–4, store) and activation.wgsl.
//
// Tiling: a workgroup computes a TM × TN tile of C, TM = SUB_Y·FM·SM rows
// and TN = SUB_X·FN·SN columns; subgroup (sy, sx) holds the FM × FN result
// matrices of rows sy·FM·SM… and columns sx·FN·SN…. K is walked TK at a
// time: TM × TK of A (four rows of one k gathered as in conv_gemm.wgsl) and
// TK × TN of B ([k][column]) are staged as f16 in workgroup memory, then
// each subgroup runs TK / SK steps of FM + FN matrix loads and FM · FN
// multiply-accumulates. A is staged in the order its invocations gather it,
// so that neighbouring invocations write neighbouring halves: row-major
// ([row][k]) where they take neighbouring k (the pixel-row modes, whose
// global reads are then neighbouring channels), column-major ([k][row])
// where they take neighbouring rows (modes 2 and 5). Rows of every staged
// tile are PAD halves longer than needed, so that the matrix loads, which
// read SK-long pieces of consecutive rows, fall in different banks. At the end each subgroup writes its
// result matrices one at a time through a small f32 scratch in workgroup
// memory, and its invocations pass every element to store() (bias,
// activation, the transposed convolution's scatter, split slices,
// accumulation), as the f32 shader does.

const TM: u32 = SUB_Y * FM * SM;
const TN: u32 = SUB_X * FN * SN;
const TK: u32 = 32u;
const PAD: u32 = 8u;
// Halves between consecutive rows of a_tile (row-major) or consecutive k (column-major), and of b_tile.
const A_ROW_STRIDE: u32 = TK + PAD;
const A_COL_STRIDE: u32 = TM + PAD;
const B_STRIDE: u32 = TN + PAD;
const TM4: u32 = TM / 4u;
const THREADS: u32 = SUB_Y * SUB_X * SG;
// Staging: each invocation fills A_PASSES quads of rows of a_tile and B_PASSES quads of columns of b_tile per step.
const A_PASSES: u32 = TK * TM4 / THREADS;
const B_PASSES: u32 = TK * (TN / 4u) / THREADS;
const_assert TK % SK == 0u && TM % 4u == 0u && TN % 4u == 0u;
const_assert A_PASSES >= 1u && A_PASSES * THREADS == TK * TM4;
const_assert B_PASSES >= 1u && B_PASSES * THREADS == TK * (TN / 4u);

var<workgroup> a_tile: array<f16, max(TM * A_ROW_STRIDE, TK * A_COL_STRIDE)>; // [row][k] or [k][row]
var<workgroup> b_tile: array<f16, TK * B_STRIDE>; // [k][column]

// Whether a_tile is row-major: the pixel-row modes (see above).
override A_BY_ROWS: bool = MODE != 2u && MODE != 5u;
var<workgroup> c_scratch: array<f32, SUB_Y * SUB_X * SM * SN>; // one result matrix per subgroup

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
  let sub_row = (sid / SUB_X) * FM * SM;
  let sub_col = (sid % SUB_X) * FN * SN;

  var k_begin = 0u;
  var k_end = p.k;
  if (MODE == 2u || MODE == 5u) {
    k_begin = split * p.k_per_split;
    k_end = min(p.k, k_begin + p.k_per_split);
  }

  // This invocation's A slots and their rows, decoded once (slot order as in conv_gemm.wgsl).
  var a_kk: array<u32, A_PASSES>;
  var a_rq: array<u32, A_PASSES>;
  var a_info: array<vec4<u32>, A_PASSES>;
  for (var q = 0u; q < A_PASSES; q++) {
    let s = li + q * THREADS;
    if (MODE == 2u || MODE == 5u) {
      a_kk[q] = s / TM4;
      a_rq[q] = s % TM4;
    } else {
      a_kk[q] = s % TK;
      a_rq[q] = s / TK;
    }
    for (var r = 0u; r < 4u; r++) {
      a_info[q][r] = row_info(row0 + 4u * a_rq[q] + r);
    }
  }

  var acc: array<subgroup_matrix_result<f32, SN, SM>, FM * FN>;

  for (var k0 = k_begin; k0 < k_end; k0 += TK) {
    for (var q = 0u; q < A_PASSES; q++) {
      let k = k0 + a_kk[q];
      var v = vec4<f32>(0.0);
      if (k < k_end) {
        v = a_quad(row0 + 4u * a_rq[q], k, a_info[q]);
      }
      let row = 4u * a_rq[q];
      for (var r = 0u; r < 4u; r++) {
        if (A_BY_ROWS) {
          a_tile[(row + r) * A_ROW_STRIDE + a_kk[q]] = f16(v[r]);
        } else {
          a_tile[a_kk[q] * A_COL_STRIDE + row + r] = f16(v[r]);
        }
      }
    }
    for (var q = 0u; q < B_PASSES; q++) {
      let s = li + q * THREADS;
      let kk = s / (TN / 4u);
      let c4 = 4u * (s % (TN / 4u));
      let k = k0 + kk;
      for (var c = 0u; c < 4u; c++) {
        let col = col0 + c4 + c;
        var v = 0.0;
        if (k < k_end && col < p.n) {
          v = b_src[k * p.n + col];
        }
        b_tile[kk * B_STRIDE + c4 + c] = f16(v);
      }
    }
    workgroupBarrier();

    for (var kk = 0u; kk < TK; kk += SK) {
      var left: array<subgroup_matrix_left<f16, SK, SM>, FM>;
      var right: array<subgroup_matrix_right<f16, SN, SK>, FN>;
      for (var i = 0u; i < FM; i++) {
        let r = sub_row + i * SM;
        if (A_BY_ROWS) {
          left[i] = subgroupMatrixLoad<subgroup_matrix_left<f16, SK, SM>, row_major>(&a_tile, r * A_ROW_STRIDE + kk, A_ROW_STRIDE);
        } else {
          left[i] = subgroupMatrixLoad<subgroup_matrix_left<f16, SK, SM>, col_major>(&a_tile, kk * A_COL_STRIDE + r, A_COL_STRIDE);
        }
      }
      for (var j = 0u; j < FN; j++) {
        right[j] = subgroupMatrixLoad<subgroup_matrix_right<f16, SN, SK>, row_major>(&b_tile, kk * B_STRIDE + sub_col + j * SN, B_STRIDE);
      }
      for (var i = 0u; i < FM; i++) {
        for (var j = 0u; j < FN; j++) {
          acc[i * FN + j] = subgroupMatrixMultiplyAccumulate(left[i], right[j], acc[i * FN + j]);
        }
      }
    }
    workgroupBarrier();
  }

  let scratch = sid * SM * SN;
  for (var f = 0u; f < FM * FN; f++) {
    subgroupMatrixStore<row_major>(&c_scratch, scratch, acc[f], SN);
    workgroupBarrier();
    let r0 = row0 + sub_row + (f / FN) * SM;
    let c0 = col0 + sub_col + (f % FN) * SN;
    for (var e = lane; e < SM * SN; e += SG) {
      let row = r0 + e / SN;
      let col = c0 + e % SN;
      if (row < p.m && col < p.n) {
        store(row, col, split, c_scratch[scratch + e]);
      }
    }
    workgroupBarrier();
  }
}
