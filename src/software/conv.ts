/**
 * The convolution formulations for software adapters whose subgroups are
 * exactly 8 invocations (lavapipe on AVX2): the rows shader
 * (conv_rows.wgsl) and Winograd F(2×2, 3×3) / F(4×4, 3×3)
 * for 3 × 3 layers (winograd.wgsl with winograd2.wgsl or winograd4.wgsl),
 * whose α² products run on the rows shader as a batch of plain GEMMs. The
 * planner (src/ops/conv/plan.ts) decides when they run; importing this
 * module makes them available, which the device-creation functions do for
 * software adapters.
 */
import type { Gpu } from '../gpu/gpu.js';
import { allocTensor } from '../gpu/tensor-view.js';
import { placeholder, registerSoftwareConv } from '../ops/conv/device.js';
import { type Gemm, declareConvFamily, runGemm } from '../ops/conv/gemm.js';
import { ACT, Mode, WINOGRAD_KERNELS, type WinogradPlan } from '../ops/conv/plan.js';
import rowsSource from './conv_rows.wgsl';
import winogradSource from './winograd.wgsl';
import winograd2Source from './winograd2.wgsl';
import winograd4Source from './winograd4.wgsl';
import activationSource from '../ops/conv/activation.wgsl';
import { declareKernel } from '../gpu/kernel.js';

const ROWS = declareConvFamily('conv_rows', [rowsSource], {
  bindings: ['b4', 'out4', 'a4'], overrides: ['A4', 'B4', 'O4', 'WT', 'GROUP'], enables: ['subgroups'],
});

/** The Winograd passes with the transforms of F(2×2, 3×3) or F(4×4, 3×3) before them. */
function declareWinograd(tile: 2 | 4, transforms: string) {
  return declareKernel({
    name: `winograd${tile}`,
    parts: [transforms, winogradSource, activationSource],
    defines: { KERNELS: WINOGRAD_KERNELS },
    entryPoints: { weight_tiles: ['w', 'dst'], input_tiles: ['src', 'dst'], output_tiles: ['src', 'dst', 'bias', 'mask'] },
    uniforms: [['n', 'u32'], ['h', 'u32'], ['w', 'u32'], ['c', 'u32'], ['c_out', 'u32'], ['th', 'u32'], ['tw', 'u32'], ['tiles', 'u32'], ['n0', 'u32']],
    overrides: ['FLIP', 'ACT', 'BIAS', 'ACCUMULATE', 'MASK', 'WG'],
  });
}
const WINOGRAD = { 2: declareWinograd(2, winograd2Source), 4: declareWinograd(4, winograd4Source) } as const;

/**
 * A 3 × 3 'same' convolution (mode 0) or its ∂input (mode 1, the kernel read
 * flipped and transposed) as Winograd F(m×m, 3×3): the kernels' and the
 * input tiles' transforms into pooled scratch, the α² products on the rows
 * shader (mode 6), and the output transform with bias, activation or
 * accumulation and the mask. The tile passes take channels in quads (vec4s).
 */
function winograd(gpu: Gpu, g: Gemm, { tile, th, tw, images }: WinogradPlan): void {
  const cin = g.aC;
  const cout = g.n;
  const alpha2 = (tile + 2) ** 2;
  const u = allocTensor(gpu, [alpha2, cin, cout]);
  const v = allocTensor(gpu, [alpha2, images * th * tw, cin]);
  const m = allocTensor(gpu, [alpha2, images * th * tw, cout]);
  const group = (quads: number) => Math.min(64, 8 * Math.ceil(quads / 8));
  const kernel = WINOGRAD[tile];
  const uniforms = (c: number, cOut: number, n0: number, n: number) => ({ n, h: g.h, w: g.w, c, c_out: cOut, th, tw, tiles: n * th * tw, n0 });
  kernel.dispatch(gpu, {
    entry: 'weight_tiles',
    label: `${g.label}: Winograd ${tile}×${tile} kernels`,
    bind: { w: g.b, dst: u.view },
    uniforms: uniforms(cin, cout, 0, 0),
    overrides: { FLIP: g.mode === Mode.ConvInput ? 1 : 0, WG: group(cout / 4) },
    workgroups: [Math.ceil(cout / 4 / group(cout / 4)), Math.ceil(cin / WINOGRAD_KERNELS)],
  });
  for (let n0 = 0; n0 < g.batch; n0 += images) {
    const n = Math.min(images, g.batch - n0);
    const part = g.batch > images ? ` (images ${n0}–${n0 + n - 1})` : '';
    kernel.dispatch(gpu, {
      entry: 'input_tiles',
      label: `${g.label}: Winograd ${tile}×${tile} input tiles${part}`,
      bind: { src: g.a, dst: v.view },
      uniforms: uniforms(cin / 4, 0, n0, n),
      overrides: { WG: group(cin / 4) },
      workgroups: [Math.ceil(cin / 4 / group(cin / 4)), n * th],
    });
    runGemm(gpu, {
      mode: Mode.Batched, label: `${g.label}: Winograd ${tile}×${tile} products${part}`,
      a: v.view, b: u.view, out: m.view,
      batch: 1, h: 1, w: 1, aC: cin, bC: cout, m: n * th * tw, n: cout, k: cin, batches: alpha2,
    });
    kernel.dispatch(gpu, {
      entry: 'output_tiles',
      label: `${g.label}: Winograd ${tile}×${tile} output tiles${part}`,
      bind: { src: m.view, dst: g.out, bias: g.bias ?? placeholder(gpu, 'read'), mask: g.mask ?? placeholder(gpu, 'read') },
      uniforms: uniforms(cout / 4, 0, n0, n),
      overrides: { ACT: ACT[g.activation ?? 'none'], BIAS: g.bias ? 1 : 0, ACCUMULATE: g.accumulate ? 1 : 0, MASK: g.mask ? 1 : 0, WG: group(cout / 4) },
      workgroups: [Math.ceil(cout / 4 / group(cout / 4)), n * th],
    });
  }
  // Safe to recycle now: any later use of these buffers is recorded after the reads above.
  for (const t of [u, v, m]) t.dispose();
}

registerSoftwareConv({ rows: ROWS, winograd });
