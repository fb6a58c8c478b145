"""The error contract (DESIGN: 'Errors are part of the API'): bad input raises
ValueError/TypeError/RuntimeError whose message names the op, the shapes or values
involved and what would be valid."""
from __future__ import annotations

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow.backends import BackendUnavailable, unavailable_reason
from gradflow.backends.numpy_backend import NumpyBackend


class FakeBackend(NumpyBackend):
    """A second backend (NumPy arrays under another name) to test mixing."""
    name = "fake"


FAKE = FakeBackend()


def on_fake(t):
    return gf.Tensor._make(t.array.copy(), FAKE, requires_grad=t.requires_grad)


# ---------------------------------------------------------------------------
# shapes
# ---------------------------------------------------------------------------
def test_matmul_mismatch():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) are not aligned: "
                                         r"3 .*!= 4"):
        gf.randn(2, 3) @ gf.randn(4, 5)
    with pytest.raises(ValueError, match=r"matmul: batch dimensions of \(2, 3, 4\) and \(3, 4, 5\)"):
        gf.randn(2, 3, 4) @ gf.randn(3, 4, 5)
    with pytest.raises(ValueError, match=r"matmul: both operands need at least 1 dimension.*\(\)"):
        gf.tensor(2.0) @ gf.randn(2)
    with pytest.raises(ValueError, match=r"mm: expects two 2-D tensors, got shapes \(2, 3, 4\)"):
        gf.randn(2, 3, 4).mm(gf.randn(4, 2))
    with pytest.raises(ValueError, match=r"linear: input of shape \(4, 3\) does not match weight of "
                                         r"shape \(2, 5\).*in_features=5"):
        F.linear(gf.randn(4, 3), gf.randn(2, 5))
    with pytest.raises(ValueError, match=r"linear: bias shape \(3,\) must be \(2,\)"):
        F.linear(gf.randn(4, 5), gf.randn(2, 5), gf.randn(3))


def test_conv_output_size_not_positive():
    with pytest.raises(ValueError, match=r"conv2d: output size would be -1x-1 for input 3x3, kernel "
                                         r"5x5.*\(N \+ 2P - D\(F-1\) - 1\)/S \+ 1 must be >= 1"):
        F.conv2d(gf.randn(1, 1, 3, 3), gf.randn(1, 1, 5, 5))
    with pytest.raises(ValueError, match=r"conv2d: output size would be 0x"):
        F.conv2d(gf.randn(1, 1, 4, 8), gf.randn(1, 1, 3, 3), dilation=(2, 1))
    with pytest.raises(ValueError, match=r"max_pool2d: output size would be 0x0 for input 2x2"):
        F.max_pool2d(gf.randn(1, 1, 2, 2), 3)
    with pytest.raises(ValueError, match=r"avg_pool2d: padding \(2, 2\) must be at most half the kernel"):
        F.avg_pool2d(gf.randn(1, 1, 6, 6), 3, padding=2)


def test_conv_channel_mismatch():
    with pytest.raises(ValueError, match=r"conv2d: input has 3 channels \(shape \(2, 3, 5, 5\)\) but "
                                         r"weight \(4, 2, 3, 3\) with groups=1 expects 2"):
        F.conv2d(gf.randn(2, 3, 5, 5), gf.randn(4, 2, 3, 3))
    with pytest.raises(ValueError, match=r"conv2d: input has 4 channels.*groups=2 expects 6"):
        F.conv2d(gf.randn(1, 4, 5, 5), gf.randn(4, 3, 3, 3), groups=2)
    with pytest.raises(ValueError, match=r"conv2d: C_out=3 is not divisible by groups=2"):
        F.conv2d(gf.randn(1, 4, 5, 5), gf.randn(3, 2, 3, 3), groups=2)
    with pytest.raises(ValueError, match=r"conv2d: expected input \(N, C, H, W\) or \(C, H, W\), got "
                                         r"shape \(5, 5\)"):
        F.conv2d(gf.randn(5, 5), gf.randn(1, 1, 3, 3))
    with pytest.raises(ValueError, match=r"conv2d: bias shape \(2,\) must be \(4,\)"):
        F.conv2d(gf.randn(1, 3, 5, 5), gf.randn(4, 3, 3, 3), gf.randn(2))
    with pytest.raises(ValueError, match=r"conv2d: stride must be an int or a pair of ints >= 1, got 0"):
        F.conv2d(gf.randn(1, 3, 5, 5), gf.randn(4, 3, 3, 3), stride=0)
    with pytest.raises(ValueError, match=r"conv2d: padding='same' requires stride 1"):
        F.conv2d(gf.randn(1, 3, 5, 5), gf.randn(4, 3, 3, 3), stride=2, padding="same")
    with pytest.raises(ValueError, match=r"conv2d: padding must be an int, a pair, 'valid' or 'same'"):
        F.conv2d(gf.randn(1, 3, 5, 5), gf.randn(4, 3, 3, 3), padding="full")


def test_broadcast_reshape_cat_expand_errors():
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) and \(4,\) cannot be broadcast"):
        gf.randn(2, 3) + gf.randn(4)
    with pytest.raises(ValueError, match=r"mul: shapes \(2, 3\) and \(2,\) cannot be broadcast"):
        gf.randn(2, 3) * gf.randn(2)
    with pytest.raises(ValueError, match=r"reshape: cannot view a tensor of shape \(2, 3\) \(6 elements\) "
                                         r"as \(4, 2\)"):
        gf.randn(2, 3).reshape(4, 2)
    with pytest.raises(ValueError, match=r"reshape.*at most one -1"):
        gf.randn(2, 3).view(-1, -1)
    with pytest.raises(ValueError, match=r"cat: shapes \[\(2, 3\), \(2, 4\)\] must match except along dim 0"):
        gf.cat([gf.randn(2, 3), gf.randn(2, 4)])
    with pytest.raises(ValueError, match=r"stack: all shapes must be equal, got \[\(2,\), \(3,\)\]"):
        gf.stack([gf.randn(2), gf.randn(3)])
    with pytest.raises(ValueError, match=r"cat: needs at least one tensor"):
        gf.cat([])
    with pytest.raises(ValueError, match=r"expand: cannot expand shape \(2, 3\) to \(4, 3\)"):
        gf.randn(2, 3).expand(4, 3)
    with pytest.raises(ValueError, match=r"permute: \(0, 0\) is not a permutation of the 2 dims of \(2, 3\)"):
        gf.randn(2, 3).permute(0, 0)
    with pytest.raises(ValueError, match=r"split: sizes \[1, 1\] do not sum to 3"):
        gf.randn(3, 2).split([1, 1])


def test_index_errors_name_shape():
    with pytest.raises(IndexError, match=r"index: .*out of bounds.*\(tensor shape \(2, 3\)"):
        gf.randn(2, 3)[5]
    with pytest.raises(IndexError, match=r"index: .*\(tensor shape \(2, 3\)"):
        gf.randn(2, 3)[gf.tensor([0, 7])]


def test_bad_axis():
    x = gf.randn(2, 3)
    for fn, op in ((lambda: x.sum(2), "sum"), (lambda: x.mean(dim=-3), "mean"), (lambda: x.max(axis=5), "max"),
                   (lambda: x.var(3), "var"), (lambda: x.prod(2), "prod"), (lambda: x.softmax(2), "softmax"),
                   (lambda: x.log_softmax(-4), "log_softmax"), (lambda: x.argmax(2), "argmax")):
        with pytest.raises(ValueError, match=rf"{op}: axis -?\d is out of range for a tensor with 2 "
                                             r"dimensions \(valid: -2\.\.1\)"):
            fn()
    for fn, op in ((lambda: x.unsqueeze(4), "unsqueeze"), (lambda: x.squeeze(2), "squeeze"),
                   (lambda: x.transpose(0, 2), "transpose"), (lambda: gf.cat([x, x], dim=2), "cat"),
                   (lambda: x.flatten(3), "flatten")):
        with pytest.raises(ValueError, match=rf"{op}: dim -?\d is out of range for a tensor with \d dimensions"):
            fn()
    with pytest.raises(ValueError, match=r"sum: repeated axis"):
        x.sum((1, 1))


# ---------------------------------------------------------------------------
# backward
# ---------------------------------------------------------------------------
def test_nonscalar_backward_without_grad():
    x = gf.randn(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"backward: grad can be implicitly created only for a "
                                           r"one-element output, got shape \(2, 3\); pass grad="):
        (x * 2).backward()


def test_second_backward_through_freed_graph():
    x = gf.randn(3, requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"backward: trying to backward through the graph a second "
                                           r"time \(at Sum\).*retain_graph=True"):
        y.backward()


def test_backward_on_tensor_without_graph():
    with pytest.raises(RuntimeError, match=r"backward: tensor of shape \(2,\) does not require grad"):
        gf.randn(2).backward(gf.ones(2))


# ---------------------------------------------------------------------------
# backends
# ---------------------------------------------------------------------------
def test_tensors_on_two_backends():
    with gf.backend("numpy"):
        _two_backends()


def _two_backends():
    a = gf.randn(2, 3)
    b = on_fake(gf.randn(2, 3))
    with pytest.raises(RuntimeError, match=r"add: operands live on different backends \(\(2, 3\) on "
                                           r"numpy, \(2, 3\) on fake\)"):
        a + b
    with pytest.raises(RuntimeError, match=r"matmul: operands live on different backends \(\(2, 3\) on "
                                           r"numpy, \(3, 2\) on fake\)"):
        a @ on_fake(gf.randn(3, 2))
    with pytest.raises(RuntimeError, match=r"Conv2d: inputs live on different backends \(\(1, 3, 4, 4\) "
                                           r"on numpy, \(2, 3, 3, 3\) on fake\)"):
        F.conv2d(gf.randn(1, 3, 4, 4), on_fake(gf.randn(2, 3, 3, 3)))
    with pytest.raises(RuntimeError, match=r"Linear: inputs live on different backends"):
        F.linear(a, on_fake(gf.randn(4, 3)))
    with pytest.raises(RuntimeError, match=r"cat: tensors on different backends \(numpy, fake\)"):
        gf.cat([a, b])
    with pytest.raises(RuntimeError, match=r"where: operands live on different backends"):
        gf.where(a > 0, a, b)


def test_unknown_backend_name():
    for fn in (lambda: gf.set_backend("tensorflow"), lambda: gf.get_backend("tensorflow"),
               lambda: gf.zeros(2, backend="tensorflow")):
        with pytest.raises(ValueError, match=r"backend: unknown backend 'tensorflow'; valid names are "
                                             r"cupy, numba, numpy"):
            fn()
    with pytest.raises(ValueError, match=r"device: unknown device 'tensorflow'; valid: 'cpu', 'cuda', "
                                         r"or a backend name \(numpy, numba, cupy\)"):
        gf.randn(2).to("tensorflow")
    with pytest.raises(ValueError, match=r"unknown backend 'tpu'"):
        with gf.backend("tpu"):
            pass


@pytest.mark.skipif(unavailable_reason("cupy") is None, reason="CUDA is available here")
def test_cupy_without_cuda_says_why():
    with pytest.raises(BackendUnavailable, match=r"backend 'cupy' is not available on this machine: .+"
                                                 r"Available: .*numpy"):
        gf.get_backend("cupy")
    with pytest.raises(BackendUnavailable, match=r"cupy"):
        gf.randn(2).to("cuda")


# ---------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss",
                                  "binary_cross_entropy", "binary_cross_entropy_with_logits"])
def test_bad_reduction(loss):
    x = gf.rand(4, 3) * 0.8 + 0.1
    t = gf.tensor([0, 1, 2, 0]) if loss in ("cross_entropy", "nll_loss") else gf.rand(4, 3)
    with pytest.raises(ValueError, match=rf"{loss}: reduction must be one of \('mean', 'sum', 'none'\), "
                                         r"got 'avg'"):
        getattr(F, loss)(x, t, reduction="avg")


@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
def test_out_of_range_targets(loss):
    x = gf.randn(4, 3)
    with pytest.raises(ValueError, match=rf"{loss}: target values must be class indices in \[0, 3\) "
                                         r"\(or ignore_index=-100\); got values in \[0, 3\]"):
        getattr(F, loss)(x, gf.tensor([0, 1, 3, 2]))
    with pytest.raises(ValueError, match=rf"{loss}: target values must be class indices in \[0, 3\).*"
                                         r"got values in \[-1, 2\]"):
        getattr(F, loss)(x, gf.tensor([0, -1, 2, 2]))
    with pytest.raises(ValueError, match=rf"{loss}: input of shape \(4, 3\) needs target of shape "
                                         r"\(4,\), got \(3,\)"):
        getattr(F, loss)(x, gf.tensor([0, 1, 2]))
    with pytest.raises(TypeError, match=rf"{loss}: target must be a Tensor of class indices"):
        getattr(F, loss)(x, [0, 1, 2, 0])


def test_loss_shape_mismatch():
    with pytest.raises(ValueError, match=r"mse_loss: input shape \(4, 3\) and target shape \(4,\) differ"):
        F.mse_loss(gf.randn(4, 3), gf.randn(4))
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: input shape \(4,\) and "
                                         r"target shape \(4, 1\) differ"):
        F.binary_cross_entropy_with_logits(gf.randn(4), gf.rand(4, 1))
    with pytest.raises(ValueError, match=r"cross_entropy: weight must have shape \(3,\), got \(2,\)"):
        F.cross_entropy(gf.randn(4, 3), gf.tensor([0, 1, 2, 0]), weight=gf.ones(2))


def test_norm_and_dropout_errors():
    with pytest.raises(ValueError, match=r"batch_norm: running_mean must have shape \(3,\) for input "
                                         r"\(4, 3\), got \(2,\)"):
        F.batch_norm(gf.randn(4, 3), gf.zeros(2), gf.ones(2), training=True)
    with pytest.raises(ValueError, match=r"batch_norm: expected more than 1 value per channel when "
                                         r"training, got input of shape \(1, 3\)"):
        F.batch_norm(gf.randn(1, 3), gf.zeros(3), gf.ones(3), training=True)
    with pytest.raises(ValueError, match=r"dropout: p must be in \[0, 1\], got 1.5"):
        F.dropout(gf.randn(3), 1.5)
    with pytest.raises(ValueError, match=r"local_response_norm: expected \(N, C, \.\.\.\), got shape \(3,\)"):
        F.local_response_norm(gf.randn(3), 2)


def test_dtype_errors():
    with pytest.raises(TypeError, match=r"unknown dtype 'float99'"):
        gf.zeros(2, dtype="float99")
    with pytest.raises(TypeError, match=r"conv2d: needs a floating input, got int64"):
        F.conv2d(gf.tensor([[[[1, 2], [3, 4]]]]), gf.tensor([[[[1]]]]))
    with pytest.raises(TypeError, match=r"softmax: needs a floating tensor, got dtype int64"):
        gf.tensor([1, 2]).softmax(0)
    with pytest.raises(TypeError, match=r"mul: unsupported operand type str"):
        gf.randn(2) * "a"


@pytest.mark.skipif(unavailable_reason("numba") is not None, reason="numba backend unavailable")
def test_numpy_and_numba_tensors_do_not_mix():
    """numba shares NumPy's arrays, so only the backend identity tells them apart."""
    a = gf.randn(2, 3, backend="numpy")
    b = gf.randn(3, 2, backend="numba")
    with pytest.raises(RuntimeError, match=r"matmul: operands live on different backends \(\(2, 3\) on "
                                           r"numpy, \(3, 2\) on numba\); move one with \.to\('numpy'\)"):
        a @ b
    with pytest.raises(RuntimeError, match=r"Conv2d: inputs live on different backends"):
        F.conv2d(gf.randn(1, 3, 4, 4, backend="numba"), gf.randn(2, 3, 3, 3, backend="numpy"))
    assert (a @ b.to("numpy")).backend.name == "numpy"
