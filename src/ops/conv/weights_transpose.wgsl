// Weights rearranged for the convolution shaders that read B one contiguous
// row at a time (conv_tiled.wgsl, conv_mma.wgsl, conv_rows.wgsl). A batch of `batches` matrices of
// rows × cols is transposed, optionally in reverse batch order:
//   out[b, j, i] = w[FLIP ? batches − 1 − b : b, i, j].
// Conv ∂input: w (kh, kw, in, out) as taps × [in × out] → B[(tap, out), in] with
// the taps flipped (FLIP); transposed conv forward: w (2, 2, out, in) as one
// [(a, b, out) × in] matrix → B[in, (a, b, out)].
// An invocation moves column i of rows j0 .. j0 + 63 of matrices b, b + Z, …
// where (i, j0 / 64, b) = (gid.x, gid.y, gid.z) and Z is the grid's depth
// (at most 65,535; kernels of more taps take more than one matrix each): no
// integer division per element (on CPU adapters a division by a value known
// only at run time is a scalar division per lane), and few workgroups
// (lavapipe spends about a microsecond on each, more than moving a few
// thousand values). Weights are small (at most a few million values), so this
// costs a fraction of the GEMM it feeds.

override FLIP: bool = false;

// COLS, the columns per invocation (the grid's y is ⌈cols / COLS⌉), is set
// in front of this file from plan.ts's TRANSPOSE_COLS.

struct Params {
  batches: u32,
  rows: u32,
  cols: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// GROUP (invocations per workgroup) is written in front of this file by its TypeScript wrapper.
@compute @workgroup_size(GROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x;
  if (i >= p.rows) {
    return;
  }
  let end = min(p.cols, (gid.y + 1u) * COLS);
  for (var b = gid.z; b < p.batches; b += groups.z) {
    let src = (select(b, p.batches - 1u - b, FLIP) * p.rows + i) * p.cols;
    for (var j = gid.y * COLS; j < end; j++) {
      out[(b * p.cols + j) * p.rows + i] = w[src + j];
    }
  }
}
