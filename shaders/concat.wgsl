// Concatenation along channels and its gradient, the U-Net's skip connection.
//
// Layouts (float32, NHWC, dense), P = N·H·W pixels, C = Ca + Cb:
//   a [P, Ca], b [P, Cb], out [P, C]   out[q, k] = a[q, k] for k < Ca, else b[q, k − Ca]
// The gradient reverses it: da[q, k] = dout[q, k], db[q, k] = dout[q, Ca + k].
//
// Entry points (one pipeline each; both run one invocation per element of the
// concatenated tensor, index (q, k), k fastest, so neighbouring invocations
// touch neighbouring addresses in every array; channel counts need not be
// multiples of 4, so the loads are scalar):
//   concat  writes out[q, k] from a or b.
//   split   reads dout[q, k], writes da or db. ACCUMULATE adds into da / db:
//           in the U-Net the skip tensor's gradient also gets the gradient
//           of the next layer on the encoder path.
// The grid may be folded into two dimensions: flat index = gid.x + gid.y · row_threads.

override ACCUMULATE: bool = false;

struct Params {
  count: u32,        // P · C
  row_threads: u32,
  ca: u32,
  cb: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// concat
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// split
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read_write> da: array<f32>;
@group(0) @binding(3) var<storage, read_write> db: array<f32>;

@compute @workgroup_size(256)
fn concat(@builtin(global_invocation_id) gid: vec3<u32>) {
  let flat = gid.x + gid.y * p.row_threads;
  if (flat >= p.count) {
    return;
  }
  let c = p.ca + p.cb;
  let q = flat / c;
  let k = flat - q * c;
  if (k < p.ca) {
    out[flat] = a[q * p.ca + k];
  } else {
    out[flat] = b[q * p.cb + (k - p.ca)];
  }
}

@compute @workgroup_size(256)
fn split(@builtin(global_invocation_id) gid: vec3<u32>) {
  let flat = gid.x + gid.y * p.row_threads;
  if (flat >= p.count) {
    return;
  }
  let c = p.ca + p.cb;
  let q = flat / c;
  let k = flat - q * c;
  let g = dout[flat];
  if (k < p.ca) {
    let i = q * p.ca + k;
    if (ACCUMULATE) {
      da[i] = da[i] + g;
    } else {
      da[i] = g;
    }
  } else {
    let i = q * p.cb + (k - p.ca);
    if (ACCUMULATE) {
      db[i] = db[i] + g;
    } else {
      db[i] = g;
    }
  }
}
