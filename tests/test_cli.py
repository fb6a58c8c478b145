"""The ``gradflow`` command as a user runs it (a real subprocess): every bad input
ends in one line ``gradflow <command>: error: ...`` naming what was wrong and what is
valid, with exit status 2 and no traceback."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

import gradflow as gf

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _gradflow(*argv, env=None, cwd=None, timeout=120):
    e = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
             OPENBLAS_NUM_THREADS="1")
    e.pop("GRADFLOW_BACKEND", None)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "gradflow", *argv], capture_output=True, text=True,
                          env=e, cwd=cwd, timeout=timeout)


def _one_line_error(r, command, *fragments):
    assert r.returncode == 2, (r.returncode, r.stdout[-1000:], r.stderr[-2000:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"gradflow {command}: error: "), lines[0]
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    assert "Traceback" not in r.stderr


_CUPY_MISSING = gf.backends.unavailable_reason("cupy") is not None


@pytest.mark.parametrize("argv,fragments", [
    (["--epochs", "-1"], ["--epochs", ">= 1", "-1"]),
    (["--epochs", "two"], ["--epochs", "integer", "'two'"]),
    (["--batch-size", "0"], ["--batch-size", ">= 1"]),
    (["--lr", "-1"], ["--lr", "> 0"]),
    (["--lr", "inf"], ["--lr", "finite"]),
    (["--limit", "0"], ["--limit", ">= 1", "got 0"]),
    (["--limit", "-3"], ["--limit", ">= 1", "got -3"]),
    (["--seed", "-5"], ["--seed", "[0, 4294967295]"]),
    (["--checkpoint-every", "0"], ["--checkpoint-every", ">= 1"]),
    (["--model", "resnet"], ["--model", "'lenet5'"]),
    (["--backend", "nope"], ["--backend", "unknown backend 'nope'", "numpy"]),
    pytest.param(["--backend", "cupy"], ["--backend", "'cupy' is not available", "available here"],
                 marks=pytest.mark.skipif(not _CUPY_MISSING, reason="CuPy runs here")),
])
def test_train_bad_flag_is_one_line(argv, fragments, tmp_path):
    _one_line_error(_gradflow("train", *argv, "--out", str(tmp_path / "o"), cwd=tmp_path), "train",
                    *fragments)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("value,fragment", [
    ("nope", "unknown backend 'nope'"),
    pytest.param("cupy", "'cupy' is not available",
                 marks=pytest.mark.skipif(not _CUPY_MISSING, reason="CuPy runs here")),
])
def test_invalid_gradflow_backend_env(value, fragment, tmp_path):
    r = _gradflow("train", "--out", str(tmp_path / "o"), env={"GRADFLOW_BACKEND": value}, cwd=tmp_path)
    _one_line_error(r, "train", "GRADFLOW_BACKEND", fragment)
    r = _gradflow("info", env={"GRADFLOW_BACKEND": value})
    _one_line_error(r, "info", "GRADFLOW_BACKEND", fragment)
    assert "numpy  available" in r.stdout  # the rest of the report is still there


def test_info_names_the_default_backend():
    r = _gradflow("info", env={"GRADFLOW_BACKEND": "numpy"})
    assert r.returncode == 0 and "default backend: numpy ($GRADFLOW_BACKEND=numpy)" in r.stdout


def _main_one_line_error(capsys, argv, command, *fragments):
    """The same check as _one_line_error, for gradflow.cli.main run in this process."""
    from gradflow import cli
    rc = cli.main(argv)
    err = capsys.readouterr().err
    _one_line_error(subprocess.CompletedProcess(argv, rc, "", err), command, *fragments)


def test_resume_of_missing_empty_truncated_and_foreign_files(tmp_path, capsys):
    from gradflow import cli
    assert cli.main(["train", "--model", "mlp", "--epochs", "1", "--limit", "32", "--no-progress",
                     "--out", str(tmp_path / "run")]) == 0
    good = (tmp_path / "run" / "last.npz").read_bytes()
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "cut.npz").write_bytes(good[: len(good) // 2])
    gf.save({"weights": gf.zeros(2)}, tmp_path / "foreign.npz")
    (tmp_path / "nothing").mkdir()
    cases = [("missing.npz", "no such file"), ("empty.npz", "empty"),
             ("cut.npz", "not a readable gradflow checkpoint"),
             ("foreign.npz", "not a gradflow train checkpoint"),
             ("nothing", "no complete checkpoint in this folder")]
    for name, fragment in cases[:2]:  # the real command ...
        r = _gradflow("train", "--resume", str(tmp_path / name), cwd=tmp_path)
        _one_line_error(r, "train", f"--resume {tmp_path / name}", fragment)
    for name, fragment in cases[2:]:  # ... and the same code in this process (faster)
        _main_one_line_error(capsys, ["train", "--resume", str(tmp_path / name)], "train",
                             f"--resume {tmp_path / name}", fragment)


def test_version_flag():
    r = _gradflow("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"gradflow {gf.__version__}"


@pytest.fixture
def _restore_default_backend():
    name = gf.current_backend().name
    yield
    gf.set_backend(name)


def test_resume_keeps_the_checkpoints_backend_and_says_so(tmp_path, capsys, monkeypatch,
                                                           _restore_default_backend):
    """A run started on numba and resumed continues on numba, even with
    $GRADFLOW_BACKEND=numpy; --backend overrides it, saying so. (In this process: the
    Numba kernels compile once per session.)"""
    from gradflow import cli
    if gf.backends.unavailable_reason("numba") is not None:
        pytest.skip("numba is not available")
    out = tmp_path / "run"
    assert cli.main(["train", "--model", "mlp", "--epochs", "1", "--limit", "32", "--no-progress",
                     "--backend", "numba", "--out", str(out)]) == 0
    capsys.readouterr()
    monkeypatch.setenv("GRADFLOW_BACKEND", "numpy")
    assert cli.main(["train", "--resume", str(out), "--epochs", "2", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "backend numba," in text.splitlines()[0]
    assert "backend numba from the checkpoint, not $GRADFLOW_BACKEND=numpy" in text
    assert "--epochs 2 (the checkpoint had 1)" in text
    assert cli.main(["train", "--resume", str(out), "--epochs", "3", "--no-progress", "--backend",
                     "numpy"]) == 0
    assert re.search(r"--backend numpy \(the checkpoint had 'numba'\)", capsys.readouterr().out)
    assert gf.load(out / "model.npz")["config"]["backend"] == "numpy"
