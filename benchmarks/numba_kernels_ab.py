"""Before/after timing of the numba backend's kernels: two gradflow checkouts, alternating.

For each of ``--rounds`` rounds, one fresh process per checkout (``--before`` then
``--after``, or the reverse on odd rounds) times, on the numba backend in float32,
the kernels a window-loop change touches -- im2col/col2im through conv2d
forward/backward, max pooling (the 2x2 fast path and the general path), average
pooling -- and a LeNet-5 train step at batch 64, each as the median of
``--iters`` calls after warm-up. Inputs stay under the backend's
``parallel_min_bytes``, so every kernel runs on the calling thread in both
checkouts. Printed: per case the median over rounds of each side's medians, and
after/before (< 1: after is faster).

    python benchmarks/numba_kernels_ab.py --before /path/to/old --after . [--rounds 5]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

_CHILD = r"""
import json, sys, time
import numpy as np
import gradflow as gf
from gradflow import optim
from gradflow.nn import functional as F
from gradflow.nn.models import build_model

iters = int(sys.argv[1])
be = gf.backends.get_backend("numba")
rng = np.random.default_rng(0)
f32 = lambda *s: rng.standard_normal(s).astype(np.float32)

def med(fn):
    for _ in range(3):
        fn()
    ts = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return sorted(ts)[len(ts) // 2]

x1, w1 = f32(64, 6, 14, 14), f32(16, 6, 5, 5)            # LeNet conv2
y1 = be.conv2d_forward(x1, w1, None, (1, 1), (0, 0), (1, 1), 1)
x2, w2 = f32(16, 16, 32, 32), f32(32, 16, 3, 3)          # 3x3, stride 2, pad 1
y2 = be.conv2d_forward(x2, w2, None, (2, 2), (1, 1), (1, 1), 1)
xp = f32(64, 6, 28, 28)
yp, ip = be.max_pool2d_forward(xp, (2, 2), (2, 2), (0, 0))
xq = f32(16, 16, 32, 32)
yq, iq = be.max_pool2d_forward(xq, (3, 3), (2, 2), (1, 1))
ya = be.avg_pool2d_forward(xq, (3, 3), (2, 2), (1, 1))
res = {
 "conv 64x6x14x14*16x6x5x5 fwd": med(lambda: be.conv2d_forward(x1, w1, None, (1, 1), (0, 0), (1, 1), 1)),
 "conv 64x6x14x14*16x6x5x5 bwd": med(lambda: be.conv2d_backward(x1, w1, y1, (1, 1), (0, 0), (1, 1), 1)),
 "conv 16x16x32x32*32x16x3x3 s2 p1 fwd": med(lambda: be.conv2d_forward(x2, w2, None, (2, 2), (1, 1), (1, 1), 1)),
 "conv 16x16x32x32*32x16x3x3 s2 p1 bwd": med(lambda: be.conv2d_backward(x2, w2, y2, (2, 2), (1, 1), (1, 1), 1)),
 "maxpool 2x2 64x6x28x28 fwd": med(lambda: be.max_pool2d_forward(xp, (2, 2), (2, 2), (0, 0))),
 "maxpool 2x2 64x6x28x28 bwd": med(lambda: be.max_pool2d_backward(yp, ip, xp.shape, (2, 2), (2, 2), (0, 0))),
 "maxpool 3x3 s2 p1 16x16x32x32 fwd": med(lambda: be.max_pool2d_forward(xq, (3, 3), (2, 2), (1, 1))),
 "avgpool 3x3 s2 p1 16x16x32x32 fwd": med(lambda: be.avg_pool2d_forward(xq, (3, 3), (2, 2), (1, 1))),
 "avgpool 3x3 s2 p1 16x16x32x32 bwd": med(lambda: be.avg_pool2d_backward(ya, xq.shape, (3, 3), (2, 2), (1, 1))),
}
gf.set_backend("numba")
gf.manual_seed(0)
model = build_model("lenet5", 1, 28, 10)
opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
x = gf.from_numpy(f32(64, 1, 28, 28))
y = gf.from_numpy(rng.integers(0, 10, 64))
def step():
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()
res["LeNet-5 b64 train step"] = med(step)
print(json.dumps(res))
"""


def run(src, iters):
    env = dict(os.environ, PYTHONPATH=os.path.abspath(src))
    env.pop("GRADFLOW_BACKEND", None)
    out = subprocess.run([sys.executable, "-c", _CHILD, str(iters)], env=env,
                         cwd=os.path.abspath(src), capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{src}: child failed\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", default=".")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    runs = {"before": [], "after": []}
    order = ["before", "after"]
    for r in range(a.rounds):
        for side in (order if r % 2 == 0 else order[::-1]):
            runs[side].append(run(getattr(a, side), a.iters))
        print(f"round {r + 1}/{a.rounds} done", flush=True)
    cases = list(runs["before"][0])
    print(f"\n{'case':40s} {'before ms':>10s} {'after ms':>10s} {'after/before':>12s}")
    summary = {}
    for c in cases:
        b = statistics.median(x[c] for x in runs["before"]) * 1e3
        f = statistics.median(x[c] for x in runs["after"]) * 1e3
        summary[c] = {"before_ms": b, "after_ms": f, "ratio": f / b}
        print(f"{c:40s} {b:10.3f} {f:10.3f} {f / b:12.2f}")
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    print(f"(median of {a.rounds} alternating rounds x {a.iters} calls; {os.cpu_count()} cores, "
          f"1-min load at the end {load:.1f})")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"summary": summary, "runs": runs, "load_1min": load}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
