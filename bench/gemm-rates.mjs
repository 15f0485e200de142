// The convolution GEMMs of profiled training steps, pass by pass: GPU time
// and the rate it implies (2·M·N·K floating-point operations a GEMM, from the
// "GEMM M×N×K" of its pass label), for each configuration a step was
// profiled in (a merged device JSON's stepProfiles, or bench --json's
// precisionRuns). Passes without a GEMM (split sums, pooling, …) are summed
// apart. Timestamps quantised by the driver make single small passes coarse;
// the totals are what to compare.
// With --best, each GEMM of the step (with the pass that sums its splits)
// is set side by side in every mixed-precision configuration profiled: the
// fastest for each, and what the step's GEMMs would take if the planner gave
// each its fastest configuration. A profile of a tuned step (bench
// --mma-tiles tuned) also gets the tuner's own measurements, and so does a
// training run's tuning.json (train --tune) given instead of results.
//   node bench/gemm-rates.mjs RESULTS.json|tuning.json [--top N] [--best]
import { readFileSync } from 'node:fs';

const [file, ...rest] = process.argv.slice(2);
const usage = 'usage: node bench/gemm-rates.mjs RESULTS.json|tuning.json [--top N] [--best]';
if (file === '--help' || rest.includes('--help')) {
  console.log(usage);
  process.exit(0);
}
const fail = (message) => {
  console.error(message);
  process.exit(1);
};
if (!file) fail(usage);
const topAt = rest.indexOf('--top');
const top = topAt >= 0 ? Number(rest[topAt + 1]) : 12;
if (!(top > 0) || rest.some((a, i) => a !== '--best' && a !== '--top' && !(topAt >= 0 && i === topAt + 1))) fail(usage);
let data;
try {
  data = JSON.parse(readFileSync(file, 'utf8'));
} catch (e) {
  fail(`${file}: ${e.message}`);
}
if (data === null || typeof data !== 'object') fail(`${file} holds no results`);
if (data.format === 'wgsl-unet-tuning/1') {
  if (!Array.isArray(data.report?.gemms)) fail(`${file} is a tuning record without its measurements`);
  // train --tune's record (src/ops/conv/tune.ts, TuningRecord).
  tuningReport(data.report, `measured on ${data.adapter} at ${data.measuredAt}`);
  process.exit(0);
}
const profiles = data.stepProfiles ?? (data.precisionRuns ?? []).map((r) => ({ precision: r.precision, tile: r.tile, storage: r.storage, passes: r.profile?.passes, tuning: r.tuning }));
if (!profiles.some((p) => p.passes || p.tuning)) fail(`${file} has no pass-by-pass profile of a training step (bench --suite step with timestamp queries writes one; older results kept only per-op sums) and no tuning`);
const nameOf = (p) => [p.precision, p.tile && `tile ${p.tile}`, p.storage && `${p.storage} activations`].filter(Boolean).join(', ');

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
  const name = nameOf(p);
  console.log(`\n${name}: ${gemms.length} GEMMs ${gemmMs.toFixed(3)} ms (${(flop / (gemmMs * 1e-3) / 1e12).toPrecision(3)} TFLOP/s), other passes ${otherMs.toFixed(3)} ms`);
  // Mixed-precision GEMMs also as a share of the staged ceiling: conv_mma's loop without its global reads.
  const of = mma && p.precision === 'mixed' ? mma.tflops.staged : 0;
  console.log(`| ms | TFLOP/s |${of ? ' % of staged ceiling |' : ''} pass |\n| ---: | ---: |${of ? ' ---: |' : ''} --- |`);
  for (const g of [...gemms].sort((a, b) => b.ms - a.ms).slice(0, top)) console.log(`| ${g.ms.toFixed(3)} | ${g.tflops.toPrecision(3)} |${of ? ` ${((100 * g.tflops) / of).toFixed(0)} % |` : ''} ${g.label} |`);
}

for (const p of profiles) if (p.tuning) tuningReport(p.tuning, nameOf(p));
if (rest.includes('--best')) best(profiles.filter((p) => p.precision === 'mixed' && p.passes));

/**
 * What the tuner measured before a step was timed (bench --mma-tiles tuned):
 * the GEMMs that take longest on the planner's choices, each with the
 * configuration it ran fastest in, and the step's GEMM time both ways.
 */
function tuningReport(t, name) {
  const left = [t.unfit.length && `left out, not fitting: ${t.unfit.join(', ')}`, t.failed?.length && `failing: ${t.failed.map((f) => f.name).join(', ')}`].filter(Boolean);
  console.log(`\n${name}: the tuner's ${t.gemms.length} GEMMs over ${t.configurations.length} configurations (${t.seconds.toFixed(1)} s${left.map((l) => `; ${l}`).join('')})`);
  console.log('| planner ms | fastest | ms | GEMM |\n| ---: | --- | ---: | --- |');
  for (const g of [...t.gemms].sort((a, b) => b.ms.planner - a.ms.planner).slice(0, top)) console.log(`| ${g.ms.planner.toFixed(3)} | ${g.best} | ${g.ms[g.best].toFixed(3)} | ${g.label} |`);
  console.log(`| ${t.plannerMs.toFixed(3)} | | ${t.tunedMs.toFixed(3)} | all ${t.gemms.length} GEMMs |`);
}

/**
 * A step's GEMMs as units: a GEMM's pass ("<op label> [<formulation>…, GEMM
 * M×N×K…]") with the pass that sums its splits ("<op label>: sum of S
 * splits"), keyed by the op label and its occurrence (two layers may share
 * a shape), in step order; ms per unit.
 */
function gemmUnits(passes) {
  const units = new Map();
  const seen = new Map();
  let last = null;
  for (const { label, gpu_ms } of passes) {
    const gemm = /^(.*?) \[[^\]]*GEMM \d+×\d+×\d+/.exec(label);
    if (gemm) {
      const n = (seen.get(gemm[1]) ?? 0) + 1;
      seen.set(gemm[1], n);
      last = { key: `${gemm[1]}${n > 1 ? ` (${n})` : ''}`, base: gemm[1] };
      units.set(last.key, { ms: gpu_ms, flop: 2 * label.match(/GEMM (\d+)×(\d+)×(\d+)/).slice(1).reduce((a, b) => a * Number(b), 1) });
      continue;
    }
    const sum = /^(.*): sum of \d+ splits$/.exec(label);
    if (sum && last && sum[1] === last.base) units.get(last.key).ms += gpu_ms;
  }
  return units;
}

function best(mixed) {
  if (mixed.length < 2) {
    console.log('\n--best: fewer than two mixed-precision configurations were profiled; nothing to compare');
    return;
  }
  const names = mixed.map((p) => p.tile ?? nameOf(p));
  const units = mixed.map((p) => gemmUnits(p.passes));
  const keys = [...units[0].keys()].filter((k) => units.every((u) => u.has(k)));
  const rows = keys.map((key) => {
    const ms = units.map((u) => u.get(key).ms);
    const i = ms.indexOf(Math.min(...ms));
    return { key, ms, best: i, flop: units[0].get(key).flop };
  });
  const total = (i) => rows.reduce((s, r) => s + r.ms[i], 0);
  const bestMs = rows.reduce((s, r) => s + r.ms[r.best], 0);
  console.log(`\nEach GEMM (with its split sums) in ${mixed.length} mixed-precision configurations: ${rows.length} GEMMs found in all`);
  console.log(`| GEMM | ${names.join(' | ')} | fastest |\n| --- |${names.map(() => ' ---: |').join('')} --- |`);
  const shown = [...rows].sort((a, b) => Math.max(...b.ms) - Math.max(...a.ms)).slice(0, top);
  for (const r of rows.filter((x) => shown.includes(x))) console.log(`| ${r.key} | ${r.ms.map((v, i) => (i === r.best ? `**${v.toFixed(3)}**` : v.toFixed(3))).join(' | ')} | ${names[r.best]} |`);
  console.log(`| all ${rows.length} GEMMs, ms | ${names.map((_, i) => total(i).toFixed(3)).join(' | ')} | ${bestMs.toFixed(3)} with each GEMM's fastest |`);
  const wins = names.map((n, i) => `${n} ${rows.filter((r) => r.best === i).length}`).join(', ');
  console.log(`fastest for how many GEMMs: ${wins}`);
}
