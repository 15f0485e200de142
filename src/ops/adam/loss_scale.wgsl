// Dynamic loss scaling for mixed-precision training, kept on the GPU so that
// no step waits for the host. The loss's gradient is seeded with `scale`
// (the state's first word, bound as the backward pass's seed), so gradients
// in f16 operands stay clear of f16's underflow; then
//   unscale: g ← g / scale over the flat gradient buffer, and `found` set
//            where any gradient is infinite or NaN;
//   (Adam's scaled entry points skip the step while `found` is set)
//   update:  after a clean step t and the run of clean steps grow, and the
//            scale doubles after `interval` of them; after a bad one the
//            scale halves, the run restarts and `skipped` counts it.
// The state also keeps Adam's bias corrections 1 − β1^t and 1 − β2^t, for
// the t steps taken: computed as c ← c·β + (1 − β), a sum of two positive
// terms, where 1 − pow(β, t) in f32 would lose most of its digits.
// Non-finite values are told by their exponent bits: a compiler may assume
// that float arithmetic never meets them, so `x != x` is not a safe test.

struct State {
  scale: f32,
  // Adam steps taken (the next is t + 1)
  t: u32,
  // clean steps since the scale last changed
  good: u32,
  // steps skipped for infinite or NaN gradients, in all
  skipped: u32,
  found: atomic<u32>,
  c1: f32,
  c2: f32,
}

struct Params {
  n: u32,
  row_threads: u32,
  interval: u32,
  growth: f32,
  backoff: f32,
  max_scale: f32,
  min_scale: f32,
  beta1: f32,
  one_minus_beta1: f32,
  beta2: f32,
  one_minus_beta2: f32,
}

@group(0) @binding(0) var<uniform> prm: Params;
@group(0) @binding(1) var<storage, read_write> state: State;
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;

fn is_finite(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

// GROUP (invocations per workgroup) is written in front of this file by its TypeScript wrapper.
@compute @workgroup_size(GROUP)
fn unscale(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * prm.row_threads;
  if (i >= prm.n) {
    return;
  }
  let g = grads[i] / state.scale;
  if (!is_finite(g)) {
    atomicOr(&state.found, 1u);
  }
  grads[i] = g;
}

@compute @workgroup_size(1)
fn update() {
  if (atomicLoad(&state.found) != 0u) {
    state.scale = max(state.scale * prm.backoff, prm.min_scale);
    state.good = 0u;
    state.skipped += 1u;
  } else {
    state.t += 1u;
    state.c1 = state.c1 * prm.beta1 + prm.one_minus_beta1;
    state.c2 = state.c2 * prm.beta2 + prm.one_minus_beta2;
    state.good += 1u;
    if (state.good >= prm.interval) {
      state.scale = min(state.scale * prm.growth, prm.max_scale);
      state.good = 0u;
    }
  }
  atomicStore(&state.found, 0u);
}
