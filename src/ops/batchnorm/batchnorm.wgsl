// Batch normalisation over the channels of an NHWC tensor, as Keras 2's
// BatchNormalization(axis = -1): with μ and σ² the mean and (biased)
// variance of channel c over every pixel of the batch,
//   y = γ · (x − μ) / √(σ² + ε) + β,
// and while training the running statistics move towards the batch's:
//   running = momentum · running + (1 − momentum) · batch value.
// Element p·C + c of a flat array is channel c of pixel p (N·H·W pixels).
// x, y, dy (∂L/∂y) and dx are stored as ELEM_TYPE (f32, or f16 for mixed
// precision's activations); everything else is f32, and every sum is f32.
//
// Entry points, in the order a training step runs them:
//   partial_moments  workgroup (cb, k): channels 64·cb … of chunk k of the
//                    pixels; each invocation runs Welford's update over its
//                    pixels of one channel, the four rows of a workgroup are
//                    merged (Chan et al.), and (count, mean, M2) go to
//                    partials[k][c].
//   finish_moments   one invocation a channel: merges the chunks, writes
//                    stats[c] = (μ, 1/√(σ² + ε)) and moves the running
//                    statistics (the variance's by σ² · N / (N − 1 − ε), as
//                    Keras 2 does).
//   running_stats    inference: stats[c] from the running statistics.
//   normalize        one invocation an element: y from x and stats, then
//                    the activation (ACT, activation.wgsl, appended to this
//                    file), as a convolution fuses its own.
//   partial_grads    as partial_moments, the sums Σ dy and Σ dy·x̂ (x̂ the
//                    normalised x) of each chunk and channel.
//   (The backward passes take dy after the activation's backward.)
//   finish_grads     one invocation a channel: ∂β = Σ dy, ∂γ = Σ dy·x̂ (added
//                    where ACCUMULATE), and both sums kept for input_grad.
//   input_grad       one invocation an element:
//                    dx (+)= γ/√(σ² + ε) · (dy − (Σ dy + x̂ · Σ dy·x̂) / N).
// Welford's update and the pairwise merges keep the variance accurate where
// the mean is large against the spread, which Σ x² − N·μ² would not.

override ACCUMULATE: bool = false;

struct Params {
  pixels: u32,
  channels: u32,
  // pixels per chunk, and chunks
  chunk: u32,
  chunks: u32,
  epsilon: f32,
  momentum: f32,
  // invocations a row of the grid of the elementwise passes
  row_threads: u32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// Each entry point binds from @binding(1) on (WGSL lets entry points reuse
// numbers with other variables):
//   partial_moments x, partials            finish_moments partials_in, stats, running_mean, running_var
//   running_stats rmean_in, rvar_in, stats_out
//   normalize x, stats_in, gamma, beta, y_out
//   partial_grads x, partials, gstats, dy   finish_grads partials_in, gsums, dgamma, dbeta
//   input_grad x, stats_in, gamma, dy, gsums_in, dx_out
@group(0) @binding(1) var<storage, read> x: array<ELEM_TYPE>;
@group(0) @binding(1) var<storage, read> partials_in: array<f32>;
@group(0) @binding(1) var<storage, read> rmean_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read_write> gsums: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> stats_in: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> rvar_in: array<f32>;
@group(0) @binding(3) var<storage, read> gstats: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read_write> stats_out: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read> dy: array<ELEM_TYPE>;
@group(0) @binding(4) var<storage, read_write> running_var: array<f32>;
@group(0) @binding(4) var<storage, read_write> dbeta: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> y_out: array<ELEM_TYPE>;
@group(0) @binding(5) var<storage, read> gsums_in: array<vec2<f32>>;
@group(0) @binding(6) var<storage, read_write> dx_out: array<ELEM_TYPE>;

const CH: u32 = 64u;
const ROWS: u32 = GROUP / CH;
var<workgroup> merge: array<vec3<f32>, GROUP>;

// Two (count, mean, M2) summaries merged into one.
fn merged(a: vec3<f32>, b: vec3<f32>) -> vec3<f32> {
  let n = a.x + b.x;
  if (n == 0.0) {
    return vec3<f32>(0.0);
  }
  let d = b.y - a.y;
  return vec3<f32>(n, a.y + d * b.x / n, a.z + b.z + d * d * a.x * b.x / n);
}

// This invocation's channel and its pixels of chunk k: [first, end) by ROWS.
fn chunk_span(k: u32) -> vec2<u32> {
  let first = k * p.chunk;
  return vec2<u32>(first, min(p.pixels, first + p.chunk));
}

@compute @workgroup_size(GROUP)
fn partial_moments(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) local: u32) {
  let c = wg.x * CH + local % CH;
  let row = local / CH;
  let span = chunk_span(wg.y);
  var s = vec3<f32>(0.0);
  if (c < p.channels) {
    for (var q = span.x + row; q < span.y; q += ROWS) {
      let v = f32(x[q * p.channels + c]);
      s.x += 1.0;
      let d = v - s.y;
      s.y += d / s.x;
      s.z += d * (v - s.y);
    }
  }
  merge[local] = s;
  workgroupBarrier();
  if (row == 0u && c < p.channels) {
    var m = merge[local];
    for (var r = 1u; r < ROWS; r++) {
      m = merged(m, merge[r * CH + local]);
    }
    let at = 3u * (wg.y * p.channels + c);
    partials[at] = m.x;
    partials[at + 1u] = m.y;
    partials[at + 2u] = m.z;
  }
}

@compute @workgroup_size(CH)
fn finish_moments(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= p.channels) {
    return;
  }
  var m = vec3<f32>(0.0);
  for (var k = 0u; k < p.chunks; k++) {
    let at = 3u * (k * p.channels + c);
    m = merged(m, vec3<f32>(partials_in[at], partials_in[at + 1u], partials_in[at + 2u]));
  }
  let variance = m.z / m.x;
  stats[c] = vec2<f32>(m.y, inverseSqrt(variance + p.epsilon));
  running_mean[c] = p.momentum * running_mean[c] + (1.0 - p.momentum) * m.y;
  // Keras 2 moves the running variance with the sample variance, scaled by N / (N − (1 + ε)) (0 for one pixel, as its variance).
  running_var[c] = p.momentum * running_var[c] + (1.0 - p.momentum) * variance * m.x / (m.x - 1.0 - p.epsilon);
}

@compute @workgroup_size(CH)
fn running_stats(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= p.channels) {
    return;
  }
  stats_out[c] = vec2<f32>(rmean_in[c], inverseSqrt(rvar_in[c] + p.epsilon));
}

@compute @workgroup_size(GROUP)
fn normalize(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_threads;
  if (i >= p.pixels * p.channels) {
    return;
  }
  let c = i % p.channels;
  let s = stats_in[c];
  y_out[i] = ELEM_TYPE(activate(gamma[c] * (f32(x[i]) - s.x) * s.y + beta[c]));
}

@compute @workgroup_size(GROUP)
fn partial_grads(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) local: u32) {
  let c = wg.x * CH + local % CH;
  let row = local / CH;
  let span = chunk_span(wg.y);
  var s = vec3<f32>(0.0);
  if (c < p.channels) {
    let st = gstats[c];
    for (var q = span.x + row; q < span.y; q += ROWS) {
      let at = q * p.channels + c;
      let gv = f32(dy[at]);
      s.x += gv;
      s.y += gv * (f32(x[at]) - st.x) * st.y;
    }
  }
  merge[local] = s;
  workgroupBarrier();
  if (row == 0u && c < p.channels) {
    var m = merge[local];
    for (var r = 1u; r < ROWS; r++) {
      m += merge[r * CH + local];
    }
    let at = 2u * (wg.y * p.channels + c);
    partials[at] = m.x;
    partials[at + 1u] = m.y;
  }
}

@compute @workgroup_size(CH)
fn finish_grads(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= p.channels) {
    return;
  }
  var m = vec2<f32>(0.0);
  for (var k = 0u; k < p.chunks; k++) {
    let at = 2u * (k * p.channels + c);
    m += vec2<f32>(partials_in[at], partials_in[at + 1u]);
  }
  gsums[c] = m;
  if (ACCUMULATE) {
    dbeta[c] += m.x;
    dgamma[c] += m.y;
  } else {
    dbeta[c] = m.x;
    dgamma[c] = m.y;
  }
}

@compute @workgroup_size(GROUP)
fn input_grad(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_threads;
  if (i >= p.pixels * p.channels) {
    return;
  }
  let c = i % p.channels;
  let s = stats_in[c];
  let sums = gsums_in[c];
  let xhat = (f32(x[i]) - s.x) * s.y;
  var v = gamma[c] * s.y * (f32(dy[i]) - (sums.x + xhat * sums.y) / f32(p.pixels));
  if (ACCUMULATE) {
    v += f32(dx_out[i]);
  }
  dx_out[i] = ELEM_TYPE(v);
}
