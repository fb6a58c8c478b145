"""Reliability: Ctrl-C, SIGTERM and SIGKILL during ``gradflow train``, and ``--resume``.

A real ``gradflow train`` process gets SIGINT once it has printed an epoch row. It
must save ``OUT/last.npz`` (model, optimizer state with momentum buffers, metrics,
the state at the batch where it stopped), print how to resume and exit cleanly with
status 130 (no traceback). ``--resume OUT`` then continues with the same optimizer
state: the resumed run's metrics and final weights equal, bit for bit, those of an
uninterrupted run with the same seed.

SIGKILL at random moments (during start-up, training, evaluation and -- watched
for -- in the middle of a checkpoint save), many times over one run: after each
kill the newest complete checkpoint holds at least every epoch whose row was
printed, and the run resumed again and again finishes with the uninterrupted run's
exact metrics and weights.
"""
from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import gradflow as gf
from gradflow.train import _read_progress, find_checkpoint

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
    ck_path = run / "last.npz"
    ck = gf.load(ck_path)
    done = ck["epoch"]
    assert 1 <= done < EPOCHS, f"the interrupt should land mid-run (checkpoint at epoch {done})"
    assert [m["epoch"] for m in ck["metrics"]] == list(range(1, done + 1))
    assert ck["optimizer"]["state"], "optimizer state (momentum buffers) must be in the checkpoint"
    assert not (run / "model.npz").exists() and (run / "best.npz").exists()
    assert not [n for n in os.listdir(run) if n.startswith(".")], "no temporary files left"
    # the checkpoint is the state after `done` epochs: its metrics are the baseline's
    for got, want in zip(ck["metrics"], baseline):
        assert {k: v for k, v in got.items() if k != "seconds"} == want

    r = subprocess.run(_train_cmd("--resume", str(run)), capture_output=True,
                       text=True, env=ENV, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"last.npz after epoch {done}" in r.stdout
    resumed = _metrics(run / "metrics.json")
    assert [m["epoch"] for m in resumed] == list(range(1, EPOCHS + 1))
    # the loss curve continues: every epoch after the interrupt matches the uninterrupted run
    assert resumed == baseline, (resumed, baseline)
    wb, wr = _weights(base / "model.npz"), _weights(run / "model.npz")
    assert wb.keys() == wr.keys()
    for k in wb:
        assert np.array_equal(wb[k], wr[k]), f"{k} differs after resume"


KILL_EPOCHS = 6
KILL_ARGS = ["--model", "mlp", "--limit", "256", "--epochs", str(KILL_EPOCHS), "--seed", "2",
             "--batch-size", "32", "--checkpoint-every", "2", "--no-progress"]


def _kill_once(run, rng, during_save, log):
    """Start (or resume) the run, SIGKILL it at a random moment of its training -- or,
    with ``during_save``, as soon as a checkpoint's temporary file appears -- and
    return (exit status, epochs whose rows it printed)."""
    resume = os.path.isdir(run) and any(n.endswith(".npz") for n in os.listdir(run))
    cmd = [sys.executable, "-m", "gradflow", "train", *KILL_ARGS,
           *(["--resume", str(run)] if resume else ["--out", str(run)])]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=ENV, cwd=run.parent)
        # the moment training starts: the header line (start-up kills are the easy case)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            with open(log) as f:
                if "-----" in f.read():
                    break
            time.sleep(0.01)
        deadline = time.monotonic() + (10.0 if during_save else rng.uniform(0.0, 1.5))
        in_save = False
        stale = set(os.listdir(run))  # temporary files a killed save left (not this test's topic)
        while time.monotonic() < deadline and proc.poll() is None:
            if during_save and any(n.endswith(".tmp") for n in set(os.listdir(run)) - stale):
                in_save = True
                break
            time.sleep(0.0005 if during_save else 0.01)
        proc.kill()
        proc.wait(timeout=60)
    with open(log) as f:
        printed = [int(m.group(1)) for m in re.finditer(r"^\s+(\d+) \|", f.read(), re.M)]
    return proc.returncode, printed, in_save


def _kill_many_times(tmp_path, kills):
    base, run = tmp_path / "base", tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "gradflow", "train", *KILL_ARGS, "--out", str(base)],
                       capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    rng = random.Random(1234)
    kinds = []
    for i in range(kills):
        rc, printed, in_save = _kill_once(run, rng, during_save=i % 2 == 1, log=tmp_path / f"log{i}")
        if rc == 0:
            break  # it finished before the kill
        kinds.append((in_save, printed))
        if not printed:
            continue
        # every epoch whose row was printed is in a complete checkpoint
        epoch, step = _read_progress(find_checkpoint(str(run)))
        assert epoch >= max(printed), (i, printed, epoch, step)
    print("kills (during a save?, epoch rows printed):", kinds)
    r = subprocess.run([sys.executable, "-m", "gradflow", "train", *KILL_ARGS, "--resume", str(run)],
                       capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert _metrics(run / "metrics.json") == _metrics(base / "metrics.json")
    wb, wr = _weights(base / "model.npz"), _weights(run / "model.npz")
    assert all(np.array_equal(wb[k], wr[k]) for k in wb)


def test_sigkill_at_random_moments_loses_at_most_the_last_checkpoint_interval(tmp_path):
    _kill_many_times(tmp_path, kills=4)


@pytest.mark.slow
def test_sigkill_many_times(tmp_path):
    _kill_many_times(tmp_path, kills=40)
