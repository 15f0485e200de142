// What the convolution shaders share (conv_tiled.wgsl, conv_mma.wgsl,
// conv_direct.wgsl, software/conv_rows.wgsl): appended to each when its
// source is put together (gemm.ts) (and activation.wgsl, whose ACT and activate() the forward
// modes use), so the modes' parameters, the first six bindings, where each
// element of C goes and where the CPU shaders' weight rows read A are written
// once. The table of modes 0–5 is in conv_tiled.wgsl; mode 6 is below.

// 0 conv forward, 1 conv ∂input, 2 conv ∂weights, 3 transposed forward,
// 4 transposed ∂input, 5 transposed ∂weights; 6 (conv_rows.wgsl only) a batch
// of plain GEMMs, one per workgroup z (the Winograd convolution's α²
// products, 16 or 36, winograd.wgsl).
override MODE: u32 = 0u;
// Modes 1, 4: add C into out instead of overwriting it.
override ACCUMULATE: bool = false;
// Mode 2, tiled and mma shaders only: A has one more row after the KH·KW·Ci rows of
// im2col(x)ᵀ, all ones (p.m counts it), so the last row of C is Σ over pixels
// of dy — the bias gradient, computed from the tiles of dy the weight gradient
// stages anyway.
override BIAS_ROW: bool = false;
// Mode 5, tiled and mma shaders only: B (x) has one more column after its Ci
// columns, all ones (p.n counts it), so the last column of C is each row's
// Σ over pixels of dy, row (tap, co); reduce_splits adds a channel's four
// taps into its bias gradient. The transposed convolution's BIAS_ROW.
override BIAS_COL: bool = false;
// Modes 0, 1 (tiled and mma shaders): the reduction over (tap, channel) split
// across workgroup z as modes 2 and 5 split theirs, so that a GEMM of few
// tiles and a long reduction (the deep layers) fills the GPU. C is then
// written as raw partial sums, one slice per split, and split_sum.wgsl's
// finish_splits adds them up with the bias, activation and accumulation.
override SPLIT_K: bool = false;
// Modes 1, 4: multiply each finished element of dx (after the accumulation)
// by [mask > 0], mask_src holding x itself where x is a ReLU's output: the
// ReLU's backward fused into the store of the gradient it applies to.
override MASK: bool = false;

struct Params {
  batch: u32,
  // spatial size of the NHWC tensor that A is gathered from (dy for modes 1, 4, 5)
  h: u32,
  w: u32,
  // channels of the tensor A is gathered from
  a_c: u32,
  kh: u32,
  kw: u32,
  pad: u32,
  // channels of the other operand: Co for modes 0, 2, 4 (the number of columns); Ci for 1; Co for 3, 5
  b_c: u32,
  m: u32,
  n: u32,
  k: u32,
  // reduction length handled by one split (modes 2, 5)
  k_per_split: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// A, B and C's element types: aliases written in front by gemm.ts, f32 but
// on the mixed-precision shader, where f16 tensors may be bound (the code
// below reads them into f32 and writes C back in its own type).
@group(0) @binding(1) var<storage, read> a_src: array<A_TYPE>;
@group(0) @binding(2) var<storage, read> b_src: array<B_TYPE>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<OUT_TYPE>;
// MASK's tensor, laid out as out (a placeholder without MASK).
@group(0) @binding(5) var<storage, read> mask_src: array<OUT_TYPE>;

// B[k, col] where B is read as a [K × N] matrix (the tiled and mma shaders'
// modes 0, 2, 4 and 5), col < N: with BIAS_COL the last column is ones and
// the stored rows one shorter.
fn b_kn(k: u32, col: u32) -> f32 {
  if (BIAS_COL) {
    if (col == p.n - 1u) {
      return 1.0;
    }
    return f32(b_src[k * (p.n - 1u) + col]);
  }
  return f32(b_src[k * p.n + col]);
}

// Where element (row, col) of C goes, as an index into out: the transposed
// forward scatters row (n, i, j) and column (a, b, co) to y[n, 2i+a, 2j+b, co];
// modes 2, 5 (and 0, 1 with SPLIT_K) write the split's slice of partial sums
// (6: product `split` of the batch); the rest write row-major C (y, dx).
fn out_index(row: u32, col: u32, split: u32) -> u32 {
  if (SPLIT_K) {
    return (split * p.m + row) * p.n + col;
  }
  switch MODE {
    case 3u: {
      return up_index(up_pixel(row), col / p.b_c, col % p.b_c);
    }
    case 2u, 5u, 6u: {
      return (split * p.m + row) * p.n + col;
    }
    default: {
      return row * p.n + col;
    }
  }
}

// The reduction's range [begin, end) that workgroup z = `split` walks: a
// slice of p.k_per_split in the split modes (2, 5, and 0, 1 with SPLIT_K),
// else all of it.
fn k_range(split: u32) -> vec2<u32> {
  if (MODE == 2u || MODE == 5u || SPLIT_K) {
    let begin = split * p.k_per_split;
    return vec2<u32>(begin, min(p.k, begin + p.k_per_split));
  }
  return vec2<u32>(0u, p.k);
}

// Mode 3: row (n, i, j) of C is the pixel (n, i, j) of x, as
// vec3(n, i, j); up_next steps to the next row's without dividing (the CPU
// shaders store consecutive rows, and there an integer division of a SIMD
// vector is a scalar division per lane).
fn up_pixel(row: u32) -> vec3<u32> {
  let ni = row / p.w;
  return vec3<u32>(ni / p.h, ni % p.h, row % p.w);
}

fn up_next(px: vec3<u32>) -> vec3<u32> {
  var q = px;
  q.z++;
  if (q.z == p.w) {
    q.z = 0u;
    q.y++;
    if (q.y == p.h) {
      q.y = 0u;
      q.x++;
    }
  }
  return q;
}

// Where column (ab, co) of the row at pixel px goes: y[n, 2i + a, 2j + b, co]
// with ab = 2a + b.
fn up_index(px: vec3<u32>, ab: u32, co: u32) -> u32 {
  return ((px.x * 2u * p.h + 2u * px.y + ab / 2u) * 2u * p.w + 2u * px.z + ab % 2u) * p.b_c + co;
}

// Writes a finished value of C to out[at]: added to what is there for the
// ∂input modes (1, 4) when ACCUMULATE, else overwriting it; then with MASK
// zero where mask_src[at] is not positive.
fn write_out(at: u32, v: f32) {
  var total = v;
  if (ACCUMULATE && (MODE == 1u || MODE == 4u)) {
    total += f32(out[at]);
  }
  if (MASK && !(f32(mask_src[at]) > 0.0)) {
    total = 0.0;
  }
  out[at] = OUT_TYPE(total);
}

// Stores one element of C: bias and activation (mode 0), bias (mode 3),
// accumulation when asked (modes 1, 4); a partial sum as it is with SPLIT_K.
fn store(row: u32, col: u32, split: u32, v: f32) {
  let at = out_index(row, col, split);
  if (SPLIT_K) {
    write_out(at, v);
    return;
  }
  switch MODE {
    case 0u: {
      write_out(at, activate(v + bias[col]));
    }
    case 3u: {
      write_out(at, v + bias[col % p.b_c]);
    }
    default: {
      write_out(at, v);
    }
  }
}

// The weight-gradient modes of the software shader (software/conv_rows.wgsl): A's row (tap, channel) read at pixel (n, y, x) of the
// reduction.

struct Tap {
  at: u32,
  inside: bool,
}

// (dy, dx) of tap t: mode 2 a kernel tap shifted by the padding, mode 5 a
// position (a, b) of the 2 × 2 block of dy.
fn tap_offset(t: u32) -> vec2<i32> {
  if (MODE == 2u) {
    return vec2<i32>(i32(t / p.kw) - i32(p.pad), i32(t % p.kw) - i32(p.pad));
  }
  return vec2<i32>(i32(t / 2u), i32(t % 2u));
}

// Where a weight row — tap offset `off`, channel `ch` — reads A at pixel
// (n, y, x) of the reduction: x shifted by the tap (mode 2, zero outside the
// image) or the pixel's 2 × 2 block of dy (mode 5).
fn weight_tap(off: vec2<i32>, ch: u32, ok: bool, n: u32, y: u32, x: u32) -> Tap {
  let h = p.h;
  let w = p.w;
  if (MODE == 2u) {
    let iy = i32(y) + off.x;
    let ix = i32(x) + off.y;
    let inside = ok && iy >= 0 && ix >= 0 && iy < i32(h) && ix < i32(w);
    return Tap(select(0u, ((n * h + u32(iy)) * w + u32(ix)) * p.a_c + ch, inside), inside);
  }
  return Tap(((n * 2u * h + 2u * y + u32(off.x)) * 2u * w + 2u * x + u32(off.y)) * p.a_c + ch, ok);
}
