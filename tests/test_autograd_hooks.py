"""Tensor hooks under ``autograd.grad``: the hooks of leaf inputs run once on the summed
gradient (also when the leaf is the output itself), as in PyTorch."""
from __future__ import annotations

import numpy as np

import gradflow as gf


# -- autograd.grad runs the hooks of leaf inputs --------------------------------------------
def test_grad_applies_leaf_input_hooks():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: g * 10)
    (g,) = gf.autograd.grad((x * 3).sum() + (x * 1).sum(), x)
    assert g.tolist() == [40.0, 40.0]          # torch: hooks see the summed gradient, once
    assert x.grad is None


def test_grad_applies_hook_of_leaf_that_is_the_output():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: g * 10)
    (g,) = gf.autograd.grad(x, x, grad_outputs=gf.ones(2))
    assert g.tolist() == [10.0, 10.0]


def test_leaf_hooks_run_as_soon_as_the_leafs_gradient_is_final():
    """As PyTorch's AccumulateGrad: the last layer's post-accumulate hook runs while the
    walk has not yet reached the first layer (what lets DDP start an all-reduce early),
    and a leaf used twice still sees its summed gradient once."""
    w1 = gf.tensor([[0.5, -1.0], [2.0, 0.25]], requires_grad=True)
    w2 = gf.tensor([[1.5, -0.5]], requires_grad=True)
    seen = []
    w2.register_post_accumulate_grad_hook(lambda t: seen.append(("w2", w1.grad is None)))
    w1.register_post_accumulate_grad_hook(lambda t: seen.append(("w1", t.grad.numpy().copy())))
    x = gf.tensor([[1.0, 2.0]])
    h = (x @ w1.T).tanh() + x @ w1.T          # w1 used twice
    (h @ w2.T).sum().backward()
    assert seen[0] == ("w2", True)             # w2 done before w1's gradient existed
    assert len(seen) == 2 and seen[1][0] == "w1"
    np.testing.assert_allclose(seen[1][1], w1.grad.numpy())
