"""Activation maximisation: the input each digit class (and a conv channel) likes most.

    python examples/vis_activation_max.py [--fast] [--backend NAME] [--out DIR]

Trains (or loads) a LeNet-5 on the bundled digits, then for each class c starts
from faint noise and climbs d logit_c / d x with an L2 penalty. Writes
OUT/activation_max.png (one image per class, with the logit before -> after)
and OUT/activation_max_conv.png (the images that excite the channels of the
second conv layer). The images are the network's idea of "a 3", not a
natural-looking 3.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import gradflow  # noqa: E402
from gradflow.vis import activation_maximization, plot_activation_maximization  # noqa: E402
from _common import Timer, example_parser, parse  # noqa: E402
from vis_common import add_common_args, lenet_from_args  # noqa: E402


def main(argv=None):
    ap = add_common_args(example_parser(
        __doc__, takes="about 100 s once the LeNet is cached in OUT (training it adds about 25 s)",
        fast_takes="about 13 s (the same caveat)"))
    ap.add_argument("--steps", type=int, default=None, help="ascent steps (default 200)")
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--l2", type=float, default=1e-2)
    args = parse(ap, argv)
    model, _ = lenet_from_args(args)
    steps = args.steps or (30 if args.fast else 200)
    classes = [0, 3, 7] if args.fast else list(range(10))
    images, before, after, probs = [], [], [], []
    for c in classes:
        img, hist = activation_maximization(model, c, steps=steps, lr=args.lr, l2=args.l2,
                                            input_shape=(1, 28, 28), seed=c,
                                            return_history=True)
        with gradflow.no_grad():
            p = model(img).softmax(dim=1).numpy()[0]
        images.append(img.numpy()[0])
        before.append(hist[0])
        after.append(hist[-1])
        probs.append(float(p[c]))
        print(f"class {c}: logit {hist[0]:7.3f} -> {hist[-1]:7.3f}, p({c}) = {p[c]:.3f}")
    path = os.path.join(args.out, "activation_max.png")
    plot_activation_maximization(np.stack(images), path=path,
                                 titles=[f"{c}: {b:.1f}→{a:.1f}"
                                         for c, b, a in zip(classes, before, after)])
    # the second conv layer's channels (layer "3" of the Sequential)
    chans = range(4) if args.fast else range(16)
    conv_imgs = [activation_maximization(model, ("3", ch), steps=steps, lr=0.05, l2=1e-3,
                                         input_shape=(1, 28, 28), seed=ch, normalize=True)
                 .numpy()[0] for ch in chans]
    path2 = os.path.join(args.out, "activation_max_conv.png")
    plot_activation_maximization(np.stack(conv_imgs), path=path2,
                                 titles=[f"conv2 ch {ch}" for ch in chans])
    print(f"wrote {path} and {path2}")
    return dict(png=path, png_conv=path2, classes=classes, before=before, after=after,
                probs=probs)


if __name__ == "__main__":
    with Timer("vis_activation_max"):
        main(sys.argv[1:])
