// The Dice loss (smooth 1) and its gradient, over the whole batch (the
// tutorial's) or image by image (the competition's metric is a mean over
// images, and an empty image predicted empty scores 1), with an optional
// binary cross-entropy term. The elements fall in G equal segments, one per
// image or a single one for the whole batch:
//
//   I_g = Σ y·p,  U_g = Σ y + Σ p + 1 over segment g,  dice_g = (2 I_g + 1) / U_g
//   bce_i = −(y_i log q_i + (1 − y_i) log(1 − q_i)),  q_i = clamp(p_i, ε, 1 − ε)
//   loss = −(1/G) Σ_g dice_g + λ (1/n) Σ_i bce_i
//   d loss / d p_i = ((2 I_g + 1) − 2 y_i U_g) / (G U_g²) + λ/n · (p_i − y_i) / (p_i (1 − p_i))
//   for i in segment g. The value clamps p (ε = 1e-7, as Keras does); the
//   gradient is the unclamped derivative, so that after the sigmoid's
//   backward, which multiplies it by p (1 − p), every logit gets λ (p − y) / n
//   however saturated, as a cross-entropy taken from the logits gives: a
//   clamped gradient of 0 would leave a missed nerve at p < ε there for good.
//   λ (bce) is 0 for the Dice alone.
//   With LOGITS, p = sigmoid(z) and the backward writes d loss / d z instead:
//   the Dice term times p (1 − p), plus λ/n · (p_i − y_i) as it is, which
//   stays λ/n · (p − y) where p has rounded to exactly 0 or 1 (there the
//   product of the two separate steps is 0).
//
// Layouts: p, y [n] (any tensor shape, read flat: predictions after the
// sigmoid and soft masks in [0, 1]); segment g is elements [g·seg, (g+1)·seg);
// partials [G × X] of vec4 scratch; sums [4G] = (Σ y·p, Σ y, Σ p, Σ bce) per
// segment, kept for the backward pass (Σ bce is 0 when λ is); loss [1];
// dloss [1] the upstream gradient of the loss; dp [n]. Nothing is read back:
// the loss and the sums stay on the GPU.
//
// Entry points (each binds its own variables from @binding(1) on; they share
// binding numbers, which WGSL allows across entry points):
//   partial_sums  the reduction of reduce.wgsl with a vec4 accumulator
//                 (Σ y·p, Σ y, Σ p, Σ bce): an X × G grid of workgroups of
//                 256, row g reducing segment g (X · G ≤ 1024, or X = 1 where
//                 G is larger); a grid-stride loop in registers, then a
//                 256 → 1 tree in workgroup memory; one vec4 per workgroup
//                 to partials[g · X + x].
//   loss          one workgroup of 256 adds each segment's X partials the
//                 same way, segment after segment; invocation 0 writes sums
//                 and loss.
//   backward      one invocation per element: dp_i = dloss / G · (a − b · y_i)
//                 (times p_i (1 − p_i) with LOGITS; + the cross-entropy
//                 term) with a = (2I + 1) / U², b = 2 / U
//                 of the element's segment, recomputed by every invocation
//                 from sums rather than stored.
//   partial_sums4, backward4  the same four elements at a time, as vec4s,
//                 where the segment length is a multiple of 4 (n and seg
//                 then count quads).
// The grid of backward may be folded into two dimensions:
// flat index = gid.x + gid.y · row_threads.


struct Params {
  n: u32,            // elements (backward) or partials per segment (loss)
  stride: u32,       // partial_sums: invocations in a row of the grid; backward: row_threads
  seg: u32,          // elements per segment
  groups: u32,       // segments (G)
  bce: f32,          // λ: the cross-entropy's weight; 0 for the Dice alone
  count: f32,        // elements in all (n of the formulas above), as a float
}

// Keras's clipping of probabilities in its cross-entropy.
const EPS = 1e-7;

// backward: the gradient with respect to the logits z of p = sigmoid(z) (see the top).
override LOGITS: bool = false;

@group(0) @binding(0) var<uniform> prm: Params;

// partial_sums
@group(0) @binding(1) var<storage, read> p: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials_out: array<vec4<f32>>;

// loss
@group(0) @binding(1) var<storage, read> partials_in: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> sums_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> loss_out: array<f32>;

// partial_sums4 (partials_out as above)
@group(0) @binding(1) var<storage, read> p4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> y4: array<vec4<f32>>;

// backward: p itself is needed only for the cross-entropy term.
@group(0) @binding(1) var<storage, read> y_in: array<f32>;
@group(0) @binding(2) var<storage, read> sums_in: array<f32>;
@group(0) @binding(3) var<storage, read> dloss: array<f32>;
@group(0) @binding(4) var<storage, read_write> dp: array<f32>;
@group(0) @binding(5) var<storage, read> p_in: array<f32>;

// backward4 (sums_in and dloss as above)
@group(0) @binding(1) var<storage, read> y_in4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> dp4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> p_in4: array<vec4<f32>>;

var<workgroup> lanes: array<vec4<f32>, GROUP>;

// Tree over the workgroup's 256 values; the total is valid in every invocation
// after the last barrier. Call from uniform control flow.
fn workgroup_total(acc: vec4<f32>, local: u32) -> vec4<f32> {
  lanes[local] = acc;
  workgroupBarrier();
  for (var half = GROUP / 2u; half > 0u; half >>= 1u) {
    if (local < half) {
      lanes[local] += lanes[local + half];
    }
    workgroupBarrier();
  }
  return lanes[0];
}

// GROUP (invocations per workgroup) is written in front of this file by its TypeScript wrapper.
@compute @workgroup_size(GROUP)
fn partial_sums(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) local: u32,
                @builtin(workgroup_id) group: vec3<u32>, @builtin(num_workgroups) grid: vec3<u32>) {
  var acc = vec4<f32>(0.0);
  let base = group.y * prm.seg;
  for (var i = gid.x; i < prm.seg; i += prm.stride) {
    let pi = p[base + i];
    let yi = y[base + i];
    acc += vec4<f32>(yi * pi, yi, pi, 0.0);
    if (prm.bce != 0.0) {
      let q = clamp(pi, EPS, 1.0 - EPS);
      acc.w -= yi * log(q) + (1.0 - yi) * log(1.0 - q);
    }
  }
  let total = workgroup_total(acc, local);
  if (local == 0u) {
    partials_out[group.y * grid.x + group.x] = total;
  }
}

@compute @workgroup_size(GROUP)
fn partial_sums4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) local: u32,
                 @builtin(workgroup_id) group: vec3<u32>, @builtin(num_workgroups) grid: vec3<u32>) {
  var acc = vec4<f32>(0.0);
  let ones = vec4<f32>(1.0);
  let base = group.y * prm.seg;
  for (var i = gid.x; i < prm.seg; i += prm.stride) {
    let pi = p4[base + i];
    let yi = y4[base + i];
    acc += vec4<f32>(dot(yi, pi), dot(yi, ones), dot(pi, ones), 0.0);
    if (prm.bce != 0.0) {
      let q = clamp(pi, vec4<f32>(EPS), vec4<f32>(1.0 - EPS));
      acc.w -= dot(yi, log(q)) + dot(ones - yi, log(ones - q));
    }
  }
  let total = workgroup_total(acc, local);
  if (local == 0u) {
    partials_out[group.y * grid.x + group.x] = total;
  }
}

// (2I + 1) / U² and 2 / U of segment g, from the sums.
fn grad_terms(g: u32) -> vec2<f32> {
  let u = sums_in[4u * g + 1u] + sums_in[4u * g + 2u] + 1.0;
  return vec2<f32>((2.0 * sums_in[4u * g] + 1.0) / (u * u), 2.0 / u);
}

// d bce / d p: (p − y) / (p (1 − p)), the denominator kept off 0 (p exactly 0 or
// 1 in f32, where the sigmoid's derivative is 0 and the product stays finite);
// with LOGITS d bce / d z, p − y.
fn bce_grad(pi: f32, yi: f32) -> f32 {
  if (LOGITS) {
    return pi - yi;
  }
  return (pi - yi) / max(pi * (1.0 - pi), 1e-30);
}


@compute @workgroup_size(GROUP)
fn loss(@builtin(local_invocation_index) local: u32) {
  var dice = 0.0;
  var bce = 0.0;
  for (var g = 0u; g < prm.groups; g++) {
    var acc = vec4<f32>(0.0);
    for (var i = local; i < prm.n; i += GROUP) {
      acc += partials_in[g * prm.n + i];
    }
    let total = workgroup_total(acc, local);
    if (local == 0u) {
      sums_out[4u * g] = total.x;
      sums_out[4u * g + 1u] = total.y;
      sums_out[4u * g + 2u] = total.z;
      sums_out[4u * g + 3u] = total.w;
      dice += (2.0 * total.x + 1.0) / (total.y + total.z + 1.0);
      bce += total.w;
    }
    // Every invocation has read lanes[0] before the next segment overwrites it.
    workgroupBarrier();
  }
  if (local == 0u) {
    loss_out[0] = -dice / f32(prm.groups);
    if (prm.bce != 0.0) {
      loss_out[0] += prm.bce * bce / prm.count;
    }
  }
}

@compute @workgroup_size(GROUP)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * prm.stride;
  if (i >= prm.n) {
    return;
  }
  let ab = grad_terms(i / prm.seg);
  var g = dloss[0] / f32(prm.groups) * (ab.x - ab.y * y_in[i]);
  if (LOGITS) {
    g *= p_in[i] * (1.0 - p_in[i]);
  }
  dp[i] = g;
  if (prm.bce != 0.0) {
    dp[i] += dloss[0] * prm.bce / prm.count * bce_grad(p_in[i], y_in[i]);
  }
}

@compute @workgroup_size(GROUP)
fn backward4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * prm.stride;
  if (i >= prm.n) {
    return;
  }
  let ab = grad_terms(i / prm.seg);
  var g = dloss[0] / f32(prm.groups) * (ab.x - ab.y * y_in4[i]);
  if (LOGITS) {
    g *= p_in4[i] * (1.0 - p_in4[i]);
  }
  dp4[i] = g;
  if (prm.bce != 0.0) {
    let pi = p_in4[i];
    let yi = y_in4[i];
    let g = vec4<f32>(bce_grad(pi.x, yi.x), bce_grad(pi.y, yi.y), bce_grad(pi.z, yi.z), bce_grad(pi.w, yi.w));
    dp4[i] += dloss[0] * prm.bce / prm.count * g;
  }
}
