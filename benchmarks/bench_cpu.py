"""CPU benchmark: gradflow numpy vs gradflow numba vs PyTorch, in one run.

Workloads (float32, the ones in ../shared/bench/PEERS.md and issue 4, same
seeds/data as the peer scripts so the first-step losses agree):

  W1  MLP 784-256-10, batch 64, train step (SGD momentum 0.9)
  W2  LeNet-5, batch 64 and 256, train step
  W3  conv2d N=64 C=32 32x32, 64 filters 3x3 pad 1: forward (input requires grad),
      forward + backward (dx, dW)
  W4  max-pool 2x2/2 on 64x64x32x32: forward, forward + backward

A train step is ``opt.zero_grad(); loss = F.cross_entropy(model(x), y);
loss.backward(); opt.step()`` with gradflow.nn / gradflow.optim (the user's
path) and the same with torch.nn / torch.optim.

Timing: per workload the implementations alternate for ``--rounds`` rounds;
each round runs warm-up calls then >= ``--iters`` timed calls; the reported
figure is the median over all timed calls. The numba compile time is reported
separately: a fresh process compiling every kernel into an empty cache (cold),
then a second process loading them (warm).

    python benchmarks/bench_cpu.py [--quick] [--out benchmarks/results/cpu.md]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import gradflow  # noqa: E402
import gradflow.nn as gnn  # noqa: E402
import gradflow.nn.functional as GF  # noqa: E402

LR, MOMENTUM = 0.01, 0.9


# ---------------------------------------------------------------- data (as the peer scripts)
def mnist_like_batch(n, seed=0, flat=False):
    r = np.random.default_rng(seed)
    x = r.random((n, 1, 28, 28), dtype=np.float32)
    y = r.integers(0, 10, size=n).astype(np.int64)
    return (x.reshape(n, 784) if flat else x), y


def _uniform(r, shape, fan_in):
    b = 1.0 / np.sqrt(fan_in)
    return r.uniform(-b, b, size=shape).astype(np.float32)


def mlp_params(seed=1):
    r = np.random.default_rng(seed)
    return {"fc1.weight": _uniform(r, (256, 784), 784), "fc1.bias": _uniform(r, (256,), 784),
            "fc2.weight": _uniform(r, (10, 256), 256), "fc2.bias": _uniform(r, (10,), 256)}


def lenet_params(seed=2):
    r = np.random.default_rng(seed)
    return {"conv1.weight": _uniform(r, (6, 1, 5, 5), 25), "conv1.bias": _uniform(r, (6,), 25),
            "conv2.weight": _uniform(r, (16, 6, 5, 5), 150), "conv2.bias": _uniform(r, (16,), 150),
            "fc1.weight": _uniform(r, (120, 400), 400), "fc1.bias": _uniform(r, (120,), 400),
            "fc2.weight": _uniform(r, (84, 120), 120), "fc2.bias": _uniform(r, (84,), 120),
            "fc3.weight": _uniform(r, (10, 84), 84), "fc3.bias": _uniform(r, (10,), 84)}


def conv_data(seed=3):
    r = np.random.default_rng(seed)
    x = r.standard_normal((64, 32, 32, 32), dtype=np.float32)
    w = (r.standard_normal((64, 32, 3, 3), dtype=np.float32) * 0.05).astype(np.float32)
    gy = r.standard_normal((64, 64, 32, 32), dtype=np.float32)
    return x, w, gy


def pool_data(seed=4):
    r = np.random.default_rng(seed)
    return (r.standard_normal((64, 64, 32, 32), dtype=np.float32),
            r.standard_normal((64, 64, 16, 16), dtype=np.float32))


CONV_FWD_FLOP = 2 * 64 * 64 * 32 * 32 * 32 * 9   # 2.416 GFLOP


# ---------------------------------------------------------------- models
class GMLP(gnn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = gnn.Linear(784, 256), gnn.Linear(256, 10)

    def forward(self, x):
        return self.fc2(GF.relu(self.fc1(x)))


class GLeNet(gnn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = gnn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = gnn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = gnn.Linear(400, 120), gnn.Linear(120, 84), gnn.Linear(84, 10)

    def forward(self, x):
        x = GF.max_pool2d(GF.relu(self.conv1(x)), 2, 2)
        x = GF.max_pool2d(GF.relu(self.conv2(x)), 2, 2)
        x = x.flatten(1)
        return self.fc3(GF.relu(self.fc2(GF.relu(self.fc1(x)))))


def gf_model(cls, params, be):
    with gradflow.backend(be):
        m = cls()
        m.load_state_dict({k: gradflow.tensor(v) for k, v in params.items()})
    return m.to(be)


def gf_step_fn(model, be, x, y):
    opt = gradflow.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    xt = gradflow.tensor(x).to(be)
    yt = gradflow.tensor(y).to(be)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = GF.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()
        return loss
    return step


def torch_setup():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(2)
    return torch


def torch_models(torch):
    nn, F = torch.nn, torch.nn.functional

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(784, 256), nn.Linear(256, 10)

        def forward(self, x):
            return self.fc2(F.relu(self.fc1(x)))

    class LeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2, 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2, 2)
            return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x.flatten(1))))))
    return MLP, LeNet


def torch_step_fn(torch, cls, params, x, y):
    m = cls()
    m.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
    opt = torch.optim.SGD(m.parameters(), lr=LR, momentum=MOMENTUM)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    F = torch.nn.functional

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(m(xt), yt)
        loss.backward()
        opt.step()
        return loss
    return step


# ---------------------------------------------------------------- timing
def timed(fn, warmup, iters, target_s=1.0):
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    fn()
    est = max(time.perf_counter() - t0, 1e-6)
    n = int(min(300, max(iters, target_s / est)))
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def run_workload(impls, rounds, warmup, iters, target_s):
    """impls: {label: fn}; alternate them; {label: median ms}."""
    samples = {k: [] for k in impls}
    for _ in range(rounds):
        for k, fn in impls.items():
            samples[k] += timed(fn, warmup, iters, target_s)
    return {k: statistics.median(v) * 1e3 for k, v in samples.items()}


# ---------------------------------------------------------------- compile time
_COMPILE_SNIPPET = """
import time, json
t0 = time.perf_counter()
from gradflow.backends import get_backend
be = get_backend('numba')
per = be.compile_all()
print(json.dumps({'total_s': time.perf_counter() - t0, 'kernels': len(per)}))
"""


def compile_times():
    import json
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as d:
        env["NUMBA_CACHE_DIR"] = d
        res = []
        for _ in range(2):  # cold (empty cache), then warm (loads from it)
            out = subprocess.run([sys.executable, "-c", _COMPILE_SNIPPET], env=env, cwd=os.path.dirname(HERE),
                                 capture_output=True, text=True, check=True).stdout
            res.append(json.loads(out.strip().splitlines()[-1]))
    return res


# ---------------------------------------------------------------- machine line
def machine_line(torch):
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    be = gradflow.get_backend("numba").info() if "numba" in gradflow.available_backends() else {}
    parts = [f"{cpu}, {os.cpu_count()} cores", f"python {platform.python_version()}",
             f"numpy {np.__version__}"]
    if be:
        parts.append(f"numba {be['numba']} (threading layer {be['threading_layer']}, "
                     f"{be['threads']} threads, cache {be['cache_dir']})")
    if torch is not None:
        parts.append(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    parts.append(gemm_ceiling(torch))
    try:
        parts.append("loadavg at the end " + " ".join(open("/proc/loadavg").read().split()[:3]))
    except OSError:
        pass
    return "; ".join(parts)


def gemm_ceiling(torch, n=1024):
    """float32 n x n GEMM GFLOP/s (best of 10): numpy's BLAS and torch.mm."""
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    out = []
    fns = [("numpy sgemm", lambda: a @ a)]
    if torch is not None:
        ta = torch.from_numpy(a)
        fns.append(("torch.mm", lambda: ta @ ta))
    for name, f in fns:
        f()
        best = min(_t(f) for _ in range(10))
        out.append(f"{name} {2 * n ** 3 / best / 1e9:.0f} GFLOP/s")
    return f"GEMM ceiling n={n}: " + ", ".join(out)


def _t(f):
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


# ---------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--only", default="", help="comma list of workload ids (W1,W2_64,...)")
    ap.add_argument("--backends", default="numpy,numba")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-compile", action="store_true", help="skip the cold/warm compile timing")
    ap.add_argument("--out", default="", help="also write the markdown table here")
    a = ap.parse_args(argv)
    warmup, target = (2, 0.2) if a.quick else (5, 1.0)
    iters = 5 if a.quick else a.iters
    rounds = 1 if a.quick else a.rounds
    torch = None if a.no_torch else torch_setup()
    bes = [b for b in a.backends.split(",") if b in gradflow.available_backends()]
    only = set(a.only.split(",")) if a.only else None

    compile_info = None
    if "numba" in bes and not a.no_compile:
        compile_info = compile_times()
    first_call = {}
    if "numba" in bes:
        t0 = time.perf_counter()
        gradflow.get_backend("numba")
        first_call["backend init"] = time.perf_counter() - t0

    rows = []   # (workload, {label: ms}, flop or None, extra note)

    def want(wid):
        return only is None or wid in only

    def add(wid, title, impls, flop=None):
        if not want(wid):
            return
        res = run_workload(impls, rounds, warmup, iters, target)
        rows.append((title, res, flop))
        print(f"{title:44s} " + "  ".join(f"{k}={v:8.3f}ms" for k, v in res.items()), flush=True)

    losses = {}
    if torch is not None:
        TMLP, TLeNet = torch_models(torch)

    # W1 MLP
    x, y = mnist_like_batch(64, flat=True)
    impls = {}
    for be in bes:
        f = gf_step_fn(gf_model(GMLP, mlp_params(), be), be, x, y)
        t0 = time.perf_counter()
        losses[("W1", be)] = float(f().item())
        first_call[f"W1 first step {be}"] = time.perf_counter() - t0
        impls[be] = f
    if torch is not None:
        f = torch_step_fn(torch, TMLP, mlp_params(), x, y)
        losses[("W1", "torch")] = float(f().item())
        impls["torch"] = f
    add("W1", "W1 MLP 784-256-10 b64 train step", impls)

    for bs in (64, 256):
        x, y = mnist_like_batch(bs)
        impls = {}
        for be in bes:
            f = gf_step_fn(gf_model(GLeNet, lenet_params(), be), be, x, y)
            t0 = time.perf_counter()
            losses[(f"W2_{bs}", be)] = float(f().item())
            first_call[f"W2 b{bs} first step {be}"] = time.perf_counter() - t0
            impls[be] = f
        if torch is not None:
            f = torch_step_fn(torch, TLeNet, lenet_params(), x, y)
            losses[(f"W2_{bs}", "torch")] = float(f().item())
            impls["torch"] = f
        add(f"W2_{bs}", f"W2 LeNet-5 b{bs} train step", impls)

    # W3 conv
    xn, wn, gyn = conv_data()
    fwd, fb = {}, {}
    for be in bes:
        with gradflow.backend(be):
            xt = gradflow.tensor(xn, requires_grad=True)
            wt = gradflow.tensor(wn, requires_grad=True)
            gt = gradflow.tensor(gyn)

        def f_fwd(xt=xt, wt=wt):
            return GF.conv2d(xt, wt, padding=1)

        def f_fb(xt=xt, wt=wt, gt=gt):
            xt.grad = wt.grad = None
            GF.conv2d(xt, wt, padding=1).backward(gt)
        fwd[be], fb[be] = f_fwd, f_fb
    if torch is not None:
        F = torch.nn.functional
        tx = torch.from_numpy(xn).requires_grad_(True)
        tw = torch.from_numpy(wn).requires_grad_(True)
        tg = torch.from_numpy(gyn)

        def t_fwd():
            return F.conv2d(tx, tw, padding=1)

        def t_fb():
            tx.grad = tw.grad = None
            F.conv2d(tx, tw, padding=1).backward(tg)
        fwd["torch"], fb["torch"] = t_fwd, t_fb
    add("W3_fwd", "W3 conv 64x32x32x32 * 64x3x3 p1, fwd", fwd, CONV_FWD_FLOP)
    add("W3_fb", "W3 conv, fwd+bwd (dx, dW)", fb, 3 * CONV_FWD_FLOP)

    # W4 pool
    xn, gyn = pool_data()
    fwd, fb = {}, {}
    for be in bes:
        with gradflow.backend(be):
            xt = gradflow.tensor(xn, requires_grad=True)
            gt = gradflow.tensor(gyn)

        def p_fwd(xt=xt):
            return GF.max_pool2d(xt, 2, 2)

        def p_fb(xt=xt, gt=gt):
            xt.grad = None
            GF.max_pool2d(xt, 2, 2).backward(gt)
        fwd[be], fb[be] = p_fwd, p_fb
    if torch is not None:
        F = torch.nn.functional
        px = torch.from_numpy(xn).requires_grad_(True)
        pg = torch.from_numpy(gyn)

        def tp_fwd():
            return F.max_pool2d(px, 2, 2)

        def tp_fb():
            px.grad = None
            F.max_pool2d(px, 2, 2).backward(pg)
        fwd["torch"], fb["torch"] = tp_fwd, tp_fb
    add("W4_fwd", "W4 maxpool 2x2/2 on 64x64x32x32, fwd", fwd)
    add("W4_fb", "W4 maxpool, fwd+bwd", fb)

    md = render(rows, bes, torch, compile_info, first_call, losses, rounds, iters, warmup)
    print()
    print(md)
    if a.out:
        with open(a.out, "w") as f:
            f.write(md)


TARGETS = {"W1 MLP": ("<=", 1.0), "W2 LeNet-5 b64": ("<=", 1.0), "W2 LeNet-5 b256": ("<=", 1.0),
           "W3 conv 64": ("<=", 1.2), "W3 conv, fwd+bwd": ("<=", 1.2), "W4 maxpool, fwd+bwd": ("<=", 0.7)}


def render(rows, bes, torch, compile_info, first_call, losses, rounds, iters, warmup):
    labels = list(bes) + (["torch"] if torch is not None else [])
    lines = ["# gradflow CPU benchmark (benchmarks/bench_cpu.py)", "",
             f"Machine: {machine_line(torch)}", "",
             f"float32; median ms over all timed calls; {rounds} alternating round(s) per workload, "
             f"each {warmup} warm-up + >= {iters} timed calls (about 1 s). Ratios are same-run.", ""]
    hdr = "| workload | " + " | ".join(f"{l} (ms)" for l in labels)
    if "numba" in bes and torch is not None:
        hdr += " | numba / torch | target"
    if "numba" in bes and "numpy" in bes:
        hdr += " | numpy / numba"
    hdr += " | GFLOP/s (" + ", ".join(labels) + ") |"
    lines.append(hdr)
    lines.append("|" + "---|" * (hdr.count("|") - 1))
    for title, res, flop in rows:
        cells = [f"{res[l]:.3f}" if l in res else "-" for l in labels]
        row = f"| {title} | " + " | ".join(cells)
        if "numba" in bes and torch is not None:
            r = res["numba"] / res["torch"]
            tgt = next((t for k, t in TARGETS.items() if title.startswith(k)), None)
            ok = "" if tgt is None else (f"<= {tgt[1]} " + ("met" if r <= tgt[1] else "MISSED"))
            row += f" | {r:.2f}x | {ok}"
        if "numba" in bes and "numpy" in bes:
            row += f" | {res['numpy'] / res['numba']:.2f}x"
        row += " | " + (", ".join(f"{flop / res[l] / 1e6:.0f}" for l in labels) if flop else "") + " |"
        lines.append(row)
    lines.append("")
    if compile_info:
        cold, warm = compile_info
        lines.append(f"Numba compile time (all {cold['kernels']} kernels x float32/float64, separate "
                     f"processes, fresh cache dir): cold {cold['total_s']:.1f} s, warm (loaded from "
                     f"the on-disk cache) {warm['total_s']:.2f} s.")
    if first_call:
        lines.append("First calls in this process (cache already warm; includes one-off setup): " +
                     ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in first_call.items()) + ".")
    if losses:
        wl = sorted({w for w, _ in losses})
        lines.append("First-step losses (same weights and data as ../shared/bench/peers): " +
                     "; ".join(f"{w}: " + ", ".join(f"{l} {losses[(w, l)]:.6f}" for l in labels
                                                   if (w, l) in losses) for w in wl) + ".")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
