"""Tensor hooks under ``autograd.grad``: the hooks of leaf inputs run once on the summed
gradient (also when the leaf is the output itself), as in PyTorch."""
from __future__ import annotations

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
