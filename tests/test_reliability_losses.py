"""Reliability: losses stay finite where PyTorch's do.

A saturated probability (float32 ``sigmoid`` is exactly 1.0 from x ~ 17 and exactly 0.0
below x ~ -104) must not turn the gradient into NaN: PyTorch clamps BCE's logs at -100
and bounds its gradient by ``1 / 1e-12``."""
from __future__ import annotations

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F
from gradflow.autograd import gradcheck

from conftest import requires_torch

SATURATING_X = [20.0, 40.0, -200.0, -104.0, -30.0, 5.0, 0.0]


@pytest.mark.parametrize("t0", [0.0, 1.0])
@pytest.mark.parametrize("x0", [20.0, -200.0])
def test_saturated_sigmoid_bce_corners_have_finite_zero_gradient(backend, x0, t0):
    """The four corners of the issue: p in {0, 1} (x = +-saturated), target in {0, 1}."""
    x = gf.tensor([x0], requires_grad=True)
    p = x.sigmoid()
    assert p.item() in (0.0, 1.0)
    loss = F.binary_cross_entropy(p, gf.tensor([t0]))
    loss.backward()
    assert np.isfinite(loss.item()) and loss.item() in (0.0, 100.0)
    assert x.grad.numpy().tolist() == [0.0]  # sigmoid' is exactly 0 there


def test_one_saturated_sample_does_not_poison_the_weights():
    gf.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 1), nn.Sigmoid())
    opt = gf.optim.SGD(model.parameters(), lr=0.1)
    x = gf.tensor([[0.1, 0.2, 0.3], [1e3, 1e3, 1e3], [-1e3, -1e3, -1e3]])
    y = gf.tensor([[1.0], [0.0], [1.0]])
    loss = nn.BCELoss()(model(x), y)
    loss.backward()
    opt.step()
    for p in model.parameters():
        assert np.isfinite(p.grad.numpy()).all() and np.isfinite(p.numpy()).all()


@requires_torch
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_values_and_gradients_equal_torch_across_saturation(dtype, reduction):
    import torch
    xs = np.array(SATURATING_X, dtype=dtype)
    ts = np.array([0.0, 1.0, 0.3, 1.0, 0.0, 0.7, 1.0], dtype=dtype)
    ws = np.linspace(0.5, 2.0, len(xs)).astype(dtype)
    x = gf.tensor(xs, requires_grad=True)
    t = gf.tensor(ts, requires_grad=True)
    loss = nn.BCELoss(weight=gf.tensor(ws), reduction=reduction)(x.sigmoid(), t)
    loss.sum().backward()
    xt = torch.tensor(xs, requires_grad=True)
    tt = torch.tensor(ts, requires_grad=True)
    lt = torch.nn.BCELoss(weight=torch.tensor(ws), reduction=reduction)(xt.sigmoid(), tt)
    lt.sum().backward()
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(loss.numpy(), lt.detach().numpy(), **tol)
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), **tol)
    # the target's gradient: PyTorch's is +-inf at p in {0, 1}, gradflow's finite
    fin = np.isfinite(tt.grad.numpy())
    np.testing.assert_allclose(t.grad.numpy()[fin], tt.grad.numpy()[fin], **tol)
    assert np.isfinite(t.grad.numpy()).all()


@requires_torch
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bce_on_saturated_leaf_probabilities_equals_torch(dtype):
    """p itself exactly 0 or 1 (or below the 1e-12 bound): PyTorch's bounded gradient
    (p - t) / max(p (1 - p), 1e-12), values clamped at 100."""
    import torch
    ps = np.array([0.0, 0.0, 1.0, 1.0, 1e-13, 1e-13, 0.0, 1.0], dtype=dtype)
    ts = np.array([0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.4, 0.4], dtype=dtype)
    p = gf.tensor(ps, requires_grad=True)
    loss = F.binary_cross_entropy(p, gf.tensor(ts), reduction="none")
    loss.sum().backward()
    pt = torch.tensor(ps, requires_grad=True)
    lt = torch.nn.functional.binary_cross_entropy(pt, torch.tensor(ts), reduction="none")
    lt.sum().backward()
    np.testing.assert_allclose(loss.numpy(), lt.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(p.grad.numpy(), pt.grad.numpy(), rtol=1e-6)
    assert np.isfinite(p.grad.numpy()).all()


def test_bce_target_gradient_is_finite_at_saturation():
    """PyTorch gives +-inf at p in {0, 1}; gradflow -+log(smallest subnormal)."""
    p = gf.tensor([0.0, 1.0, 0.5], requires_grad=True)
    t = gf.tensor([1.0, 0.0, 0.5], requires_grad=True)
    loss = F.binary_cross_entropy(p, t, reduction="none")
    loss.sum().backward()
    np.testing.assert_allclose(loss.numpy(), [100.0, 100.0, np.log(2)], rtol=1e-6)
    big = -np.log(np.float64(np.finfo(np.float32).smallest_subnormal))
    np.testing.assert_allclose(t.grad.numpy(), [big, -big, 0.0], rtol=1e-5, atol=1e-6)


def test_bce_gradcheck_float64_interior_and_saturated_points():
    p = gf.tensor([0.1, 0.5, 0.93, 1e-3], dtype="float64", requires_grad=True)
    t = gf.tensor([0.0, 1.0, 0.3, 0.8], dtype="float64", requires_grad=True)
    assert gradcheck(lambda p, t: F.binary_cross_entropy(p, t), (p, t))
    # through a sigmoid well into float64 saturation (p = 1 - 1e-14): still differentiable
    x = gf.tensor([-40.0, -3.0, 0.5, 32.0], dtype="float64", requires_grad=True)
    tgt = gf.tensor([0.0, 1.0, 0.5, 1.0], dtype="float64")
    assert gradcheck(lambda x: F.binary_cross_entropy(x.sigmoid(), tgt, reduction="sum"), (x,))


def test_bce_rejects_values_outside_zero_one_and_integer_input():
    with pytest.raises(ValueError, match=r"binary_cross_entropy.*\[0, 1\].*with_logits"):
        F.binary_cross_entropy(gf.tensor([0.5, 1.5]), gf.tensor([0.0, 1.0]))
    with pytest.raises(TypeError, match="binary_cross_entropy"):
        F.binary_cross_entropy(gf.tensor([0, 1]), gf.tensor([0, 1]))


def test_bce_with_logits_is_finite_for_huge_logits():
    x = gf.tensor([1e4, -1e4, 80.0, -80.0], requires_grad=True)
    t = gf.tensor([0.0, 1.0, 1.0, 0.0])
    loss = F.binary_cross_entropy_with_logits(x, t, reduction="sum")
    loss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(x.grad.numpy()).all()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, -1.0, 0.0, 0.0], atol=1e-6)


def test_kl_div_zero_target_has_finite_gradients_in_half_precision():
    """A zero target's branch is unused; its log must not be log(0) = -inf whose
    backward would be 0/0 (a 1e-38 floor is 0 in float16)."""
    inp = gf.tensor([-1.0, -0.5, -2.0], dtype="float16", requires_grad=True)
    tgt = gf.tensor([0.0, 0.6, 0.4], dtype="float16", requires_grad=True)
    loss = F.kl_div(inp, tgt, reduction="sum")
    loss.backward()
    assert np.isfinite(loss.item())
    assert np.isfinite(inp.grad.numpy()).all() and np.isfinite(tgt.grad.numpy()).all()
