// Binary elementwise map over two flat arrays of the same length:
// out[i] (+)= f(a[i], b[i]), computed in f32. The arrays are stored as
// ELEM_TYPE, an alias written in front by kernel.ts: f32, or f16 for mixed
// precision's activations and gradients.
//
// OP selects f: 0 a + b, 1 a − b, 2 a · b, 3 relu backward a · [b > 0]
// (a = upstream gradient, b = the relu's output), 4 sigmoid backward
// a · b · (1 − b) (b = the sigmoid's output), 5 a + alpha · b, 6 ELU (α = 1)
// backward a · (b > 0 ? 1 : b + 1) (b = the ELU's output).
// ACCUMULATE adds into `out`. Entry points and grid as in unary.wgsl: main4
// (n % 4 == 0) maps four elements per invocation as vec4s, main one;
// in_place4 and in_place do a ← f(a, b) where a lies (`io`), for a gradient
// nothing reads after the op that rewrites it (no second buffer for it).

override OP: u32 = 0u;
override ACCUMULATE: bool = false;

struct Params {
  n: u32,
  row_threads: u32,
  alpha: f32,
  _pad: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
// main's bindings
@group(0) @binding(1) var<storage, read> a: array<ELEM_TYPE>;
@group(0) @binding(2) var<storage, read> b: array<ELEM_TYPE>;
@group(0) @binding(3) var<storage, read_write> out: array<ELEM_TYPE>;
// main4's bindings: the same buffers as vec4s
@group(0) @binding(1) var<storage, read> a4: array<vec4<ELEM_TYPE>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<ELEM_TYPE>>;
@group(0) @binding(3) var<storage, read_write> out4: array<vec4<ELEM_TYPE>>;
// in_place's and in_place4's: a, read and rewritten, then b (as above)
@group(0) @binding(1) var<storage, read_write> io: array<ELEM_TYPE>;
@group(0) @binding(1) var<storage, read_write> io4: array<vec4<ELEM_TYPE>>;

fn f(u: vec4<f32>, v: vec4<f32>) -> vec4<f32> {
  switch OP {
    case 1u: { return u - v; }
    case 2u: { return u * v; }
    case 3u: { return select(vec4<f32>(0.0), u, v > vec4<f32>(0.0)); }
    case 4u: { return u * v * (1.0 - v); }
    case 5u: { return u + p.alpha * v; }
    case 6u: { return u * select(v + 1.0, vec4<f32>(1.0), v > vec4<f32>(0.0)); }
    default: { return u + v; }
  }
}

// GROUP (invocations per workgroup) is written in front of this file by its TypeScript wrapper.
@compute @workgroup_size(GROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_threads;
  if (i >= p.n) {
    return;
  }
  let r = f(vec4<f32>(f32(a[i])), vec4<f32>(f32(b[i]))).x;
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
  let r = f(vec4<f32>(a4[i]), vec4<f32>(b4[i]));
  if (ACCUMULATE) {
    out4[i] = vec4<ELEM_TYPE>(vec4<f32>(out4[i]) + r);
  } else {
    out4[i] = vec4<ELEM_TYPE>(r);
  }
}

@compute @workgroup_size(GROUP)
fn in_place(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_threads;
  if (i >= p.n) {
    return;
  }
  io[i] = ELEM_TYPE(f(vec4<f32>(f32(io[i])), vec4<f32>(f32(b[i]))).x);
}

@compute @workgroup_size(GROUP)
fn in_place4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_threads;
  if (i >= p.n / 4u) {
    return;
  }
  io4[i] = vec4<ELEM_TYPE>(f(vec4<f32>(io4[i]), vec4<f32>(b4[i])));
}
