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
//                           C → partial sums per split
// Layouts: activations NHWC float32; conv weights (kh, kw, in, out); transposed
// conv weights (kh, kw, out, in), both as Keras stores them.
//
// Tiling: a workgroup of 16 × 16 invocations computes a 64 × 64 tile of C,
// each invocation a 4 × 4 block held in registers (rows ty + 16·i, columns
// tx + 16·j, so neighbouring invocations store neighbouring channels). The K
// dimension is walked 16 at a time: a 64 × 16 tile of A and a 16 × 64 tile of
// B are staged in workgroup memory, then every invocation does 16 × 16 FMAs
// from them. Each invocation loads 4 consecutive k of one A row, so the
// row's (n, y, x) is decoded once, outside the K loop. Modes 2 and 5 split
// the reduction over pixels across workgroups (global_invocation z); the
// `reduce_splits` entry point then adds the slices into the gradient.

// Parameters (p), bindings 0–4 (a_src, b_src, bias, out), MODE, ACT,
// ACCUMULATE, activate(), out_index(), write_out() and store() come from conv_common.wgsl,
// which the wrapper appends to this file.

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;

var<workgroup> a_tile: array<f32, 1024>; // [TK][TM]
var<workgroup> b_tile: array<f32, 1024>; // [TK][TN]

// Element (row, k) of A for the gathered modes 0 and 1: im2col of an NHWC
// tensor of a_c channels, `row` decoded as (n, y, x).
fn im2col(n: u32, y: u32, x: u32, k: u32) -> f32 {
  let ci = k % p.a_c;
  let kk = k / p.a_c;
  let kx = kk % p.kw;
  let ky = kk / p.kw;
  let iy = i32(y + ky) - i32(p.pad);
  let ix = i32(x + kx) - i32(p.pad);
  if (iy < 0 || ix < 0 || iy >= i32(p.h) || ix >= i32(p.w)) {
    return 0.0;
  }
  return a_src[((n * p.h + u32(iy)) * p.w + u32(ix)) * p.a_c + ci];
}

// dy[n, 2i+a, 2j+b, co] for a pixel (n, i, j) of the transposed conv's input
// and k = (a, b, co); `a_src` is dy, whose size is (2h, 2w).
fn upsampled(n: u32, i: u32, j: u32, k: u32) -> f32 {
  let co = k % p.a_c;
  let ab = k / p.a_c;
  let oy = 2u * i + ab / 2u;
  let ox = 2u * j + ab % 2u;
  return a_src[((n * 2u * p.h + oy) * 2u * p.w + ox) * p.a_c + co];
}

fn b_at(k: u32, col: u32) -> f32 {
  switch MODE {
    case 1u: {
      // k = (ky, kx, co) of the flipped kernel; col = ci; w is (kh, kw, ci, co).
      let co = k % p.a_c;
      let kk = k / p.a_c;
      let kx = p.kw - 1u - kk % p.kw;
      let ky = p.kh - 1u - kk / p.kw;
      return b_src[((ky * p.kw + kx) * p.n + col) * p.a_c + co];
    }
    case 3u: {
      // w is (a, b, co, ci): column (a, b, co) is row-major index col, k = ci.
      return b_src[col * p.k + k];
    }
    default: {
      // modes 0, 4: w as [K × N]; modes 2, 5: dy or x as [pixels × N].
      return b_src[k * p.n + col];
    }
  }
}

@compute @workgroup_size(16, 16, 1)
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

  // This invocation stages A-tile row `lrow`, k offsets kq..kq+3, and
  // B-tile row `brow`, columns bq..bq+3.
  let lrow = li / 4u;
  let kq = (li % 4u) * 4u;
  let brow = li / 16u;
  let bq = (li % 16u) * 4u;

  let arow = row0 + lrow;
  let arow_ok = arow < p.m;
  // (n, y, x) of this A row, for the modes whose A rows are pixels.
  let ax = arow % p.w;
  let ay = (arow / p.w) % p.h;
  let an = arow / (p.w * p.h);

  var k_begin = 0u;
  var k_end = p.k;
  if (MODE == 2u || MODE == 5u) {
    k_begin = split * p.k_per_split;
    k_end = min(p.k, k_begin + p.k_per_split);
  }

  var acc: array<array<f32, 4>, 4>;
  for (var i = 0u; i < 4u; i++) {
    for (var j = 0u; j < 4u; j++) {
      acc[i][j] = 0.0;
    }
  }

  for (var k0 = k_begin; k0 < k_end; k0 += TK) {
    // Stage A: a_tile[kk][lrow] = A[arow, k0 + kk].
    for (var q = 0u; q < 4u; q++) {
      let kk = kq + q;
      let k = k0 + kk;
      var v = 0.0;
      if (arow_ok && k < k_end) {
        switch MODE {
          case 0u, 1u: { v = im2col(an, ay, ax, k); }
          case 3u: { v = a_src[arow * p.k + k]; }
          case 4u: { v = upsampled(an, ay, ax, k); }
          case 2u: {
            // A[r, pixel] = im2col(x)[pixel, r]: here k is a pixel index.
            let px = k % p.w;
            let py = (k / p.w) % p.h;
            let pn = k / (p.w * p.h);
            v = im2col(pn, py, px, arow);
          }
          default: {
            let px = k % p.w;
            let py = (k / p.w) % p.h;
            let pn = k / (p.w * p.h);
            v = upsampled(pn, py, px, arow);
          }
        }
      }
      a_tile[kk * TM + lrow] = v;
    }
    // Stage B: b_tile[brow][bq + q] = B[k0 + brow, col0 + bq + q].
    for (var q = 0u; q < 4u; q++) {
      let k = k0 + brow;
      let col = col0 + bq + q;
      var v = 0.0;
      if (k < k_end && col < p.n) {
        v = b_at(k, col);
      }
      b_tile[brow * TN + bq + q] = v;
    }
    workgroupBarrier();

    for (var kk = 0u; kk < TK; kk++) {
      var av: array<f32, 4>;
      var bv: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) {
        av[i] = a_tile[kk * TM + ty + 16u * i];
        bv[i] = b_tile[kk * TN + tx + 16u * i];
      }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
          acc[i][j] = fma(av[i], bv[j], acc[i][j]);
        }
      }
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < 4u; i++) {
    let row = row0 + ty + 16u * i;
    if (row >= p.m) {
      continue;
    }
    for (var j = 0u; j < 4u; j++) {
      let col = col0 + tx + 16u * j;
      if (col < p.n) {
        store(row, col, split, acc[i][j]);
      }
    }
  }
}
