"""Tensor basics: creation, properties, conversion, indexing assignment, backend
selection and moving tensors between backends."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import gradflow as gf
from gradflow.backends import available_backends, get_backend


def test_tensor_copies_and_from_numpy_shares():
    a = np.arange(6.0).reshape(2, 3)
    t = gf.tensor(a)
    a[0, 0] = 100
    assert t.numpy()[0, 0] == 0
    s = gf.from_numpy(a)
    a[0, 1] = 50
    assert s.numpy()[0, 1] == 50 and s.dtype == gf.float64
    with pytest.raises(TypeError, match="from_numpy: expected a numpy.ndarray"):
        gf.from_numpy([1, 2])
    assert gf.tensor(t).numpy()[0, 0] == 0 and gf.as_tensor(t) is t


@pytest.mark.parametrize("fn,args,expected", [
    (gf.zeros, (2, 3), np.zeros((2, 3))),
    (gf.zeros, ((2, 3),), np.zeros((2, 3))),
    (gf.ones, ([2, 1],), np.ones((2, 1))),
    (gf.eye, (3,), np.eye(3)),
    (gf.eye, (2, 3), np.eye(2, 3)),
    (gf.arange, (5,), np.arange(5)),
    (gf.arange, (1, 7, 2), np.arange(1, 7, 2)),
    (gf.linspace, (0, 1, 5), np.linspace(0, 1, 5)),
    (gf.full, ((2, 2), 7.0), np.full((2, 2), 7.0)),
])
def test_creation_values(fn, args, expected):
    np.testing.assert_allclose(fn(*args).numpy(), expected, rtol=1e-6)


def test_creation_on_every_backend(backend):
    assert gf.zeros(2).backend.name == backend
    assert gf.tensor([1.0]).backend.name == backend
    assert gf.randn(3).backend.name == backend
    assert gf.zeros(2, backend="numpy").backend.name == "numpy"


def test_random_is_seeded():
    gf.manual_seed(42)
    a = gf.randn(5).numpy()
    r = gf.rand(1000).numpy()
    gf.manual_seed(42)
    np.testing.assert_array_equal(gf.randn(5).numpy(), a)
    assert 0 <= r.min() and r.max() < 1
    i = gf.randint(0, 5, (200,))
    assert i.dtype == gf.int64 and i.numpy().min() >= 0 and i.numpy().max() == 4
    assert sorted(gf.randperm(7).tolist()) == list(range(7))
    z = gf.randn(2, 3, requires_grad=True)
    assert z.requires_grad and z.is_leaf


def test_properties():
    x = gf.randn(2, 3, 4)
    assert x.shape == (2, 3, 4) and x.ndim == 3 and x.numel() == 24 and x.dtype == gf.float32
    assert x.backend is gf.current_backend()
    assert isinstance(x.array, np.ndarray) or x.backend.name == "cupy"
    assert x.grad is None and x.grad_fn is None and x.is_leaf and not x.requires_grad
    assert np.asarray(x).shape == (2, 3, 4)
    assert gf.tensor([[1.0, 2.0]]).numpy().tolist() == [[1.0, 2.0]]
    assert gf.numel(x) == 24 and gf.is_tensor(x) and not gf.is_tensor(1.0)


def test_repr():
    with gf.backend("numpy"):
        _check_repr()


def _check_repr():
    assert repr(gf.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert "requires_grad=True" in repr(gf.tensor([1.0], requires_grad=True))
    assert "grad_fn=" in repr(gf.tensor([1.0], requires_grad=True) * 2)
    assert "dtype=float64" in repr(gf.tensor([1.0], dtype="float64"))
    assert repr(gf.tensor([1, 2])) == "tensor([1, 2])"
    other = [b for b in available_backends() if b != "numpy"]
    if other:
        assert f"backend='{other[0]}'" in repr(gf.tensor([1.0], backend=other[0]))


def test_item_float_int_bool():
    t = gf.tensor([[2.5]])
    assert t.item() == 2.5 and isinstance(t.item(), float)
    assert float(t) == 2.5 and int(gf.tensor(3)) == 3 and isinstance(gf.tensor(3).item(), int)
    assert bool(gf.tensor(1.0)) and not bool(gf.tensor(0))
    with pytest.raises(ValueError, match=r"item: only one-element tensors.*\(2,\)"):
        gf.tensor([1.0, 2.0]).item()
    with pytest.raises(RuntimeError, match=r"bool: the truth value.*\(shape \(2,\)\) is ambiguous"):
        bool(gf.tensor([1.0, 2.0]))
    assert [10, 20, 30][gf.tensor(1)] == 20  # __index__


def test_setitem_outside_graph():
    x = gf.zeros(3, 4)
    x[0] = 1.0
    x[1, 1:3] = gf.tensor([5.0, 6.0])
    x[x > 5.5] = -1.0
    x[:, 3] = gf.tensor([7, 8, 9])  # ints cast to the tensor's dtype
    np.testing.assert_array_equal(x.numpy(), [[1, 1, 1, 7], [0, 5, -1, 8], [0, 0, 0, 9]])
    assert x.dtype == gf.float32


def test_indexing_with_tensors():
    x = gf.arange(12).reshape(3, 4)
    idx = gf.tensor([2, 0])
    np.testing.assert_array_equal(x[idx].numpy(), [[8, 9, 10, 11], [0, 1, 2, 3]])
    np.testing.assert_array_equal(x[x > 9].numpy(), [10, 11])
    np.testing.assert_array_equal(x[:, [1, 1]].numpy(), [[1, 1], [5, 5], [9, 9]])
    assert x[1, 2].item() == 6


def test_functional_spellings():
    x = gf.tensor([[1.0, -2.0], [3.0, 4.0]])
    np.testing.assert_allclose(gf.exp(x).numpy(), np.exp(x.numpy()))
    np.testing.assert_allclose(gf.abs(x).numpy(), np.abs(x.numpy()))
    assert gf.sum(x).item() == 6.0 and gf.mean(x).item() == 1.5
    np.testing.assert_allclose(gf.max(x, dim=1).values.numpy(), [1.0, 4.0])
    np.testing.assert_allclose(gf.transpose(x, 0, 1).numpy(), x.numpy().T)
    np.testing.assert_allclose(gf.clamp(x, min=0.0).numpy(), [[1, 0], [3, 4]])
    assert gf.allclose(gf.concat([x, x]), np.concatenate([x.numpy()] * 2))
    assert gf.sign(x).tolist() == [[1, -1], [1, 1]]


# ---------------------------------------------------------------------------
# backends
# ---------------------------------------------------------------------------
def test_backend_selection():
    assert "numpy" in available_backends()
    prev = gf.current_backend().name
    with gf.backend("numpy") as be:
        assert be.name == "numpy" and gf.zeros(1).backend is be
    assert gf.current_backend().name == prev
    try:
        gf.set_backend("numpy")
        assert gf.current_backend().name == "numpy"
    finally:
        gf.set_backend(prev)
    assert get_backend("numpy") is get_backend("numpy")


def test_env_var_selects_default_backend():
    code = "import gradflow as g; print(g.zeros(1).backend.name)"
    env = dict(os.environ, GRADFLOW_BACKEND="numpy")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "numpy"
    env["GRADFLOW_BACKEND"] = "nosuch"
    bad = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown backend 'nosuch'" in bad.stderr


def test_to_same_backend_is_noop_and_to_other_is_differentiable(backend):
    x = gf.tensor([1.0, 2.0], requires_grad=True, backend="numpy")
    assert x.to("numpy") is x
    y = x.to(backend)
    assert y.backend.name == backend
    np.testing.assert_array_equal(y.numpy(), [1.0, 2.0])
    (y * y).sum().backward()
    assert x.grad.backend.name == "numpy"
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])
    back = y.to("numpy")
    assert back.backend.name == "numpy"
    assert x.to(gf.float64).dtype == gf.float64 and x.to(backend, gf.float64).dtype == gf.float64


def test_clone_is_a_copy_with_grad():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    c = x.clone()
    assert not np.shares_memory(c.array, x.array)
    (c * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])
    d = gf.tensor([1.0]).clone()
    d.add_(1)
    assert d.item() == 2.0
