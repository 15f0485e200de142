// Convolution GEMMs for software adapters whose subgroups are exactly 8
// invocations (lavapipe on AVX2): modes 0–5 of conv_tiled.wgsl's table, and
// mode 6, a batch of plain GEMMs (Winograd's products, winograd.wgsl), one
// per workgroup z. B is read by rows; for modes 1 and 3 either rearranged
// first (weights_transpose.wgsl) or, with WT, from the weights as stored.
//
// On lavapipe an invocation is one lane of an 8-wide vector, and a storage
// load whose address is not a compile-time constant is a loop over the lanes
// costing tens of FMAs, so this shader is shaped by its loads. The 8 lanes of
// a subgroup share ROWS = 8 · MINE rows of C and each lane owns 4 columns
// (COLS = 32 per subgroup). One step of the reduction (one k):
// - each lane loads MINE of the rows' values of A;
// - subgroupBroadcast from each lane hands every lane all ROWS values (a
//   broadcast from a constant lane is an extract and a splat);
// - each lane loads its four values of B's row k (one vec4 where B4) and
//   does ROWS × 4 multiply-adds.
// The weight gradients (modes 2, 5) walk pixels as k; with A4 a lane's four
// rows are four channels of one tap, one vec4 load per pixel.
// A4, B4 and O4 read A, B and write C as vec4s where the shapes allow.
// Columns past N read zero and are not stored; rows past M are clamped and
// not stored; taps outside the image read index 0 and are zeroed. No
// workgroup memory, no barriers, no divergent control flow around the
// broadcasts (docs/kernels.md has the measurements behind these choices).
// Grid: x = blocks of (GROUP / 8) · ROWS rows, y = blocks of 32 columns,
// z = splits of the reduction (modes 2, 5) or the product of the batch (mode 6).
//
// Set in front of this file by conv.ts: `enable
// subgroups;`, MINE (rows of A per lane: 4, or 2, 5 or 6 for GEMMs of fewer
// than 256 rows where that pads M less; plan.ts, rowsPerLaneFor) and COLS.
// Parameters (p), bindings 0–5 (a_src, b_src, bias, out, mask_src), MODE, ACCUMULATE,
// out_index(), write_out(), tap_offset() and weight_tap() come from
// conv_common.wgsl, ACT, activate() and activate4() from activation.wgsl,
// appended after it.

// Modes 2, 5 with a_c % 4 == 0: a lane's four rows are four consecutive
// channels of one tap, read as one vec4 of a4 (the same buffer as a_src; a
// 16-byte dummy when off).
override A4: bool = false;
// n % 4 == 0: a lane's quad of B is an aligned vec4 of b4 (the same buffer
// as b_src; a 16-byte dummy when off).
override B4: bool = false;
// C stored a quad at a time through out4: n % 4 == 0, and for mode 3
// b_c % 4 == 0 (a quad never straddles two of the 2 × 2 positions).
override O4: bool = false;
// Modes 1, 3: B read from the weights as stored (b4 binds w as vec4s)
// instead of rearranged by rows first: the ∂input's channels (a_c) and the
// transposed forward's K multiples of 4, and n % 4 == 0.
override WT: bool = false;
// Invocations per workgroup, a multiple of 8, smaller for small M.
override GROUP: u32 = 64u;

const ROWS: u32 = 8u * MINE;
// A lane's MINE values of A, their indices, taps and flags.
alias RowsF = array<f32, MINE>;
alias RowsU = array<u32, MINE>;
alias RowsI = array<i32, MINE>;
alias RowsB = array<bool, MINE>;

// B, C and A as vec4s (B4, O4, A4); whichever of out / out4 is not in use,
// and a4 when A4 is off, are bound to 16-byte dummies.
@group(0) @binding(6) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> out4: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> a4: array<vec4<f32>>;

// acc[r]: row r of the subgroup's 32, this lane's columns my_col .. my_col + 3.
var<private> acc: array<vec4<f32>, ROWS>;
var<private> my_col: u32;

// This lane's quad of row k of B, zero past N.
fn b_quad(k: u32) -> vec4<f32> {
  if (B4) {
    let ok = my_col < p.n;
    return select(vec4<f32>(0.0), b4[select(0u, (k * p.n + my_col) / 4u, ok)], ok);
  }
  var v = vec4<f32>(0.0);
  for (var t = 0u; t < 4u; t++) {
    let ok = my_col + t < p.n;
    v[t] = select(0.0, b_src[select(0u, k * p.n + my_col + t, ok)], ok);
  }
  return v;
}

// WT (modes 1, 3): B's column my_col + t is row first + t of the weights
// as stored, `stride` values long, and B's rows k .. k+3 are that row's
// values k .. k+3; one vec4 per column, transposed so that element j is B's
// row k + j (this lane's quad of it).
fn b_rows_as_stored(first: u32, stride: u32, k: u32) -> mat4x4<f32> {
  let ok = my_col < p.n;
  var m: mat4x4<f32>;
  for (var t = 0u; t < 4u; t++) {
    m[t] = select(vec4<f32>(0.0), b4[select(0u, ((first + t) * stride + k) / 4u, ok)], ok);
  }
  return transpose(m);
}

// One k: `mine` holds A[k] of this lane's MINE rows.
fn step(mine: RowsF, k: u32) {
  step_with(mine, b_quad(k));
}

// One k with this lane's quad of B's row k given.
// Row l·MINE + t of the subgroup is value t of lane l: a broadcast from a
// constant lane, an extract and a splat on lavapipe.
fn step_with(mine: RowsF, b: vec4<f32>) {
  for (var t = 0u; t < MINE; t++) {
    let v = mine[t];
    acc[t] = fma(vec4<f32>(subgroupBroadcast(v, 0u)), b, acc[t]);
    acc[MINE + t] = fma(vec4<f32>(subgroupBroadcast(v, 1u)), b, acc[MINE + t]);
    acc[2u * MINE + t] = fma(vec4<f32>(subgroupBroadcast(v, 2u)), b, acc[2u * MINE + t]);
    acc[3u * MINE + t] = fma(vec4<f32>(subgroupBroadcast(v, 3u)), b, acc[3u * MINE + t]);
    acc[4u * MINE + t] = fma(vec4<f32>(subgroupBroadcast(v, 4u)), b, acc[4u * MINE + t]);
    acc[5u * MINE + t] = fma(vec4<f32>(subgroupBroadcast(v, 5u)), b, acc[5u * MINE + t]);
    acc[6u * MINE + t] = fma(vec4<f32>(subgroupBroadcast(v, 6u)), b, acc[6u * MINE + t]);
    acc[7u * MINE + t] = fma(vec4<f32>(subgroupBroadcast(v, 7u)), b, acc[7u * MINE + t]);
  }
}

// This lane's MINE values of A at a_src[at[t] + c], zero where not ok[t].
fn a_values(at: RowsU, ok: RowsB, c: u32) -> RowsF {
  var v: RowsF;
  for (var t = 0u; t < MINE; t++) {
    v[t] = select(0.0, a_src[at[t] + c], ok[t]);
  }
  return v;
}

// `count` steps of the reduction over consecutive k from k0, A's values at
// at[t] + c for c < count; B's rows k0 + c from b_src, or with WT from the
// weights as stored (b_rows_as_stored: rows first + t, `stride` long, four
// c at a time; count a multiple of 4).
fn reduce_run(at: RowsU, ok: RowsB, count: u32, k0: u32, first: u32, stride: u32) {
  if (WT) {
    for (var c = 0u; c < count; c += 4u) {
      let b = b_rows_as_stored(first, stride, c);
      for (var j = 0u; j < 4u; j++) {
        step_with(a_values(at, ok, c + j), b[j]);
      }
    }
  } else {
    for (var c = 0u; c < count; c++) {
      step(a_values(at, ok, c), k0 + c);
    }
  }
}

// Bias and activation (mode 0), bias (mode 3), accumulation and the mask when asked (1, 4);
// modes 2, 5 write the split's slice of partial sums, mode 6 product
// `split`'s C. Mode 3 finds each column's place in the 2 × 2 block (ab, co)
// once and steps the rows' pixel with up_next: out_index would divide six
// times per row and lane.
fn store_all(row0: u32, split: u32) {
  if (my_col >= p.n) {
    return;
  }
  var bq = vec4<f32>(0.0);
  var ab: vec4<u32>;
  var co: vec4<u32>;
  var px: vec3<u32>;
  if (MODE == 3u) {
    px = up_pixel(min(row0, p.m - 1u));
    for (var t = 0u; t < 4u; t++) {
      let col = min(my_col + t, p.n - 1u);
      ab[t] = col / p.b_c;
      co[t] = col % p.b_c;
      bq[t] = select(0.0, bias[co[t]], my_col + t < p.n);
    }
  }
  if (MODE == 0u) {
    for (var t = 0u; t < 4u; t++) {
      let ok = my_col + t < p.n;
      bq[t] = select(0.0, bias[select(0u, my_col + t, ok)], ok);
    }
  }
  for (var r = 0u; r < ROWS; r++) {
    let row = row0 + r;
    if (row >= p.m) {
      break;
    }
    var v = acc[r] + bq;
    if (MODE == 0u) {
      v = activate4(v);
    }
    if (O4) {
      var at: u32;
      if (MODE == 3u) {
        at = up_index(px, ab[0], co[0]) / 4u;
      } else {
        at = out_index(row, my_col, split) / 4u;
      }
      if (ACCUMULATE && (MODE == 1u || MODE == 4u)) {
        v += out4[at];
      }
      if (MASK) {
        let m = vec4<f32>(mask_src[4u * at], mask_src[4u * at + 1u], mask_src[4u * at + 2u], mask_src[4u * at + 3u]);
        v = select(vec4<f32>(0.0), v, m > vec4<f32>(0.0));
      }
      out4[at] = v;
    } else {
      for (var t = 0u; t < 4u; t++) {
        if (my_col + t < p.n) {
          if (MODE == 3u) {
            write_out(up_index(px, ab[t], co[t]), v[t]);
          } else {
            write_out(out_index(row, my_col + t, split), v[t]);
          }
        }
      }
    }
    if (MODE == 3u) {
      px = up_next(px);
    }
  }
}

// The MINE rows this lane loads: row0 + MINE·lane + t, clamped to M.
struct Mine {
  n: RowsU,
  y: RowsI,
  x: RowsI,
  ok: RowsB,
}

fn my_rows(first: u32) -> Mine {
  var r: Mine;
  for (var t = 0u; t < MINE; t++) {
    let row = first + t;
    r.ok[t] = row < p.m;
    let rr = min(row, p.m - 1u);
    r.x[t] = i32(rr % p.w);
    r.y[t] = i32((rr / p.w) % p.h);
    r.n[t] = rr / (p.w * p.h);
  }
  return r;
}

// Modes 2, 5: this lane's rows first .. first+3 (taps × channels of A) over
// pixels [begin, end) of the split; B's row k is the pixel's row of dy (mode
// 2) or x (mode 5).
fn weight_rows(first: u32, begin: u32, end: u32) {
  var off: array<vec2<i32>, MINE>;
  var ch: RowsU;
  var ok: RowsB;
  for (var t = 0u; t < MINE; t++) {
    ok[t] = first + t < p.m;
    let row = min(first + t, p.m - 1u);
    ch[t] = row % p.a_c;
    off[t] = tap_offset(row / p.a_c);
  }
  var x = begin % p.w;
  var y = (begin / p.w) % p.h;
  var n = begin / (p.w * p.h);
  for (var px = begin; px < end; px++) {
    var mine: RowsF;
    if (A4) {
      // M is a multiple of 4, so the four rows are all in range or all out.
      let tap = weight_tap(off[0], ch[0], ok[0], n, y, x);
      let q = select(vec4<f32>(0.0), a4[tap.at / 4u], tap.inside);
      for (var t = 0u; t < MINE; t++) {
        mine[t] = q[t];
      }
    } else {
      for (var t = 0u; t < MINE; t++) {
        let tap = weight_tap(off[t], ch[t], ok[t], n, y, x);
        mine[t] = select(0.0, a_src[tap.at], tap.inside);
      }
    }
    step(mine, px);
    x++;
    if (x == p.w) {
      x = 0u;
      y++;
      if (y == p.h) {
        y = 0u;
        n++;
      }
    }
  }
}

@compute @workgroup_size(GROUP, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lane: u32,
        @builtin(subgroup_invocation_id) sub_lane: u32) {
  // Subgroups of 8 are 8 consecutive invocations (the wrapper uses this
  // shader only where the adapter's subgroups are exactly 8 wide).
  let row0 = (wg.x * (GROUP / 8u) + lane / 8u) * ROWS;
  my_col = wg.y * COLS + 4u * sub_lane;
  for (var r = 0u; r < ROWS; r++) {
    acc[r] = vec4<f32>(0.0);
  }
  if (MODE == 2u || MODE == 5u) {
    let begin = wg.z * p.k_per_split;
    weight_rows(row0 + MINE * sub_lane, begin, min(p.k, begin + p.k_per_split));
    store_all(row0, wg.z);
    return;
  }
  let me = my_rows(row0 + MINE * sub_lane);
  let h = p.h;
  let w = p.w;
  let a_c = p.a_c;
  if (MODE == 0u || MODE == 1u) {
    for (var ky = 0u; ky < p.kh; ky++) {
      for (var kx = 0u; kx < p.kw; kx++) {
        var at: RowsU;
        var inside: RowsB;
        for (var t = 0u; t < MINE; t++) {
          let iy = me.y[t] + i32(ky) - i32(p.pad);
          let ix = me.x[t] + i32(kx) - i32(p.pad);
          inside[t] = me.ok[t] && iy >= 0 && ix >= 0 && iy < i32(h) && ix < i32(w);
          at[t] = select(0u, ((me.n[t] * h + u32(iy)) * w + u32(ix)) * a_c, inside[t]);
        }
        // Mode 1 with WT: B[(tap, co), ci] = w[flipped tap, ci, co], so a
        // column's values for this tap are a row of w along co.
        let flipped = p.kh * p.kw - 1u - (ky * p.kw + kx);
        reduce_run(at, inside, a_c, (ky * p.kw + kx) * a_c, flipped * p.n + my_col, a_c);
      }
    }
  } else if (MODE == 3u || MODE == 6u) {
    // A row-major [M × K]; mode 6: product z of a batch, A, B and C each
    // stacked by z ([z][M][K], [z][K][N], [z][M][N]).
    let k = p.k;
    let z = select(0u, wg.z, MODE == 6u);
    var at: RowsU;
    for (var t = 0u; t < MINE; t++) {
      at[t] = (z * p.m + min(row0 + MINE * sub_lane + t, p.m - 1u)) * k;
    }
    // Mode 3 with WT: B[ci, (a, b, co)] = w[a, b, co, ci], so column col is
    // row col of w along ci.
    reduce_run(at, me.ok, k, z * k, my_col, k);
  } else {
    // MODE 4: k = (ab, co); dy is (2h, 2w) with a_c = co channels.
    for (var ab = 0u; ab < 4u; ab++) {
      var at: RowsU;
      for (var t = 0u; t < MINE; t++) {
        at[t] = ((me.n[t] * 2u * h + 2u * u32(me.y[t]) + ab / 2u) * 2u * w + 2u * u32(me.x[t]) + ab % 2u) * a_c;
      }
      reduce_run(at, me.ok, a_c, ab * a_c, 0u, 0u);
    }
  }
  store_all(row0, select(0u, wg.z, MODE == 6u));
}
