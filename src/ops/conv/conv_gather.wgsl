// Gathering A for the tiled GEMMs (conv_tiled.wgsl in f32, conv_mma.wgsl in
// f16): four rows of A at one k, straight from the NHWC activations, for
// every mode of the table in conv_tiled.wgsl. gemm.ts
// appends this file, with conv_common.wgsl, to both shaders.

// Staging A without a division per element: what a staged row needs is
// decoded once, before the K loop (row_info), and each step decodes its k
// once for the four rows of a quad (a_quad).
//   modes 0, 1: rows are pixels; info = (y << 16) | x
//   mode 3:     rows are pixels of x, read as they are; info unused
//   mode 4:     rows are pixels (n, i, j) of dx; info = index of pixel (n, 2i, 2j) of dy
//   mode 2:     rows are (ky, kx, ci); info = (ky << 24) | (kx << 16) | ci, or
//               ONES_ROW for the row of ones that BIAS_ROW adds (kernels of
//               256 taps a side never come here, so no (ky, kx, ci) packs to it)
//   mode 5:     rows are (a, b, co); info = offset of (a, b, co) from pixel (n, 2i, 2j) of dy
const ONES_ROW: u32 = 0xffffffffu;

// Slot s of a staging step, a quad of four rows at one k: (its k within the
// step, its quad of rows). The pixel-row modes put k fastest, so that
// neighbouring invocations read neighbouring channels of one pixel; modes 2
// and 5, whose rows are channels, put the rows fastest. TK (k per step) and
// TM4 (quads of rows per tile) are the including shader's.
fn a_slot(s: u32) -> vec2<u32> {
  if (MODE == 2u || MODE == 5u) {
    return vec2<u32>(s / TM4, s % TM4);
  }
  return vec2<u32>(s % TK, s / TK);
}

fn row_info(row: u32) -> u32 {
  switch MODE {
    case 0u, 1u: {
      return (((row / p.w) % p.h) << 16u) | (row % p.w);
    }
    case 4u: {
      let j = row % p.w;
      let t = row / p.w;
      return ((t / p.h) * 2u * p.h + 2u * (t % p.h)) * 2u * p.w + 2u * j;
    }
    case 2u: {
      if (BIAS_ROW && row == p.m - 1u) {
        return ONES_ROW;
      }
      let ci = row % p.a_c;
      let tap = row / p.a_c;
      return ((tap / p.kw) << 24u) | ((tap % p.kw) << 16u) | ci;
    }
    case 5u: {
      let co = row % p.a_c;
      let ab = row / p.a_c;
      return ((ab / 2u) * 2u * p.w + ab % 2u) * p.a_c + co;
    }
    default: {
      return 0u;
    }
  }
}

// Where an element of A lies in a_src, in two parts: what depends on k alone
// (decoded once per k, for every row of a slot), and then the row's part.
//   modes 0, 1: tap k = (ky, kx, ci) as (ci, dy, dx): pixel `row` shifted by (dy, dx)
fn conv_tap(k: u32) -> vec3<i32> {
  let tap = k / p.a_c;
  return vec3<i32>(i32(k % p.a_c), i32(tap / p.kw) - i32(p.pad), i32(tap % p.kw) - i32(p.pad));
}

// Modes 0, 1: index of A[row, k] (row's info, k's tap), or −1 outside the image.
fn conv_at(row: u32, info: u32, tap: vec3<i32>) -> i32 {
  let iy = i32(info >> 16u) + tap.y;
  let ix = i32(info & 0xffffu) + tap.z;
  if (iy < 0 || ix < 0 || iy >= i32(p.h) || ix >= i32(p.w)) {
    return -1;
  }
  return (i32(row) + tap.y * i32(p.w) + tap.z) * i32(p.a_c) + tap.x;
}

// Mode 4: k = (a, b, co), as its offset from pixel (n, 2i, 2j) of dy.
fn up_offset(k: u32) -> u32 {
  let ab = k / p.a_c;
  return ((ab / 2u) * 2u * p.w + ab % 2u) * p.a_c + k % p.a_c;
}

// Mode 2: pixel k = (n, y, x) of x as (y, x).
fn pixel_yx(k: u32) -> vec2<u32> {
  return vec2<u32>((k / p.w) % p.h, k % p.w);
}

// Mode 2: index of A[row, k] for the row (ky, kx, ci) in info at pixel k, or −1 outside the image.
fn weight_at(k: u32, info: u32, yx: vec2<u32>) -> i32 {
  let dy = i32(info >> 24u) - i32(p.pad);
  let dx = i32((info >> 16u) & 0xffu) - i32(p.pad);
  let iy = i32(yx.x) + dy;
  let ix = i32(yx.y) + dx;
  if (iy < 0 || ix < 0 || iy >= i32(p.h) || ix >= i32(p.w)) {
    return -1;
  }
  return (i32(k) + dy * i32(p.w) + dx) * i32(p.a_c) + i32(info & 0xffffu);
}

// Mode 5: pixel k = (n, i, j) of x as the index of pixel (n, 2i, 2j) of dy, times the channels.
fn up_base(k: u32) -> u32 {
  let t = k / p.w;
  return (((t / p.h) * 2u * p.h + 2u * (t % p.h)) * 2u * p.w + 2u * (k % p.w)) * p.a_c;
}

// A[row0 + 4·rq + r, k] for r = 0..3 (zero for rows ≥ m); info holds the four rows' row_info.
fn a_quad(first: u32, k: u32, info: vec4<u32>) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  switch MODE {
    case 0u, 1u: {
      let tap = conv_tap(k);
      for (var r = 0u; r < 4u; r++) {
        let at = conv_at(first + r, info[r], tap);
        if (first + r < p.m && at >= 0) {
          v[r] = f32(a_src[at]);
        }
      }
    }
    case 3u: {
      for (var r = 0u; r < 4u; r++) {
        if (first + r < p.m) {
          v[r] = f32(a_src[(first + r) * p.k + k]);
        }
      }
    }
    case 4u: {
      let off = up_offset(k);
      for (var r = 0u; r < 4u; r++) {
        if (first + r < p.m) {
          v[r] = f32(a_src[info[r] * p.a_c + off]);
        }
      }
    }
    case 2u: {
      // Row r = (ky, kx, ci) reads x at (y + ky − pad, x + kx − pad).
      let yx = pixel_yx(k);
      for (var r = 0u; r < 4u; r++) {
        if (BIAS_ROW && info[r] == ONES_ROW) {
          v[r] = 1.0;
        } else if (first + r < p.m) {
          let at = weight_at(k, info[r], yx);
          if (at >= 0) {
            v[r] = f32(a_src[at]);
          }
        }
      }
    }
    default: {
      // Mode 5: row r = (a, b, co) of dy.
      let base = up_base(k);
      for (var r = 0u; r < 4u; r++) {
        if (first + r < p.m) {
          v[r] = f32(a_src[base + info[r]]);
        }
      }
    }
  }
  return v;
}
