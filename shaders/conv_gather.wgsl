// Gathering A for the tiled GEMMs (conv_gemm.wgsl in f32, conv_mma.wgsl in
// f16): four rows of A at one k, straight from the NHWC activations, for
// every mode of the table in conv_gemm.wgsl. src/kernels/conv.ts appends
// this file, with conv_common.wgsl, to both shaders.

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

// A[row0 + 4·rq + r, k] for r = 0..3 (zero for rows ≥ m); info holds the four rows' row_info.
fn a_quad(first: u32, k: u32, info: vec4<u32>) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  switch MODE {
    case 0u, 1u: {
      // im2col: k = (ky, kx, ci); pixel `row` shifted by (ky − pad, kx − pad).
      let ci = k % p.a_c;
      let tap = k / p.a_c;
      let dy = i32(tap / p.kw) - i32(p.pad);
      let dx = i32(tap % p.kw) - i32(p.pad);
      for (var r = 0u; r < 4u; r++) {
        let row = first + r;
        let iy = i32(info[r] >> 16u) + dy;
        let ix = i32(info[r] & 0xffffu) + dx;
        if (row < p.m && iy >= 0 && ix >= 0 && iy < i32(p.h) && ix < i32(p.w)) {
          v[r] = a_src[u32(i32(row) + dy * i32(p.w) + dx) * p.a_c + ci];
        }
      }
    }
    case 3u: {
      for (var r = 0u; r < 4u; r++) {
        if (first + r < p.m) {
          v[r] = a_src[(first + r) * p.k + k];
        }
      }
    }
    case 4u: {
      // k = (a, b, co): dy[n, 2i+a, 2j+b, co].
      let co = k % p.a_c;
      let ab = k / p.a_c;
      let off = ((ab / 2u) * 2u * p.w + ab % 2u) * p.a_c + co;
      for (var r = 0u; r < 4u; r++) {
        if (first + r < p.m) {
          v[r] = a_src[info[r] * p.a_c + off];
        }
      }
    }
    case 2u: {
      // k is a pixel (n, y, x) of x; row r = (ky, kx, ci) reads x at (y + ky − pad, x + kx − pad).
      let x = k % p.w;
      let y = (k / p.w) % p.h;
      for (var r = 0u; r < 4u; r++) {
        let dy = i32(info[r] >> 24u) - i32(p.pad);
        let dx = i32((info[r] >> 16u) & 0xffu) - i32(p.pad);
        let iy = i32(y) + dy;
        let ix = i32(x) + dx;
        if (BIAS_ROW && info[r] == ONES_ROW) {
          v[r] = 1.0;
        } else if (first + r < p.m && iy >= 0 && ix >= 0 && iy < i32(p.h) && ix < i32(p.w)) {
          v[r] = a_src[u32(i32(k) + dy * i32(p.w) + dx) * p.a_c + (info[r] & 0xffffu)];
        }
      }
    }
    default: {
      // Mode 5: k is a pixel (n, i, j) of x; row r = (a, b, co) of dy.
      let j = k % p.w;
      let t = k / p.w;
      let base = (((t / p.h) * 2u * p.h + 2u * (t % p.h)) * 2u * p.w + 2u * j) * p.a_c;
      for (var r = 0u; r < 4u; r++) {
        if (first + r < p.m) {
          v[r] = a_src[base + info[r]];
        }
      }
    }
  }
  return v;
}
