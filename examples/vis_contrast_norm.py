"""Local contrast normalisation: a strip of digits under uneven lighting, before and after.

    python examples/vis_contrast_norm.py [--fast] [--backend NAME]
           [--out DIR] [--size 9] [--sigma 3]

Six bundled digits are laid side by side and lit badly: the contrast falls from
left to right by a factor of 20 and a brightness ramp runs across the strip.
``gradflow.nn.LocalContrastNorm2d`` (a Gaussian-weighted local mean subtracted,
then a division by the Gaussian-weighted local standard deviation, floored at
its mean) undoes both. Writes OUT/contrast_norm.png (input | subtractive only |
subtractive + divisive) and prints each digit's contrast (mean of its stroke
pixels minus mean of its background) in the input and the outputs.
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gradflow  # noqa: E402
import gradflow.nn as nn  # noqa: E402
from gradflow.vis._plot import new_figure, save, show  # noqa: E402
from vis_common import load_digits  # noqa: E402
from _common import Timer, example_parser, parse  # noqa: E402


def badly_lit_strip(n=6, seed=0):
    """n digits side by side, (1, 1, 28, 28 n): contrast 1 -> 1/20 left to right, plus a
    brightness ramp of 3 across the strip. Also returns the clean strip (the ink)."""
    x, _ = load_digits()
    pick = np.random.RandomState(seed).choice(len(x), n, replace=False)
    contrast = np.geomspace(1.0, 0.05, n)
    ink = np.concatenate([x[i, 0] for i in pick], axis=1)
    strip = ink * np.repeat(contrast, 28)[None, :]
    ramp = np.linspace(0.0, 3.0, strip.shape[1])[None, :] + np.linspace(0, 0.5, 28)[:, None]
    return (strip + ramp)[None, None].astype(np.float32), ink


def per_digit_contrast(img, ink, n):
    """Mean of the stroke pixels minus mean of the nearby background, per digit."""
    out = []
    for k in range(n):
        a, m = img[0, 0, :, k * 28:(k + 1) * 28], ink[:, k * 28:(k + 1) * 28]
        out.append(float(a[m > 0.5].mean() - a[m < 0.05].mean()))
    return out


def main(argv=None):
    ap = example_parser(
        __doc__, takes="about 5 s",
        fast_takes="about 5 s (the same run)")
    ap.add_argument("--out", default="runs/vis", help="folder for the PNG (default runs/vis)")
    ap.add_argument("--size", type=int, default=9, help="window side, odd (default 9)")
    ap.add_argument("--sigma", type=float, default=3.0, help="window std in pixels (default 3)")
    args = parse(ap, argv)
    n = 6
    x, ink = badly_lit_strip(n)
    sub = nn.LocalContrastNorm2d(args.size, args.sigma, divisive=False)
    full = nn.LocalContrastNorm2d(args.size, args.sigma)
    with gradflow.no_grad():
        xs = gradflow.tensor(x)
        v, y = sub(xs).numpy(), full(xs).numpy()
    c_in, c_sub, c_out = (per_digit_contrast(a, ink, n) for a in (x, v, y))
    fig = new_figure(1.3 * n + 0.4, 4.6)
    for row, (img, title) in enumerate([
            (x, "input: contrast x1 ... x1/20, plus a brightness ramp"),
            (v, "subtractive: x - local mean"),
            (y, f"subtractive + divisive: LocalContrastNorm2d({args.size}, {args.sigma:g})")]):
        show(fig.add_subplot(3, 1, row + 1), img[0, 0], title)
    path = save(fig, os.path.join(args.out, "contrast_norm.png"))
    spread = lambda c: max(c) / min(c)
    print("per-digit contrast (stroke - background), left to right:")
    for name, c in (("input", c_in), ("subtractive", c_sub), ("lcn", c_out)):
        print(f"  {name:12s}" + "  ".join(f"{v:6.3f}" for v in c) + f"   max/min {spread(c):.1f}")
    print(f"wrote {path}")
    return dict(png=path, contrast_in=c_in, contrast_sub=c_sub, contrast_out=c_out,
                output=y)


if __name__ == "__main__":
    with Timer("vis_contrast_norm"):
        main(sys.argv[1:])
