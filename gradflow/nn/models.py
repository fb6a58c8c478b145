"""Reference models used by ``gradflow train``, the examples and the benchmarks.

All take ``in_channels`` and ``image_size`` so they fit 28 x 28 grey digits and
32 x 32 colour CIFAR-10 images alike, and end in raw logits (use CrossEntropyLoss).
"""
from __future__ import annotations

from .modules import (BatchNorm2d, Conv2d, Dropout, Flatten, Linear, LocalResponseNorm, MaxPool2d,
                      Module, ReLU, Sequential)


class MLP(Module):
    """Flatten -> Linear(in, hidden) -> ReLU -> Linear(hidden, hidden/2) -> ReLU -> Linear(., classes)."""

    def __init__(self, in_channels=1, image_size=28, num_classes=10, hidden=256):
        super().__init__()
        d = in_channels * image_size * image_size
        self.net = Sequential(Flatten(), Linear(d, hidden), ReLU(), Linear(hidden, hidden // 2), ReLU(),
                              Linear(hidden // 2, num_classes))

    def forward(self, x):
        return self.net(x)


class LeNet5(Module):
    """LeNet-5 (LeCun et al., 1998) with ReLU and max pooling: conv5(6) -> pool ->
    conv5(16) -> pool -> 120 -> 84 -> classes. 28 x 28 inputs are padded by 2 so the
    feature map is 16 x 5 x 5 as for the original 32 x 32."""

    def __init__(self, in_channels=1, image_size=28, num_classes=10):
        super().__init__()
        pad = (32 - image_size) // 2 if image_size < 32 else 0
        s = (image_size + 2 * pad - 4) // 2
        s = (s - 4) // 2
        self.features = Sequential(
            Conv2d(in_channels, 6, 5, padding=pad), ReLU(), MaxPool2d(2),
            Conv2d(6, 16, 5), ReLU(), MaxPool2d(2))
        self.classifier = Sequential(
            Flatten(), Linear(16 * s * s, 120), ReLU(), Linear(120, 84), ReLU(), Linear(84, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


class ConvNet(Module):
    """A small VGG-style net with batch norm: [conv3-BN-ReLU] x2 (32) -> pool ->
    [conv3-BN-ReLU] x2 (64) -> pool -> 128 -> dropout -> classes."""

    def __init__(self, in_channels=1, image_size=28, num_classes=10, width=32):
        super().__init__()
        w = width

        def block(cin, cout):
            return [Conv2d(cin, cout, 3, padding=1, bias=False), BatchNorm2d(cout), ReLU()]

        self.features = Sequential(*block(in_channels, w), *block(w, w), MaxPool2d(2),
                                   *block(w, 2 * w), *block(2 * w, 2 * w), MaxPool2d(2))
        s = image_size // 4
        self.classifier = Sequential(Flatten(), Linear(2 * w * s * s, 128), ReLU(), Dropout(0.25),
                                     Linear(128, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


def alexnet(num_classes=1000):
    """AlexNet (Krizhevsky et al. 2012) for 227x227 input, the two-GPU split kept as
    groups=2 on conv2, conv4 and conv5: 60,965,224 parameters with 1000 classes (the
    paper's "224" does not give 55x55 after conv1)."""
    return Sequential(
        Conv2d(3, 96, 11, stride=4), ReLU(), LocalResponseNorm(5), MaxPool2d(3, 2),
        Conv2d(96, 256, 5, padding=2, groups=2), ReLU(), LocalResponseNorm(5), MaxPool2d(3, 2),
        Conv2d(256, 384, 3, padding=1), ReLU(),
        Conv2d(384, 384, 3, padding=1, groups=2), ReLU(),
        Conv2d(384, 256, 3, padding=1, groups=2), ReLU(), MaxPool2d(3, 2),
        Flatten(),
        Linear(256 * 6 * 6, 4096), ReLU(), Dropout(),
        Linear(4096, 4096), ReLU(), Dropout(),
        Linear(4096, num_classes))


MODELS = {"mlp": MLP, "lenet5": LeNet5, "convnet": ConvNet}


def build_model(name, in_channels=1, image_size=28, num_classes=10):
    try:
        cls = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}") from None
    return cls(in_channels=in_channels, image_size=image_size, num_classes=num_classes)
