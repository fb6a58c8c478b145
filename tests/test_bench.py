"""``gradflow bench``: FLOP counts (by hand), synchronised timing (with a fake
backend), the ratio/crossover logic, and the CLI end to end on a tiny
configuration whose JSON must have the schema documented in
benchmarks/README.md. No test asserts a timing."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gradflow.bench import flops, report, runner, timing, workloads
from gradflow.bench.__main__ import main as bench_main

from conftest import requires_torch


# -- FLOP counts, worked out by hand -------------------------------------------------------------
def test_flops_matmul_and_linear():
    assert flops.matmul(3) == 2 * 27
    assert flops.matmul(2, 3, 4) == 48
    assert flops.linear(5, 784, 256) == 2 * 5 * 784 * 256


def test_flops_conv_issue4_shape():
    # N=64, C=32, 32x32, K=64 3x3 pad 1 -> 32x32 output; 2 * N*K*OH*OW * C*3*3
    assert flops.conv2d(64, 32, 32, 32, 64, 3, 3, pad=1) == 2 * 64 * 64 * 32 * 32 * 32 * 9
    assert flops.conv2d(64, 32, 32, 32, 64, 3, 3, pad=1) == 2_415_919_104  # PEERS.md: 2.416 GFLOP
    # valid 5x5 on 14x14 -> 10x10
    assert flops.conv2d(1, 6, 14, 14, 16, 5, 5) == 2 * 16 * 10 * 10 * 6 * 25


def test_flops_conv_cases_fwd_and_fwdbwd():
    fwd, fb = workloads.cases("conv2d", [64], "float32")
    assert (fwd.mode, fb.mode) == ("fwd", "fwd+bwd")
    assert fwd.flop == 2_415_919_104
    assert fb.flop == 3 * 2_415_919_104  # dx and dW each cost one forward
    assert workloads.cases("maxpool2d", [64], "float32")[0].flop is None


def test_flops_mlp_step():
    fwd = 2 * (784 * 256 + 256 * 10)           # 406,528 per sample
    step = fwd + fwd + (fwd - 2 * 784 * 256)   # no input gradient for the first layer
    assert step == 818_176
    assert flops.mlp_step(1) == step
    assert flops.mlp_step(64) == 64 * step


def test_flops_lenet5_step():
    conv1 = 2 * 6 * 28 * 28 * 1 * 25           # 235,200
    conv2 = 2 * 16 * 10 * 10 * 6 * 25          # 480,000
    fc = 2 * (400 * 120 + 120 * 84 + 84 * 10)  # 117,840
    fwd = conv1 + conv2 + fc
    assert fwd == 833_040
    assert flops.lenet5_step(1) == 3 * fwd - conv1 == 2_263_920
    # DESIGN.md: "a LeNet-5 step at batch 64 is about 0.16 GFLOP"
    assert flops.lenet5_step(64) == 144_890_880


def test_flops_convnet_step():
    convs = [2 * 32 * 32 * 32 * 3 * 9, 2 * 32 * 32 * 32 * 32 * 9,
             2 * 64 * 16 * 16 * 32 * 9, 2 * 64 * 16 * 16 * 64 * 9]
    fcs = [2 * 4096 * 128, 2 * 128 * 10]
    fwd = sum(convs) + sum(fcs)
    assert fwd == 50_006_528
    assert flops.convnet_step(2) == 2 * (3 * fwd - convs[0])


# -- timing synchronises around the timed region ----------------------------------------------------
class FakeGPUBackend:
    """Records every synchronize() call, and the calls of the workload and the clock."""

    def __init__(self):
        self.events = []
        self.now = 0.0

    def synchronize(self):
        self.events.append("sync")

    def clock(self):
        self.events.append("clock")
        self.now += 1.0
        return self.now

    def fn(self):
        self.events.append("fn")


def test_measure_brackets_every_timed_call_with_synchronize():
    be = FakeGPUBackend()
    t = timing.measure(be.fn, synchronize=be.synchronize, warmup=2, repeat=4, clock=be.clock)
    ev = be.events
    timed = ["sync", "clock", "fn", "sync", "clock"]
    # first call (timed on its own), 2 warm-up calls (each followed by a sync), 4 timed calls
    assert ev == timed + ["fn", "sync"] * 2 + timed * 4
    assert t.warmup == 2 and len(t.times) == 4
    assert t.first_call == 1.0 and t.times == [1.0] * 4  # the fake clock ticks 1 s per read


def test_measure_budget_stops_after_min_repeat():
    be = FakeGPUBackend()
    t = timing.measure(be.fn, synchronize=be.synchronize, warmup=0, repeat=50, budget_s=2.5,
                       min_repeat=3, clock=be.clock)
    assert len(t.times) == 3  # 1 s per call: 3 calls reach the 2.5 s budget


def test_timing_statistics():
    t = timing.Timing(first_call=9.0, times=[4.0, 1.0, 3.0, 2.0, 100.0])
    assert t.median == 3.0
    assert t.q1 == 2.0 and t.q3 == 4.0 and t.iqr == 2.0
    assert t.min == 1.0


def test_runner_synchronizes_through_the_backend_object():
    be = FakeGPUBackend()
    impl = runner.Impl("fake", "gradflow", "cpu", be.synchronize)
    case = workloads.cases("mlp_step", [2], "float32")[0]
    row = runner.measure_case(case, impl, warmup=1, repeat=3, budget_s=None,
                              builder=lambda c: be.fn)
    assert row["error"] is None and row["repeats"] == 3
    ev = be.events
    for i, e in enumerate(ev):
        if e == "fn":  # every call is followed by a sync; timed ones are preceded by one too
            assert ev[i + 1] == "sync"
    assert ev.count("fn") == 1 + 1 + 3
    assert ev.count("sync") == 2 * 1 + 1 + 2 * 3


def test_runner_turns_a_failure_into_an_error_row():
    impl = runner.Impl("fake", "gradflow", "cpu", None)

    def broken(case):
        raise NotImplementedError("no kernel for this")
    row = runner.measure_case(workloads.cases("matmul", [4], "float32")[0], impl, warmup=0,
                              repeat=1, budget_s=None, builder=broken)
    assert row["error"] == "NotImplementedError: no kernel for this"


def test_ctrl_c_returns_what_was_measured():
    calls = {"n": 0}

    def builder(case):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return lambda: None
    plan = runner.Plan(impls=[runner.Impl("numpy", "gradflow", "cpu", None)],
                       cases=workloads.cases("matmul", [2, 4, 8, 16], "float32"))
    res = runner.run(plan, warmup=0, repeat=1, progress=False, builder=builder)
    assert res["interrupted"] is True
    assert [r["size"] for r in res["rows"]] == [2, 4]


# -- ratios and the crossover -------------------------------------------------------------------------
def _row(backend, size, ms, device="cpu", impl="gradflow", case="lenet5_step"):
    return {"case": case, "workload": case, "mode": "step", "size": size, "size_kind": "batch",
            "dtype": "float32", "backend": backend, "device": device, "impl": impl,
            "median_ms": ms, "error": None}


def test_ratios_use_numpy_and_the_same_device_torch():
    rows = [_row("numpy", 64, 10.0), _row("numba", 64, 2.5), _row("torch-cpu", 64, 5.0, impl="torch"),
            _row("cupy", 64, 1.0, "cuda"), _row("torch-cuda", 64, 0.5, "cuda", "torch")]
    report.add_ratios(rows)
    by = {r["backend"]: r for r in rows}
    assert by["numba"]["vs_numpy"] == 0.25 and by["numba"]["vs_torch"] == 0.5
    assert by["cupy"]["vs_numpy"] == 0.1 and by["cupy"]["vs_torch"] == 2.0
    assert by["torch-cpu"]["vs_torch"] == 1.0


def test_crossover_is_the_first_size_from_which_the_gpu_always_wins():
    cpu = {1: 1.0, 16: 2.0, 64: 5.0, 256: 20.0, 1024: 80.0}
    gpu = {1: 3.0, 16: 1.5, 64: 6.0, 256: 4.0, 1024: 5.0}   # wins at 16, loses at 64, then wins
    rows = [_row("numpy", s, v * 2) for s, v in cpu.items()]
    rows += [_row("numba", s, v) for s, v in cpu.items()]
    rows += [_row("cupy", s, v, "cuda") for s, v in gpu.items()]
    (x,) = report.crossovers(rows)
    assert x["gpu"] == "cupy" and x["cpu"] == ["numba", "numpy"]
    assert x["crossover_size"] == 256
    assert x["best_cpu"] == ["numba"] * 5
    rows = [_row("numba", 1, 1.0), _row("cupy", 1, 2.0, "cuda")]
    assert report.crossovers(rows)[0]["crossover_size"] is None


# -- the CLI end to end ---------------------------------------------------------------------------------
ROW_KEYS = {"workload": str, "case": str, "mode": str, "size": int, "size_kind": str, "dtype": str,
            "backend": str, "impl": str, "device": str, "error": type(None),
            "first_call_ms": float, "median_ms": float, "q1_ms": float, "q3_ms": float,
            "iqr_ms": float, "min_ms": float, "repeats": int, "warmup": int, "times_ms": list}
NULLABLE = {"flop": int, "samples_per_s": float, "gflops": float, "loss0": float, "loadavg_1m": float,
            "vs_numpy": float, "vs_torch": float}
TOP_KEYS = {"schema", "created_utc", "command", "machine", "settings", "backends", "unavailable",
            "rows", "crossovers", "interrupted", "skipped", "elapsed_s"}


def _check_schema(doc, backends):
    assert set(doc) == TOP_KEYS
    assert doc["schema"] == "gradflow-bench/1"
    assert doc["backends"] == backends
    for k in ("cpu", "logical_cpus", "python", "numpy", "gradflow", "git", "blas", "loadavg_start",
              "loadavg_end", "gpu"):
        assert k in doc["machine"]
    assert set(doc["settings"]) == {"dtype", "repeat", "warmup", "budget_s", "time_limit_s"}
    for r in doc["rows"]:
        assert set(r) == set(ROW_KEYS) | set(NULLABLE), set(r) ^ (set(ROW_KEYS) | set(NULLABLE))
        for k, typ in ROW_KEYS.items():
            assert isinstance(r[k], typ), (k, r[k])
        for k, typ in NULLABLE.items():
            assert r[k] is None or isinstance(r[k], typ), (k, r[k])
        assert r["q1_ms"] <= r["median_ms"] <= r["q3_ms"]


def test_cli_end_to_end_tiny(tmp_path, capsys):
    js, md = tmp_path / "b.json", tmp_path / "b.md"
    rc = bench_main(["--backends", "numpy", "--workloads", ",".join(workloads.WORKLOADS),
                     "--batch-sizes", "2", "--matmul-sizes", "8", "--repeat", "1", "--warmup", "0",
                     "--json", str(js), "-o", str(md), "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    doc = json.loads(js.read_text())
    _check_schema(doc, ["numpy"])
    cases = [(r["case"], r["size"]) for r in doc["rows"]]
    assert cases == [("matmul", 8), ("conv2d_fwd", 2), ("conv2d_fwdbwd", 2), ("maxpool2d_fwd", 2),
                     ("maxpool2d_fwdbwd", 2), ("softmax_xent", 2), ("mlp_step", 2),
                     ("lenet5_step", 2), ("convnet_step", 2)]
    assert all(r["error"] is None and r["repeats"] == 1 for r in doc["rows"])
    assert all(r["vs_numpy"] == 1.0 for r in doc["rows"])
    conv = next(r for r in doc["rows"] if r["case"] == "conv2d_fwd")
    assert conv["flop"] == flops.conv2d(2, 32, 32, 32, 64, 3, 3, pad=1) and conv["gflops"] > 0
    assert all(r["loss0"] is not None for r in doc["rows"] if r["mode"] == "step")
    assert md.read_text() == out
    assert "### lenet5_step (step, float32)" in out and "| median ms |" in out.replace("  ", " ")


@requires_torch
def test_cli_compare_torch_adds_torch_rows(tmp_path, capsys):
    js = tmp_path / "b.json"
    rc = bench_main(["--backends", "numpy", "--workloads", "softmax_xent,mlp_step", "--batch-sizes",
                     "1,2", "--repeat", "2", "--warmup", "0", "--compare-torch", "--json", str(js),
                     "--no-progress"])
    assert rc == 0
    doc = json.loads(js.read_text())
    _check_schema(doc, doc["backends"])
    assert doc["backends"][:2] == ["numpy", "torch-cpu"]
    torch_rows = [r for r in doc["rows"] if r["backend"] == "torch-cpu"]
    assert len(torch_rows) == 4 and all(r["impl"] == "torch" for r in torch_rows)
    assert all(r["vs_torch"] == 1.0 for r in torch_rows)
    # the same weights and data: the first losses agree
    mlp = {r["backend"]: r["loss0"] for r in doc["rows"] if r["case"] == "mlp_step" and r["size"] == 2}
    assert mlp["numpy"] == pytest.approx(mlp["torch-cpu"], rel=1e-5)
    assert "First-call losses agree" in capsys.readouterr().out


def test_cli_lists_unavailable_backends_with_reason(tmp_path, capsys, monkeypatch):
    from gradflow.backends import unavailable_reason
    monkeypatch.setattr("gradflow.backends.unavailable_reason",
                        lambda n: "no GPU here (test)" if n == "cupy" else unavailable_reason(n))
    js, png = tmp_path / "b.json", tmp_path / "b.png"
    rc = bench_main(["--backends", "numpy,cupy", "--workloads", "matmul", "--matmul-sizes", "4,8",
                     "--repeat", "1", "--warmup", "0", "--json", str(js), "--plot", str(png),
                     "--no-progress"])
    assert rc == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads(js.read_text())
    assert doc["unavailable"] == {"cupy": "no GPU here (test)"}
    cap = capsys.readouterr()
    assert "cupy not measured: no GPU here (test)" in cap.err
    assert "- cupy: no GPU here (test)" in cap.out


def test_cli_rejects_bad_arguments(capsys):
    assert bench_main(["--workloads", "nope", "--no-progress"]) == 2
    assert "unknown workload(s) nope" in capsys.readouterr().err
    assert bench_main(["--backends", "tpu", "--no-progress"]) == 2
    assert "unknown backend 'tpu'" in capsys.readouterr().err
    assert bench_main(["--batch-sizes", "0,2", "--no-progress"]) == 2


def test_python_dash_m_gradflow_bench_help():
    out = subprocess.run([sys.executable, "-m", "gradflow.bench", "--help"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0
    for flag in ("--backends", "--workloads", "--batch-sizes", "--compare-torch", "--json", "--plot",
                 "--quick", "--max-seconds"):
        assert flag in out.stdout


def test_step_with_gradflow_nn_and_functional_fallback_agree():
    from gradflow.bench import models
    if not models.have_gradflow_nn():
        pytest.skip("gradflow.nn / gradflow.optim not available")
    a = models.gradflow_step("lenet5_step", "numpy", "float64", 3, use_nn=True)
    b = models.gradflow_step("lenet5_step", "numpy", "float64", 3, use_nn=False)
    la = [a().item() for _ in range(3)]
    lb = [b().item() for _ in range(3)]
    assert la == pytest.approx(lb, rel=1e-10)  # same weights, data and SGD-momentum updates
    assert la[2] < la[0]


def test_busy_machine_warning():
    assert report.busy_warning({"logical_cpus": 2, "loadavg_start": [0.3, 0, 0],
                                "loadavg_end": [2.5, 0, 0]}) is None  # the run's own load
    assert "busy" in report.busy_warning({"logical_cpus": 2, "loadavg_start": [1.5, 0, 0],
                                          "loadavg_end": [0.5, 0, 0]})
    assert "busy" in report.busy_warning({"logical_cpus": 2, "loadavg_start": [0.3, 0, 0],
                                          "loadavg_end": [3.5, 0, 0]})


def test_gradflow_cli_dispatches_bench(capsys):
    import importlib.util
    for mod in ("gradflow.train", "gradflow.info"):
        if importlib.util.find_spec(mod) is None:
            pytest.skip(f"{mod} (another subcommand) is not there yet; gradflow.cli imports them all")
    from gradflow.cli import main
    assert main(["bench", "--backends", "numpy", "--workloads", "matmul", "--matmul-sizes", "4",
                 "--repeat", "1", "--warmup", "0", "--no-progress"]) == 0
    assert "### matmul (fwd, float32)" in capsys.readouterr().out


@requires_torch
def test_libraries_are_measured_in_worker_processes():
    """The main process never imports torch (its libgomp can slow NumPy's OpenBLAS down)."""
    code = ("import sys, json, os\n"
            "from gradflow.bench.__main__ import main\n"
            "rc = main(['--backends', 'numpy', '--compare-torch', '--workloads', 'mlp_step',\n"
            "           '--batch-sizes', '2', '--repeat', '1', '--warmup', '0', '--no-progress',\n"
            "           '--json', sys.argv[1]])\n"
            "print('RESULT', rc, 'torch' in sys.modules)\n")
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        js = f"{d}/b.json"
        out = subprocess.run([sys.executable, "-c", code, js], capture_output=True, text=True,
                             timeout=120)
        assert "RESULT 0 False" in out.stdout, out.stderr[-2000:]
        with open(js) as f:
            doc = json.load(f)
    assert doc["machine"]["isolation"] == "process per library"
    assert doc["machine"]["torch"]  # reported by the torch worker
    assert {r["backend"] for r in doc["rows"]} == {"numpy", "torch-cpu"}
    assert all(r["error"] is None for r in doc["rows"])
