"""A Function that saves its own output (``ctx.save_for_backward(result)``): the output
and its node are freed by reference counting alone (no cycle for the garbage collector),
the gradients are right, and modifying the saved output in place is still caught."""
from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import gradflow as gf


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
