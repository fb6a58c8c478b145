"""gradflow.autograd.grad: gradients w.r.t. chosen inputs, as torch.autograd.grad."""
import numpy as np
import pytest

import gradflow as gf
from gradflow.autograd import grad

from conftest import requires_torch


def test_grad_matches_backward_and_leaves_dot_grad_alone():
    x = gf.randn(3, 4, dtype=gf.float64, requires_grad=True)
    w = gf.randn(4, 2, dtype=gf.float64, requires_grad=True)
    y = ((x @ w).tanh() * x.sum(1, keepdim=True)).sum()
    gx, gw = grad(y, (x, w), retain_graph=True)
    assert x.grad is None and w.grad is None
    y.backward()
    np.testing.assert_allclose(gx.numpy(), x.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(gw.numpy(), w.grad.numpy(), rtol=1e-12)


def test_grad_of_non_leaf_and_multiple_outputs():
    x = gf.randn(5, dtype=gf.float64, requires_grad=True)
    h = x * 2
    a, b = (h * h).sum(), h.sum()
    (gh,) = grad([a, b], [h])
    np.testing.assert_allclose(gh.numpy(), 2 * h.numpy() + 1)


def test_grad_outputs_required_for_non_scalar_and_unused_inputs():
    x = gf.randn(3, requires_grad=True)
    u = gf.randn(3, requires_grad=True)
    y = x * 3
    with pytest.raises(RuntimeError, match="grad_outputs is required"):
        grad(y, x, retain_graph=True)
    (g,) = grad(y, x, grad_outputs=gf.ones(3), retain_graph=True)
    np.testing.assert_allclose(g.numpy(), 3.0)
    with pytest.raises(RuntimeError, match="not used"):
        grad(y.sum(), [x, u], retain_graph=True)
    gx, gu = grad(y.sum(), [x, u], allow_unused=True)
    assert gu is None and np.allclose(gx.numpy(), 3.0)


def test_grad_frees_the_graph_unless_retained():
    x = gf.randn(3, requires_grad=True)
    y = (x * x).sum()
    grad(y, x)
    with pytest.raises(RuntimeError, match="second time|freed"):
        y.backward()


@requires_torch
def test_grad_agrees_with_torch():
    import torch
    xn = np.random.default_rng(0).standard_normal((4, 3))
    x = gf.tensor(xn, requires_grad=True)
    xt = torch.tensor(xn, requires_grad=True)
    (g,) = grad((x.exp() * x.sin()).mean(), x)
    (gt,) = torch.autograd.grad((xt.exp() * xt.sin()).mean(), xt)
    np.testing.assert_allclose(g.numpy(), gt.numpy(), rtol=1e-12)
