// The tutorial's Dice loss over a whole batch, and its gradient.
//
//   I = Σ y·p,  U = Σ y + Σ p + 1,  dice = (2I + 1) / U,  loss = −dice
//   d loss / d p_i = −(2 y_i U − (2I + 1)) / U² = ((2I + 1) − 2 y_i U) / U²
//
// Layouts: p, y [n] (any tensor shape, read flat: predictions after the
// sigmoid and soft masks in [0, 1]); partials [G] of vec4 scratch;
// sums [3] = (Σ y·p, Σ y, Σ p), kept for the backward pass; loss [1];
// dloss [1] the upstream gradient of the loss; dp [n].
// Nothing is read back: the loss and the sums stay on the GPU.
//
// Entry points (each binds its own variables from @binding(1) on; they share
// binding numbers, which WGSL allows across entry points):
//   partial_sums  the reduction of reduce.wgsl with a vec4 accumulator
//                 (Σ y·p, Σ y, Σ p, unused): G workgroups of 256 (G ≤ 1024); a
//                 grid-stride loop in registers, then a 256 → 1 tree in
//                 workgroup memory; one vec4 per workgroup to partials[group].
//   loss          one workgroup of 256 adds the G partials the same way;
//                 invocation 0 writes sums and loss.
//   backward      one invocation per element: dp_i = dloss · (a − b · y_i) with
//                 a = (2I + 1) / U², b = 2 / U, recomputed by every invocation
//                 from sums (four loads of the same addresses by every
//                 invocation, served from cache) rather than stored.
//   partial_sums4, backward4  the same four elements at a time, as vec4s,
//                 where n is a multiple of 4 (n then counts quads).
// The grid of backward may be folded into two dimensions:
// flat index = gid.x + gid.y · row_threads.


struct Params {
  n: u32,            // elements (partial_sums, backward) or partials (loss)
  stride: u32,       // partial_sums and loss: invocations in the grid; backward: row_threads
}

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

// backward: p itself is not needed, only y and the sums.
@group(0) @binding(1) var<storage, read> y_in: array<f32>;
@group(0) @binding(2) var<storage, read> sums_in: array<f32>;
@group(0) @binding(3) var<storage, read> dloss: array<f32>;
@group(0) @binding(4) var<storage, read_write> dp: array<f32>;

// backward4 (sums_in and dloss as above)
@group(0) @binding(1) var<storage, read> y_in4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> dp4: array<vec4<f32>>;

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
                @builtin(workgroup_id) group: vec3<u32>) {
  var acc = vec4<f32>(0.0);
  for (var i = gid.x; i < prm.n; i += prm.stride) {
    let pi = p[i];
    let yi = y[i];
    acc += vec4<f32>(yi * pi, yi, pi, 0.0);
  }
  let total = workgroup_total(acc, local);
  if (local == 0u) {
    partials_out[group.x] = total;
  }
}

@compute @workgroup_size(GROUP)
fn partial_sums4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) local: u32,
                 @builtin(workgroup_id) group: vec3<u32>) {
  var acc = vec4<f32>(0.0);
  let ones = vec4<f32>(1.0);
  for (var i = gid.x; i < prm.n; i += prm.stride) {
    let pi = p4[i];
    let yi = y4[i];
    acc += vec4<f32>(dot(yi, pi), dot(yi, ones), dot(pi, ones), 0.0);
  }
  let total = workgroup_total(acc, local);
  if (local == 0u) {
    partials_out[group.x] = total;
  }
}

// (2I + 1) / U² and 2 / U from the sums.
fn grad_terms() -> vec2<f32> {
  let u = sums_in[1] + sums_in[2] + 1.0;
  return vec2<f32>((2.0 * sums_in[0] + 1.0) / (u * u), 2.0 / u);
}

@compute @workgroup_size(GROUP)
fn loss(@builtin(local_invocation_index) local: u32) {
  var acc = vec4<f32>(0.0);
  for (var i = local; i < prm.n; i += GROUP) {
    acc += partials_in[i];
  }
  let total = workgroup_total(acc, local);
  if (local == 0u) {
    sums_out[0] = total.x;
    sums_out[1] = total.y;
    sums_out[2] = total.z;
    loss_out[0] = -(2.0 * total.x + 1.0) / (total.y + total.z + 1.0);
  }
}

@compute @workgroup_size(GROUP)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * prm.stride;
  if (i >= prm.n) {
    return;
  }
  let ab = grad_terms();
  dp[i] = dloss[0] * (ab.x - ab.y * y_in[i]);
}

@compute @workgroup_size(GROUP)
fn backward4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * prm.stride;
  if (i >= prm.n) {
    return;
  }
  let ab = grad_terms();
  dp4[i] = dloss[0] * (ab.x - ab.y * y_in4[i]);
}
