"""Top-9 activating patches per unit, layer by layer (Zeiler & Fergus 2014).

    python examples/vis_top_patches.py [--fast] [--backend NAME] [--out DIR] [--units 6]

Trains (or loads) a LeNet-5 on the bundled digits, runs the 500 held-out digits
through it, and for several units (channels) of conv1, conv2 and fc1 (after
their ReLUs) cuts out of the input the region each of its 9 strongest
activations sees -- 5x5 pixels for conv1, 14x14 for conv2, the whole digit for
fc1. Units that never fire on these digits (dead ReLUs) are skipped; the rest
are taken in order of their strongest activation. Writes OUT/top_patches.png:
one row per layer, one 3x3 mosaic per unit.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gradflow  # noqa: E402
from gradflow.vis import receptive_field  # noqa: E402
from gradflow.vis.top_patches import plot_top_patches, top_activating_patches  # noqa: E402
from vis_common import add_common_args, lenet_from_args  # noqa: E402
from _common import Timer, example_parser, parse  # noqa: E402

LAYERS = (("1", "conv1"), ("4", "conv2"), ("8", "fc1"))


def main(argv=None):
    ap = add_common_args(example_parser(
        __doc__, takes="about 15 s with the LeNet cached in OUT, plus its training "
                       "otherwise (see vis_fgsm.py)",
        fast_takes="about 10 s"))
    ap.add_argument("--units", type=int, default=None, help="units per layer (default 6)")
    args = parse(ap, argv)
    model, (x_test, _) = lenet_from_args(args)
    units = args.units or (3 if args.fast else 6)
    images = gradflow.tensor(x_test)
    rf = receptive_field(model, (1, 28, 28))
    rows, found = {}, {}
    for layer, label in LAYERS:
        width = model[int(layer) - 1].out_channels if label.startswith("conv") \
            else model[int(layer) - 1].out_features
        tops = top_activating_patches(model, images, layer, list(range(width)))
        alive = sorted((c for c in tops if tops[c][0].activation > 0),
                       key=lambda c: -tops[c][0].activation)[:units]
        r = rf[layer]
        field = "whole digit" if r.covers_input else f"{r.size[0]}x{r.size[1]} px"
        rows[f"{label} ({field})"] = {f"unit {c}: {tops[c][0].activation:.1f}": tops[c]
                                      for c in alive}
        found[label] = {c: tops[c] for c in alive}
        print(f"{label}: {sum(t[0].activation > 0 for t in tops.values())} of {width} units fire; "
              f"showing {alive}, receptive field {field}")
    path = os.path.join(args.out, "top_patches.png")
    plot_top_patches(rows, path, title="top-9 activating patches of held-out digits "
                                       "(unit: its strongest activation)")
    print(f"wrote {path}")
    return dict(png=path, found=found, model=model, images=x_test)


if __name__ == "__main__":
    with Timer("vis_top_patches"):
        main(sys.argv[1:])
