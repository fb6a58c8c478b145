"""Resident memory of LeNet-5 training on the numba backend with batch sizes varying 1-64.

Runs ``--steps`` SGD steps on random 28x28 inputs, the batch size drawn uniformly
from 1..64 each step (seeded), and prints the process's RSS (from
/proc/self/status, Linux) and the backend's ``memory_info()`` after every
``--every`` steps, then after ``gradflow.backends.empty_cache()``. Issue 16
measured 211 -> 446 MB with the pool that never shrank.

    python benchmarks/pool_rss.py [--steps 300] [--backend numba]
    GRADFLOW_SRC=/path/to/other/checkout python benchmarks/pool_rss.py   # before/after
"""
from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if os.environ.get("GRADFLOW_SRC"):        # measure another checkout (before/after)
    sys.path.insert(0, os.environ["GRADFLOW_SRC"])
else:
    sys.path.insert(0, os.path.dirname(HERE))


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--backend", default="numba")
    a = ap.parse_args(argv)

    import numpy as np

    import gradflow as gf
    from gradflow import optim
    try:
        from gradflow.backends import empty_cache
    except ImportError:                   # a checkout from before the pool had a bound
        empty_cache = None
    from gradflow.nn import functional as F
    from gradflow.nn.models import build_model

    gf.set_backend(a.backend)
    be = gf.current_backend()
    gf.manual_seed(0)
    rng = np.random.default_rng(0)
    model = build_model("lenet5", 1, 28, 10)
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    print(f"backend {be.name}; start: RSS {rss_mb():.0f} MB")
    for step in range(1, a.steps + 1):
        n = int(rng.integers(1, 65))
        x = gf.from_numpy(rng.standard_normal((n, 1, 28, 28)).astype(np.float32))
        y = gf.from_numpy(rng.integers(0, 10, n))
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        if step % a.every == 0:
            pool = be.memory_info().get("pool_bytes")
            print(f"step {step:4d}: RSS {rss_mb():6.0f} MB" +
                  (f", pool {pool / 2**20:.0f} MB" if pool is not None else ""), flush=True)
    if empty_cache is None:
        return 0
    empty_cache()
    pool = be.memory_info().get("pool_bytes")
    print(f"after empty_cache(): RSS {rss_mb():.0f} MB" +
          (f", pool {pool / 2**20:.0f} MB" if pool is not None else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
