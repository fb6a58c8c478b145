"""Neural style transfer (Gatys, Ecker & Bethge 2016) with a small conv net.

    python examples/style_transfer.py [--fast] [--backend NAME] [--out DIR] [--steps N]

Optimise the *pixels* of an image so that a conv net sees
- the same feature maps as a content image at one layer (the *content*), and
- the same Gram matrices (channel co-activations) as a style image at several
  layers (the *style*: textures, colours, strokes, not their positions).

There is no pretrained VGG here, so the feature extractor is a small conv net
with fixed random weights -- random multi-scale conv features already capture
texture statistics well (Ustyuzhaninov et al., "Texture synthesis using
shallow convolutional networks with random filters", 2016). Both images are
generated: the content is a simple scene of shapes, the style is a colourful
pattern of stripes and dots. A small total-variation penalty keeps the
result from dissolving into pixel noise. Writes OUT/style_transfer.png (content | style |
result | loss curves) and returns the losses.
"""
from __future__ import annotations

import os
import sys

import numpy as np

import gradflow
import gradflow.nn as nn
from gradflow.vis import content_loss, gram_matrix, style_loss
from gradflow.vis._plot import new_figure, save, show

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import Timer, example_parser, parse  # noqa: E402


def content_image(size):
    """A dark-blue sky, a yellow sun and a green hill, values in [0, 1], (3, H, W)."""
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    img = np.stack([0.15 + 0.2 * yy, 0.25 + 0.3 * yy, 0.55 + 0.2 * (1 - yy)])
    sun = (xx - 0.7) ** 2 + (yy - 0.3) ** 2 < 0.15 ** 2
    img[:, sun] = np.array([1.0, 0.85, 0.2])[:, None]
    hill = yy > 0.75 - 0.25 * np.exp(-((xx - 0.3) / 0.3) ** 2)
    img[:, hill] = np.array([0.2, 0.6, 0.25])[:, None]
    return img.astype(np.float32)


def style_image(size):
    """Diagonal red/orange/purple stripes with white dots: a strong, obvious texture."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    band = ((xx + yy) // max(size // 8, 2)).astype(int) % 3
    palette = np.array([[0.85, 0.15, 0.2], [0.95, 0.6, 0.1], [0.45, 0.2, 0.6]])
    img = palette[band].transpose(2, 0, 1)
    period = max(size // 6, 3)
    dots = ((xx % period - period / 2) ** 2 + (yy % period - period / 2) ** 2) < (period / 5) ** 2
    img[:, dots] = 1.0
    return img.astype(np.float32)


class Features(nn.Module):
    """Three conv blocks (a 5x5 conv, then two 3x3 convs after 2x2 average pools) with
    fixed random weights; returns every block's output."""

    def __init__(self, seed=0, width=32, k1=3):
        super().__init__()
        gradflow.manual_seed(seed)
        w = width
        self.block1 = nn.Sequential(nn.Conv2d(3, w, k1, padding=k1 // 2), nn.ReLU())
        self.block2 = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU())
        self.block3 = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(2 * w, 2 * w, 3, padding=1),
                                    nn.ReLU())
        for p in self.parameters():
            p.requires_grad = False

    def forward(self, x):
        f1 = self.block1(x)
        f2 = self.block2(f1)
        f3 = self.block3(f2)
        return [f1, f2, f3]


def total_variation(x):
    """Mean squared difference of neighbouring pixels: penalises pixel noise."""
    dh = x[:, :, 1:, :] - x[:, :, :-1, :]
    dw = x[:, :, :, 1:] - x[:, :, :, :-1]
    return (dh * dh).mean() + (dw * dw).mean()


def transfer(size=48, steps=200, lr=0.02, style_weight=1e6, content_weight=1.0, tv_weight=0.1,
             seed=0, log_every=0, width=32, k1=5):
    net = Features(seed, width, k1)
    content = gradflow.tensor(content_image(size)[None])
    style = gradflow.tensor(style_image(size)[None])
    with gradflow.no_grad():
        content_target = net(content)[1]                    # content: block 2's maps
        style_targets = [gram_matrix(f) for f in net(style)]  # style: all three blocks
    x = content.detach()
    x.requires_grad = True                                  # start from the content image
    opt = gradflow.optim.Adam([x], lr=lr)
    history = []
    for step in range(steps):
        opt.zero_grad()
        feats = net(x)
        lc = content_loss(feats[1], content_target) * content_weight
        ls = style_loss(feats, style_targets) * style_weight
        (lc + ls + total_variation(x) * tv_weight).backward()
        opt.step()
        with gradflow.no_grad():
            x.data = x.data.clip(0.0, 1.0)
        history.append((float(lc.item()), float(ls.item())))
        if log_every and step % log_every == 0:
            print(f"step {step:4d}  content {history[-1][0]:.4f}  style {history[-1][1]:.4f}")
    with gradflow.no_grad():
        feats = net(x)
        final = (float(content_loss(feats[1], content_target).item() * content_weight),
                 float(style_loss(feats, style_targets).item() * style_weight))
        start_feats = net(content)
        style_of_content = float(style_loss(start_feats, style_targets).item() * style_weight)
        content_of_style = float(content_loss(net(style)[1], content_target).item()
                                 * content_weight)
    return dict(image=x.detach().numpy()[0], content=content.numpy()[0], style=style.numpy()[0],
                history=history, final_content_loss=final[0], final_style_loss=final[1],
                initial_style_loss=style_of_content, style_image_content_loss=content_of_style)


def plot(res, path):
    fig = new_figure(10, 2.6)
    for i, (key, title) in enumerate([("content", "content"), ("style", "style"),
                                      ("image", "result")]):
        show(fig.add_subplot(1, 4, i + 1), np.clip(res[key].transpose(1, 2, 0), 0, 1), title)
    ax = fig.add_subplot(1, 4, 4)
    h = np.array(res["history"])
    ax.semilogy(h[:, 1], label="style")
    ax.semilogy(np.maximum(h[:, 0], 1e-8), label="content")
    ax.set_xlabel("step", fontsize=8)
    ax.legend(fontsize=7)
    ax.tick_params(labelsize=7)
    ax.set_title("losses", fontsize=8)
    return save(fig, path)


def main(argv=None):
    ap = example_parser(__doc__, takes="about 30 s", fast_takes="about 15 s")
    ap.add_argument("--out", default="runs/vis")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--size", type=int, default=None)
    args = parse(ap, argv)
    size = args.size or (24 if args.fast else 48)
    steps = args.steps or (30 if args.fast else 200)
    res = transfer(size=size, steps=steps, log_every=0 if args.fast else 50)
    res["png"] = plot(res, os.path.join(args.out, "style_transfer.png"))
    print(f"style loss {res['initial_style_loss']:.4f} -> {res['final_style_loss']:.4f}, "
          f"content loss 0 -> {res['final_content_loss']:.4f}; wrote {res['png']}")
    return res


if __name__ == "__main__":
    with Timer("style_transfer"):
        main(sys.argv[1:])
