"""Two image-making programs in everyday PyTorch style:

1. a sub-pixel super-resolution net (Conv2d stack ending in PixelShuffle) trained with
   Adam on MSE to upscale blurred synthetic images 2x, PSNR from log10, the whole model
   saved, then reloaded by a separate ``--reload`` run that upscales again;
2. a few DCGAN-style steps: ConvTranspose2d/BatchNorm2d/ReLU generator, Conv2d/
   LeakyReLU/Sigmoid discriminator, weights initialised through ``model.apply``,
   BCELoss with ``torch.full`` labels, generator output detached for the D step.
"""
import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import FRAMEWORK, seeded_init  # noqa: E402

if FRAMEWORK == "torch":
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import torch.optim as optim
else:
    import gradflow as torch
    import gradflow.nn as nn
    import gradflow.nn.functional as F
    import gradflow.optim as optim


def synthetic_images(n, size, seed):
    """Smooth random images: sums of a few oriented sinusoids, in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.zeros((n, 1, size, size), np.float32)
    for k in range(n):
        for _ in range(3):
            fy, fx, ph = rng.uniform(0.5, 3, 2).tolist() + [rng.uniform(0, 2 * math.pi)]
            out[k, 0] += np.sin(2 * math.pi * (fy * yy + fx * xx) + ph)
    return (out - out.min()) / (out.max() - out.min())


class SuperResolution(nn.Module):
    def __init__(self, factor=2):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 5, padding=2)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1)
        self.conv3 = nn.Conv2d(16, factor ** 2, 3, padding=1)
        self.shuffle = nn.PixelShuffle(factor)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        return self.shuffle(self.conv3(x))


def psnr(mse):
    return 10 * torch.log10(1.0 / mse)


def super_resolution(args):
    high = torch.from_numpy(synthetic_images(16, 16, seed=7))
    low = F.avg_pool2d(high, 2)
    criterion = nn.MSELoss()
    path = os.path.join(args.out, "sr_net.pt")
    if args.reload:
        model = torch.load(path, weights_only=False)  # the whole model, pickled by class name
        model.eval()
        with torch.no_grad():
            value = psnr(criterion(model(low), high)).item()
        print(f"reloaded: PSNR {value:.3f} dB")
        return {"reloaded_psnr": value}
    model = seeded_init(SuperResolution(), torch, seed=8)
    optimizer = optim.Adam(model.parameters(), lr=3e-3)
    history = []
    for epoch in range(args.epochs):
        for i in range(0, 16, 4):
            optimizer.zero_grad()
            loss = criterion(model(low[i:i + 4]), high[i:i + 4])
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            history.append(psnr(criterion(model(low), high)).item())
        print(f"epoch {epoch}: PSNR {history[-1]:.3f} dB")
    bicubic = psnr(criterion(F.interpolate(low, scale_factor=2, mode="bilinear",
                                           align_corners=False), high)).item()
    torch.save(model, path)
    return {"psnr": history, "bilinear_psnr": bicubic}


def weights_init(m):
    name = m.__class__.__name__
    if name.find("Conv") != -1:
        nn.init.constant_(m.weight, 0.02)
    elif name.find("BatchNorm") != -1:
        nn.init.constant_(m.weight, 1.0)
        nn.init.constant_(m.bias, 0)


def dcgan_steps(steps=3, nz=8):
    gen = nn.Sequential(
        nn.ConvTranspose2d(nz, 16, 4, 1, 0, bias=False), nn.BatchNorm2d(16), nn.ReLU(True),
        nn.ConvTranspose2d(16, 8, 4, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU(True),
        nn.ConvTranspose2d(8, 1, 4, 2, 1, bias=False), nn.Tanh())
    disc = nn.Sequential(
        nn.Conv2d(1, 8, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(8, 16, 4, 2, 1, bias=False), nn.BatchNorm2d(16), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(16, 1, 4, 1, 0, bias=False), nn.Sigmoid())
    seeded_init(gen, torch, seed=9)
    seeded_init(disc, torch, seed=10)
    disc.apply(weights_init)  # overrides the convs and norms, as DCGAN-style code does
    criterion = nn.BCELoss()
    opt_d = optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = optim.Adam(gen.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = torch.from_numpy(synthetic_images(8, 16, seed=11) * 2 - 1)
    noise = torch.from_numpy(np.random.default_rng(12).normal(size=(8, nz, 1, 1)).astype(np.float32))
    losses = []
    for step in range(steps):
        disc.zero_grad()
        label = torch.full((8,), 1.0, dtype=torch.float)
        err_real = criterion(disc(real).view(-1), label)
        err_real.backward()
        fake = gen(noise)
        label.fill_(0.0)
        err_fake = criterion(disc(fake.detach()).view(-1), label)
        err_fake.backward()
        opt_d.step()
        gen.zero_grad()
        label.fill_(1.0)
        err_g = criterion(disc(fake).view(-1), label)
        err_g.backward()
        opt_g.step()
        losses.append(((err_real + err_fake).item(), err_g.item()))
        print(f"gan step {step}: loss_D {losses[-1][0]:.4f} loss_G {losses[-1][1]:.4f}")
    with torch.no_grad():
        gen.eval()
        samples = gen(noise[:4])
    return {"losses": losses, "samples": samples.numpy().tolist()}


def main(argv=None):
    parser = argparse.ArgumentParser(description="super-resolution and a DCGAN step")
    parser.add_argument("--out", default=".")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--reload", action="store_true")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    results = {"sr": super_resolution(args)}
    if not args.reload:
        results["gan"] = dcgan_steps()
    return results


if __name__ == "__main__":
    RESULTS = main()
