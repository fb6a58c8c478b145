"""Reliability: ``gradflow.autograd.detect_anomaly()``.

Inside the block, the first op whose forward output or backward gradient holds
NaN raises :class:`AnomalyError` naming the op, its input shapes and the user's
``file:line`` where the op was created; Inf only with ``check_inf=True`` (PyTorch's
rule: ``-inf`` attention masks are normal). Outside it, nothing is checked."""
from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow.autograd import AnomalyError, Function, detect_anomaly, is_anomaly_enabled

THIS_FILE = __file__


def _here(offset=1):
    """``file:line`` of the caller's line + offset, as the anomaly message writes it."""
    return f"{THIS_FILE}:{sys._getframe(1).f_lineno + offset}"


def test_forward_nan_names_op_shapes_and_user_line():
    x = gf.tensor([[1.0, -1.0, 2.0]], requires_grad=True)
    with detect_anomaly():
        with pytest.raises(AnomalyError) as err:
            where = _here()
            x.log()
    msg = str(err.value)
    assert "log" in msg and "forward output" in msg and "NaN" in msg
    assert "(1, 3)" in msg
    assert where in msg, msg


def test_forward_inf_is_caught_with_check_inf():
    a = gf.tensor([1.0, 2.0])
    b = gf.tensor([0.0, 1.0])
    with detect_anomaly(check_inf=True), pytest.raises(AnomalyError, match=r"Div.*Inf.*\(2,\)"):
        a / b


def test_inf_alone_is_not_an_anomaly_by_default():
    a = gf.tensor([1.0, 2.0], requires_grad=True)
    with detect_anomaly():
        y = a + gf.tensor([float("-inf"), 0.0])  # -inf in the forward output (a mask)
        y.exp().sum().backward()                 # exp(-inf) = 0: finite gradient
    assert np.isneginf(y.numpy()[0])
    np.testing.assert_allclose(a.grad.numpy(), [0.0, np.exp(2.0)], rtol=1e-6)


def test_check_nan_false_lets_nan_through_but_check_inf_still_flags():
    with detect_anomaly(check_nan=False):
        y = gf.tensor([-1.0]).log()
    assert np.isnan(y.numpy()).all()
    with detect_anomaly(check_nan=False, check_inf=True):
        gf.tensor([-1.0]).log()                  # NaN only: passes
        with pytest.raises(AnomalyError, match=r"Inf"):
            gf.tensor([0.0, -1.0]).log()         # -inf and NaN: the Inf is reported


def test_nested_blocks_restore_the_check_flags():
    with detect_anomaly(check_inf=True):
        with detect_anomaly():
            gf.tensor([0.0]).log()               # -inf: not flagged in the inner block
        with pytest.raises(AnomalyError):
            gf.tensor([0.0]).log()               # the outer block's check_inf is back
    assert not is_anomaly_enabled()


def test_set_detect_anomaly_takes_the_flags_too():
    with gf.autograd.set_detect_anomaly(True, check_nan=True):
        assert is_anomaly_enabled() and gf.autograd.is_anomaly_check_nan_enabled()
        with pytest.raises(AnomalyError):
            gf.tensor([-1.0]).sqrt()


def _attention_runs(backend_name=None):
    """A causal self-attention step: -inf masks in masked_fill, MultiheadAttention and
    scaled_dot_product_attention; returns the gradients."""
    nn = pytest.importorskip("gradflow.nn")
    gf.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    x = gf.randn(2, 5, 8, requires_grad=True)
    causal = gf.ones(5, 5, dtype=bool).triu(1)
    out, _ = mha(x, x, x, attn_mask=causal)
    q = x.reshape(2, 5, 2, 4).transpose(1, 2)
    out2 = F.scaled_dot_product_attention(q, q, q, is_causal=True)
    scores = (x @ x.transpose(1, 2)).masked_fill(causal, float("-inf")).softmax(-1)
    (out.sum() + out2.sum() + (scores @ x).sum()).backward()
    return [x.grad.numpy()] + [p.grad.numpy() for p in mha.parameters()]


def test_attention_masks_with_minus_inf_run_under_detect_anomaly():
    ref = _attention_runs()
    with detect_anomaly():
        got = _attention_runs()
    for r, g in zip(ref, got):
        assert np.isfinite(g).all()
        np.testing.assert_array_equal(r, g)
    with detect_anomaly(check_inf=True), pytest.raises(AnomalyError, match="Inf"):
        _attention_runs()


def test_fully_masked_attention_row_is_still_caught():
    """A row with every key masked is NaN after softmax: a real anomaly."""
    x = gf.randn(1, 3, 4)
    every_key = gf.ones(3, 3, dtype=bool)
    with detect_anomaly(), pytest.raises(AnomalyError, match="NaN"):
        (x @ x.transpose(1, 2)).masked_fill(every_key, float("-inf")).softmax(-1)


def test_first_anomalous_op_is_the_one_reported():
    x = gf.tensor([-1.0, 4.0], requires_grad=True)
    with detect_anomaly(), pytest.raises(AnomalyError) as err:
        y = x * 2.0          # fine
        where = _here()
        z = y.sqrt()         # first NaN here
        z.log()              # would also be NaN: never reached
    assert "sqrt" in str(err.value) and "log" not in str(err.value).split("created")[0]
    assert where in str(err.value)


def test_backward_inf_names_op_and_creation_line_not_backward_line():
    x = gf.tensor([0.0, 1.0, 4.0], requires_grad=True)
    with detect_anomaly(check_inf=True):
        where = _here()
        y = x.sqrt().sum()     # forward is finite; d sqrt / dx at 0 is Inf
        with pytest.raises(AnomalyError) as err:
            y.backward()
    msg = str(err.value)
    assert "sqrt" in msg and "gradient" in msg and "(3,)" in msg
    assert where in msg, msg


def test_backward_anomaly_in_user_function_and_conv_shapes():
    class BadGrad(Function):
        @staticmethod
        def forward(ctx, x):
            return x.array * 1.0

        @staticmethod
        def backward(ctx, gy):
            return gy * float("nan")

    x = gf.randn(2, 3, 8, 8, requires_grad=True)
    w = gf.randn(4, 3, 3, 3, requires_grad=True)
    with detect_anomaly():
        h = F.conv2d(x, w, padding=1)
        where = _here()
        out = BadGrad.apply(h)
        loss = out.sum()
        with pytest.raises(AnomalyError) as err:
            loss.backward()
    msg = str(err.value)
    assert "BadGrad" in msg and "(2, 4, 8, 8)" in msg and where in msg, msg
    # the walk stopped at BadGrad: nothing reached the leaves
    assert x.grad is None and w.grad is None


def test_conv_forward_nan_names_both_input_shapes():
    x = gf.randn(1, 2, 5, 5)
    w = gf.randn(3, 2, 3, 3)
    w.array[0, 0, 0, 0] = np.nan
    with detect_anomaly(), pytest.raises(AnomalyError) as err:
        F.conv2d(x, w)
    msg = str(err.value)
    assert "Conv2d" in msg and "(1, 2, 5, 5)" in msg and "(3, 2, 3, 3)" in msg


def test_user_frame_through_helper_functions():
    def model(t):
        return (t - 10.0).log()      # the op is created here, inside the user's helper

    line = model.__code__.co_firstlineno + 1
    with detect_anomaly(), pytest.raises(AnomalyError) as err:
        model(gf.ones(3))
    assert f"{THIS_FILE}:{line} in model" in str(err.value)


def test_backward_of_graph_built_outside_the_block_says_so():
    x = gf.tensor([0.0, 1.0], requires_grad=True)
    y = x.sqrt().sum()
    with detect_anomaly(check_inf=True), pytest.raises(AnomalyError,
                                                      match="outside detect_anomaly"):
        y.backward()


def test_backward_inf_gradient_is_not_flagged_by_default_nan_is():
    x = gf.tensor([0.0, 1.0], requires_grad=True)
    with detect_anomaly():
        x.sqrt().sum().backward()              # d sqrt / dx at 0 = inf: allowed
    assert np.isinf(x.grad.numpy()[0])
    x.grad = None
    with detect_anomaly():
        y = (x.sqrt() * 0.0).sum()             # 0 * inf = NaN in the gradient
        with pytest.raises(AnomalyError, match="NaN.*gradient"):
            y.backward()


def test_clean_graph_same_gradients_and_no_error():
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((4, 1, 6, 6)).astype(np.float32)
    ws = rng.standard_normal((2, 1, 3, 3)).astype(np.float32)
    tgt = gf.tensor([0, 1, 1, 0])

    def run():
        x = gf.tensor(xs, requires_grad=True)
        w = gf.tensor(ws, requires_grad=True)
        h = F.max_pool2d(F.conv2d(x, w).relu(), 2)
        loss = F.cross_entropy(h.reshape(4, -1)[:, :2], tgt)
        loss.backward()
        return x.grad.numpy(), w.grad.numpy()

    ref = run()
    with detect_anomaly():
        got = run()
    for r, g in zip(ref, got):
        np.testing.assert_array_equal(r, g)


def test_outside_the_block_nothing_is_checked():
    assert not is_anomaly_enabled()
    with np.errstate(all="ignore"):
        y = gf.tensor([-1.0]).log()
    assert np.isnan(y.numpy()).all()


def test_state_restored_after_error_nesting_and_decorator():
    with pytest.raises(AnomalyError):
        with detect_anomaly():
            gf.tensor([-1.0]).log()
    assert not is_anomaly_enabled()
    with detect_anomaly():
        with detect_anomaly(False):
            assert not is_anomaly_enabled()
        assert is_anomaly_enabled()
    assert not is_anomaly_enabled()

    @detect_anomaly()
    def f():
        return gf.tensor([-2.0]).sqrt()

    with pytest.raises(AnomalyError):
        f()
    assert not is_anomaly_enabled()


def test_anomaly_mode_is_thread_local():
    seen = []
    with detect_anomaly():
        t = threading.Thread(target=lambda: seen.append(is_anomaly_enabled()))
        t.start()
        t.join()
    assert seen == [False]


def test_integer_ops_are_not_flagged():
    with detect_anomaly():
        a = gf.tensor([1, 2, 3]) + gf.tensor([4, 5, 6])
    assert a.tolist() == [5, 7, 9]


def test_nan_inside_a_module_points_at_the_users_call_line():
    nn = pytest.importorskip("gradflow.nn")
    if not hasattr(nn, "Linear"):
        pytest.skip("gradflow.nn.Linear has not landed")
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    with gf.no_grad():
        model[2].weight.data.fill_(float("inf"))
    x = gf.randn(5, 4)
    with detect_anomaly(check_inf=True), pytest.raises(AnomalyError) as err:
        where = _here()
        model(x)
    msg = str(err.value)
    # the first non-finite op is the second Linear (inf * finite, or inf - inf), with its
    # (5, 3) input and (2, 3) weight; the frame is the user's model(x) line, not gradflow's
    assert "(5, 3)" in msg and where in msg, msg
    assert "gradflow/nn" not in msg.split("created at")[-1]


@pytest.mark.parametrize("op", ["relu", "max_pool2d", "avg_pool2d", "conv2d", "cross_entropy",
                                "log_softmax", "linear"])
def test_nan_propagates_and_is_caught_on_every_backend(backend, op):
    """A NaN entering a primitive must come out as NaN on every backend (fast kernels
    must not drop it, e.g. max-pool comparisons or fastmath), so detect_anomaly sees it."""
    x = gf.randn(2, 3, 6, 6)
    x.array[1, 2, 3, 3] = np.nan
    w = gf.randn(4, 3, 3, 3)
    fns = {"relu": lambda: x.relu(),
           "max_pool2d": lambda: F.max_pool2d(x, 2),
           "avg_pool2d": lambda: F.avg_pool2d(x, 2),
           "conv2d": lambda: F.conv2d(x, w, padding=1),
           "cross_entropy": lambda: F.cross_entropy(x.reshape(2, -1)[:, 88:98],
                                                    gf.tensor([1, 3])),
           "log_softmax": lambda: F.log_softmax(x.reshape(2, -1), dim=1),
           "linear": lambda: F.linear(x.reshape(2, -1), gf.randn(5, 108))}
    with np.errstate(all="ignore"):
        y = fns[op]()
    assert np.isnan(y.numpy()).any(), f"{op} on {backend} dropped a NaN"
    with detect_anomaly(), pytest.raises(AnomalyError, match="NaN"):
        fns[op]()
