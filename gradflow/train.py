"""``gradflow train``: train a model on a dataset, the main job.

    gradflow train                                  # LeNet-5 on the bundled digits
    gradflow train --model convnet --dataset fashion-mnist --epochs 5 --backend numba
    gradflow train --resume runs/latest             # continue after Ctrl-C, a kill, a crash

Splits: ``digits`` is split 80/10/10 (train/validation/test) with ``--seed``; the
other datasets split their official training set 90/10 into train/validation and
test on the official test set. Only the train split is ever trained on; inputs are
standardised with the train split's mean and std.

Files in ``OUT`` (each written to a temporary file and renamed, so each is complete):

- ``last.npz``: the newest state, after every epoch (and every N batches with
  ``--checkpoint-every N``, and when Ctrl-C/SIGTERM stops the run);
- ``best.npz``: the state after the epoch with the best validation accuracy so far;
- ``model.npz``: the final state, written once the last epoch is done;
- ``metrics.json`` (after every epoch) and ``training.png`` (at the end).

A checkpoint is ``{"model", "optimizer", "epoch", "step", "partial", "metrics",
"config"}``: ``epoch`` completed epochs plus ``step`` batches of the next one
(``partial`` holds that epoch's running loss/accuracy sums); ``config`` is the whole
run configuration, backend included. ``--resume OUT`` (or a file) continues from the
newest complete checkpoint with that configuration -- flags given with it override
it, and the run says which. Each batch's random streams (shuffling, dropout,
augmentation) derive from (seed, epoch, batch) alone, so a resumed run reproduces an
uninterrupted one bit for bit, wherever it stopped. A ``kill -9`` loses at most the
work since the last save: one epoch, or N batches with ``--checkpoint-every N``.

Exit status: 0 done; 1 the loss diverged (no ``model.npz`` is written); 2 bad input;
130 (SIGINT) / 143 (SIGTERM) stopped, resumable.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time

import numpy

from .cli import CommandError, check_backend, env_backend, int_at_least, int_in_range, positive_float
from .utils.signals import Interrupts

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10")
DEFAULTS = dict(model="lenet5", dataset="digits", epochs=12, batch_size=32, lr=0.05, optimizer="sgd",
                seed=0, schedule="cosine", augment=True, limit=None, checkpoint_every=None,
                data_root=None)
# what defines the data, the network and the optimizer's state: a resumed run keeps them
KEPT_ON_RESUME = ("model", "dataset", "seed", "limit", "optimizer")
CHECKPOINTS = ("last.npz", "model.npz", "best.npz", "interrupted.npz")  # newest first on ties
OUTPUTS = CHECKPOINTS + ("metrics.json", "training.png")
DIVERGED = 1


def add_arguments(p):
    p.add_argument("--model", choices=("mlp", "lenet5", "convnet"), default=None,
                   help=f"network (default {DEFAULTS['model']})")
    p.add_argument("--dataset", choices=DATASETS, default=None,
                   help=f"dataset (default {DEFAULTS['dataset']}: 5,000 real MNIST digits bundled "
                        f"with gradflow, works offline)")
    p.add_argument("--data-root", default=None, help="folder with the dataset files (mnist, "
                   "fashion-mnist, cifar10); also searched: $GRADFLOW_DATA, the user cache dir")
    p.add_argument("--download", action="store_true", help="download missing dataset files")
    p.add_argument("--backend", default=None, help="numpy, numba or cupy (default: the "
                   "checkpoint's with --resume, else $GRADFLOW_BACKEND, else numpy)")
    p.add_argument("--epochs", type=int_at_least(1), default=None,
                   help=f"total epochs, >= 1 (default {DEFAULTS['epochs']})")
    p.add_argument("--batch-size", type=int_at_least(1), default=None,
                   help=f">= 1 (default {DEFAULTS['batch_size']})")
    p.add_argument("--lr", type=positive_float, default=None,
                   help=f"learning rate, > 0 (default {DEFAULTS['lr']})")
    p.add_argument("--optimizer", choices=("sgd", "adam"), default=None,
                   help=f"default {DEFAULTS['optimizer']} (sgd: Nesterov momentum 0.9)")
    p.add_argument("--schedule", choices=("cosine", "constant"), default=None,
                   help="learning-rate schedule over the epochs (default cosine annealing to 0)")
    p.add_argument("--augment", dest="augment", action="store_true", default=None,
                   help="random 2-pixel shifts of training images (default on)")
    p.add_argument("--no-augment", dest="augment", action="store_false")
    p.add_argument("--seed", type=int_in_range(0, 2 ** 32 - 1), default=None,
                   help="seed for init, split and shuffling, 0 .. 2**32-1 (default 0)")
    p.add_argument("--out", default=None, help="output folder (default: the checkpoint's folder "
                   "with --resume, else runs/latest)")
    p.add_argument("--resume", default=None, metavar="OUT|CKPT",
                   help="continue a run: its output folder (the newest complete checkpoint in "
                        "it is used) or a checkpoint file")
    p.add_argument("--checkpoint-every", type=int_at_least(1), default=None, metavar="N",
                   help="also save OUT/last.npz every N batches (default: after every epoch only)")
    p.add_argument("--limit", type=int_at_least(1), default=None, metavar="N",
                   help="use at most N >= 1 samples of each split (quick runs and tests)")
    p.add_argument("--blas-threads", type=int_at_least(1), default=None, metavar="N",
                   help="OpenBLAS threads for the CPU backends (default: $OPENBLAS_NUM_THREADS or "
                        "$OMP_NUM_THREADS if set, else 1 -- fastest for these small GEMMs, and "
                        "robust on a busy machine)")
    p.add_argument("--compile", dest="compile", action="store_true", default=None,
                   help="capture the training step once and replay it as backend kernel calls "
                        "(gradflow.compile; default: on in one process)")
    p.add_argument("--no-compile", dest="compile", action="store_false",
                   help="run every training step eagerly")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--nproc", type=int_at_least(1), default=None, metavar="N",
                   help="train data-parallel in N processes on this machine (runs mpiexec -n N; "
                        "needs the distributed extra); --batch-size stays the global batch. Under "
                        "mpiexec every rank joins by itself (README: Scaling out)")
    p.set_defaults(_train_parser=p)


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


def evaluate(model, loader, check_stop=None):
    """(mean loss, accuracy) over ``loader`` without building a graph; ``check_stop()``
    runs after every batch (it raises KeyboardInterrupt to stop)."""
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
            if check_stop is not None:
                check_stop()
    return loss_sum / max(total, 1), correct / max(total, 1)


def train_one_epoch(model, loader, optimizer, progress=None, after_step=None, stats=None,
                    step=None):
    """One pass over ``loader``; returns (mean loss, accuracy) of the training batches.
    ``stats`` (``{"loss_sum", "correct", "total"}``, updated in place) carries the sums
    of the batches already done when an epoch is resumed part-way. ``after_step()``
    runs after every batch, once its step and its sums are complete. A non-finite loss
    raises :class:`Diverged` before its backward pass, so the weights stay finite --
    except with ``step`` (a :func:`compiled_step`: the whole step, update included, runs
    before the loss is read; the checkpoints on disk stay finite either way)."""
    from .nn import functional as F
    model.train()
    if stats is None:
        stats = {"loss_sum": 0.0, "correct": 0, "total": 0}
    for x, y in loader:
        if step is not None:
            loss, correct = step(x, y)
            lv = float(loss.item())
            if not math.isfinite(lv):
                raise Diverged(f"the loss diverged (it is {lv})")
            correct = int(correct.item())
        else:
            optimizer.zero_grad()
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            lv = float(loss.item())
            if not math.isfinite(lv):
                raise Diverged(f"the loss diverged (it is {lv})")
            loss.backward()
            optimizer.step()
            correct = int((logits.detach().argmax(1) == y).sum().item())
        n = len(y)
        stats["loss_sum"] += lv * n
        stats["total"] += n
        stats["correct"] += correct
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{stats['loss_sum'] / stats['total']:.4f}", refresh=False)
        if after_step is not None:
            after_step()
    return stats["loss_sum"] / max(stats["total"], 1), stats["correct"] / max(stats["total"], 1)


def compiled_step(model, optimizer, on_fallback=None):
    """The training step of :func:`train_one_epoch` under :func:`gradflow.compile`:
    ``step(x, y) -> (loss, number correct)`` as tensors. ``on_fallback(error)`` is called
    once if the step cannot be replayed (it then runs eagerly, with the same results)."""
    from .capture import compile as capture
    from .nn import functional as F

    def step(x, y):
        optimizer.zero_grad()
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        optimizer.step()
        return loss, (logits.detach().argmax(1) == y).sum()
    return capture(step, fallback=on_fallback or True)


def _compile_choice(asked, optimizer_name, world):
    """(compile the step?, the line ``gradflow train`` prints about it)."""
    if asked is False:
        return False, "compiled step: off (--no-compile)"
    if world > 1:
        return False, "compiled step: off (data-parallel runs step eagerly)"
    return True, ("compiled step: on (gradflow.compile; the first 4 steps of each batch shape "
                  "and learning rate run eagerly; --no-compile turns it off)")


def plot(metrics, path, title=None):
    """Loss and accuracy curves per epoch, rendered headless (Agg) to ``path`` (PNG),
    under ``title`` (e.g. the model, dataset and backend)."""
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
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")


def epoch_lr(cfg, epoch):
    """Learning rate for 0-based ``epoch``: constant, or cosine annealing from ``lr`` to
    0 over ``epochs`` (CosineAnnealingLR's closed form, so resuming is exact)."""
    if cfg.get("schedule", "constant") == "cosine":
        return 0.5 * cfg["lr"] * (1 + math.cos(math.pi * epoch / cfg["epochs"]))
    return cfg["lr"]


# -- random streams --------------------------------------------------------------------------------------
def epoch_batches(n, batch_size, seed, epoch):
    """The shuffled batches (lists of indices into the train split) of 0-based ``epoch``."""
    order = numpy.random.default_rng([seed, 1, epoch]).permutation(n)
    return [order[i:i + batch_size].tolist() for i in range(0, n, batch_size)]


def seed_batch(dataset, seed, epoch, step, rank=0):
    """Seed the random streams a batch uses (dropout; augmentation while the batch is
    read) from (seed, epoch, step) alone, so a run resumed at any batch boundary replays
    exactly what an uninterrupted run does. Ranks after 0 of a data-parallel run add
    their rank: their own dropout masks and shifts."""
    import gradflow as gf
    r = [rank] if rank else []
    gf.manual_seed(int(numpy.random.SeedSequence([seed, 2, epoch, step] + r).generate_state(1)[0]))
    t = getattr(getattr(dataset, "dataset", dataset), "transform", None)
    for tr in getattr(t, "transforms", [t]):
        if hasattr(tr, "_rng"):  # RandomCrop
            tr._rng = numpy.random.default_rng([seed, 3, epoch, step] + r)


# -- checkpoint files ------------------------------------------------------------------------------------
def _new_partial():
    return {"loss_sum": 0.0, "correct": 0, "total": 0, "seconds": 0.0}


def _read_progress(path):
    """(epoch, step) of a checkpoint file, from its header when it has one; raises
    CheckpointError/OSError for a file that is not a complete checkpoint."""
    from .serialization import load, load_metadata
    meta = load_metadata(path)
    if "epoch" in meta:
        return int(meta["epoch"]), int(meta.get("step", 0))
    ck = load(path)  # written before the header carried the progress
    if not isinstance(ck, dict) or "epoch" not in ck:
        raise CommandError("not a gradflow train checkpoint (no epoch entry)")
    return int(ck["epoch"]), int(ck.get("step", 0))


def find_checkpoint(path):
    """The checkpoint ``--resume PATH`` means: PATH itself if it is a file, else the
    newest complete one of ``last.npz``, ``model.npz``, ``best.npz`` in the folder
    (unreadable ones are skipped, with a note on stderr)."""
    from .serialization import CheckpointError
    if not os.path.exists(path):
        raise CommandError(f"--resume {path}: no such file or folder")
    if not os.path.isdir(path):
        try:
            _read_progress(path)
        except (CheckpointError, OSError, CommandError) as e:
            raise CommandError(f"--resume {path}: {_strip(e)}") from None
        return path
    found = []
    for rank, name in enumerate(CHECKPOINTS):
        p = os.path.join(path, name)
        if not os.path.isfile(p):
            continue
        try:
            found.append((_read_progress(p), -rank, p))
        except (CheckpointError, OSError, CommandError) as e:
            print(f"gradflow train: skipping {p}: {_strip(e)}", file=sys.stderr)
    if not found:
        raise CommandError(f"--resume {path}: no complete checkpoint in this folder (looked for "
                           f"{', '.join(CHECKPOINTS[:3])})")
    return max(found)[2]


def _strip(e):
    """An error's message without the ``load: `` prefix of the serialization errors."""
    text = str(e)
    return text[len("load: "):] if text.startswith("load: ") else text


class _Files:
    """Writes a run's files in ``out``; every write is atomic and done inside
    ``guard.critical()``, so a signal waits for the rename."""

    def __init__(self, out, guard):
        self.out, self.guard = out, guard
        self.saved = None  # (epoch, step) of the state in last.npz, once this run wrote it

    def path(self, name):
        return os.path.join(self.out, name)

    def remove_previous_run(self):
        """A fresh run owns OUT: the files of an earlier run there would otherwise be
        taken for this run's (``--resume OUT`` picks the newest checkpoint)."""
        gone = []
        for name in OUTPUTS:
            try:
                os.unlink(self.path(name))
                gone.append(name)
            except FileNotFoundError:
                pass
        return gone

    def save_state(self, state, best=False, check_after=True):
        from .serialization import save
        meta = {"epoch": state["epoch"], "step": state["step"], "config": state["config"]}
        with self.guard.critical(check_after=False):
            save(state, self.path("last.npz"), metadata=meta)
            self.saved = (state["epoch"], state["step"])
            if best:
                self._link("last.npz", "best.npz", state, meta)
        if check_after:
            self.guard.check()

    def _link(self, src, dst, state, meta):
        """``dst`` becomes the same (complete) file as ``src``: a hard link renamed into
        place, or a second save where the file system has no hard links."""
        tmp = self.path("." + dst + ".link")
        try:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.link(self.path(src), tmp)
            os.replace(tmp, self.path(dst))
        except OSError:
            from .serialization import save
            save(state, self.path(dst), metadata=meta)

    def finish(self, state):
        """``model.npz`` = ``last.npz`` = the final state."""
        with self.guard.critical():
            if self.saved != (state["epoch"], state["step"]):
                self.save_state(state, check_after=False)
            self._link("last.npz", "model.npz", state,
                       {"epoch": state["epoch"], "step": state["step"], "config": state["config"]})

    def write_json(self, name, data):
        with self.guard.critical():
            tmp = self.path("." + name + ".tmp")
            with open(tmp, "w") as f:
                json.dump(data, f, indent=2)
            os.replace(tmp, self.path(name))

    def write_plot(self, metrics, title):
        with self.guard.critical():
            tmp = self.path(".training.png.tmp")
            plot(metrics, tmp, title)
            os.replace(tmp, self.path("training.png"))


class _NoFiles(_Files):
    """The files of ranks > 0 of a data-parallel run: none (rank 0 writes them)."""

    def remove_previous_run(self):
        return []

    def save_state(self, state, best=False, check_after=True):
        if check_after:
            self.guard.check()

    def finish(self, state):
        pass

    def write_json(self, name, data):
        pass

    def write_plot(self, metrics, title):
        pass


# -- configuration ---------------------------------------------------------------------------------------
def configure(args, resume_meta=None):
    """The run's configuration: the flags given, else (with ``--resume``) the
    checkpoint's, else the defaults. Returns (config, notes): notes say what a resumed
    run took from where. Raises CommandError for a combination that cannot work."""
    saved = dict(resume_meta["config"]) if resume_meta else {}
    step = resume_meta["step"] if resume_meta else 0
    cfg, notes = {}, []
    for key, default in DEFAULTS.items():
        given = getattr(args, key)
        flag = "--" + key.replace("_", "-")
        if resume_meta is None:
            cfg[key] = given if given is not None else default
            continue
        old = saved.get(key, default)
        if given is not None and given != old:
            if key in KEPT_ON_RESUME:
                raise CommandError(f"{flag} {given} differs from the checkpoint's {old!r}: a resumed "
                                   f"run keeps its {', '.join(KEPT_ON_RESUME)} (start a new run "
                                   f"with another --out instead)")
            if key == "batch_size" and step:
                raise CommandError(f"--batch-size {given} differs from the checkpoint's {old}, which "
                                   f"stopped in the middle of an epoch (batch {step}); resume from "
                                   f"an epoch boundary (OUT/best.npz or a checkpoint without "
                                   f"--checkpoint-every) to change it")
            notes.append(f"{flag} {given} (the checkpoint had {'none' if old is None else repr(old)})")
        cfg[key] = given if given is not None else old
    # the backend: --backend, else the checkpoint's, else $GRADFLOW_BACKEND, else numpy
    env = env_backend()
    if args.backend:
        cfg["backend"] = check_backend(args.backend, "--backend")
        if saved.get("backend") and saved["backend"] != cfg["backend"]:
            notes.append(f"--backend {cfg['backend']} (the checkpoint had {saved['backend']!r})")
    elif saved.get("backend"):
        cfg["backend"] = check_backend(saved["backend"], f"the checkpoint's backend (pass --backend "
                                                          f"to resume on another one)")
        if env and env != saved["backend"]:
            notes.append(f"backend {saved['backend']} from the checkpoint, not $GRADFLOW_BACKEND="
                         f"{env} (pass --backend to change it)")
    else:
        cfg["backend"] = check_backend(env, "GRADFLOW_BACKEND") if env else "numpy"
        if resume_meta is not None:
            notes.append(f"backend {cfg['backend']} (the checkpoint does not name one)")
    if resume_meta is not None and cfg["epochs"] < resume_meta["epoch"]:
        raise CommandError(f"--epochs {cfg['epochs']} is fewer than the {resume_meta['epoch']} epochs "
                           f"the checkpoint has completed")
    return cfg, notes


# -- the command ---------------------------------------------------------------------------------------
class Diverged(Exception):
    """The training loss became non-finite."""


def run(args):
    from .distributed.launch import distributed_run
    return distributed_run(args, _run_local)


def _run_local(args):
    from .backends.threads import blas_threads, default_blas_threads
    n = args.blas_threads or default_blas_threads() or 1
    with blas_threads(n), Interrupts() as guard:
        try:
            return _run(args, guard)
        except KeyboardInterrupt:  # while setting up (loading data, building the model)
            print("\ninterrupted before training started; nothing was saved", file=sys.stderr)
            return guard.exit_status


def _run(args, guard):
    import gradflow as gf
    from . import distributed as dist
    from .data import DataLoader
    from .data.distributed import shard, shard_batches
    from .serialization import CheckpointError, load

    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)

    resume_path = resume_meta = None
    if args.resume:
        resume_path = find_checkpoint(args.resume)
        try:
            ck_meta = _read_progress(resume_path)
            ck = load(resume_path, backend="numpy")  # host copy; moved once the backend is known
        except (CheckpointError, OSError) as e:
            raise CommandError(f"--resume {resume_path}: {_strip(e)}") from None
        if not isinstance(ck, dict) or not {"model", "optimizer", "epoch", "config"} <= set(ck):
            raise CommandError(f"--resume {resume_path}: not a gradflow train checkpoint (it has no "
                               f"model/optimizer/epoch/config entries)")
        resume_meta = {"epoch": ck_meta[0], "step": ck_meta[1], "config": ck["config"]}
    cfg, notes = configure(args, resume_meta)
    out = args.out or (os.path.dirname(os.path.abspath(resume_path)) if resume_path else "runs/latest")
    be = gf.set_backend(cfg["backend"])
    gf.manual_seed(cfg["seed"])

    from .datasets import DatasetError
    try:
        (train, val, test), geo = load_splits(cfg["dataset"], cfg["seed"], cfg["limit"],
                                              cfg["data_root"], args.download, cfg["augment"])
    except DatasetError as e:
        raise CommandError(str(e)) from None
    cfg.update(geo)
    model = build(cfg)
    optimizer = make_optimizer(cfg["optimizer"], model.parameters(), cfg["lr"])
    metrics, epoch, step, partial = [], 0, 0, _new_partial()
    if resume_meta:
        try:
            model.load_state_dict(_to_backend(ck["model"], be))
            optimizer.load_state_dict(_to_backend(ck["optimizer"], be))
        except (KeyError, ValueError, TypeError, RuntimeError) as e:
            raise CommandError(f"--resume {resume_path}: the checkpoint does not fit a "
                               f"{cfg['model']} on {cfg['dataset']}: {e}") from None
        metrics = list(ck.get("metrics", []))
        epoch, step = resume_meta["epoch"], resume_meta["step"]
        partial = dict(ck.get("partial") or _new_partial())
    net = gf.nn.DistributedDataParallel(model) if world > 1 else model  # what trains
    os.makedirs(out, exist_ok=True)
    files = (_Files if rank == 0 else _NoFiles)(out, guard)
    same_folder = resume_path and os.path.samefile(os.path.dirname(os.path.abspath(resume_path)), out)
    if not same_folder:
        gone = files.remove_previous_run()
        if gone:
            print(f"gradflow train: replacing the previous run's files in {out} ({', '.join(gone)})",
                  flush=True)
    elif os.path.basename(resume_path) == "last.npz":
        files.saved = (epoch, step)

    n_params = sum(p.numel() for p in model.parameters())
    n_batches = len(epoch_batches(len(train), cfg["batch_size"], cfg["seed"], 0))
    where = ""
    if resume_meta:
        where = f", resuming {resume_path} after epoch {epoch}" + (
            f" and {step} of {n_batches} batches" if step else "")
    print(f"gradflow train: {cfg['model']} ({n_params:,} parameters) on {cfg['dataset']} "
          f"[{len(train)} train / {len(val)} val / {len(test)} test], backend {be.name}, "
          f"{cfg['optimizer']} lr={cfg['lr']} ({cfg['schedule']}), batch {cfg['batch_size']}, "
          f"seed {cfg['seed']}{where}" + (f", {world} processes (data-parallel)" if world > 1 else ""),
          flush=True)
    for note in notes:
        print(f"  overriding the checkpoint's configuration: {note}" if note.startswith("--")
              else f"  {note}", flush=True)
    use_compile, compile_note = _compile_choice(getattr(args, "compile", None), cfg["optimizer"],
                                                world)
    if rank == 0:
        print(f"  {compile_note}", flush=True)

    def compile_fallback(err):
        print(f"\ngradflow train: the compiled step cannot be replayed, training eagerly: {err}",
              file=sys.stderr, flush=True)
    train_step = compiled_step(model, optimizer, compile_fallback) if use_compile else None
    val_loader = DataLoader(shard(val), batch_size=500)  # each rank its share
    test_loader = DataLoader(shard(test), batch_size=500)
    header = f"{'epoch':>5} | {'train loss':>10} | {'train acc':>9} | {'val loss':>8} | " \
             f"{'val acc':>7} | {'test acc':>8} | {'time':>6}"
    print(header + "\n" + "-" * len(header), flush=True)
    for m in metrics:
        _print_row(m)

    def state():
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                "step": step, "partial": dict(partial), "metrics": list(metrics), "config": cfg}

    def summary(complete):
        return {"config": cfg, "backend": be.name, "epochs": metrics, "complete": complete,
                "final": {k: metrics[-1][k] for k in ("train_loss", "val_acc", "test_acc")}
                if metrics else {}, "train_seconds": sum(m["seconds"] for m in metrics),
                "parameters": n_params, "processes": world}

    from tqdm import tqdm
    best_val = max((m["val_acc"] for m in metrics), default=-1.0)
    every = cfg["checkpoint_every"]
    from .compile_progress import CompileProgress
    compiling = CompileProgress(be if rank == 0 else None, bar=not args.no_progress).start()
    try:
        guard.deferred = True
        guard.check()
        while epoch < cfg["epochs"]:
            # with N ranks, each takes its part of every one of these global batches
            batches = shard_batches(epoch_batches(len(train), cfg["batch_size"], cfg["seed"], epoch))
            lr = epoch_lr(cfg, epoch)
            for g in optimizer.param_groups:
                g["lr"] = lr
            t0 = time.perf_counter() - partial["seconds"]

            def after_step():
                nonlocal step
                step += 1
                partial["seconds"] = time.perf_counter() - t0
                if every and step % every == 0 and step < len(batches):
                    files.save_state(state())
                guard.check()
                seed_batch(train, cfg["seed"], epoch, step, rank)

            if step < len(batches):
                seed_batch(train, cfg["seed"], epoch, step, rank)
                loader = DataLoader(train, batch_sampler=batches[step:])
                with tqdm(total=len(batches), initial=step, desc=f"epoch {epoch + 1}/{cfg['epochs']}",
                          unit="batch", leave=False, disable=args.no_progress or rank > 0,
                          file=sys.stderr, dynamic_ncols=True) as bar:
                    train_one_epoch(net, loader, optimizer, bar, after_step, partial,
                                    step=train_step)
            # global metrics: every rank's means, weighted by its number of samples
            va_loss, va_acc = dist.weighted_mean(evaluate(model, val_loader, guard.check),
                                                 len(val_loader.dataset))
            _, te_acc = dist.weighted_mean(evaluate(model, test_loader, guard.check),
                                           len(test_loader.dataset))
            n = max(partial["total"], 1)
            tr_loss, tr_acc = dist.weighted_mean((partial["loss_sum"] / n, partial["correct"] / n),
                                                 partial["total"])
            row = dict(epoch=epoch + 1, lr=lr, train_loss=tr_loss, train_acc=tr_acc, val_loss=va_loss,
                       val_acc=va_acc, test_acc=te_acc, seconds=time.perf_counter() - t0)
            metrics.append(row)
            epoch, step, partial = epoch + 1, 0, _new_partial()
            files.save_state(state(), best=va_acc > best_val, check_after=False)
            best_val = max(best_val, va_acc)
            files.write_json("metrics.json", summary(complete=False))
            _print_row(row)
        files.finish(state())
        files.write_json("metrics.json", summary(complete=True))
        files.write_plot(metrics, f"{cfg['model']} on {cfg['dataset']}, backend {be.name}")
    except KeyboardInterrupt:
        with guard.critical(check_after=False):
            return _interrupted(guard, files, state, out, epoch, step, n_batches)
    except Diverged as e:
        last = files.path("last.npz")
        kept = (f"{last} holds the state after epoch {metrics[-1]['epoch']}"
                if os.path.exists(last) and metrics else "no checkpoint was written")
        print(f"\ngradflow train: error: {e} in epoch {epoch + 1}, batch {step + 1} of {n_batches}; "
              f"stopped without writing model.npz ({kept}); "
              f"try a smaller --lr (it was {lr:g} in this epoch)", file=sys.stderr, flush=True)
        return DIVERGED
    finally:
        compiling.stop()
    final = metrics[-1] if metrics else None
    if train_step is not None and rank == 0:
        st = train_step.stats
        print(f"compiled step: {st['replayed']} steps replayed, "
              f"{st['eager'] + st['recorded'] + st['checked']} eager ({st['recorded']} of them "
              f"recorded, {st['checked']} checked against a replay; {st['capture_s']:.2f} s in "
              f"all); {st['kernels']} kernel calls per replayed step"
              + (f"; fell back to eager: {st['fallback']}" if st.get("fallback") else ""))
    if final:
        print(f"final test accuracy {100 * final['test_acc']:.2f}% "
              f"(validation {100 * final['val_acc']:.2f}%) after {final['epoch']} epochs; "
              f"training took {sum(m['seconds'] for m in metrics):.1f} s")
    print(f"wrote {out}/model.npz (also last.npz, best.npz), {out}/metrics.json, {out}/training.png")
    return 0


def _interrupted(guard, files, state, out, epoch, step, n_batches):
    """Ctrl-C/SIGTERM: save the state if it is whole and newer than last.npz, and say
    how to continue."""
    name = {2: "Ctrl-C", 15: "SIGTERM"}.get(guard.signum, f"signal {guard.signum}")
    last = files.path("last.npz")
    if guard.safe and guard.signum is not None and files.saved != (epoch, step):
        files.save_state(state(), check_after=False)
    where = (f"after epoch {files.saved[0]}" + (f" and {files.saved[1]} of {n_batches} batches"
                                                 if files.saved[1] else "")) if files.saved else None
    if guard.safe and where:
        print(f"\ninterrupted by {name}: saved {last} ({where}).", flush=True)
    elif where:
        print(f"\nstopped at once by a second {name}, in the middle of a batch (not saved); "
              f"{last} holds the state {where}.", flush=True)
    elif os.path.exists(last):
        print(f"\ninterrupted by {name} before this run saved anything; {last} is the resumed "
              f"checkpoint's state.", flush=True)
    else:
        print(f"\ninterrupted by {name} before the first checkpoint; nothing to resume.", flush=True)
        return guard.exit_status
    print(f"Continue with: gradflow train --resume {out}", flush=True)
    return guard.exit_status


def _to_backend(obj, be):
    """A loaded state dict's tensors moved to backend ``be``."""
    from .tensor import Tensor
    if isinstance(obj, Tensor):
        return obj.to(be.name)
    if isinstance(obj, dict):
        return type(obj)((k, _to_backend(v, be)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_backend(v, be) for v in obj)
    return obj


def _print_row(m):
    print(f"{m['epoch']:>5} | {m['train_loss']:>10.4f} | {100 * m['train_acc']:>8.2f}% | "
          f"{m['val_loss']:>8.4f} | {100 * m['val_acc']:>6.2f}% | {100 * m['test_acc']:>7.2f}% | "
          f"{m['seconds']:>5.1f}s", flush=True)
