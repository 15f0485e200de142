// The activation a convolution applies to its outputs, appended to the
// convolution shaders (with conv_common.wgsl) and to software/winograd.wgsl: 0 none, 1 relu, 2 sigmoid,
// 3 elu (α = 1, Keras's 'elu').
override ACT: u32 = 0u;

fn activate(v: f32) -> f32 {
  switch ACT {
    case 1u: { return max(v, 0.0); }
    case 2u: {
      // Written so that exp never overflows: for large |v| one branch is exact.
      if (v >= 0.0) {
        return 1.0 / (1.0 + exp(-v));
      }
      let e = exp(v);
      return e / (1.0 + e);
    }
    case 3u: {
      // exp(min(v, 0)) keeps exp finite on the branch select discards.
      return select(exp(min(v, 0.0)) - 1.0, v, v > 0.0);
    }
    default: { return v; }
  }
}

// activate() on each of four values.
fn activate4(v: vec4<f32>) -> vec4<f32> {
  return vec4<f32>(activate(v.x), activate(v.y), activate(v.z), activate(v.w));
}
