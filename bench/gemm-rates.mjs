// The convolution GEMMs of profiled training steps, pass by pass: GPU time
// and the rate it implies (2·M·N·K floating-point operations a GEMM, from the
// "GEMM M×N×K" of its pass label), for each configuration a step was
// profiled in (a merged device JSON's stepProfiles, or bench --json's
// precisionRuns). Passes without a GEMM (split sums, pooling, …) are summed
// apart. Timestamps quantised by the driver make single small passes coarse;
// the totals are what to compare.
//   node bench/gemm-rates.mjs RESULTS.json [--top N]
import { readFileSync } from 'node:fs';

const [file, ...rest] = process.argv.slice(2);
if (!file) throw new Error('usage: node bench/gemm-rates.mjs RESULTS.json [--top N]');
const top = rest[0] === '--top' ? Number(rest[1]) : 12;
const data = JSON.parse(readFileSync(file, 'utf8'));
const profiles = data.stepProfiles ?? (data.precisionRuns ?? []).map((r) => ({ precision: r.precision, tile: r.tile, storage: r.storage, passes: r.profile?.passes }));

// Against the f16 subgroup-matrix ceiling where the run measured it (bench/mma-ceiling.ts).
const mma = data.mmaCeiling;
if (mma) console.log(`f16 subgroup-matrix ceiling (${mma.matrix}): ${Object.entries(mma.tflops).map(([k, v]) => `${k} ${v.toPrecision(3)}`).join(', ')} TFLOP/s`);
for (const p of profiles) {
  if (!p.passes) continue;
  const gemms = [];
  let otherMs = 0;
  for (const { label, gpu_ms } of p.passes) {
    const m = /GEMM (\d+)×(\d+)×(\d+)/.exec(label);
    if (!m) {
      otherMs += gpu_ms;
      continue;
    }
    const flop = 2 * Number(m[1]) * Number(m[2]) * Number(m[3]);
    gemms.push({ label, ms: gpu_ms, tflops: flop / (gpu_ms * 1e-3) / 1e12, flop });
  }
  const gemmMs = gemms.reduce((s, g) => s + g.ms, 0);
  const flop = gemms.reduce((s, g) => s + g.flop, 0);
  const name = [p.precision, p.tile && `tile ${p.tile}`, p.storage && `${p.storage} activations`].filter(Boolean).join(', ');
  console.log(`\n${name}: ${gemms.length} GEMMs ${gemmMs.toFixed(3)} ms (${(flop / (gemmMs * 1e-3) / 1e12).toPrecision(3)} TFLOP/s), other passes ${otherMs.toFixed(3)} ms`);
  // Mixed-precision GEMMs also as a share of the staged ceiling: conv_mma's loop without its global reads.
  const of = mma && p.precision === 'mixed' ? mma.tflops.staged : 0;
  console.log(`| ms | TFLOP/s |${of ? ' % of staged ceiling |' : ''} pass |\n| ---: | ---: |${of ? ' ---: |' : ''} --- |`);
  for (const g of [...gemms].sort((a, b) => b.ms - a.ms).slice(0, top)) console.log(`| ${g.ms.toFixed(3)} | ${g.tflops.toPrecision(3)} |${of ? ` ${((100 * g.tflops) / of).toFixed(0)} % |` : ''} ${g.label} |`);
}
