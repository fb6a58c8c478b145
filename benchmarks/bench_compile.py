"""Eager vs captured (``gradflow.compile``) training steps, and PyTorch CPU eager.

One training step (zero_grad, forward, cross-entropy, backward, SGD-momentum update) of
the bench's LeNet-5 and MLP at batch 64, float32, the same weights and batch as
``gradflow bench``. Every measurement is its own process, and the processes alternate
(``--rounds`` rounds of every configuration in turn), so a busy machine slows them all
alike; the report gives the median over rounds of each process's median, and ratios
within the same round. A compiled step's capture (the eager first call, the two
recorded calls, the checked first replay) is timed separately and never in the medians.

    python benchmarks/bench_compile.py --rounds 5 --out benchmarks/results/compile.md
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

MODELS = ("lenet5_step", "mlp_step")
CONFIGS = [("gradflow", "numba", "eager"), ("gradflow", "numba", "compiled"),
           ("gradflow", "numpy", "eager"), ("gradflow", "numpy", "compiled"),
           ("torch", "cpu", "eager")]


def _worker(impl, backend, mode, model, batch, repeat):
    import numpy as np
    if impl == "torch":
        import torch
        from gradflow.bench.models import torch_step
        if os.environ.get("BENCH_TORCH_THREADS"):
            torch.set_num_threads(int(os.environ["BENCH_TORCH_THREADS"]))
        step = torch_step(model, "cpu", np.float32, batch)
        capture = None
        threads = torch.get_num_threads()
    else:
        import gradflow
        from gradflow.backends.threads import blas_threads
        from gradflow.bench.models import gradflow_step
        blas_threads(1).__enter__()  # as gradflow bench/train: one BLAS thread (this process only)
        step = gradflow_step(model, backend, np.float32, batch)
        capture = None
        if mode == "compiled":
            step = gradflow.compile(step)
            t0 = time.perf_counter()
            for _ in range(4):  # eager, recorded, recorded, checked first replay
                step()
            capture = time.perf_counter() - t0
    for _ in range(5):
        step()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        step()
        ts.append(time.perf_counter() - t0)
    out = {"median_ms": 1e3 * statistics.median(ts), "capture_s": capture}
    if impl == "torch":
        out["threads"] = threads
    if mode == "compiled":
        out["kernels"] = step.stats["kernels"]
        out["replayed"] = step.stats["replayed"]
    print(json.dumps(out))


def _run_one(cfg, model, batch, repeat):
    impl, backend, mode = cfg
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    r = subprocess.run([sys.executable, __file__, "--worker", impl, backend, mode, model,
                        str(batch), str(repeat)], capture_output=True, text=True, env=env,
                       timeout=600)
    if r.returncode:
        raise RuntimeError(f"{cfg} {model}: {r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=60, help="timed steps per process")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--out", default=None, help="write the Markdown report here")
    ap.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        impl, backend, mode, model, batch, repeat = a.worker
        return _worker(impl, backend, mode, model, int(batch), int(repeat))
    configs = [c for c in CONFIGS if not (a.no_torch and c[0] == "torch")]
    models = a.models.split(",")
    load_before = os.getloadavg()
    rows = {(m, c): [] for m in models for c in configs}
    for r in range(a.rounds):
        for m in models:
            for c in configs:
                rows[(m, c)].append(_run_one(c, m, a.batch, a.repeat))
        print(f"round {r + 1}/{a.rounds} done", file=sys.stderr, flush=True)
    load_after = os.getloadavg()
    text = _report(a, models, configs, rows, load_before, load_after)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


def _label(c):
    impl, backend, mode = c
    return "PyTorch CPU eager" if impl == "torch" else f"gradflow {backend} {mode}"


def _torch_threads(rows):
    seen = {r.get("threads") for rs in rows.values() for r in rs if r.get("threads")}
    return "/".join(str(t) for t in sorted(seen)) or "no"


def _report(a, models, configs, rows, load_before, load_after):
    lines = ["# Captured training steps (`gradflow.compile`) vs eager", "",
             f"Command: `python benchmarks/bench_compile.py --rounds {a.rounds} --repeat {a.repeat}"
             f" --batch {a.batch}`  ",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
             f"{platform.python_version()}; load average (1/5/15 min) before "
             f"{'/'.join(f'{x:.2f}' for x in load_before)}, after "
             f"{'/'.join(f'{x:.2f}' for x in load_after)}  ",
             f"Each figure: the median over {a.rounds} alternating processes of each process's "
             f"median of {a.repeat} steps (float32, batch {a.batch}, SGD momentum 0.9); PyTorch "
             f"with {_torch_threads(rows)} intra-op threads (its default unless "
             f"BENCH_TORCH_THREADS is set); gradflow with one BLAS thread (numba runs its conv "
             f"chunks on its own pool, one task per core). Ratios are taken within each round, "
             f"then the median.", ""]
    for m in models:
        lines += [f"## {m} (batch {a.batch})", "",
                  "| configuration | step ms (median) | min..max over rounds | capture s | "
                  "kernels/replay |", "|---|---:|---:|---:|---:|"]
        for c in configs:
            ms = [r["median_ms"] for r in rows[(m, c)]]
            cap = [r["capture_s"] for r in rows[(m, c)] if r.get("capture_s") is not None]
            kern = rows[(m, c)][0].get("kernels", "")
            lines.append(f"| {_label(c)} | {statistics.median(ms):.3f} | {min(ms):.3f}..{max(ms):.3f} "
                         f"| {statistics.median(cap):.3f} |" if cap else
                         f"| {_label(c)} | {statistics.median(ms):.3f} | {min(ms):.3f}..{max(ms):.3f} "
                         f"| |")
            lines[-1] += f" {kern} |"
        lines += ["", "| ratio (same round, median) | value |", "|---|---:|"]
        pairs = [(("gradflow", b, "compiled"), ("gradflow", b, "eager")) for b in ("numba", "numpy")]
        if ("torch", "cpu", "eager") in configs:
            pairs += [(("gradflow", b, mode), ("torch", "cpu", "eager"))
                      for b in ("numba", "numpy") for mode in ("compiled", "eager")]
        for num, den in pairs:
            if num in configs and den in configs:
                rs = [x["median_ms"] / y["median_ms"] for x, y in zip(rows[(m, num)], rows[(m, den)])]
                lines.append(f"| {_label(num)} / {_label(den)} | {statistics.median(rs):.2f}x |")
        lines.append("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
