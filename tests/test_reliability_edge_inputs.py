"""Reliability: edge-case inputs get PyTorch's result or a clear error, never a raw
NumPy/Numba exception.

* empty batches (N = 0) through every layer PyTorch accepts them in: empty outputs of
  the right shape, empty input gradients, zero parameter gradients -- on every backend;
* convolutions with 0 output channels, ``gather``/``one_hot`` out of range and ragged
  nested lists to ``tensor()``: ValueError/IndexError naming the op and the values;
* module walks (``modules``, ``state_dict``, ``named_parameters``, ``apply``, ``to``,
  ``repr``) on a 2,000-deep chain of Sequentials: no RecursionError."""
from __future__ import annotations

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F

from conftest import HAVE_TORCH

EMPTY_LAYERS = {
    "Conv2d": (lambda: nn.Conv2d(3, 2, 3), (0, 3, 8, 8), (0, 2, 6, 6)),
    "Conv2d-groups": (lambda: nn.Conv2d(4, 6, 3, groups=2, padding=1), (0, 4, 5, 5), (0, 6, 5, 5)),
    "Conv2d-depthwise": (lambda: nn.Conv2d(4, 4, 3, groups=4, stride=2), (0, 4, 7, 7), (0, 4, 3, 3)),
    "Conv2d-1x1": (lambda: nn.Conv2d(3, 5, 1), (0, 3, 4, 4), (0, 5, 4, 4)),
    "Conv1d": (lambda: nn.Conv1d(3, 2, 3), (0, 3, 8), (0, 2, 6)),
    "Conv3d": (lambda: nn.Conv3d(2, 3, 3), (0, 2, 5, 5, 5), (0, 3, 3, 3, 3)),
    "ConvTranspose2d": (lambda: nn.ConvTranspose2d(3, 2, 3, stride=2), (0, 3, 4, 4), (0, 2, 9, 9)),
    "Linear": (lambda: nn.Linear(4, 3), (0, 4), (0, 3)),
    "Linear-3d": (lambda: nn.Linear(4, 3), (2, 0, 4), (2, 0, 3)),
    "MaxPool2d": (lambda: nn.MaxPool2d(2), (0, 3, 8, 8), (0, 3, 4, 4)),
    "AvgPool2d": (lambda: nn.AvgPool2d(3, stride=2, padding=1), (0, 3, 8, 8), (0, 3, 4, 4)),
    "MaxPool1d": (lambda: nn.MaxPool1d(2), (0, 3, 8), (0, 3, 4)),
    "AdaptiveAvgPool2d": (lambda: nn.AdaptiveAvgPool2d(3), (0, 3, 8, 8), (0, 3, 3, 3)),
    "AdaptiveMaxPool2d": (lambda: nn.AdaptiveMaxPool2d(3), (0, 3, 7, 8), (0, 3, 3, 3)),
    "BatchNorm2d-eval": (lambda: nn.BatchNorm2d(3).eval(), (0, 3, 4, 4), (0, 3, 4, 4)),
    "BatchNorm1d-eval": (lambda: nn.BatchNorm1d(3).eval(), (0, 3), (0, 3)),
    "LayerNorm": (lambda: nn.LayerNorm(4), (0, 4), (0, 4)),
    "GroupNorm": (lambda: nn.GroupNorm(2, 4), (0, 4, 3, 3), (0, 4, 3, 3)),
    "InstanceNorm2d": (lambda: nn.InstanceNorm2d(4, affine=True), (0, 4, 3, 3), (0, 4, 3, 3)),
    "Flatten": (lambda: nn.Flatten(), (0, 3, 2, 2), (0, 12)),
    "Upsample-bilinear": (lambda: nn.Upsample(scale_factor=2, mode="bilinear"), (0, 3, 2, 2),
                          (0, 3, 4, 4)),
    "Dropout": (lambda: nn.Dropout(0.5), (0, 4), (0, 4)),
    "Softmax": (lambda: nn.Softmax(1), (0, 4), (0, 4)),
}


@pytest.mark.parametrize("name", list(EMPTY_LAYERS))
def test_layers_on_an_empty_batch(backend, name):
    make, shape, out_shape = EMPTY_LAYERS[name]
    gf.manual_seed(0)
    layer = make()
    x = gf.randn(*shape, requires_grad=True)
    y = layer(x)
    assert y.shape == out_shape
    y.sum().backward()
    assert x.grad.shape == shape
    for pname, p in layer.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, pname
        np.testing.assert_array_equal(p.grad.numpy(), 0.0)


@pytest.mark.skipif(not HAVE_TORCH, reason="PyTorch is not installed")
@pytest.mark.parametrize("name", ["Conv2d", "ConvTranspose2d", "Linear", "GroupNorm"])
def test_empty_batch_gradients_equal_torch(name):
    import torch
    make, shape, out_shape = EMPTY_LAYERS[name]
    layer = make()
    tl = getattr(torch.nn, name)(*{"Conv2d": (3, 2, 3), "ConvTranspose2d": (3, 2, 3),
                                    "Linear": (4, 3), "GroupNorm": (2, 4)}[name],
                                  **({"stride": 2} if name == "ConvTranspose2d" else {}))
    tx = torch.randn(*shape, requires_grad=True)
    ty = tl(tx)
    ty.sum().backward()
    y = layer(gf.randn(*shape, requires_grad=True))
    y.sum().backward()
    assert tuple(ty.shape) == y.shape
    for (n, p), (_, tp) in zip(layer.named_parameters(), tl.named_parameters()):
        np.testing.assert_array_equal(p.grad.numpy(), tp.grad.numpy())


def test_linear_with_zero_in_features(backend):
    lin = nn.Linear(0, 3)
    x = gf.randn(2, 0, requires_grad=True)
    y = lin(x)
    np.testing.assert_array_equal(y.numpy(), np.broadcast_to(lin.bias.numpy(), (2, 3)))
    y.sum().backward()
    assert x.grad.shape == (2, 0) and lin.weight.grad.shape == (3, 0)
    np.testing.assert_array_equal(lin.bias.grad.numpy(), [2.0, 2.0, 2.0])


@pytest.mark.parametrize("loss", ["mse", "l1", "smooth_l1", "bce", "bce_logits", "kl", "ce", "nll"])
def test_losses_on_an_empty_batch(backend, loss):
    x = gf.randn(0, 3, requires_grad=True)
    t = gf.zeros(0, 3)
    ti = gf.zeros(0, dtype=gf.int64)
    fns = {"mse": lambda r: F.mse_loss(x, t, reduction=r),
           "l1": lambda r: F.l1_loss(x, t, reduction=r),
           "smooth_l1": lambda r: F.smooth_l1_loss(x, t, reduction=r),
           "bce": lambda r: F.binary_cross_entropy(x.sigmoid(), t, reduction=r),
           "bce_logits": lambda r: F.binary_cross_entropy_with_logits(x, t, reduction=r),
           "kl": lambda r: F.kl_div(x, t, reduction=r),
           "ce": lambda r: F.cross_entropy(x, ti, reduction=r),
           "nll": lambda r: F.nll_loss(x, ti, reduction=r)}
    none = fns[loss]("none")
    assert none.shape == ((0,) if loss in ("ce", "nll") else (0, 3))
    none.sum().backward()
    assert x.grad.shape == (0, 3)
    assert fns[loss]("sum").item() == 0.0
    with np.errstate(all="ignore"):
        assert np.isnan(fns[loss]("mean").item())  # PyTorch: mean of nothing is NaN


@pytest.mark.parametrize("make", [lambda: F.conv2d(gf.randn(1, 3, 5, 5), gf.randn(0, 3, 3, 3)),
                                  lambda: nn.Conv2d(3, 0, 3)(gf.randn(2, 3, 8, 8)),
                                  lambda: nn.Conv1d(3, 0, 3)(gf.randn(2, 3, 8))])
def test_convolution_with_zero_output_channels_is_a_clear_error(backend, make):
    with pytest.raises(ValueError, match=r"conv[123]d: weight \(0, 3, .*\) has 0 output channels"):
        make()


@pytest.mark.parametrize("index", [[[5]], [[-9]]])
def test_gather_out_of_range(backend, index):
    with pytest.raises(IndexError, match=r"gather: index values must lie in \[-4, 3\] for dim 1"):
        gf.randn(3, 4).gather(1, gf.tensor(index))


def test_one_hot_checks():
    with pytest.raises(ValueError, match=r"one_hot: class values must lie in \[0, 3\), got "
                                         r"values in \[0, 7\]"):
        F.one_hot(gf.tensor([0, 7]), 3)
    with pytest.raises(ValueError, match=r"one_hot: class values .* \[-1, 0\]"):
        F.one_hot(gf.tensor([0, -1]), 3)
    with pytest.raises(ValueError, match="one_hot: cannot infer num_classes from an empty"):
        F.one_hot(gf.zeros(0, dtype=gf.int64))
    with pytest.raises(TypeError, match="one_hot: target must be an integer Tensor"):
        F.one_hot(gf.tensor([0.0, 1.0]), 3)
    assert F.one_hot(gf.zeros(0, dtype=gf.int64), 3).shape == (0, 3)
    assert F.one_hot(gf.tensor([2, 0])).tolist() == [[0, 0, 1], [1, 0, 0]]


@pytest.mark.parametrize("data,where", [
    ([[1, 2], [3]], r"data\[1\] is length 1, expected length 2 like data\[0\]"),
    ([[1, 2], 3], r"data\[1\] is a scalar, expected a sequence of length 2"),
    ([[[1], [2]], [[3], [4, 5]]], r"data\[1\]\[1\] is length 2, expected length 1"),
    ([1, [2]], r"data\[0\] is a scalar"),
])
def test_ragged_nested_lists_name_the_first_bad_element(data, where):
    with pytest.raises(ValueError, match=rf"tensor: ragged nested sequence: {where}"):
        gf.tensor(data)
    with pytest.raises(ValueError, match="ragged"):
        gf.tensor(data, dtype=gf.float64)


def _deep(depth):
    m = nn.Linear(2, 2)
    for _ in range(depth):
        m = nn.Sequential(m)
    return m


def test_module_walks_on_a_2000_deep_chain_do_not_recurse():
    m = _deep(2000)
    assert len(list(m.modules())) == 2001
    sd = m.state_dict()
    assert list(sd) == [".".join(["0"] * 2000) + ".weight", ".".join(["0"] * 2000) + ".bias"]
    assert [n for n, _ in m.named_parameters()] == list(sd)
    seen = []
    m.apply(lambda mod: seen.append(type(mod).__name__))
    assert seen[0] == "Linear" and seen[-1] == "Sequential" and len(seen) == 2001
    m.to(gf.float64)
    assert all(p.dtype == np.float64 for p in m.parameters())
    m.eval()
    assert not any(mod.training for mod in m.modules())
    m.load_state_dict(sd)
    assert repr(m).count("Sequential(") == 2000


def test_iterative_walks_keep_pytorchs_order_and_sharing():
    shared = nn.Linear(2, 2)
    inner = nn.Sequential(nn.ReLU(), shared)
    m = nn.Sequential(nn.Linear(2, 2), inner, shared, nn.Sequential(inner))
    names = [n for n, _ in m.named_modules()]
    assert names == ["", "0", "1", "1.0", "1.1", "3"]
    all_names = [n for n, _ in m.named_modules(remove_duplicate=False)]
    assert all_names == ["", "0", "1", "1.0", "1.1", "2", "3", "3.0", "3.0.0", "3.0.1"]
    assert list(m.state_dict()) == ["0.weight", "0.bias", "1.1.weight", "1.1.bias", "2.weight",
                                    "2.bias", "3.0.1.weight", "3.0.1.bias"]
    order = []
    m.apply(lambda mod: order.append(mod))
    # children before parents, as PyTorch: a module shared by several parents is visited
    # once per parent path
    assert order[-1] is m and order.count(shared) == 3
    assert repr(nn.Sequential(nn.Linear(1, 1), nn.Sequential(nn.ReLU()))) == (
        "Sequential(\n  (0): Linear(in_features=1, out_features=1, bias=True)\n"
        "  (1): Sequential(\n    (0): ReLU()\n  )\n)")


@pytest.mark.parametrize("name", ["relu", "sigmoid", "gelu", "leaky_relu", "softplus", "silu"])
@pytest.mark.parametrize("bad", [None, [1.0, 2.0]])
def test_functional_activation_of_a_non_tensor_names_the_op(name, bad):
    with pytest.raises(TypeError, match=rf"^{name}: input must be a Tensor, got "
                                        rf"{type(bad).__name__}$"):
        getattr(F, name)(bad)
