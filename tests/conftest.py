"""Shared fixtures: the backend-parametrised suite and the CUDA marker.

Every test that takes the ``backend`` fixture runs once per registered backend;
backends that cannot run here (numba not installed, no GPU) skip with the reason.
Tests that need CUDA outside that fixture use ``@requires_cuda``."""
from __future__ import annotations

import numpy as np
import pytest

import gradflow
from gradflow.backends import registered_backends, unavailable_reason

try:
    import torch  # noqa: F401
    HAVE_TORCH = True
except ImportError:  # PyTorch is optional: comparisons skip cleanly
    HAVE_TORCH = False

requires_torch = pytest.mark.skipif(not HAVE_TORCH, reason="PyTorch is not installed")
_cuda_reason = unavailable_reason("cupy")
requires_cuda = pytest.mark.skipif(_cuda_reason is not None,
                                   reason=f"CUDA backend unavailable: {_cuda_reason}")


def backend_params(names=None):
    """pytest params for ``names`` (default: every registered backend); the ones that
    cannot run here are skipped with the reason."""
    params = []
    for name in (registered_backends() if names is None else names):
        reason = unavailable_reason(name)
        marks = [pytest.mark.skip(reason=f"backend {name} unavailable: {reason}")] if reason else []
        if name == "cupy":
            marks.append(pytest.mark.requires_cuda)
        params.append(pytest.param(name, marks=marks, id=name))
    return params


@pytest.fixture(params=backend_params())
def backend(request):
    """The name of a backend; new tensors in the test are created on it."""
    with gradflow.backend(request.param):
        yield request.param


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    return np.dtype(request.param)


def tols(dtype):
    """Cross-backend comparison tolerances (DESIGN: float32 1e-4/1e-5, float64 1e-10)."""
    return dict(rtol=1e-4, atol=1e-5) if np.dtype(dtype) == np.float32 else dict(rtol=1e-10, atol=1e-10)


@pytest.fixture(autouse=True)
def _seed():
    gradflow.manual_seed(0)
    np.random.seed(0)
    yield
