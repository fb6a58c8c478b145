"""Reliability: Ctrl-C during ``gradflow train`` and ``--resume``.

A real ``gradflow train`` process gets SIGINT once it has printed an epoch row. It
must save ``OUT/interrupted.npz`` (model, optimizer state with momentum buffers,
metrics, the state after the last completed epoch), print how to resume and exit
cleanly with status 130 (no traceback). ``--resume`` then continues with the same
optimizer state: the resumed run's epochs continue from the saved epoch and its
metrics and final weights equal, bit for bit, those of an uninterrupted run with
the same seed.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import numpy as np

import gradflow as gf

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPOCHS = 30  # many short epochs, so the SIGINT sent after epoch 1 lands mid-run
ENV = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
           GRADFLOW_BACKEND="numpy")


def _train_cmd(*extra, progress=False):
    return [sys.executable, "-m", "gradflow", "train", "--model", "mlp", "--limit", "300",
            "--epochs", str(EPOCHS), "--seed", "5", "--batch-size", "32",
            *([] if progress else ["--no-progress"]), *extra]


def _sigint_default():
    # a child of a shell without job control may inherit SIGINT=ignored; Ctrl-C must reach it
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _metrics(path):
    with open(path) as f:
        return [{k: v for k, v in e.items() if k != "seconds"} for e in json.load(f)["epochs"]]


def _weights(path):
    return {k: v.numpy() for k, v in gf.load(path)["model"].items()}


def test_ctrl_c_saves_resumable_checkpoint_and_resume_is_exact(tmp_path):
    base, run = tmp_path / "base", tmp_path / "run"
    r = subprocess.run(_train_cmd("--out", str(base)), capture_output=True, text=True, env=ENV,
                       cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    baseline = _metrics(base / "metrics.json")
    assert [m["epoch"] for m in baseline] == list(range(1, EPOCHS + 1))

    proc = subprocess.Popen(_train_cmd("--out", str(run), progress=True), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV, cwd=tmp_path,
                            preexec_fn=_sigint_default)
    seen = []
    try:
        for line in proc.stdout:            # wait for progress: the first epoch's row
            seen.append(line)
            if re.match(r"^\s+1 \|", line):
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    out = "".join(seen) + out
    assert proc.returncode == 130, (proc.returncode, out[-2000:], err[-3000:])
    assert "Traceback" not in err, err[-3000:]
    assert "interrupted" in out and "--resume" in out
    ck_path = run / "interrupted.npz"
    ck = gf.load(ck_path)
    done = ck["epoch"]
    assert 1 <= done < EPOCHS, f"the interrupt should land mid-run (checkpoint at epoch {done})"
    assert [m["epoch"] for m in ck["metrics"]] == list(range(1, done + 1))
    assert ck["optimizer"]["state"], "optimizer state (momentum buffers) must be in the checkpoint"
    assert not (run / "model.npz").exists()
    assert not [n for n in os.listdir(run) if n.startswith(".")], "no temporary files left"
    # the checkpoint is the state after `done` epochs: its metrics are the baseline's
    for got, want in zip(ck["metrics"], baseline):
        assert {k: v for k, v in got.items() if k != "seconds"} == want

    r = subprocess.run(_train_cmd("--resume", str(ck_path), "--out", str(run)), capture_output=True,
                       text=True, env=ENV, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"resuming after epoch {done}" in r.stdout
    resumed = _metrics(run / "metrics.json")
    assert [m["epoch"] for m in resumed] == list(range(1, EPOCHS + 1))
    # the loss curve continues: every epoch after the interrupt matches the uninterrupted run
    assert resumed == baseline, (resumed, baseline)
    wb, wr = _weights(base / "model.npz"), _weights(run / "model.npz")
    assert wb.keys() == wr.keys()
    for k in wb:
        assert np.array_equal(wb[k], wr[k]), f"{k} differs after resume"
