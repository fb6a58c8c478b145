"""Where the time of one ``gradflow train`` run goes: runs it under cProfile in this
process and prints a markdown table of the pipeline's parts (cumulative seconds of
the functions that hold them, so the profiler's own overhead is included).

    python benchmarks/profile_train.py -- --backend numba --epochs 2 --limit 2000
    python benchmarks/profile_train.py --stats out.prof -- ...    # also keep the raw profile

Run it twice: the first run on a fresh checkout also compiles (or loads from the
cache) the Numba kernels, which shows up inside forward/backward.

    python benchmarks/profile_train.py --timers -- --backend numba --compile --epochs 2 ...

``--timers`` measures wall-clock time instead, with no profiler: it wraps the parts of
the loop that ``gradflow train`` calls by name (the loader's batches, the compiled
step and its replayed kernels, the per-batch hook, evaluation, checkpoints, files)
in ``perf_counter`` timers, so the per-call cost of measuring is a few hundred
nanoseconds, not cProfile's per-function overhead, and the seconds stay those of
an unprofiled run. What is left of an epoch after its timed parts is the loop's own
per-batch Python (reading the loss and the count, the running sums, tqdm).
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


class Timers:
    """Named wall-clock accumulators; ``wrap`` times a callable's outermost calls
    (a nested call of the same name is not counted twice)."""

    def __init__(self):
        self.seconds, self.calls, self._depth = {}, {}, {}

    def add(self, name, dt):
        self.seconds[name] = self.seconds.get(name, 0.0) + dt
        self.calls[name] = self.calls.get(name, 0) + 1

    def wrap(self, name, fn):
        def timed(*args, **kwargs):
            if self._depth.get(name):
                return fn(*args, **kwargs)
            self._depth[name] = 1
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - t0)
                self._depth[name] = 0
        timed.__wrapped__ = fn
        return timed

    def iterate(self, name, iterable):
        """``iterable``'s items, timing every ``next`` (the work of producing an item)."""
        it = iter(iterable)
        while True:
            t0 = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                return
            finally:
                self.add(name, time.perf_counter() - t0)
            yield item


TIMER_ROWS = [
    # (label, timer name, parent timer for the share column or None)
    ("import gradflow", "import", None),
    ("backend start (set_backend)", "backend", None),
    ("load + split + standardise the data (IDX files read here)", "data", None),
    ("training epochs (train_one_epoch, all)", "epochs", None),
    ("  next batch: DataLoader (gather, ToTensor, crop, normalise)", "batches", "epochs"),
    ("    of which RandomCrop (augmentation)", "crop", "epochs"),
    ("  the step: gradflow.compile'd function (eager steps included)", "step", "epochs"),
    ("    of which the replayed kernels (Program)", "kernels", "epochs"),
    ("    of which the first steps: eager, recorded, checked (capture; Numba kernels' first calls)", "capture", "epochs"),
    ("  per-batch hook (after_step: reseed, stop checks, checkpoint cadence)", "after_step", "epochs"),
    ("  the rest: loop Python (loss/count to host, sums, eager step if not compiled)", "loop", "epochs"),
    ("evaluation (val + test, no_grad, batch 500)", "evaluate", None),
    ("checkpoints (save_state + final model.npz)", "save", None),
    ("metrics.json", "json", None),
    ("training.png (matplotlib import + draw)", "plot", None),
]


def run_with_timers(args):
    """Run ``gradflow train args`` in this process with :class:`Timers` around its
    parts; returns (timers, wall seconds, the compiled step's stats or None)."""
    T = Timers()
    t_start = time.perf_counter()
    import gradflow
    T.add("import", time.perf_counter() - t_start)
    from gradflow import train as tr
    from gradflow.capture import CompiledFunction, replay
    from gradflow.data.transforms import RandomCrop
    saved = []

    def patch(owner, attr, new):
        saved.append((owner, attr, getattr(owner, attr)))
        setattr(owner, attr, new)

    patch(gradflow, "set_backend", T.wrap("backend", gradflow.set_backend))
    patch(tr, "load_splits", T.wrap("data", tr.load_splits))
    patch(tr, "evaluate", T.wrap("evaluate", tr.evaluate))
    patch(RandomCrop, "apply_batch", T.wrap("crop", RandomCrop.apply_batch))
    patch(replay.Program, "__call__", T.wrap("kernels", replay.Program.__call__))
    patch(CompiledFunction, "_advance", T.wrap("capture", CompiledFunction._advance))
    patch(tr._Files, "save_state", T.wrap("save", tr._Files.save_state))
    patch(tr._Files, "finish", T.wrap("save", tr._Files.finish))
    patch(tr._Files, "write_json", T.wrap("json", tr._Files.write_json))
    patch(tr._Files, "write_plot", T.wrap("plot", tr._Files.write_plot))
    steps = []
    original_epoch = tr.train_one_epoch

    def timed_epoch(model, loader, optimizer, progress=None, after_step=None, stats=None, step=None):
        if step is not None:
            steps.append(step)
            step = T.wrap("step", step)
        if after_step is not None:
            after_step = T.wrap("after_step", after_step)
        t0 = time.perf_counter()
        try:
            return original_epoch(model, T.iterate("batches", loader), optimizer, progress,
                                  after_step, stats, step)
        finally:
            T.add("epochs", time.perf_counter() - t0)
    patch(tr, "train_one_epoch", timed_epoch)
    try:
        from gradflow.cli import main as cli_main
        rc = cli_main(args)
    finally:
        for owner, attr, old in reversed(saved):
            setattr(owner, attr, old)
    wall = time.perf_counter() - t_start
    if rc not in (0, None):
        raise SystemExit(f"gradflow train exited with {rc}")
    s = T.seconds
    s["loop"] = s.get("epochs", 0.0) - sum(s.get(k, 0.0) for k in ("batches", "step", "after_step"))
    return T, wall, (dict(steps[0].stats) if steps else None)


def timers_table(T, wall):
    """Markdown rows: seconds, share of the run and (for the epochs' parts) of the epochs."""
    epochs = T.seconds.get("epochs", 0.0)
    lines = ["| part | seconds | % of run | % of epochs | calls |", "|---|---:|---:|---:|---:|",
             f"| whole run (import + setup + train + files) | {wall:.2f} | 100% | | |"]
    for label, name, parent in TIMER_ROWS:
        sec = T.seconds.get(name, 0.0)
        share = f"{100 * sec / epochs:.1f}%" if parent and epochs else ""
        calls = T.calls.get(name, "") if name != "loop" else ""
        lines.append(f"| {label.replace('  ', '&nbsp;&nbsp;')} | {sec:.2f} | {100 * sec / wall:.1f}% | "
                     f"{share} | {calls} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stats", help="also write the raw cProfile stats here")
    ap.add_argument("--top", type=int, default=0, help="also print the N functions with the most own time")
    ap.add_argument("--timers", action="store_true", help="wall-clock timers around the loop's parts "
                    "instead of cProfile (see the module docstring)")
    ap.add_argument("train_args", nargs="*", help="arguments of gradflow train (after --)")
    a = ap.parse_args(argv)
    out = tempfile.mkdtemp(prefix="gradflow-profile-")
    args = ["train", "--no-progress", "--out", out] + a.train_args
    if a.timers:
        T, wall, st = run_with_timers(args)
        print(f"\n`gradflow {' '.join(args[:1] + a.train_args)}` with timers: {wall:.1f} s\n")
        print(timers_table(T, wall))
        if st:
            print(f"\ncompiled step: {st.get('replayed')} replayed, {st.get('kernels')} kernel calls "
                  f"per replay, capture {st.get('capture_s', 0):.2f} s")
        return 0
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
