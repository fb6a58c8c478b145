"""A small VGG-style ConvNet with batch norm on Fashion-MNIST.

    python examples/fashion_mnist_convnet.py               # full data, 3 epochs
    python examples/fashion_mnist_convnet.py --fast        # 1,500 images, 1 epoch, narrow
    python examples/fashion_mnist_convnet.py --root DIR    # where the IDX files are
    python examples/fashion_mnist_convnet.py --backend numba

After the first 20 batches it prints how long the run will take.

The files are found in DIR, $GRADFLOW_DATA, the user cache dir or
/usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist package);
otherwise they are downloaded (sha256-checked). Saves the weights to
fashion_convnet.npz and reloads them to show the checkpoint round trip.
"""
import os
import sys
import time

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F
from gradflow.data import DataLoader, Subset
from gradflow.data.transforms import Compose, Normalize, ToTensor
from gradflow import datasets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import Timer, eta, example_parser, parse  # noqa: E402


def conv_block(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


def make_model(width=32):
    return nn.Sequential(
        *conv_block(1, width), *conv_block(width, width), nn.MaxPool2d(2),
        *conv_block(width, 2 * width), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(2 * width * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.25),
        nn.Linear(128, 10))


def evaluate(model, loader):
    model.eval()
    correct = total = 0
    loss = 0.0
    with gf.no_grad():
        for x, y in loader:
            out = model(x)
            loss += F.cross_entropy(out, y, reduction="sum").item()
            correct += (out.argmax(1) == y).sum().item()
            total += len(y)
    return loss / total, correct / total


def main(root=None, fast=False, epochs=None, seed=0, out="fashion_convnet.npz"):
    gf.manual_seed(seed)
    tf = Compose([ToTensor(), Normalize((0.2860,), (0.3530,))])   # Fashion-MNIST train statistics
    train_set = datasets.FashionMNIST(root, train=True, transform=tf, download=True)
    test_set = datasets.FashionMNIST(root, train=False, transform=tf, download=True)
    if fast:
        train_set, test_set = Subset(train_set, range(1500)), Subset(test_set, range(300))
    width = 8 if fast else 32
    model = make_model(width)
    opt = gf.optim.Adam(model.parameters(), lr=2e-3)
    epochs = epochs or (1 if fast else 3)
    train_loader = DataLoader(train_set, batch_size=64, shuffle=True, seed=seed)
    test_loader = DataLoader(test_set, batch_size=500)
    before = evaluate(model, test_loader)
    print(f"ConvNet (width {width}), {len(train_set)} train / {len(test_set)} test images, "
          f"backend {gf.current_backend().name}; untrained test accuracy {100 * before[1]:.1f}%")
    t_start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        t0 = time.perf_counter()
        for i, (x, y) in enumerate(train_loader):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            if epoch == 1 and i + 1 == 20:
                done, whole = i + 1, epochs * len(train_loader)
                print(f"  ({eta(done, whole, time.perf_counter() - t_start)} of training left)")
        test_loss, acc = evaluate(model, test_loader)
        print(f"epoch {epoch}: last batch loss {loss.item():.4f}, test loss {test_loss:.4f}, "
              f"test accuracy {100 * acc:.2f}% ({time.perf_counter() - t0:.1f} s)")
    gf.save(model.state_dict(), out)
    again = make_model(width)
    again.load_state_dict(gf.load(out))
    assert evaluate(again, test_loader)[1] == acc
    print(f"saved and reloaded {out}")
    return before, (test_loss, acc)


if __name__ == "__main__":
    ap = example_parser(
        __doc__, takes="about 40 min (0.86 s per batch of 64 at full width x 3 epochs of "
                       "938 batches; it prints its own estimate after 20 batches)",
        fast_takes="about 15 s")
    ap.add_argument("--root", default=None, help="folder with the Fashion-MNIST IDX files")
    ap.add_argument("--out", default="fashion_convnet.npz", help="where to save the weights")
    args = parse(ap)
    with Timer("fashion_mnist_convnet"):
        main(root=args.root, fast=args.fast, out=args.out)
