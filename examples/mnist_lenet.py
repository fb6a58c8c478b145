"""LeNet-5 on handwritten digits, written out the PyTorch way (Module, DataLoader,
optimizer loop) -- what ``gradflow train`` does, in one page.

    python examples/mnist_lenet.py            # the 5,000 bundled real MNIST digits
    python examples/mnist_lenet.py --mnist    # the full MNIST (files or download)
    python examples/mnist_lenet.py --fast     # 1,000-digit subset, a few seconds

Set GRADFLOW_BACKEND=numba (or cupy) to run it on another backend.
"""
import sys
import time

import numpy as np

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F
from gradflow.data import DataLoader, Subset, random_split
from gradflow.data.transforms import Compose, Standardize, ToTensor
from gradflow import datasets

try:
    from _common import fast_mode
except ImportError:  # run from elsewhere
    sys.path.insert(0, __import__("os").path.dirname(__file__))
    from _common import fast_mode


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)   # 28x28 -> 28x28
        self.conv2 = nn.Conv2d(6, 16, 5)             # 14x14 -> 10x10
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = gf.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def accuracy(model, loader):
    model.eval()
    correct = total = 0
    with gf.no_grad():
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum().item()
            total += len(y)
    return correct / total


def main(fast=False, use_mnist=False, epochs=None, seed=0):
    gf.manual_seed(seed)
    if use_mnist:
        train_base, test_base = datasets.MNIST(train=True, download=True), datasets.MNIST(train=False)
        train_idx, test_idx = list(range(len(train_base))), list(range(len(test_base)))
    else:  # one dataset, split 80/20 at random
        train_base = test_base = datasets.digits()
        train_split, test_split = random_split(train_base, [0.8, 0.2], seed=seed)
        train_idx, test_idx = train_split.indices, test_split.indices
    if fast:  # 1,000 digits to train on, 500 held out
        train_idx, test_idx = train_idx[:1000], test_idx[:500]
    train_set, test_set = Subset(train_base, train_idx), Subset(test_base, test_idx)
    # standardise inputs with the TRAINING images' mean and std
    std = Standardize.fit(train_base.data[np.asarray(train_idx)])
    train_base.transform = test_base.transform = Compose([ToTensor(), std])

    train_loader = DataLoader(train_set, batch_size=32, shuffle=True, seed=seed)
    test_loader = DataLoader(test_set, batch_size=500)
    model = LeNet5()
    epochs = epochs or (6 if fast else 10)
    optimizer = gf.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    scheduler = gf.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    print(f"LeNet-5, {sum(p.numel() for p in model.parameters()):,} parameters; "
          f"{len(train_set)} training / {len(test_set)} test images; backend {gf.current_backend().name}")
    for epoch in range(1, epochs + 1):
        model.train()
        t0, total = time.perf_counter(), 0.0
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
        scheduler.step()
        acc = accuracy(model, test_loader)
        print(f"epoch {epoch:2d}  train loss {total / len(train_set):.4f}  "
              f"test accuracy {100 * acc:.2f}%  ({time.perf_counter() - t0:.1f} s)")
    return acc


if __name__ == "__main__":
    main(fast=fast_mode(), use_mnist="--mnist" in sys.argv)
