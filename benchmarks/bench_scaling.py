"""Data-parallel scaling on one machine: a training step of LeNet-5 and of the small
VGG-style CIFAR net (the ``gradflow bench`` networks) at 1, 2, ... processes, with the
global batch fixed (each of N ranks takes batch/N samples), so images/s at N processes
over images/s at 1 process, divided by N, is the scaling efficiency.

    python benchmarks/bench_scaling.py                         # 1 and 2 processes
    python benchmarks/bench_scaling.py --procs 1,2,4 --batch 128 --steps 30 --json out.json

1 process is plain training (no process group, no DistributedDataParallel); N > 1 runs
``mpiexec -n N`` with DDP (MPI engine, float32, numpy backend, one BLAS thread per rank).
Needs the distributed extra (``pip install -e ".[distributed]"``).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def worker(workload, batch, steps, warmup):
    import numpy as np

    import gradflow as gf
    import gradflow.distributed as dist
    from gradflow.bench.models import SPECS, batch as make_batch, gradflow_nn_model, init_weights
    from gradflow.nn import functional as F
    world = dist.launched_world_size()
    if world > 1:
        dist.init_process_group("mpi")
    rank = dist.get_rank() if world > 1 else 0
    model = gradflow_nn_model(SPECS[workload], init_weights(SPECS[workload], np.float32))
    net = gf.nn.DistributedDataParallel(model) if world > 1 else model
    opt = gf.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = make_batch(workload, batch, np.float32)
    per = batch // world
    x, y = gf.tensor(x[rank * per:(rank + 1) * per]), gf.tensor(y[rank * per:(rank + 1) * per])
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    if world > 1:  # the slowest rank's median is the job's step time
        t = gf.tensor([statistics.median(times)], dtype=gf.float64)
        dist.all_reduce(t, dist.ReduceOp.MAX)
        med = t.item()
        dist.destroy_process_group()
    else:
        med = statistics.median(times)
    if rank == 0:
        q = statistics.quantiles(times, n=4) if len(times) > 1 else [med, med, med]
        print(json.dumps({"workload": workload, "procs": world, "batch": batch,
                          "median_s": med, "iqr_s": q[2] - q[0]}), flush=True)


def measure(workload, procs, batch, steps, warmup):
    from gradflow.distributed.launch import find_mpiexec
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, __file__, "--worker", workload, str(batch), str(steps), str(warmup)]
    if procs > 1:
        cmd = [find_mpiexec(), "-n", str(procs)] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None):
    if argv is None and sys.argv[1:2] == ["--worker"]:
        w, b, s, wu = sys.argv[2:6]
        return worker(w, int(b), int(s), int(wu))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--procs", default="1,2", help="process counts (default 1,2)")
    p.add_argument("--workloads", default="lenet5_step,convnet_step")
    p.add_argument("--batch", type=int, default=64, help="global batch (default 64)")
    p.add_argument("--steps", type=int, default=20, help="timed steps (default 20)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--json", default=None, help="also write the rows here")
    args = p.parse_args(argv)
    procs = [int(n) for n in args.procs.split(",")]
    rows = []
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    print(f"{'workload':<14} {'procs':>5} {'step ms':>9} {'IQR ms':>8} {'images/s':>9} {'efficiency':>10}")
    for w in args.workloads.split(","):
        base = None
        for n in procs:
            r = measure(w, n, args.batch, args.steps, args.warmup)
            r["images_per_s"] = args.batch / r["median_s"]
            base = r["images_per_s"] if n == 1 else base
            r["efficiency"] = r["images_per_s"] / base / n if base else None
            rows.append(r)
            eff = f"{100 * r['efficiency']:.0f}%" if r["efficiency"] is not None else "-"
            print(f"{w:<14} {n:>5} {1e3 * r['median_s']:>9.1f} {1e3 * r['iqr_s']:>8.1f} "
                  f"{r['images_per_s']:>9.0f} {eff:>10}", flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
