// Unary elementwise map over a flat float32 array: out[i] (+)= f(x[i]).
//
// OP selects f (one pipeline per op): 0 copy, 1 relu, 2 sigmoid,
// 3 affine alpha·x + beta, 4 broadcast alpha·x[0] + beta (x holds one value). ACCUMULATE adds into `out` instead of overwriting,
// which is how gradients that fan out are summed.
// One invocation per element; the grid may be folded into two dimensions, so
// the flat index is gid.x + gid.y · row_threads.

override OP: u32 = 0u;
override ACCUMULATE: bool = false;

struct Params {
  n: u32,
  row_threads: u32,
  alpha: f32,
  beta: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

fn sigmoid(v: f32) -> f32 {
  // Written so that exp never overflows: for large |v| one branch is exact.
  if (v >= 0.0) {
    return 1.0 / (1.0 + exp(-v));
  }
  let e = exp(v);
  return e / (1.0 + e);
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_threads;
  if (i >= p.n) {
    return;
  }
  let v = x[min(i, arrayLength(&x) - 1u)];
  var r: f32;
  switch OP {
    case 1u: { r = max(v, 0.0); }
    case 2u: { r = sigmoid(v); }
    case 3u: { r = p.alpha * v + p.beta; }
    case 4u: { r = p.alpha * x[0] + p.beta; }
    default: { r = v; }
  }
  if (ACCUMULATE) {
    out[i] = out[i] + r;
  } else {
    out[i] = r;
  }
}
