"""SGD, momentum and Adam on the 2-D loss surface of a tiny model.

    python examples/optimizer_paths.py [--fast] [--backend NAME] [--out DIR] [--steps 60]

The model is a straight line y = w x + b (``nn.Linear(1, 1)``: two parameters)
fitted by mean squared error to 64 noisy points with x in [1, 4]. Because the
x are far from 0, w and b trade off against each other: the loss surface is a
long, narrow, tilted valley (Hessian eigenvalues about 8 and 0.1). From the
same start, gradflow's SGD, SGD with momentum 0.9 and Adam run for --steps
full-batch steps. Writes OUT/optimizer_paths.png: the loss contours with the
three paths, and prints each one's final loss and distance to the minimum.
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gradflow  # noqa: E402
import gradflow.nn as nn  # noqa: E402
import gradflow.nn.functional as F  # noqa: E402
from gradflow.vis.optimizer_paths import (loss_surface, optimizer_path,  # noqa: E402
                                          plot_optimizer_paths)
from _common import Timer, example_parser, parse  # noqa: E402

OPTIMIZERS = {
    "SGD lr 0.11": lambda p: gradflow.optim.SGD(p, lr=0.11),
    "SGD + momentum 0.9, lr 0.05": lambda p: gradflow.optim.SGD(p, lr=0.05, momentum=0.9),
    "Adam lr 0.2": lambda p: gradflow.optim.Adam(p, lr=0.2),
}


def line_data(n=64, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.uniform(1.0, 4.0, (n, 1))
    y = 1.5 * x - 2.0 + 0.3 * rng.standard_normal((n, 1))
    return x.astype(np.float64), y.astype(np.float64)


def main(argv=None):
    ap = example_parser(
        __doc__, takes="about 20 s",
        fast_takes="about 10 s")
    ap.add_argument("--out", default="runs/vis", help="folder for the PNG (default runs/vis)")
    ap.add_argument("--steps", type=int, default=None, help="steps per optimiser (default 60)")
    args = parse(ap, argv)
    steps = args.steps or (30 if args.fast else 60)
    x, y = line_data()
    xt, yt = gradflow.tensor(x), gradflow.tensor(y)
    model = nn.Linear(1, 1, dtype="float64")

    def loss_fn(m):
        return F.mse_loss(m(xt), yt)

    # the least-squares line, for reference
    a = np.hstack([x, np.ones_like(x)])
    best = np.linalg.lstsq(a, y, rcond=None)[0].ravel()
    start = (-1.0, 4.0)
    paths, finals = {}, {}
    for name, make in OPTIMIZERS.items():
        p, losses = optimizer_path(model, loss_fn, make, start, steps)
        paths[name], finals[name] = p, losses[-1]
        print(f"{name:30s} final loss {losses[-1]:.4f}, distance to the minimum "
              f"{np.linalg.norm(p[-1] - best):.3f}")
    n = 60 if args.fast else 200
    ws, bs = np.linspace(-2.0, 3.5, n), np.linspace(-5.0, 5.0, n)
    z = loss_surface(model, loss_fn, ws, bs)
    path = os.path.join(args.out, "optimizer_paths.png")
    fig = plot_optimizer_paths(ws, bs, z, paths, path=None,
                               title=f"MSE of a line y = w x + b; {steps} full-batch steps each")
    ax = fig.axes[0]
    ax.plot(*best, "rx", ms=9, label="minimum")
    ax.set_xlabel("w", fontsize=8)
    ax.set_ylabel("b", fontsize=8)
    ax.legend(fontsize=8)
    from gradflow.vis._plot import save
    save(fig, path)
    print(f"least squares: w = {best[0]:.3f}, b = {best[1]:.3f}; wrote {path}")
    return dict(png=path, paths=paths, final_loss=finals, minimum=best, surface=(ws, bs, z),
                start=start)


if __name__ == "__main__":
    with Timer("optimizer_paths"):
        main(sys.argv[1:])
