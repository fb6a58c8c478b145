"""``gradflow train``: train a model on a dataset, the main job.

    gradflow train                                  # LeNet-5 on the bundled digits
    gradflow train --model convnet --dataset fashion-mnist --epochs 5 --backend numba
    gradflow train --resume runs/interrupted.npz    # continue after Ctrl-C

Splits: ``digits`` is split 80/10/10 (train/validation/test) with ``--seed``; the
other datasets split their official training set 90/10 into train/validation and
test on the official test set. Only the train split is ever trained on; inputs are
standardised with the train split's mean and std.

Writes ``OUT/model.npz`` (a checkpoint: ``{"model", "optimizer", "epoch", "metrics",
"config"}``; rebuild the network with :func:`load_model`), ``OUT/metrics.json`` and
``OUT/training.png``. Ctrl-C saves ``OUT/interrupted.npz`` (same layout, the state after
the last completed epoch) and exits with status 130; ``--resume`` it to continue: the
interrupted epoch is re-run, and since each epoch's random streams (shuffling, dropout,
augmentation) derive from (seed, epoch), the resumed run reproduces an uninterrupted one.
"""
from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time

import numpy

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10")
DEFAULTS = dict(model="lenet5", dataset="digits", epochs=12, batch_size=32, lr=0.05, optimizer="sgd",
                seed=0, schedule="cosine", augment=True)


def add_arguments(p):
    p.add_argument("--model", choices=("mlp", "lenet5", "convnet"), default=None,
                   help=f"network (default {DEFAULTS['model']})")
    p.add_argument("--dataset", choices=DATASETS, default=None,
                   help=f"dataset (default {DEFAULTS['dataset']}: 5,000 real MNIST digits bundled "
                        f"with gradflow, works offline)")
    p.add_argument("--data-root", default=None, help="folder with the dataset files (mnist, "
                   "fashion-mnist, cifar10); also searched: $GRADFLOW_DATA, the user cache dir")
    p.add_argument("--download", action="store_true", help="download missing dataset files")
    p.add_argument("--backend", default=None, help="numpy, numba or cupy (default: $GRADFLOW_BACKEND "
                   "or numpy)")
    p.add_argument("--epochs", type=int, default=None, help=f"total epochs (default {DEFAULTS['epochs']})")
    p.add_argument("--batch-size", type=int, default=None, help=f"default {DEFAULTS['batch_size']}")
    p.add_argument("--lr", type=float, default=None, help=f"learning rate (default {DEFAULTS['lr']})")
    p.add_argument("--optimizer", choices=("sgd", "adam"), default=None,
                   help=f"default {DEFAULTS['optimizer']} (sgd: Nesterov momentum 0.9)")
    p.add_argument("--schedule", choices=("cosine", "constant"), default=None,
                   help="learning-rate schedule over the epochs (default cosine annealing to 0)")
    p.add_argument("--augment", dest="augment", action="store_true", default=None,
                   help="random 2-pixel shifts of training images (default on)")
    p.add_argument("--no-augment", dest="augment", action="store_false")
    p.add_argument("--seed", type=int, default=None, help="seed for init, split and shuffling")
    p.add_argument("--out", default="runs/latest", help="output folder (default runs/latest)")
    p.add_argument("--resume", default=None, metavar="CKPT",
                   help="continue from a checkpoint (OUT/interrupted.npz or OUT/model.npz)")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="use at most N samples of each split (quick runs and tests)")
    p.add_argument("--blas-threads", type=int, default=None, metavar="N",
                   help="OpenBLAS threads for the CPU backends (default: $OPENBLAS_NUM_THREADS or "
                        "$OMP_NUM_THREADS if set, else 1 -- fastest for these small GEMMs, and "
                        "robust on a busy machine)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


# -- data ---------------------------------------------------------------------------------------------
def load_splits(dataset, seed, limit=None, root=None, download=False, augment=False):
    """(train, val, test) Subsets and the image geometry. Inputs are standardised with
    the train split's statistics; ``augment`` adds random 2-pixel shifts
    (RandomCrop with padding 2) to the train split only."""
    import copy

    from .data import Subset, random_split
    from .data.transforms import Compose, RandomCrop, Standardize, ToTensor
    from . import datasets as ds

    if dataset == "digits":
        base = ds.digits()
        train, val, test = random_split(base, [0.8, 0.1, 0.1], seed=seed)
        bases = [base]
    else:
        cls = {"mnist": ds.MNIST, "fashion-mnist": ds.FashionMNIST, "cifar10": ds.CIFAR10}[dataset]
        full = cls(root=root, train=True, download=download)
        test_base = cls(root=root, train=False, download=download)
        train, val = random_split(full, [0.9, 0.1], seed=seed)
        test = Subset(test_base, range(len(test_base)))
        bases = [full, test_base]
    if limit:
        train, val, test = (Subset(s.dataset, s.indices[:limit]) for s in (train, val, test))
    base0 = train.dataset
    images = base0.data[numpy.asarray(train.indices)]
    per_channel = images.ndim == 4
    std = Standardize.fit(images, per_channel=per_channel)
    for b in bases:
        b.transform = Compose([ToTensor(), std])
    shape = images.shape[1:]
    in_channels, size = (shape[0], shape[1]) if len(shape) == 3 else (1, shape[0])
    if augment:
        aug_base = copy.copy(base0)
        aug_base.transform = Compose([ToTensor(), RandomCrop(size, padding=2, seed=seed), std])
        train = Subset(aug_base, train.indices)
    return (train, val, test), dict(in_channels=int(in_channels), image_size=int(size),
                                    num_classes=len(base0.classes), mean=std.mean.tolist(),
                                    std=std.std.tolist())


# -- model / checkpoint helpers -----------------------------------------------------------------------
def build(config):
    from .nn.models import build_model
    return build_model(config["model"], config["in_channels"], config["image_size"],
                       config["num_classes"])


def make_optimizer(name, params, lr):
    from . import optim
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=0.9, nesterov=True)
    return optim.Adam(params, lr=lr)


def load_model(path, backend=None):
    """The trained network from a ``gradflow train`` checkpoint (``model.npz``), in eval mode."""
    from .serialization import CheckpointError, load
    ck = load(path, backend=backend)
    if not isinstance(ck, dict) or "model" not in ck or "config" not in ck:
        raise CheckpointError(f"{path}: not a gradflow train checkpoint (no model/config entries)")
    model = build(ck["config"])
    if backend is not None:
        model.to(backend)
    model.load_state_dict(ck["model"])
    return model.eval()


def evaluate(model, loader):
    """(mean loss, accuracy) over ``loader`` without building a graph."""
    from . import no_grad
    from .nn import functional as F
    model.eval()
    total, correct, loss_sum = 0, 0, 0.0
    with no_grad():
        for x, y in loader:
            logits = model(x)
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum").item())
            correct += int((logits.argmax(1) == y).sum().item())
            total += len(y)
    return loss_sum / max(total, 1), correct / max(total, 1)


class StopOnCtrlC:
    """Ctrl-C only sets a flag, which the training loop checks between batches: the
    interrupt then never lands inside a library call or an object finalizer (where Python
    prints "Exception ignored" and carries on training). A second Ctrl-C interrupts at once."""

    def __init__(self):
        self.requested = False
        self._prev = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._prev = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def check(self):
        if self.requested:
            raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self._prev is not None:
            signal.signal(signal.SIGINT, self._prev)
        return False


def train_one_epoch(model, loader, optimizer, progress=None, check_stop=None):
    """One pass over ``loader``; returns (mean loss, accuracy) of the training batches.
    ``check_stop()`` runs after every batch (it raises KeyboardInterrupt to stop)."""
    from .nn import functional as F
    model.train()
    total, correct, loss_sum = 0, 0, 0.0
    for x, y in loader:
        optimizer.zero_grad()
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        optimizer.step()
        n = len(y)
        lv = float(loss.item())
        loss_sum += lv * n
        total += n
        correct += int((logits.detach().argmax(1) == y).sum().item())
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{loss_sum / total:.4f}", refresh=False)
        if check_stop is not None:
            check_stop()
    return loss_sum / max(total, 1), correct / max(total, 1)


def plot(metrics, path):
    """Loss and accuracy curves per epoch, rendered headless (Agg) to ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    ep = [m["epoch"] for m in metrics]
    fig = Figure(figsize=(9, 3.6))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(ep, [m["train_loss"] for m in metrics], "o-", label="train")
    ax1.plot(ep, [m["val_loss"] for m in metrics], "s--", label="validation")
    ax1.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax1.legend()
    for key, style, label in (("train_acc", "o-", "train"), ("val_acc", "s--", "validation"),
                              ("test_acc", "^:", "test")):
        ax2.plot(ep, [100 * m[key] for m in metrics], style, label=label)
    ax2.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    ax2.legend()
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        if len(ep) < 15:
            ax.set_xticks(ep)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def epoch_lr(cfg, epoch):
    """Learning rate for 0-based ``epoch``: constant, or cosine annealing from ``lr`` to
    0 over ``epochs`` (CosineAnnealingLR's closed form, so resuming is exact)."""
    if cfg.get("schedule", "constant") == "cosine":
        return 0.5 * cfg["lr"] * (1 + math.cos(math.pi * epoch / cfg["epochs"]))
    return cfg["lr"]


def _checkpoint(model, optimizer, epoch, metrics, config):
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
            "metrics": metrics, "config": config}


def _snapshot(obj):
    """A deep copy of a checkpoint dict (tensors cloned): the state at an epoch boundary,
    kept in memory so Ctrl-C saves a consistent state, never a half-applied step."""
    from .tensor import Tensor
    if isinstance(obj, Tensor):
        return Tensor._make(obj.backend.copy(obj.array), obj.backend)
    if isinstance(obj, dict):
        return type(obj)((k, _snapshot(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_snapshot(v) for v in obj)
    if isinstance(obj, numpy.ndarray):
        return obj.copy()
    return obj


def _seed_epoch(dataset, seed, epoch):
    """Random streams of one epoch (dropout, augmentation) derive from (seed, epoch) alone,
    so a run resumed at an epoch boundary replays exactly what an uninterrupted run does."""
    import gradflow as gf
    gf.manual_seed(seed * 7919 + 104729 * (epoch + 1))
    t = getattr(getattr(dataset, "dataset", dataset), "transform", None)
    for tr in getattr(t, "transforms", [t]):
        if hasattr(tr, "_rng"):  # RandomCrop
            tr._rng = numpy.random.default_rng([seed, epoch])


# -- the command ---------------------------------------------------------------------------------------
def run(args):
    from .utils.threads import blas_threads, default_blas_threads
    n = args.blas_threads or default_blas_threads() or 1
    with blas_threads(n):
        return _run(args)


def _run(args):
    import gradflow as gf
    from .data import DataLoader
    from .serialization import load, save

    resume = None
    if args.resume:
        resume = load(args.resume)
        if not isinstance(resume, dict) or not {"model", "optimizer", "epoch", "config"} <= set(resume):
            print(f"gradflow train: {args.resume} is not a training checkpoint", file=sys.stderr)
            return 2
    saved = resume["config"] if resume else {}
    cfg = {}
    for key, default in DEFAULTS.items():
        given = getattr(args, key)
        if resume and key in ("model", "dataset", "seed") and given is not None and given != saved[key]:
            print(f"gradflow train: --{key} {given} differs from the checkpoint's {saved[key]!r}",
                  file=sys.stderr)
            return 2
        cfg[key] = given if given is not None else saved.get(key, default)
    cfg["limit"] = args.limit if args.limit is not None else saved.get("limit")
    if cfg["epochs"] < 1 or cfg["batch_size"] < 1 or not cfg["lr"] > 0:
        print("gradflow train: --epochs, --batch-size and --lr must be positive", file=sys.stderr)
        return 2
    if args.backend:
        gf.set_backend(args.backend)
    be = gf.current_backend()
    gf.manual_seed(cfg["seed"])

    try:
        (train, val, test), geo = load_splits(cfg["dataset"], cfg["seed"], cfg["limit"],
                                              args.data_root, args.download, cfg["augment"])
    except Exception as e:  # noqa: BLE001 - dataset errors are user-facing
        from .datasets import DatasetError
        if isinstance(e, DatasetError):
            print(f"gradflow train: {e}", file=sys.stderr)
            return 2
        raise
    cfg.update(geo)
    model = build(cfg)
    optimizer = make_optimizer(cfg["optimizer"], model.parameters(), cfg["lr"])
    metrics, start = [], 0
    if resume:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        metrics, start = list(resume.get("metrics", [])), int(resume["epoch"])
    os.makedirs(args.out, exist_ok=True)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"gradflow train: {cfg['model']} ({n_params:,} parameters) on {cfg['dataset']} "
          f"[{len(train)} train / {len(val)} val / {len(test)} test], backend {be.name}, "
          f"{cfg['optimizer']} lr={cfg['lr']} ({cfg['schedule']}), batch {cfg['batch_size']}, seed {cfg['seed']}"
          + (f", resuming after epoch {start}" if resume else ""), flush=True)
    val_loader = DataLoader(val, batch_size=500)
    test_loader = DataLoader(test, batch_size=500)
    header = f"{'epoch':>5} | {'train loss':>10} | {'train acc':>9} | {'val loss':>8} | " \
             f"{'val acc':>7} | {'test acc':>8} | {'time':>6}"
    print(header + "\n" + "-" * len(header), flush=True)
    for m in metrics:
        _print_row(m)
    t_start = time.perf_counter()
    epoch = start
    snapshot = _snapshot(_checkpoint(model, optimizer, start, metrics, cfg))
    stop = StopOnCtrlC()
    try:
        from tqdm import tqdm
        with stop:
            for epoch in range(start, cfg["epochs"]):
                stop.check()
                _seed_epoch(train, cfg["seed"], epoch)
                loader = DataLoader(train, batch_size=cfg["batch_size"], shuffle=True,
                                    seed=cfg["seed"] * 100003 + epoch)
                lr = epoch_lr(cfg, epoch)
                for g in optimizer.param_groups:
                    g["lr"] = lr
                t0 = time.perf_counter()
                with tqdm(total=len(loader), desc=f"epoch {epoch + 1}/{cfg['epochs']}",
                          unit="batch", leave=False, disable=args.no_progress, file=sys.stderr,
                          dynamic_ncols=True) as bar:
                    tr_loss, tr_acc = train_one_epoch(model, loader, optimizer, bar, stop.check)
                va_loss, va_acc = evaluate(model, val_loader)
                _, te_acc = evaluate(model, test_loader)
                row = dict(epoch=epoch + 1, lr=lr, train_loss=tr_loss, train_acc=tr_acc,
                           val_loss=va_loss, val_acc=va_acc, test_acc=te_acc,
                           seconds=time.perf_counter() - t0)
                metrics.append(row)
                snapshot = _snapshot(_checkpoint(model, optimizer, epoch + 1, metrics, cfg))
                _print_row(row)
                if not math.isfinite(tr_loss):
                    print("gradflow train: the loss diverged (non-finite); try a smaller --lr",
                          file=sys.stderr)
                    break
    except KeyboardInterrupt:
        # the state after the last completed epoch: the interrupted epoch is re-run on
        # --resume, so the resumed run reproduces an uninterrupted one exactly
        path = os.path.join(args.out, "interrupted.npz")
        save(snapshot, path)
        print(f"\ninterrupted during epoch {epoch + 1}: saved {path} (model, optimizer and "
              f"metrics after {snapshot['epoch']} completed epochs).\nContinue with: gradflow "
              f"train --resume {path} --out {args.out}", flush=True)
        return 130
    elapsed = time.perf_counter() - t_start
    final_epoch = metrics[-1]["epoch"] if metrics else start
    save(_checkpoint(model, optimizer, final_epoch, metrics, cfg), os.path.join(args.out, "model.npz"))
    summary = {"config": cfg, "backend": be.name, "epochs": metrics,
               "final": {k: metrics[-1][k] for k in ("train_loss", "val_acc", "test_acc")} if metrics else {},
               "train_seconds": elapsed, "parameters": n_params}
    tmp = os.path.join(args.out, ".metrics.json.tmp")
    with open(tmp, "w") as f:
        json.dump(summary, f, indent=2)
    os.replace(tmp, os.path.join(args.out, "metrics.json"))
    if metrics:
        plot(metrics, os.path.join(args.out, "training.png"))
        print(f"final test accuracy {100 * metrics[-1]['test_acc']:.2f}% "
              f"(validation {100 * metrics[-1]['val_acc']:.2f}%) after {final_epoch} epochs; "
              f"training took {elapsed:.1f} s")
    print(f"wrote {args.out}/model.npz, {args.out}/metrics.json, {args.out}/training.png")
    return 0


def _print_row(m):
    print(f"{m['epoch']:>5} | {m['train_loss']:>10.4f} | {100 * m['train_acc']:>8.2f}% | "
          f"{m['val_loss']:>8.4f} | {100 * m['val_acc']:>6.2f}% | {100 * m['test_acc']:>7.2f}% | "
          f"{m['seconds']:>5.1f}s", flush=True)
