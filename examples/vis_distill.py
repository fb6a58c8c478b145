"""Dataset distillation (Wang et al. 2018): ten synthetic digits that train a network.

    python examples/vis_distill.py [--fast] [--backend NAME]
           [--out DIR] [--steps 300] [--per-class 1]

Learns --per-class synthetic images per digit class and one learning rate such
that a freshly initialised MLP (784-64-10, a new random initialisation at every
step), trained on them alone with 5 full-batch gradient steps, classifies the
real training digits well; the outer gradient goes back through the 5 steps
(``create_graph=True``). Then trains 5 fresh MLPs (unseen initialisations) on
the distilled images and, for comparison, on the same number of random real
training digits (one draw per net; the best learning rate of a small grid, and
the learned one), 5 steps each, and reports their accuracy on the 500 held-out
digits. Writes OUT/distill.png: the distilled images and the accuracies.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gradflow  # noqa: E402
from gradflow.vis._plot import new_figure, save, show  # noqa: E402
from gradflow.vis.distill import distill_dataset, mlp_forward, mlp_init, train_on  # noqa: E402
from vis_common import load_digits, split  # noqa: E402
from _common import Timer, example_parser, parse  # noqa: E402

INNER_STEPS = 5


def accuracy_after_training(x, y, lr, seed, x_test, y_test):
    params = train_on(mlp_forward, mlp_init(10_000 + seed), gradflow.tensor(x),
                      gradflow.tensor(y), lr, INNER_STEPS)
    with gradflow.no_grad():
        pred = mlp_forward(params, gradflow.tensor(x_test)).numpy().argmax(1)
    return float((pred == y_test).mean())


def main(argv=None):
    ap = example_parser(
        __doc__, takes="about 4 min (the distillation took 183 s)",
        fast_takes="about 30 s")
    ap.add_argument("--out", default="runs/vis", help="folder for the PNG (default runs/vis)")
    ap.add_argument("--steps", type=int, default=None, help="distillation steps (default 300)")
    ap.add_argument("--per-class", type=int, default=1, help="synthetic images per class")
    ap.add_argument("--lr", type=float, default=0.02, help="Adam lr for the images")
    ap.add_argument("--nets", type=int, default=5, help="fresh nets to evaluate with")
    args = parse(ap, argv)
    steps = args.steps or (60 if args.fast else 300)
    (xtr, ytr), (xte, yte) = split(*load_digits())
    t0 = time.perf_counter()
    images, labels, eta, hist = distill_dataset(
        mlp_init, mlp_forward, gradflow.tensor(xtr), gradflow.tensor(ytr), 10,
        per_class=args.per_class, inner_steps=INNER_STEPS, outer_steps=steps, lr=args.lr,
        log=None if args.fast else 50)
    print(f"distilled {len(labels.numpy())} images in {steps} steps "
          f"({time.perf_counter() - t0:.0f} s); learned lr {eta:.3f}")
    nets = range(args.nets)
    distilled = [accuracy_after_training(images.numpy(), labels.numpy(), eta, s, xte, yte)
                 for s in nets]
    rng = np.random.RandomState(0)
    draws = [np.concatenate([rng.choice(np.flatnonzero(ytr == c), args.per_class,
                                        replace=False) for c in range(10)]) for _ in nets]
    real = {}
    for lr in (0.1, 0.3, 1.0, eta):
        real[lr] = [accuracy_after_training(xtr[d], ytr[d], lr, s, xte, yte)
                    for s, d in zip(nets, draws)]
    best_lr = max(real, key=lambda k: np.mean(real[k]))
    m = len(labels.numpy())
    print(f"accuracy on {len(yte)} held-out digits after {INNER_STEPS} steps from a fresh MLP "
          f"(mean of {args.nets} nets):")
    print(f"  {m} distilled images, learned lr {eta:.2f}: {np.mean(distilled):.1%} "
          f"(min {min(distilled):.1%})")
    for lr, accs in real.items():
        print(f"  {m} random real images, lr {lr:.2f}: {np.mean(accs):.1%}")
    n_show = min(m, 20)
    cols = 10
    rows = -(-n_show // cols)
    fig = new_figure(1.2 * cols + 0.3, 1.4 * rows + 0.7)
    for i in range(n_show):
        show(fig.add_subplot(rows, cols, i + 1), images.numpy()[i, 0], f"{labels.numpy()[i]}")
    fig.suptitle(f"{m} distilled digits: a fresh MLP trained on them for {INNER_STEPS} steps "
                 f"(lr {eta:.2f}) gets {np.mean(distilled):.0%} on held-out digits; "
                 f"{m} random real digits: {np.mean(real[best_lr]):.0%}", fontsize=9)
    path = save(fig, os.path.join(args.out, "distill.png"))
    print(f"wrote {path}")
    return dict(png=path, distilled=distilled, real=real, best_real_lr=best_lr, eta=eta,
                history=hist, images=images.numpy())


if __name__ == "__main__":
    with Timer("vis_distill"):
        main(sys.argv[1:])
