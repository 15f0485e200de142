// Weights rearranged for the broadcast convolution (conv_broadcast.wgsl), which
// reads B one contiguous row at a time. A batch of `batches` matrices of
// rows × cols is transposed, optionally in reverse batch order:
//   out[b, j, i] = w[FLIP ? batches − 1 − b : b, i, j].
// Conv ∂input: w (kh, kw, in, out) as taps × [in × out] → B[(tap, out), in] with
// the taps flipped (FLIP); transposed conv forward: w (2, 2, out, in) as one
// [(a, b, out) × in] matrix → B[in, (a, b, out)].
// One invocation per element of out (the grid may be folded into two
// dimensions: index gid.x + gid.y · row_threads). Weights are small (at most a
// few million values), so this costs a fraction of the GEMM it feeds.

override FLIP: bool = false;

struct Params {
  batches: u32,
  rows: u32,
  cols: u32,
  row_threads: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let o = gid.x + gid.y * p.row_threads;
  let per = p.rows * p.cols;
  if (o >= p.batches * per) {
    return;
  }
  let b = o / per;
  let r = o % per;
  let j = r / p.rows; // out is [b, j, i]: i runs fastest
  let i = r % p.rows;
  let src_b = select(b, p.batches - 1u - b, FLIP);
  out[o] = w[(src_b * p.rows + i) * p.cols + j];
}
