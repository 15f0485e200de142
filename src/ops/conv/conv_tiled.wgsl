// Convolutions as implicit GEMM: C[M × N] = A[M × K] · B[K × N], where A and B
// are never materialised — each tile is gathered straight from the NHWC
// activations and the Keras-layout weights.
//
// MODE picks the convolution and so how A, B and C map onto tensors:
//   0 conv forward          A = im2col(x)      [N·H·W  × KH·KW·Ci]   B = w [KH·KW·Ci × Co]
//                           C → y[N,H,W,Co] = act(C + bias)
//   1 conv ∂input           A = im2col(dy)     [N·H·W  × KH·KW·Co]   B = w flipped, (ci,co) swapped
//                           C → dx[N,H,W,Ci]         (a 'full' correlation: pad' = KH−1−pad)
//   2 conv ∂weights         A = im2col(x)ᵀ     [KH·KW·Ci × N·H·W]    B = dy [N·H·W × Co]
//                           C → partial sums, one slice per split of the N·H·W reduction
//   3 transposed fwd        A = x              [N·H·W  × Ci]         B[ci, (a,b,co)] = w[a,b,co,ci]
//                           C → y[n, 2i+a, 2j+b, co] = C + bias[co]   (2×2, stride 2: no overlap)
//   4 transposed ∂input     A[(n,i,j), (a,b,co)] = dy[n,2i+a,2j+b,co]  B = w as [(a,b,co) × ci]
//                           C → dx[N,H,W,Ci]
//   5 transposed ∂weights   A = (mode 4's A)ᵀ  [4·Co × N·H·W]        B = x [N·H·W × Ci]
//                           C → partial sums per split (BIAS_COL: B has a column of ones more)
// Layouts: activations NHWC float32; conv weights (kh, kw, in, out); transposed
// conv weights (kh, kw, out, in), both as Keras stores them.
//
// Tiling: a workgroup of WG_X × WG_Y invocations computes a TM × TN tile of C
// (TM = WG_Y·RM rows, TN = WG_X·RN columns); each invocation holds RM × RN
// of it in registers, as RM/4 quads of rows by RN/4 quads of columns: rows
// 4·(ty + WG_Y·i) + r and columns 4·(tx + WG_X·j) + c, so that neighbouring
// invocations read neighbouring vec4s of the staged tiles and store
// neighbouring columns. The K dimension is walked TK at a time: TK × TM of A
// and TK × TN of B are staged in workgroup memory as vec4s along rows and
// columns, then every invocation does TK · RM · RN FMAs from them, reading
// RM/4 + RN/4 vec4s per k. The planner picks the tile per GEMM, so that it
// fits the GEMM's shape (a 32-column C gets 32-column tiles). Modes 2 and 5 split the reduction over pixels across
// workgroups (workgroup z), and with SPLIT_K modes 0 and 1 theirs over taps
// and channels (k_range); split_sum.wgsl then adds the slices up. B is read as a row-major [K × N] matrix in every mode (b_kn): for modes
// 1 and 3 the weights are rearranged first (weights_transpose.wgsl).

// Parameters (p), bindings 0–5 (a_src, b_src, bias, out, mask_src), MODE,
// ACCUMULATE, out_index(), write_out() and store() come from conv_common.wgsl,
// row_info() and a_quad() from conv_gather.wgsl, ACT and activate() from
// activation.wgsl; gemm.ts appends them to this file.

// WG_X (invocations along the columns of a tile), WG_Y (along its rows), RM
// and RN (rows and columns of C per invocation, multiples of 4) are set by
// the planner (plan.ts, TILE_SHAPES) in front of this file.
const TK: u32 = 16u;
const TM: u32 = WG_Y * RM;
const TN: u32 = WG_X * RN;
const TM4: u32 = TM / 4u;
const TN4: u32 = TN / 4u;
const THREADS: u32 = WG_X * WG_Y;
// Staging: each invocation fills A_PASSES vec4s of a_tile and B_PASSES of b_tile per step.
const A_PASSES: u32 = TK * TM4 / THREADS;
const B_PASSES: u32 = TK * TN4 / THREADS;
const_assert RM % 4u == 0u && RN % 4u == 0u;
const_assert A_PASSES >= 1u && A_PASSES * THREADS == TK * TM4;
const_assert B_PASSES >= 1u && B_PASSES * THREADS == TK * TN4;

var<workgroup> a_tile: array<vec4<f32>, TK * TM4>; // [k][quad of rows]
var<workgroup> b_tile: array<vec4<f32>, TK * TN4>; // [k][quad of columns]

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let row0 = wg.y * TM;
  let col0 = wg.x * TN;
  let split = wg.z;
  let tx = lid.x;
  let ty = lid.y;

  let k_span = k_range(split);
  let k_begin = k_span.x;
  let k_end = k_span.y;

  var acc: array<vec4<f32>, RM * RN / 4u>; // [row][quad of columns], zero-initialised

  // This invocation's A slots (see below) and their rows, decoded once.
  var a_kk: array<u32, A_PASSES>;
  var a_rq: array<u32, A_PASSES>;
  var a_info: array<vec4<u32>, A_PASSES>;
  for (var q = 0u; q < A_PASSES; q++) {
    let s = li + q * THREADS;
    let slot = a_slot(s);
    a_kk[q] = slot.x;
    a_rq[q] = slot.y;
    for (var r = 0u; r < 4u; r++) {
      a_info[q][r] = row_info(row0 + 4u * a_rq[q] + r);
    }
  }

  for (var k0 = k_begin; k0 < k_end; k0 += TK) {
    // Stage A: each slot a quad of rows at one k (a_slot).
    for (var q = 0u; q < A_PASSES; q++) {
      let k = k0 + a_kk[q];
      var v = vec4<f32>(0.0);
      if (k < k_end) {
        v = a_quad(row0 + 4u * a_rq[q], k, a_info[q]);
      }
      a_tile[a_kk[q] * TM4 + a_rq[q]] = v;
    }
    // Stage B: slot s is (k, quad of columns), columns fastest.
    for (var q = 0u; q < B_PASSES; q++) {
      let s = li + q * THREADS;
      let kk = s / TN4;
      let cq = s % TN4;
      let k = k0 + kk;
      var v = vec4<f32>(0.0);
      if (k < k_end) {
        for (var c = 0u; c < 4u; c++) {
          let col = col0 + 4u * cq + c;
          if (col < p.n) {
            v[c] = b_kn(k, col);
          }
        }
      }
      b_tile[kk * TN4 + cq] = v;
    }
    workgroupBarrier();

    for (var kk = 0u; kk < TK; kk++) {
      var av: array<vec4<f32>, RM / 4u>;
      var bv: array<vec4<f32>, RN / 4u>;
      for (var i = 0u; i < RM / 4u; i++) {
        av[i] = a_tile[kk * TM4 + ty + WG_Y * i];
      }
      for (var j = 0u; j < RN / 4u; j++) {
        bv[j] = b_tile[kk * TN4 + tx + WG_X * j];
      }
      for (var i = 0u; i < RM / 4u; i++) {
        for (var r = 0u; r < 4u; r++) {
          for (var j = 0u; j < RN / 4u; j++) {
            let at = (4u * i + r) * (RN / 4u) + j;
            acc[at] = fma(vec4<f32>(av[i][r]), bv[j], acc[at]);
          }
        }
      }
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < RM / 4u; i++) {
    for (var r = 0u; r < 4u; r++) {
      let row = row0 + 4u * (ty + WG_Y * i) + r;
      if (row >= p.m) {
        continue;
      }
      for (var j = 0u; j < RN / 4u; j++) {
        let v = acc[(4u * i + r) * (RN / 4u) + j];
        for (var c = 0u; c < 4u; c++) {
          let col = col0 + 4u * (tx + WG_X * j) + c;
          if (col < p.n) {
            store(row, col, split, v[c]);
          }
        }
      }
    }
  }
}
