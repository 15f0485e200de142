// Winograd F(4×4, 3×3): the tile size and transforms for winograd.wgsl
// (which the wrapper appends). Interpolation points 0, 1, −1, ½, −2 and ∞,
// which in float32 err about half as much as 0, ±1, ±2 (the commonly
// published set) for the same work:
//   Bᵀ = [1 −3/2 −2  3/2  1  0]     G = [    1      0      0 ]
//        [0  −1  1/2  5/2  1  0]         [  1/3    1/3    1/3 ]
//        [0   1 −5/2  1/2  1  0]         [ −1/3    1/3   −1/3 ]
//        [0  −2  −1    2   1  0]         [−16/15  −8/15  −4/15]
//        [0  1/2 −1  −1/2  1  0]         [ 1/15  −2/15   4/15 ]
//        [0   1 −3/2  −2  3/2 1]         [    0      0      1 ]
//   Aᵀ = [1 1  1  1    1  0]
//        [0 1 −1 1/2  −2  0]
//        [0 1  1 1/4   4  0]
//        [0 1 −1 1/8  −8  1]
// 36 multiplies per 4 × 4 outputs and channel pair (4× fewer than the direct
// convolution's 144); the transformed input and products take 2.25 values
// per output where F(2×2)'s take 4 (the transforms' arithmetic per output is
// a little more: about 10.6 operations for the input against 6). Against
// the GEMM's sums the results differ by about 10⁻⁵ relative.

const TILE: u32 = 4u;
const ALPHA: u32 = 6u;

// Bᵀ d for a column d of the 6 × 6 patch.
fn bt(d: Col) -> Col {
  let k = d[4] - d[2];
  let g = d[3] - d[1];
  return Col(
    d[0] + d[4] - 2.0 * d[2] + 1.5 * g,
    d[4] - d[1] + 0.5 * d[2] + 2.5 * d[3],
    d[4] + d[1] - 2.5 * d[2] + 0.5 * d[3],
    k + 2.0 * g,
    k - 0.5 * g,
    d[5] + d[1] - 1.5 * d[2] - 2.0 * d[3] + 1.5 * d[4],
  );
}

// G a for a column a of the kernel.
fn gt(a0: Quad, a1: Quad, a2: Quad) -> Col {
  return Col(
    a0,
    (a0 + a1 + a2) / 3.0,
    (a1 - a0 - a2) / 3.0,
    -(16.0 * a0 + 8.0 * a1 + 4.0 * a2) / 15.0,
    (a0 - 2.0 * a1 + 4.0 * a2) / 15.0,
    a2,
  );
}

// Aᵀ m for a column m of the 6 × 6 products.
fn at(m: Col) -> Out {
  let a = m[1] + m[2];
  let b = m[1] - m[2];
  return Out(
    m[0] + a + m[3] + m[4],
    b + 0.5 * m[3] - 2.0 * m[4],
    a + 0.25 * m[3] + 4.0 * m[4],
    b + 0.125 * m[3] - 8.0 * m[4] + m[5],
  );
}
