// Sums that finish gradient reductions split across workgroups.
//
// reduce_splits: dst[i] (+)= Σ_s src[s·len + i] — adds the per-split partial
//   weight gradients of conv_tiled.wgsl (modes 2 and 5) into the gradient.
//   Sums from i = p.first on go to dst2[i − p.first] instead: the weight and
//   bias gradients that mode 2 computes together (BIAS_ROW), which live in
//   different tensors (p.first = len, and dst2 a dummy, otherwise). With
//   BIAS_COL (mode 5's column of ones) the slices are C of p.cols columns:
//   column c < p.cols − 1 of row r goes to dst[r·(p.cols − 1) + c], and
//   the last column of rows r < p.first (the output channels) adds the four
//   taps' rows r, r + p.first, … into dst2[r], the bias gradient.
// channel_partial_sums: src is a [rows × cols] matrix (an NHWC tensor seen as
//   pixels × channels); workgroup (cx, s) sums rows s·rows_per_split … of 64
//   channels, 4 invocations per channel taking every 4th row, then combines
//   the 4 in workgroup memory and writes dst[s·cols + c]. Followed by
//   reduce_splits, this is the bias gradient Σ_pixels dy[pixel, c].
// channel_sums4: the same column sums when cols % 4 == 0, read as vec4s of four
//   channels. Workgroup (gx, s) takes QUADS quads of channels (a power of two,
//   ≤ 64) and rows s·rows_per_split …; the GROUP / QUADS invocations of a quad
//   each add every (GROUP / QUADS)-th row into four independent sums (four loads
//   in flight), then the workgroup halves its partial sums in workgroup memory.
//   Writes dst4[s·cols/4 + quad]; run again on that [splits × cols] matrix
//   with one split, it gives the bias gradient (added when ACCUMULATE).
// finish_splits: the pixel-row modes' split GEMMs (conv_common.wgsl's
//   SPLIT_K): finished[i] = act(Σ_s src[s·len + i] + bias[i % p.cols]) for a
//   forward convolution (BIAS), or (+)= Σ_s src[s·len + i] for ∂input
//   (then zero where mask is not positive, with MASK), in the element type
//   of the activations (DST_TYPE).
// Accumulating lets gradients add into a zeroed flat gradient buffer.

override ACCUMULATE: bool = false;
// reduce_splits: C has mode 5's column of ones (see above).
override BIAS_COL: bool = false;

struct Params {
  len: u32,
  splits: u32,
  rows_per_split: u32,
  row_threads: u32,
  first: u32, // reduce_splits: how many sums go to dst (the rest to dst2); with BIAS_COL the output channels
  cols: u32, // columns of C: finish_splits' bias[i % cols] is element i's; reduce_splits' with BIAS_COL
}

@group(0) @binding(0) var<uniform> p: Params;
// SRC_TYPE (an alias written in front by sums.ts): f32, or f16 where the
// channel sums read an f16 gradient; the sums are f32.
@group(0) @binding(1) var<storage, read> src: array<SRC_TYPE>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst2: array<f32>;

// Σ_s src[s·len + i], four splits at a time into independent sums, so that
// four loads are in flight (a weight gradient has up to a few hundred splits
// and the sums are few: one serial chain of loads each would leave the GPU
// waiting on memory).
fn split_total(i: u32) -> f32 {
  var s0 = 0.0;
  var s1 = 0.0;
  var s2 = 0.0;
  var s3 = 0.0;
  var k = 0u;
  for (; k + 3u < p.splits; k += 4u) {
    s0 += f32(src[k * p.len + i]);
    s1 += f32(src[(k + 1u) * p.len + i]);
    s2 += f32(src[(k + 2u) * p.len + i]);
    s3 += f32(src[(k + 3u) * p.len + i]);
  }
  for (; k < p.splits; k++) {
    s0 += f32(src[k * p.len + i]);
  }
  return (s0 + s1) + (s2 + s3);
}

// GROUP (invocations per workgroup) is written in front of this file by its TypeScript wrapper.
@compute @workgroup_size(GROUP)
fn reduce_splits(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_threads;
  if (i >= p.len) {
    return;
  }
  let s = split_total(i);
  if (BIAS_COL) {
    let row = i / p.cols;
    let col = i % p.cols;
    if (col + 1u < p.cols) {
      put_dst(row * (p.cols - 1u) + col, s);
    } else if (row < p.first) {
      // Channel `row`'s four taps, rows row + t·p.first of C's last column.
      let step = p.first * p.cols;
      put_dst2(row, (s + split_total(i + step)) + (split_total(i + 2u * step) + split_total(i + 3u * step)));
    }
    return;
  }
  if (i < p.first) {
    put_dst(i, s);
  } else {
    put_dst2(i - p.first, s);
  }
}

// dst[j], dst2[j]: s written, or added where ACCUMULATE.
fn put_dst(j: u32, s: f32) {
  if (ACCUMULATE) {
    dst[j] = dst[j] + s;
  } else {
    dst[j] = s;
  }
}

fn put_dst2(j: u32, s: f32) {
  if (ACCUMULATE) {
    dst2[j] = dst2[j] + s;
  } else {
    dst2[j] = s;
  }
}

// finish_splits: add bias[i % p.cols] and apply ACT (a forward convolution).
override BIAS: bool = false;
// finish_splits: zero where mask is not positive (conv_common.wgsl's MASK).
override MASK: bool = false;
// Bound by finish_splits alone.
@group(0) @binding(2) var<storage, read_write> finished: array<DST_TYPE>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> mask: array<DST_TYPE>;

@compute @workgroup_size(GROUP)
fn finish_splits(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_threads;
  if (i >= p.len) {
    return;
  }
  var s = split_total(i);
  if (BIAS) {
    s = activate(s + bias[i % p.cols]);
  }
  if (ACCUMULATE) {
    s += f32(finished[i]);
  }
  if (MASK && !(f32(mask[i]) > 0.0)) {
    s = 0.0;
  }
  finished[i] = DST_TYPE(s);
}

var<workgroup> partial: array<f32, 256>;

// Here p.len is the number of columns and p.splits the number of rows. Its
// workgroup has a shape of its own, 64 channels × 4 lanes, whatever GROUP is.
@compute @workgroup_size(256)
fn channel_partial_sums(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let c = wg.x * 64u + li % 64u;
  let lane = li / 64u;
  let begin = wg.y * p.rows_per_split;
  let end = min(p.splits, begin + p.rows_per_split);
  var s = 0.0;
  if (c < p.len) {
    for (var r = begin + lane; r < end; r += 4u) {
      s += f32(src[r * p.len + c]);
    }
  }
  partial[li] = s;
  workgroupBarrier();
  if (lane == 0u && c < p.len) {
    dst[wg.y * p.len + c] = partial[li] + partial[li + 64u] + partial[li + 128u] + partial[li + 192u];
  }
}

override QUADS: u32 = 64u;
override LANES: u32 = GROUP / QUADS;

@group(0) @binding(1) var<storage, read> src4: array<vec4<SRC_TYPE>>;
@group(0) @binding(2) var<storage, read_write> dst4: array<vec4<f32>>;

var<workgroup> partial4: array<vec4<f32>, GROUP>;

// Here p.len is the number of columns and p.splits the number of rows.
@compute @workgroup_size(GROUP)
fn channel_sums4(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let quads = p.len / 4u;
  let q = wg.x * QUADS + li % QUADS;
  let lane = li / QUADS;
  let begin = wg.y * p.rows_per_split;
  let end = min(p.splits, begin + p.rows_per_split);
  var s0 = vec4<f32>(0.0);
  var s1 = vec4<f32>(0.0);
  var s2 = vec4<f32>(0.0);
  var s3 = vec4<f32>(0.0);
  if (q < quads) {
    var r = begin + lane;
    for (; r + 3u * LANES < end; r += 4u * LANES) {
      s0 += vec4<f32>(src4[r * quads + q]);
      s1 += vec4<f32>(src4[(r + LANES) * quads + q]);
      s2 += vec4<f32>(src4[(r + 2u * LANES) * quads + q]);
      s3 += vec4<f32>(src4[(r + 3u * LANES) * quads + q]);
    }
    for (; r < end; r += LANES) {
      s0 += vec4<f32>(src4[r * quads + q]);
    }
  }
  partial4[li] = (s0 + s1) + (s2 + s3);
  workgroupBarrier();
  for (var half = LANES / 2u; half > 0u; half >>= 1u) {
    if (lane < half) {
      partial4[li] += partial4[li + half * QUADS];
    }
    workgroupBarrier();
  }
  if (lane == 0u && q < quads) {
    let at = wg.y * quads + q;
    if (ACCUMULATE) {
      dst4[at] = dst4[at] + partial4[li];
    } else {
      dst4[at] = partial4[li];
    }
  }
}
