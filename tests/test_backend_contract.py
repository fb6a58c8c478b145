"""The Backend ABC is the whole contract: a backend is refused or accepted by what it
declares, and a new backend is one class and one ``register_backend`` call."""
from __future__ import annotations

import contextlib
import importlib

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow import backends
from gradflow.backends.base import Backend
from gradflow.backends.numpy_backend import NumpyBackend


def test_every_kernel_the_library_calls_is_declared_abstract():
    """The kernels ops call (conv, pooling, softmax-cross-entropy, optimizer updates,
    im2col...) are part of the ABC, not something NumpyBackend happens to have."""
    declared = Backend.__abstractmethods__
    for name in ("conv2d_forward", "conv2d_forward_saved", "conv2d_backward", "im2col", "col2im",
                 "max_pool2d_forward", "max_pool2d_backward", "max_pool2d_gather",
                 "avg_pool2d_forward", "avg_pool2d_backward", "log_softmax", "softmax",
                 "softmax_cross_entropy_forward", "softmax_cross_entropy_backward",
                 "relu_backward", "sgd_step_", "adam_step_", "index_add_axis", "einsum",
                 "matmul", "reduce", "unary", "binary", "argsort", "cumsum", "classify"):
        assert name in declared, name


def test_a_backend_missing_kernels_is_refused_naming_them():
    class Half(Backend):  # storage only: no kernels
        name = "half"

        def asarray(self, data, dtype=None):
            return np.asarray(data, dtype=dtype)

    with pytest.raises(TypeError, match="conv2d_backward"):
        Half()


@pytest.mark.parametrize("module, cls", [("gradflow.backends.numpy_backend", "NumpyBackend"),
                                         ("gradflow.backends.numba_backend", "NumbaBackend"),
                                         ("gradflow.backends.cupy_backend", "CupyBackend")])
def test_builtin_backends_implement_the_whole_contract(module, cls):
    """Checked on the class, so the CuPy backend is checked on a machine without CUDA."""
    try:
        klass = getattr(importlib.import_module(module), cls)
    except ImportError as e:  # numba not installed
        pytest.skip(f"{module}: {e}")
    assert not klass.__abstractmethods__, sorted(klass.__abstractmethods__)


class CountingBackend(NumpyBackend):
    """A fourth backend for the test: NumPy's arrays and kernels, one kernel overridden
    and the float-error context counted."""
    name = "counting"

    def __init__(self):
        super().__init__()
        self.relu_backward_calls = 0
        self.errstates = 0

    def relu_backward(self, gy, y):
        self.relu_backward_calls += 1
        return super().relu_backward(gy, y)

    def errstate(self):
        self.errstates += 1
        return super().errstate()


@contextlib.contextmanager
def _registered():
    backends.register_backend("counting", __name__, "CountingBackend", device_type="cpu")
    try:
        yield backends.get_backend("counting")
    finally:
        backends._REGISTRY.pop("counting", None)
        backends._instances.pop("counting", None)


def test_a_new_backend_is_one_class_and_one_registration():
    rng = np.random.default_rng(0)
    x0, w0 = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
    ref_x = gf.tensor(x0, requires_grad=True)
    ref_w = gf.tensor(w0, requires_grad=True)
    F.max_pool2d(F.conv2d(ref_x, ref_w, padding=1).relu(), 2).sum().backward()
    with _registered() as be:
        assert "counting" in backends.registered_backends()
        assert gf.device("counting").type == "cpu"
        x = gf.tensor(x0, requires_grad=True, backend="counting")
        w = gf.tensor(w0, requires_grad=True, backend="counting")
        assert x.backend is be
        F.max_pool2d(F.conv2d(x, w, padding=1).relu(), 2).sum().backward()
        assert be.relu_backward_calls == 1  # the override is what the engine called
        np.testing.assert_allclose(x.grad.numpy(), ref_x.grad.numpy(), rtol=1e-6)
        np.testing.assert_allclose(w.grad.numpy(), ref_w.grad.numpy(), rtol=1e-6)
        with pytest.raises(RuntimeError, match="counting.*numpy|numpy.*counting"):
            x + ref_x  # data never moves implicitly between backends


def test_float_error_mode_is_the_backends_errstate():
    """Forward ops enter the backend's errstate once each; a backward walk enters it
    once in all (not once per node)."""
    with _registered() as be:
        x = gf.tensor([0.0, 1.0, 2.0], requires_grad=True, backend="counting")
        be.errstates = 0
        y = (x.log() * x).sum()  # log(0) = -inf, silently
        forward = be.errstates
        assert forward == 3
        y.backward()
        assert be.errstates - forward == 1
        assert np.isnan(x.grad.numpy()[0])  # 0 * (1/0) + log(0): nan, as PyTorch


def test_register_backend_rejects_device_type_names():
    with pytest.raises(ValueError, match="register_backend"):
        backends.register_backend("cuda", __name__, "CountingBackend")
