"""``gradflow.testing.assert_close``: PyTorch's ``torch.testing.assert_close`` for
gradflow tensors (and numbers, NumPy arrays, and lists/tuples/dicts of them).

Default tolerances by dtype are PyTorch's (``torch/testing/_comparison.py``):
float16 rtol 1e-3 / atol 1e-5, float32 1.3e-6 / 1e-5, float64 1e-7 / 1e-7, integers
and bool exact. A pair matches where ``|actual - expected| <= atol + rtol * |expected|``.
"""
from __future__ import annotations

import numbers

import numpy

from . import creation, dtypes
from .tensor import Tensor

_TOLERANCES = {"float16": (1e-3, 1e-5), "float32": (1.3e-6, 1e-5), "float64": (1e-7, 1e-7)}


def _host(x):
    if isinstance(x, Tensor):
        return x.detach().numpy(), "Tensor"
    if isinstance(x, numpy.ndarray):
        return x, "ndarray"
    if isinstance(x, (numbers.Number, numpy.generic)):
        return numpy.asarray(x), "number"
    raise TypeError(f"assert_close: cannot compare objects of type {type(x).__name__}")


def assert_close(actual, expected, *, allow_subclasses=True, rtol=None, atol=None,
                 equal_nan=False, check_device=True, check_dtype=True, check_layout=True,
                 check_stride=False, msg=None):
    """Raise AssertionError unless ``actual`` and ``expected`` have the same structure,
    shape and (with ``check_dtype``) dtype, and close values; the message gives the
    number of mismatches and the greatest absolute and relative differences."""
    if (rtol is None) != (atol is None):
        raise ValueError("assert_close: give both rtol and atol, or neither")
    if isinstance(expected, (list, tuple)) and not isinstance(actual, Tensor):
        if not isinstance(actual, (list, tuple)) or len(actual) != len(expected):
            raise AssertionError(f"The length of the sequences mismatch: "
                                 f"{len(actual) if hasattr(actual, '__len__') else actual} != "
                                 f"{len(expected)}")
        for i, (a, e) in enumerate(zip(actual, expected)):
            _one(a, e, rtol, atol, equal_nan, check_dtype, check_device, msg, f"item [{i}]")
        return
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or set(actual) != set(expected):
            raise AssertionError(f"The keys of the mappings do not match: "
                                 f"{sorted(map(str, getattr(actual, 'keys', list)()))} != "
                                 f"{sorted(map(str, expected))}")
        for k in expected:
            _one(actual[k], expected[k], rtol, atol, equal_nan, check_dtype, check_device, msg,
                 f"item [{k!r}]")
        return
    _one(actual, expected, rtol, atol, equal_nan, check_dtype, check_device, msg, None)


def _one(actual, expected, rtol, atol, equal_nan, check_dtype, check_device, msg, where):
    if isinstance(expected, (list, tuple, dict)):
        return assert_close(actual, expected, rtol=rtol, atol=atol, equal_nan=equal_nan,
                            check_dtype=check_dtype, check_device=check_device, msg=msg)
    a, ka = _host(actual)
    e, ke = _host(expected)
    prefix = "" if where is None else f"The failure occurred for {where}.\n"

    def fail(text):
        raise AssertionError(prefix + (msg if isinstance(msg, str) else text))

    if (ka == "Tensor") != (ke == "Tensor"):
        fail(f"Expected both inputs to be tensors (or both not), got {type(actual).__name__} "
             f"and {type(expected).__name__}")
    if check_device and ka == ke == "Tensor" and actual.device != expected.device:
        fail(f"The values for attribute 'device' do not match: {actual.device} != "
             f"{expected.device}.")
    if a.shape != e.shape:
        fail(f"The values for attribute 'shape' do not match: {tuple(a.shape)} != "
             f"{tuple(e.shape)}.")
    if check_dtype and ka == ke == "Tensor" and a.dtype != e.dtype:
        fail(f"The values for attribute 'dtype' do not match: {a.dtype} != {e.dtype}.")
    if rtol is None:
        rtol, atol = _TOLERANCES.get(numpy.promote_types(a.dtype, e.dtype).name, (0.0, 0.0))
    af, ef = a.astype(numpy.float64), e.astype(numpy.float64)
    with numpy.errstate(all="ignore"):
        diff = numpy.abs(af - ef)
        ok = diff <= atol + rtol * numpy.abs(ef)
        ok |= af == ef  # equal infinities
        if equal_nan:
            ok |= numpy.isnan(af) & numpy.isnan(ef)
    if ok.all():
        return
    bad = int((~ok).sum())
    with numpy.errstate(all="ignore"):
        rel = diff / numpy.abs(ef)
    d = numpy.where(numpy.isnan(diff), numpy.inf, diff)
    i_abs = numpy.unravel_index(numpy.argmax(numpy.where(ok, -1, d)), a.shape) if a.ndim else ()
    r = numpy.where(numpy.isnan(rel), numpy.inf, rel)
    i_rel = numpy.unravel_index(numpy.argmax(numpy.where(ok, -1, r)), a.shape) if a.ndim else ()
    kind = "Scalars" if a.ndim == 0 and ka == "number" else "Tensor-likes"
    fail(f"{kind} are not close!\n\n"
         f"Mismatched elements: {bad} / {a.size} ({100.0 * bad / max(a.size, 1):.1f}%)\n"
         f"Greatest absolute difference: {diff[i_abs]} at index {tuple(int(i) for i in i_abs)} "
         f"(up to {atol} allowed)\n"
         f"Greatest relative difference: {rel[i_rel]} at index {tuple(int(i) for i in i_rel)} "
         f"(up to {rtol} allowed)")


def assert_allclose(actual, expected, rtol=None, atol=None, equal_nan=True, msg=""):
    """The older spelling: no dtype check, NaN equal to NaN."""
    assert_close(actual, expected, rtol=rtol, atol=atol, equal_nan=equal_nan, check_dtype=False,
                 msg=msg or None)


def make_tensor(*shape, dtype, device=None, low=None, high=None, requires_grad=False):
    """A random tensor with values in [low, high) (default [-9, 9), integers included)."""
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    dt = dtypes.as_dtype(dtype)
    lo = -9 if low is None else low
    hi = 9 if high is None else high
    if dt.kind == "b":
        return creation.randint(0, 2, tuple(shape), device=device).to(dt)
    if dt.kind in "iu":
        return creation.randint(int(lo), int(hi), tuple(shape), dtype=dt, device=device)
    x = creation.rand(*shape, dtype=dt, device=device) * (hi - lo) + lo
    return x.detach().requires_grad_(requires_grad)
