// ELU, the exponential linear unit, and its gradient:
//   y = x                 for x > 0
//   y = α · (exp(x) − 1)  for x ≤ 0
//   ∂y/∂x = 1 for x > 0, else α · exp(x) = y + α
// The backward pass needs only the output y (x > 0 exactly when y > 0), so
// the forward input need not be kept.
//
// Layouts: x, y, dy, dx are flat float32 arrays of n elements (any tensor
// shape read flat). One invocation per element; the grid may be folded into
// two dimensions: flat index = gid.x + gid.y · row_threads.
// Entry points: forward (x → y) and backward (dy, y → dx; ACCUMULATE adds into
// dx, for tensors whose gradient has several contributions).

override ACCUMULATE: bool = false;

struct Params {
  n: u32,
  row_threads: u32,
  alpha: f32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// forward's bindings
@group(0) @binding(1) var<storage, read> x_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> y_out: array<f32>;
// backward's bindings (WGSL lets entry points reuse numbers with other variables)
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> y_in: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_threads;
  if (i >= p.n) {
    return;
  }
  let x = x_in[i];
  // exp(min(x, 0)) keeps exp from overflowing on the branch that is discarded.
  y_out[i] = select(p.alpha * (exp(min(x, 0.0)) - 1.0), x, x > 0.0);
}

@compute @workgroup_size(256)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_threads;
  if (i >= p.n) {
    return;
  }
  let y = y_in[i];
  let g = dy[i] * select(y + p.alpha, 1.0, y > 0.0);
  if (ACCUMULATE) {
    dx[i] = dx[i] + g;
  } else {
    dx[i] = g;
  }
}
