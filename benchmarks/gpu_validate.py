"""GPU validation and targets for the CuPy backend (issues 5 and 9), in one process.

    PYTHONPATH=. python3 benchmarks/gpu_validate.py --out benchmarks/results/gpu-<device>.md

1. device facts; 2. LeNet-5 step gradients cupy vs numpy (same weights, same batch);
3. 200 SGD steps on the bundled digits on numpy and on cupy from the same weights and
batch order: test accuracy, and the CuPy pool's bytes in use per step; 4. LeNet-5 b256
step vs PyTorch eager CUDA; 5. 3x3 conv N=128 C=K=128 32x32 fwd+bwd vs PyTorch
(TF32 off and PyTorch's default); 6. the top CUDA kernels of both (torch.profiler sees
CuPy's kernels too). Timings: warm, synchronised, median of repeats.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

import gradflow
import gradflow.nn as nn
import gradflow.nn.functional as F

LINES: list[str] = []
GPU = os.environ.get("GV_GPU", "cupy")  # another backend name only to dry-run this script on a CPU


def say(s=""):
    print(s, flush=True)
    LINES.append(s)


def timed(fn, sync, warmup=5, repeat=30, max_s=5.0):
    for _ in range(warmup):
        fn()
    sync()
    ts = []
    t_end = time.perf_counter() + max_s
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        ts.append(time.perf_counter() - t0)
        if time.perf_counter() > t_end and len(ts) >= 5:
            break
    return statistics.median(ts)


def lenet():
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10))


def twin(name):
    """A LeNet on backend ``name`` with the numpy-built seed-0 weights."""
    gradflow.manual_seed(0)
    with gradflow.backend("numpy"):
        m = lenet()
    return m.to(name)


def section_facts(cu):
    import cupy
    info = cu.info()
    say("## Device")
    say()
    for k in ("device", "compute_capability", "device_memory", "cupy", "cuda_runtime", "cuda_driver"):
        say(f"- {k}: {info.get(k)}")
    try:
        import subprocess
        drv = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout.strip()
        say(f"- NVIDIA driver: {drv}")
    except Exception:
        pass
    try:
        import torch
        say(f"- PyTorch {torch.__version__} (CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()})")
    except Exception as e:
        say(f"- PyTorch: not importable ({e})")
    say(f"- numpy {np.__version__}, Python {sys.version.split()[0]}, cupy {cupy.__version__}")
    say()


def section_grad_parity():
    say("## LeNet-5 step: gradients cupy vs numpy (float32, batch 64, same weights and batch)")
    say()
    rng = np.random.default_rng(13)
    x = rng.random((64, 1, 28, 28)).astype(np.float32)
    t = rng.integers(0, 10, 64)
    res = {}
    for name in ("numpy", GPU):
        m = twin(name)
        loss = F.cross_entropy(m(gradflow.tensor(x, backend=name)), gradflow.tensor(t, backend=name))
        loss.backward()
        res[name] = (loss.item(), [(k, p.grad.numpy()) for k, p in m.named_parameters()])
    say(f"loss numpy {res['numpy'][0]:.7f}, cupy {res[GPU][0]:.7f}")
    say()
    say("| parameter | max abs diff | max abs grad | rel (diff / max grad) | allclose rtol 1e-4 |")
    say("|---|---|---|---|---|")
    ok_all = True
    for (k, gn), (_, gc) in zip(res["numpy"][1], res[GPU][1]):
        d = float(np.abs(gc - gn).max())
        s = float(np.abs(gn).max())
        ok = np.allclose(gc, gn, rtol=1e-4, atol=1e-6 * max(1.0, s))
        ok_all &= ok
        say(f"| {k} | {d:.2e} | {s:.2e} | {d / s:.2e} | {ok} |")
    say()
    say(f"**gradient parity: {'PASS' if ok_all else 'FAIL'}**")
    say()


def section_digits(cu):
    say("## 200 SGD steps on the bundled digits, numpy vs cupy (same weights, same batches)")
    say()
    d = np.load(os.path.join(os.path.dirname(gradflow.__file__), "datasets", "digits.npz"))
    X = (d["images"].astype(np.float32) / 255.0)[:, None]
    Y = d["labels"].astype(np.int64)
    perm = np.random.default_rng(0).permutation(len(Y))      # the file is sorted by label
    X, Y = X[perm], Y[perm]
    Xtr, Ytr, Xte, Yte = X[:4000], Y[:4000], X[4000:], Y[4000:]
    order = np.random.default_rng(0).integers(0, 4000, size=(200, 64))
    out = {}
    for name in ("numpy", GPU):
        m = twin(name)
        opt = gradflow.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
        used = []
        t0 = time.perf_counter()
        for step in range(200):
            idx = order[step]
            opt.zero_grad()
            loss = F.cross_entropy(m(gradflow.tensor(Xtr[idx], backend=name)),
                                   gradflow.tensor(Ytr[idx], backend=name))
            loss.backward()
            opt.step()
            if name == GPU:
                cu.synchronize()
                used.append(cu.memory_info()["used_bytes"])
        last = loss.item()
        wall = time.perf_counter() - t0
        with gradflow.no_grad():
            pred = np.concatenate([m(gradflow.tensor(Xte[i:i + 250], backend=name)).numpy().argmax(1)
                                   for i in range(0, 1000, 250)])
        out[name] = (100.0 * (pred == Yte).mean(), last, wall, used)
    say("| backend | test accuracy (1000 held-out digits) | last loss | 200 steps wall |")
    say("|---|---|---|---|")
    for name, (acc, last, wall, _) in out.items():
        say(f"| {name} | {acc:.1f}% | {last:.4f} | {wall:.2f} s |")
    say()
    used = out[GPU][3]
    steady = used[10:]
    say(f"CuPy pool bytes in use after each step: step 1 {used[0]:,}, step 10 {used[9]:,}, "
        f"steps 11-200 min {min(steady):,} max {max(steady):,} (spread {max(steady) - min(steady):,} B)")
    say()
    diff = abs(out[GPU][0] - out["numpy"][0])
    say(f"**accuracy difference {diff:.1f} points ({'PASS' if diff <= 1.0 else 'FAIL'} at +-1); "
        f"memory {'FLAT' if max(steady) == min(steady) else 'NOT FLAT'}**")
    say()


def section_lenet_vs_torch(cu):
    import torch
    say("## LeNet-5 train step (SGD momentum 0.9, float32) vs PyTorch eager CUDA")
    say()
    say("| batch | gradflow cupy ms | torch eager CUDA ms | ratio | gradflow GPU-busy ms |")
    say("|---|---|---|---|---|")
    rows = {}
    for n in (64, 256, 1024):
        rng = np.random.default_rng(1)
        x = rng.random((n, 1, 28, 28)).astype(np.float32)
        t = rng.integers(0, 10, n)
        m = twin("cupy")
        opt = gradflow.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
        xg, tg = gradflow.tensor(x, backend="cupy"), gradflow.tensor(t, backend="cupy")

        def step():
            opt.zero_grad()
            loss = F.cross_entropy(m(xg), tg)
            loss.backward()
            opt.step()
        g_ms = 1e3 * timed(step, cu.synchronize)
        # device time of the same step (events around it; excludes the host's idle gaps only
        # if the GPU never waits for the host)
        from cupyx.profiler import benchmark
        b = benchmark(step, n_repeat=20, n_warmup=3)
        gpu_ms = float(np.median(b.gpu_times)) * 1e3

        tm = torch.nn.Sequential(
            torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(6, 16, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
            torch.nn.Linear(400, 120), torch.nn.ReLU(), torch.nn.Linear(120, 84), torch.nn.ReLU(),
            torch.nn.Linear(84, 10)).cuda()
        topt = torch.optim.SGD(tm.parameters(), lr=0.01, momentum=0.9)
        xt, tt = torch.tensor(x, device="cuda"), torch.tensor(t, device="cuda")

        def tstep():
            topt.zero_grad()
            loss = torch.nn.functional.cross_entropy(tm(xt), tt)
            loss.backward()
            topt.step()
        t_ms = 1e3 * timed(tstep, torch.cuda.synchronize)
        rows[n] = (g_ms, t_ms)
        say(f"| {n} | {g_ms:.3f} | {t_ms:.3f} | {g_ms / t_ms:.2f}x | {gpu_ms:.3f} |")
    say()
    r = rows[256][0] / rows[256][1]
    say(f"**b256: {r:.2f}x torch eager ({'PASS' if r <= 1.5 else 'MISS'} at <= 1.5x)**")
    say()
    return step, tstep


def section_host_overhead(cu):
    """Where the host time of a LeNet-5 b256 step goes, and what the two host syncs of
    cross_entropy's target checks cost (measured by disabling them)."""
    import cProfile
    import io
    import pstats

    import gradflow.ops.loss as L
    say("## Host side of a LeNet-5 b256 step on cupy")
    say()
    rng = np.random.default_rng(1)
    x = gradflow.tensor(rng.random((256, 1, 28, 28)).astype(np.float32), backend="cupy")
    t = gradflow.tensor(rng.integers(0, 10, 256), backend="cupy")
    m = twin("cupy")
    opt = gradflow.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)

    def step(ignore_index=-100):
        opt.zero_grad()
        loss = F.cross_entropy(m(x), t, ignore_index=ignore_index)
        loss.backward()
        opt.step()
    base = timed(step, cu.synchronize)
    saved = L._check_target
    L._check_target = lambda *a, **k: None
    try:
        nosync = timed(lambda: step(None), cu.synchronize)
    finally:
        L._check_target = saved
    say(f"- step {base * 1e3:.3f} ms; with cross_entropy's two device->host target checks "
        f"disabled (no sync inside the step) {nosync * 1e3:.3f} ms")
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(30):
        step()
    cu.synchronize()
    pr.disable()
    buf = io.StringIO()
    pstats.Stats(pr, stream=buf).sort_stats("tottime").print_stats(22)
    say()
    say("cProfile of 30 steps (host time by function, sorted by own time):")
    say()
    say("```")
    for line in buf.getvalue().splitlines()[6:]:
        if line.strip():
            say(line[:150])
    say("```")
    say()


def section_conv(cu):
    import torch
    say("## conv2d 3x3, N=128, C=K=128, 32x32, pad 1, fwd+bwd (dx, dw), float32")
    say()
    n, c, k, hw = 128, 128, 128, 32
    flops = 3 * 2 * n * k * c * 9 * hw * hw
    rng = np.random.default_rng(2)
    x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
    w = (rng.standard_normal((k, c, 3, 3)) * 0.05).astype(np.float32)
    xg = gradflow.tensor(x, backend="cupy", requires_grad=True)
    wg = gradflow.tensor(w, backend="cupy", requires_grad=True)
    gy = gradflow.ones(n, k, hw, hw, backend="cupy")

    def gf():
        xg.grad = wg.grad = None
        F.conv2d(xg, wg, padding=1).backward(gy)
    g_s = timed(gf, cu.synchronize, warmup=3, repeat=15)
    xa, wa, ga = cu.asarray(x), cu.asarray(w), gy.array
    parts = {}
    parts["im2col"] = timed(lambda: cu._group_cols(xa, (3, 3), (1, 1), (1, 1), (1, 1), 1),
                            cu.synchronize, 2, 10)
    parts["forward (im2col+GEMM+NCHW)"] = timed(
        lambda: cu.conv2d_forward(xa, wa, None, (1, 1), (1, 1), (1, 1), 1), cu.synchronize, 2, 10)
    parts["backward dw (im2col+GEMM)"] = timed(
        lambda: cu.conv2d_backward(xa, wa, ga, (1, 1), (1, 1), (1, 1), 1, False, True, False),
        cu.synchronize, 2, 10)
    parts["backward dx (GEMM+col2im)"] = timed(
        lambda: cu.conv2d_backward(xa, wa, ga, (1, 1), (1, 1), (1, 1), 1, True, False, False),
        cu.synchronize, 2, 10)
    gemm = cu.xp.empty((k, c * 9), np.float32)
    colsm = cu._group_cols(xa, (3, 3), (1, 1), (1, 1), (1, 1), 1)[0][0]
    parts["one GEMM (128 x 1152 x 131072)"] = timed(lambda: cu.xp.matmul(gemm, colsm), cu.synchronize, 2, 10)

    xt = torch.tensor(x, device="cuda", requires_grad=True)
    wt = torch.tensor(w, device="cuda", requires_grad=True)
    gt = torch.ones(n, k, hw, hw, device="cuda")

    def tf():
        xt.grad = wt.grad = None
        torch.nn.functional.conv2d(xt, wt, padding=1).backward(gt)
    res = {}
    for tf32 in (False, True):
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
        res[tf32] = timed(tf, torch.cuda.synchronize, warmup=3, repeat=15)
    torch.backends.cudnn.allow_tf32 = True   # PyTorch's default for convolutions
    torch.backends.cuda.matmul.allow_tf32 = False
    say("| implementation | ms | TFLOP/s | gradflow as % of it |")
    say("|---|---|---|---|")
    gt_ = flops / g_s / 1e12
    mode = "TF32 GEMMs (CUPY_TF32=1)" if os.environ.get("CUPY_TF32") == "1" else "strict FP32"
    say(f"| gradflow cupy (im2col + cuBLAS GEMM + gather col2im, {mode}) | {g_s * 1e3:.2f} | {gt_:.1f} | |")
    for tf32, s in res.items():
        tt_ = flops / s / 1e12
        label = "torch cuDNN, TF32 allowed (PyTorch's default for conv)" if tf32 else \
            "torch cuDNN, strict FP32 (allow_tf32=False)"
        say(f"| {label} | {s * 1e3:.2f} | {tt_:.1f} | {100 * gt_ / tt_:.0f}% |")
    say()
    say("gradflow parts (backend calls, ms): " + ", ".join(f"{k} {v * 1e3:.2f}" for k, v in parts.items()))
    say()
    pct = 100 * gt_ / (flops / res[True] / 1e12)
    pct32 = 100 * gt_ / (flops / res[False] / 1e12)
    say(f"**{pct:.0f}% of torch's default (TF32) TFLOP/s, {pct32:.0f}% of torch strict FP32 "
        f"({'PASS' if pct >= 25 else 'MISS'} at >= 25% of torch's default)**")
    say()
    return gf, tf


def section_profile(step, tstep, gconv):
    import torch
    from torch.profiler import ProfilerActivity, profile
    say("## Top CUDA kernels (torch.profiler/CUPTI, which also sees CuPy's kernels)")
    say()
    for label, fn in (("gradflow cupy LeNet-5 b1024 step x10", step),
                      ("torch eager LeNet-5 b1024 step x10", tstep),
                      ("gradflow cupy conv 128x128x32x32 fwd+bwd x3", gconv)):
        fn()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(10 if "LeNet" in label else 3):
                fn()
            torch.cuda.synchronize()
        say(f"### {label}")
        say()
        say("```")
        tab = prof.key_averages().table(sort_by="cuda_time_total", row_limit=12, max_name_column_width=60)
        for line in tab.splitlines():
            say(line)
        say("```")
        say()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", help="markdown file to write")
    ap.add_argument("--skip", default="", help="comma list of sections to skip")
    a = ap.parse_args()
    skip = set(a.skip.split(","))
    cu = gradflow.get_backend("cupy")
    section_facts(cu)
    if "parity" not in skip:
        section_grad_parity()
    if "digits" not in skip:
        section_digits(cu)
    step = tstep = gconv = None
    if "lenet" not in skip:
        step, tstep = section_lenet_vs_torch(cu)
    if "host" not in skip:
        section_host_overhead(cu)
    if "conv" not in skip:
        gconv, _ = section_conv(cu)
    if "profile" not in skip and step is not None and gconv is not None:
        section_profile(step, tstep, gconv)
    if a.out:
        with open(a.out, "w") as f:
            f.write("\n".join(LINES) + "\n")


if __name__ == "__main__":
    main()
