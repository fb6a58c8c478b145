"""``gradflow bench``'s peer rows: ``--compare-jax`` (a JAX worker in another
interpreter) and ``--compare-torch-compile``. Without jax or a working
torch.compile the rows must be listed as unavailable with a reason; with them,
the JAX and compiled-torch steps must compute the same losses as gradflow /
eager torch from the same weights (the model definitions match). The JAX
checks need an interpreter with jax: ``GRADFLOW_JAX_PYTHON=/path/bin/python``
(or jax importable here); they are skipped otherwise. No timing is asserted."""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import warnings

import pytest

from gradflow.bench import cli, models, peers, report, workloads
from gradflow.bench.__main__ import main as bench_main

from conftest import requires_torch

TINY = ["--backends", "numpy", "--workloads", "mlp_step", "--batch-sizes", "2", "--repeat", "1",
        "--warmup", "0", "--no-progress"]


def _jax_python():
    py, _ = peers.jax_python()
    return py


needs_jax = pytest.mark.skipif(_jax_python() is None,
                               reason="no Python with jax (set GRADFLOW_JAX_PYTHON)")


def _parser():
    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    return p


def test_cli_parses_the_peer_flags():
    a = _parser().parse_args(["--compare-jax", "--jax-python", "/opt/py", "--jax-threads", "1",
                              "--compare-torch-compile", "--compare-torch"])
    assert (a.compare_jax, a.jax_python, a.jax_threads) == (True, "/opt/py", 1)
    assert a.compare_torch_compile and a.compare_torch
    d = _parser().parse_args([])
    assert not d.compare_jax and not d.compare_torch_compile and d.jax_python is None
    text = _parser().format_help()
    for flag in ("--compare-jax", "--jax-python", "--jax-threads", "--compare-torch-compile",
                 peers.JAX_PYTHON_ENV):
        assert flag in text


def test_cli_rejects_zero_jax_threads(capsys):
    assert bench_main(TINY + ["--compare-jax", "--jax-threads", "0"]) == 2
    assert "--jax-threads must be >= 1" in capsys.readouterr().err


def test_jax_python_option_then_env_then_this_interpreter(monkeypatch):
    monkeypatch.setenv(peers.JAX_PYTHON_ENV, "/from/env")
    assert peers.jax_python("/from/option") == ("/from/option", "--jax-python")
    assert peers.jax_python() == ("/from/env", f"${peers.JAX_PYTHON_ENV}")
    monkeypatch.delenv(peers.JAX_PYTHON_ENV)
    py, why = peers.jax_python()
    if importlib.util.find_spec("jax") is not None:
        assert (py, why) == (sys.executable, "this interpreter")
    else:
        assert py is None and "--jax-python" in why and peers.JAX_PYTHON_ENV in why


def test_bogus_jax_python_lists_jax_as_unavailable(tmp_path, capsys):
    js = tmp_path / "b.json"
    bogus = str(tmp_path / "no-such-python")
    rc = bench_main(TINY + ["--compare-jax", "--jax-python", bogus, "--json", str(js)])
    assert rc == 0  # not an error: the other rows run
    doc = json.loads(js.read_text())
    assert doc["unavailable"]["jax"].startswith(f"cannot run {bogus}")
    assert {r["backend"] for r in doc["rows"]} == {"numpy"}
    assert f"--jax-python {bogus}" in doc["command"]
    cap = capsys.readouterr()
    assert "jax not measured: cannot run" in cap.err and "- jax: cannot run" in cap.out


def test_python_without_jax_lists_jax_as_unavailable(tmp_path, monkeypatch):
    """An interpreter that runs but has no jax (a stub named python that fails the import)."""
    stub = tmp_path / "python"
    stub.write_text(f"#!/bin/sh\nexec {sys.executable} -c '"
                    "import json; print(json.dumps({\"kind\": \"hello\", \"python\": \"stub\", "
                    "\"error\": \"ModuleNotFoundError: No module named jax\"}))'\n")
    stub.chmod(0o755)
    monkeypatch.setenv(peers.JAX_PYTHON_ENV, str(stub))
    js = tmp_path / "b.json"
    assert bench_main(TINY + ["--compare-jax", "--json", str(js)]) == 0
    why = json.loads(js.read_text())["unavailable"]["jax"]
    assert why == f"cannot import jax with {stub} (Python stub): ModuleNotFoundError: No module named jax"


@requires_torch
def test_failing_torch_compile_is_unavailable_with_the_first_line(tmp_path, monkeypatch):
    import torch

    def broken(*a, **k):
        raise RuntimeError("no C++ compiler found (test)\nsecond line")
    monkeypatch.setattr(torch, "compile", broken)
    js = tmp_path / "b.json"
    rc = bench_main(TINY + ["--compare-torch-compile", "--same-process", "--json", str(js)])
    assert rc == 0
    doc = json.loads(js.read_text())
    assert doc["unavailable"]["torch-compile"] == \
        "torch.compile failed: RuntimeError: no C++ compiler found (test)"
    assert {r["backend"] for r in doc["rows"]} == {"numpy"}


def test_peer_ratio_table():
    def row(backend, impl, ms):
        return {"case": "lenet5_step", "size": 64, "dtype": "float32", "backend": backend,
                "impl": impl, "device": "cpu", "error": None, "median_ms": ms}
    rows = [row("numba", "gradflow", 3.0), row("torch-cpu", "torch", 6.0),
            row("torch-compile-cpu", "torch-compile", 4.0), row("jax-cpu", "jax", 2.0)]
    table = report.peer_ratio_table(rows)
    line = next(l for l in table if "numba" in l)
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells == ["lenet5_step", "64", "numba", "3.00", "0.50x", "0.75x", "1.50x"]
    assert "t/jax-cpu" in table[2]
    assert report.peer_ratio_table(rows[:2]) == []  # torch eager alone: the usual t/torch column


def test_numpy_inputs_are_the_gradflow_rows_inputs():
    import numpy as np
    case = workloads.cases("lenet5_step", [3], "float32")[0]
    arrays = workloads.numpy_inputs(case)
    ws = models.init_weights(models.SPECS["lenet5_step"], "float32")
    assert [arrays[f"p{i}"].shape for i in range(len(ws))] == [w.shape for w in ws]
    assert all(np.array_equal(arrays[f"p{i}"], w) for i, w in enumerate(ws))
    x, y = models.batch("lenet5_step", 3, "float32")
    assert np.array_equal(arrays["x"], x) and np.array_equal(arrays["y"], y)


# -- with jax: the same model, the same losses -----------------------------------------------
def _gradflow_losses(workload, n, steps):
    step = models.gradflow_step(workload, "numpy", "float32", n)
    return [step().item() for _ in range(steps)]


@needs_jax
@pytest.mark.parametrize("workload", ["lenet5_step", "mlp_step"])
def test_jax_step_losses_match_gradflow(workload):
    w = peers.JaxWorker(_jax_python(), threads=1)
    try:
        case = workloads.cases(workload, [5], "float32")[0]
        got = w.losses(case, 3)
    finally:
        w.close()
    want = _gradflow_losses(workload, 5, 3)
    assert got == pytest.approx(want, rel=1e-4)  # step 1: the forward; 2, 3: grads + momentum
    assert got[2] < got[0]


@needs_jax
def test_jax_rows_through_the_cli(tmp_path):
    js = tmp_path / "b.json"
    rc = bench_main(["--backends", "numpy", "--workloads", "lenet5_step,conv2d,softmax_xent",
                     "--batch-sizes", "2", "--repeat", "2", "--warmup", "0", "--no-progress",
                     "--compare-jax", "--jax-python", _jax_python(), "--jax-threads", "1",
                     "--same-process", "--json", str(js)])
    assert rc == 0
    doc = json.loads(js.read_text())
    rows = {(r["case"], r["backend"]): r for r in doc["rows"]}
    for case in ("lenet5_step", "conv2d_fwd", "conv2d_fwdbwd", "softmax_xent"):
        r = rows[(case, "jax-cpu")]
        assert r["error"] is None and r["impl"] == "jax" and r["repeats"] == 2, r
        assert r["first_call_ms"] > 0 and r["q1_ms"] <= r["median_ms"] <= r["q3_ms"]
    for case in ("lenet5_step", "softmax_xent"):
        assert rows[(case, "jax-cpu")]["loss0"] == pytest.approx(rows[(case, "numpy")]["loss0"],
                                                                 rel=1e-4)
    assert doc["machine"]["jax"] and doc["machine"]["jax_threads"] == 1


# -- torch.compile: the same losses as eager --------------------------------------------------
@requires_torch
@pytest.mark.slow  # a cold inductor compile of the step takes 15-25 s on 2 cores
def test_torch_compile_step_losses_match_eager():
    import shutil
    if shutil.which(os.environ.get("CXX", "g++")) is None:
        pytest.skip("no C++ compiler for inductor's CPU backend")
    info = peers.torch_compile_info()
    if info.get("torch_compile_error"):
        pytest.skip(f"torch.compile unavailable: {info['torch_compile_error']}")
    case = workloads.cases("lenet5_step", [4], "float32")[0]
    compiled = workloads.build_torch(case, "cpu", compiled=True)
    eager = workloads.build_torch(case, "cpu")
    with warnings.catch_warnings():  # dynamo's internal warnings (errors under pytest)
        warnings.simplefilter("ignore")
        got = [compiled().item() for _ in range(3)]
    want = [eager().item() for _ in range(3)]
    assert got == pytest.approx(want, rel=1e-4)
    assert got == pytest.approx(_gradflow_losses("lenet5_step", 4, 3), rel=1e-4)
