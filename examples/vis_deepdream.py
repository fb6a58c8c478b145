"""DeepDream on a sheet of digits, with a LeNet-5's conv layers.

    python examples/vis_deepdream.py [--fast] [--backend NAME]
           [--out DIR] [--steps 10] [--octaves 3]

Trains (or loads) a LeNet-5 on the bundled digits, lays 2 x 3 held-out digits
out as one 56 x 84 image, and climbs the energy mean(a^2) of the conv layers'
activations at conv2 (after its ReLU) with respect to the pixels: --octaves
scales (each 1.4x the last), --steps normalised steps per scale, a random roll
of up to 2 pixels before each step. The conv part of the network is fully
convolutional, so it takes the larger sheet as it is. Does the same from a
grey noise canvas, which shows what the layer "sees" with nothing there.
Writes OUT/deepdream.png (the sheet, its dream, the noise canvas's dream) and
prints the layer's energy before and after each.
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gradflow  # noqa: E402
from gradflow.vis import deepdream, layer_energy  # noqa: E402
from gradflow.vis._plot import new_figure, save, show  # noqa: E402
from vis_common import add_common_args, lenet_from_args  # noqa: E402
from _common import Timer, example_parser, parse  # noqa: E402


def sheet(x, rows=2, cols=3):
    return np.concatenate([np.concatenate(list(x[r * cols:(r + 1) * cols, 0]), axis=1)
                           for r in range(rows)], axis=0)[None, None]


def main(argv=None):
    ap = add_common_args(example_parser(
        __doc__, takes="about 30 s",
        fast_takes="about 10 s"))
    ap.add_argument("--steps", type=int, default=None, help="steps per octave (default 10)")
    ap.add_argument("--octaves", type=int, default=3)
    ap.add_argument("--lr", type=float, default=0.02)
    args = parse(ap, argv)
    model, (x_test, _) = lenet_from_args(args)
    steps = args.steps or (4 if args.fast else 10)
    image = gradflow.tensor(sheet(x_test))
    grey = np.random.RandomState(0).standard_normal(image.shape) * 0.1 + 0.3
    canvas = gradflow.tensor(grey.clip(0.0, 1.0).astype(np.float32))
    features = model[:5]                             # conv1 ... conv2's ReLU
    fig = new_figure(9.0, 2.3)
    show(fig.add_subplot(1, 3, 1), image.numpy()[0, 0], "held-out digits")
    energies = {}
    for k, (start, label) in enumerate(((image, "digits"), (canvas, "grey noise"))):
        with gradflow.no_grad():
            before = float(layer_energy(features, start).item())
        dream = deepdream(features, start, steps=steps, lr=args.lr, octaves=args.octaves)
        with gradflow.no_grad():
            after = float(layer_energy(features, dream).item())
        energies[label] = (before, after)
        show(fig.add_subplot(1, 3, k + 2), dream.numpy()[0, 0],
             f"{label}, dreamed at conv2: {before:.2f} → {after:.2f}")
        print(f"{label}: conv2 mean(a^2) {before:.3f} -> {after:.3f} ({after / before:.1f}x)")
    path = save(fig, os.path.join(args.out, "deepdream.png"))
    print(f"wrote {path}")
    return dict(png=path, energies=energies, image=image.numpy(), dream=dream.numpy())


if __name__ == "__main__":
    with Timer("vis_deepdream"):
        main(sys.argv[1:])
