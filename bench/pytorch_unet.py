"""The tutorial's U-Net in PyTorch, for comparison on the same GPU as
`npm run bench`: a training step and an inference batch, in three
configurations, in one run.

Same model as src/model/unet.ts (base width 32: 7,759,521 parameters), the
tutorial's Dice loss (smooth = 1, over the whole batch) and Adam in the Keras
form (lr 1e-5, beta1 0.9, beta2 0.999, eps 1e-7), 96 x 96 one-channel input.

Configurations (--configs, all three by default; each sets every backend
flag it depends on, so their order does not matter):

  fp32         strict float32: TF32 off for cuDNN convolutions and cuBLAS
               matmuls, as in our WGSL kernels; NCHW; cudnn.benchmark off.
  defaults     PyTorch's defaults: cuDNN convolutions may use TF32 (PyTorch's
               default), matmul TF32 as the process started (off unless
               overridden); NCHW; cudnn.benchmark off.
  amp-bf16-cl  torch.autocast('cuda', bfloat16), model and inputs in
               channels_last, cudnn.benchmark on; TF32 flags as `defaults`.

Per configuration, a fresh model (same seed) is timed for training (one
optimizer step: forward, Dice loss, backward, Adam) and for inference
(forward only, under torch.inference_mode), each after --warmup steps, two
ways: waiting for each step (torch.cuda.synchronize after each; median of
--steps / --infer-steps) and back to back (the same number of steps with one
synchronize at the end; --chain N instead times groups of N and takes the
median, as `npm run bench --step-chain N`). Peak GPU memory
(max_memory_allocated after the warm-up) is reported for each. A
configuration that fails (bf16 unsupported, out of memory, ...) is printed
and recorded as an entry with `error`; the others still run.

    python3 bench/pytorch_unet.py [--batch 32] [--size 96] [--width 32]
        [--steps 30] [--infer-steps 50] [--warmup 10] [--chain 0]
        [--configs fp32,defaults,amp-bf16-cl] [--json FILE]

--json writes {gpu, torch, cuda, cudnn, ..., entries: [...]}, one entry per
measurement: op (training_step, training_step_chained, inference,
inference_chained), impl ('pytorch'), config, precision ('fp32', 'tf32',
'bf16-amp'), batch, ms, images_per_s, peak_mib, ...
"""
import argparse
import gc
import json
import math
import statistics
import sys
import time
import traceback
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

TUTORIAL_TRAIN_IMAGES = 4508

# PyTorch >= 2.9 warns that the allow_tf32 flags will be replaced by
# fp32_precision. We use only the old flags (mixing the two APIs can raise),
# so the warning is noise here.
warnings.filterwarnings('ignore', message='.*Please use the new API settings to control TF32.*')

# The process's own matmul TF32 setting before we touch anything: `defaults`
# restores it (False unless TORCH_ALLOW_TF32_CUBLAS_OVERRIDE is set). This
# U-Net has no matmuls, so it is recorded more than it matters.
try:
    DEFAULT_MATMUL_TF32 = bool(torch.backends.cuda.matmul.allow_tf32)
except Exception:  # a torch whose getter refuses: PyTorch's documented default
    DEFAULT_MATMUL_TF32 = False

# What each configuration changes. cuDNN caches its chosen algorithms by
# data type, memory format and TF32 flag, so one configuration's choices are
# not reused by another.
CONFIGS = {
    'fp32': dict(precision='fp32', tf32=False, amp=False, channels_last=False, benchmark=False),
    'defaults': dict(precision='tf32', tf32=True, amp=False, channels_last=False, benchmark=False),
    'amp-bf16-cl': dict(precision='bf16-amp', tf32=True, amp=True, channels_last=True, benchmark=True),
}


class UNet(nn.Module):
    def __init__(self, w: int = 32):
        super().__init__()
        widths = [w, 2 * w, 4 * w, 8 * w, 16 * w]
        self.down = nn.ModuleList()
        c = 1
        for co in widths:
            self.down.append(nn.ModuleList([nn.Conv2d(c, co, 3, padding=1), nn.Conv2d(co, co, 3, padding=1)]))
            c = co
        self.up = nn.ModuleList()
        for co in reversed(widths[:-1]):
            self.up.append(nn.ModuleList([nn.ConvTranspose2d(c, co, 2, stride=2), nn.Conv2d(2 * co, co, 3, padding=1), nn.Conv2d(co, co, 3, padding=1)]))
            c = co
        self.head = nn.Conv2d(w, 1, 1)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        skips = []
        for i, (a, b) in enumerate(self.down):
            x = F.relu(b(F.relu(a(x))))
            if i < len(self.down) - 1:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for (t, a, b), s in zip(self.up, reversed(skips)):
            x = torch.cat([t(x), s], dim=1)
            x = F.relu(b(F.relu(a(x))))
        return torch.sigmoid(self.head(x))


def dice_loss(pred, target):
    inter = (pred * target).sum()
    return -(2 * inter + 1) / (pred.sum() + target.sum() + 1)


def apply_backend_flags(cfg: dict):
    """Set every global flag a configuration depends on (order-independent)."""
    if cfg['tf32']:
        torch.backends.cuda.matmul.allow_tf32 = DEFAULT_MATMUL_TF32
        torch.backends.cudnn.allow_tf32 = True  # PyTorch's default for convolutions
    else:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = cfg['benchmark']


def setup(cfg: dict, batch: int, size: int, width: int):
    """A fresh model (seed 1) and the benchmark's fixed input and target."""
    dev = torch.device('cuda')
    torch.manual_seed(1)
    fmt = torch.channels_last if cfg['channels_last'] else torch.contiguous_format
    model = UNet(width).to(dev).to(memory_format=fmt)
    i = torch.arange(batch * size * size, dtype=torch.float32, device=dev)
    x = torch.sin(i * 0.37).reshape(batch, 1, size, size).contiguous(memory_format=fmt)
    y = (((i % (size * size)) % size) > size / 2).float().reshape(batch, 1, size, size).contiguous(memory_format=fmt)
    return model, x, y


def time_waited(fn, n: int) -> list:
    """Seconds of each of n steps, each followed by a synchronize."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times


def time_chained(fn, n: int, chain: int) -> float:
    """Seconds per step of n steps back to back, one synchronize per `chain`
    steps (chain 0: all n, one synchronize at the end); median over chains."""
    chain = n if chain <= 0 or chain > n else chain
    per_step = []
    torch.cuda.synchronize()  # nothing earlier in the clock
    for _ in range(n // chain):
        t0 = time.perf_counter()
        for _ in range(chain):
            fn()
        torch.cuda.synchronize()
        per_step.append((time.perf_counter() - t0) / chain)
    return statistics.median(per_step)


def peak_mib() -> float:
    return torch.cuda.max_memory_allocated() / 2**20


def measure_training(name: str, cfg: dict, a) -> list:
    model, x, y = setup(cfg, a.batch, a.size, a.width)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-5, betas=(0.9, 0.999), eps=1e-7)
    last = {}

    def step():
        opt.zero_grad(set_to_none=True)
        # Autocast covers the forward only (enabled=False: a no-op); the
        # weights stay float32 (Adam updates them in float32), and bf16 has
        # float32's exponent range, so no GradScaler. The loss is summed in
        # float32 over the bf16 prediction.
        with torch.autocast('cuda', dtype=torch.bfloat16, enabled=cfg['amp']):
            pred = model(x)
        loss = dice_loss(pred.float(), y)
        loss.backward()
        opt.step()
        last['loss'] = loss  # a tensor: reading it here would synchronize

    for _ in range(a.warmup):  # includes cudnn.benchmark's search where on
        step()
    torch.cuda.synchronize()
    # After the warm-up, so Adam's state is allocated; the peak covers
    # weights, gradients, Adam's moments and the step's activations.
    torch.cuda.reset_peak_memory_stats()
    times = time_waited(step, a.steps)
    chained = time_chained(step, a.steps, a.chain)
    peak = peak_mib()
    loss = float(last['loss'])
    loss = loss if math.isfinite(loss) else None  # NaN would make the JSON unreadable by JSON.parse
    med = statistics.median(times)
    common = dict(impl='pytorch', config=name, precision=cfg['precision'], batch=a.batch, steps=a.steps,
                  peak_mib=peak, loss=loss)
    return [
        dict(op='training_step', **common, ms=med * 1e3, images_per_s=a.batch / med,
             min_ms=min(times) * 1e3, max_ms=max(times) * 1e3, epoch_s=TUTORIAL_TRAIN_IMAGES * med / a.batch),
        dict(op='training_step_chained', **common, ms=chained * 1e3, images_per_s=a.batch / chained,
             chain=a.chain if 0 < a.chain <= a.steps else a.steps,
             epoch_s=TUTORIAL_TRAIN_IMAGES * chained / a.batch),
    ]


def measure_inference(name: str, cfg: dict, a) -> list:
    model, x, _ = setup(cfg, a.batch, a.size, a.width)
    model.eval()  # no dropout or batch norm here; set for form's sake

    def step():
        with torch.inference_mode(), torch.autocast('cuda', dtype=torch.bfloat16, enabled=cfg['amp']):
            model(x)

    for _ in range(a.warmup):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    times = time_waited(step, a.infer_steps)
    chained = time_chained(step, a.infer_steps, a.chain)
    med = statistics.median(times)
    common = dict(impl='pytorch', config=name, precision=cfg['precision'], batch=a.batch, steps=a.infer_steps,
                  peak_mib=peak_mib())
    return [
        dict(op='inference', **common, ms=med * 1e3, images_per_s=a.batch / med,
             min_ms=min(times) * 1e3, max_ms=max(times) * 1e3),
        dict(op='inference_chained', **common, ms=chained * 1e3, images_per_s=a.batch / chained,
             chain=a.chain if 0 < a.chain <= a.infer_steps else a.infer_steps),
    ]


def free_gpu():
    """Drop the last measurement's tensors so the next one's peak is its own."""
    gc.collect()
    try:
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
    except Exception:  # a broken CUDA context: the next measurement will say so
        pass


def print_entry(e: dict):
    if 'error' in e:
        print(f"{e['config']:<12} {e['op']:<22} batch {e['batch']:>3}  ERROR {e['error'].splitlines()[0]}", flush=True)
        return
    line = f"{e['config']:<12} {e['op']:<22} batch {e['batch']:>3}  {e['ms']:8.3f} ms  {e['images_per_s']:9,.1f} images/s"
    line += f"  peak {e['peak_mib']:7.1f} MiB"
    if 'loss' in e:
        line += f"  loss {e['loss']:.5f}" if e['loss'] is not None else '  loss not finite'
    print(line, flush=True)


def cudnn_string(v) -> str:
    """cuDNN's version number as text: 91900 -> 9.19.0, 8902 -> 8.9.2."""
    if not v:
        return 'none'
    if v >= 90000:
        return f'{v // 10000}.{v % 10000 // 100}.{v % 100}'
    return f'{v // 1000}.{v % 1000 // 100}.{v % 100}'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--size', type=int, default=96)
    ap.add_argument('--width', type=int, default=32)
    ap.add_argument('--steps', type=int, default=30, help='timed training steps, each way')
    ap.add_argument('--infer-steps', type=int, default=50, help='timed inference batches, each way (0: no inference)')
    ap.add_argument('--warmup', type=int, default=10, help='untimed steps before each timing')
    ap.add_argument('--chain', type=int, default=0,
                    help='steps back to back per synchronize in the chained timings (0: all, one synchronize at the end)')
    ap.add_argument('--configs', default=','.join(CONFIGS),
                    help='comma list of ' + ', '.join(CONFIGS) + ' (default: all)')
    ap.add_argument('--json', help='write the results here')
    a = ap.parse_args()
    names = [n.strip() for n in a.configs.split(',') if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown or not names:
        ap.error(f"--configs: unknown {', '.join(unknown) or '(empty)'}; choose from {', '.join(CONFIGS)}")
    if a.steps < 1 or a.infer_steps < 0 or a.warmup < 0 or a.batch < 1:
        ap.error('--steps and --batch must be at least 1, --infer-steps and --warmup at least 0')
    if not torch.cuda.is_available():
        print('pytorch_unet.py: no CUDA device visible to torch', file=sys.stderr)
        sys.exit(1)

    out = {
        'gpu': torch.cuda.get_device_name(0),
        'torch': torch.__version__,
        'cuda': torch.version.cuda,
        'cudnn': torch.backends.cudnn.version(),
        'batch': a.batch, 'size': a.size, 'width': a.width,
        'params': sum(p.numel() for p in UNet(a.width).parameters()),
        'steps': a.steps, 'infer_steps': a.infer_steps, 'warmup': a.warmup, 'chain': a.chain,
        'default_matmul_tf32': DEFAULT_MATMUL_TF32,
        'entries': [],
    }
    print(f"GPU {out['gpu']}; torch {out['torch']}, CUDA {out['cuda']}, cuDNN {cudnn_string(out['cudnn'])}; "
          f"U-Net width {a.width} ({out['params']:,} parameters), batch {a.batch}, {a.size}x{a.size}", flush=True)

    def save():  # after every measurement, so a run cut short keeps what it has
        if a.json:
            with open(a.json, 'w') as f:
                json.dump(out, f, indent=1)

    for name in names:
        cfg = CONFIGS[name]
        phases = [('training_step', measure_training)]
        if a.infer_steps > 0:
            phases.append(('inference', measure_inference))
        for op, measure in phases:
            try:
                apply_backend_flags(cfg)
                if cfg['amp'] and not torch.cuda.is_bf16_supported():
                    raise RuntimeError('bfloat16 is not supported on this GPU')
                entries = measure(name, cfg, a)
            except Exception as e:  # record, and go on with the next measurement
                traceback.print_exc(file=sys.stderr)
                entries = [dict(op=op, impl='pytorch', config=name, precision=cfg['precision'], batch=a.batch,
                                error=f'{type(e).__name__}: {e}')]
            free_gpu()  # after the except block, whose traceback held the tensors
            for e in entries:
                print_entry(e)
                out['entries'].append(e)
            save()
    save()


if __name__ == '__main__':
    main()
