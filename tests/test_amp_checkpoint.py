"""The mixed-precision and memory-saving shims: ``autocast`` (also ``cuda.amp`` /
``cpu.amp``) is a no-op context and decorator, ``GradScaler`` follows
``torch.amp.GradScaler`` (enabled on "cpu", disabled with a warning for "cuda" without
CUDA), ``utils.checkpoint.checkpoint`` calls the function with the same values and
gradients."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn as nn

from conftest import requires_torch


def test_autocast_is_a_no_op_context_and_decorator(backend):
    x = gf.randn(3, 4)
    w = gf.randn(4, 2, requires_grad=True)
    ref = (x @ w).numpy()
    for ctx in (gf.autocast("cpu"), gf.autocast("cuda", dtype=gf.float16),
                gf.amp.autocast("cpu", enabled=False), gf.cuda.amp.autocast(),
                gf.cpu.amp.autocast()):
        with ctx as c:
            y = x @ w
            assert not gf.is_autocast_enabled()
        assert c is ctx and y.dtype == gf.float32
        np.testing.assert_array_equal(y.numpy(), ref)

    @gf.autocast(device_type="cpu")
    def f(a):
        """doc"""
        return a @ w

    np.testing.assert_array_equal(f(x).numpy(), ref)
    assert f.__doc__ == "doc"
    f(x).sum().backward()
    assert w.grad.shape == (4, 2)
    with pytest.raises(RuntimeError, match="autocast: unsupported device_type 'gpu0'"):
        gf.autocast("gpu0")
    with pytest.raises(ValueError, match="expected `device_type` of type `str`"):
        gf.autocast(gf.device("cpu"))


def _scaler_run(lib, make_scaler, grads_fn, steps):
    """A few scaler-driven SGD steps; returns the per-step scales and the final weight."""
    w = lib.nn.Parameter(lib.tensor([1.0, -2.0, 3.0]))
    opt = lib.optim.SGD([w], lr=0.1)
    scaler = make_scaler(lib)
    scales, rets = [], []
    for i in range(steps):
        opt.zero_grad()
        loss = (w * w).sum() * grads_fn(i)
        scaler.scale(loss).backward()
        rets.append(scaler.step(opt))
        scaler.update()
        scales.append(scaler.get_scale())
    return scales, w.detach().numpy().copy(), scaler


@requires_torch
def test_grad_scaler_enabled_on_cpu_matches_torch():
    import torch
    inf = float("inf")
    factors = [1.0, inf, 1.0, 1.0, 1.0, float("nan"), 1.0, 1.0]

    def make(lib):
        return lib.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=2)

    s_gf, w_gf, sc = _scaler_run(gf, make, lambda i: factors[i], len(factors))
    s_t, w_t, sc_t = _scaler_run(torch, make, lambda i: factors[i], len(factors))
    assert s_gf == s_t  # backoff on inf/NaN, growth every 2 clean steps
    assert s_gf[1] == 512.0 and s_gf[3] == 1024.0
    np.testing.assert_allclose(w_gf, w_t, rtol=1e-6)  # inf/NaN steps skipped
    assert np.isfinite(w_gf).all()
    assert sc.state_dict() == sc_t.state_dict()
    assert sc.is_enabled() and sc_t.is_enabled()
    # scale() multiplies, unscale_() divides the gradients in place
    w = nn.Parameter(gf.tensor([2.0]))
    opt = gf.optim.SGD([w], lr=0.1)
    s2 = gf.amp.GradScaler("cpu", init_scale=8.0)
    loss = (w * 3.0).sum()
    scaled = s2.scale(loss)
    assert float(scaled) == 48.0 and s2.scale([loss, loss])[1].item() == 48.0
    scaled.backward()
    assert w.grad.item() == 24.0
    s2.unscale_(opt)
    assert w.grad.item() == 3.0
    with pytest.raises(RuntimeError, match="unscale_\\(\\) has already been called"):
        s2.unscale_(opt)
    s2.step(opt)
    with pytest.raises(RuntimeError, match="step\\(\\) has already been called"):
        s2.step(opt)
    assert abs(w.item() - 1.7) < 1e-6
    s2.update()
    with pytest.raises(RuntimeError, match="Closure use is not currently supported"):
        s2.step(opt, closure=lambda: loss)
    # state_dict round trip
    s3 = gf.amp.GradScaler("cpu")
    s3.load_state_dict(sc.state_dict())
    assert s3.get_scale() == sc.get_scale() and s3.state_dict() == sc.state_dict()
    with pytest.raises(RuntimeError, match="source state dict is empty"):
        s3.load_state_dict({})


@requires_torch
def test_grad_scaler_without_cuda_is_disabled_as_torch():
    import torch
    if gf.cuda.is_available():
        pytest.skip("CUDA is available: the cuda scaler is enabled here")
    with pytest.warns(UserWarning, match="CUDA is not available.  Disabling."):
        s = gf.cuda.amp.GradScaler()
    with pytest.warns(UserWarning, match="Disabling"):
        s2 = gf.amp.GradScaler()  # device="cuda" by default
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        st = torch.amp.GradScaler("cuda")
    assert s.is_enabled() is s2.is_enabled() is st.is_enabled() is False
    assert s.get_scale() == st.get_scale() == 1.0
    assert s.state_dict() == st.state_dict() == {}
    loss = gf.tensor(2.5, requires_grad=True) * 2
    assert s.scale(loss) is loss  # unchanged, as torch
    w = nn.Parameter(gf.tensor([1.0]))
    opt = gf.optim.SGD([w], lr=0.5)
    (w * 4.0).sum().backward()
    s.unscale_(opt)  # no-op
    assert w.grad.item() == 4.0
    s.step(opt)  # a plain optimizer.step()
    s.update()
    assert w.item() == -1.0
    s.load_state_dict({})  # ignored when disabled, as torch
    sd = gf.amp.GradScaler(enabled=False)  # explicit: no warning
    assert not sd.is_enabled()


def test_checkpoint_calls_function_with_same_values_and_grads(backend):
    import gradflow.utils.checkpoint as cp
    from gradflow.utils.checkpoint import checkpoint, checkpoint_sequential
    assert cp.checkpoint is gf.utils.checkpoint.checkpoint
    lin = nn.Linear(4, 3)
    x = gf.randn(2, 4, requires_grad=True)

    def block(t, scale=1.0):
        return lin(t).tanh() * scale

    y_ref = block(x, scale=2.0)
    y_ref.sum().backward()
    gx, gw = x.grad.numpy().copy(), lin.weight.grad.numpy().copy()
    x.grad = None
    lin.zero_grad()
    for reentrant in (False, True):
        y = checkpoint(block, x, use_reentrant=reentrant, scale=2.0)
        np.testing.assert_array_equal(y.numpy(), y_ref.numpy())
        y.sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), gx)
        np.testing.assert_array_equal(lin.weight.grad.numpy(), gw)
        x.grad = None
        lin.zero_grad()
    seq = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    np.testing.assert_array_equal(checkpoint_sequential(seq, 2, x, use_reentrant=False).numpy(),
                                  seq(x).numpy())
    with pytest.raises(TypeError, match="checkpoint: function must be callable"):
        checkpoint(3, x)
