"""``gradflow train``: a short real run writes the three files with sane contents;
Ctrl-C saves a resumable checkpoint; --resume continues; bad input is reported."""
from __future__ import annotations

import json

import numpy as np
import pytest

import gradflow as gf
from gradflow import cli, train


def _run(argv):
    return cli.main(["train", "--no-progress"] + argv)


def test_short_run_writes_outputs(tmp_path, capsys):
    out = tmp_path / "run"
    rc = _run(["--model", "mlp", "--epochs", "2", "--limit", "400", "--lr", "0.05", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "train loss" in text and "val acc" in text and "test acc" in text
    assert "final test accuracy" in text
    m = json.loads((out / "metrics.json").read_text())
    assert [e["epoch"] for e in m["epochs"]] == [1, 2]
    assert m["epochs"][1]["train_loss"] < m["epochs"][0]["train_loss"]
    assert m["final"]["test_acc"] > 0.5  # 400 real digits, 2 epochs: far above chance
    assert m["config"]["model"] == "mlp" and m["backend"] == gf.current_backend().name
    png = (out / "training.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    ck = gf.load(out / "model.npz")
    assert set(ck) == {"model", "optimizer", "epoch", "step", "partial", "metrics", "config"}
    assert (ck["epoch"], ck["step"]) == (2, 0) and ck["config"]["backend"] == m["backend"]
    assert sorted(p.name for p in out.iterdir()) == ["best.npz", "last.npz", "metrics.json",
                                                     "model.npz", "training.png"]
    model = train.load_model(out / "model.npz")
    assert not model.training
    x = gf.randn(3, 1, 28, 28)
    assert model(x).shape == (3, 10)


def test_splits_are_disjoint_and_standardised_on_train():
    (tr, va, te), geo = train.load_splits("digits", seed=0)
    assert (len(tr), len(va), len(te)) == (4000, 500, 500)
    a, b, c = set(tr.indices), set(va.indices), set(te.indices)
    assert not (a & b or a & c or b & c)
    images = tr.dataset.data[np.asarray(tr.indices)] / 255.0
    assert geo["mean"][0] == pytest.approx(images.mean(), rel=1e-5)
    assert geo["std"][0] == pytest.approx(images.std(), rel=1e-5)
    # the held-out splits are not augmented: the same sample twice is identical
    np.testing.assert_array_equal(va[0][0], va[0][0])
    (tr2, _, _), _ = train.load_splits("digits", seed=0, augment=True)
    assert tr2.indices == tr.indices


def test_interrupt_saves_checkpoint_and_resume_continues(tmp_path, monkeypatch, capsys):
    """Ctrl-C in the second epoch (at a batch boundary) saves OUT/last.npz at that very
    batch; --resume OUT continues from it and reproduces the uninterrupted run."""
    import signal
    base, out = tmp_path / "base", tmp_path / "run"
    args = ["--model", "mlp", "--epochs", "3", "--limit", "200", "--seed", "3"]
    assert _run(args + ["--out", str(base)]) == 0
    real = train.train_one_epoch
    calls = {"n": 0}

    def ctrl_c_in_epoch_2(model, loader, optimizer, progress=None, after_step=None, stats=None,
                          step=None):
        calls["n"] += 1

        def step_then_signal():
            if calls["n"] == 2 and stats["total"] == 64:   # two batches into epoch 2
                signal.raise_signal(signal.SIGINT)
            after_step()
        return real(model, loader, optimizer, progress, step_then_signal, stats, step)

    monkeypatch.setattr(train, "train_one_epoch", ctrl_c_in_epoch_2)
    assert _run(args + ["--out", str(out)]) == 130
    text = capsys.readouterr().out
    assert "interrupted by Ctrl-C" in text and f"--resume {out}" in text
    ck = gf.load(out / "last.npz")
    assert (ck["epoch"], ck["step"]) == (1, 2) and len(ck["metrics"]) == 1
    assert ck["partial"]["total"] == 64
    assert ck["optimizer"]["state"]  # momentum buffers are in the checkpoint
    assert ck["config"]["backend"] == gf.current_backend().name
    assert gf.load(out / "best.npz")["epoch"] == 1
    assert not (out / "model.npz").exists()
    monkeypatch.setattr(train, "train_one_epoch", real)
    assert _run(["--resume", str(out)]) == 0
    assert "after epoch 1 and 2 of 7 batches" in capsys.readouterr().out
    m = json.loads((out / "metrics.json").read_text())
    want = json.loads((base / "metrics.json").read_text())
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(m["epochs"]) == strip(want["epochs"]) and m["complete"]
    assert m["config"]["seed"] == 3 and m["config"]["limit"] == 200
    wa, wb = gf.load(out / "model.npz")["model"], gf.load(base / "model.npz")["model"]
    assert all(np.array_equal(wa[k].numpy(), wb[k].numpy()) for k in wb)
    # asking for a different model than the checkpoint's is refused, naming the flag
    assert _run(["--resume", str(out / "model.npz"), "--model", "lenet5"]) == 2
    assert "--model lenet5 differs from the checkpoint's 'mlp'" in capsys.readouterr().err


def test_ctrl_c_during_the_last_evaluation_is_not_ignored(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    real = train.evaluate
    calls = {"n": 0}

    def evaluate(model, loader, check_stop=None):
        calls["n"] += 1
        if calls["n"] == 3:  # epoch 2 of 2: the validation pass
            import signal
            signal.raise_signal(signal.SIGINT)
        return real(model, loader, check_stop)

    monkeypatch.setattr(train, "evaluate", evaluate)
    assert _run(["--model", "mlp", "--epochs", "2", "--limit", "100", "--out", str(out)]) == 130
    ck = gf.load(out / "last.npz")
    assert (ck["epoch"], ck["step"]) == (1, 4)  # epoch 2 trained, its evaluation pending
    assert not (out / "model.npz").exists()
    monkeypatch.setattr(train, "evaluate", real)
    assert _run(["--resume", str(out)]) == 0
    assert gf.load(out / "model.npz")["epoch"] == 2
    assert [e["epoch"] for e in json.loads((out / "metrics.json").read_text())["epochs"]] == [1, 2]


def test_second_ctrl_c_during_a_save_waits_for_the_rename(tmp_path, monkeypatch, capsys):
    """Two SIGINTs while last.npz is being written: the save completes, then the run
    stops with 130 and the checkpoint on disk is whole."""
    import signal
    from gradflow import serialization
    out = tmp_path / "run"
    real = serialization.save
    calls = {"n": 0}

    def save(obj, path, metadata=None):
        calls["n"] += 1
        if calls["n"] == 1:
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)
        return real(obj, path, metadata=metadata)

    monkeypatch.setattr(serialization, "save", save)
    assert _run(["--model", "mlp", "--epochs", "3", "--limit", "100", "--out", str(out)]) == 130
    assert "Traceback" not in capsys.readouterr().err
    ck = gf.load(out / "last.npz")
    assert (ck["epoch"], ck["step"]) == (1, 0)
    assert sorted(p.name for p in out.iterdir()) == ["best.npz", "last.npz", "metrics.json"]


def test_diverged_run_exits_nonzero_without_a_model(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(["--model", "mlp", "--epochs", "2", "--limit", "100", "--lr", "1e9",
                 "--out", str(out)]) == train.DIVERGED
    err = capsys.readouterr().err
    assert "the loss diverged" in err and "--lr" in err
    assert not (out / "model.npz").exists() and not (out / "last.npz").exists()


def test_fresh_run_replaces_a_previous_runs_checkpoints(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(["--model", "mlp", "--epochs", "2", "--limit", "64", "--out", str(out)]) == 0
    assert _run(["--model", "mlp", "--epochs", "1", "--limit", "64", "--out", str(out)]) == 0
    assert "replacing the previous run's files" in capsys.readouterr().out
    assert gf.load(out / "last.npz")["epoch"] == 1  # not the earlier run's epoch 2


def test_resume_picks_the_newest_complete_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(["--model", "mlp", "--epochs", "2", "--limit", "64", "--out", str(out)]) == 0
    assert train.find_checkpoint(str(out)) == str(out / "last.npz")
    # a truncated last.npz (a new file: model/best/last share one inode via hard links)
    (out / "cut").write_bytes((out / "last.npz").read_bytes()[:500])
    (out / "cut").replace(out / "last.npz")
    assert train.find_checkpoint(str(out)) == str(out / "model.npz")
    assert "skipping" in capsys.readouterr().err


def test_checkpoint_every_saves_mid_epoch(tmp_path):
    out = tmp_path / "run"
    assert _run(["--model", "mlp", "--epochs", "1", "--limit", "160", "--batch-size", "32",
                 "--checkpoint-every", "2", "--out", str(out)]) == 0
    ck = gf.load(out / "last.npz")
    assert (ck["epoch"], ck["step"]) == (1, 0) and ck["config"]["checkpoint_every"] == 2


def test_cosine_schedule():
    cfg = {"lr": 0.1, "epochs": 4, "schedule": "cosine"}
    assert [round(train.epoch_lr(cfg, e), 6) for e in range(4)] == [0.1, 0.085355, 0.05, 0.014645]
    assert train.epoch_lr({"lr": 0.1, "epochs": 4, "schedule": "constant"}, 3) == 0.1


def test_python_m_entry_point():
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "gradflow", "train", "--help"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "--resume" in r.stdout and "--limit" in r.stdout


def test_blas_threads_helper_restores():
    from gradflow.utils.threads import blas_threads, get_blas_threads
    before = get_blas_threads()
    if before is None:
        pytest.skip("no OpenBLAS found in this process")
    with blas_threads(1):
        assert get_blas_threads() == 1
    assert get_blas_threads() == before


@pytest.mark.parametrize("dataset,model", [("cifar10", "convnet"), ("fashion-mnist", "lenet5"),
                                           ("mnist", "mlp")])
def test_other_datasets_from_files(tmp_path, dataset, model, monkeypatch):
    import sys
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    try:
        from test_datasets import _write_cifar
        from test_pytorch_scripts import _idx_copy
    finally:
        sys.path.pop(0)
    monkeypatch.delenv("GRADFLOW_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = tmp_path / "data"
    if dataset == "cifar10":
        _write_cifar(root / "cifar-10-batches-py", n=20)
    else:
        _idx_copy(root / ("FashionMNIST" if dataset == "fashion-mnist" else "MNIST") / "raw", 200, 50)
    out = tmp_path / "out"
    assert _run(["--dataset", dataset, "--model", model, "--data-root", str(root), "--epochs", "1",
                 "--limit", "64", "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["config"]["in_channels"] == (3 if dataset == "cifar10" else 1)
    assert len(m["config"]["mean"]) == (3 if dataset == "cifar10" else 1)  # per-channel for RGB
    assert train.load_model(out / "model.npz")(gf.zeros(1, m["config"]["in_channels"],
                                                         m["config"]["image_size"],
                                                         m["config"]["image_size"])).shape == (1, 10)


def test_interrupts_defer_signals_to_safe_points():
    """SIGINT only sets a flag; check() raises at the next safe point; a second one
    interrupts at once; inside critical() none raises until the block ends; the
    previous handler comes back afterwards."""
    import signal
    from gradflow.utils.signals import Interrupts
    before = signal.getsignal(signal.SIGINT)
    with Interrupts() as guard:
        guard.deferred = True
        guard.check()                      # nothing requested: no-op
        signal.raise_signal(signal.SIGINT)
        assert guard.requested and guard.exit_status == 130
        with pytest.raises(KeyboardInterrupt):
            guard.check()
        assert guard.safe
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)   # the second Ctrl-C is immediate
        assert not guard.safe
    with Interrupts() as guard:
        done = []
        with pytest.raises(KeyboardInterrupt):
            with guard.critical():
                for _ in range(3):
                    signal.raise_signal(signal.SIGINT)
                done.append(True)                # the block runs to its end
        assert done and guard.count == 3
    assert signal.getsignal(signal.SIGINT) is before


def test_readme_demo_table_matches_a_fresh_run(tmp_path, capsys):
    """The README's `make demo` table: its header line is what the command prints, and
    its first row is what epoch 1 of a fresh run prints (with --epochs 1 the cosine
    schedule's first epoch, and every random stream, are the same as the demo's).
    Values are compared to a small tolerance: BLAS builds may round differently."""
    import os
    import re
    with open(os.path.join(os.path.dirname(os.path.dirname(__file__)), "README.md")) as f:
        readme = f.read()
    block = readme[readme.index("```\ngradflow train: lenet5"):]
    block = block[4:block.index("```", 4)]
    header = block.splitlines()[0]
    row1 = next(line for line in block.splitlines() if re.match(r"^\s+1 \|", line))
    assert _run(["--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == header

    def values(line):
        return [float(v.strip().rstrip("%s")) for v in line.split("|")[1:6]]

    got = values(next(line for line in out if re.match(r"^\s+1 \|", line)))
    for g, w, tol in zip(got, values(row1), (0.005, 0.5, 0.005, 0.5, 0.5)):
        assert abs(g - w) <= tol, (got, values(row1))


def test_training_plot_is_titled_with_model_dataset_and_backend(tmp_path, monkeypatch):
    seen = []
    real = train.plot
    monkeypatch.setattr(train, "plot", lambda m, path, title=None: (seen.append(title),
                                                                     real(m, path, title)))
    assert _run(["--model", "mlp", "--epochs", "1", "--limit", "32", "--out", str(tmp_path)]) == 0
    assert seen == [f"mlp on digits, backend {gf.current_backend().name}"]
    assert (tmp_path / "training.png").read_bytes()[:4] == b"\x89PNG"


def test_sigterm_saves_like_ctrl_c_and_exits_143(tmp_path, monkeypatch, capsys):
    import signal
    real = train.train_one_epoch

    def sigterm_after_first_batch(model, loader, optimizer, progress=None, after_step=None, stats=None,
                                  step=None):
        def step_then_signal():
            if stats["total"] == 32:
                signal.raise_signal(signal.SIGTERM)
            after_step()
        return real(model, loader, optimizer, progress, step_then_signal, stats, step)

    monkeypatch.setattr(train, "train_one_epoch", sigterm_after_first_batch)
    assert _run(["--model", "mlp", "--epochs", "2", "--limit", "96", "--out", str(tmp_path)]) == 143
    assert "interrupted by SIGTERM" in capsys.readouterr().out
    ck = gf.load(tmp_path / "last.npz")
    assert (ck["epoch"], ck["step"]) == (0, 1)
