// ELU, the exponential linear unit, and its gradient:
//   y = x                 for x > 0
//   y = α · (exp(x) − 1)  for x ≤ 0
//   ∂y/∂x = 1 for x > 0, else α · exp(x) = y + α
// The backward pass needs only the output y (x > 0 exactly when y > 0), so
// the forward input need not be kept.
//
// Layouts: x, y, dy, dx are flat float32 arrays of n elements (any tensor
// shape read flat). Entry points: forward (x → y) and backward (dy, y → dx;
// ACCUMULATE adds into dx, for tensors whose gradient has several
// contributions), each in two forms over the same math (written once, on
// vec4s): forward4 / backward4 for n % 4 == 0, one invocation per four
// elements read and written as vec4s; forward / backward for any n, one
// invocation per element. The grid may be folded into two dimensions: the
// flat invocation index is gid.x + gid.y · row_threads.

override ACCUMULATE: bool = false;

struct Params {
  n: u32,
  row_threads: u32,
  alpha: f32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// Each entry point's bindings (WGSL lets entry points reuse numbers with other variables).
// forward
@group(0) @binding(1) var<storage, read> x_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> y_out: array<f32>;
// forward4
@group(0) @binding(1) var<storage, read> x_in4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y_out4: array<vec4<f32>>;
// backward
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> y_in: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
// backward4
@group(0) @binding(1) var<storage, read> dy4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> y_in4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dx4: array<vec4<f32>>;

fn elu(x: vec4<f32>) -> vec4<f32> {
  // exp(min(x, 0)) keeps exp from overflowing on the branch that is discarded.
  return select(p.alpha * (exp(min(x, vec4<f32>(0.0))) - 1.0), x, x > vec4<f32>(0.0));
}

// dy · ∂y/∂x from the output y.
fn elu_grad(g: vec4<f32>, y: vec4<f32>) -> vec4<f32> {
  return g * select(y + p.alpha, vec4<f32>(1.0), y > vec4<f32>(0.0));
}

// GROUP (invocations per workgroup) is written in front of this file by its TypeScript wrapper.
@compute @workgroup_size(GROUP)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_threads;
  if (i < p.n) {
    y_out[i] = elu(vec4<f32>(x_in[i])).x;
  }
}

@compute @workgroup_size(GROUP)
fn forward4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_threads;
  if (i < p.n / 4u) {
    y_out4[i] = elu(x_in4[i]);
  }
}

@compute @workgroup_size(GROUP)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_threads;
  if (i >= p.n) {
    return;
  }
  let g = elu_grad(vec4<f32>(dy[i]), vec4<f32>(y_in[i])).x;
  if (ACCUMULATE) {
    dx[i] = dx[i] + g;
  } else {
    dx[i] = g;
  }
}

@compute @workgroup_size(GROUP)
fn backward4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_threads;
  if (i >= p.n / 4u) {
    return;
  }
  let g = elu_grad(dy4[i], y_in4[i]);
  if (ACCUMULATE) {
    dx4[i] = dx4[i] + g;
  } else {
    dx4[i] = g;
  }
}
