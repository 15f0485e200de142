// Winograd F(2×2, 3×3): the tile size and transforms for winograd.wgsl
// (which the wrapper appends). Interpolation points 0, 1, −1 and ∞:
//   Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]
//   G  = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]
//   Aᵀ = [1 1 1 0; 0 1 −1 −1]
// 16 multiplies per 2 × 2 outputs and channel pair (2.25× fewer than the
// direct convolution's 36); against the GEMM's sums the results differ by
// about 10⁻⁶ relative.

const TILE: u32 = 2u;
const ALPHA: u32 = 4u;

// Bᵀ d for a column d of the 4 × 4 patch.
fn bt(d: Col) -> Col {
  return Col(d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]);
}

// G a for a column a of the kernel.
fn gt(a0: Quad, a1: Quad, a2: Quad) -> Col {
  return Col(a0, 0.5 * (a0 + a1 + a2), 0.5 * (a0 - a1 + a2), a2);
}

// Aᵀ m for a column m of the 4 × 4 products.
fn at(m: Col) -> Out {
  return Out(m[0] + m[1] + m[2], m[1] - m[2] - m[3]);
}
