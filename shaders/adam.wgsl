// One Adam step (Keras form) over every parameter of the model at once.
//
//   m ← β1·m + (1 − β1)·g
//   v ← β2·v + (1 − β2)·g²
//   p ← p − lr_t · m / (√v + ε),   lr_t = lr · √(1 − β2^t) / (1 − β1^t)
//
// lr_t, β1, 1 − β1, β2, 1 − β2 and ε are computed by the host in float64 and
// arrive here rounded to f32, so no power or subtraction near 1 happens in f32.
//
// Layouts: params, grads, m, v are flat float32 arrays of the same length n:
// the model's single parameter buffer, its gradient buffer, and the two
// moment buffers, element i of each belonging to the same scalar parameter.
// One invocation per parameter, one dispatch per step. params, m and v are
// updated in place, so each has ONE read_write binding (Dawn rejects a buffer
// bound read-only and writable in one dispatch); grads is read-only.
// The grid may be folded into two dimensions: flat index = gid.x + gid.y · row_threads.

struct Params {
  n: u32,
  row_threads: u32,
  lr_t: f32,
  epsilon: f32,
  beta1: f32,
  one_minus_beta1: f32,
  beta2: f32,
  one_minus_beta2: f32,
}

@group(0) @binding(0) var<uniform> prm: Params;
@group(0) @binding(1) var<storage, read_write> params: array<f32>;
@group(0) @binding(2) var<storage, read> grads: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * prm.row_threads;
  if (i >= prm.n) {
    return;
  }
  let g = grads[i];
  let m1 = prm.beta1 * m[i] + prm.one_minus_beta1 * g;
  let v1 = prm.beta2 * v[i] + prm.one_minus_beta2 * (g * g);
  m[i] = m1;
  v[i] = v1;
  params[i] = params[i] - prm.lr_t * m1 / (sqrt(v1) + prm.epsilon);
}
