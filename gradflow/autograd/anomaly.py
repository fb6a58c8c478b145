"""Anomaly mode: stop at the first op whose forward output or backward gradient
holds NaN (or, on request, Inf), and say where in the user's code that op was created."""
from __future__ import annotations

import contextlib
import os
import sys

from .grad_mode import _mode


class AnomalyError(RuntimeError):
    """A NaN (or, with ``check_inf=True``, an Inf) appeared in an op's forward output
    or backward gradient under :class:`detect_anomaly`."""


def is_anomaly_enabled() -> bool:
    return _mode.anomaly


def is_anomaly_check_nan_enabled() -> bool:
    return _mode.anomaly_nan


class detect_anomaly(contextlib.ContextDecorator):
    """``with gradflow.autograd.detect_anomaly():`` (or as a decorator) -- raise
    :class:`AnomalyError` at the first op whose forward output or backward gradient
    holds NaN, naming the op, its input shapes and the user's ``file:line`` where the
    op was created (ops recorded outside the block say so instead).

    NaN is the anomaly, as in PyTorch: ``-inf`` attention masks, ``log(0)`` feeding a
    clamp and other deliberate infinities pass. ``check_inf=True`` flags +-Inf as well
    (forward outputs and gradients); ``check_nan=False`` turns the NaN check off and
    keeps only the creation frames (and the Inf check, if asked for).

    Slower: every op checks its result and records its creating stack frame.
    Inside the block the backend's floating-point warnings from gradflow's own
    kernels are silenced: the AnomalyError replaces them. Thread-local and nestable
    (an inner block's flags apply until it exits)."""

    def __init__(self, mode: bool = True, check_nan: bool = True, check_inf: bool = False):
        self.mode = bool(mode)
        self.check_nan = bool(check_nan)
        self.check_inf = bool(check_inf)
        self._prev = []

    def __enter__(self):
        self._prev.append((is_anomaly_enabled(), _mode.anomaly_nan,
                           _mode.anomaly_inf))
        _mode.anomaly = self.mode
        _mode.anomaly_nan = self.check_nan
        _mode.anomaly_inf = self.check_inf
        return self

    def __exit__(self, *exc):
        _mode.anomaly, _mode.anomaly_nan, _mode.anomaly_inf = self._prev.pop()
        return False


set_detect_anomaly = detect_anomaly

_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def user_frame() -> str:
    """The innermost stack frame outside the gradflow package, as 'file:line in fn'."""
    f = sys._getframe(1)
    while f is not None:
        fn = f.f_code.co_filename
        if not os.path.abspath(fn).startswith(_PKG_DIR):
            return f"{fn}:{f.f_lineno} in {f.f_code.co_name}"
        f = f.f_back
    return "<unknown>"


def check_finite(node, arr, what):
    """Raise :class:`AnomalyError` if the backend array ``arr`` (``node``'s forward
    output or a gradient it produced) holds NaN (when the block checks NaN, the
    default) or +-Inf (when it was entered with ``check_inf=True``)."""
    if getattr(arr, "dtype", None) is None or arr.dtype.kind not in "fc":
        return
    check_nan = _mode.anomaly_nan
    check_inf = _mode.anomaly_inf
    if not (check_nan or check_inf):
        return
    be = node.backend
    if bool(be.reduce("all", be.classify("isfinite", arr), None, False)):
        return
    n_nan = int(be.reduce("sum", be.classify("isnan", arr), None, False))
    if check_inf and not check_nan:
        if not bool(be.reduce("any", be.classify("isinf", arr), None, False)):
            return  # only NaN, which this block does not flag
        n_nan = 0
    elif not check_inf and not n_nan:
        return  # only Inf, which this block does not flag
    bad = f"{n_nan} NaN" if n_nan else "Inf"
    shapes = ", ".join(str(s) for s in node.input_shapes if s is not None) or "none"
    where = (f"the op was created at {node.created_at}" if node.created_at is not None else
             "the op was created outside detect_anomaly(); run the forward pass inside the "
             "block to see where")
    raise AnomalyError(
        f"detect_anomaly: {node.name} produced {bad} in its {what} of shape "
        f"{tuple(arr.shape)} (input shapes {shapes}); {where}")
