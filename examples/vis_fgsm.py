"""Adversarial digits with the fast gradient sign method.

    python examples/vis_fgsm.py [--fast] [--backend NAME] [--eps 0.2] [--out DIR]

Trains (or loads) a LeNet-5 on the bundled MNIST digits, then moves every pixel
of correctly classified test digits by +/-eps in the direction that raises the
loss: x_adv = clip(x + eps * sign(dLoss/dx), 0, 1). Writes OUT/fgsm.png: the
clean digit with its prediction and confidence, the perturbation, and the
adversarial digit with the new (wrong) prediction and its confidence. Prints
how many of the correctly classified test digits flip.
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gradflow  # noqa: E402
from gradflow.vis import fgsm, plot_fgsm  # noqa: E402
from _common import Timer, example_parser, parse  # noqa: E402
from vis_common import add_common_args, lenet_from_args  # noqa: E402


def main(argv=None):
    ap = add_common_args(example_parser(
        __doc__, takes="about 35 s, of which about 25 s train the LeNet it caches in OUT",
        fast_takes="about 15 s"))
    ap.add_argument("--eps", type=float, default=0.2)
    ap.add_argument("--n", type=int, default=200, help="test digits to attack")
    args = parse(ap, argv)
    model, (x_test, y_test) = lenet_from_args(args)
    x = gradflow.tensor(x_test[:args.n])
    y = gradflow.tensor(y_test[:args.n])
    x_adv = fgsm(model, x, y, args.eps, clip=(0.0, 1.0))
    with gradflow.no_grad():
        p_clean = model(x).softmax(dim=1).numpy()
        p_adv = model(x_adv).softmax(dim=1).numpy()
    pred_clean, pred_adv = p_clean.argmax(1), p_adv.argmax(1)
    correct = pred_clean == y_test[:args.n]
    flipped = correct & (pred_adv != y_test[:args.n])
    flip_rate = float(flipped.sum() / max(correct.sum(), 1))
    # show the first six digits that were right and became wrong
    show = np.flatnonzero(flipped)[:6]
    if len(show) == 0:
        show = np.flatnonzero(correct)[:6]
    path = os.path.join(args.out, "fgsm.png")
    plot_fgsm(x_test[show], x_adv.numpy()[show], p_clean[show], p_adv[show], path=path)
    print(f"eps={args.eps}: clean accuracy {correct.mean():.1%}; FGSM flips "
          f"{flipped.sum()} of {correct.sum()} correctly classified digits ({flip_rate:.0%}); "
          f"accuracy under attack {(pred_adv == y_test[:args.n]).mean():.1%}")
    for i in show[:3]:
        print(f"  digit {y_test[i]}: clean -> {pred_clean[i]} ({p_clean[i].max():.0%}), "
              f"adversarial -> {pred_adv[i]} ({p_adv[i].max():.0%})")
    print(f"wrote {path}")
    return dict(png=path, flip_rate=flip_rate, clean_accuracy=float(correct.mean()),
                adv_accuracy=float((pred_adv == y_test[:args.n]).mean()),
                max_perturbation=float(np.abs(x_adv.numpy() - x_test[:args.n]).max()))


if __name__ == "__main__":
    with Timer("vis_fgsm"):
        main(sys.argv[1:])
