"""Saliency maps: which pixels does the LeNet's class score depend on?

    python examples/vis_saliency.py [--fast] [--backend NAME] [--out DIR]

Trains (or loads) a LeNet-5 on the bundled digits and draws |d score / d pixel|
for a few test digits (the score is the logit of the predicted class).
Writes OUT/saliency.png. Also checks the map against a finite difference:
nudging the most salient pixel changes the score more than nudging a pixel
with zero saliency.
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gradflow  # noqa: E402
from gradflow.vis import plot_saliency, saliency  # noqa: E402
from _common import Timer, example_parser, parse  # noqa: E402
from vis_common import add_common_args, lenet_from_args  # noqa: E402


def main(argv=None):
    ap = add_common_args(example_parser(
        __doc__, takes="about 10 s once the LeNet is cached in OUT (training it adds about 25 s)",
        fast_takes="about 8 s (the same caveat)"))
    ap.add_argument("--n", type=int, default=8)
    args = parse(ap, argv)
    model, (x_test, y_test) = lenet_from_args(args)
    x = gradflow.tensor(x_test[:args.n])
    with gradflow.no_grad():
        pred = model(x).numpy().argmax(1)
    sal = saliency(model, x, target=pred)
    s = sal.numpy()
    path = os.path.join(args.out, "saliency.png")
    plot_saliency(x, sal, path=path, titles=[f"pred {p}" for p in pred])
    # finite-difference sanity check on the first digit
    flat = s[0, 0].ravel()
    hi = int(flat.argmax())
    lo = int(np.flatnonzero(flat == flat.min())[0])

    def score_change(pixel, h=1e-2):
        xp = x_test[:1].copy()
        xp[0, 0].ravel()[pixel] += h
        with gradflow.no_grad():
            a = model(gradflow.tensor(x_test[:1])).numpy()[0, pred[0]]
            b = model(gradflow.tensor(xp)).numpy()[0, pred[0]]
        return abs(b - a) / h
    fd_hi, fd_lo = score_change(hi), score_change(lo)
    print(f"saliency of {args.n} digits -> {path}; most salient pixel: |d score/dx| = "
          f"{flat[hi]:.3f} (finite difference {fd_hi:.3f}), least salient {flat[lo]:.3f} "
          f"(finite difference {fd_lo:.3f})")
    return dict(png=path, saliency=s, pred=pred, fd_hi=float(fd_hi), fd_lo=float(fd_lo),
                grad_hi=float(flat[hi]))


if __name__ == "__main__":
    with Timer("vis_saliency"):
        main(sys.argv[1:])
