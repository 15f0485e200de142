// Concatenation along channels and its gradient, the U-Net's skip connection.
//
// Layouts (NHWC, dense, all of one ELEM_TYPE: an alias written in front by
// kernel.ts, f32, or f16 for mixed precision), P = N·H·W pixels, C = Ca + Cb:
//   a [P, Ca], b [P, Cb], out [P, C]   out[q, k] = a[q, k] for k < Ca, else b[q, k − Ca]
// The gradient reverses it: da[q, k] = dout[q, k], db[q, k] = dout[q, Ca + k].
//
// Entry points (one pipeline each). They run one invocation per element of
// the concatenated tensor, index (q, k), k fastest, so neighbouring
// invocations touch neighbouring addresses in every array:
//   concat  writes out[q, k] from a or b.
//   split   reads dout[q, k], writes da or db. ACCUMULATE adds into da / db:
//           in the U-Net the skip tensor's gradient also gets the gradient
//           of the next layer on the encoder path.
// concat4 and split4 do the same four channels at a time, as vec4s, where Ca
// and Cb are multiples of 4: the wrapper then passes count, ca and cb in
// quads of channels, and the index arithmetic is the same.
// The grid may be folded into two dimensions: flat index = gid.x + gid.y · row_threads.

override ACCUMULATE: bool = false;

struct Params {
  count: u32,        // P · C (in quads for concat4 / split4)
  row_threads: u32,
  ca: u32,
  cb: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// Each entry point's bindings (WGSL lets entry points reuse numbers with other variables).
// concat
@group(0) @binding(1) var<storage, read> a: array<ELEM_TYPE>;
@group(0) @binding(2) var<storage, read> b: array<ELEM_TYPE>;
@group(0) @binding(3) var<storage, read_write> out: array<ELEM_TYPE>;
// concat4
@group(0) @binding(1) var<storage, read> a4: array<vec4<ELEM_TYPE>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<ELEM_TYPE>>;
@group(0) @binding(3) var<storage, read_write> out4: array<vec4<ELEM_TYPE>>;
// split
@group(0) @binding(1) var<storage, read> dout: array<ELEM_TYPE>;
@group(0) @binding(2) var<storage, read_write> da: array<ELEM_TYPE>;
@group(0) @binding(3) var<storage, read_write> db: array<ELEM_TYPE>;
// split4
@group(0) @binding(1) var<storage, read> dout4: array<vec4<ELEM_TYPE>>;
@group(0) @binding(2) var<storage, read_write> da4: array<vec4<ELEM_TYPE>>;
@group(0) @binding(3) var<storage, read_write> db4: array<vec4<ELEM_TYPE>>;

// Where element `flat` of the concatenated tensor lives: in a (or b), at `at`.
struct Source {
  in_a: bool,
  at: u32,
}

fn source(flat: u32) -> Source {
  let c = p.ca + p.cb;
  let q = flat / c;
  let k = flat - q * c;
  if (k < p.ca) {
    return Source(true, q * p.ca + k);
  }
  return Source(false, q * p.cb + (k - p.ca));
}

fn index(gid: vec3<u32>) -> u32 {
  return gid.x + gid.y * p.row_threads;
}

// GROUP (invocations per workgroup) is written in front of this file by its TypeScript wrapper.
@compute @workgroup_size(GROUP)
fn concat(@builtin(global_invocation_id) gid: vec3<u32>) {
  let flat = index(gid);
  if (flat >= p.count) {
    return;
  }
  let s = source(flat);
  if (s.in_a) {
    out[flat] = a[s.at];
  } else {
    out[flat] = b[s.at];
  }
}

@compute @workgroup_size(GROUP)
fn concat4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let flat = index(gid);
  if (flat >= p.count) {
    return;
  }
  let s = source(flat);
  if (s.in_a) {
    out4[flat] = a4[s.at];
  } else {
    out4[flat] = b4[s.at];
  }
}

@compute @workgroup_size(GROUP)
fn split(@builtin(global_invocation_id) gid: vec3<u32>) {
  let flat = index(gid);
  if (flat >= p.count) {
    return;
  }
  let s = source(flat);
  let g = dout[flat];
  if (s.in_a) {
    if (ACCUMULATE) {
      da[s.at] = da[s.at] + g;
    } else {
      da[s.at] = g;
    }
  } else {
    if (ACCUMULATE) {
      db[s.at] = db[s.at] + g;
    } else {
      db[s.at] = g;
    }
  }
}

@compute @workgroup_size(GROUP)
fn split4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let flat = index(gid);
  if (flat >= p.count) {
    return;
  }
  let s = source(flat);
  let g = dout4[flat];
  if (s.in_a) {
    if (ACCUMULATE) {
      da4[s.at] = da4[s.at] + g;
    } else {
      da4[s.at] = g;
    }
  } else {
    if (ACCUMULATE) {
      db4[s.at] = db4[s.at] + g;
    } else {
      db4[s.at] = g;
    }
  }
}
