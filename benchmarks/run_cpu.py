"""Reproduce benchmarks/results/bench-cpu.md: wait until the machine is quiet,
then run `gradflow bench --compare-torch` (all workloads, default sizes) and
write the report, JSON and plot next to each other.

    python benchmarks/run_cpu.py                      # -> benchmarks/results/bench-cpu.md
    python benchmarks/run_cpu.py --name bench-cpu-sweep -- --workloads lenet5_step \\
        --batch-sizes 1,16,64,256,1024

Arguments after ``--`` go to ``gradflow bench``. On a shared machine the wait
matters: with other processes running, a 2-core box gives inflated and
scheduler-quantised times (the report warns when the load average was high).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def wait_for_quiet(max_load: float, max_wait_s: float, poll_s: float = 10.0) -> float:
    """Block until the 1-minute load average is below ``max_load`` (or the wait runs out)."""
    t0 = time.time()
    while True:
        load = os.getloadavg()[0]
        if load < max_load or time.time() - t0 >= max_wait_s:
            return load
        print(f"run_cpu: load average {load:.2f} >= {max_load}; waiting...", file=sys.stderr)
        time.sleep(poll_s)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", default="bench-cpu", help="output basename in benchmarks/results/")
    p.add_argument("--max-load", type=float, default=1.0, help="start when the 1-min load is below this")
    p.add_argument("--max-wait", type=float, default=900, help="seconds to wait at most for a quiet machine")
    args = p.parse_args(argv)
    load = wait_for_quiet(args.max_load, args.max_wait)
    print(f"run_cpu: starting at load average {load:.2f}", file=sys.stderr)
    from gradflow.cli import main as gradflow_main
    base = os.path.join(HERE, "results", args.name)
    return gradflow_main(["bench", "--compare-torch", "-o", base + ".md", "--json", base + ".json",
                          "--plot", base + ".png", "--no-progress", *extra])


if __name__ == "__main__":
    sys.exit(main())
