// Sum of every element of a float32 array, as a two-level tree reduction.
//
// Layouts: x [n] (any tensor, read flat), partials [G] scratch, out [1].
//
// partial_sums  G workgroups of 256 invocations (G ≤ 1024, chosen by the wrapper).
//               Invocation t of the whole grid first adds x[t], x[t + 256·G], … in a
//               register (a grid-stride loop: at every step a workgroup reads 256
//               neighbouring floats), then the workgroup halves its 256 values in
//               workgroup memory, 128 → 64 → … → 1, and writes its sum to
//               partials[group]. No atomics: the order of additions is fixed, so
//               the result is deterministic for a given n.
// total_sum     one workgroup of 256: the same two steps over partials[0..G), then
//               out[0] = the total.
// Both passes bind the same way (src read, dst written); the wrapper takes
// the partials buffer from the pool and gives it back after recording.
// The tree keeps float32 rounding error growing with log n rather than n,
// which keeps a 32 × 96 × 96 batch (294,912 terms) well inside 1e-4.


struct Params {
  n: u32,            // elements to add (x for partial_sums, partials for total_sum)
  stride: u32,       // invocations in the grid: 256 · workgroups
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

var<workgroup> lanes: array<f32, GROUP>;

// Adds src[start], src[start + stride], … then reduces across the workgroup;
// the returned total is valid in invocation 0. Must be called from uniform
// control flow (it has barriers).
fn workgroup_sum(start: u32, local: u32) -> f32 {
  var acc = 0.0;
  for (var i = start; i < p.n; i += p.stride) {
    acc += src[i];
  }
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
  let total = workgroup_sum(gid.x, local);
  if (local == 0u) {
    dst[group.x] = total;
  }
}

@compute @workgroup_size(GROUP)
fn total_sum(@builtin(local_invocation_index) local: u32) {
  let total = workgroup_sum(local, local);
  if (local == 0u) {
    dst[0] = total;
  }
}
