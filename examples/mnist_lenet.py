"""LeNet-5 on handwritten digits, written out the PyTorch way (Module, DataLoader,
optimizer loop) -- what ``gradflow train`` does, in one page.

    python examples/mnist_lenet.py            # the 5,000 bundled real MNIST digits
    python examples/mnist_lenet.py --mnist    # the full MNIST (files or download)
    python examples/mnist_lenet.py --fast     # 1,000-digit subset, 6 epochs
    python examples/mnist_lenet.py --backend numba

After the first 20 batches it prints how long the run will take.
"""
import os
import sys
import time

import numpy as np

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F
from gradflow.data import DataLoader, Subset, random_split
from gradflow.data.transforms import Compose, Standardize, ToTensor
from gradflow import datasets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import Timer, eta, example_parser, parse  # noqa: E402


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
    t_start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        t0, total = time.perf_counter(), 0.0
        for i, (x, y) in enumerate(train_loader):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
            if epoch == 1 and i + 1 == 20:
                done, whole = i + 1, epochs * len(train_loader)
                print(f"  ({eta(done, whole, time.perf_counter() - t_start)} of training left)")
        scheduler.step()
        acc = accuracy(model, test_loader)
        print(f"epoch {epoch:2d}  train loss {total / len(train_set):.4f}  "
              f"test accuracy {100 * acc:.2f}%  ({time.perf_counter() - t0:.1f} s)")
    return acc


if __name__ == "__main__":
    ap = example_parser(
        __doc__, takes="about 65 s (--mnist trains on 15x as many images)",
        fast_takes="about 20 s")
    ap.add_argument("--mnist", action="store_true", help="the full MNIST (files or download)")
    args = parse(ap)
    with Timer("mnist_lenet"):
        main(fast=args.fast, use_mnist=args.mnist)
