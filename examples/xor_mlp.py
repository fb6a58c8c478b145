"""XOR: a linear model cannot learn it, a 2-layer MLP with a non-linearity can.

    python examples/xor_mlp.py [--fast] [--backend NAME]

XOR's classes (0,0),(1,1) -> 0 and (0,1),(1,0) -> 1 are not separable by a line, so
logistic regression gets at most 3 of the 4 points right whatever it does; one hidden
layer with tanh bends the decision boundary and gets all 4.
"""
import os
import sys

import gradflow as gf
import gradflow.nn as nn
import gradflow.optim as optim

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import Timer, example_parser, parse  # noqa: E402

X = gf.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
Y = gf.tensor([[0.0], [1.0], [1.0], [0.0]])


def fit(model, steps=2000, lr=0.1):
    """Full-batch Adam on binary cross-entropy; returns (final loss, accuracy)."""
    opt = optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.BCEWithLogitsLoss()
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(X), Y)
        loss.backward()
        opt.step()
    with gf.no_grad():
        pred = (model(X) > 0).float()
        acc = (pred == Y).float().mean().item()
    return loss.item(), acc


def main(steps=2000, seed=0):
    gf.manual_seed(seed)
    linear = nn.Linear(2, 1)
    mlp = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    results = {}
    for name, model in (("linear", linear), ("mlp", mlp)):
        loss, acc = fit(model, steps)
        results[name] = (loss, acc)
        with gf.no_grad():
            probs = model(X).sigmoid().numpy().ravel()
        print(f"{name:>6}: loss {loss:.4f}, accuracy {100 * acc:.0f}%  "
              f"p(y=1) for (0,0) (0,1) (1,0) (1,1): " + " ".join(f"{p:.2f}" for p in probs))
    print("a linear model cannot separate XOR; the MLP with one tanh hidden layer does.")
    return results


if __name__ == "__main__":
    args = parse(example_parser(__doc__, takes="about 60 s", fast_takes="about 15 s"))
    with Timer("xor_mlp"):
        main(steps=500 if args.fast else 2000)
