"""Helpers for tests that compare gradflow with PyTorch on the same values (imported by
the test files as ``from torch_pairs import ...``; torch is imported only when called)."""
from __future__ import annotations

import numpy as np

import gradflow as gf

from conftest import tols


def as_numpy(t):
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def pair(arr, dtype, requires_grad=True):
    """The same values as a gradflow and a torch tensor."""
    import torch
    a = np.asarray(arr, dtype=dtype)
    return (gf.tensor(a, requires_grad=requires_grad),
            torch.tensor(a, requires_grad=requires_grad))


def check_fwd_bwd(fn_gf, fn_t, arr, dtype, seed=1):
    """fn(x) and d<u, fn(x)>/dx agree with torch for a random ``u``; returns gradflow's y."""
    import torch
    x, xt = pair(arr, dtype)
    y, yt = fn_gf(x), fn_t(xt)
    np.testing.assert_allclose(as_numpy(y), as_numpy(yt), **tols(dtype))
    u = np.random.default_rng(seed).standard_normal(yt.shape).astype(dtype)
    y.backward(gf.tensor(u))
    yt.backward(torch.tensor(u))
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), **tols(dtype))
    return y
