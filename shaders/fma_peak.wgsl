// The adapter's arithmetic ceiling, for the benchmark: each invocation runs
// 8 independent chains of vec4 FMAs (so no chain waits on another) for
// `iterations` steps and writes one value so nothing is optimised away.
// FLOPs per invocation: iterations · 8 chains · 4 lanes · 2.

struct Params {
  iterations: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let seed = f32(gid.x) * 1e-9;
  var c0 = vec4<f32>(seed);
  var c1 = c0 + 0.1;
  var c2 = c0 + 0.2;
  var c3 = c0 + 0.3;
  var c4 = c0 + 0.4;
  var c5 = c0 + 0.5;
  var c6 = c0 + 0.6;
  var c7 = c0 + 0.7;
  let m = vec4<f32>(0.999);
  let a = vec4<f32>(0.001);
  for (var i = 0u; i < p.iterations; i++) {
    c0 = fma(c0, m, a);
    c1 = fma(c1, m, a);
    c2 = fma(c2, m, a);
    c3 = fma(c3, m, a);
    c4 = fma(c4, m, a);
    c5 = fma(c5, m, a);
    c6 = fma(c6, m, a);
    c7 = fma(c7, m, a);
  }
  out[gid.x] = c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7;
}
