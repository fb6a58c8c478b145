"""The tensor-level PyTorch-tutorial compatibility surface (DESIGN: 'PyTorch-tutorial
compatibility'): code written for torch runs with ``import gradflow as torch``."""
from __future__ import annotations

import numpy as np
import pytest

import gradflow as gf
import gradflow as torch_like  # the tutorial spelling: ``import gradflow as torch``
from conftest import HAVE_TORCH, requires_torch


def test_dim_keepdim_and_axis_keepdims_aliases():
    x = gf.randn(2, 3, 4)
    for name in ("sum", "mean", "var", "std", "prod", "amax", "amin"):
        a = getattr(x, name)(dim=1, keepdim=True)
        if name in ("amax", "amin"):
            b = getattr(x, name)(1, True)
        else:
            b = getattr(x, name)(axis=1, keepdims=True)
        assert a.shape == (2, 1, 4)
        np.testing.assert_allclose(a.numpy(), b.numpy())
    np.testing.assert_allclose(x.max(axis=2).numpy(), x.max(dim=2).values.numpy())
    assert x.argmax(dim=1, keepdim=True).shape == (2, 1, 4)
    assert x.argmax(axis=-1).shape == (2, 3)
    np.testing.assert_allclose(x.softmax(dim=1).numpy(), x.softmax(axis=1).numpy())
    assert gf.cat([x, x], dim=2).shape == gf.cat([x, x], axis=2).shape == (2, 3, 8)
    assert gf.stack([x, x], dim=0).shape == (2, 2, 3, 4)
    with pytest.raises(TypeError, match="either dim= or axis="):
        x.sum(dim=1, axis=2)


def test_size_view_squeeze_unsqueeze():
    x = gf.arange(6).float()
    assert x.size() == (6,) and x.size(0) == 6 and x.size(-1) == 6 and x.dim() == 1
    v = x.view(2, 3)
    assert v.shape == (2, 3) and x.view(-1, 2).shape == (3, 2) and x.view((3, 2)).shape == (3, 2)
    assert v.view_as(gf.zeros(3, 2)).shape == (3, 2)
    assert v.unsqueeze(0).shape == (1, 2, 3) and v.unsqueeze(-1).shape == (2, 3, 1)
    assert v.unsqueeze(0).squeeze().shape == (2, 3) and v.unsqueeze(1).squeeze(1).shape == (2, 3)
    assert v.squeeze(0).shape == (2, 3)  # squeezing a non-1 dim is a no-op, as torch
    assert gf.flatten(gf.zeros(2, 3, 4), 1).shape == (2, 12)
    assert gf.flatten(gf.zeros(2, 3, 4)).shape == (24,)
    assert gf.zeros(2, 3, 4).flatten(start_dim=1).shape == (2, 12)


def test_mm_and_comparisons():
    a = gf.tensor([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_allclose(a.mm(a).numpy(), [[7, 10], [15, 22]])
    np.testing.assert_allclose(gf.mm(a, a).numpy(), [[7, 10], [15, 22]])
    pred = gf.tensor([1, 0, 2])
    target = gf.tensor([1, 1, 2])
    assert pred.eq(target).sum().item() == 2
    assert (pred == target).tolist() == [True, False, True]
    assert pred.ne(target).tolist() == [False, True, False]
    assert pred.lt(target).tolist() == [False, True, False]
    assert pred.le(2).all().item() and pred.gt(-1).all().item() and pred.ge(0).all().item()
    # the classic accuracy line: pred.eq(target.view_as(pred)).sum().item()
    assert pred.eq(target.view_as(pred)).sum().item() == 2


def test_argmax_max_returns_values_indices():
    x = gf.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    vals, idx = x.max(1)
    assert vals.tolist() == [5.0, 7.0] and idx.tolist() == [1, 0]
    r = x.max(dim=1, keepdim=True)
    assert r.values.shape == (2, 1) and r.indices.shape == (2, 1)
    assert x.max().item() == 7.0 and x.min().item() == 0.0
    assert x.min(0).indices.tolist() == [0, 1, 0]
    assert x.argmax().item() == 3 and x.argmax(dim=1).tolist() == [1, 0]
    assert x.argmax(1, keepdim=True).tolist() == [[1], [0]]
    _, predicted = torch_like.max(x, 1)  # torch.max(outputs.data, 1)
    assert predicted.tolist() == [1, 0]
    np.testing.assert_array_equal(gf.max(x, gf.zeros(2, 3) + 3).numpy(), [[3, 5, 3], [7, 3, 3]])


def test_item_tolist_float_long():
    x = gf.tensor([[1.5, 2.0]])
    assert x.tolist() == [[1.5, 2.0]]
    assert gf.tensor(3.0).item() == 3.0 and gf.tensor([[4]]).item() == 4
    assert x.float().dtype == gf.float32 and x.long().dtype == gf.int64
    assert x.long().tolist() == [[1, 2]]
    assert gf.tensor([1, 2]).float().dtype == gf.float32


def test_format_len_iter():
    loss = gf.tensor(0.123456)
    assert f"{loss:.4f}" == "0.1235"
    assert "{:.2f}".format(gf.tensor([[2.0]])) == "2.00"
    assert f"{gf.tensor(3, backend='numpy')}" == "3"  # 0-d: the number, as PyTorch
    assert f"{gf.tensor([3], backend='numpy')}" == "tensor([3])"
    assert f"{gf.tensor(3):d}" == "3"
    x = gf.arange(6).reshape(3, 2)
    assert len(x) == 3
    rows = list(x)
    assert len(rows) == 3 and rows[1].tolist() == [2, 3]
    with pytest.raises(TypeError, match="len"):
        len(gf.tensor(1.0))
    for i, row in enumerate(gf.zeros(4, 2)):
        assert row.shape == (2,)
    assert i == 3


@requires_torch
def test_format_matches_torch():
    import torch
    for v in (0.5, 1234.5678, -3.0):
        assert f"{gf.tensor(v, dtype='float64'):.3f}" == f"{torch.tensor(v, dtype=torch.float64):.3f}"
        assert f"{gf.tensor(v, dtype='float64'):>10.2e}" == f"{torch.tensor(v, dtype=torch.float64):>10.2e}"


def test_like_creators():
    x = gf.randn(2, 3, dtype="float64")
    for fn in (gf.zeros_like, gf.ones_like, gf.randn_like, gf.rand_like, gf.empty_like):
        y = fn(x)
        assert y.shape == (2, 3) and y.dtype == gf.float64 and y.backend is x.backend
        assert not y.requires_grad
    assert gf.zeros_like(x).sum().item() == 0 and gf.ones_like(x).sum().item() == 6
    assert gf.full_like(x, 7).tolist() == [[7.0] * 3] * 2
    assert gf.zeros_like(x, dtype=gf.float32).dtype == gf.float32
    assert gf.ones_like(x, requires_grad=True).requires_grad


def test_data_and_inplace_updates():
    p = gf.tensor([1.0, 2.0], requires_grad=True)
    (p * p).sum().backward()
    lr = 0.1
    p.data.add_(-lr * p.grad)           # the tutorial update
    np.testing.assert_allclose(p.numpy(), [0.8, 1.6], rtol=1e-6)
    assert p.requires_grad and p.is_leaf
    p.grad.data.zero_()
    assert p.grad.tolist() == [0.0, 0.0]
    p.data.mul_(2.0)
    np.testing.assert_allclose(p.numpy(), [1.6, 3.2], rtol=1e-6)
    p.data.copy_(gf.tensor([5.0, 6.0]))
    assert p.tolist() == [5.0, 6.0]
    p.data.zero_()
    assert p.tolist() == [0.0, 0.0]
    d = p.data
    assert not d.requires_grad and np.shares_memory(d.array, p.array)
    p.data = gf.tensor([3.0, 4.0])
    assert p.tolist() == [3.0, 4.0] and p.requires_grad
    with gf.no_grad():
        p -= 1.0                           # torch: in-place under no_grad
        p.add_(gf.tensor([1.0, 1.0]), alpha=2.0)
    assert p.tolist() == [4.0, 5.0]
    x = gf.zeros(3)
    x.add_(1).mul_(3)
    x.sub_(1, alpha=2)
    x.div_(2)
    assert x.tolist() == [0.5, 0.5, 0.5]


def test_inplace_where_graph_needs_it_raises_clearly():
    p = gf.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"add_: in-place operation on a leaf tensor that requires "
                                           r"grad \(shape \(2,\)\).*no_grad.*\.data"):
        p.add_(1.0)
    with pytest.raises(RuntimeError, match=r"copy_: in-place"):
        p.copy_(gf.zeros(2))
    h = p * 2
    with pytest.raises(RuntimeError, match=r"zero_.*part of the autograd graph"):
        h.zero_()
    h2 = h * 1.0
    assert h2.mul_(2) is h2  # a non-leaf of the graph: rebound to the result, as PyTorch allows
    h2.sum().backward()
    assert h2.tolist() == [4.0, 8.0] and p.grad.tolist() == [4.0, 4.0]
    with pytest.raises(ValueError, match=r"copy_: cannot copy a tensor of shape \(3,\) into shape \(2,\)"):
        gf.zeros(2).copy_(gf.zeros(3))
    with pytest.raises(ValueError, match=r"data: cannot assign shape \(3,\)"):
        p.data = gf.zeros(3)


def test_devices():
    d = gf.device("cpu")
    assert str(d) == "cpu" and d.type == "cpu" and d == "cpu"
    x = gf.randn(2, 3)
    assert x.device == gf.device("cpu")
    y = x.to(d)
    assert y.device.type == "cpu" and y.backend.device_type == "cpu"
    assert x.to("cpu").device.type == "cpu"
    assert x.cpu().device.type == "cpu"
    assert isinstance(gf.cuda.is_available(), bool)
    assert gf.accelerator.is_available() == gf.cuda.is_available()
    dev = gf.device("cuda" if gf.cuda.is_available() else "cpu")  # the tutorial line
    z = gf.zeros(2, device=dev)
    assert z.device == dev
    if gf.cuda.is_available():
        assert gf.accelerator.current_accelerator() == gf.device("cuda")
    else:
        assert gf.accelerator.current_accelerator() is None
    with pytest.raises(ValueError, match=r"device: unknown device 'tpu'"):
        gf.device("tpu")
    assert repr(gf.device("cuda:0")) == "device(type='cuda', index=0)"


def test_polynomial_regression_tutorial():
    """The classic 'fit a cubic to sin(x)' tutorial, written against torch's API."""
    torch = torch_like
    dtype = torch.float
    x = torch.linspace(-3.14159, 3.14159, 200, dtype=dtype)
    y = torch.sin(x)
    a = torch.randn((), dtype=dtype, requires_grad=True)
    b = torch.randn((), dtype=dtype, requires_grad=True)
    c = torch.randn((), dtype=dtype, requires_grad=True)
    d = torch.randn((), dtype=dtype, requires_grad=True)
    learning_rate = 1e-6
    first = None
    for t in range(300):
        y_pred = a + b * x + c * x ** 2 + d * x ** 3
        loss = (y_pred - y).pow(2).sum()
        if first is None:
            first = loss.item()
        loss.backward()
        with torch.no_grad():
            a -= learning_rate * a.grad
            b -= learning_rate * b.grad
            c -= learning_rate * c.grad
            d -= learning_rate * d.grad
            a.grad = None
            b.grad = None
            c.grad.zero_()
            d.grad.zero_()
    assert loss.item() < first
    assert a.dtype == torch.float32 and a.is_leaf and a.requires_grad
    assert f"Result: y = {a.item():.3f} + {b.item():.3f} x".startswith("Result: y = ")


def test_mnist_example_idioms():
    """Lines of PyTorch's MNIST example that touch tensors."""
    import gradflow.nn.functional as F
    torch = torch_like
    output = F.log_softmax(torch.randn(8, 10), dim=1)
    target = torch.randint(0, 10, (8,))
    loss = F.nll_loss(output, target, reduction="sum").item()
    pred = output.argmax(dim=1, keepdim=True)
    correct = pred.eq(target.view_as(pred)).sum().item()
    assert isinstance(loss, float) and isinstance(correct, int) and 0 <= correct <= 8
    assert "{:.6f}".format(F.nll_loss(output, target)) != ""
    x = torch.flatten(torch.randn(8, 4, 2, 2), 1)
    assert x.shape == (8, 16)


def test_randint_torch_signatures():
    assert gf.randint(0, 10, (8,)).shape == (8,)
    r = gf.randint(5, (3, 2))  # torch.randint(high, size)
    assert r.shape == (3, 2) and r.dtype == gf.int64 and 0 <= r.numpy().min() and r.numpy().max() < 5
    assert gf.randint(3, size=(4,)).shape == (4,)
