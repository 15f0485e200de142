#!/usr/bin/env bash
# Mixed precision on a GPU machine, in one go, each part under its own time
# limit so that one that hangs leaves the others' results:
#   1. the GPU (nvidia-smi) and the adapter line (its f16 subgroup matrices);
#   2. the mixed-precision and loss-scaling tests on that adapter;
#   3. our training step and inference at batch 32 in fp32 and in mixed
#      precision, on the default tile (also with prefetching) and with a
#      tile per GEMM (auto), with larger subgroup tiles (result matrices a
#      subgroup: 4 × 2 on the default tile and on 128 × 128, 2 × 4 on the
#      default tile, 4 × 4 on 128 × 128), with double-buffered tiles (16
#      deep: 128 × 64, and 4 × 2 on 128 × 128), and with each
#      quad decoding its own k (STEP_TAP and STEP_PIXEL off) on the default
#      tile, and with the deep layers' forward and ∂input reductions split
#      (splitk) on the default tile, each step
#      profiled pass by pass (`--mma-tiles all` would time every tile),
#      activations stored in f16 (bench --suite step), with the f16
#      subgroup-matrix ceiling (bench/mma-ceiling.ts), and the peak memory of
#      fp32 and of mixed precision with f16 and with f32 activations
#      (dist/memory.js); then (part robust) the default tile again without
#      the bounds clamps Dawn adds (--dawn-toggles disable_robustness: its
#      workgroup stores and matrix loads unguarded); and (part tuned) fp32,
#      the default tile and the tuned step (bench --mma-tiles tuned: each
#      GEMM timed in every candidate configuration, then run in its fastest)
#      side by side, and the mixed tests of the tuner's candidates that need
#      48 KiB of workgroup memory, where the device holds them, and of B's
#      matrices loaded from memory (+directb);
#   4. PyTorch on the same GPU: fp32, its defaults, AMP bf16 + channels_last;
#   5. the tutorial's recipe (preset full) on the default synthetic set, fp32
#      and mixed side by side, for the best validation Dice of each;
#   6. submit's post-processing on all the machine's cores (dist/postprocess.js).
# Usage, from the project's root after the build,
#   PRUNE="@esbuild esbuild lightningcss lightningcss-linux-x64-gnu tsx playwright-core" bash ../shared/device/pack.sh
#   bash bench/device-gl.sh
# (rolldown stays: vitest's vite needs it), then on the GPU machine:
#   bash .device/run.sh bash bench/device-mixed.sh OUT_DIR
# A session's device time (minutes, the start included) rarely holds every
# part: the first call takes what the targets need side by side,
#   PARTS=tuned,pytorch,robust,
# the second, where time is left, PARTS=step (every configuration timed
# whole) and a third PARTS=tests,train,postprocess.
set -uo pipefail
out=${1:?usage: [PARTS=tests,step,robust,tuned,pytorch,train,postprocess] bash bench/device-mixed.sh OUT_DIR}
parts=,${PARTS:-tests,step,robust,tuned,pytorch,train,postprocess},
want() { [[ $parts == *,$1,* ]]; }
mkdir -p "$out"
log="$out/mixed.log"
say() { echo "== $(date -u +%H:%M:%S) $*" | tee -a "$log"; }

say "gpu"
(command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv) 2>&1 | tee -a "$log"

say "adapter"
timeout 60 node dist/cli.js smoke 2>&1 | tee -a "$log"

if want tests; then
say "tests: mixed precision and loss scaling on this adapter"
[ -d node_modules/vitest ] || [ ! -f .device/test-runner.tar.xz ] || tar -xJf .device/test-runner.tar.xz
WGSL_UNET_REQUIRE_MIXED=1 timeout 240 node node_modules/vitest/vitest.mjs run test/mixed src/ops/adam/loss-scale.test.ts 2>&1 \
  | grep -v '^ *✓' | grep -E 'worst error|subgroup matrices|passed|failed|Error|error|FAIL|Tests|Test Files' | tail -60 | tee -a "$log"
fi

if want step; then
say "training step and inference, fp32 and mixed (default tile, with prefetch; auto; 4 × 2, 2 × 4 and 4 × 4 subgroup tiles; double-buffered tiles; per-quad taps; split reductions)"
timeout 480 node dist/bench.js --suite step --step-ours-only --step-batch 32 --reps 10 --step-chain 10 --precision fp32,mixed --mma-tiles 128x64x32,auto,128x64x32+prefetch,128x64x32+tall,128x128x32+tall,128x64x32+wide,128x128x32+tall+wide,128x64x16+db,128x128x16+tall+db,128x64x32+perquad,128x64x32+splitk --storage f16 \
  --json "$out/step.json" 2>&1 | tee "$out/step.log" | grep -v '^op \|^training_step\|^inference' | tail -40 >> "$log"
say "peak memory of a step and of inference: fp32, mixed with f16 and with f32 activations"
timeout 60 node dist/memory.js --batch 32 --json "$out/memory.json" 2>&1 | tee -a "$log"
fi

if want robust; then
say "the default tile again without the bounds clamps Dawn adds to array accesses (disable_robustness)"
timeout 120 node dist/bench.js --suite step --step-ours-only --step-batch 32 --reps 10 --step-chain 10 --precision mixed --mma-tiles 128x64x32 --storage f16 --dawn-toggles disable_robustness \
  --json "$out/step-norobust.json" 2>&1 | tee "$out/step-norobust.log" | grep -v '^op \|^training_step\|^inference' | tail -6 >> "$log"
fi

if want tuned; then
say "tuned: each GEMM in its fastest configuration, measured here, beside fp32 and the default tile"
timeout 300 node dist/bench.js --suite step --step-ours-only --step-batch 32 --reps 10 --step-chain 10 --precision fp32,mixed --mma-tiles 128x64x32,tuned --storage f16 \
  --json "$out/step-tuned.json" 2>&1 | tee "$out/step-tuned.log" | grep -v '^op \|^training_step\|^inference' | tail -30 >> "$log"
# The tuner's 48 KiB candidates are proven on a GPU only (lavapipe holds 32 KiB): their cases of the mixed tests, skipped where they do not fit;
# and the weight gradients with B's matrices loaded from memory (+directb) on this device's matrices.
say "tuned: the 48 KiB candidates against the reference and fp32, where this device holds them; B from memory against B staged"
[ -d node_modules/vitest ] || [ ! -f .device/test-runner.tar.xz ] || tar -xJf .device/test-runner.tar.xz
WGSL_UNET_REQUIRE_MIXED=1 timeout 120 node node_modules/vitest/vitest.mjs run test/mixed/conv-mixed.test.ts test/mixed/f16-storage.test.ts -t '(128x64x32\+db|128x128x32\+tall\+db): |matrices from memory' 2>&1 \
  | grep -v '^ *✓' | grep -E 'worst error|passed|failed|skipped|Error|error|FAIL|Tests' | tail -20 | tee -a "$log"
fi

if want pytorch && python3 -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  say "pytorch"
  PYTHONUNBUFFERED=1 timeout 150 python3 bench/pytorch_unet.py --batch 32 --steps 30 --infer-steps 50 --chain 10 --json "$out/pytorch.json" 2>&1 | tee -a "$log"
fi

if want train; then
say "training: preset full on the default synthetic set (47 subjects × 120 frames), fp32 and mixed at once"
raw=/tmp/mixed-raw data=/tmp/mixed-data
timeout 90 node dist/cli.js data --synthetic --raw "$raw" --out "$data" --subjects 47 --frames 120 --test 1 2>&1 | tr '\r' '\n' | grep -v '^ *$' | tail -3 | tee -a "$log"
for p in fp32 mixed; do
  (timeout 200 node dist/cli.js train --preset full --precision "$p" --data "$data" --skip-predict --out "$out/runs-$p" 2>&1 \
    | tr '\r' '\n' | grep -v '^ *$' | grep -v 'images/s' > "$out/train-$p.log") &
done
wait
for p in fp32 mixed; do
  say "train $p"
  grep -E 'precision|preset|epoch [0-9]+/[0-9]+ .*val_dice|competition|best epoch|error' "$out/train-$p.log" | tail -26 | tee -a "$log"
done
for p in fp32 mixed; do cat "$out"/runs-$p/*/log.jsonl > "$out/train-$p.jsonl" 2>/dev/null; done
rm -rf "$out"/runs-*
fi
if want postprocess; then
say "post-processing of submit: masks/s on $(nproc) cores"
timeout 60 node dist/postprocess.js --masks 5508 --json "$out/postprocess.json" 2>&1 | tee -a "$log"
fi

node bench/merge-device.mjs "$out" "$out/mixed-results.json" 2>&1 | tee -a "$log"
# Each GEMM in every mixed configuration (the run without bounds clamps too), and the step's GEMMs with each one's fastest.
[ -f "$out/mixed-results.json" ] && node bench/gemm-rates.mjs "$out/mixed-results.json" --top 8 --best >> "$log" 2>&1
say "done"
