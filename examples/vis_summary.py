"""Model summaries: parameters and FLOPs per layer, LeNet-5 and AlexNet.

    python examples/vis_summary.py [--fast] [--backend NAME] [--out DIR]

Prints gradflow.summary() tables for LeNet-5 (1x28x28) and AlexNet (3x227x227,
60,965,224 parameters) and writes OUT/summary_alexnet.png: per-layer parameters
and FLOPs side by side -- the convolutions do almost all the arithmetic, the
fully connected layers hold almost all the parameters.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gradflow  # noqa: E402
from gradflow.vis._plot import new_figure, save  # noqa: E402
from gradflow.nn.models import alexnet  # noqa: E402
from _common import Timer, example_parser, parse  # noqa: E402
from vis_common import lenet5  # noqa: E402


def plot(s, path, title):
    rows = [r for r in s.rows if r.params or r.type in ("Conv2d", "Linear")]
    names = [f"{r.type[:6]} {r.name}" for r in rows]
    fig = new_figure(9, 3.2)
    for i, (key, label) in enumerate([("params", "parameters"), ("flops", "forward FLOPs")]):
        ax = fig.add_subplot(1, 2, i + 1)
        vals = [getattr(r, key) for r in rows]
        total = sum(getattr(r, key) for r in s.rows)
        colors = ["tab:blue" if r.type == "Conv2d" else "tab:orange" for r in rows]
        ax.barh(range(len(rows)), vals, color=colors)
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels(names, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"{label} (total {total:,})", fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
        for j, v in enumerate(vals):
            ax.text(v, j, f" {v / total:.0%}", va="center", fontsize=6)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.94))  # keep the subplot titles clear of the figure title
    return save(fig, path)


def main(argv=None):
    ap = example_parser(__doc__, takes="about 15 s", fast_takes="the same (it is already fast)")
    ap.add_argument("--out", default="runs/vis")
    args = parse(ap, argv)
    s_lenet = gradflow.summary(lenet5(), (1, 28, 28), verbose=0)
    print("LeNet-5\n" + str(s_lenet) + "\n")
    s_alex = gradflow.summary(alexnet(), (3, 227, 227), verbose=0)
    print("AlexNet\n" + str(s_alex))
    path = plot(s_alex, os.path.join(args.out, "summary_alexnet.png"),
                "AlexNet: convolutions hold the FLOPs, fully connected layers the parameters")
    print(f"wrote {path}")
    return dict(png=path, lenet=s_lenet, alexnet=s_alex)


if __name__ == "__main__":
    with Timer("vis_summary"):
        main(sys.argv[1:])
