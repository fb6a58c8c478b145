"""The one-time check of a captured step: its first replay against eager.

A recording sees only backend kernel calls. Work done around them -- a NumPy operator
on ``.array`` whose result is stable between two calls, an in-place update of a buffer
written with a raw operator -- would be missing from the replay without either
recording showing a difference. So the first replay of each signature runs from a
snapshot of every external array (parameters, gradients, optimizer buffers) and of the
random generator, then the state is put back and the same call runs eagerly; every
result, every rebound array and every external must agree (to float rounding:
rtol 1e-9 in float64, 1e-4 in float32). A mismatch raises :class:`CaptureError`; the
state left behind is the eager call's either way.
"""
from __future__ import annotations

import numpy  # host-side comparison of two results only

from ..tensor import Tensor
from .trace import CaptureError, _MISSING

__all__ = ["check_replay"]

_TOL = {"float64": (1e-9, 1e-12), "float32": (1e-4, 1e-6), "float16": (1e-2, 1e-3)}


def check_replay(cf, entry, arrays, args, kwargs):
    """Replay ``entry`` on ``arrays``, rerun ``cf.fn`` eagerly from the same state, compare;
    returns the eager call's result."""
    be = entry.backend
    exts = entry.externals
    rng = be.rng_state() if hasattr(be, "rng_state") else None
    if entry.random and rng is None:  # no way to draw the same numbers twice: trust the traces
        return cf._replay(entry, arrays)
    snap = [be.copy(e) for e in exts]
    counts = [d[k] for d, k in entry.counters]  # the replay counts the step; eager will too
    failed = None
    try:
        vals, _ = cf._run_program(entry, arrays)
        got = [be.to_numpy(v).copy() for v in vals]
    except Exception as e:  # noqa: BLE001 -- reported below, after the eager run
        failed = e
    got_ext = [be.to_numpy(e).copy() for e in exts]
    for e, s, now in zip(exts, snap, got_ext):
        if not numpy.array_equal(be.to_numpy(s), now, equal_nan=True):
            be.copyto_(e, s)
    for (d, k), c in zip(entry.counters, counts):
        d[k] = c
    if rng is not None:
        be.set_rng_state(rng)
    out = cf.fn(*args, **kwargs)
    if failed is not None:
        err = CaptureError(f"gradflow.compile: the first replay of the captured step failed "
                           f"({type(failed).__name__}: {failed}); the step ran eagerly. Some "
                           f"sizes or values in it depend on the data; run it uncompiled")
        err.eager_result = out
        raise err from failed
    want = [t.array for t in _tensors(out)]
    for kind, obj, _ in entry.rebinds:
        want.append(obj.grad.array if kind == "grad" and obj.grad is not None else
                    (None if kind == "grad" else obj.array))
    try:
        _check_all(entry, be, got, want, got_ext, exts)
    except CaptureError as e:
        e.eager_result = out  # the state is the eager call's: a fallback can use it
        raise
    return out


def _check_all(entry, be, got, want, got_ext, exts):
    for i, (g, w) in enumerate(zip(got, want)):
        what = "returned tensor" if i < len(want) - len(entry.rebinds) else _rebind_name(
            entry.rebinds[i - (len(want) - len(entry.rebinds))])
        _compare(what, g, None if w is None else be.to_numpy(w))
    for j, (g, e) in enumerate(zip(got_ext, exts)):
        _compare(f"external array #{j} (shape {tuple(e.shape)}: a parameter or an "
                 f"optimizer buffer)", g, be.to_numpy(e))


def _tensors(x):
    if isinstance(x, Tensor):
        yield x
    elif isinstance(x, (tuple, list)):
        for v in x:
            yield from _tensors(v)
    elif isinstance(x, dict):
        for v in x.values():
            yield from _tensors(v)


def _rebind_name(rb):
    kind, obj, _ = rb
    return f"{'.grad of' if kind == 'grad' else 'the array of'} a tensor of shape {obj.shape}"


def _compare(what, got, want):
    if want is None or got.shape != want.shape or got.dtype != want.dtype:
        raise CaptureError(
            f"gradflow.compile: the first replay of the captured step does not match eager: "
            f"{what} has shape/dtype {got.shape}/{got.dtype} in the replay but "
            f"{None if want is None else (want.shape, want.dtype)} eagerly")
    if got.dtype.kind in "fc":
        rtol, atol = _TOL.get(got.dtype.name, (1e-4, 1e-6))
        ok = numpy.allclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
    else:
        ok = numpy.array_equal(got, want)
    if not ok:
        diff = numpy.abs(got.astype(numpy.float64) - want.astype(numpy.float64))
        raise CaptureError(
            f"gradflow.compile: the first replay of the captured step does not match eager: "
            f"{what} differs (max abs difference {numpy.nanmax(diff):.3g}). Some work in the "
            f"step bypasses the backend kernels (a NumPy operator on .array, a Python value "
            f"read from state) and a replay would freeze it; run this function uncompiled")
