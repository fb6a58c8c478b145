"""In-place ops on tensors of the graph, as PyTorch: ``retain_grad()`` follows the tensor
to its new value, the result keeps the tensor's shape and dtype, ``mark_dirty`` refuses a
leaf that requires grad, and an in-place op on a *view* of a graph tensor raises instead
of losing the write (expected values are PyTorch's, written out)."""
from __future__ import annotations

import numpy as np
import pytest

import gradflow as gf


# -- retain_grad() follows the tensor through an in-place op -------------------------------
def test_retain_grad_then_inplace_op_gives_grad_of_new_value():
    x = gf.tensor([-1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    y.retain_grad()
    y.relu_()
    assert y.retains_grad
    (y * gf.tensor([1.0, 10.0, 100.0])).sum().backward()
    # torch: the gradient w.r.t. relu's output (not zeroed where the old value was < 0)
    assert y.grad.tolist() == [1.0, 10.0, 100.0]
    assert x.grad.tolist() == [0.0, 20.0, 200.0]


def test_retain_grad_then_setitem_gives_grad_of_new_value():
    x = gf.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    y.retain_grad()
    y[0] = 7.0
    assert y.retains_grad
    (y * gf.tensor([1.0, 10.0, 100.0])).sum().backward()
    assert y.grad.tolist() == [1.0, 10.0, 100.0]
    assert x.grad.tolist() == [0.0, 20.0, 200.0]


# -- an in-place op on a graph tensor keeps its shape and dtype ----------------------------
def test_inplace_masked_fill_on_graph_tensor_cannot_broadcast_self():
    y = gf.tensor([1.0, 2.0], requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="shape"):
        y.masked_fill_(gf.tensor([[True, False], [False, True]]), 0.0)
    assert y.shape == (2,)


def test_inplace_clamp_with_grad_bounds_cannot_broadcast_self():
    y = gf.tensor([1.0, 2.0], requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="shape"):
        y.clamp_(min=gf.zeros(3, 2, requires_grad=True))
    assert y.shape == (2,)


def test_inplace_clamp_of_int_tensor_with_float_grad_bound_raises():
    x = gf.tensor([1, 5, 9])
    with pytest.raises(RuntimeError, match="can't be cast"):
        x.clamp_(min=gf.tensor([2.0, 2.0, 2.0], requires_grad=True))
    assert x.dtype == gf.int64 and x.tolist() == [1, 5, 9]


# -- mark_dirty on a leaf that requires grad -------------------------------------------------
def test_mark_dirty_on_leaf_requiring_grad_raises():
    class Double_(gf.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            x.mul_(2)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, g):
            return g * 2

    x = gf.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        Double_.apply(x)
    assert x.is_leaf
    # a non-leaf may be marked dirty (PyTorch too)
    h = gf.tensor([1.0, 2.0], requires_grad=True) * 1
    y = Double_.apply(h)
    y.sum().backward()


def test_inplace_on_a_view_of_a_graph_tensor_raises_instead_of_losing_the_write():
    """``y[:2].relu_()`` on a graph tensor: rebinding the view would leave ``y``
    unchanged (a silently wrong value); it raises, naming the view op. In-place ops on
    non-view graph tensors (conv -> ReLU(inplace=True)) keep working."""
    x = gf.tensor([-1.0, 2.0, 3.0], requires_grad=True)
    y = x * 1
    with pytest.raises(RuntimeError, match=r"relu_: in-place operation on a view \(GetItem\)"):
        y[:2].relu_()
    with pytest.raises(RuntimeError, match="view"):
        y.reshape(3, 1).mul_(2.0)
    np.testing.assert_array_equal(y.numpy(), [-1.0, 2.0, 3.0])   # nothing half-applied
    h = x * 2
    h.relu_()
    h.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 2.0, 2.0])


def test_saved_tensor_rebound_by_a_graph_inplace_op_keeps_the_saved_value():
    """A tensor saved for backward and then updated in place with a graph operand is
    rebound (new array, node and version counter): the node that saved it differentiates
    the value it saw, for a non-leaf and for a constant leaf alike."""
    w = gf.tensor([1.0, 2.0, 3.0], requires_grad=True)
    v = gf.tensor([0.5, -1.0, 2.0], requires_grad=True)
    c = gf.tensor([4.0, 5.0, 6.0])       # a constant leaf
    h = w * 2.0                          # a non-leaf
    y = (c * w).sum() + (h * v).sum()    # Mul saves c (for w) and h (for v)
    c.mul_(v)                            # rebinds c: it joins the graph through v
    h.add_(v)                            # rebinds h
    y.backward()
    np.testing.assert_allclose(w.grad.numpy(), [4.0, 5.0, 6.0] + 2.0 * v.numpy())
    np.testing.assert_allclose(v.grad.numpy(), 2.0 * w.numpy())
    np.testing.assert_allclose(c.numpy(), [2.0, -5.0, 12.0])


def test_saved_tensor_modified_in_place_outside_the_graph_still_raises():
    w = gf.tensor([1.0, 2.0], requires_grad=True)
    c = gf.tensor([3.0, 4.0])
    y = (c * w).sum()
    c.add_(1.0)                          # a plain in-place update: same array, version + 1
    with pytest.raises(RuntimeError, match=r"Mul: a tensor of shape \(2,\) saved for backward "
                                           r"was modified by an in-place operation"):
        y.backward()
