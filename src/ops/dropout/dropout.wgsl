// Inverted dropout, as Keras's Dropout while training: out (+)= x · [kept] / (1 − rate).
// Whether element i is kept is a hash of i and the step's seed (seed[0],
// written by the host before each step), so the backward pass (dx from dy,
// the same map) finds the forward's mask again without storing it; a
// replayed step reads the new seed from the same buffer.
//
// x and out are flat arrays of n elements stored as ELEM_TYPE (f32, or f16
// for mixed precision's activations), computed in f32. The grid may be
// folded into two dimensions: the flat index is gid.x + gid.y · row_threads.

override ACCUMULATE: bool = false;

struct Params {
  n: u32,
  row_threads: u32,
  // An element is kept where its hash is at least this: rate · 2³², rounded.
  threshold: u32,
  // 1 / (1 − rate)
  scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> seed: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<ELEM_TYPE>;
@group(0) @binding(3) var<storage, read_write> out: array<ELEM_TYPE>;

// A PCG output permutation: a bijection of u32 that mixes every bit into every other.
fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

// GROUP (invocations per workgroup) is written in front of this file by its TypeScript wrapper.
@compute @workgroup_size(GROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_threads;
  if (i >= p.n) {
    return;
  }
  let kept = pcg(pcg(i) ^ pcg(seed[0])) >= p.threshold;
  let v = select(0.0, f32(x[i]) * p.scale, kept);
  if (ACCUMULATE) {
    out[i] = ELEM_TYPE(f32(out[i]) + v);
  } else {
    out[i] = ELEM_TYPE(v);
  }
}
