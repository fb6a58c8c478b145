"""``gradflow bench --compiled``: the ``<backend>-compiled`` rows (gradflow.compile of the
bench's own training steps). The flag, where the rows go and which workloads get one,
the capture kept out of the timed calls, the same losses as eager, a refused capture
reported in its row, and the JSON fields. Tiny batches and repeats; no timing asserted."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

import gradflow
from gradflow.bench import cli, compiled, models, report, runner, workers, workloads
from gradflow.bench.__main__ import main as bench_main

from conftest import backend_params

from test_bench import NULLABLE, ROW_KEYS

COMPILED_KEYS = {"capture_ms": float, "capture_calls": int, "first_replay_ms": float,
                 "kernels": int, "eager_backend": str}
COMPILED_NULLABLE = {"vs_eager": float}
TINY = ["--batch-sizes", "2", "--repeat", "2", "--warmup", "1", "--no-progress"]


def _parse(argv):
    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    return p.parse_args(argv)


# -- the flag and the implementations ---------------------------------------------------------------
def test_flag_parses_and_is_in_the_command_line():
    assert _parse([]).compiled is False
    a = _parse(["--compiled", "--backends", "numpy", "--workloads", "mlp_step"])
    assert a.compiled is True
    cmd = cli._command(a, ["mlp_step"], None, ["numpy"], cli._settings(a))
    assert "--compiled" in cmd.split()
    assert "--compiled" not in cli._command(_parse([]), ["mlp_step"], None, None,
                                            cli._settings(_parse([])))


@pytest.mark.parametrize("pool", [None, object()])  # same process, and worker processes
def test_each_backend_is_followed_by_its_compiled_twin(pool):
    impls, _ = runner.resolve_impls(["numpy", "numba"], False, pool=pool, with_compiled=True)
    assert [(i.label, i.kind) for i in impls] == [
        ("numpy", "gradflow"), ("numpy-compiled", "gradflow-compiled"),
        ("numba", "gradflow"), ("numba-compiled", "gradflow-compiled")]
    assert impls[3].device == impls[2].device == "cpu"
    if pool is None:  # the twin synchronises through its backend, as the eager row does
        assert impls[1].synchronize == impls[0].synchronize
    # without the flag nothing changes
    assert [i.label for i in runner.resolve_impls(["numpy"], False, pool=pool)[0]] == ["numpy"]


def test_compiled_rows_share_their_backends_worker():
    impl = compiled.impl_for(runner.Impl("numba", "gradflow", "cpu"))
    assert workers.group_of(impl) == "numba"
    assert compiled.eager_label("cupy-compiled") == "cupy" and compiled.eager_label("numpy") == "numpy"


def test_only_training_steps_get_a_compiled_row():
    steps = [n for n, w in workloads.WORKLOADS.items() if w.modes == ("step",)]
    assert set(steps) >= {"mlp_step", "lenet5_step", "convnet_step"}
    for name in workloads.WORKLOADS:
        for case in workloads.cases(name, [2], "float32"):
            assert compiled.applies(case) == (name in steps), case


# -- the capture is not in the timed calls ------------------------------------------------------------
def test_python_step_runs_only_in_the_capture():
    """Every call after the capture is a replay: the step's Python body (counted) runs in
    the four capture calls (eager, two recorded, the eager rerun of the check) only."""
    ran = {"n": 0}

    def builder(case):
        step = models.gradflow_step(case.workload, "numpy", case.dtype, case.size)

        def counted():
            ran["n"] += 1
            return step()
        return counted
    case = workloads.cases("mlp_step", [2], "float32")[0]
    impl = compiled.impl_for(runner.Impl("numpy", "gradflow", "cpu"))
    row = runner.measure_case(case, impl, warmup=2, repeat=5, budget_s=None, builder=builder)
    assert row["error"] is None, row["error"]
    assert ran["n"] == compiled.CAPTURE_CALLS == row["capture_calls"] == 4
    assert row["repeats"] == len(row["times_ms"]) == 5 and row["warmup"] == 2
    assert row["capture_ms"] >= row["first_call_ms"] > 0   # the first call is part of the capture
    assert row["kernels"] > 5 and row["eager_backend"] == "numpy"
    assert row["loss0"] == pytest.approx(np.log(10), rel=0.2)  # the eager first call's loss


# -- compiled steps compute eager's losses ----------------------------------------------------------
@pytest.mark.parametrize("backend", backend_params(["numpy", "numba", "cupy"]))
@pytest.mark.parametrize("workload", ["mlp_step", "lenet5_step"])
def test_compiled_bench_step_matches_eager(backend, workload):
    n, steps = 4, 7
    eager = models.gradflow_step(workload, backend, "float32", n)
    step, _, first = compiled.capture(models.gradflow_step(workload, backend, "float32", n))
    want = [eager().item() for _ in range(steps)]
    got = [first.item()] + [None] * (compiled.CAPTURE_CALLS - 1)
    got += [step().item() for _ in range(steps - compiled.CAPTURE_CALLS)]
    assert step.stats["replayed"] == steps - compiled.CAPTURE_CALLS
    # the capture calls' own losses are eager's by construction; compare the replays
    np.testing.assert_allclose(got[compiled.CAPTURE_CALLS:], want[compiled.CAPTURE_CALLS:],
                               rtol=2e-5, atol=2e-6)
    assert got[0] == pytest.approx(want[0], rel=1e-6)
    assert len(set(want)) == steps  # the weights move: each step's loss differs


def test_compiled_and_eager_weights_agree_after_the_replays(monkeypatch):
    """The bench's step closes over its model: after the same number of steps the
    parameters of the eager and the compiled step are the same to float32 rounding."""
    made = []
    orig = models.gradflow_nn_model

    def keep(spec, weights):
        made.append(orig(spec, weights))
        return made[-1]
    monkeypatch.setattr(models, "gradflow_nn_model", keep)
    eager = models.gradflow_step("lenet5_step", "numpy", "float32", 3)
    step, _, _ = compiled.capture(models.gradflow_step("lenet5_step", "numpy", "float32", 3))
    for _ in range(compiled.CAPTURE_CALLS + 2):
        eager()
    step()
    step()
    assert step.stats["replayed"] == 2
    for pe, pc in zip(made[0].parameters(), made[1].parameters()):
        np.testing.assert_allclose(pc.numpy(), pe.numpy(), rtol=2e-5, atol=2e-6)
    assert len(made) == 2


# -- a refused capture is that row's error ----------------------------------------------------------
def _item_step_builder(case):
    """The bench step, with ``.item()`` inside: eager runs it, a capture must refuse it."""
    step = models.gradflow_step(case.workload, "numpy", case.dtype, case.size)

    def with_item():
        loss = step()
        loss.item()
        return loss
    return with_item


def test_refused_capture_is_reported_in_its_row_and_the_run_goes_on():
    impls = [runner.Impl("numpy", "gradflow", "cpu")]
    impls.append(compiled.impl_for(impls[0]))
    cases = workloads.cases("mlp_step", [2, 3], "float32")
    res = runner.run(runner.Plan(impls=impls, cases=cases), warmup=0, repeat=1, progress=False,
                     builder=_item_step_builder)
    rows = res["rows"]
    assert [(r["backend"], r["size"]) for r in rows] == [
        ("numpy", 2), ("numpy-compiled", 2), ("numpy", 3), ("numpy-compiled", 3)]
    for r in rows:
        if r["impl"] == "gradflow":
            assert r["error"] is None and r["repeats"] == 1
        else:
            assert r["error"].startswith("capture refused: CaptureError: "), r["error"]
            assert ".item()" in r["error"]
            assert "median_ms" not in r and "capture_ms" not in r
    report.add_ratios(rows)
    assert all(r["vs_eager"] is None for r in rows if r["impl"] == "gradflow-compiled")
    lines = report.compiled_table(rows)
    assert "Capture refused (no compiled timing):" in lines
    assert any(l.startswith("- numpy-compiled, mlp_step at N=3: capture refused: CaptureError") for l in lines)
    table = [l for l in report.case_tables(rows) if l.startswith("| ") and "-compiled" in l]
    assert len(table) == 2 and all(" error " in l for l in table), table


# -- ratios -----------------------------------------------------------------------------------------
def _r(backend, ms, impl="gradflow", **kw):
    return {"case": "lenet5_step", "workload": "lenet5_step", "mode": "step", "size": 64,
            "size_kind": "batch", "dtype": "float32", "backend": backend, "device": "cpu",
            "impl": impl, "median_ms": ms, "error": None, **kw}


def test_ratios_compiled_over_eager_and_over_torch():
    rows = [_r("numpy", 8.0), _r("numpy-compiled", 2.0, "gradflow-compiled", eager_backend="numpy",
                                 capture_ms=30.0, kernels=57),
            _r("numba", 4.0), _r("numba-compiled", 1.0, "gradflow-compiled", eager_backend="numba",
                                 capture_ms=20.0, kernels=57),
            _r("torch-cpu", 5.0, "torch")]
    report.add_ratios(rows)
    by = {r["backend"]: r for r in rows}
    assert by["numba-compiled"]["vs_eager"] == 0.25 and by["numpy-compiled"]["vs_eager"] == 0.25
    assert by["numba-compiled"]["vs_torch"] == 0.2 and by["numba-compiled"]["vs_numpy"] == 0.125
    assert "vs_eager" not in by["numba"]  # eager rows keep their schema
    table = "\n".join(report.compiled_table(rows))
    # case, backend, N, eager ms, compiled ms, capture ms, kernels, compiled/eager, /torch, eager/torch
    cells = [c.strip() for c in next(l for l in table.splitlines() if "| numba " in l).split("|")]
    assert cells[1:11] == ["lenet5_step", "numba", "64", "4.00", "1.00", "20.0", "57", "0.25x",
                           "0.20x", "0.80x"]


# -- the CLI end to end: rows, report, JSON, plot ------------------------------------------------------
def test_cli_compiled_rows_report_json_and_plot(tmp_path, capsys):
    js, png = tmp_path / "b.json", tmp_path / "b.png"
    rc = bench_main(["--backends", "numpy", "--compiled", "--workloads", "softmax_xent,mlp_step",
                     "--json", str(js), "--plot", str(png)] + TINY)
    assert rc == 0
    out = capsys.readouterr().out
    doc = json.loads(js.read_text())
    assert doc["backends"] == ["numpy", "numpy-compiled"]
    assert "--compiled" in doc["command"].split()
    assert [(r["case"], r["backend"]) for r in doc["rows"]] == [
        ("softmax_xent", "numpy"), ("mlp_step", "numpy"), ("mlp_step", "numpy-compiled")]
    for r in doc["rows"]:
        keys = set(ROW_KEYS) | set(NULLABLE)
        if r["impl"] == "gradflow-compiled":
            keys |= set(COMPILED_KEYS) | set(COMPILED_NULLABLE)
            for k, typ in COMPILED_KEYS.items():
                assert isinstance(r[k], typ), (k, r[k])
            assert isinstance(r["vs_eager"], float)
            assert r["capture_calls"] == 4 and r["eager_backend"] == "numpy"
        assert set(r) == keys, set(r) ^ keys
        assert r["error"] is None and r["repeats"] == 2
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "capture ms" in out and "t/eager" in out
    assert "### gradflow.compile against eager" in out
    assert "`<backend>-compiled` rows (`--compiled`)" in out
    # the softmax table (not a step) keeps its columns
    soft = out.split("### softmax_xent")[1].split("###")[0]
    assert "capture ms" not in soft and "compiled" not in soft


def test_cli_compiled_without_a_step_workload_says_so(capsys):
    rc = bench_main(["--backends", "numpy", "--compiled", "--workloads", "softmax_xent",
                     "--same-process"] + TINY)
    assert rc == 0
    cap = capsys.readouterr()
    assert "--compiled: no training-step workload" in cap.err
    assert "compiled" not in cap.out.split("### softmax_xent")[1]


def test_help_lists_the_flag():
    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    assert "--compiled" in p.format_help() and "capture" in p.format_help()


@pytest.fixture(autouse=True)
def _default_dtype():
    prev = gradflow.get_default_dtype()
    yield
    gradflow.set_default_dtype(prev)


def test_peer_table_puts_compiled_rows_on_gradflows_side():
    rows = [_r("numba", 4.0), _r("numba-compiled", 1.0, "gradflow-compiled", eager_backend="numba"),
            _r("torch-cpu", 5.0, "torch"), _r("jax-cpu", 2.0, "jax")]
    lines = report.peer_ratio_table(rows)
    head = [c.strip() for c in lines[2].split("|")]
    assert head[1:-1] == ["case", "size", "gradflow", "median ms", "t/torch-cpu", "t/jax-cpu"]
    comp = [c.strip() for c in next(l for l in lines if "numba-compiled" in l).split("|")]
    assert comp[5:7] == ["0.20x", "0.50x"]
