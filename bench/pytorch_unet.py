"""The tutorial's U-Net training step in PyTorch (float32), for comparison on
the same GPU as `npm run bench`.

Same model as src/model/unet.ts (base width 32: 7,759,521 parameters), the
tutorial's Dice loss (smooth = 1, over the whole batch) and Adam in the Keras
form (lr 1e-5, beta1 0.9, beta2 0.999, eps 1e-7). TF32 is switched off so
every product is float32, as in our WGSL kernels. Prints one JSON line per
configuration: images/s and seconds per epoch of the tutorial's 4,508 images,
median of the timed steps after warm-up, each step ending in a synchronise
(as our benchmark's step ends in a GPU round trip); and the rate of `chain`
steps back to back with one synchronise at the end (training_step_chained).

    python3 bench/pytorch_unet.py [--batch 32] [--size 96] [--width 32] [--steps 30] [--json FILE]
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

TUTORIAL_TRAIN_IMAGES = 4508


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


def run(batch: int, size: int, width: int, steps: int, channels_last: bool, chain: int) -> dict:
    dev = torch.device('cuda')
    torch.manual_seed(1)
    model = UNet(width).to(dev)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=1e-5, betas=(0.9, 0.999), eps=1e-7)
    i = torch.arange(batch * size * size, dtype=torch.float32, device=dev)
    x = torch.sin(i * 0.37).reshape(batch, 1, size, size).contiguous(memory_format=fmt)
    y = (((i % (size * size)) % size) > size / 2).float().reshape(batch, 1, size, size).contiguous(memory_format=fmt)

    def record():
        opt.zero_grad(set_to_none=True)
        loss = dice_loss(model(x), y)
        loss.backward()
        opt.step()

    def step():
        record()
        torch.cuda.synchronize()

    for _ in range(5):
        step()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    ips = batch / med
    # `chain` steps back to back with one synchronise at the end, as
    # `npm run bench`'s training_step_chained.
    chained = []
    for _ in range(max(1, steps // chain)):
        t0 = time.perf_counter()
        for _ in range(chain):
            record()
        torch.cuda.synchronize()
        chained.append((time.perf_counter() - t0) / chain)
    chained_med = statistics.median(chained)
    return {
        'impl': 'pytorch' + (' channels_last' if channels_last else ''),
        'batch': batch,
        'size': size,
        'width': width,
        'params': sum(p.numel() for p in model.parameters()),
        'median_ms': med * 1000,
        'min_ms': min(times) * 1000,
        'max_ms': max(times) * 1000,
        'images_per_s': ips,
        'epoch_s': TUTORIAL_TRAIN_IMAGES / ips,
        'peak_memory_mib': torch.cuda.max_memory_allocated() / 2**20,
        'chain': chain,
        'chained_median_ms': chained_med * 1000,
        'images_per_s_chained': batch / chained_med,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--size', type=int, default=96)
    ap.add_argument('--width', type=int, default=32)
    ap.add_argument('--steps', type=int, default=30)
    ap.add_argument('--chain', type=int, default=10, help='steps back to back per synchronise in the chained timing')
    ap.add_argument('--json')
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    info = {'device': torch.cuda.get_device_name(0), 'torch': torch.__version__, 'cudnn': torch.backends.cudnn.version(), 'tf32': False}
    print(json.dumps(info), flush=True)
    results = []
    for cl in (False, True):
        r = run(a.batch, a.size, a.width, a.steps, cl, a.chain)
        results.append(r)
        print(json.dumps(r), flush=True)
    if a.json:
        with open(a.json, 'w') as f:
            json.dump({'info': info, 'results': results}, f, indent=1)


if __name__ == '__main__':
    main()
