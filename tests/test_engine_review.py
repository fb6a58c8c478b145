"""Regressions from a review of the engine's multi-output Functions, tensor hooks and
in-place ops on graph tensors (expected values are PyTorch's, written out)."""
from __future__ import annotations

import gc
import weakref

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


# -- a Function saving its own output frees by reference counting ---------------------------
class _ExpSaveOut(gf.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        r = x.exp()
        ctx.save_for_backward(r)
        return r

    @staticmethod
    def backward(ctx, g):
        (r,) = ctx.saved_tensors
        return g * r


class _TwoSaveOut(gf.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        a, b = x * 2, x.exp()
        ctx.save_for_backward(a, b)
        return a, b

    @staticmethod
    def backward(ctx, ga, gb):
        _, b = ctx.saved_tensors
        return ga * 2 + gb * b


@pytest.mark.parametrize("fn", [_ExpSaveOut, _TwoSaveOut])
def test_function_saving_its_output_is_freed_without_gc(fn):
    gc.collect()
    gc.disable()
    try:
        x = gf.tensor([0.5, 1.0], requires_grad=True)
        out = fn.apply(x)
        outs = out if isinstance(out, tuple) else (out,)
        refs = [weakref.ref(o) for o in outs] + [weakref.ref(o.grad_fn) for o in outs]
        del out, outs
        assert all(r() is None for r in refs)
    finally:
        gc.enable()
    # gradients and the in-place check on the saved output are unchanged
    x = gf.tensor([0.5, 1.0], dtype=gf.float64, requires_grad=True)
    out = fn.apply(x)
    loss = out.sum() if not isinstance(out, tuple) else out[0].sum() + out[1].sum()
    loss.backward()
    want = np.exp([0.5, 1.0]) + (2.0 if isinstance(out, tuple) else 0.0)
    np.testing.assert_allclose(x.grad.numpy(), want)
    # modifying the saved output in place is still caught
    x.grad = None
    out = fn.apply(x)
    o = out if not isinstance(out, tuple) else out[1]
    with gf.no_grad():
        o.mul_(2)
    loss = o.sum() if not isinstance(out, tuple) else out[0].sum() + o.sum()
    with pytest.raises(RuntimeError, match="in-place"):
        loss.backward()


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
