"""A targeted adversarial patch (Brown et al. 2017) against a LeNet-5 on the digits.

    python examples/vis_adversarial_patch.py [--fast] [--backend NAME]
           [--out DIR] [--size 10] [--target 8]

Trains (or loads) a LeNet-5 on the bundled digits, then learns a --size x --size
square of pixels (Adam on the pixels, kept in [0, 1]) so that pasting it at a
random place on a digit makes the net answer --target: each step pastes it at
a fresh random place on each digit of a batch of training digits and climbs
the target's log-probability. Reports, on the held-out digits of other
classes with the patch at 4 random places each, how often the answer becomes
the target -- for the learned patch and for a random patch of the same size.
Writes OUT/adversarial_patch.png (the patch, patched digits with predictions).
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gradflow  # noqa: E402
from gradflow.vis import adversarial_patch, paste_patch, patch_success_rate  # noqa: E402
from gradflow.vis._plot import new_figure, save, show  # noqa: E402
from vis_common import add_common_args, lenet_from_args, load_digits, split  # noqa: E402
from _common import Timer, example_parser, parse  # noqa: E402


def main(argv=None):
    ap = add_common_args(example_parser(
        __doc__, takes="about 6 min on a busy machine (344 s measured; 300 patch steps)",
        fast_takes="about 30 s"))
    ap.add_argument("--size", type=int, default=10, help="patch side in pixels (default 10)")
    ap.add_argument("--target", type=int, default=8, help="class to force (default 8)")
    ap.add_argument("--steps", type=int, default=None, help="patch steps (default 300)")
    ap.add_argument("--lr", type=float, default=0.1)
    args = parse(ap, argv)
    model, (x_test, y_test) = lenet_from_args(args)
    (x_train, _), _ = split(*load_digits())
    steps = args.steps or (60 if args.fast else 300)
    patch, hist = adversarial_patch(model, gradflow.tensor(x_train[:1000]), args.target,
                                    args.size, steps=steps, lr=args.lr, return_history=True)
    rand = gradflow.tensor(np.random.RandomState(1).rand(1, args.size, args.size)
                           .astype(np.float32))
    n = 200 if args.fast else 500
    xs = gradflow.tensor(x_test[:n])
    learned = patch_success_rate(model, xs, y_test[:n], patch, args.target)
    random_ = patch_success_rate(model, xs, y_test[:n], rand, args.target)
    with gradflow.no_grad():
        clean = float((model(xs).numpy().argmax(1) == args.target)[y_test[:n] != args.target]
                      .mean())
    print(f"{args.size}x{args.size} patch, target {args.target}, {steps} steps: target "
          f"log-prob {np.mean(hist[:10]):.2f} (first 10 steps) -> {np.mean(hist[-10:]):.2f} "
          f"(last 10)")
    print(f"held-out digits of other classes answered {args.target}: no patch {clean:.1%}, "
          f"random patch {random_:.1%}, learned patch {learned:.1%}")
    # the picture: the patch, then digits with the patch at random places -- the first
    # four it turned into the target and the first two it did not
    rng = np.random.RandomState(3)
    pool = np.flatnonzero(y_test[:n] != args.target)[:60]
    tops = rng.randint(0, 28 - args.size + 1, len(pool))
    lefts = rng.randint(0, 28 - args.size + 1, len(pool))
    with gradflow.no_grad():
        pasted = paste_patch(gradflow.tensor(x_test[pool]), patch, tops, lefts).numpy()
        pred = model(gradflow.tensor(pasted)).numpy().argmax(1)
    hit = np.flatnonzero(pred == args.target)
    miss = np.flatnonzero(pred != args.target)
    pick = np.concatenate([hit[:4], miss[:6 - min(len(hit), 4)]])
    show_idx, pasted, pred = pool[pick], pasted[pick], pred[pick]
    fig = new_figure(1.5 * 7 + 0.3, 2.0)
    show(fig.add_subplot(1, 7, 1), patch.numpy()[0], f"patch → {args.target}")
    for i in range(len(show_idx)):
        ax = fig.add_subplot(1, 7, i + 2)
        show(ax, pasted[i, 0], f"{y_test[show_idx[i]]} → {pred[i]}")
        if pred[i] == args.target:
            ax.title.set_color("crimson")
    path = save(fig, os.path.join(args.out, "adversarial_patch.png"))
    print(f"wrote {path}")
    return dict(png=path, learned=learned, random=random_, clean=clean, history=hist,
                patch=patch.numpy())


if __name__ == "__main__":
    with Timer("vis_adversarial_patch"):
        main(sys.argv[1:])
