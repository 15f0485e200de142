// 2 × 2 max-pooling, stride 2, 'valid' padding, and its gradient.
//
// Layouts (float32, NHWC, dense):
//   x  [N, H, W, C]      the pooled input
//   y  [N, OH, OW, C]    OH = floor(H / 2), OW = floor(W / 2)
//   dy [N, OH, OW, C]    gradient of the loss with respect to y
//   dx [N, H, W, C]      gradient with respect to x
// Output pixel (oh, ow) pools the window of rows 2oh, 2oh + 1 and columns
// 2ow, 2ow + 1. With odd H (W) the last row (column) belongs to no window.
//
// Ties: the winner of a window is the FIRST maximum in row-major window order
// (top-left, top-right, bottom-left, bottom-right), found by comparing with a
// strict `>`; forward and backward share `window_winner` so they always agree.
//
// Entry points (one pipeline each; they reuse binding numbers with other
// variables, which WGSL allows across entry points):
//   forward   one invocation per output element (n, oh, ow, c): reads its four
//             inputs, writes y. Neighbouring invocations differ in c, so every
//             read and write is contiguous across a workgroup for any C.
//   backward  gather-style, one invocation per WINDOW CELL (n, wi, wj, c) over
//             ceil(H / 2) × ceil(W / 2) cells, so every dx element is written
//             by exactly one invocation: a full window re-reads its four
//             inputs, finds the winner again (no stored argmax, no atomics) and
//             writes dy there and 0 to the other three; a partial cell at an
//             odd bottom row or right column (outside every window) writes 0.
//             ACCUMULATE adds dy into dx at the winner and leaves every other
//             element as it was (gradients that fan out are summed).
//
// The grid may be folded into two dimensions: flat index = gid.x + gid.y · row_threads.

override ACCUMULATE: bool = false;

struct Params {
  count: u32,        // invocations that do work: N·OH·OW·C (forward), N·ceil(H/2)·ceil(W/2)·C (backward)
  row_threads: u32,
  h: u32,
  w: u32,
  c: u32,
  oh: u32,           // floor(H / 2)
  ow: u32,           // floor(W / 2)
  cells_h: u32,      // rows of the iteration space: OH (forward) or ceil(H / 2) (backward)
  cells_w: u32,      // columns: OW or ceil(W / 2)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
// forward: y; backward: dy (read only).
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

struct Cell {
  n: u32,
  i: u32,
  j: u32,
  c: u32,
}

fn cell_of(flat: u32) -> Cell {
  var t = flat;
  let c = t % p.c;
  t = t / p.c;
  let j = t % p.cells_w;
  t = t / p.cells_w;
  let i = t % p.cells_h;
  return Cell(t / p.cells_h, i, j, c);
}

fn x_index(n: u32, row: u32, col: u32, c: u32) -> u32 {
  return ((n * p.h + row) * p.w + col) * p.c + c;
}

// Index (0..3, row-major in the window) of the first maximum, and the maximum.
struct Winner {
  k: u32,
  value: f32,
}

fn window_winner(v: vec4<f32>) -> Winner {
  var best = Winner(0u, v.x);
  if (v.y > best.value) { best = Winner(1u, v.y); }
  if (v.z > best.value) { best = Winner(2u, v.z); }
  if (v.w > best.value) { best = Winner(3u, v.w); }
  return best;
}

fn load_window(cell: Cell) -> vec4<f32> {
  let top = x_index(cell.n, 2u * cell.i, 2u * cell.j, cell.c);
  let bottom = top + p.w * p.c;
  return vec4<f32>(x[top], x[top + p.c], x[bottom], x[bottom + p.c]);
}

@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let flat = gid.x + gid.y * p.row_threads;
  if (flat >= p.count) {
    return;
  }
  // Iteration space [N, OH, OW, C] is y's own layout, so y's index is `flat`.
  y[flat] = window_winner(load_window(cell_of(flat))).value;
}

@compute @workgroup_size(256)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let flat = gid.x + gid.y * p.row_threads;
  if (flat >= p.count) {
    return;
  }
  let cell = cell_of(flat);
  let top = x_index(cell.n, 2u * cell.i, 2u * cell.j, cell.c);
  let bottom = top + p.w * p.c;
  let full_window = cell.i < p.oh && cell.j < p.ow;
  if (ACCUMULATE) {
    // Only the winner changes; the other cells (and unpooled ones) keep their value.
    if (full_window) {
      let k = window_winner(load_window(cell)).k;
      let at = select(top, bottom, k >= 2u) + select(0u, p.c, (k & 1u) == 1u);
      dx[at] = dx[at] + dy[((cell.n * p.oh + cell.i) * p.ow + cell.j) * p.c + cell.c];
    }
    return;
  }
  if (full_window) {
    let k = window_winner(load_window(cell)).k;
    let g = dy[((cell.n * p.oh + cell.i) * p.ow + cell.j) * p.c + cell.c];
    dx[top] = select(0.0, g, k == 0u);
    dx[top + p.c] = select(0.0, g, k == 1u);
    dx[bottom] = select(0.0, g, k == 2u);
    dx[bottom + p.c] = select(0.0, g, k == 3u);
    return;
  }
  // A cell on an odd last row and/or column: up to four inputs, none pooled.
  dx[top] = 0.0;
  let has_right = 2u * cell.j + 1u < p.w;
  if (has_right) {
    dx[top + p.c] = 0.0;
  }
  if (2u * cell.i + 1u < p.h) {
    dx[bottom] = 0.0;
    if (has_right) {
      dx[bottom + p.c] = 0.0;
    }
  }
}
