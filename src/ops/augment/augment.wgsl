// Data augmentation of a training batch: each image and its mask resampled
// through the image's own draw (a lateral mirror, rotation, zoom and shift as
// one affine map, plus an elastic displacement), and the image's brightness
// and contrast changed. Nothing flows back through it: it prepares data.
//
// Layouts: x_in, y_in, x_out, y_out are n images of size × size (NHWC with one
// channel). draws holds `stride` floats per image:
//   0–5  the affine map from an output pixel (x, y) to the source point
//        (m00·x + m01·y + m02, m10·x + m11·y + m12), in pixel indices;
//   6, 7 gain and bias: the image becomes gain · value + bias (masks do not);
//   8 …  a grid × grid lattice of (dx, dy) displacements over the image,
//        corner to corner, interpolated bilinearly and added to the source point.
// The source point is clamped into the image (its edge pixels extend outward),
// then read bilinearly, as tf.image.transform does with fill mode "nearest".
// One invocation per output pixel; the grid's z is the image.

struct Params {
  n: u32,
  size: u32,
  grid: u32,
  stride: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x_in: array<f32>;
@group(0) @binding(2) var<storage, read> y_in: array<f32>;
@group(0) @binding(3) var<storage, read> draws: array<f32>;
@group(0) @binding(4) var<storage, read_write> x_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> y_out: array<f32>;

// Pixel (r, c) of image `base` (an offset) of the images (0) or the masks (1).
fn pixel(masks: bool, base: u32, r: u32, c: u32) -> f32 {
  let i = base + r * p.size + c;
  if (masks) {
    return y_in[i];
  }
  return x_in[i];
}

// Bilinear read at (sx, sy), already inside [0, size − 1]; taps past the last
// row or column have weight 0 and read the edge instead.
fn bilinear(masks: bool, base: u32, sx: f32, sy: f32) -> f32 {
  let last = p.size - 1u;
  let x0 = u32(floor(sx));
  let y0 = u32(floor(sy));
  let x1 = min(x0 + 1u, last);
  let y1 = min(y0 + 1u, last);
  let fx = sx - f32(x0);
  let fy = sy - f32(y0);
  let top = (1.0 - fx) * pixel(masks, base, y0, x0) + fx * pixel(masks, base, y0, x1);
  let bottom = (1.0 - fx) * pixel(masks, base, y1, x0) + fx * pixel(masks, base, y1, x1);
  return (1.0 - fy) * top + fy * bottom;
}

// The elastic displacement at output pixel (x, y): the lattice read bilinearly.
fn displacement(d: u32, x: f32, y: f32) -> vec2<f32> {
  let g = p.grid;
  let scale = f32(g - 1u) / f32(p.size - 1u);
  let gx = x * scale;
  let gy = y * scale;
  let i0 = min(u32(floor(gx)), g - 2u);
  let j0 = min(u32(floor(gy)), g - 2u);
  let fx = gx - f32(i0);
  let fy = gy - f32(j0);
  let a = d + 8u + 2u * (j0 * g + i0);
  let b = a + 2u;
  let c = a + 2u * g;
  let e = c + 2u;
  let top = (1.0 - fx) * vec2<f32>(draws[a], draws[a + 1u]) + fx * vec2<f32>(draws[b], draws[b + 1u]);
  let bottom = (1.0 - fx) * vec2<f32>(draws[c], draws[c + 1u]) + fx * vec2<f32>(draws[e], draws[e + 1u]);
  return (1.0 - fy) * top + fy * bottom;
}

@compute @workgroup_size(8, 8)
fn warp(@builtin(global_invocation_id) gid: vec3<u32>) {
  let s = p.size;
  if (gid.x >= s || gid.y >= s || gid.z >= p.n) {
    return;
  }
  let d = gid.z * p.stride;
  let x = f32(gid.x);
  let y = f32(gid.y);
  var sx = draws[d] * x + draws[d + 1u] * y + draws[d + 2u];
  var sy = draws[d + 3u] * x + draws[d + 4u] * y + draws[d + 5u];
  if (p.grid >= 2u && s >= 2u) {
    let shift = displacement(d, x, y);
    sx += shift.x;
    sy += shift.y;
  }
  let last = f32(s - 1u);
  sx = clamp(sx, 0.0, last);
  sy = clamp(sy, 0.0, last);
  let base = gid.z * s * s;
  let at = base + gid.y * s + gid.x;
  x_out[at] = draws[d + 6u] * bilinear(false, base, sx, sy) + draws[d + 7u];
  y_out[at] = bilinear(true, base, sx, sy);
}
