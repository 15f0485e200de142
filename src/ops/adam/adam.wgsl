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
// Two entry points over the same update (written once, on vec4s): main4, one
// invocation per four parameters read and written as vec4s, over the first
// 4·floor(n / 4); main, one invocation per parameter from `first` on, for the
// remaining n mod 4 (a second, tiny dispatch). params, m and v are
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
  // main: the first parameter it updates
  first: u32,
}

@group(0) @binding(0) var<uniform> prm: Params;
// main's bindings
@group(0) @binding(1) var<storage, read_write> params: array<f32>;
@group(0) @binding(2) var<storage, read> grads: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
// main4's: the same buffers as vec4s (WGSL lets entry points reuse numbers)
@group(0) @binding(1) var<storage, read_write> params4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> grads4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> m4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> v4: array<vec4<f32>>;

struct Updated {
  param: vec4<f32>,
  m: vec4<f32>,
  v: vec4<f32>,
}

fn update(param: vec4<f32>, g: vec4<f32>, m0: vec4<f32>, v0: vec4<f32>, lr_t: f32) -> Updated {
  let m1 = prm.beta1 * m0 + prm.one_minus_beta1 * g;
  let v1 = prm.beta2 * v0 + prm.one_minus_beta2 * (g * g);
  return Updated(param - lr_t * m1 / (sqrt(v1) + prm.epsilon), m1, v1);
}

// Parameter i, or parameters 4i … 4i + 3, updated in place with step size lr_t.
fn update_one(i: u32, lr_t: f32) {
  let u = update(vec4<f32>(params[i]), vec4<f32>(grads[i]), vec4<f32>(m[i]), vec4<f32>(v[i]), lr_t);
  m[i] = u.m.x;
  v[i] = u.v.x;
  params[i] = u.param.x;
}

fn update_four(i: u32, lr_t: f32) {
  let u = update(params4[i], grads4[i], m4[i], v4[i], lr_t);
  m4[i] = u.m;
  v4[i] = u.v;
  params4[i] = u.param;
}

// GROUP (invocations per workgroup) is written in front of this file by its TypeScript wrapper.
@compute @workgroup_size(GROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = prm.first + gid.x + gid.y * prm.row_threads;
  if (i < prm.n) {
    update_one(i, prm.lr_t);
  }
}

@compute @workgroup_size(GROUP)
fn main4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * prm.row_threads;
  if (i < prm.n / 4u) {
    update_four(i, prm.lr_t);
  }
}

// Mixed-precision training (loss_scale.wgsl): the same update, but
// none at all while the step's gradients hold an infinite or NaN value, and
// with lr_t from the step count the GPU keeps, since only the GPU knows which
// steps were skipped. Here prm.lr_t holds lr, and the bias corrections of
// step t + 1 follow from those the state keeps for step t (loss_scale.wgsl).
struct LossScale {
  scale: f32,
  t: u32,
  good: u32,
  skipped: u32,
  found: u32,
  c1: f32,
  c2: f32,
}
@group(0) @binding(5) var<storage, read> amp: LossScale;

fn scaled_lr() -> f32 {
  let c1 = amp.c1 * prm.beta1 + prm.one_minus_beta1;
  let c2 = amp.c2 * prm.beta2 + prm.one_minus_beta2;
  return prm.lr_t * sqrt(c2) / c1;
}

@compute @workgroup_size(GROUP)
fn main_scaled(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = prm.first + gid.x + gid.y * prm.row_threads;
  if (i < prm.n && amp.found == 0u) {
    update_one(i, scaled_lr());
  }
}

@compute @workgroup_size(GROUP)
fn main4_scaled(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * prm.row_threads;
  if (i < prm.n / 4u && amp.found == 0u) {
    update_four(i, scaled_lr());
  }
}
