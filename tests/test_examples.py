"""Each example runs in its fast mode and shows what it claims."""
from __future__ import annotations

import os
import runpy
import subprocess
import sys

import pytest

from gradflow.utils.threads import blas_threads


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Small GEMMs: one OpenBLAS thread is faster, and immune to a busy machine."""
    with blas_threads(1):
        yield


EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def _load(name):
    sys.path.insert(0, EXAMPLES)
    try:
        return runpy.run_path(os.path.join(EXAMPLES, name), run_name="example")
    finally:
        sys.path.remove(EXAMPLES)


def test_xor_linear_fails_mlp_solves(capsys):
    res = _load("xor_mlp.py")["main"](steps=1500)
    assert res["linear"][1] <= 0.75  # no line separates XOR
    assert res["mlp"][1] == 1.0 and res["mlp"][0] < 0.05
    out = capsys.readouterr().out
    assert "linear" in out and "mlp" in out


def test_custom_function_passes_gradcheck(capsys):
    assert _load("custom_function.py")["main"]() is True
    assert "fails as it should" in capsys.readouterr().out


def test_lenet_on_1000_digits_beats_85_percent(capsys):
    acc = _load("mnist_lenet.py")["main"](fast=True)
    assert acc > 0.85
    assert "test accuracy" in capsys.readouterr().out


def test_fashion_convnet_fast(tmp_path, capsys):
    sys.path.insert(0, os.path.dirname(__file__))
    try:
        from test_pytorch_scripts import _idx_copy
    finally:
        sys.path.remove(os.path.dirname(__file__))
    _idx_copy(tmp_path / "data", n_train=1500, n_test=300)  # real digits in Fashion-MNIST's format
    before, after = _load("fashion_mnist_convnet.py")["main"](root=str(tmp_path / "data"), fast=True,
                                                                out=str(tmp_path / "w.npz"))
    assert after[0] < before[0] and after[1] > 0.6
    assert (tmp_path / "w.npz").exists()


def test_examples_run_as_scripts_with_fast_flag():
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    r = subprocess.run([sys.executable, os.path.join(EXAMPLES, "xor_mlp.py"), "--fast"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0 and "accuracy 100%" in r.stdout


@pytest.mark.parametrize("name", ["xor_mlp.py", "mnist_lenet.py", "fashion_mnist_convnet.py",
                                  "custom_function.py"])
def test_examples_have_docstrings(name):
    with open(os.path.join(EXAMPLES, name)) as f:
        assert f.read().startswith('"""')


def test_readme_api_example_runs(tmp_path, monkeypatch):
    readme = os.path.join(os.path.dirname(EXAMPLES), "README.md")
    with open(readme) as f:
        src = f.read()
    start = src.index("```python\nimport gradflow as torch") + len("```python\n")
    code = src[start:src.index("```", start)].replace("range(10)", "range(1)")
    monkeypatch.chdir(tmp_path)
    ns = {}
    exec(compile(code, "README.md", "exec"), ns)
    assert (tmp_path / "net.npz").exists() and ns["loss"].item() > 0


_SCRIPTS = ["xor_mlp.py", "mnist_lenet.py", "fashion_mnist_convnet.py", "custom_function.py",
            "style_transfer.py", "vis_summary.py", "vis_receptive_field.py", "vis_filters.py",
            "vis_saliency.py", "vis_activation_max.py", "vis_fgsm.py", "vis_contrast_norm.py",
            "vis_top_patches.py", "optimizer_paths.py", "vis_inversion.py", "vis_deepdream.py",
            "vis_pgd.py", "vis_adversarial_patch.py", "vis_distill.py"]


@pytest.mark.parametrize("name", _SCRIPTS)
def test_every_example_takes_help_fast_and_backend(name, tmp_path):
    """--help documents --fast, --backend and how long a run takes, and runs nothing
    (it used to start a full training); a bad --backend is a one-line usage error."""
    env = dict(os.environ, PYTHONPATH=os.path.dirname(EXAMPLES))
    r = subprocess.run([sys.executable, os.path.join(EXAMPLES, name), "--help"], capture_output=True,
                       text=True, timeout=120, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "--fast" in r.stdout and "--backend" in r.stdout and "Takes " in r.stdout
    assert "with --fast" in r.stdout and " s" in r.stdout.split("Takes ", 1)[1]
    assert not list(tmp_path.iterdir()), "--help must not run the example"
    r = subprocess.run([sys.executable, os.path.join(EXAMPLES, name), "--backend", "nope"],
                       capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert r.returncode == 2 and "unknown backend 'nope'" in r.stderr and "Traceback" not in r.stderr
