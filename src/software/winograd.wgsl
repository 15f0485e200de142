// Winograd convolutions F(m × m, 3 × 3) for 3 × 3, stride-1, 'same' (pad 1)
// convolutions and their ∂input on CPU adapters (conv.ts uses
// them with conv_rows.wgsl). Each m × m block of outputs (a tile) is computed
// from the α × α patch of input around it (α = m + 2) as
//   Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A
// per input and output channel, so the sum over input channels becomes α²
// independent GEMMs, one per element ξ = α·r + s of the α × α transforms:
//   M[ξ][tile][o] = Σ_i V[ξ][tile][i] · U[ξ][i][o]
// with α² multiplies per tile and channel pair where the direct convolution
// does 9·m². This file holds the passes; the tile size and the matrices Bᵀ,
// G, Aᵀ come from the file the wrapper puts before it: winograd2.wgsl
// (F(2×2, 3×3): 16 multiplies for 4 outputs, 2.25× fewer) or winograd4.wgsl
// (F(4×4, 3×3): 36 for 16, 4× fewer), each defining
//   TILE (m), ALPHA (α), bt(d) = Bᵀ d and at(m) = Aᵀ m for a column of α,
//   gt(a0, a1, a2) = G a for a column of the kernel's 3 taps,
// on the Quad, Col and Out types declared here.
// The passes:
// - weight_tiles: U[ξ][i][o] = (G g Gᵀ)[ξ] for the kernel g of input channel
//   i and output channel o; with FLIP the kernel of ∂input (taps rotated by
//   180°, in and out channels swapped) read straight from w (3, 3, Ci, Co);
// - input_tiles: V[ξ][tile][c] = (Bᵀ d B)[ξ], d the α × α patch of channel
//   c at rows m·ty − 1 .. m·ty + m and columns m·tx − 1 .. m·tx + m (zero
//   outside);
// - output_tiles: y at rows m·ty .. m·ty + m − 1 and columns m·tx .. (those
//   inside the image) = Aᵀ M A of the α² values M[ξ][tile][o], plus bias and
//   activation (forward) or added to y (ACCUMULATE, ∂input), then masked
//   (MASK, ∂input).
// ACT, activate() and activate4() come from activation.wgsl, which the wrapper appends.
// Tiles are numbered (n · th + ty) · tw + tx, th = ⌈h / m⌉, tw = ⌈w / m⌉,
// counting images n from the pass's first (n0): V and M hold the tiles of
// the images one pass covers.
// Every invocation handles four channels as a vec4 (the wrapper runs these
// passes only where both channel counts are multiples of 4): on lavapipe a
// storage access whose address differs across the lanes of its 8-wide vector
// is a loop over the lanes, so a vec4 moves four values for the price of one.
// input_tiles and output_tiles run one invocation per channel quad (x) and
// row of tiles (y), walking the row's tiles left to right: input_tiles keeps
// the last two columns of a patch for the next one (patches overlap by two),
// so a tile costs α·m loads and α² stores. A workgroup costs about a
// microsecond on lavapipe, hence whole rows per invocation and no division
// in the loops.

// output_tiles: add bias[o] (forward).
override BIAS: bool = false;
// output_tiles: add to y instead of overwriting it (∂input).
override ACCUMULATE: bool = false;
// output_tiles: then zero where mask is not positive (∂input of a layer
// whose input is a ReLU's output, mask being that output: conv_common.wgsl's MASK).
override MASK: bool = false;
// weight_tiles: the kernel is that of the ∂input of a convolution whose w
// (3, 3, Ci, Co) is bound: its taps rotated by 180° and its in and out
// channels swapped, so this pass's c (in) is that w's Co and c_out its Ci.
override FLIP: bool = false;
// Invocations per workgroup along channel quads: the wrapper sizes it to them.
override WG: u32 = 64u;

// Four channels (of x, y, V or M).
alias Quad = vec4<f32>;
// A column (or row) of a transformed tile, and of an output tile.
alias Col = array<Quad, ALPHA>;
alias Out = array<Quad, TILE>;

struct Params {
  n: u32,
  h: u32,
  w: u32,
  // input channels (input_tiles, weight_tiles) or output channels
  // (output_tiles); in quads, except in weight_tiles
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
@group(0) @binding(1) var<storage, read> src: array<Quad>;
@group(0) @binding(2) var<storage, read_write> dst: array<Quad>;
// weight_tiles reads w one value at a time (FLIP's four output channels are
// not adjacent in it).
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<Quad>;
@group(0) @binding(4) var<storage, read> mask: array<Quad>;

// Bᵀ d for column x of the patch whose top row is y0: rows y0 .. y0 + α − 1
// of channel quad c of image n, zero outside the image.
fn bt_column(n: u32, y0: i32, x: i32, c: u32) -> Col {
  var d: Col;
  let inx = x >= 0 && x < i32(q.w);
  for (var r = 0u; r < ALPHA; r++) {
    let y = y0 + i32(r);
    let inside = inx && y >= 0 && y < i32(q.h);
    d[r] = select(Quad(0.0), src[select(0u, ((n * q.h + u32(y)) * q.w + u32(x)) * q.c + c, inside)], inside);
  }
  return bt(d);
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
  let y0 = i32(TILE * ty) - 1;
  // e[j] = Bᵀ (column j of the patch); the next patch starts m to the right,
  // so its first two columns are this one's last two.
  var e: array<Col, ALPHA>;
  e[0] = bt_column(n, y0, -1, c);
  e[1] = bt_column(n, y0, 0, c);
  let stride = q.tiles * q.c;
  var pos = row * q.tw * q.c + c;
  for (var tx = 0u; tx < q.tw; tx++) {
    let x = i32(TILE * tx) - 1;
    for (var j = 2u; j < ALPHA; j++) {
      e[j] = bt_column(n, y0, x + i32(j), c);
    }
    // Row r of (Bᵀ d) B = Bᵀ applied to row r of (Bᵀ d).
    for (var r = 0u; r < ALPHA; r++) {
      var d: Col;
      for (var j = 0u; j < ALPHA; j++) {
        d[j] = e[j][r];
      }
      let v = bt(d);
      for (var s = 0u; s < ALPHA; s++) {
        dst[(ALPHA * r + s) * stride + pos] = v[s];
      }
    }
    e[0] = e[TILE];
    e[1] = e[TILE + 1u];
    pos += q.c;
  }
}

// KERNELS, the input channels per invocation of weight_tiles (the grid's y
// is ⌈c / KERNELS⌉), is set in front of this file from plan.ts.

// Tap (ky, kx) of the kernels of input channel i and output channels
// 4·oq .. 4·oq + 3.
fn tap(ky: u32, kx: u32, i: u32, oq: u32) -> Quad {
  var v: Quad;
  for (var k = 0u; k < 4u; k++) {
    let o = 4u * oq + k;
    if (FLIP) {
      v[k] = w[(((2u - ky) * 3u + 2u - kx) * q.c_out + o) * q.c + i];
    } else {
      v[k] = w[((ky * 3u + kx) * q.c + i) * q.c_out + o];
    }
  }
  return v;
}

// Invocation (oq, j) = (gid.x, gid.y): U[ξ][i][o] for the output channel
// quad oq and the input channels i = KERNELS·j .. KERNELS·j + KERNELS − 1
// below c (several kernels an invocation: fewer workgroups, each of which
// costs about a microsecond on lavapipe).
@compute @workgroup_size(WG)
fn weight_tiles(@builtin(global_invocation_id) gid: vec3<u32>) {
  let oq = gid.x;
  let quads = q.c_out / 4u;
  if (oq >= quads) {
    return;
  }
  let stride = q.c * quads;
  let end = min(q.c, KERNELS * gid.y + KERNELS);
  for (var i = KERNELS * gid.y; i < end; i++) {
    // G g: column kx of it is G times column kx of the kernel.
    var cols: array<Col, 3>;
    for (var kx = 0u; kx < 3u; kx++) {
      cols[kx] = gt(tap(0u, kx, i, oq), tap(1u, kx, i, oq), tap(2u, kx, i, oq));
    }
    // (G g) Gᵀ: row r of it is G times row r of G g.
    for (var r = 0u; r < ALPHA; r++) {
      let u = gt(cols[0][r], cols[1][r], cols[2][r]);
      for (var s = 0u; s < ALPHA; s++) {
        dst[(ALPHA * r + s) * stride + i * quads + oq] = u[s];
      }
    }
  }
}

// One output quad: plus b (the bias of its channels, or 0), activated, or added.
fn put(k: u32, v: Quad, b: Quad) {
  var r = v + b;
  if (ACCUMULATE) {
    r += dst[k];
  }
  r = activate4(r);
  if (MASK) {
    r = select(Quad(0.0), r, mask[k] > Quad(0.0));
  }
  dst[k] = r;
}

// Invocation (oq, row of tiles) = (gid.x, gid.y).
@compute @workgroup_size(WG)
fn output_tiles(@builtin(global_invocation_id) gid: vec3<u32>) {
  let o = gid.x;
  let row = gid.y;
  if (o >= q.c) {
    return;
  }
  let ty = row % q.th;
  let n = q.n0 + row / q.th;
  let y = TILE * ty;
  var b = Quad(0.0);
  if (BIAS) {
    b = bias[o];
  }
  let stride = q.tiles * q.c;
  var pos = row * q.tw * q.c + o;
  for (var tx = 0u; tx < q.tw; tx++) {
    // t[s] = Aᵀ (column s of M); output row i is Aᵀ (row i of t).
    var t: array<Out, ALPHA>;
    for (var s = 0u; s < ALPHA; s++) {
      var m: Col;
      for (var r = 0u; r < ALPHA; r++) {
        m[r] = src[(ALPHA * r + s) * stride + pos];
      }
      t[s] = at(m);
    }
    let x = TILE * tx;
    for (var i = 0u; i < TILE; i++) {
      if (y + i < q.h) {
        var ti: Col;
        for (var s = 0u; s < ALPHA; s++) {
          ti[s] = t[s][i];
        }
        let yi = at(ti);
        let base = ((n * q.h + y + i) * q.w + x) * q.c + o;
        for (var j = 0u; j < TILE; j++) {
          if (x + j < q.w) {
            put(base + j * q.c, yi[j], b);
          }
        }
      }
    }
    pos += q.c;
  }
}
