"""``gradflow.nn.modules``: every Module in a file named for its kind, at PyTorch's path
(``nn.modules.conv.Conv2d`` ...), the same class as ``gradflow.nn.X``; the N-d conv and
pool bases behave per dimension as PyTorch's modules."""
from __future__ import annotations

import importlib

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn as nn


PATHS = {
    "linear": ["Identity", "Linear", "Bilinear"],
    "conv": ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose2d", "ConvTranspose3d"],
    "pooling": ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool2d", "AdaptiveAvgPool2d",
                "MaxUnpool2d"],
    "activation": ["ReLU", "GELU", "Softmax", "MultiheadAttention"],
    "batchnorm": ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"],
    "normalization": ["LayerNorm", "GroupNorm", "LocalResponseNorm"],
    "instancenorm": ["InstanceNorm2d"],
    "dropout": ["Dropout", "Dropout2d"],
    "container": ["Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"],
    "padding": ["ReflectionPad2d", "ZeroPad2d", "ConstantPad3d"],
    "sparse": ["Embedding"],
    "flatten": ["Flatten", "Unflatten"],
    "pixelshuffle": ["PixelShuffle", "PixelUnshuffle"],
    "channelshuffle": ["ChannelShuffle"],
    "fold": ["Fold", "Unfold"],
    "upsampling": ["Upsample", "UpsamplingNearest2d"],
    "transformer": ["TransformerEncoderLayer", "TransformerEncoder", "TransformerDecoderLayer",
                    "TransformerDecoder", "Transformer"],
    "rnn": ["RNN", "LSTM", "GRU", "LSTMCell"],
    "loss": ["CrossEntropyLoss", "MSELoss", "BCEWithLogitsLoss"],
    "module": ["Module"],
}


@pytest.mark.parametrize("file", sorted(PATHS))
def test_pytorch_module_paths(file):
    mod = importlib.import_module(f"gradflow.nn.modules.{file}")
    for name in PATHS[file]:
        cls = getattr(mod, name)
        assert cls is getattr(nn, name) is getattr(nn.modules, name)
        assert cls.__module__ == f"gradflow.nn.modules.{file}"


def test_every_module_is_exported_and_matches_torch_paths():
    torch = pytest.importorskip("torch")
    for name in nn.modules.__all__:
        cls = getattr(nn, name)
        assert issubclass(cls, nn.Module), name
        theirs = getattr(torch.nn, name, None)
        if theirs is not None:  # (LocalContrastNorm2d has no PyTorch counterpart)
            assert cls.__module__.replace("gradflow", "torch", 1) == theirs.__module__, name


def test_star_import_does_not_shadow_subpackages():
    """``from .modules import *`` in gradflow.nn must not replace nn.utils / nn.init."""
    assert nn.utils.clip_grad_norm_ is not None
    assert nn.init.kaiming_uniform_ is not None
    assert nn.functional.conv2d is not None


@pytest.mark.parametrize("cls, n", [(nn.Conv1d, 1), (nn.Conv2d, 2), (nn.Conv3d, 3),
                                    (nn.ConvTranspose2d, 2), (nn.ConvTranspose3d, 3)])
def test_conv_nd_matches_torch(cls, n):
    torch = pytest.importorskip("torch")
    gf.manual_seed(0)
    kw = dict(stride=2, padding=1, groups=2, bias=True)
    if "Transpose" not in cls.__name__:
        kw["dilation"] = 2 if n < 3 else 1
    m = cls(4, 6, 3, dtype=gf.float64, **kw)
    mt = getattr(torch.nn, cls.__name__)(4, 6, 3, **kw).double()
    assert tuple(m.weight.shape) == tuple(mt.weight.shape)
    assert m.kernel_size == mt.kernel_size and m.stride == mt.stride
    assert m.padding == mt.padding and m.output_padding == mt.output_padding
    mt.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in m.state_dict().items()})
    x = np.random.default_rng(1).standard_normal((2, 4) + (7,) * n)
    xg = gf.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    y, yt = m(xg), mt(xt)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), atol=1e-10)
    y.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(xg.grad.numpy(), xt.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(m.weight.grad.numpy(), mt.weight.grad.numpy(), atol=1e-9)
    assert repr(m) == repr(mt)


@pytest.mark.parametrize("cls, n", [(nn.ConvTranspose2d, 2), (nn.ConvTranspose3d, 3)])
def test_conv_transpose_output_size(cls, n):
    m = cls(1, 1, 3, stride=2, padding=1)
    x = gf.randn(1, 1, *(4,) * n)
    assert m(x, output_size=(8,) * n).shape[2:] == (8,) * n   # 7 + output_padding 1
    assert m(x, output_size=(1, 1) + (7,) * n).shape[2:] == (7,) * n
    with pytest.raises(ValueError, match=rf"{cls.__name__}: requested an output size .* valid "
                                         rf"sizes range from \(7,.* to \(8,"):
        m(x, output_size=(9,) * n)
    with pytest.raises(ValueError, match=rf"{cls.__name__}: output_size must have {n} or"):
        m(x, output_size=(8,) * (n + 1))


def test_conv_nd_bad_arguments():
    with pytest.raises(ValueError, match=r"Conv3d: groups must be a positive integer, got 0"):
        nn.Conv3d(2, 2, 3, groups=0)
    with pytest.raises(ValueError, match=r"Conv1d: out_channels \(3\) must be divisible by "
                                         r"groups \(2\)"):
        nn.Conv1d(2, 3, 3, groups=2)
    with pytest.raises(NotImplementedError, match=r"Conv1d: padding_mode 'reflect' is not "
                                                  r"supported"):
        nn.Conv1d(2, 2, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match=r"ConvTranspose2d: padding_mode 'circular' is not "
                                         r"supported"):
        nn.ConvTranspose2d(2, 2, 3, padding_mode="circular")
    with pytest.raises(ValueError, match=r"Conv3d: kernel_size must be an int or three ints, "
                                         r"got \(3, 3\)"):
        nn.Conv3d(2, 2, (3, 3))
    with pytest.raises(ValueError, match=r"Conv2d: padding must be an int or 2 ints, 'valid' "
                                         r"or 'same', got 'full'"):
        nn.Conv2d(2, 2, 3, padding="full")
    with pytest.raises(ValueError, match=r"Conv1d: padding='same' is not supported for strided"):
        nn.Conv1d(2, 2, 3, stride=2, padding="same")


@pytest.mark.parametrize("name, n", [("MaxPool1d", 1), ("MaxPool2d", 2), ("MaxPool3d", 3),
                                     ("AvgPool1d", 1), ("AvgPool2d", 2), ("AvgPool3d", 3)])
def test_pool_nd_matches_torch(name, n):
    torch = pytest.importorskip("torch")
    kw = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)
    if name.startswith("Avg"):
        kw["count_include_pad"] = False
    m, mt = getattr(nn, name)(**kw), getattr(torch.nn, name)(**kw)
    assert (m.kernel_size, m.stride, m.padding) == (mt.kernel_size, mt.stride, mt.padding)
    x = np.random.default_rng(2).standard_normal((2, 3) + (8,) * n)
    np.testing.assert_allclose(m(gf.tensor(x)).numpy(), mt(torch.tensor(x)).numpy(), atol=1e-12)
    # stride defaults to kernel_size, as PyTorch
    assert getattr(nn, name)(2).stride == getattr(torch.nn, name)(2).stride


@pytest.mark.parametrize("old", ["layers", "layers1d", "layers3d", "normalization", "attention",
                                 "recurrent", "loss", "module", "contrast"])
def test_old_module_paths_lead_to_the_same_classes(old):
    """Checkpoints pickled before the move name e.g. gradflow.nn.layers.Linear."""
    mod = importlib.import_module(f"gradflow.nn.{old}")
    assert mod.Linear is nn.Linear and mod.Conv3d is nn.Conv3d and mod.Module is nn.Module
    from gradflow.serialization import _default_policy
    assert _default_policy().classes[f"gradflow.nn.{old}.LSTM"] is nn.LSTM


def test_a_model_pickled_under_an_old_path_loads(tmp_path, monkeypatch):
    """A whole-model file naming gradflow.nn.layers.Linear (the path before the move)."""
    gf.manual_seed(0)
    m = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    path = str(tmp_path / "m.pt")
    with monkeypatch.context() as mp:  # save as an older gradflow would have: the old path
        mp.setattr(nn.Linear, "__module__", "gradflow.nn.layers")
        gf.save(m, path)
    assert nn.Linear.__module__ == "gradflow.nn.modules.linear"
    back = gf.load(path, weights_only=True)
    assert type(back[0]) is nn.Linear
    np.testing.assert_array_equal(back[0].weight.numpy(), m[0].weight.numpy())
