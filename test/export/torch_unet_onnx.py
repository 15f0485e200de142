"""The tutorial's U-Net written in PyTorch as its users write it, exported by
torch.onnx.export: the fixture of test/export/torch-onnx.test.ts.

  python3 torch_unet_onnx.py OUT_DIR

writes into OUT_DIR, for each form below, FORM.onnx, FORM-images.npy (the
images it was run on, NCHW, float32) and FORM-probabilities.npy (PyTorch's
own output for them).

Forms (base width 2, input 32 x 32, seeded He-initialised weights, the batch
dimension left dynamic as is usual):
  plain      Conv2d + ReLU, ConvTranspose2d, torch.cat([skip, upsampled]),
             a 1 x 1 Conv2d and a sigmoid: the tutorial's network.
  batchnorm  Conv2d without a bias, BatchNorm2d (running statistics moved
             away from 0 and 1 by a few training-mode passes), ReLU; the
             network exported in inference mode, as PyTorch does by default
             (the exporter folds each normalisation into its convolution).
  half       plain's network in float16 (model.half()), as exported for
             inference on GPUs; its probabilities are those of its float16
             weights computed in float32, as the engine computes.

Made with Debian trixie's python3-torch (2.6) and python3-numpy:
  python3 test/export/torch_unet_onnx.py test/export/torch
"""
import copy
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

WIDTH = 2
SIZE = 32


def block(cin, cout, batchnorm):
    if batchnorm:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        )
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    def __init__(self, width, batchnorm):
        super().__init__()
        widths = [width * 2 ** i for i in range(5)]
        self.down = nn.ModuleList()
        cin = 1
        for w in widths:
            self.down.append(block(cin, w, batchnorm))
            cin = w
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for w in reversed(widths[:-1]):
            self.up.append(nn.ConvTranspose2d(w * 2, w, 2, stride=2))
            self.merge.append(block(w * 2, w, batchnorm))
        self.head = nn.Conv2d(widths[0], 1, 1)

    def forward(self, x):
        skips = []
        for i, level in enumerate(self.down):
            x = level(x)
            if i < len(self.down) - 1:
                skips.append(x)
                x = self.pool(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips)):
            x = merge(torch.cat([skip, up(x)], dim=1))
        return torch.sigmoid(self.head(x))


def make(form):
    """The form's model (seeded) and the images to run it on."""
    batchnorm = form == 'batchnorm'
    torch.manual_seed(1 if batchnorm else 0)
    model = UNet(WIDTH, batchnorm)
    # He initialisation, as U-Net code often asks for, and small biases:
    # activations keep their scale through the levels, so the maps vary.
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, nonlinearity='relu')
            if m.bias is not None:
                nn.init.uniform_(m.bias, -0.1, 0.1)
    images = torch.rand(3, 1, SIZE, SIZE)
    if batchnorm:
        # Running statistics of a few batches, so that the normalisation is not the identity.
        model.train()
        with torch.no_grad():
            for _ in range(3):
                model(torch.rand(4, 1, SIZE, SIZE) * 2 + 0.5)
    return model.eval(), images


def main(out):
    out.mkdir(parents=True, exist_ok=True)
    for form in ['plain', 'batchnorm', 'half']:
        model, images = make('batchnorm' if form == 'batchnorm' else 'plain')
        if form == 'half':
            # Weights and images rounded to float16 for the file; the
            # probabilities of the rounded values in float32, as the engine
            # computes them.
            model.half()
            images = images.half()
            with torch.no_grad():
                probabilities = copy.deepcopy(model).float()(images.float())
        else:
            with torch.no_grad():
                probabilities = model(images)
        torch.onnx.export(
            model, (images,), str(out / f'{form}.onnx'),
            input_names=['image'], output_names=['mask'],
            dynamic_axes={'image': {0: 'batch'}, 'mask': {0: 'batch'}},
            opset_version=17, dynamo=False,
        )
        np.save(out / f'{form}-images.npy', images.float().numpy())
        np.save(out / f'{form}-probabilities.npy', probabilities.numpy())
        print(f'{form}: torch {torch.__version__}, probabilities in [{probabilities.min():.4f}, {probabilities.max():.4f}]')


if __name__ == '__main__':
    main(Path(sys.argv[1]))
