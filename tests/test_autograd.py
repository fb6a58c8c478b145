"""The autograd engine: graph walk, accumulation, retain_graph, grad mode, pruning,
freeing, in-place checks, user Functions, gradcheck and detect_anomaly."""
from __future__ import annotations

import gc
import os
import sys
import weakref

import numpy as np
import pytest

import gradflow as gf
from gradflow.autograd import Function, GradcheckError, detect_anomaly, gradcheck


# ---------------------------------------------------------------------------
# the walk
# ---------------------------------------------------------------------------
def test_deep_chain_no_recursion_error():
    x = gf.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    y = x
    limit = sys.getrecursionlimit()
    for _ in range(20_000):
        y = y * 1.0
    assert 20_000 > limit
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 1.0])


def test_deep_graph_dropped_without_backward():
    """Deallocating a deep unused graph must not overflow the C stack either."""
    x = gf.ones(2, requires_grad=True)
    y = x
    for _ in range(20_000):
        y = y + 1.0
    del y
    gc.collect()


def test_deep_chain_of_user_functions():
    class Double(Function):
        @staticmethod
        def forward(ctx, x):
            return x.array * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    x = gf.tensor(1.0, dtype="float64", requires_grad=True)
    y = x
    for _ in range(10_000):
        y = Double.apply(y) * 0.5  # 20,000 nodes
    y.backward()
    assert x.grad.item() == 1.0


def test_diamond_graph_sums_paths():
    x = gf.tensor(3.0, dtype="float64", requires_grad=True)
    a = x * x          # 2x
    b = x.exp()        # e^x
    y = a * b + a      # d/dx = 2x e^x + x^2 e^x + 2x
    y.backward()
    e = np.exp(3.0)
    assert abs(x.grad.item() - (6 * e + 9 * e + 6)) < 1e-9


def test_same_input_twice():
    x = gf.tensor([1.0, -2.0], requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, -4.0])
    x.grad = None
    (x + x + x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_accumulates_across_backward_calls_until_zeroed():
    w = gf.tensor([1.0, 2.0, 3.0], requires_grad=True)
    for k in range(1, 4):
        (w * w).sum().backward()
        np.testing.assert_allclose(w.grad.numpy(), k * 2 * np.array([1.0, 2.0, 3.0]))
    w.grad.zero_()
    (w * 3).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [3.0, 3.0, 3.0])
    w.grad = None
    w.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [1.0, 1.0, 1.0])


def test_leaf_grad_is_not_aliased():
    """Two leaves fed the same upstream gradient get independent .grad storage."""
    a = gf.ones(3, requires_grad=True)
    b = gf.ones(3, requires_grad=True)
    (a + b).sum().backward()
    a.grad.add_(1.0)
    np.testing.assert_allclose(b.grad.numpy(), [1.0, 1.0, 1.0])


@pytest.mark.parametrize("sa,sb", [((3, 4), (4,)), ((3, 1), (1, 4)), ((2, 3, 4), (3, 1)),
                                   ((1,), (2, 2)), ((), (3,))])
def test_broadcast_grads_summed_back(sa, sb):
    rng = np.random.default_rng(0)
    a0, b0 = rng.standard_normal(sa), rng.standard_normal(sb)
    a = gf.tensor(a0, requires_grad=True)
    b = gf.tensor(b0, requires_grad=True)
    (a * b).sum().backward()
    out_shape = np.broadcast_shapes(sa, sb)
    ga = (np.broadcast_to(b0, out_shape)).sum(axis=tuple(range(len(out_shape) - len(sa))))
    ga = ga.sum(axis=tuple(i for i, s in enumerate(sa) if s == 1), keepdims=True).reshape(sa)
    assert a.grad.shape == sa and b.grad.shape == sb
    np.testing.assert_allclose(a.grad.numpy(), ga, rtol=1e-5)


def test_backward_with_explicit_grad_and_nonscalar_output():
    x = gf.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    y.backward(gf.tensor([1.0, 0.5, 0.0]))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 1.0, 0.0])
    with pytest.raises(RuntimeError, match=r"backward.*one-element.*\(3,\)"):
        (x * 2).backward()
    with pytest.raises(ValueError, match=r"backward: grad has shape \(2,\).*\(3,\)"):
        (x * 2).backward(gf.tensor([1.0, 2.0]))


def test_backward_on_leaf_and_on_non_grad_tensor():
    x = gf.tensor(2.0, requires_grad=True)
    x.backward()
    assert x.grad.item() == 1.0
    with pytest.raises(RuntimeError, match="does not require grad"):
        gf.tensor(2.0).backward()


def test_retain_grad_on_intermediate():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    h = (x * 3).retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), [6.0, 12.0])
    np.testing.assert_allclose(x.grad.numpy(), [18.0, 36.0])
    assert not h.is_leaf and x.is_leaf and h.grad_fn is not None


# ---------------------------------------------------------------------------
# retain_graph and freeing
# ---------------------------------------------------------------------------
def test_retain_graph_allows_second_backward():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])


def test_second_backward_without_retain_graph_raises():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"second time.*retain_graph=True"):
        y.backward()


def test_second_backward_through_shared_subgraph_raises():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    h = x.exp()
    (h * 2).sum().backward()
    with pytest.raises(RuntimeError, match=r"Unary\(exp\).*second time|second time"):
        (h * 3).sum().backward()


def test_saved_arrays_freed_after_backward():
    x = gf.randn(50, 50, dtype="float64", requires_grad=True)
    y = x.exp()
    node_ref = weakref.ref(y.grad_fn)
    saved = y.grad_fn._saved[0].array        # the output array Unary saved for backward
    saved_ref = weakref.ref(saved)
    del saved
    loss = y.sum()
    loss.backward()
    assert y.grad_fn.freed
    del y, loss
    gc.collect()
    assert saved_ref() is None, "the saved array outlived backward"
    assert node_ref() is None, "the graph node outlived its output tensor"


def test_saved_tensors_freed_with_save_for_backward():
    class Sq(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.array * x.array

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 2 * x

    class Big:  # a weak-referenceable marker stored on ctx
        pass

    x = gf.randn(10, requires_grad=True)
    h = x * 1.0
    y = Sq.apply(h)
    marker = Big()
    y.grad_fn.marker = marker
    mref = weakref.ref(marker)
    href = weakref.ref(h)
    del marker, h
    y.sum().backward()
    gc.collect()
    assert mref() is None and href() is None
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy(), rtol=1e-6)


def test_retain_graph_keeps_saved_data():
    x = gf.randn(5, requires_grad=True)
    y = x.exp()
    y.sum().backward(retain_graph=True)
    assert not y.grad_fn.freed and len(y.grad_fn.saved_tensors) == 1  # exp saves its output


def test_graph_dies_with_its_output():
    x = gf.randn(5, requires_grad=True)
    y = (x * 2).exp()
    r = weakref.ref(y.grad_fn)
    del y
    gc.collect()
    assert r() is None


# ---------------------------------------------------------------------------
# grad mode, detach, propagation and pruning
# ---------------------------------------------------------------------------
def test_no_grad():
    x = gf.ones(3, requires_grad=True)
    with gf.no_grad():
        y = x * 2
        assert not gf.is_grad_enabled()
    assert gf.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None

    @gf.no_grad()
    def f(t):
        return t * 3

    assert not f(x).requires_grad
    with gf.no_grad():
        with gf.enable_grad():
            assert (x * 2).requires_grad
    with gf.set_grad_enabled(False):
        assert not (x * 2).requires_grad


def test_grad_modes_as_bare_decorators_and_inference_mode_flag():
    x = gf.ones(3, requires_grad=True)

    @gf.no_grad
    def f(t):
        assert not gf.is_grad_enabled()
        return t * 3

    @gf.enable_grad
    def g(t):
        return t * 3

    @gf.inference_mode
    def h(t):
        return t * 3

    assert not f(x).requires_grad and gf.is_grad_enabled()
    with gf.no_grad():
        assert g(x).requires_grad
        assert not gf.is_grad_enabled()
    assert not h(x).requires_grad
    with gf.inference_mode(False):
        assert (x * 2).requires_grad
    with gf.inference_mode():
        assert not (x * 2).requires_grad
    assert f.__name__ == "f"
    with pytest.raises(TypeError, match="no_grad"):
        gf.no_grad(3)


def test_detach():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None
    assert np.shares_memory(d.array, y.array)
    z = (d * x).sum()
    z.backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])  # d treated as constant


def test_requires_grad_propagation():
    a = gf.ones(2)
    b = gf.ones(2, requires_grad=True)
    assert not (a * 2).requires_grad
    c = a * b
    assert c.requires_grad and not c.is_leaf
    assert (c.sum() + a.sum()).requires_grad
    with pytest.raises(RuntimeError, match="only floating-point"):
        gf.tensor([1, 2]).requires_grad_()


class Exploding(Function):
    """A primitive whose backward must never run."""
    calls = 0

    @staticmethod
    def forward(ctx, x):
        return x.array + 1

    @staticmethod
    def backward(ctx, g):
        raise AssertionError("backward of a branch that needs no gradient was visited")


def test_branch_without_grad_is_pruned():
    x = gf.ones(3, requires_grad=True)
    c = gf.ones(3)
    side = Exploding.apply(c)          # no input requires grad: no node is recorded
    assert side.grad_fn is None and not side.requires_grad
    (x * side).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0, 2.0])


def test_needs_input_grad_and_unneeded_parent_skipped():
    seen = {}

    class Mix(Function):
        @staticmethod
        def forward(ctx, a, b, k):
            seen["needs"] = ctx.needs_input_grad
            ctx.save_for_backward(a, b)
            return a.array * b.array * k

        @staticmethod
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            return (g * b * 2.0 if ctx.needs_input_grad[0] else None,
                    g * a * 2.0 if ctx.needs_input_grad[1] else None, None)

    a = gf.tensor([1.0, 2.0], requires_grad=True)
    b = gf.tensor([3.0, 4.0])
    y = Mix.apply(a, b, 2.0)
    assert seen["needs"] == (True, False, False)
    y.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [6.0, 8.0])
    assert b.grad is None
    # a branch through Exploding is reached only via a tensor that needs no grad
    e = Exploding.apply(b)
    (Mix.apply(a, e, 1.0)).sum().backward()


def test_user_function_returns_tensor_and_array_mixed():
    class AddMul(Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return gf.Tensor._make(a.array + b.array * 2, a.backend)

        @staticmethod
        def backward(ctx, g):
            return g.array, g * 2  # an array and a Tensor

    a = gf.tensor([1.0], dtype="float64", requires_grad=True)
    b = gf.tensor([1.0, 2.0, 3.0], dtype="float64", requires_grad=True)
    y = AddMul.apply(a, b)       # broadcast: a's grad is summed back by the engine
    y.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [3.0])
    np.testing.assert_allclose(b.grad.numpy(), [2.0, 2.0, 2.0])
    assert gradcheck(AddMul.apply, (a, b))


def test_user_function_backward_returning_python_number_is_an_error():
    class Bad(Function):
        @staticmethod
        def forward(ctx, x):
            return x.array * 1

        @staticmethod
        def backward(ctx, g):
            return 1.0

    x = gf.ones(2, requires_grad=True)
    with pytest.raises(TypeError, match=r"Bad\.backward returned a Python number"):
        Bad.apply(x).sum().backward()


# ---------------------------------------------------------------------------
# in-place safety
# ---------------------------------------------------------------------------
def test_inplace_on_leaf_requiring_grad_raises():
    w = gf.ones(3, requires_grad=True)
    for op in (lambda: w.add_(1.0), lambda: w.mul_(2.0), lambda: w.zero_(), lambda: w.copy_(gf.ones(3)),
               lambda: w.__setitem__(0, 5.0), lambda: w.sub_(1.0), lambda: w.fill_(1.0)):
        with pytest.raises(RuntimeError, match=r"in-place operation on a leaf tensor that requires grad"):
            op()
    with gf.no_grad():
        w.add_(1.0)                         # allowed outside the graph
    w.data.mul_(2.0)                        # and through .data
    np.testing.assert_allclose(w.numpy(), [4.0, 4.0, 4.0])


def test_inplace_on_graph_tensor_is_recorded_and_on_a_leaf_raises():
    """As PyTorch: an in-place op on a non-leaf joins the graph (``h.relu_()`` after a
    conv); on a leaf that requires grad it raises."""
    x = gf.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = x * 2
    y.add_(1.0).mul_(y)            # y = (2x + 1)^2
    np.testing.assert_allclose(y.numpy(), (2 * x.numpy() + 1) ** 2)
    y.relu_().sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * (2 * x.numpy() + 1))
    with pytest.raises(RuntimeError, match=r"add_"):
        x.add_(1.0)


def test_modified_saved_tensor_raises_at_backward():
    class Mul2(Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a.array * b.array

        @staticmethod
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            return g * b, g * a

    x = gf.ones(3, requires_grad=True)
    c = gf.full((3,), 2.0)
    y = Mul2.apply(x, c)
    c.add_(1.0)  # c needs no grad: the update itself is allowed...
    with pytest.raises(RuntimeError, match=r"Mul2: a tensor of shape \(3,\) saved for backward was "
                                           r"modified by an in-place operation"):
        y.sum().backward()  # ...but Mul2 saved it: its backward would use the new values
    # a saved leaf updated under no_grad, and a saved tensor updated through a view / detach
    y = Mul2.apply(x, x)
    with gf.no_grad():
        x.mul_(2.0)
    with pytest.raises(RuntimeError, match=r"modified by an in-place operation"):
        y.sum().backward()
    c = gf.full((2, 3), 2.0)
    y = Mul2.apply(x, c[1])
    c.detach()[1].zero_()
    with pytest.raises(RuntimeError, match=r"modified by an in-place operation"):
        y.sum().backward()


def test_modified_input_of_library_op_raises_at_backward():
    """Library primitives keep input arrays on ctx; modifying one in place before
    backward must raise instead of silently giving a wrong gradient."""
    w = gf.ones(3, requires_grad=True)
    c = gf.tensor([1.0, 2.0, 3.0])
    y = (w * c).sum()
    c.mul_(10.0)
    with pytest.raises(RuntimeError, match=r"modified by an in-place operation"):
        y.backward()
    # through .data too (it shares the version counter)
    p = gf.tensor([1.0, 2.0], requires_grad=True)
    y = (p * p).sum()
    p.data.add_(1.0)
    with pytest.raises(RuntimeError, match=r"modified by an in-place operation"):
        y.backward()


def test_inplace_on_unsaved_input_is_fine():
    w = gf.ones(3, requires_grad=True)
    c = gf.tensor([1.0, 2.0, 3.0])
    y = (w + c).sum()  # Add saves nothing
    c.mul_(10.0)
    y.backward()
    np.testing.assert_allclose(w.grad.numpy(), [1.0, 1.0, 1.0])


def test_iadd_on_requires_grad_is_out_of_place():
    x = gf.ones(2, requires_grad=True)
    y = x * 1.0
    y2 = y
    y += 1.0
    assert y is not y2
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 1.0])


# ---------------------------------------------------------------------------
# gradcheck itself
# ---------------------------------------------------------------------------
class WrongSquare(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.array * x.array

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3 * x  # wrong: should be 2x


class WrongBroadcast(Function):
    """Right formula for most elements, off by a sign in one place."""

    @staticmethod
    def forward(ctx, x):
        return x.array.sum(axis=1)

    @staticmethod
    def backward(ctx, g):
        be = g.backend
        out = be.broadcast_to(be.reshape(g.array, (-1, 1)), ctx.input_shapes[0]).copy()
        out[0, 0] *= -1
        return out


@pytest.mark.parametrize("mode", ["full", "random"])
def test_gradcheck_catches_wrong_backward(mode):
    x = gf.randn(3, 4, dtype="float64", requires_grad=True)
    with pytest.raises(GradcheckError, match=r"gradcheck: wrong gradient for input 0"):
        gradcheck(WrongSquare.apply, (x,), mode=mode)
    assert gradcheck(WrongSquare.apply, (x,), mode=mode, raise_exception=False) is False


@pytest.mark.parametrize("mode", ["full", "random"])
def test_gradcheck_catches_single_wrong_element(mode):
    x = gf.randn(3, 4, dtype="float64", requires_grad=True)
    with pytest.raises(GradcheckError, match=r"input 0"):
        gradcheck(WrongBroadcast.apply, (x,), mode=mode, n_directions=8)


def test_gradcheck_passes_right_backward_and_names_bad_input():
    a = gf.randn(3, dtype="float64", requires_grad=True)
    b = gf.randn(3, dtype="float64", requires_grad=True)
    assert gradcheck(lambda a, b: a * b.exp(), (a, b))
    with pytest.raises(GradcheckError, match=r"input 1 \(shape \(3,\)\) at index"):
        gradcheck(lambda a, b: a + WrongSquare.apply(b), (a, b))
    with pytest.raises(ValueError, match="no floating-point input has requires_grad"):
        gradcheck(lambda a: a * 2, (gf.randn(3),))
    with pytest.raises(ValueError, match="mode must be"):
        gradcheck(lambda a: a * 2, (a,), mode="fast")


def test_gradcheck_default_tolerances():
    import inspect
    sig = inspect.signature(gradcheck)
    assert sig.parameters["eps"].default == 1e-6
    assert sig.parameters["atol"].default == 1e-5
    assert sig.parameters["rtol"].default == 1e-3


# ---------------------------------------------------------------------------
# detect_anomaly
# ---------------------------------------------------------------------------
def test_detect_anomaly_names_op_and_user_line_forward():
    x = gf.tensor([1.0, -1.0], requires_grad=True)
    with detect_anomaly():
        with pytest.raises(gf.autograd.AnomalyError) as ei:
            line = sys._getframe().f_lineno + 1
            x.log()
    msg = str(ei.value)
    assert "log" in msg and "NaN" in msg
    assert f"{os.path.basename(__file__)}:{line}" in msg


def test_detect_anomaly_names_op_and_user_line_backward():
    x = gf.tensor([0.0, 4.0], requires_grad=True)
    with detect_anomaly(check_inf=True):
        line = sys._getframe().f_lineno + 1
        y = x.sqrt()  # d sqrt(x)/dx at 0 is inf
        with pytest.raises(gf.autograd.AnomalyError) as ei:
            y.sum().backward()
    msg = str(ei.value)
    assert "sqrt" in msg and "gradient" in msg
    assert f"{os.path.basename(__file__)}:{line}" in msg


def test_without_detect_anomaly_no_check():
    x = gf.tensor([0.0, 4.0], requires_grad=True)
    with np.errstate(divide="ignore"):
        x.sqrt().sum().backward()
    assert np.isinf(x.grad.numpy()[0])


def test_gradcheck_converts_float32_side_inputs():
    """Non-differentiated float32 inputs (class weights, running stats) are converted
    to float64 alongside the checked ones instead of clashing with them."""
    import gradflow.nn.functional as F
    x = gf.randn(4, 3, requires_grad=True)
    w = gf.tensor([1.0, 2.0, 0.5])
    t = gf.tensor([0, 2, 1, 1])
    assert gradcheck(lambda x, w: F.cross_entropy(x, t, weight=w), (x, w))
    rm, rv = gf.zeros(3), gf.ones(3)
    assert gradcheck(lambda x, rm, rv: F.batch_norm(x, rm, rv, training=True), (x, rm, rv))
    assert rm.tolist() == [0.0, 0.0, 0.0]  # the caller's running stats are untouched


def test_grad_mode_is_thread_local():
    import threading
    x = gf.ones(2, requires_grad=True)
    seen = {}

    def worker():
        seen["other"] = (x * 2).requires_grad

    with gf.no_grad():
        th = threading.Thread(target=worker)
        th.start()
        th.join()
        assert not (x * 2).requires_grad
    assert seen["other"] is True


def test_two_outputs_of_shared_subgraph_with_retain_graph():
    x = gf.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    h = x.exp()
    a, b = (h * 2).sum(), (h * h).sum()
    a.backward(retain_graph=True)
    b.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp([1.0, 2.0]) + 2 * np.exp([2.0, 4.0]))


def test_output_through_non_differentiable_ops_gets_no_grad():
    x = gf.tensor([3.0, 1.0, 2.0], requires_grad=True)
    idx = x.argmax()
    assert not idx.requires_grad
    y = x[idx] * 2 + (x > 1).float().sum()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 0.0, 0.0])


def test_detect_anomaly_as_decorator_and_nested():
    x = gf.tensor([-1.0], requires_grad=True)

    @detect_anomaly()
    def f(t):
        return t.log()

    with pytest.raises(gf.autograd.AnomalyError, match=r"log"):
        f(x)
    with detect_anomaly():
        with detect_anomaly(False):
            with np.errstate(invalid="ignore"):
                assert np.isnan(x.log().item())


def test_retained_grad_is_writable_and_explicit_grad_dtype_follows_output():
    x = gf.ones(3, requires_grad=True)
    h = (x * 2).retain_grad()
    h.sum().backward()
    h.grad.zero_()  # the upstream gradient of a sum is a broadcast view: must be copied
    assert h.grad.tolist() == [0.0, 0.0, 0.0]
    y = x * 3
    y.backward(gf.ones(3, dtype="float64"))
    assert x.grad.dtype == gf.float32
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 5.0, 5.0])


def test_setitem_of_tensor_requiring_grad_is_differentiable():
    """The RNN-tutorial pattern ``out[t] = h`` keeps the gradient of ``h``."""
    w = gf.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    out = gf.zeros(3, 2, dtype="float64")
    h = w
    for t in range(3):
        h = h * 2.0
        out[t] = h            # out needs no grad before; afterwards it is in the graph
    assert out.requires_grad and not out.is_leaf
    (out * gf.tensor([[1.0], [10.0], [100.0]], dtype="float64")).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [2 + 40 + 800] * 2)
    # assigning into a graph tensor: the overwritten region gets no gradient
    x = gf.tensor([1.0, 2.0, 3.0], dtype="float64", requires_grad=True)
    y = x * 3
    y[1] = 0.0
    y[gf.tensor([True, False, False])] = x[2:] * 5  # broadcast value, bool mask
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.0, 3.0 + 5.0])
    assert gradcheck(lambda a, b: _assign(a, b), (gf.randn(4, dtype="float64", requires_grad=True),
                                                  gf.randn(2, dtype="float64", requires_grad=True)))


def _assign(a, b):
    y = a * 1.0
    y[1:3] = b * b
    return y.exp()


def test_setitem_errors_and_saved_output_guard():
    p = gf.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"__setitem__: in-place operation on a leaf tensor that requires grad"):
        p[0] = gf.ones(1, requires_grad=True)
    with pytest.raises(TypeError, match=r"__setitem__: assigning a tensor that requires grad into a int64"):
        gf.zeros(3, dtype="int64")[0] = p[0]
    y = p.exp()                      # Unary saves its output...
    y[0] = 5.0                       # ...which this overwrites
    with pytest.raises(RuntimeError, match=r"modified by an in-place operation"):
        y.sum().backward()
    with gf.no_grad():
        z = gf.zeros(2)
        z[0] = p[0]                  # outside the graph: a plain copy
    assert not z.requires_grad and z.tolist() == [1.0, 0.0]


def _table():
    from test_ops_gradcheck import CASES
    return CASES


@pytest.mark.parametrize("case", _table(), ids=lambda c: c.id)
def test_retain_graph_twice_doubles_grads(case, backend):
    """No backward mutates what it saved: a second pass over a retained graph gives the
    same gradients again (every op of the table, every backend)."""
    from test_ops_gradcheck import GL, gf_inputs, outputs
    xs = gf_inputs(case, case.arrays())
    outs = outputs(case.fn(GL, *xs))
    total = sum((o * o).sum() for o in outs if o.requires_grad)
    total.backward(retain_graph=True)
    first = [None if x.grad is None else x.grad.numpy().copy() for x in xs]
    total.backward()
    for x, g in zip(xs, first):
        if g is not None:
            np.testing.assert_allclose(x.grad.numpy(), 2 * g, rtol=1e-12, atol=1e-12, err_msg=case.id)


def test_backward_torch_keywords_and_under_no_grad():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).backward(gradient=gf.tensor([1.0, 1.0]))
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])
    (x * 3).sum().backward(create_graph=True)  # accepted (higher-order gradients)
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])
    x.grad = None
    y = (x * x).sum()
    with gf.no_grad():          # allowed, as PyTorch: the graph was recorded before
        y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])
    assert gf.is_grad_enabled()  # restored after the block


def test_function_output_types():
    """A tuple of outputs is supported (PyTorch: backward gets one gradient per output);
    anything that is not a Tensor/array (or a tuple of them) is refused."""
    class Two(Function):
        @staticmethod
        def forward(ctx, x):
            return x.array, x.array * 2

        @staticmethod
        def backward(ctx, g1, g2):
            return g1 + 2 * g2

    x = gf.ones(2, requires_grad=True)
    a, b = Two.apply(x)
    (a + b).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])

    class Num(Function):
        @staticmethod
        def forward(ctx, x):
            return 3.0

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(TypeError, match=r"Num\.forward returned float; it must return a Tensor"):
        Num.apply(gf.ones(2, requires_grad=True))


def _multi_input_cases():
    from test_ops_gradcheck import CASES
    out = []
    for c in CASES:
        arrs = c.arrays()
        diff = [i for i, a in enumerate(arrs) if c.diff(i, a)]
        if len(diff) >= 2:
            out.extend(pytest.param(c, i, id=f"{c.id}-only{i}") for i in diff)
    return out


@pytest.mark.parametrize("case,only", _multi_input_cases())
def test_needs_input_grad_subsets_give_same_gradient(case, only):
    """With only input ``only`` requiring grad, its gradient is unchanged and the others
    get none: every primitive's needs_input_grad branches agree with the full pass."""
    from test_ops_gradcheck import GL, gf_inputs, outputs
    arrays = case.arrays()

    def run(mask):
        xs = gf_inputs(case, arrays)
        for i, x in enumerate(xs):
            if x.requires_grad and not mask(i):
                x.requires_grad = False
        outs = outputs(case.fn(GL, *xs))
        rng = np.random.default_rng(4)
        total = sum((o * gf.tensor(rng.standard_normal(o.shape), dtype=o.dtype)).sum()
                    for o in outs if o.requires_grad)
        total.backward()
        return xs

    full = run(lambda i: True)
    part = run(lambda i: i == only)
    np.testing.assert_allclose(part[only].grad.numpy(), full[only].grad.numpy(), rtol=1e-12, atol=1e-14)
    assert all(x.grad is None for i, x in enumerate(part) if i != only)
