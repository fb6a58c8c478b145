"""``gradflow train``: a short real run writes the three files with sane contents;
Ctrl-C saves a resumable checkpoint; --resume continues; bad input is reported."""
from __future__ import annotations

import json

import numpy as np
import pytest

import gradflow as gf
from gradflow import cli, train
from gradflow.serialization import CheckpointError


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
    assert set(ck) == {"model", "optimizer", "epoch", "metrics", "config"} and ck["epoch"] == 2
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
    out = tmp_path / "run"
    real = train.train_one_epoch
    calls = {"n": 0}

    def flaky(model, loader, optimizer, progress=None, check_stop=None):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(model, loader, optimizer, progress, check_stop)

    monkeypatch.setattr(train, "train_one_epoch", flaky)
    args = ["--model", "mlp", "--epochs", "3", "--limit", "200", "--seed", "3", "--out", str(out)]
    assert _run(args) == 130
    text = capsys.readouterr().out
    assert "interrupted" in text and "--resume" in text
    ck = gf.load(out / "interrupted.npz")
    assert ck["epoch"] == 1 and len(ck["metrics"]) == 1
    assert ck["optimizer"]["state"]  # momentum buffers are in the checkpoint
    assert not (out / "model.npz").exists()
    monkeypatch.setattr(train, "train_one_epoch", real)
    assert _run(["--resume", str(out / "interrupted.npz"), "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert [e["epoch"] for e in m["epochs"]] == [1, 2, 3]
    assert m["config"]["seed"] == 3 and m["config"]["limit"] == 200
    # asking for a different model than the checkpoint's is refused
    assert _run(["--resume", str(out / "model.npz"), "--model", "lenet5", "--out", str(out)]) == 2


def test_bad_inputs(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("GRADFLOW_DATA", raising=False)
    assert _run(["--dataset", "mnist", "--data-root", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "not found" in capsys.readouterr().err
    assert _run(["--epochs", "0", "--out", str(tmp_path / "o")]) == 2
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(CheckpointError):
        _run(["--resume", str(tmp_path / "junk.npz"), "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit):
        _run(["--model", "resnet"])


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


def test_ctrl_c_is_deferred_to_a_batch_boundary():
    """SIGINT only sets a flag; check() raises at the next safe point; a second
    Ctrl-C interrupts at once; the previous handler comes back afterwards."""
    import signal
    before = signal.getsignal(signal.SIGINT)
    with train.StopOnCtrlC() as stop:
        stop.check()                      # nothing requested: no-op
        signal.raise_signal(signal.SIGINT)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            stop.check()
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)   # the second Ctrl-C is immediate
    assert signal.getsignal(signal.SIGINT) is before
