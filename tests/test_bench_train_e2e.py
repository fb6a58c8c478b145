"""The helpers of the end-to-end training benchmark: the IDX writer, the
Fashion-MNIST-sized stand-in, parsing the loops' output and the round summary.
No timing is asserted (the benchmark's figures live in benchmarks/results/)."""
import gzip
import importlib.util
import os

import numpy as np
import pytest

from gradflow import datasets
from gradflow.datasets import DatasetError, read_idx, write_idx

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")


def _bytes(path, gz=False):
    with (gzip.open if gz else open)(path, "rb") as f:
        return f.read()


def _load(name):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", os.path.join(BENCH, name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("name", ["a-idx3-ubyte", "a-idx3-ubyte.gz"])
def test_write_idx_round_trips_through_read_idx(tmp_path, dtype, name):
    arr = (np.arange(2 * 3 * 5) * 7 - 40).astype(dtype).reshape(2, 3, 5)
    if dtype == np.uint8:
        arr = (np.arange(30) * 9 % 256).astype(np.uint8).reshape(2, 3, 5)
    path = write_idx(tmp_path / name, arr)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == (2, 3, 5)
    np.testing.assert_array_equal(back, arr)
    raw = _bytes(path, gz=name.endswith(".gz"))
    assert raw[:4] == bytes([0, 0, {np.uint8: 8, np.int8: 9, np.int16: 11, np.int32: 12,
                                    np.float32: 13, np.float64: 14}[dtype], 3])
    assert int.from_bytes(raw[4:8], "big") == 2 and int.from_bytes(raw[12:16], "big") == 5
    assert os.listdir(tmp_path) == [name]  # no temporary file left behind


def test_write_idx_is_deterministic_and_refuses_what_idx_cannot_hold(tmp_path):
    labels = np.array([3, 1, 4, 1, 5], np.uint8)
    a = _bytes(write_idx(tmp_path / "a.gz", labels))
    b = _bytes(write_idx(tmp_path / "b.gz", labels))
    assert a == b  # gzip timestamp zeroed: the same bytes every time
    with pytest.raises(DatasetError, match=r"write_idx.*int64.*\(5,\).*valid: .*uint8"):
        write_idx(tmp_path / "c", labels.astype(np.int64))
    with pytest.raises(DatasetError, match=r"shape \(\)"):
        write_idx(tmp_path / "d", np.uint8(3))
    assert sorted(os.listdir(tmp_path)) == ["a.gz", "b.gz"]


def test_standin_is_balanced_held_out_and_deterministic():
    mk = _load("make_fmnist_sized")
    images, labels = datasets.load_digits()
    parts = mk.build(n_train=200, n_test=50, seed=3)
    x, y, src = parts["train"]
    xt, yt, srct = parts["t10k"]
    assert x.shape == (200, 28, 28) and x.dtype == np.uint8 and xt.shape == (50, 28, 28)
    assert np.bincount(y, minlength=10).tolist() == [20] * 10
    assert np.bincount(yt, minlength=10).tolist() == [5] * 10
    np.testing.assert_array_equal(y, labels[src])
    np.testing.assert_array_equal(yt, labels[srct])
    assert not set(src.tolist()) & set(srct.tolist())  # the test split's digits are never trained on
    again = mk.build(n_train=200, n_test=50, seed=3)
    np.testing.assert_array_equal(again["train"][0], x)
    assert not np.array_equal(mk.build(n_train=200, n_test=50, seed=4)["train"][0], x)
    # each sample is its source digit shifted by <= 3 px, rescaled and noisy: the best
    # shift of the source correlates strongly with it, and no sample is a plain copy
    pad = np.pad(images[src].astype(np.float64), ((0, 0), (3, 3), (3, 3)))
    best = np.zeros(len(src))
    for di in range(7):
        for dj in range(7):
            s = pad[:, di:di + 28, dj:dj + 28].reshape(len(src), -1)
            s -= s.mean(1, keepdims=True)
            t = x.reshape(len(src), -1).astype(np.float64)
            t -= t.mean(1, keepdims=True)
            r = (s * t).sum(1) / np.sqrt((s * s).sum(1) * (t * t).sum(1))
            best = np.maximum(best, r)
    assert best.min() > 0.85
    assert not any(np.array_equal(a, b) for a, b in zip(x, images[src]))


def test_standin_files_load_as_fashion_mnist(tmp_path):
    mk = _load("make_fmnist_sized")
    sums = mk.write(tmp_path, n_train=30, n_test=20, seed=1)
    assert sorted(sums) == sorted(mk.FILES) and all(len(v) == 64 for v in sums.values())
    train = datasets.FashionMNIST(root=tmp_path)
    test = datasets.FashionMNIST(root=tmp_path, train=False)
    assert len(train) == 30 and len(test) == 20 and train.data.shape == (30, 28, 28)
    parts = mk.build(n_train=30, n_test=20, seed=1)
    np.testing.assert_array_equal(train.data, parts["train"][0])
    np.testing.assert_array_equal(test.targets, parts["t10k"][1].astype(np.int64))
    assert b"NOT Fashion-MNIST" in _bytes(tmp_path / "README.txt")


LOOP_OUT = """epoch 1: train loss 1.3839 acc 0.5337, val acc 0.7913, test acc 0.7693, 5.16 s
epoch 2: train loss 0.3739 acc 0.8853, val acc 0.9127, test acc 0.8948, 2.02 s
training took 7.17 s (jax 0.12.0.1, 2 CPUs)
"""


def test_parse_loop_output_and_metrics():
    b = _load("bench_train_e2e")
    rec = b.parse_loop_output(LOOP_OUT)
    assert rec == {"epoch_s": [5.16, 2.02], "train_s": 7.17, "test_acc": 0.8948}
    with pytest.raises(ValueError, match="training took"):
        b.parse_loop_output(LOOP_OUT.splitlines()[0])
    with pytest.raises(ValueError, match="out of order"):
        b.parse_loop_output(LOOP_OUT.splitlines()[1] + "\n" + LOOP_OUT)
    doc = {"complete": True, "train_seconds": 3.5, "final": {"test_acc": 0.9},
           "epochs": [{"seconds": 2.25}, {"seconds": 1.25}]}
    rec = b.parse_gradflow_metrics(doc, "compiled step: 366 steps replayed, 10 eager (4 of them")
    assert rec == {"epoch_s": [2.25, 1.25], "train_s": 3.5, "test_acc": 0.9, "replayed": 366,
                   "eager_steps": 10}
    with pytest.raises(ValueError, match="did not complete"):
        b.parse_gradflow_metrics({**doc, "complete": False})


def test_summarize_takes_medians_and_same_round_ratios():
    b = _load("bench_train_e2e")

    def run(rnd, config, train, epochs, acc=0.9, setting="default"):
        return {"round": rnd, "setting": setting, "config": config, "train_s": train,
                "epoch_s": epochs, "wall_s": train + 1, "test_acc": acc}
    runs = [run(1, "PyTorch", 10.0, [6.0, 4.0]), run(1, "g", 5.0, [3.0, 2.0], 0.8),
            run(2, "PyTorch", 20.0, [12.0, 8.0]), run(2, "g", 16.0, [9.0, 7.0], 0.9),
            run(3, "PyTorch", 10.0, [5.0, 5.0]), run(3, "g", 9.0, [4.0, 5.0], 0.95),
            {"round": 1, "setting": "1", "config": "JAX", "error": "no jax"}]
    s = b.summarize(runs)
    g = s["default"]["g"]
    assert g["rounds"] == 3 and g["train_s"] == 9.0 and g["train_s_range"] == [5.0, 16.0]
    assert g["epoch_s"] == [4.0, 5.0] and g["wall_s"] == 10.0 and g["test_acc"] == 0.9
    assert g["ratio_train"]["per_round"] == [0.5, 0.8, 0.9] and g["ratio_train"]["median"] == 0.8
    assert g["ratio_last_epoch"]["per_round"] == [0.5, 0.875, 1.0]
    assert s["default"]["PyTorch"]["ratio_train"]["median"] == 1.0
    assert s["1"]["JAX"] == {"rounds": 0, "errors": ["no jax"]}
    assert "ratio_train" not in s["1"]["JAX"]


def test_profile_timers_count_outermost_calls_and_every_next():
    prof = _load("profile_train")
    T = prof.Timers()

    def fact(n):
        return 1 if n <= 1 else n * timed(n - 1)
    timed = T.wrap("fact", fact)
    assert timed(5) == 120
    assert T.calls["fact"] == 1 and T.seconds["fact"] >= 0.0  # the recursion is one call
    assert timed.__wrapped__ is fact
    assert list(T.iterate("items", iter([1, 2, 3]))) == [1, 2, 3]
    assert T.calls["items"] == 4  # three items and the final StopIteration
    table = prof.timers_table(T, wall=1.0)
    assert table.splitlines()[2].startswith("| whole run") and "| import gradflow | 0.00 |" in table
