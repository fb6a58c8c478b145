"""The engine's fixed cost per op, forward and backward, and a LeNet-5 / MLP step.

Run it against two checkouts to compare engines in alternating processes, e.g.
``python benchmarks/bench_engine_overhead.py --trees /path/old,/path/new``: each
measurement is a fresh process with ``PYTHONPATH`` set to one tree, alternated
``--rounds`` times; medians and the new/old ratio are printed. Without ``--trees``
it measures the tree it is run from, in this process.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def _measure(backend, repeat):
    import gradflow as gf

    out = {}
    with gf.backend(backend):
        x = gf.randn(8, 8, requires_grad=True)

        def chain():  # 40 tiny ops forward, then their backward
            y = x
            for _ in range(10):
                y = (y * 1.01 + 0.1).tanh() - y * 0.5
            y.sum().backward()

        for name, fn in (("tiny_op_chain_40", chain),):
            for _ in range(3):
                fn()
            ts = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                fn()
                ts.append(time.perf_counter() - t0)
            out[name] = statistics.median(ts) * 1e3
    from gradflow.bench.models import gradflow_step  # the benchmark's own LeNet-5 / MLP steps
    for model_name in ("lenet5_step", "mlp_step"):
        step = gradflow_step(model_name, backend, "float32", 64)
        for _ in range(5):
            step()
        ts = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            step()
            ts.append(time.perf_counter() - t0)
        out[f"{model_name}_b64"] = statistics.median(ts) * 1e3
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", default="numba")
    ap.add_argument("--repeat", type=int, default=40)
    ap.add_argument("--trees", help="two comma-separated source trees to compare (old,new)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json-child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.json_child or not a.trees:
        res = _measure(a.backend, a.repeat)
        print(json.dumps(res) if a.json_child else "\n".join(f"{k}: {v:.3f} ms" for k, v in res.items()))
        return
    trees = a.trees.split(",")
    runs = {t: [] for t in trees}
    for _ in range(a.rounds):
        for t in trees:
            env = dict(os.environ, PYTHONPATH=t, OPENBLAS_NUM_THREADS="1")
            p = subprocess.run([sys.executable, os.path.abspath(__file__), "--json-child",
                                "--backend", a.backend, "--repeat", str(a.repeat)],
                               env=env, cwd=t, capture_output=True, text=True, check=True)
            runs[t].append(json.loads(p.stdout.strip().splitlines()[-1]))
    keys = list(runs[trees[0]][0])
    print(f"backend {a.backend}, {a.rounds} alternating rounds x {a.repeat} calls; medians in ms")
    print("| measurement | " + " | ".join(trees) + " | ratio (2nd/1st) |")
    print("|---|" + "---:|" * (len(trees) + 1))
    for k in keys:
        med = [statistics.median(r[k] for r in runs[t]) for t in trees]
        print(f"| {k} | " + " | ".join(f"{m:.3f}" for m in med) + f" | {med[-1] / med[0]:.2f}x |")


if __name__ == "__main__":
    main()
