"""The loop of ``gradflow train`` (LeNet-5, defaults) written in PyTorch, CPU, for the
end-to-end ratio: the same samples of the same splits (taken from gradflow's
``load_splits``, so the data are identical), standardised with the train split's
statistics, random 2-pixel shifts on the training batches, batch 32, SGD with
Nesterov momentum 0.9 and the cosine learning rate per epoch, evaluation of the
validation and test splits under ``no_grad`` in batches of 500 after every epoch.

    python benchmarks/train_loop_torch.py --epochs 2 --limit 2000 [--threads N]

Prints one line per epoch and ``training took X s`` (the sum of the epochs' seconds,
evaluation included, as ``gradflow train`` reports it). The data stay in memory as
tensors and every batch is one gather, as a PyTorch user would write it for a
dataset this size.
"""
from __future__ import annotations

import argparse
import math
import time

import numpy


def splits(dataset, seed, limit, root=None):
    """(x, y) NumPy arrays of train/val/test, uint8 images as stored."""
    from gradflow.train import load_splits
    (train, val, test), geo = load_splits(dataset, seed, limit, root=root)
    out = []
    for s in (train, val, test):
        base, idx = s.dataset, numpy.asarray(s.indices)
        out.append((base.data[idx], numpy.asarray(base.targets)[idx].astype(numpy.int64)))
    return out, geo


def loop_parser(doc, threads_help):
    """The command line both loop scripts share (gradflow train's names and defaults)."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--data-root", default=None, help="folder with the dataset files")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help=threads_help)
    return ap


def lenet5_geometry(geo):
    """(first conv's padding, spatial size after the second pool) of gradflow's LeNet-5."""
    size = geo["image_size"]
    pad = (32 - size) // 2 if size < 32 else 0
    return pad, ((size + 2 * pad - 4) // 2 - 4) // 2


def main(argv=None):
    a = loop_parser(__doc__, "torch.set_num_threads (default: torch's)").parse_args(argv)
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    (tr, va, te), geo = splits(a.dataset, a.seed, a.limit, a.data_root)
    mean = torch.tensor(geo["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(geo["std"]).view(1, -1, 1, 1)

    def as_input(x):  # uint8 N x H x W (or N x C x H x W) -> standardised float32 NCHW
        t = torch.from_numpy(x).float().div_(255)
        return ((t[:, None] if t.ndim == 3 else t) - mean) / std

    xtr, ytr = torch.from_numpy(tr[0]).float().div_(255), torch.from_numpy(tr[1])
    xtr = xtr[:, None] if xtr.ndim == 3 else xtr
    evals = [(as_input(x), torch.from_numpy(y)) for x, y in (va, te)]
    c, size = geo["in_channels"], geo["image_size"]
    pad, s = lenet5_geometry(geo)
    model = nn.Sequential(nn.Conv2d(c, 6, 5, padding=pad), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(16 * s * s, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                          nn.Linear(84, geo["num_classes"]))
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, nesterov=True)
    gen = torch.Generator().manual_seed(a.seed)
    total = 0.0
    for epoch in range(a.epochs):
        for g in opt.param_groups:
            g["lr"] = 0.5 * a.lr * (1 + math.cos(math.pi * epoch / a.epochs))
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(len(xtr), generator=gen)
        loss_sum = correct = 0.0
        for k in range(0, len(order), a.batch_size):
            idx = order[k:k + a.batch_size]
            xb = F.pad(xtr[idx], (2, 2, 2, 2))  # random 2-pixel shifts: pad, one window per sample
            i = torch.randint(0, 5, (len(idx),), generator=gen)
            j = torch.randint(0, 5, (len(idx),), generator=gen)
            xb = xb.unfold(2, size, 1).unfold(3, size, 1)[torch.arange(len(idx)), :, i, j]
            xb = (xb - mean) / std
            yb = ytr[idx]
            opt.zero_grad()
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            lv = loss.item()
            if not math.isfinite(lv):
                raise SystemExit(f"the loss diverged ({lv})")
            loss.backward()
            opt.step()
            loss_sum += lv * len(idx)
            correct += int((logits.detach().argmax(1) == yb).sum())
        model.eval()
        accs = []
        with torch.no_grad():
            for x, y in evals:
                right = sum(int((model(x[k:k + 500]).argmax(1) == y[k:k + 500]).sum())
                            for k in range(0, len(x), 500))
                accs.append(right / max(len(x), 1))
        sec = time.perf_counter() - t0
        total += sec
        print(f"epoch {epoch + 1}: train loss {loss_sum / len(xtr):.4f} acc {correct / len(xtr):.4f}, "
              f"val acc {accs[0]:.4f}, test acc {accs[1]:.4f}, {sec:.2f} s", flush=True)
    print(f"training took {total:.2f} s (torch {torch.__version__}, {torch.get_num_threads()} threads)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
