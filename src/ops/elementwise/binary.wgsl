// Binary elementwise map over two flat float32 arrays of the same length:
// out[i] (+)= f(a[i], b[i]).
//
// OP selects f: 0 a + b, 1 a − b, 2 a · b, 3 relu backward a · [b > 0]
// (a = upstream gradient, b = the relu's output), 4 sigmoid backward
// a · b · (1 − b) (b = the sigmoid's output), 5 a + alpha · b.
// ACCUMULATE adds into `out`. Entry points and grid as in unary.wgsl: main4
// (n % 4 == 0) maps four elements per invocation as vec4s, main one.

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
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
// main4's bindings: the same buffers as vec4s
@group(0) @binding(1) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out4: array<vec4<f32>>;

fn f(u: vec4<f32>, v: vec4<f32>) -> vec4<f32> {
  switch OP {
    case 1u: { return u - v; }
    case 2u: { return u * v; }
    case 3u: { return select(vec4<f32>(0.0), u, v > vec4<f32>(0.0)); }
    case 4u: { return u * v * (1.0 - v); }
    case 5u: { return u + p.alpha * v; }
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
  let r = f(vec4<f32>(a[i]), vec4<f32>(b[i])).x;
  if (ACCUMULATE) {
    out[i] = out[i] + r;
  } else {
    out[i] = r;
  }
}

@compute @workgroup_size(GROUP)
fn main4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_threads;
  if (i >= p.n / 4u) {
    return;
  }
  let r = f(a4[i], b4[i]);
  if (ACCUMULATE) {
    out4[i] = out4[i] + r;
  } else {
    out4[i] = r;
  }
}
