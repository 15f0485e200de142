#!/usr/bin/env bash
# The checks and measurements to run on a machine with a GPU, in one go:
#   1. the GPU's name and driver (nvidia-smi, where there is one);
#   2. the kernel and model tests on that adapter (vitest);
#   3. the benchmark suite against tfjs-webgpu on the same adapter, batches 8 and 32
#      (with every tile shape of the tiled convolution timed too),
#      with the training step at batch 32;
#   4. the same U-Net training step in PyTorch (float32) on the same GPU, where
#      python3 has torch with CUDA;
#   5. a short training run of the tutorial's model (preset full) on a small
#      synthetic set, then prediction and the submission file.
# Usage: bash bench/gpu-suite.sh OUT_DIR [REPS]   (after npm ci and npm run build)
# Each part has its own time limit, so one that hangs does not take the rest with it.
set -uo pipefail
out=${1:?usage: bash bench/gpu-suite.sh OUT_DIR [REPS]}
reps=${2:-10}
mkdir -p "$out"
log="$out/suite.log"
say() { echo "== $(date -u +%H:%M:%S) $*" | tee -a "$log"; }

say "gpu"
(command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv) 2>&1 | tee -a "$log"

say "adapter"
if ! timeout 60 node dist/cli.js smoke 2>&1 | tee -a "$log"; then
  say "no usable adapter: Vulkan loader diagnostics"
  VK_LOADER_DEBUG=error,warn,info timeout 30 node dist/cli.js smoke 2>&1 | tail -40 | tee -a "$log"
  exit 1
fi

say "tests on this adapter"
[ -d node_modules/vitest ] || [ ! -f .device/test-runner.tar.xz ] || tar -xJf .device/test-runner.tar.xz
timeout 150 node node_modules/vitest/vitest.mjs run src/ops/conv/conv.test.ts src/ops/maxpool/maxpool.test.ts src/ops/concat/concat.test.ts src/ops/dice/dice.test.ts src/ops/adam/adam.test.ts \
  src/ops/elementwise/elementwise.test.ts src/ops/elu/elu.test.ts src/ops/reduce/reduce.test.ts test/autograd.test.ts test/tfjs-peer.test.ts \
  src/gpu/runtime.test.ts test/vec4-forms.test.ts src/software/pacing.test.ts test/model/unet.test.ts test/model/unet-tfjs.test.ts test/model/trainer.test.ts 2>&1 | grep -v '^ *✓' | tail -60 | tee -a "$log"

say "benchmark"
timeout 300 node dist/bench.js --batches 8,32 --peers webgpu --reps "$reps" --step-batch 32 \
  --json "$out/bench.json" --svg "$out/bench.svg" --markdown "$out/bench.md" 2>&1 | tee "$out/bench.log" | grep -v '^ ' | tail -80 >> "$log"

if python3 -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  say "pytorch"
  PYTHONUNBUFFERED=1 timeout 100 python3 bench/pytorch_unet.py --batch 32 --steps 30 --json "$out/pytorch.json" 2>&1 | tee -a "$log"
fi

say "training (preset full, small synthetic set)"
{
  timeout 60 node dist/cli.js data --synthetic --raw /tmp/gpu-suite-raw --out /tmp/gpu-suite-data --subjects 8 --frames 40 --test 60 &&
    timeout 150 node dist/cli.js train --preset full --epochs 3 --data /tmp/gpu-suite-data --out /tmp/gpu-suite-runs
} 2>&1 | tr '\r' '\n' | grep -v '^ *$' | tail -40 | tee -a "$log"
say "done"
