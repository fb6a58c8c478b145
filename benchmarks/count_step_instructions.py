"""Instructions per training step, counted by valgrind's callgrind: a measure of the
engine's cost that does not move with the machine's load (wall-clock medians on a
shared 2-core machine moved by 2x between runs while this was written).

For each source tree, the step runs ``--base`` and ``--base + --steps`` times in two
processes under callgrind; the difference divided by ``--steps`` is the cost of one
warm step (imports, set-up and the first steps cancel out). The NumPy backend only:
Numba's JIT under callgrind would take hours.

    python benchmarks/count_step_instructions.py --trees OLD_TREE,NEW_TREE \\
        --workloads lenet5_step,mlp_step
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile

_CHILD = """
import sys
from gradflow.bench.models import gradflow_step
step = gradflow_step(sys.argv[1], "numpy", "float32", int(sys.argv[3]))
for _ in range(int(sys.argv[2])):
    step()
"""


def count(tree, workload, n_steps, batch):
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "steps.py")
        with open(script, "w") as f:
            f.write(_CHILD)
        env = dict(os.environ, PYTHONPATH=tree, OPENBLAS_NUM_THREADS="1")
        p = subprocess.run(["valgrind", "--tool=callgrind",
                            f"--callgrind-out-file={os.path.join(tmp, 'cg.out')}", sys.executable,
                            script, workload, str(n_steps), str(batch)],
                           env=env, cwd=tree, capture_output=True, text=True, check=True)
    m = re.search(r"Collected : (\d+)", p.stderr)
    if m is None:
        raise RuntimeError(f"callgrind printed no total:\n{p.stderr[-2000:]}")
    return int(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trees", required=True, help="comma-separated source trees")
    ap.add_argument("--workloads", default="lenet5_step,mlp_step")
    ap.add_argument("--base", type=int, default=1, help="steps in the reference process")
    ap.add_argument("--steps", type=int, default=5, help="extra steps counted")
    ap.add_argument("--batch", type=int, default=64)
    a = ap.parse_args()
    trees = a.trees.split(",")
    print(f"instructions per warm step (millions), NumPy backend, batch {a.batch}, "
          f"{a.steps} steps counted")
    print("| workload | " + " | ".join(trees) + " | ratio (last/first) |")
    print("|---|" + "---:|" * (len(trees) + 1))
    for w in a.workloads.split(","):
        per = [(count(t, w, a.base + a.steps, a.batch) - count(t, w, a.base, a.batch)) / a.steps
               for t in trees]
        print(f"| {w} | " + " | ".join(f"{v / 1e6:.1f}" for v in per) +
              f" | {per[-1] / per[0]:.3f}x |")


if __name__ == "__main__":
    main()
