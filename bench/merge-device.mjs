// Merges what bench/device-mixed.sh measured in one GPU run into one JSON
// file: our training step and inference (bench --suite step), PyTorch's
// (bench/pytorch_unet.py) and the fp32/mixed training runs, as `entries`
// that each carry op, impl, precision, batch and images_per_s (ours in mixed
// precision also `storage`, of the activations), the peak memory of each
// configuration (dist/memory.js) as `memory`, each profiled step's GPU time
// by op and by pass (the pass labels name each GEMM's shapes, formulation and
// tile), the f16 subgroup-matrix ceiling (bench/mma-ceiling.ts) as
// `mmaCeiling`, and submit's post-processing (dist/postprocess.js) as `postprocess`.
// A second step run with more Dawn toggles (step-norobust.json: bench
// --dawn-toggles disable_robustness) joins the entries and profiles with
// `dawn_toggles` and the toggles in its impl and tile names; the run of part
// tuned (step-tuned.json: bench --mma-tiles 128x64x32,tuned) with " (tuned
// run)" in them, its profiles carrying the tuner's report (`tuning`: each
// GEMM's time in every configuration).
//   node bench/merge-device.mjs OUT_DIR RESULT.json [NOTE]
// NOTE, where given, says where the parts came from (when OUT_DIR gathers several runs).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir, dest, note] = process.argv.slice(2);
if (!dir || !dest) throw new Error('usage: node bench/merge-device.mjs OUT_DIR RESULT.json');
const read = (f) => (existsSync(join(dir, f)) ? JSON.parse(readFileSync(join(dir, f), 'utf8')) : null);
const step = read('step.json');
const tunedRun = read('step-tuned.json');
if (tunedRun) tunedRun.runName = 'tuned run';
const steps = [step, read('step-norobust.json'), tunedRun].filter(Boolean);
const torch = read('pytorch.json');
const memory = read('memory.json');
const postprocess = read('postprocess.json');
const mib = (b) => b / 2 ** 20;

// A run's Dawn toggles beyond the usual, or its name, as a suffix of names.
const toggled = (run) => (run.dawnToggles?.length ? ` (${run.dawnToggles.join(', ')})` : '') + (run.runName ? ` (${run.runName})` : '');
const entries = [];
for (const st of steps) for (const s of st.samples ?? []) {
  if (s.precision === undefined) continue;
  const storage = s.precision === 'mixed' ? (s.impl.includes('f32 activations') ? 'f32' : 'f16') : undefined;
  const tile = /tile ([^,)]+)/.exec(s.impl)?.[1] ?? null;
  const run = st.precisionRuns?.find((r) => r.precision === s.precision && (r.tile ?? null) === tile && (r.storage ?? 'f16') === (storage ?? r.storage ?? 'f16'));
  entries.push({
    op: s.op, impl: s.impl + toggled(st), precision: s.precision, ...(storage ? { storage } : {}), ...(st.dawnToggles ? { dawn_toggles: st.dawnToggles } : {}),
    batch: s.batch, ms: s.median_ms, images_per_s: s.images_per_s,
    ...(s.gpu_ms !== undefined ? { gpu_ms: s.gpu_ms } : {}), ...(s.record_ms !== undefined ? { record_ms: s.record_ms } : {}),
    ...(s.record_floor_ms !== undefined ? { record_floor_ms: s.record_floor_ms, step_dispatches: s.step_dispatches } : {}),
    ...(s.record_every16_ms !== undefined ? { record_every16_ms: s.record_every16_ms } : {}),
    ...(s.record_traced_ms !== undefined ? { record_traced_ms: s.record_traced_ms } : {}),
    ...(s.steps_in_flight !== undefined ? { steps_in_flight: s.steps_in_flight } : {}),
    ...(run && s.op.startsWith('training') ? { peak_live_mib: mib(run.peakLiveBytes) } : {}),
  });
}
for (const e of torch?.entries ?? []) entries.push({ ...e, impl: `pytorch ${e.config}` });

const training = [];
for (const p of ['fp32', 'mixed']) {
  const text = existsSync(join(dir, `train-${p}.log`)) ? readFileSync(join(dir, `train-${p}.log`), 'utf8') : '';
  if (!text) continue;
  const metric = /best ([\d.]+) at threshold/.exec(text);
  const bestLine = /best epoch (\d+): val_dice ([\d.]+)/.exec(text);
  // The epoch log (train-<p>.jsonl, copied from the run folder) where it came back; else the printed summary.
  const log = existsSync(join(dir, `train-${p}.jsonl`)) ? readFileSync(join(dir, `train-${p}.jsonl`), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
  const best = log.length ? log.reduce((a, b) => (b.val_loss < a.val_loss ? b : a)) : null;
  training.push({
    op: 'train_preset_full', precision: p,
    best_epoch: best?.epoch ?? Number(bestLine?.[1]), best_val_dice: best?.val_dice ?? Number(bestLine?.[2]),
    ...(log.length ? { epochs: log.length, seconds: log.reduce((s, e) => s + e.seconds, 0) } : {}),
    ...(metric ? { competition_metric_tuned: Number(metric[1]) } : {}),
    ...(log.at(-1)?.loss_scale !== undefined ? { final_loss_scale: log.at(-1).loss_scale, skipped_steps: log.reduce((s, e) => s + (e.skipped_steps ?? 0), 0) } : {}),
  });
}

const byOp = steps.flatMap((st) => (st.precisionRuns ?? []).map((r) => ({
  precision: r.precision, tile: r.tile === null || r.tile === undefined ? r.tile : r.tile + toggled(st), ...(r.storage ? { storage: r.storage } : {}), ...(st.dawnToggles ? { dawn_toggles: st.dawnToggles } : {}),
  dispatches: r.profile?.dispatches, gpu_ms: r.profile?.gpu_ms, byOp: r.profile?.byOp, passes: r.profile?.passes, ...(r.tuning ? { tuning: r.tuning } : {}),
})));
writeFileSync(dest, JSON.stringify({
  gpu: torch?.gpu ?? step?.adapter?.description, adapter: step?.adapter, ...(step?.limits ? { limits: step.limits } : {}), date: step?.date, ...(note ? { note } : {}),
  versions: { ...step?.versions, torch: torch?.torch, cuda: torch?.cuda, cudnn: torch?.cudnn },
  entries, training, stepProfiles: byOp, ...(step?.mmaCeiling ? { mmaCeiling: step.mmaCeiling } : {}), ...(memory ? { memory: memory.entries } : {}), ...(postprocess ? { postprocess } : {}),
}, null, 1) + '\n');
console.log(`wrote ${dest}: ${entries.length} entries, ${training.length} training runs`);
