"""What did the LeNet learn? Its first-layer filters and its feature maps.

    python examples/vis_filters.py [--fast] [--backend NAME] [--out DIR]

Trains (or loads) a LeNet-5 on the bundled digits and writes
OUT/filters_conv1.png (the six 5x5 filters), OUT/filters_conv2.png (the 16x6
second-layer filters) and OUT/feature_maps.png (conv1 and conv2 outputs, after
ReLU, for one test digit).
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gradflow  # noqa: E402
from gradflow.vis import feature_maps, plot_feature_maps, plot_filters  # noqa: E402
from _common import Timer, example_parser, parse  # noqa: E402
from vis_common import add_common_args, lenet_from_args  # noqa: E402


def main(argv=None):
    ap = add_common_args(example_parser(
        __doc__, takes="about 30 s once the LeNet is cached in OUT (training it adds about 25 s)",
        fast_takes="about 30 s (the same caveat)"))
    args = parse(ap, argv)
    model, (x_test, _) = lenet_from_args(args)
    conv1, conv2 = model[0], model[3]
    p1 = os.path.join(args.out, "filters_conv1.png")
    p2 = os.path.join(args.out, "filters_conv2.png")
    plot_filters(conv1, path=p1, title="LeNet-5 conv1: 6 filters 5x5")
    plot_filters(conv2, path=p2, title="LeNet-5 conv2: 16 filters x 6 input channels")
    x = gradflow.tensor(x_test[:1])
    p3 = os.path.join(args.out, "feature_maps.png")
    plot_feature_maps(model, x, "1", path=p3, title="conv1 + ReLU feature maps")
    p4 = os.path.join(args.out, "feature_maps_conv2.png")
    plot_feature_maps(model, x, "4", path=p4, title="conv2 + ReLU feature maps")
    shapes = {name: feature_maps(model, x, name).shape for name in ("1", "4")}
    print(f"wrote {p1}, {p2}, {p3}, {p4}; feature map shapes {shapes}")
    return dict(pngs=[p1, p2, p3, p4], shapes=shapes)


if __name__ == "__main__":
    with Timer("vis_filters"):
        main(sys.argv[1:])
