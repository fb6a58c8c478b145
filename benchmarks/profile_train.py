"""Where the time of one ``gradflow train`` run goes: runs it under cProfile in this
process and prints a markdown table of the pipeline's parts (cumulative seconds of
the functions that hold them, so the profiler's own overhead is included).

    python benchmarks/profile_train.py -- --backend numba --epochs 2 --limit 2000
    python benchmarks/profile_train.py --stats out.prof -- ...    # also keep the raw profile

Run it twice: the first run on a fresh checkout also compiles (or loads from the
cache) the Numba kernels, which shows up inside forward/backward.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time


def _find(stats, path_part, name):
    """The pstats keys of functions named ``name`` in files whose path contains
    ``path_part``; ``name`` may also be the function itself (that one only)."""
    if callable(name):
        code = name.__code__
        return [k for k in stats.stats if k == (code.co_filename, code.co_firstlineno, code.co_name)]
    return [k for k in stats.stats if k[2] == name and path_part in k[0].replace(os.sep, "/")]


def _cum(stats, path_part, name, caller=None):
    """Cumulative seconds of a function (summed over its matches), optionally only of
    its calls from the function ``caller`` (a ``(path_part, name)`` pair)."""
    total = 0.0
    for key in _find(stats, path_part, name):
        cc, nc, tt, ct, callers = stats.stats[key]
        if caller is None:
            total += ct
        else:
            for ck in _find(stats, *caller):
                if ck in callers:
                    total += callers[ck][3]
    return total


ROWS = [
    # (label, path part, function, caller or None)
    ("whole run (import + setup + train + files)", None, None, None),
    ("import gradflow", "gradflow/__init__.py", "<module>", None),
    ("backend start (numba import, thread pool)", "gradflow/backends/__init__.py", "set_backend", None),
    ("load + split + standardise the data", "gradflow/train.py", "load_splits", None),
    ("training epochs (train_one_epoch, all)", "gradflow/train.py", "train_one_epoch", None),
    ("  next batch: DataLoader (gather, ToTensor, crop, normalise)", "gradflow/data/dataloader.py",
     "__iter__", ("gradflow/train.py", "train_one_epoch")),
    ("    of which RandomCrop (augmentation)", None, "RandomCrop.apply_batch", None),
    ("  forward (model)", "gradflow/nn/modules/module.py", "__call__", ("gradflow/train.py", "train_one_epoch")),
    ("  loss (cross_entropy)", "gradflow/ops/loss.py", "cross_entropy", ("gradflow/train.py", "train_one_epoch")),
    ("  backward", "gradflow/tensor.py", "backward", ("gradflow/train.py", "train_one_epoch")),
    ("  optimizer.step", "gradflow/optim/optimizer.py", "step", ("gradflow/train.py", "train_one_epoch")),
    ("  optimizer.zero_grad", "gradflow/optim/optimizer.py", "zero_grad", ("gradflow/train.py", "train_one_epoch")),
    ("  per-batch reseeding (after_step: seed_batch, checks)", "gradflow/train.py", "after_step", None),
    ("  progress bar (tqdm update/postfix)", "tqdm/std.py", "update", None),
    ("  Numba kernels loaded from the disk cache (inside forward/backward)", "numba/core/caching.py",
     "load_overload", None),
    ("  Numba kernels compiled (inside forward/backward)", "numba/core/dispatcher.py", "_compile_cached", None),
    ("evaluation (val + test, no_grad)", "gradflow/train.py", "evaluate", None),
    ("checkpoints (save_state)", "gradflow/train.py", "save_state", None),
    ("metrics.json", "gradflow/train.py", "write_json", None),
    ("training.png (matplotlib import + draw)", "gradflow/train.py", "plot", None),
]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stats", help="also write the raw cProfile stats here")
    ap.add_argument("--top", type=int, default=0, help="also print the N functions with the most own time")
    ap.add_argument("train_args", nargs="*", help="arguments of gradflow train (after --)")
    a = ap.parse_args(argv)
    out = tempfile.mkdtemp(prefix="gradflow-profile-")
    args = ["train", "--no-progress", "--out", out] + a.train_args
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    from gradflow.cli import main as cli_main
    rc = cli_main(args)
    prof.disable()
    wall = time.perf_counter() - t0
    if rc not in (0, None):
        raise SystemExit(f"gradflow train exited with {rc}")
    stats = pstats.Stats(prof)
    if a.stats:
        stats.dump_stats(a.stats)
    print(f"\n`gradflow {' '.join(args[:1] + a.train_args)}` under cProfile: {wall:.1f} s\n")
    print("| part | seconds | % of run |\n|---|---:|---:|")
    from gradflow.data.transforms import RandomCrop
    named = {"RandomCrop.apply_batch": RandomCrop.apply_batch}
    for label, path, name, caller in ROWS:
        s = wall if name is None else _cum(stats, path, named.get(name, name), caller)
        print(f"| {label} | {s:.2f} | {100 * s / wall:.0f}% |")
    if a.top:
        stats.sort_stats("tottime").print_stats(a.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
