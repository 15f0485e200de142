// 2 × 2 max-pooling, stride 2, 'valid' padding, and its gradient.
//
// Layouts (NHWC, dense; ELEM_TYPE, an alias written in front by kernel.ts:
// f32, or f16 for mixed precision's activations, pooled exactly either way):
//   x  [N, H, W, C]      the pooled input
//   y  [N, OH, OW, C]    OH = floor(H / 2), OW = floor(W / 2)
//   dy [N, OH, OW, C]    gradient of the loss with respect to y
//   dx [N, H, W, C]      gradient with respect to x
// Output pixel (oh, ow) pools the window of rows 2oh, 2oh + 1 and columns
// 2ow, 2ow + 1. With odd H (W) the last row (column) belongs to no window.
//
// Ties: the winner of a window is the FIRST maximum in row-major window order
// (top-left, top-right, bottom-left, bottom-right), found by comparing with a
// strict `>`; forward and backward share `winner` so they always agree.
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
//   forward4, backward4  the same for four channels at a time, as vec4s, where
//             C is a multiple of 4: the wrapper passes C and the counts in
//             quads of channels, so the index arithmetic is the same code.
//             With ACCUMULATE each of the four window positions gets dy where
//             it won (a channel's winner may differ from its neighbours') and
//             + 0 elsewhere.
//             With MASK both write every element of their cell (see MASK).
//
// The grid may be folded into two dimensions: flat index = gid.x + gid.y · row_threads.

override ACCUMULATE: bool = false;
// backward, backward4: x is a ReLU's output, and every dx element of a cell
// (winner or not, pooled or not) is multiplied by [x > 0] after any
// accumulation — the ReLU's backward fused in. The cell's x is read anyway.
override MASK: bool = false;

struct Params {
  count: u32,        // invocations that do work: N·OH·OW·C (forward), N·ceil(H/2)·ceil(W/2)·C (backward); C in quads for the …4 entry points
  row_threads: u32,
  h: u32,
  w: u32,
  c: u32,            // channels (quads of channels for the …4 entry points)
  oh: u32,           // floor(H / 2)
  ow: u32,           // floor(W / 2)
  cells_h: u32,      // rows of the iteration space: OH (forward) or ceil(H / 2) (backward)
  cells_w: u32,      // columns: OW or ceil(W / 2)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<ELEM_TYPE>;
// forward: y; backward: dy (read only).
@group(0) @binding(2) var<storage, read_write> y: array<ELEM_TYPE>;
@group(0) @binding(2) var<storage, read> dy: array<ELEM_TYPE>;
@group(0) @binding(3) var<storage, read_write> dx: array<ELEM_TYPE>;
// The same for forward4 / backward4, as vec4s.
@group(0) @binding(1) var<storage, read> x4: array<vec4<ELEM_TYPE>>;
@group(0) @binding(2) var<storage, read_write> y4: array<vec4<ELEM_TYPE>>;
@group(0) @binding(2) var<storage, read> dy4: array<vec4<ELEM_TYPE>>;
@group(0) @binding(3) var<storage, read_write> dx4: array<vec4<ELEM_TYPE>>;

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

// Where a cell's window starts in x (`top`), its bottom row (`top + row`), the
// step to its right column (`right`), and where the cell's dy is.
struct Window {
  top: u32,
  row: u32,
  right: u32,
  dy_at: u32,
  full: bool,
}

fn window_of(cell: Cell) -> Window {
  return Window(
    x_index(cell.n, 2u * cell.i, 2u * cell.j, cell.c),
    p.w * p.c,
    p.c,
    ((cell.n * p.oh + cell.i) * p.ow + cell.j) * p.c + cell.c,
    cell.i < p.oh && cell.j < p.ow,
  );
}

// Where the window's four positions (row-major) are in x and dx.
fn positions(win: Window) -> array<u32, 4> {
  return array<u32, 4>(win.top, win.top + win.right, win.top + win.row, win.top + win.row + win.right);
}

// Which of a cell's four positions exist in x: all of them but at an odd last
// row or column (such a cell is not a full window).
fn present(cell: Cell) -> vec4<bool> {
  let right = 2u * cell.j + 1u < p.w;
  let bottom = 2u * cell.i + 1u < p.h;
  return vec4<bool>(true, right, bottom, right && bottom);
}

// Per channel: the window position (0..3, row-major) of the first maximum, and the maximum.
struct Winner {
  k: vec4<u32>,
  value: vec4<f32>,
}

fn winner(v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, v3: vec4<f32>) -> Winner {
  var best = Winner(vec4<u32>(0u), v0);
  let g1 = v1 > best.value;
  best = Winner(select(best.k, vec4<u32>(1u), g1), select(best.value, v1, g1));
  let g2 = v2 > best.value;
  best = Winner(select(best.k, vec4<u32>(2u), g2), select(best.value, v2, g2));
  let g3 = v3 > best.value;
  return Winner(select(best.k, vec4<u32>(3u), g3), select(best.value, v3, g3));
}

// One channel's window, each value splatted (the scalar entry points use lane x).
fn winner1(win: Window) -> Winner {
  let at = positions(win);
  return winner(vec4<f32>(f32(x[at[0]])), vec4<f32>(f32(x[at[1]])), vec4<f32>(f32(x[at[2]])), vec4<f32>(f32(x[at[3]])));
}

fn winner4(win: Window) -> Winner {
  let at = positions(win);
  return winner(vec4<f32>(x4[at[0]]), vec4<f32>(x4[at[1]]), vec4<f32>(x4[at[2]]), vec4<f32>(x4[at[3]]));
}

fn flat_index(gid: vec3<u32>) -> u32 {
  return gid.x + gid.y * p.row_threads;
}

// GROUP (invocations per workgroup) is written in front of this file by its TypeScript wrapper.
@compute @workgroup_size(GROUP)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let flat = flat_index(gid);
  if (flat >= p.count) {
    return;
  }
  // Iteration space [N, OH, OW, C] is y's own layout, so y's index is `flat`.
  y[flat] = ELEM_TYPE(winner1(window_of(cell_of(flat))).value.x);
}

@compute @workgroup_size(GROUP)
fn forward4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let flat = flat_index(gid);
  if (flat >= p.count) {
    return;
  }
  y4[flat] = vec4<ELEM_TYPE>(winner4(window_of(cell_of(flat))).value);
}

@compute @workgroup_size(GROUP)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let flat = flat_index(gid);
  if (flat >= p.count) {
    return;
  }
  let cell = cell_of(flat);
  let win = window_of(cell);
  let at = positions(win);
  if (MASK) {
    var k = 4u; // no winner outside a full window
    var g = ELEM_TYPE(0.0);
    if (win.full) {
      k = winner1(win).k.x;
      g = dy[win.dy_at];
    }
    let here = present(cell);
    for (var pos = 0u; pos < 4u; pos++) {
      if (here[pos]) {
        var v = select(ELEM_TYPE(0.0), g, k == pos);
        if (ACCUMULATE) {
          v += dx[at[pos]];
        }
        dx[at[pos]] = select(ELEM_TYPE(0.0), v, x[at[pos]] > ELEM_TYPE(0.0));
      }
    }
    return;
  }
  if (ACCUMULATE) {
    // Only the winner changes; the other cells (and unpooled ones) keep their value.
    if (win.full) {
      let k = winner1(win).k.x;
      dx[at[k]] = dx[at[k]] + dy[win.dy_at];
    }
    return;
  }
  if (win.full) {
    let k = winner1(win).k.x;
    let g = dy[win.dy_at];
    for (var pos = 0u; pos < 4u; pos++) {
      dx[at[pos]] = select(ELEM_TYPE(0.0), g, k == pos);
    }
    return;
  }
  // A cell on an odd last row and/or column: up to four inputs, none pooled.
  let here = present(cell);
  for (var pos = 0u; pos < 4u; pos++) {
    if (here[pos]) {
      dx[at[pos]] = ELEM_TYPE(0.0);
    }
  }
}

@compute @workgroup_size(GROUP)
fn backward4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let flat = flat_index(gid);
  if (flat >= p.count) {
    return;
  }
  let cell = cell_of(flat);
  let win = window_of(cell);
  let at = positions(win);
  if (MASK) {
    var k = vec4<u32>(4u); // no winner outside a full window
    var g = vec4<ELEM_TYPE>(0.0);
    if (win.full) {
      k = winner4(win).k;
      g = dy4[win.dy_at];
    }
    let here = present(cell);
    for (var pos = 0u; pos < 4u; pos++) {
      if (here[pos]) {
        var v = select(vec4<ELEM_TYPE>(0.0), g, k == vec4<u32>(pos));
        if (ACCUMULATE) {
          v += dx4[at[pos]];
        }
        dx4[at[pos]] = select(vec4<ELEM_TYPE>(0.0), v, x4[at[pos]] > vec4<ELEM_TYPE>(0.0));
      }
    }
    return;
  }
  if (win.full) {
    let k = winner4(win).k;
    let g = dy4[win.dy_at];
    for (var pos = 0u; pos < 4u; pos++) {
      let mine = select(vec4<ELEM_TYPE>(0.0), g, k == vec4<u32>(pos));
      if (ACCUMULATE) {
        dx4[at[pos]] = dx4[at[pos]] + mine;
      } else {
        dx4[at[pos]] = mine;
      }
    }
    return;
  }
  if (ACCUMULATE) {
    return;
  }
  // A cell on an odd last row and/or column: up to four inputs, none pooled.
  let here = present(cell);
  for (var pos = 0u; pos < 4u; pos++) {
    if (here[pos]) {
      dx4[at[pos]] = vec4<ELEM_TYPE>(0.0);
    }
  }
}
