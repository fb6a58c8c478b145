"""Receptive fields of LeNet-5, drawn on a digit.

    python examples/vis_receptive_field.py [--fast] [--backend NAME] [--out DIR]

Prints gradflow.vis.receptive_field() for LeNet-5 on 28x28 input and writes
OUT/receptive_field.png: a test digit with, for each conv/pool layer, the
square of input pixels that the unit nearest the centre can see.
conv 5x5 -> 5, pool 2x2 -> 6 (= P + K - 1), conv 5x5 -> 14, pool 2x2 -> 16.
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gradflow.vis import receptive_field  # noqa: E402
from gradflow.vis._plot import new_figure, save  # noqa: E402
from _common import Timer, example_parser, parse  # noqa: E402
from vis_common import lenet5, load_digits  # noqa: E402


def main(argv=None):
    ap = example_parser(__doc__, takes="about 6 s", fast_takes="the same (it is already fast)")
    ap.add_argument("--out", default="runs/vis")
    args = parse(ap, argv)
    rf = receptive_field(lenet5(), (1, 28, 28))
    print(rf)
    x, y = load_digits()
    k = int(np.flatnonzero(y == 3)[5])
    img = x[k, 0]
    fig = new_figure(4.2, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(img, cmap="gray_r", extent=(-0.5, 27.5, 27.5, -0.5))
    from matplotlib.patches import Rectangle
    colors = ["tab:blue", "tab:green", "tab:orange", "tab:red"]
    drawn = []
    for row in rf.rows[1:]:
        if row.covers_input or row.type not in ("Conv2d", "MaxPool2d"):
            continue
        # the unit whose field centre is nearest the image centre (13.5, 13.5)
        i = round((13.5 - row.start[0]) / row.jump[0])
        c = row.start[0] + i * row.jump[0]
        r = row.size[0]
        col = colors[len(drawn) % len(colors)]
        ax.add_patch(Rectangle((c - r / 2, c - r / 2), r, r, fill=False, lw=2, ec=col,
                               label=f"{row.type} {row.name}: {r}x{r}"))
        drawn.append((row.name, r))
    ax.set_xlim(-3, 30)
    ax.set_ylim(30, -3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"LeNet-5 receptive fields (digit {y[k]})", fontsize=9)
    path = save(fig, os.path.join(args.out, "receptive_field.png"))
    print(f"wrote {path}")
    return dict(png=path, rf=rf, drawn=drawn)


if __name__ == "__main__":
    with Timer("vis_receptive_field"):
        main(sys.argv[1:])
