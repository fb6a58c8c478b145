"""Numba cold start: seconds from a fresh process to the end of its first LeNet-5 step.

Each measurement is a new Python process (so nothing is compiled or imported yet)
that imports gradflow, selects the numba backend, builds LeNet-5 (28x28 inputs, as
``gradflow train`` on the bundled digits) and runs train steps at batch 32
(``zero_grad; cross_entropy(model(x), y).backward(); SGD-Nesterov step``, as
``gradflow train`` does). It reports

* ``import``: ``import gradflow`` plus selecting the numba backend,
* ``first step``: the first train step (compiling or loading the kernels it needs),
* ``second step``: the next step, for scale,
* ``to first step``: process start (before ``import gradflow``) to the end of the
  first step -- the figure issue 19 asks to bring to <= 5 s,
* ``cpu to first step``: CPU seconds (user + system, all threads) the process used
  up to then -- on a busy machine the wall-clock figures stretch, this one much less,
* ``compile``: seconds inside numba compiling or loading kernels (backend's own count).

``cold`` runs against an empty ``NUMBA_CACHE_DIR``; ``warm`` reuses the folder the
cold run filled (a second run of ``gradflow train``); ``--warmup`` additionally
measures ``gradflow warmup`` (precompile into the cache, as ``make install`` does)
followed by a run against that cache. Runs alternate cold/warm ``--repeat`` times;
the medians are printed (and written as JSON with ``--json``).

    python benchmarks/cold_start.py [--repeat 3] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SRC = ROOT          # the gradflow checkout measured (--src)

_CHILD = r"""
import json, resource, sys, time
t_start = float(sys.argv[1])
t0 = time.perf_counter()
import gradflow as gf
from gradflow import nn, optim
from gradflow.nn import functional as F
from gradflow.nn.models import build_model
gf.set_backend("numba")
be = gf.current_backend()
t_import = time.perf_counter() - t0
gf.manual_seed(0)
model = build_model("lenet5", 1, 28, 10)
opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
x = gf.randn(32, 1, 28, 28)
y = gf.tensor([i % 10 for i in range(32)])
steps = []
for _ in range(2):
    t1 = time.perf_counter()
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    float(loss.item())
    steps.append(time.perf_counter() - t1)
    if len(steps) == 1:
        t_first = time.perf_counter()
        ru = resource.getrusage(resource.RUSAGE_SELF)
        cpu_first = ru.ru_utime + ru.ru_stime
stats = be.compile_stats() if hasattr(be, "compile_stats") else {}
print(json.dumps({"import": t_import, "first step": steps[0], "second step": steps[1],
                  "to first step": t_first - t_start,
                  "cpu to first step": cpu_first,
                  "compile": stats.get("seconds", float("nan")),
                  "kernels": stats.get("compiled", None)}))
"""


def _run(code, cache, extra_env=None):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=SRC + os.pathsep
               + os.environ.get("PYTHONPATH", ""))
    env.pop("GRADFLOW_BACKEND", None)
    env.update(extra_env or {})
    # the child's clock starts before the interpreter does: perf_counter is
    # system-wide monotonic on Linux, so the parent's reading is comparable
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, repr(t)], env=env, cwd=SRC,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"child failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _warmup(cache):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=SRC + os.pathsep
               + os.environ.get("PYTHONPATH", ""))
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gradflow", "warmup", "--quiet"], env=env, cwd=SRC,
                   check=True, capture_output=True)
    return time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--warmup", action="store_true", help="also time `gradflow warmup`")
    ap.add_argument("--json", default=None)
    ap.add_argument("--src", default=ROOT, help="gradflow checkout to measure (default: this one)")
    a = ap.parse_args(argv)
    global SRC
    SRC = os.path.abspath(a.src)
    runs = {"cold": [], "warm": []}
    if a.warmup:
        runs["gradflow warmup"] = []
        runs["after warmup"] = []
    for r in range(a.repeat):
        with tempfile.TemporaryDirectory(prefix="gf-cold-") as d:
            runs["cold"].append(_run(_CHILD, d))
            runs["warm"].append(_run(_CHILD, d))
        if a.warmup:
            with tempfile.TemporaryDirectory(prefix="gf-warmup-") as d:
                runs["gradflow warmup"].append({"to first step": _warmup(d)})
                runs["after warmup"].append(_run(_CHILD, d))
        print(f"round {r + 1}/{a.repeat}: " + ", ".join(
            f"{k} {v[-1]['to first step']:.2f} s" for k, v in runs.items()), flush=True)
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    med = {k: {m: statistics.median(x[m] for x in v) for m in v[0] if isinstance(v[0][m], float)}
           for k, v in runs.items()}
    print(f"\nmedians of {a.repeat} ({platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, python {platform.python_version()}, load {load:.2f}):")
    for k, v in med.items():
        print(f"  {k:16s} " + ", ".join(f"{m} {s:.2f} s" for m, s in v.items()))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"medians": med, "runs": runs, "load_1min": load,
                       "cpu_count": os.cpu_count(), "python": platform.python_version()}, f,
                      indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
