"""Padding modes, interpolation and avg_pool2d(divisor_override): gradcheck against the
mathematics, values and gradients against PyTorch on every backend, and the errors.

* ``F.pad`` modes reflect / replicate / circular (and the padding modules, Conv2d's
  ``padding_mode``);
* ``F.interpolate`` modes bilinear (align_corners both ways), linear, trilinear, nearest,
  nearest-exact (and ``nn.Upsample``);
* ``F.avg_pool2d(divisor_override=...)`` (and ``nn.AvgPool2d``).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F
from conftest import requires_torch, tols
from gradflow.autograd import gradcheck


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _leaf(shape, dtype="float64", seed=0):
    return gf.tensor(_x(shape, seed).astype(dtype), requires_grad=True)


def _check_torch(fn, tfn, shape, dtype, seed=0):
    """Values and input gradients (under a random cotangent) of ``fn`` on the current
    backend against ``tfn`` in PyTorch, both in ``dtype``."""
    import torch
    xn = _x(shape, seed).astype(dtype)
    x = gf.tensor(xn, requires_grad=True)
    xt = torch.tensor(xn, requires_grad=True)
    y = fn(x)
    with warnings.catch_warnings():  # PyTorch's own hints are not under test
        warnings.simplefilter("ignore", UserWarning)
        yt = tfn(xt)
    assert y.shape == tuple(yt.shape)
    assert y.dtype == np.dtype(dtype)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), **tols(dtype))
    cot = np.random.default_rng(seed + 1).standard_normal(y.shape).astype(dtype)
    (y * gf.tensor(cot)).sum().backward()
    (yt * torch.tensor(cot)).sum().backward()
    assert x.grad.shape == x.shape
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), **tols(dtype))


# ---------------------------------------------------------------------------
# F.pad: reflect / replicate / circular
# ---------------------------------------------------------------------------
MODES = ["reflect", "replicate", "circular"]
PAD_CASES = [  # (input shape, pad): batch > 1, odd sizes, asymmetric and negative pads, all
    # valid for reflect too (each pad < its dim's size)
    ((2, 3, 4, 5), (1, 2, 3, 0)),
    ((2, 2, 5), (3, 1)),                   # 1-D padding of (N, C, W)
    ((3, 4, 5), (2, 1, 1, 3)),             # 2-D padding of unbatched (C, H, W)
    ((2, 1, 3, 4, 3), (1, 0, 2, 1, 1, 2)),  # 3-D padding of (N, C, D, H, W)
    ((2, 2, 5, 6), (-1, 2, 1, -2)),        # negative pads crop
    ((2, 5), (4, 2)),                      # unbatched 1-D
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape,pad", PAD_CASES, ids=str)
def test_pad_gradcheck(mode, shape, pad):
    x = _leaf(shape)
    y = F.pad(x, pad, mode=mode)
    k = len(pad) // 2
    assert y.shape == shape[:-k] + tuple(shape[-1 - i] + pad[2 * i] + pad[2 * i + 1]
                                         for i in reversed(range(k)))
    assert gradcheck(lambda a: F.pad(a, pad, mode=mode), (x,))


@requires_torch
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape,pad", PAD_CASES, ids=str)
def test_pad_matches_torch(backend, dtype, mode, shape, pad):
    import torch.nn.functional as TF
    _check_torch(lambda a: F.pad(a, pad, mode=mode), lambda a: TF.pad(a, pad, mode=mode),
                 shape, dtype)


@pytest.mark.parametrize("mode,values,grad", [
    ("reflect", [2, 1, 0, 1, 2, 3, 2], [1, 2, 3, 1]),
    ("replicate", [0, 0, 0, 1, 2, 3, 3], [3, 1, 1, 2]),
    ("circular", [2, 3, 0, 1, 2, 3, 0], [2, 1, 2, 2]),
])
def test_pad_by_hand(backend, mode, values, grad):
    """[0, 1, 2, 3] padded (2, 1): the values, and d(sum)/dx = how often each is read."""
    x = gf.tensor(np.arange(4.0).reshape(1, 1, 4), requires_grad=True)
    y = F.pad(x, (2, 1), mode=mode)
    np.testing.assert_array_equal(y.numpy()[0, 0], values)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], grad)


def test_pad_constant_still_works(backend):
    x = _leaf((1, 2, 3), "float32")
    y = F.pad(x, (1, 2, 0, 1), value=-1.5)
    assert y.shape == (1, 3, 6)
    assert y.numpy()[0, 2].tolist() == [-1.5] * 6 and y.numpy()[0, 0, 0] == -1.5
    np.testing.assert_array_equal(y.numpy()[0, :2, 1:4], x.numpy()[0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 1.0)


def test_pad_errors():
    x = gf.randn(1, 2, 3, 4)
    with pytest.raises(ValueError, match=r"pad: mode='reflect' needs each pad to be less than "
                                         r"the size of its dim, got padding \(4, 0\) of dim 3 "
                                         r"\(size 4\) of input shape \(1, 2, 3, 4\); valid pads "
                                         r"are < 4"):
        F.pad(x, (4, 0, 0, 0), mode="reflect")
    with pytest.raises(ValueError, match=r"pad: mode='reflect' .* padding \(1, 3\) of dim 2 "
                                         r"\(size 3\)"):
        F.pad(x, (0, 0, 1, 3), mode="reflect")
    with pytest.raises(ValueError, match=r"pad: mode='circular' needs each pad to be at most the "
                                         r"size of its dim .* padding \(0, 5\) of dim 3 \(size 4\)"
                                         r".*valid pads are <= 4"):
        F.pad(x, (0, 5, 0, 0), mode="circular")
    assert F.pad(x, (0, 4, 0, 0), mode="circular").shape == (1, 2, 3, 8)  # one wrap is fine
    with pytest.raises(ValueError, match=r"pad: mode='replicate' with padding \(1, 1\) \(length 2\) "
                                         r"does not fit input shape \(1, 2, 3, 4\); valid: length 2 "
                                         r"for 2-D/3-D input, 4 for 3-D/4-D, 6 for 4-D/5-D"):
        F.pad(x, (1, 1), mode="replicate")
    with pytest.raises(ValueError, match=r"pad: padding length must be even .* got \(1, 1, 1\) of "
                                         r"length 3 for input shape \(1, 2, 3, 4\)"):
        F.pad(x, (1, 1, 1), mode="reflect")
    with pytest.raises(ValueError, match=r"pad: mode must be one of 'constant', 'reflect', "
                                         r"'replicate', 'circular', got 'wrap'"):
        F.pad(x, (1, 1, 1, 1), mode="wrap")
    with pytest.raises(ValueError, match=r"pad: mode='reflect' takes no fill value, got value=2"):
        F.pad(x, (1, 1, 1, 1), mode="reflect", value=2)
    with pytest.raises(ValueError, match=r"pad: padding \(-2, -2\) of dim 3 \(size 4\) of input "
                                         r"shape \(1, 2, 3, 4\) would leave no elements"):
        F.pad(x, (-2, -2, 0, 0), mode="replicate")
    with pytest.raises(TypeError, match=r"pad: padding must be a sequence of ints, got \(1.5, 1\)"):
        F.pad(x, (1.5, 1), mode="constant")


# -- padding modules and Conv2d(padding_mode=...) ------------------------------------------------
PAD_MODULES = [  # (name, constructor args, input shape)
    ("ReflectionPad1d", (2,), (2, 3, 5)),
    ("ReflectionPad2d", ((1, 0, 2, 1),), (2, 3, 4, 5)),
    ("ReflectionPad3d", (1,), (1, 2, 3, 3, 4)),
    ("ReplicationPad1d", ((3, 0),), (2, 3, 5)),
    ("ReplicationPad2d", (2,), (2, 3, 4, 5)),
    ("ReplicationPad3d", ((0, 1, 2, 0, 1, 1),), (1, 2, 3, 3, 4)),
    ("CircularPad1d", (2,), (2, 3, 5)),
    ("CircularPad2d", ((1, 2, 0, 3),), (2, 3, 4, 5)),
    ("CircularPad3d", (1,), (1, 2, 3, 3, 4)),
    ("ZeroPad1d", ((1, 2),), (2, 3, 5)),
    ("ZeroPad2d", (1,), (2, 3, 4, 5)),
    ("ZeroPad3d", ((1, 0, 0, 1, 2, 0),), (1, 2, 3, 3, 4)),
    ("ConstantPad1d", (2, 3.5), (2, 3, 5)),
    ("ConstantPad2d", ((1, 0, 2, 1), -1.0), (2, 3, 4, 5)),
    ("ConstantPad3d", (1, 0.5), (1, 2, 3, 3, 4)),
]


@requires_torch
@pytest.mark.parametrize("name,args,shape", PAD_MODULES, ids=lambda v: v if isinstance(v, str) else "")
def test_pad_modules_match_torch(backend, name, args, shape):
    import torch
    m, mt = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(m) == repr(mt)
    _check_torch(m, mt, shape, "float64")


def test_pad_module_errors_and_values():
    with pytest.raises(ValueError, match=r"ReflectionPad2d: padding must be an int or a 4-tuple, "
                                         r"got \(1, 2\)"):
        nn.ReflectionPad2d((1, 2))
    m = nn.ReplicationPad2d((1, 0, 0, 2))
    y = m(gf.tensor(np.arange(6.0).reshape(1, 1, 2, 3)))
    np.testing.assert_array_equal(y.numpy()[0, 0], [[0, 0, 1, 2], [3, 3, 4, 5], [3, 3, 4, 5],
                                                    [3, 3, 4, 5]])
    with pytest.raises(ValueError, match=r"pad: mode='reflect' needs each pad to be less than"):
        nn.ReflectionPad2d(3)(gf.randn(1, 1, 3, 3))


@requires_torch
@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("kw", [dict(kernel_size=3, padding=1), dict(kernel_size=(3, 2), padding=(2, 1),
                                                                    stride=2),
                                dict(kernel_size=4, padding="same", dilation=1),
                                dict(kernel_size=3, padding="valid")], ids=str)
def test_conv2d_padding_mode_matches_torch(backend, padding_mode, kw):
    import torch
    m = nn.Conv2d(2, 3, padding_mode=padding_mode, dtype=gf.float64, **kw)
    mt = torch.nn.Conv2d(2, 3, padding_mode=padding_mode, **kw).double()
    with torch.no_grad():
        mt.weight.copy_(torch.tensor(m.weight.numpy()))
        mt.bias.copy_(torch.tensor(m.bias.numpy()))
    xn = _x((2, 2, 5, 6))
    x = gf.tensor(xn, requires_grad=True)
    xt = torch.tensor(xn, requires_grad=True)
    y = m(x)
    with warnings.catch_warnings():  # PyTorch's hint about 'same' with an even kernel
        warnings.simplefilter("ignore", UserWarning)
        yt = mt(xt)
    assert y.shape == tuple(yt.shape)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-10)
    cot = _x(y.shape, 5)
    (y * gf.tensor(cot)).sum().backward()
    (yt * torch.tensor(cot)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(m.weight.grad.numpy(), mt.weight.grad.numpy(), rtol=1e-10, atol=1e-10)
    if padding_mode != "zeros":
        assert f"padding_mode={padding_mode}" in repr(m)


def test_conv2d_padding_mode_errors():
    with pytest.raises(ValueError, match=r"Conv2d: padding_mode must be 'zeros', 'reflect', "
                                         r"'replicate' or 'circular', got 'mirror'"):
        nn.Conv2d(1, 1, 3, padding_mode="mirror")
    m = nn.Conv2d(1, 1, 3, padding=3, padding_mode="reflect")
    with pytest.raises(ValueError, match=r"pad: mode='reflect' needs each pad .* \(size 3\)"):
        m(gf.randn(1, 1, 3, 3))


# ---------------------------------------------------------------------------
# F.interpolate
# ---------------------------------------------------------------------------
LINEAR_CASES = [  # (input shape, kwargs)
    ((2, 3, 5, 4), dict(scale_factor=1.5)),
    ((2, 3, 5, 4), dict(scale_factor=2)),
    ((2, 3, 5, 4), dict(scale_factor=0.5)),
    ((2, 2, 5, 4), dict(size=(7, 3))),
    ((2, 2, 3, 5), dict(scale_factor=(1.7, 0.6))),
    ((1, 2, 3, 4), dict(size=1)),
    ((2, 2, 3, 4), dict(scale_factor=2.3, recompute_scale_factor=True)),
    ((2, 2, 3, 5), dict(scale_factor=(1.0, 1.1))),     # equal in/out sizes copy
]


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("shape,kw", LINEAR_CASES, ids=str)
def test_bilinear_gradcheck(align_corners, shape, kw):
    x = _leaf(shape)
    assert gradcheck(lambda a: F.interpolate(a, mode="bilinear", align_corners=align_corners,
                                             **kw), (x,))


@pytest.mark.parametrize("mode,shape,kw", [
    ("linear", (2, 3, 5), dict(scale_factor=1.7)),
    ("trilinear", (2, 1, 3, 4, 2), dict(scale_factor=(1.5, 0.5, 2))),
    ("nearest", (2, 2, 5, 4), dict(scale_factor=1.5)),
    ("nearest", (2, 2, 4, 6), dict(size=(3, 7))),
    ("nearest-exact", (2, 2, 5, 4), dict(scale_factor=(0.7, 1.6))),
])
def test_other_modes_gradcheck(mode, shape, kw):
    assert gradcheck(lambda a: F.interpolate(a, mode=mode, **kw), (_leaf(shape),))


@requires_torch
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("shape,kw", LINEAR_CASES, ids=str)
def test_bilinear_matches_torch(backend, dtype, align_corners, shape, kw):
    import torch.nn.functional as TF
    _check_torch(lambda a: F.interpolate(a, mode="bilinear", align_corners=align_corners, **kw),
                 lambda a: TF.interpolate(a, mode="bilinear", align_corners=align_corners, **kw),
                 shape, dtype)


@requires_torch
@pytest.mark.parametrize("mode,shape,kw", [
    ("linear", (2, 3, 5), dict(scale_factor=1.7)),
    ("linear", (2, 3, 6), dict(size=4, align_corners=True)),
    ("trilinear", (2, 1, 3, 4, 2), dict(scale_factor=(1.5, 0.5, 2))),
    ("trilinear", (1, 2, 2, 3, 4), dict(size=(3, 5, 2), align_corners=True)),
    ("nearest", (2, 2, 5, 4), dict(scale_factor=1.5)),
    ("nearest", (2, 2, 5, 4), dict(scale_factor=(2.1, 3.1))),  # integer output ratio, not scale
    ("nearest", (2, 2, 4, 3), dict(scale_factor=3)),
    ("nearest", (2, 2, 4, 6), dict(size=(3, 7))),
    ("nearest", (2, 3, 7), dict(scale_factor=0.3)),
    ("nearest", (1, 2, 2, 3, 2), dict(scale_factor=2)),
    ("nearest-exact", (2, 2, 5, 4), dict(scale_factor=(0.7, 1.6))),
    ("nearest-exact", (2, 3, 7), dict(size=11)),
])
def test_other_modes_match_torch(backend, dtype, mode, shape, kw):
    import torch.nn.functional as TF
    _check_torch(lambda a: F.interpolate(a, mode=mode, **kw),
                 lambda a: TF.interpolate(a, mode=mode, **kw), shape, dtype)


@requires_torch
@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
@pytest.mark.parametrize("lead_out", [(), (1,), (200,), (1, 1)], ids=["3d", "4d", "4d-large", "5d"])
def test_nearest_indices_match_torch_exhaustively(dtype_name, mode, lead_out):
    """Nearest picks whole pixels, so any rounding difference in the source position is a
    different pixel: resample the last axis for every size pair up to 20 -> 50 and a set
    of scale factors, on 3-D, 4-D and 5-D input. The leading spatial axes go from 1 to
    ``lead_out``: PyTorch switches index rule for 4-D outputs with H + W > 128."""
    import torch
    import torch.nn.functional as TF
    bad = []
    for n in range(1, 21):
        x = np.arange(float(n), dtype=dtype_name).reshape((1, 1) + (1,) * len(lead_out) + (n,))
        kws = [dict(size=lead_out + (o,)) for o in range(1, 51)]
        kws += [dict(scale_factor=tuple(map(float, lead_out)) + (s,))
                for s in (0.3, 0.7, 1.1, 1.5, 2.1, 3.7, 41.0) if int(n * s)]
        for kw in kws:
            got = F.interpolate(gf.tensor(x), mode=mode, **kw).numpy()
            want = TF.interpolate(torch.tensor(x), mode=mode, **kw).numpy()
            if got.shape != want.shape or not np.array_equal(got, want):
                bad.append((n, kw))
    assert not bad, f"{len(bad)} mismatches, e.g. {bad[:5]}"


@requires_torch
def test_nearest_gradient_is_the_adjoint_of_the_forward():
    """PyTorch's nearest backward always uses its older index rule, so where its forward
    uses the newer one (3-D input here) its gradient is not the adjoint of its forward;
    ours is: each input gets the sum of the outputs that copied it."""
    import torch
    import torch.nn.functional as TF
    x = gf.zeros(1, 1, 5, dtype=gf.float64, requires_grad=True)
    y = F.interpolate(x, scale_factor=2.1)
    want = TF.interpolate(torch.arange(5.0).reshape(1, 1, 5), scale_factor=2.1)
    np.testing.assert_array_equal(F.interpolate(gf.arange(5.0).reshape(1, 1, 5),
                                                scale_factor=2.1).numpy(), want.numpy())
    y.backward(gf.arange(10.0, dtype=gf.float64).reshape(1, 1, 10))
    src = want.numpy()[0, 0].astype(int)          # [0 0 0 1 1 2 2 3 3 4]
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], np.bincount(src, np.arange(10.0)))


def test_bilinear_by_hand(backend):
    """2 -> 3 points, align_corners=True: the midpoint is the mean; False: PyTorch's
    half-pixel grid (src = (dst + 0.5) * 2/3 - 0.5, clamped at 0)."""
    x = gf.tensor(np.array([[[[0.0, 3.0]]]]), requires_grad=True)
    y = F.interpolate(x, size=(1, 3), mode="bilinear", align_corners=True)
    np.testing.assert_allclose(y.numpy()[0, 0, 0], [0.0, 1.5, 3.0])
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy()[0, 0, 0], [1.5, 1.5])
    y = F.interpolate(x.detach(), size=(1, 3), mode="bilinear", align_corners=False)
    np.testing.assert_allclose(y.numpy()[0, 0, 0], [0.0, 1.5, 3.0])
    y = F.interpolate(x.detach(), size=(1, 4), mode="bilinear")
    np.testing.assert_allclose(y.numpy()[0, 0, 0], [0.0, 0.75, 2.25, 3.0])


def test_nearest_integer_upsampling_is_blocks(backend):
    x = gf.tensor(np.arange(6.0).reshape(1, 1, 2, 3), requires_grad=True)
    y = F.interpolate(x, scale_factor=(2, 3))
    np.testing.assert_array_equal(y.numpy()[0, 0], np.repeat(np.repeat(x.numpy()[0, 0], 2, 0), 3, 1))
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 6.0)


@requires_torch
@pytest.mark.parametrize("args,kw", [
    ((), dict(scale_factor=2, mode="bilinear", align_corners=True)),
    ((), dict(scale_factor=1.5, mode="bilinear")),
    ((), dict(size=(3, 7), mode="nearest")),
    ((), dict(scale_factor=2)),
], ids=str)
def test_upsample_module_matches_torch(backend, dtype, args, kw):
    import torch
    _check_torch(nn.Upsample(*args, **kw), torch.nn.Upsample(*args, **kw), (2, 3, 4, 5), dtype)


@requires_torch
@pytest.mark.parametrize("name", ["UpsamplingBilinear2d", "UpsamplingNearest2d"])
def test_upsampling_aliases_match_torch(backend, name):
    import torch
    _check_torch(getattr(nn, name)(scale_factor=2), getattr(torch.nn, name)(scale_factor=2),
                 (2, 2, 3, 4), "float64")


def test_interpolate_errors():
    x = gf.randn(2, 3, 4, 5)
    with pytest.raises(ValueError, match=r"interpolate: mode='bilinear' needs a 4-D input "
                                         r"\(N, C, spatial...\), got shape \(3, 4, 5\)"):
        F.interpolate(gf.randn(3, 4, 5), scale_factor=2, mode="bilinear")
    with pytest.raises(ValueError, match=r"interpolate: give exactly one of size and scale_factor"):
        F.interpolate(x, size=4, scale_factor=2, mode="bilinear")
    with pytest.raises(ValueError, match=r"interpolate: give exactly one of size and scale_factor"):
        F.interpolate(x, mode="bilinear")
    with pytest.raises(ValueError, match=r"interpolate: align_corners can only be set with the "
                                         r"interpolating modes .* got mode='nearest'"):
        F.interpolate(x, scale_factor=2, align_corners=False)
    with pytest.raises(ValueError, match=r"interpolate: input and output sizes must be > 0, got "
                                         r"input spatial size \(4, 5\) \(shape \(2, 3, 4, 5\)\) "
                                         r"and output size \(0, 1\)"):
        F.interpolate(x, scale_factor=0.2, mode="bilinear")
    with pytest.raises(ValueError, match=r"interpolate: scale_factor \(2, 2, 2\) must have one "
                                         r"entry per spatial dim of input shape \(2, 3, 4, 5\) \(2\)"):
        F.interpolate(x, scale_factor=(2, 2, 2), mode="bilinear")
    with pytest.raises(ValueError, match=r"interpolate: recompute_scale_factor is not meaningful"):
        F.interpolate(x, size=(8, 8), mode="bilinear", recompute_scale_factor=True)
    with pytest.raises(NotImplementedError, match=r"interpolate: mode='bicubic' is not "
                                                  r"implemented; supported: 'nearest'"):
        F.interpolate(x, scale_factor=2, mode="bicubic")
    with pytest.raises(NotImplementedError, match=r"interpolate: antialias=True"):
        F.interpolate(x, scale_factor=0.5, mode="bilinear", antialias=True)
    with pytest.raises(ValueError, match=r"interpolate: expected a 3-D, 4-D or 5-D input .* "
                                         r"got shape \(4, 5\)"):
        F.interpolate(gf.randn(4, 5), scale_factor=2)


# ---------------------------------------------------------------------------
# avg_pool2d(divisor_override=...)
# ---------------------------------------------------------------------------
POOL_CASES = [  # (input shape, kernel, stride, padding, ceil_mode, divisor)
    ((2, 3, 6, 7), 3, 2, 1, True, 4),
    ((2, 3, 6, 7), 2, 2, 0, False, 3),
    ((2, 2, 5, 5), 3, 1, 1, False, 1),
    ((2, 2, 7, 6), 3, 2, 1, False, -2),
    ((2, 2, 6, 7), (3, 2), (2, 1), (1, 1), True, 5),
    ((3, 5, 5), 2, 2, 1, True, 7),                   # unbatched (C, H, W)
]


@pytest.mark.parametrize("shape,k,s,p,ceil,div", POOL_CASES, ids=str)
def test_avg_pool_divisor_gradcheck(shape, k, s, p, ceil, div):
    x = _leaf(shape)
    assert gradcheck(lambda a: F.avg_pool2d(a, k, s, p, ceil, False, divisor_override=div), (x,))


@requires_torch
@pytest.mark.parametrize("include_pad", [True, False])
@pytest.mark.parametrize("shape,k,s,p,ceil,div", POOL_CASES, ids=str)
def test_avg_pool_divisor_matches_torch(backend, dtype, include_pad, shape, k, s, p, ceil, div):
    import torch.nn.functional as TF
    _check_torch(lambda a: F.avg_pool2d(a, k, s, p, ceil, include_pad, div),
                 lambda a: TF.avg_pool2d(a, k, s, p, ceil, include_pad, div), shape, dtype)


def test_avg_pool_divisor_by_hand(backend):
    """Ones, 3x3 windows with zero padding 1 and divisor 1: each output is the number of
    real (unpadded) elements its window covers; the gradient counts window memberships."""
    x = gf.ones(1, 1, 3, 3, requires_grad=True)
    y = F.avg_pool2d(x, 3, stride=2, padding=1, divisor_override=1)
    np.testing.assert_array_equal(y.numpy()[0, 0], [[4, 4], [4, 4]])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    y = nn.AvgPool2d(2, divisor_override=2)(gf.ones(1, 1, 4, 4))
    np.testing.assert_array_equal(y.numpy(), 2.0)


@requires_torch
def test_avg_pool_module_divisor_matches_torch(backend, dtype):
    import torch
    kw = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, divisor_override=5)
    m = nn.AvgPool2d(**kw)
    assert "divisor_override=5" in repr(m)
    _check_torch(m, torch.nn.AvgPool2d(**kw), (2, 3, 6, 7), dtype)


def test_avg_pool_divisor_errors():
    x = gf.randn(1, 2, 4, 4)
    with pytest.raises(ValueError, match=r"avg_pool2d: divisor_override must be a nonzero int, "
                                         r"got 0 \(input shape \(1, 2, 4, 4\), kernel \(2, 2\)\)"):
        F.avg_pool2d(x, 2, divisor_override=0)
    with pytest.raises(ValueError, match=r"avg_pool2d: divisor_override must be a nonzero int, "
                                         r"got 2.5"):
        nn.AvgPool2d(2, divisor_override=2.5)(x)


# ---------------------------------------------------------------------------
# non-contiguous inputs (views) give what their contiguous copies give
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [
    lambda a: F.pad(a, (2, 1, 1, 2), mode="reflect"),
    lambda a: F.pad(a, (3, 0, 0, 4), mode="replicate"),
    lambda a: F.pad(a, (1, 2, 2, 1), mode="circular"),
    lambda a: F.interpolate(a, scale_factor=1.5, mode="bilinear"),
    lambda a: F.interpolate(a, size=(5, 4), mode="bilinear", align_corners=True),
    lambda a: F.interpolate(a, scale_factor=(1.5, 0.6)),
    lambda a: F.avg_pool2d(a, 3, 2, 1, True, divisor_override=4),
], ids=["reflect", "replicate", "circular", "bilinear", "bilinear-ac", "nearest", "avgpool-div"])
def test_non_contiguous_input(backend, dtype, fn):
    base = gf.tensor(_x((2, 3, 7, 6)).astype(dtype), requires_grad=True)
    view = base.transpose(2, 3)[:, :, ::2]                 # (2, 3, 3, 7), strided
    copy = gf.tensor(view.numpy(), requires_grad=True)
    y, yc = fn(view), fn(copy)
    np.testing.assert_allclose(y.numpy(), yc.numpy(), **tols(dtype))
    cot = gf.tensor(_x(y.shape, 3).astype(dtype))
    (y * cot).sum().backward()
    (yc * cot).sum().backward()
    np.testing.assert_allclose(base.grad.numpy().transpose(0, 1, 3, 2)[:, :, ::2], copy.grad.numpy(),
                               **tols(dtype))
    assert np.all(base.grad.numpy().transpose(0, 1, 3, 2)[:, :, 1::2] == 0)
