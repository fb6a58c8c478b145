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

One process per implementation: on a 2-core machine, torch's OpenMP pool
(libgomp, whose idle threads spin) and gradflow numba's thread pools slow each
other down when they share a process (LeNet-5 b64 on numba: 7.8 ms next to
torch, 5.3 ms without it). So this script only orchestrates: for each of
``--rounds`` rounds it runs, one after the other, a fresh worker process per
implementation (``numpy``, ``numba``, ``torch``; itself with ``--worker IMPL``),
which runs every selected workload (warm-up calls, then >= ``--iters`` timed
calls) and prints the call durations as JSON on its last stdout line. Only the
torch worker imports torch; the parent sets no thread counts, so each worker
behaves as a user's script would (the numba backend pins BLAS itself). The
reported figure is the median over all timed calls of all rounds; first-step
losses, first-call times and library versions come from the first round. The
numba compile time is reported separately: a fresh process compiling every
kernel into an empty cache (cold), then a second process loading them (warm).

    python benchmarks/bench_cpu.py [--quick] [--out benchmarks/results/cpu.md]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

LR, MOMENTUM = 0.01, 0.9

# (id, table title, FLOP per call or None), in table order
WORKLOADS = [
    ("W1", "W1 MLP 784-256-10 b64 train step", None),
    ("W2_64", "W2 LeNet-5 b64 train step", None),
    ("W2_256", "W2 LeNet-5 b256 train step", None),
    ("W3_fwd", "W3 conv 64x32x32x32 * 64x3x3 p1, fwd", 2 * 64 * 64 * 32 * 32 * 32 * 9),  # 2.416 GFLOP
    ("W3_fb", "W3 conv, fwd+bwd (dx, dW)", 3 * 2 * 64 * 64 * 32 * 32 * 32 * 9),
    ("W4_fwd", "W4 maxpool 2x2/2 on 64x64x32x32, fwd", None),
    ("W4_fb", "W4 maxpool, fwd+bwd", None),
]
# train-step workloads: (model, batch size, name in the first-call line)
TRAIN_STEPS = {"W1": ("mlp", 64, "W1"), "W2_64": ("lenet", 64, "W2 b64"),
               "W2_256": ("lenet", 256, "W2 b256")}


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


def train_data(model, bs):
    x, y = mnist_like_batch(bs, flat=model == "mlp")
    return x, y, (mlp_params() if model == "mlp" else lenet_params())


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


# ---------------------------------------------------------------- models (same layers in both libraries)
def define_models(nn, F):
    """MLP and LeNet-5 classes for ``nn``/``F`` = gradflow.nn(.functional) or torch.nn(.functional)."""
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
    return {"mlp": MLP, "lenet": LeNet}


def step_fn(opt, model, loss_fn, x, y):
    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


# ---------------------------------------------------------------- the two libraries, behind one interface
class GradflowLib:
    """gradflow with backend ``be``; never imports torch."""

    def __init__(self, be):
        import gradflow
        import gradflow.nn
        import gradflow.nn.functional
        self.gf, self.F, self.be = gradflow, gradflow.nn.functional, be
        t0 = time.perf_counter()
        self.backend = gradflow.get_backend(be)
        self.init_s = time.perf_counter() - t0
        self.models = define_models(gradflow.nn, self.F)

    def tensor(self, a, requires_grad=False):
        with self.gf.backend(self.be):
            return self.gf.tensor(a, requires_grad=requires_grad)

    def train_step(self, model, bs):
        gf, be = self.gf, self.be
        x, y, params = train_data(model, bs)
        with gf.backend(be):
            m = self.models[model]()
            m.load_state_dict({k: gf.tensor(v) for k, v in params.items()})
        m = m.to(be)
        opt = gf.optim.SGD(m.parameters(), lr=LR, momentum=MOMENTUM)
        return step_fn(opt, m, self.F.cross_entropy, gf.tensor(x).to(be), gf.tensor(y).to(be))

    def info(self):
        out = self.backend.info() if self.be == "numba" else {}
        out["torch_imported"] = "torch" in sys.modules
        return out


class TorchLib:
    """PyTorch on the CPU, two threads (the machine's cores)."""

    def __init__(self):
        t0 = time.perf_counter()
        import torch
        torch.set_num_threads(2)
        self.init_s = time.perf_counter() - t0
        self.torch, self.F = torch, torch.nn.functional
        self.models = define_models(torch.nn, self.F)

    def tensor(self, a, requires_grad=False):
        return self.torch.from_numpy(a).requires_grad_(requires_grad)

    def train_step(self, model, bs):
        x, y, params = train_data(model, bs)
        m = self.models[model]()
        m.load_state_dict({k: self.torch.from_numpy(v) for k, v in params.items()})
        opt = self.torch.optim.SGD(m.parameters(), lr=LR, momentum=MOMENTUM)
        return step_fn(opt, m, self.F.cross_entropy, self.torch.from_numpy(x), self.torch.from_numpy(y))

    def info(self, n=1024):
        torch = self.torch
        a = torch.from_numpy(np.random.default_rng(0).random((n, n), dtype=np.float32))
        return {"torch": str(torch.__version__), "threads": torch.get_num_threads(),
                "gemm_gflops": gemm_gflops(lambda: a @ a, n)}


def conv_fn(lib, backward):
    xn, wn, gyn = conv_data()
    x, w = lib.tensor(xn, True), lib.tensor(wn, True)
    gy = lib.tensor(gyn)

    def fwd():
        return lib.F.conv2d(x, w, padding=1)

    def fwd_bwd():
        x.grad = w.grad = None
        lib.F.conv2d(x, w, padding=1).backward(gy)
    return fwd_bwd if backward else fwd


def pool_fn(lib, backward):
    xn, gyn = pool_data()
    x, gy = lib.tensor(xn, True), lib.tensor(gyn)

    def fwd():
        return lib.F.max_pool2d(x, 2, 2)

    def fwd_bwd():
        x.grad = None
        lib.F.max_pool2d(x, 2, 2).backward(gy)
    return fwd_bwd if backward else fwd


def make_case(lib, wid):
    if wid in TRAIN_STEPS:
        model, bs, _ = TRAIN_STEPS[wid]
        return lib.train_step(model, bs)
    kind, part = wid.split("_")
    return (conv_fn if kind == "W3" else pool_fn)(lib, backward=part == "fb")


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


def gemm_gflops(f, n):
    """float32 n x n GEMM GFLOP/s of ``f`` (best of 10)."""
    f()
    return 2 * n ** 3 / min(_t(f) for _ in range(10)) / 1e9


def _t(f):
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def settings(a):
    """(warmup, iters, target seconds per round, rounds) from the options."""
    return (2, 5, 0.2, 1) if a.quick else (5, a.iters, 1.0, a.rounds)


# ---------------------------------------------------------------- worker process
def worker(impl, wids, warmup, iters, target):
    """Time the workloads ``wids`` on ``impl`` in this process; a JSON-able dict."""
    lib = TorchLib() if impl == "torch" else GradflowLib(impl)
    out = {"impl": impl, "init_s": lib.init_s, "times": {}, "losses": {}, "first_step": {}}
    for wid in wids:
        fn = make_case(lib, wid)
        if wid in TRAIN_STEPS:
            t0 = time.perf_counter()
            out["losses"][wid] = float(fn().item())
            out["first_step"][wid] = time.perf_counter() - t0
        out["times"][wid] = timed(fn, warmup, iters, target)
    out["info"] = lib.info()
    return out


def run_worker(impl, wids, a):
    """Run one fresh worker process for ``impl``; its result dict."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", impl, "--only", ",".join(wids),
           "--iters", str(a.iters)] + (["--quick"] if a.quick else [])
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{impl} worker failed (exit {proc.returncode}):\n{proc.stdout}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    if res["info"].get("torch_imported"):
        print(f"warning: the {impl} worker imported torch", file=sys.stderr)
    return res


def run_rounds(labels, wids, rounds, a):
    """Alternate fresh workers per round; ({wid: {label: [s]}}, {label: first-round result})."""
    samples = {w: {k: [] for k in labels} for w in wids}
    first = {}
    for r in range(rounds):
        for k in labels:
            t0 = time.perf_counter()
            res = run_worker(k, wids, a)
            print(f"round {r + 1}/{rounds} {k:6s} worker: {time.perf_counter() - t0:.1f} s", flush=True)
            first.setdefault(k, res)
            for w, ts in res["times"].items():
                samples[w][k] += ts
    return samples, first


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
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as d:
        env["NUMBA_CACHE_DIR"] = d
        res = []
        for _ in range(2):  # cold (empty cache), then warm (loads from it)
            out = subprocess.run([sys.executable, "-c", _COMPILE_SNIPPET], env=env, cwd=ROOT,
                                 capture_output=True, text=True, check=True).stdout
            res.append(json.loads(out.strip().splitlines()[-1]))
    return res


# ---------------------------------------------------------------- machine line
def machine_line(infos):
    """``infos``: {label: info dict from that label's worker}."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    parts = [f"{cpu}, {os.cpu_count()} cores", f"python {platform.python_version()}",
             f"numpy {np.__version__}"]
    be = infos.get("numba")
    if be:
        parts.append(f"numba {be['numba']} (threading layer {be['threading_layer']}, "
                     f"{be['threads']} threads, cache {be['cache_dir']})")
    tinfo = infos.get("torch")
    if tinfo:
        parts.append(f"torch {tinfo['torch']} ({tinfo['threads']} threads)")
    parts.append(gemm_ceiling(tinfo))
    try:
        parts.append("loadavg at the end " + " ".join(open("/proc/loadavg").read().split()[:3]))
    except OSError:
        pass
    return "; ".join(parts)


def gemm_ceiling(tinfo, n=1024):
    """numpy's BLAS (measured here, after the workers) and torch.mm (from the torch worker)."""
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    out = [f"numpy sgemm {gemm_gflops(lambda: a @ a, n):.0f} GFLOP/s"]
    if tinfo:
        out.append(f"torch.mm {tinfo['gemm_gflops']:.0f} GFLOP/s")
    return f"GEMM ceiling n={n}: " + ", ".join(out)


# ---------------------------------------------------------------- main
def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--only", default="", help="comma list of workload ids (W1,W2_64,...)")
    ap.add_argument("--backends", default="numpy,numba")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-compile", action="store_true", help="skip the cold/warm compile timing")
    ap.add_argument("--out", default="", help="also write the markdown table here")
    ap.add_argument("--worker", default="", help=argparse.SUPPRESS)  # internal: run as IMPL's worker
    return ap.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    warmup, iters, target, rounds = settings(a)
    only = set(a.only.split(",")) if a.only else None
    wids = [w for w, _, _ in WORKLOADS if only is None or w in only]
    if a.worker:
        print(json.dumps(worker(a.worker, wids, warmup, iters, target)))
        return

    import gradflow  # imports neither numba nor torch
    bes = [b for b in a.backends.split(",") if b in gradflow.available_backends()]
    has_torch = not a.no_torch and importlib.util.find_spec("torch") is not None
    labels = bes + (["torch"] if has_torch else [])

    compile_info = None
    if "numba" in bes and not a.no_compile:
        compile_info = compile_times()

    samples, first = run_rounds(labels, wids, rounds, a)
    rows = []   # (title, {label: ms}, flop or None)
    for wid, title, flop in WORKLOADS:
        if wid in samples:
            res = {k: statistics.median(v) * 1e3 for k, v in samples[wid].items()}
            rows.append((title, res, flop))
            print(f"{title:44s} " + "  ".join(f"{k}={v:8.3f}ms" for k, v in res.items()), flush=True)

    md = render(rows, labels, {k: r["info"] for k, r in first.items()}, compile_info,
                first_calls(first, bes, wids), first_losses(first, labels),
                rounds, iters, warmup, target)
    print()
    print(md)
    if a.out:
        with open(a.out, "w") as f:
            f.write(md)


def first_calls(first, bes, wids):
    """{description: seconds} of the first round's one-off calls (gradflow only)."""
    out = {}
    if "numba" in first:
        out["backend init"] = first["numba"]["init_s"]
    for wid in wids:
        for be in bes:
            if wid in first[be]["first_step"]:
                out[f"{TRAIN_STEPS[wid][2]} first step {be}"] = first[be]["first_step"][wid]
    return out


def first_losses(first, labels):
    return {(wid, k): loss for k in labels for wid, loss in first[k]["losses"].items()}


TARGETS = {"W1 MLP": ("<=", 1.0), "W2 LeNet-5 b64": ("<=", 1.0), "W2 LeNet-5 b256": ("<=", 1.0),
           "W3 conv 64": ("<=", 1.2), "W3 conv, fwd+bwd": ("<=", 1.2), "W4 maxpool, fwd+bwd": ("<=", 0.7)}


def render(rows, labels, infos, compile_info, first_call, losses, rounds, iters, warmup, target=1.0):
    """The markdown report. ``labels``: the implementations in column order (``torch`` last)."""
    has_torch = "torch" in labels
    lines = ["# gradflow CPU benchmark (benchmarks/bench_cpu.py)", "",
             f"Machine: {machine_line(infos)}", "",
             f"float32; median ms over all timed calls; each implementation ran in its own fresh "
             f"process, alternating per round ({rounds} round(s), one process per implementation "
             f"and round, running every workload with {warmup} warm-up + >= {iters} timed calls, "
             f"about {target:g} s each). Ratios are same-run.", ""]
    hdr = "| workload | " + " | ".join(f"{l} (ms)" for l in labels)
    if "numba" in labels and has_torch:
        hdr += " | numba / torch | target"
    if "numba" in labels and "numpy" in labels:
        hdr += " | numpy / numba"
    hdr += " | GFLOP/s (" + ", ".join(labels) + ") |"
    lines.append(hdr)
    lines.append("|" + "---|" * (hdr.count("|") - 1))
    for title, res, flop in rows:
        cells = [f"{res[l]:.3f}" if l in res else "-" for l in labels]
        row = f"| {title} | " + " | ".join(cells)
        if "numba" in labels and has_torch:
            r = res["numba"] / res["torch"]
            tgt = next((t for k, t in TARGETS.items() if title.startswith(k)), None)
            ok = "" if tgt is None else (f"<= {tgt[1]} " + ("met" if r <= tgt[1] else "MISSED"))
            row += f" | {r:.2f}x | {ok}"
        if "numba" in labels and "numpy" in labels:
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
        lines.append("First calls in a fresh worker process (first round; cache already warm; includes "
                     "one-off setup): " +
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
