"""Reconstructing digits from their features, shallow to deep (Mahendran & Vedaldi 2015).

    python examples/vis_inversion.py [--fast] [--backend NAME] [--out DIR] [--steps 200] [--tv 0.01]

Trains (or loads) a LeNet-5 on the bundled digits, takes held-out digits, and
for each of conv1, conv2 (after their ReLUs), fc1 and fc2 starts from noise and
descends ||phi(x) - phi(digit)||^2 / ||phi(digit)||^2 + tv * TV(x) with Adam on
the pixels. Writes OUT/inversion.png: one row per digit, the original then the
reconstruction from each layer, titled with the final feature loss. Prints
each reconstruction's correlation with the original: the deeper the layer, the
more the image is free to change as long as the network sees the same thing.
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gradflow  # noqa: E402
from gradflow.vis import invert_features  # noqa: E402
from gradflow.vis._plot import new_figure, save, show  # noqa: E402
from vis_common import add_common_args, lenet_from_args  # noqa: E402
from _common import Timer, example_parser, parse  # noqa: E402

LAYERS = (("1", "conv1"), ("4", "conv2"), ("8", "fc1"), ("10", "fc2"))


def main(argv=None):
    ap = add_common_args(example_parser(
        __doc__, takes="a few minutes (12 reconstructions of 200 steps)",
        fast_takes="about 20 s"))
    ap.add_argument("--steps", type=int, default=None, help="Adam steps (default 200)")
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--tv", type=float, default=0.01, help="total-variation weight")
    args = parse(ap, argv)
    model, (x_test, y_test) = lenet_from_args(args)
    steps = args.steps or (40 if args.fast else 200)
    picks = [0, 1] if args.fast else [0, 1, 2]
    layers = LAYERS[:3:2] if args.fast else LAYERS
    fig = new_figure(1.5 * (len(layers) + 1) + 0.3, 1.7 * len(picks) + 0.3)
    results = []
    for r, i in enumerate(picks):
        img = gradflow.tensor(x_test[i:i + 1])
        show(fig.add_subplot(len(picks), len(layers) + 1, r * (len(layers) + 1) + 1),
             x_test[i, 0], f"digit {y_test[i]}")
        for q, (layer, label) in enumerate(layers):
            rec, hist = invert_features(model, img, layer, steps=steps, lr=args.lr, tv=args.tv,
                                        seed=i, return_history=True)
            with gradflow.no_grad():
                pred = int(model(rec).numpy().argmax())
            corr = float(np.corrcoef(rec.numpy().ravel(), x_test[i].ravel())[0, 1])
            results.append(dict(digit=i, layer=label, loss_start=hist[0], loss_end=hist[-1],
                                corr=corr, pred=pred, label=int(y_test[i])))
            show(fig.add_subplot(len(picks), len(layers) + 1, r * (len(layers) + 1) + q + 2),
                 rec.numpy()[0, 0], f"{label}: loss {hist[-1]:.3f}")
            print(f"digit {i} ({y_test[i]}) from {label}: feature loss {hist[0]:.3f} -> "
                  f"{hist[-1]:.4f}, correlation with the digit {corr:.2f}, classified {pred}")
    path = save(fig, os.path.join(args.out, "inversion.png"))
    print(f"wrote {path}")
    return dict(png=path, results=results)


if __name__ == "__main__":
    with Timer("vis_inversion"):
        main(sys.argv[1:])
