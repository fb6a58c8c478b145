"""BLAS thread control without extra dependencies.

LeNet-sized networks multiply small matrices; OpenBLAS's worker threads cost more
than they save there, and on a busy machine (more runnable threads than cores)
spinning BLAS threads can make a training step 10-20x slower. ``blas_threads(1)``
pins the OpenBLAS that NumPy loaded to one thread at run time (it finds the
library in the process's memory map and calls its ``*_set_num_threads``), which
setting ``OPENBLAS_NUM_THREADS`` can only do before NumPy is imported.
Uses ``threadpoolctl`` instead when it is installed. A no-op returning ``None``
where neither works (e.g. a BLAS other than OpenBLAS).
"""
from __future__ import annotations

import contextlib
import ctypes
import os

_SET = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
        "openblas_set_num_threads64_", "openblas_set_num_threads")
_GET = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
        "openblas_get_num_threads64_", "openblas_get_num_threads")


def _openblas_libs():
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f
                            if "openblas" in line.lower() and ".so" in line.split()[-1]})
    except OSError:
        return []
    libs = []
    for p in paths:
        if not os.path.exists(p):
            continue
        try:
            lib = ctypes.CDLL(p)
        except OSError:
            continue
        setter = next((getattr(lib, s) for s in _SET if hasattr(lib, s)), None)
        getter = next((getattr(lib, s) for s in _GET if hasattr(lib, s)), None)
        if setter is not None and getter is not None:
            setter.argtypes, getter.restype = [ctypes.c_int], ctypes.c_int
            libs.append((setter, getter))
    return libs


def get_blas_threads():
    """Threads OpenBLAS uses now (None if unknown)."""
    libs = _openblas_libs()
    return int(libs[0][1]()) if libs else None


def set_blas_threads(n):
    """Set the BLAS thread count; returns the previous count (None if not possible)."""
    n = max(1, int(n))
    libs = _openblas_libs()
    if libs:
        prev = int(libs[0][1]())
        for setter, _ in libs:
            setter(n)
        return prev
    try:  # other BLAS libraries
        import threadpoolctl
    except ImportError:
        return None
    info = threadpoolctl.threadpool_info()
    prev = next((d["num_threads"] for d in info if d.get("user_api") == "blas"), None)
    threadpoolctl.threadpool_limits(n, user_api="blas")
    return prev


_FAST = {}


def fast_blas_setter():
    """A cheap ``f(n)`` setting OpenBLAS's thread count (about a microsecond: the
    library lookup is done once), or None where the BLAS is not OpenBLAS."""
    if "f" not in _FAST:
        libs = _openblas_libs()
        setters = [s for s, _ in libs]
        _FAST["f"] = (lambda n: [s(n) for s in setters]) if setters else None
    return _FAST["f"]


@contextlib.contextmanager
def blas_threads(n):
    """``with blas_threads(1): ...`` -- restores the previous count afterwards."""
    prev = set_blas_threads(n)
    try:
        yield prev
    finally:
        if prev is not None:
            set_blas_threads(prev)


def default_blas_threads():
    """The count the user asked for through the environment, else None."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        v = os.environ.get(var, "").strip()
        if v.isdigit() and int(v) > 0:
            return int(v)
    return None
