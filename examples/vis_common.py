"""Shared by the vis_* examples: LeNet-5, AlexNet, the bundled digits, and a
quickly trained LeNet that is cached on disk so the examples (and the tests)
train it once.

    from vis_common import trained_lenet
    model, (x_test, y_test) = trained_lenet(cache="runs/vis/lenet_digits.npz")
"""
from __future__ import annotations

import os
import time

import numpy as np

import gradflow
import gradflow.datasets  # noqa: F401
import gradflow.nn as nn
import gradflow.nn.functional as F

CLASSES = [str(i) for i in range(10)]


def lenet5():
    """LeNet-5 for 28x28 digits (the first conv pads by 2, as for 32x32 input)."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10))


def load_digits():
    """The 5,000 bundled MNIST digits as float32 (N, 1, 28, 28) in [0, 1] and int64 labels."""
    ds = gradflow.datasets.digits()
    x = np.asarray(ds.data, dtype=np.float32) / 255.0
    return x.reshape(len(x), 1, 28, 28), np.asarray(ds.targets, dtype=np.int64)


def split(x, y, n_test=500, seed=0):
    """A fixed held-out test split (the last ``n_test`` of a seeded permutation)."""
    idx = np.random.RandomState(seed).permutation(len(x))
    tr, te = idx[:-n_test], idx[-n_test:]
    return (x[tr], y[tr]), (x[te], y[te])


def train(model, x, y, steps=300, batch_size=64, lr=2e-3, seed=0, log=None, perturb=None):
    """Adam on random mini-batches for ``steps`` steps; returns the model.

    ``perturb(model, xb, yb, step) -> xb'`` replaces each batch before the step
    (adversarial training)."""
    rng = np.random.RandomState(seed)
    opt = gradflow.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for step in range(steps):
        b = rng.randint(0, len(x), batch_size)
        xb, yb = gradflow.tensor(x[b]), gradflow.tensor(y[b])
        if perturb is not None:
            xb = perturb(model, xb, yb, step)
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if log and (step % log == 0 or step == steps - 1):
            print(f"  step {step:4d}  loss {loss.item():.3f}")
    model.eval()
    return model


def accuracy(model, x, y, batch_size=500):
    with gradflow.no_grad():
        pred = np.concatenate([model(gradflow.tensor(x[i:i + batch_size])).numpy().argmax(1)
                               for i in range(0, len(x), batch_size)])
    return float((pred == y).mean())


def add_common_args(ap, default_steps=300):
    """--out, --model-cache, --train-steps (``ap`` comes from _common.example_parser,
    which adds --fast and --backend)."""
    ap.add_argument("--out", default="runs/vis", help="folder for the PNGs (default runs/vis)")
    ap.add_argument("--model-cache", default=None,
                    help="trained LeNet weights: loaded if the file exists, else written "
                         "(default OUT/lenet_digits.npz)")
    ap.add_argument("--train-steps", type=int, default=None,
                    help=f"LeNet training steps (default {default_steps}, 150 with --fast)")
    return ap


def lenet_from_args(args, default_steps=300):
    cache = args.model_cache or os.path.join(args.out, "lenet_digits.npz")
    steps = args.train_steps or (150 if args.fast else default_steps)
    return trained_lenet(cache=cache, steps=steps, batch_size=32 if args.fast else 64)


def trained_lenet(cache=None, steps=300, seed=0, batch_size=64, verbose=True):
    """A LeNet-5 trained on the digits (minus a 500-digit test split), loaded from
    ``cache`` when that file exists, else trained and saved there.

    Returns ``(model, (x_test, y_test))`` with the model in eval mode."""
    x, y = load_digits()
    (xtr, ytr), test = split(x, y)
    gradflow.manual_seed(seed)
    model = lenet5()
    if cache and os.path.exists(cache):
        model.load_state_dict(gradflow.load(cache))
        model.eval()
        return model, test
    t0 = time.perf_counter()
    train(model, xtr, ytr, steps=steps, batch_size=batch_size, seed=seed,
          log=100 if verbose else None)
    if verbose:
        print(f"trained LeNet-5 for {steps} steps in {time.perf_counter() - t0:.1f} s: "
              f"test accuracy {accuracy(model, *test):.1%}")
    if cache:
        os.makedirs(os.path.dirname(os.path.abspath(cache)), exist_ok=True)
        gradflow.save(model.state_dict(), cache)
    return model, test
