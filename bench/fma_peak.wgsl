// The adapter's arithmetic ceiling, for the benchmark: each invocation runs
// 8 independent scalar FMA chains (so no chain waits on another), four steps
// of each per loop iteration, for `iterations` iterations, and writes one
// value so nothing is optimised away.
// Scalar chains, not vec4: on CPU adapters every scalar of an invocation is a
// whole SIMD register, and 8 vec4 chains (32 registers) spill on AVX2's 16.
// Four steps per iteration: a loop whose bound comes from a uniform costs a
// mask test per iteration on CPU adapters.
// FLOPs per invocation: iterations · 4 · 8 chains · 2.

struct Params {
  iterations: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

// GROUP (invocations per workgroup) is written in front of this file by its TypeScript wrapper.
@compute @workgroup_size(GROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let seed = f32(gid.x) * 1e-9;
  var c0 = seed;
  var c1 = seed + 0.1;
  var c2 = seed + 0.2;
  var c3 = seed + 0.3;
  var c4 = seed + 0.4;
  var c5 = seed + 0.5;
  var c6 = seed + 0.6;
  var c7 = seed + 0.7;
  let m = 0.999;
  let a = 0.001;
  for (var i = 0u; i < p.iterations; i++) {
    for (var r = 0u; r < 4u; r++) {
      c0 = fma(c0, m, a);
      c1 = fma(c1, m, a);
      c2 = fma(c2, m, a);
      c3 = fma(c3, m, a);
      c4 = fma(c4, m, a);
      c5 = fma(c5, m, a);
      c6 = fma(c6, m, a);
      c7 = fma(c7, m, a);
    }
  }
  out[gid.x] = c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7;
}
