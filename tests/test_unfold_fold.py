"""``F.unfold`` / ``F.fold`` and ``nn.Unfold`` / ``nn.Fold`` (im2col / col2im in PyTorch's
(N, C*kH*kW, L) layout): values and gradients against PyTorch on every backend in float32
and float64, unfold + matmul is conv2d, fold is unfold's adjoint, gradcheck, bad input."""
from __future__ import annotations

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F
from gradflow.autograd import gradcheck

from conftest import requires_torch, tols
from torch_pairs import check_fwd_bwd


_GEOMS = [  # (input shape, kernel, dilation, padding, stride)
    ((2, 3, 6, 7), 3, 1, 0, 1),
    ((2, 2, 7, 6), (2, 3), (1, 2), (1, 0), (2, 1)),
    ((1, 3, 5, 5), 2, 1, 1, 2),
    ((3, 5, 6), (3, 2), 1, (0, 1), (1, 2)),  # unbatched (C, H, W)
]


@requires_torch
@pytest.mark.parametrize("geom", _GEOMS, ids=["k3", "rect-dil-pad", "pad-stride", "unbatched"])
def test_unfold_fold_match_torch(backend, dtype, geom):
    import torch
    import torch.nn.functional as TF
    shape, k, d, p, s = geom
    a = np.random.default_rng(0).standard_normal(shape)
    y = check_fwd_bwd(lambda x: F.unfold(x, k, d, p, s),
                       lambda x: TF.unfold(x, k, dilation=d, padding=p, stride=s), a, dtype)
    out_hw = shape[-2:]
    cols = np.random.default_rng(1).standard_normal(y.shape)
    check_fwd_bwd(lambda c: F.fold(c, out_hw, k, d, p, s),
                   lambda c: TF.fold(c, out_hw, k, dilation=d, padding=p, stride=s), cols, dtype)
    # the modules are the functions
    mod = nn.Unfold(k, d, p, s)
    tmod = torch.nn.Unfold(k, d, p, s)
    assert repr(mod) == repr(tmod)
    np.testing.assert_allclose(mod(gf.tensor(a.astype(dtype))).numpy(),
                               tmod(torch.tensor(a.astype(dtype))).numpy(), **tols(dtype))
    fmod, tfmod = nn.Fold(out_hw, k, d, p, s), torch.nn.Fold(out_hw, k, d, p, s)
    assert repr(fmod) == repr(tfmod)
    np.testing.assert_allclose(fmod(gf.tensor(cols.astype(dtype))).numpy(),
                               tfmod(torch.tensor(cols.astype(dtype))).numpy(), **tols(dtype))


def test_unfold_matmul_is_conv2d_and_fold_is_adjoint(backend):
    rng = np.random.default_rng(2)
    x = gf.tensor(rng.standard_normal((2, 3, 7, 6)))
    w = gf.tensor(rng.standard_normal((4, 3, 3, 3)))
    cols = F.unfold(x, 3, padding=1, stride=2)  # (2, 27, 4*3)
    y = (w.reshape(4, -1) @ cols).reshape(2, 4, 4, 3)
    np.testing.assert_allclose(y.numpy(), F.conv2d(x, w, padding=1, stride=2).numpy(),
                               rtol=1e-10, atol=1e-10)
    c = gf.tensor(rng.standard_normal(cols.shape))
    lhs = float((cols * c).sum())  # <unfold(x), c> == <x, fold(c)>
    rhs = float((x * F.fold(c, (7, 6), 3, padding=1, stride=2)).sum())
    assert abs(lhs - rhs) < 1e-9 * max(1.0, abs(lhs))
    # the output owns its memory even where it could alias the input (1x1 kernel)
    u = F.unfold(x, 1)
    u.data.mul_(0.0)
    assert float(x.abs().sum()) > 0


def test_unfold_fold_gradcheck():
    rng = np.random.default_rng(3)
    x = gf.tensor(rng.standard_normal((2, 2, 5, 4)), requires_grad=True)
    assert gradcheck(lambda t: F.unfold(t, (2, 3), dilation=(2, 1), padding=1, stride=(1, 2)), (x,))
    c = gf.tensor(rng.standard_normal((1, 8, 12)), requires_grad=True)
    assert gradcheck(lambda t: F.fold(t, (4, 5), 2, padding=(1, 0), stride=(2, 1)), (c,))


def test_unfold_fold_errors():
    x = gf.randn(2, 3, 5, 5)
    with pytest.raises(ValueError, match=r"unfold: expected a 3-D .* or 4-D .* got shape \(2, 3\)"):
        F.unfold(gf.randn(2, 3), 2)
    with pytest.raises(ValueError, match=r"unfold: no sliding blocks fit: spatial size \(5, 5\)"):
        F.unfold(x, 7)
    with pytest.raises(ValueError, match=r"unfold: kernel_size must be an int or a pair of ints "
                                         r">= 1, got 0"):
        F.unfold(x, 0)
    with pytest.raises(ValueError, match=r"unfold: padding must be .* >= 0, got -1"):
        F.unfold(x, 2, padding=-1)
    with pytest.raises(ValueError, match=r"fold: .*4 \* 4 = 16 sliding blocks, but the input "
                                         r"\(shape \(2, 12, 10\)\) has 10"):
        F.fold(gf.randn(2, 12, 10), (5, 5), 2)
    with pytest.raises(ValueError, match=r"fold: input dimension 1 \(10, .* divisible by .* = 4"):
        F.fold(gf.randn(2, 10, 16), (5, 5), 2)
    with pytest.raises(ValueError, match=r"fold: expected a 2-D .* or 3-D .* got shape"):
        F.fold(x, (5, 5), 2)
    with pytest.raises(TypeError, match="unfold: input must be a Tensor"):
        F.unfold(np.zeros((1, 1, 3, 3)), 2)
