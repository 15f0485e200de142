// Unary elementwise map over a flat array: out[i] (+)= f(x[i]), computed in
// f32. x and out are stored as ELEM_TYPE, an alias written in front by
// kernel.ts: f32, or f16 for mixed precision's activations and gradients.
//
// OP selects f (one pipeline per op): 0 copy, 1 relu, 2 sigmoid,
// 3 affine alpha·x + beta, 4 broadcast alpha·x[0] + beta (x holds one value). ACCUMULATE adds into `out` instead of overwriting,
// which is how gradients that fan out are summed.
// Two entry points over the same f (written once, on vec4s):
// - main4, for n % 4 == 0 (n > 0): one invocation per four elements, read and
//   written as one vec4 (a quarter of the invocations, 16-byte accesses);
// - main, for any n: one invocation per element. The broadcast (OP 4) runs
//   here only: its one-element x cannot be viewed as a vec4.
// The grid may be folded into two dimensions, so the flat invocation index is
// gid.x + gid.y · row_threads.

override OP: u32 = 0u;
override ACCUMULATE: bool = false;

struct Params {
  n: u32,
  row_threads: u32,
  alpha: f32,
  beta: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
// main's bindings
@group(0) @binding(1) var<storage, read> x: array<ELEM_TYPE>;
@group(0) @binding(2) var<storage, read_write> out: array<ELEM_TYPE>;
// main4's bindings: the same buffers as vec4s (WGSL lets entry points reuse
// numbers with other variables)
@group(0) @binding(1) var<storage, read> x4: array<vec4<ELEM_TYPE>>;
@group(0) @binding(2) var<storage, read_write> out4: array<vec4<ELEM_TYPE>>;

fn sigmoid(v: vec4<f32>) -> vec4<f32> {
  // Written so that exp never overflows: exp(−|v|) ≤ 1, and each branch is
  // exact where the other would lose precision.
  let e = exp(-abs(v));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= vec4<f32>(0.0));
}

fn f(v: vec4<f32>) -> vec4<f32> {
  switch OP {
    case 1u: { return max(v, vec4<f32>(0.0)); }
    case 2u: { return sigmoid(v); }
    case 3u: { return p.alpha * v + p.beta; }
    default: { return v; }
  }
}

// GROUP (invocations per workgroup) is written in front of this file by its TypeScript wrapper.
@compute @workgroup_size(GROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_threads;
  if (i >= p.n) {
    return;
  }
  var r: f32;
  if (OP == 4u) {
    r = p.alpha * f32(x[0]) + p.beta;
  } else {
    r = f(vec4<f32>(f32(x[i]))).x;
  }
  if (ACCUMULATE) {
    out[i] = ELEM_TYPE(f32(out[i]) + r);
  } else {
    out[i] = ELEM_TYPE(r);
  }
}

@compute @workgroup_size(GROUP)
fn main4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_threads;
  if (i >= p.n / 4u) {
    return;
  }
  let r = f(vec4<f32>(x4[i]));
  if (ACCUMULATE) {
    out4[i] = vec4<ELEM_TYPE>(vec4<f32>(out4[i]) + r);
  } else {
    out4[i] = vec4<ELEM_TYPE>(r);
  }
}
