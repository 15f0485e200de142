// Binary elementwise map over two flat float32 arrays of the same length:
// out[i] (+)= f(a[i], b[i]).
//
// OP selects f: 0 a + b, 1 a − b, 2 a · b, 3 relu backward a · [b > 0]
// (a = upstream gradient, b = the relu's output), 4 sigmoid backward
// a · b · (1 − b) (b = the sigmoid's output), 5 a + alpha · b.
// ACCUMULATE adds into `out`. Same folded grid as unary.wgsl.

override OP: u32 = 0u;
override ACCUMULATE: bool = false;

struct Params {
  n: u32,
  row_threads: u32,
  alpha: f32,
  _pad: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_threads;
  if (i >= p.n) {
    return;
  }
  let u = a[i];
  let v = b[i];
  var r: f32;
  switch OP {
    case 1u: { r = u - v; }
    case 2u: { r = u * v; }
    case 3u: { r = select(0.0, u, v > 0.0); }
    case 4u: { r = u * v * (1.0 - v); }
    case 5u: { r = u + p.alpha * v; }
    default: { r = u + v; }
  }
  if (ACCUMULATE) {
    out[i] = out[i] + r;
  } else {
    out[i] = r;
  }
}
