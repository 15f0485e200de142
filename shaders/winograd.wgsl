// Winograd F(2×2, 3×3) for 3 × 3, stride-1, 'same' (pad 1) convolutions on
// CPU adapters (src/kernels/conv.ts uses it with conv_rows.wgsl). Each 2 × 2
// block of outputs (a tile) is computed from the 4 × 4 patch of input around
// it as Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A, per input and output channel:
//   Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]
//   G  = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]
//   Aᵀ = [1 1 1 0; 0 1 −1 −1]
// so the sum over input channels becomes 16 independent GEMMs, one per
// element ξ = 4r + s of the 4 × 4 transforms:
//   M[ξ][tile][o] = Σ_i V[ξ][tile][i] · U[ξ][i][o]
// with 16 multiplies per tile and channel pair where the direct convolution
// does 36 (2.25× fewer). The three passes here:
// - weight_tiles: U[ξ][i][o] = (G g Gᵀ)[ξ] for the kernel g of input channel
//   i and output channel o; with FLIP the kernel of ∂input (taps rotated by
//   180°, in and out channels swapped) read straight from w (3, 3, Ci, Co);
// - input_tiles: V[ξ][tile][c] = (Bᵀ d B)[ξ], d the 4 × 4 patch of channel c
//   at rows 2ty − 1 .. 2ty + 2 and columns 2tx − 1 .. 2tx + 2 (zero outside);
// - output_tiles: y at rows 2ty, 2ty + 1 and columns 2tx, 2tx + 1 (those
//   inside the image) = Aᵀ m A of the 16 values M[ξ][tile][o], plus bias and
//   activation (forward) or added to y (ACCUMULATE, ∂input).
// ACT and activate() (output_tiles) come from activation.wgsl, which the
// wrapper appends to this file.
// Tiles are numbered (n · th + ty) · tw + tx, th = ⌈h / 2⌉, tw = ⌈w / 2⌉,
// counting images n from the pass's first (n0): V and M hold the tiles of
// the images one pass covers.
// input_tiles and output_tiles run one invocation per channel (x) and row
// of tiles (y), walking the row's tiles left to right: input_tiles keeps the
// last two columns of a patch for the next one (patches overlap by two), so
// a tile costs 8 loads and 16 stores. On lavapipe every invocation is a
// lane of an 8-wide vector and a workgroup costs about a microsecond, hence
// whole rows per invocation and no division in the loops.
// On lavapipe (batch 8) the four passes took 0.4–0.93 of the time of the
// single GEMM (conv_rows.wgsl, modes 0 and 1) for 3 × 3 layers of 64 and
// more channels: the products run about as fast per multiply as that GEMM,
// and the transforms' loads and stores (a sixth of the time at 12 × 12
// 512 → 256, a third at 48 × 48 64 → 64, over two fifths at 96 × 96
// 32 → 32) are what keeps the 32 → 32 layers on the GEMM. Against the GEMM's sums
// the results differ by about 10⁻⁶ relative.

// output_tiles: add bias[o] (forward).
override BIAS: bool = false;
// output_tiles: add to y instead of overwriting it (∂input).
override ACCUMULATE: bool = false;
// weight_tiles: the kernel is that of the ∂input of a convolution whose w
// (3, 3, Ci, Co) is bound: its taps rotated by 180° and its in and out
// channels swapped, so this pass's c (in) is that w's Co and c_out its Ci.
override FLIP: bool = false;
// Invocations per workgroup along channels: the wrapper sizes it to them.
override WG: u32 = 64u;

struct Params {
  n: u32,
  h: u32,
  w: u32,
  // input channels (input_tiles, weight_tiles) or output channels (output_tiles)
  c: u32,
  // output channels (weight_tiles)
  c_out: u32,
  th: u32,
  tw: u32,
  // tiles of this pass: n · th · tw for the images n0 .. n0 + n − 1
  tiles: u32,
  // first image of the pass (the wrapper goes through a large batch in parts)
  n0: u32,
}

@group(0) @binding(0) var<uniform> q: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

// Column x of rows y0 .. y0 + 3 of channel c of image n, zero outside.
fn patch_column(n: u32, y0: i32, x: i32, c: u32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  if (x < 0 || x >= i32(q.w)) {
    return v;
  }
  for (var r = 0; r < 4; r++) {
    let y = y0 + r;
    let inside = y >= 0 && y < i32(q.h);
    v[r] = select(0.0, src[select(0u, ((n * q.h + u32(y)) * q.w + u32(x)) * q.c + c, inside)], inside);
  }
  return v;
}

// Bᵀ d for one column d of a patch (rows as components).
fn bt(d: vec4<f32>) -> vec4<f32> {
  return vec4<f32>(d.x - d.z, d.y + d.z, d.z - d.y, d.y - d.w);
}

@compute @workgroup_size(WG)
fn input_tiles(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  let row = gid.y;
  if (c >= q.c) {
    return;
  }
  let ty = row % q.th;
  let n = q.n0 + row / q.th;
  let y0 = i32(2u * ty) - 1;
  // (Bᵀ d) of the patch's four columns; the next patch starts two to the right.
  var t0 = bt(patch_column(n, y0, -1, c));
  var t1 = bt(patch_column(n, y0, 0, c));
  let stride = q.tiles * q.c;
  var at = row * q.tw * q.c + c;
  for (var tx = 0u; tx < q.tw; tx++) {
    let x = i32(2u * tx);
    let t2 = bt(patch_column(n, y0, x + 1, c));
    let t3 = bt(patch_column(n, y0, x + 2, c));
    // (Bᵀ d) B: column s of the result, rows r as components.
    let v = array<vec4<f32>, 4>(t0 - t2, t1 + t2, t2 - t1, t1 - t3);
    for (var r = 0u; r < 4u; r++) {
      for (var s = 0u; s < 4u; s++) {
        dst[(4u * r + s) * stride + at] = v[s][r];
      }
    }
    t0 = t2;
    t1 = t3;
    at += q.c;
  }
}

// (a0, (a0 + a1 + a2) / 2, (a0 − a1 + a2) / 2, a2): G times a column of 3.
fn g3(a: vec3<f32>) -> vec4<f32> {
  return vec4<f32>(a.x, 0.5 * (a.x + a.y + a.z), 0.5 * (a.x - a.y + a.z), a.z);
}

// Input channels per invocation of weight_tiles: the grid's y is ⌈c / KERNELS⌉.
const KERNELS: u32 = 8u;

// Invocation (o, j) = (gid.x, gid.y): U[ξ][i][o] for o < c_out and the
// input channels i = KERNELS·j .. KERNELS·j + KERNELS − 1 below c (few
// workgroups: see the header).
@compute @workgroup_size(WG)
fn weight_tiles(@builtin(global_invocation_id) gid: vec3<u32>) {
  let o = gid.x;
  if (o >= q.c_out) {
    return;
  }
  let stride = q.c * q.c_out;
  let end = min(q.c, KERNELS * gid.y + KERNELS);
  for (var i = KERNELS * gid.y; i < end; i++) {
    // g[ky] = row ky of the kernel (kx as components).
    var g: array<vec3<f32>, 3>;
    for (var ky = 0u; ky < 3u; ky++) {
      for (var kx = 0u; kx < 3u; kx++) {
        var at: u32;
        if (FLIP) {
          at = (((2u - ky) * 3u + 2u - kx) * q.c_out + o) * q.c + i;
        } else {
          at = ((ky * 3u + kx) * q.c + i) * q.c_out + o;
        }
        g[ky][kx] = src[at];
      }
    }
    // G g: column kx of it is g3 of column kx of g; then (G g) Gᵀ row by row.
    let c0 = g3(vec3<f32>(g[0].x, g[1].x, g[2].x));
    let c1 = g3(vec3<f32>(g[0].y, g[1].y, g[2].y));
    let c2 = g3(vec3<f32>(g[0].z, g[1].z, g[2].z));
    for (var r = 0u; r < 4u; r++) {
      let u = g3(vec3<f32>(c0[r], c1[r], c2[r]));
      for (var s = 0u; s < 4u; s++) {
        dst[(4u * r + s) * stride + i * q.c_out + o] = u[s];
      }
    }
  }
}

@group(0) @binding(3) var<storage, read> bias: array<f32>;

// One output: plus b (the bias of its channel, or 0), activated, or added.
fn put(at: u32, v: f32, b: f32) {
  var r = v + b;
  if (ACCUMULATE) {
    r += dst[at];
  }
  dst[at] = activate(r);
}

// Invocation (o, row of tiles) = (gid.x, gid.y).
@compute @workgroup_size(WG)
fn output_tiles(@builtin(global_invocation_id) gid: vec3<u32>) {
  let o = gid.x;
  let row = gid.y;
  if (o >= q.c) {
    return;
  }
  let ty = row % q.th;
  let n = q.n0 + row / q.th;
  let y = 2u * ty;
  var b = 0.0;
  if (BIAS) {
    b = bias[o];
  }
  let stride = q.tiles * q.c;
  var at = row * q.tw * q.c + o;
  for (var tx = 0u; tx < q.tw; tx++) {
    // m[r] = row r of the 4 × 4 (s as components); t = Aᵀ m; Y = t A.
    var m: array<vec4<f32>, 4>;
    for (var r = 0u; r < 4u; r++) {
      for (var s = 0u; s < 4u; s++) {
        m[r][s] = src[(4u * r + s) * stride + at];
      }
    }
    let t0 = m[0] + m[1] + m[2];
    let t1 = m[1] - m[2] - m[3];
    let x = 2u * tx;
    let base = ((n * q.h + y) * q.w + x) * q.c + o;
    put(base, t0.x + t0.y + t0.z, b);
    if (x + 1u < q.w) {
      put(base + q.c, t0.y - t0.z - t0.w, b);
    }
    if (y + 1u < q.h) {
      put(base + q.w * q.c, t1.x + t1.y + t1.z, b);
      if (x + 1u < q.w) {
        put(base + (q.w + 1u) * q.c, t1.y - t1.z - t1.w, b);
      }
    }
    at += q.c;
  }
}
