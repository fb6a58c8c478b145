"""The numba runtime behind the numba backend: configuration, and compiling kernels on demand.

Importing this module imports numba (only the numba backend imports it, when
that backend is first selected). Before numba is imported it chooses:

* **the compile cache directory**: ``NUMBA_CACHE_DIR`` if the user set it, else
  ``$XDG_CACHE_HOME/gradflow/numba`` (``~/.cache/gradflow/numba``), else a
  per-user folder under the temp dir when the home cache cannot be written. The
  package folder may be read-only; a second process loads compiled kernels from
  this folder and pays no compile time.
* **the threading layer**:
  ``NUMBA_THREADING_LAYER`` if the user set it, else numba's ``"threadsafe"``
  choice (TBB, else OpenMP) when one of them can be loaded. Those layers may be
  entered from several Python threads at once. If only the ``workqueue`` layer
  exists (it aborts the process when two threads launch parallel kernels
  concurrently), every parallel kernel call is serialised with one process-wide
  lock instead. numba's GNU OpenMP runtime is loaded with
  ``OMP_WAIT_POLICY=PASSIVE`` unless the user chose a policy (its default
  spinning after each region starves OpenBLAS's GEMM threads). Small inputs
  run a parallel kernel on the calling thread only (see :class:`Kernel`).
* **the fastmath policy**: only flags that keep NaN/Inf semantics (``FASTMATH``:
  no ``nnan``/``ninf``).

Kernels (:mod:`gradflow.backends.numba_kernels`) are declared with
:func:`kernel`: a Python function and a numba signature template with ``{f}``
for the float type. Nothing is compiled at import. A :class:`Kernel` compiles
(or loads from the disk cache) a float type (float32 / float64, told by the
kernel's first ``{f}`` argument) the first time it is called with it, so a
float32 run never compiles float64 code, and a kernel a run does not call is
never compiled. Compiles are announced to :func:`add_compile_listener` callbacks (the
``gradflow train`` progress bar) and logged (logger ``gradflow.numba``);
:func:`compile_kernels` precompiles into the cache (``gradflow warmup``).
"""
from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass


# ---------------------------------------------------------------------------
# configuration that must happen before numba is imported
# ---------------------------------------------------------------------------
def _writable_dir(path):
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK | os.X_OK)


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(base, "gradflow", "numba")
    if _writable_dir(path):
        return path
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return os.path.join(tempfile.gettempdir(), f"gradflow-numba-{uid}")


USER_SET_CACHE_DIR = bool(os.environ.get("NUMBA_CACHE_DIR"))
if not USER_SET_CACHE_DIR:
    os.environ["NUMBA_CACHE_DIR"] = default_cache_dir()
CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]
_writable_dir(CACHE_DIR)

_numba_was_imported = "numba" in sys.modules

import numba  # noqa: E402
import numpy as np  # noqa: E402

if _numba_was_imported and not USER_SET_CACHE_DIR and not numba.config.CACHE_DIR:
    # numba read its environment before we set it: point the config at our folder
    numba.config.CACHE_DIR = CACHE_DIR


def _layer_loadable(name):
    try:
        if name == "tbb":
            from numba.np.ufunc import tbbpool  # noqa: F401
        elif name == "omp":
            from numba.np.ufunc import omppool  # noqa: F401
        return True
    except Exception:  # ImportError, OSError (missing libgomp/libtbb), version checks
        return False


USER_SET_LAYER = bool(os.environ.get("NUMBA_THREADING_LAYER"))
# GNU OpenMP workers spin (without yielding) for a while after every parallel
# region by default; here that steals the cores OpenBLAS's threads need for the
# GEMM that typically follows, and on a busy machine it costs whole scheduler
# slices. Unless the user chose a wait policy, numba's libgomp (loaded by the
# probe below, which is when libgomp reads its environment) gets PASSIVE; the
# variable is restored right after, so other OpenMP runtimes loaded later (e.g.
# PyTorch's bundled one) are unaffected.
# If numba's threads were started before this module ran (e.g. a call to
# numba.get_num_threads()), neither the layer nor the policy can be chosen any
# more: the workers then spin and a LeNet-5 step measured ~1.5x slower.
# info() says so.
PRESTARTED = any(m in sys.modules for m in (
    "numba.np.ufunc.omppool", "numba.np.ufunc.tbbpool", "numba.np.ufunc.workqueue"))
OMP_WAIT_POLICY = os.environ.get("OMP_WAIT_POLICY") or (
    "(GOMP_SPINCOUNT set)" if os.environ.get("GOMP_SPINCOUNT") else None)
_set_policy = OMP_WAIT_POLICY is None and not PRESTARTED
if _set_policy:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    OMP_WAIT_POLICY = "PASSIVE (numba's OpenMP only)"
elif OMP_WAIT_POLICY is None:
    OMP_WAIT_POLICY = ("runtime default: numba's threads were started before gradflow's numba "
                       "backend could configure them; select the backend first")
try:
    if not USER_SET_LAYER and numba.config.THREADING_LAYER == "default":
        if _layer_loadable("tbb") or _layer_loadable("omp"):
            numba.config.THREADING_LAYER = "threadsafe"
    else:
        _layer_loadable("omp")
finally:
    if _set_policy:
        del os.environ["OMP_WAIT_POLICY"]

_LOCK = threading.Lock()          # serialises parallel kernels on the workqueue layer
_COMPILE_LOCK = threading.RLock()
_state = {"layer": None, "serialize": None}


def threading_layer() -> str:
    """The loaded threading layer (loads it on first call)."""
    if _state["layer"] is None:
        with _COMPILE_LOCK:
            if _state["layer"] is None:
                try:
                    from numba.np.ufunc.parallel import _launch_threads
                    _launch_threads()
                    layer = numba.threading_layer()
                except Exception as e:  # pragma: no cover - reported by info()
                    layer = f"unavailable ({e})"
                _state["serialize"] = layer not in ("tbb", "omp")
                _state["layer"] = layer
    return _state["layer"]


def serialized() -> bool:
    threading_layer()
    return _state["serialize"]


def num_threads() -> int:
    return numba.get_num_threads()


def num_threads() -> int:
    return numba.get_num_threads()


FASTMATH = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})  # no nnan / ninf

#: a helper the kernels call, compiled into each of them
njit_inline = numba.njit(inline="always", nogil=True, fastmath=set(FASTMATH))

log = logging.getLogger("gradflow.numba")


# ---------------------------------------------------------------------------
# compile events
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CompileEvent:
    """One kernel being prepared for one float type (``parallel``: it was declared
    with ``parallel=True``). ``phase`` is ``"start"`` when numba begins
    compiling it (sent only on a cache miss: loading from the cache sends no
    "start") and ``"end"`` when it is ready (``compiled``: False when it was loaded
    from the disk cache; ``seconds``: time spent)."""
    kernel: str
    dtype: str
    parallel: bool
    phase: str
    compiled: bool = True
    seconds: float = 0.0

    @property
    def label(self) -> str:
        return f"{self.kernel} {self.dtype}"


_listeners: list = []
#: every (kernel, float type) prepared in this process, in order:
#: (kernel, dtype, parallel, compiled, seconds)
COMPILE_LOG: list = []


def add_compile_listener(fn) -> None:
    """Call ``fn(event: CompileEvent)`` whenever a kernel is compiled or loaded."""
    _listeners.append(fn)


def remove_compile_listener(fn) -> None:
    try:
        _listeners.remove(fn)
    except ValueError:
        pass


def _notify(event):
    for fn in list(_listeners):
        try:
            fn(event)
        except Exception:  # noqa: BLE001 - a broken progress display must not stop the run
            log.exception("compile listener %r failed", fn)


class _CompileStarted(numba.core.event.Listener):
    """Tells the numba compile (cache miss) of one variant apart from a cache load."""

    def __init__(self, kern, dtype, parallel):
        self.args = (kern, dtype, parallel)
        self.fired = False

    def on_start(self, event):
        if not self.fired:
            self.fired = True
            log.info("compiling numba kernel %s %s (first run only; cached in %s)",
                     self.args[0], self.args[1], CACHE_DIR)
            _notify(CompileEvent(*self.args, phase="start"))

    def on_end(self, event):
        pass


# ---------------------------------------------------------------------------
# kernels
# ---------------------------------------------------------------------------
_DTYPES = {"f": "float32", "d": "float64"}   # numpy dtype.char -> numba type name


def _split_args(signature):
    """The argument types of ``"void(a, b[:, ::1], c)"`` (commas inside brackets kept)."""
    inner = signature[signature.index("(") + 1:signature.rindex(")")]
    out, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
            continue
        depth += ch == "["
        depth -= ch == "]"
        cur += ch
    return out + ([cur.strip()] if cur.strip() else [])


class Kernel:
    """A kernel declared with :func:`kernel`. ``kern(*args)`` runs it on the calling
    thread, ``kern.parallel(*args)`` with its ``prange`` loops on numba's threads
    (the same for a kernel declared without ``parallel=True``). Each float type is
    compiled -- or loaded from the disk cache -- on its first call, so a process
    compiles only the kernels and float types it uses. Arguments must match the
    signature exactly (C-contiguous arrays of one float type; the backend checks).

    A parallel kernel is compiled once, with ``parallel=True``, for both uses: on
    the calling thread it runs with numba's thread count set to 1 for the call. A
    second, ``parallel=False`` compile would be 3-5x cheaper, but its code measured
    up to 2x slower on one thread (the 2x2 max-pool forward: 1.2 vs 0.56 ms), so
    the cold start pays for the faster code."""

    def __init__(self, fn, signature, parallel):
        self.name = fn.__name__
        self.py_func = fn
        self.signature = signature
        self.has_parallel = bool(parallel)
        args = _split_args(signature)
        self._farg = next(i for i, a in enumerate(args) if a.startswith("{f}["))
        self._disp = {}        # dtype char -> callable
        self.__doc__ = fn.__doc__

    def __repr__(self):
        return f"<numba kernel {self.name}>"

    def __call__(self, *args):
        f = self._disp.get(args[self._farg].dtype.char)
        if f is None:
            f = self._variant(args[self._farg].dtype.char)
        if not self.has_parallel:
            return f(*args)
        get, put = _SETTERS or _init_setters()
        prev = get()
        if prev == 1:
            return f(*args)
        put(1)
        try:
            return f(*args)
        finally:
            put(prev)

    def parallel(self, *args):
        f = self._disp.get(args[self._farg].dtype.char)
        if f is None:
            f = self._variant(args[self._farg].dtype.char)
        return f(*args)

    def dtypes(self):
        """The float types this process has prepared the kernel for."""
        return [_DTYPES[c] for c in self._disp]

    def _variant(self, char):
        if char not in _DTYPES:
            raise TypeError(f"numba kernel {self.name}: float32 or float64 arrays expected, "
                            f"got dtype {char!r}")
        with _COMPILE_LOCK:
            f = self._disp.get(char)
            if f is None:
                f = self._disp[char] = self._build(_DTYPES[char])
        return f

    def _build(self, dtype):
        parallel = self.has_parallel
        disp = numba.njit(parallel=parallel, cache=True, nogil=True, fastmath=set(FASTMATH),
                          error_model="numpy")(self.py_func)
        watch = _CompileStarted(self.name, dtype, parallel)
        t0 = time.perf_counter()
        with numba.core.event.install_listener("numba:compile", watch):
            disp.compile(self.signature.format(f=dtype))
        disp.disable_compile()
        dt = time.perf_counter() - t0
        COMPILE_LOG.append((self.name, dtype, parallel, watch.fired, dt))
        _notify(CompileEvent(self.name, dtype, parallel, "end", watch.fired, dt))
        if parallel and serialized():
            def locked(*a, _d=disp):
                with _LOCK:
                    return _d(*a)
            return locked
        return disp


def _thread_setters():
    """numba's getter/setter of the calling thread's thread count."""
    threading_layer()
    from numba.np.ufunc import parallel as P
    get = getattr(P, "_get_num_threads", None)
    put = getattr(P, "_set_num_threads", None)
    if get is None or put is None:  # pragma: no cover - other numba versions
        return numba.get_num_threads, numba.set_num_threads
    return get, put


_SETTERS = None


def _init_setters():
    global _SETTERS
    _SETTERS = _thread_setters()
    return _SETTERS


KERNELS: dict[str, Kernel] = {}


def kernel(signature, parallel=False):
    """Declare a kernel: ``signature`` is a numba signature string with ``{f}`` for the
    float type; ``parallel=True`` when its ``prange`` loops may run on numba's threads
    (see :class:`Kernel`)."""
    def deco(fn):
        k = Kernel(fn, signature, parallel)
        KERNELS[k.name] = k
        return k
    return deco


def compile_kernels(names=None, dtypes=("float32",)):
    """Prepare (compile, or load from the disk cache) the kernels ``names`` (default:
    all) for ``dtypes``; returns the COMPILE_LOG entries this call added."""
    n0 = len(COMPILE_LOG)
    for name in (names or list(KERNELS)):
        for dt in dtypes:
            KERNELS[name]._variant(np.dtype(dt).char)
    return COMPILE_LOG[n0:]


def compile_stats() -> dict:
    """What this process compiled or loaded so far."""
    compiled = [e for e in COMPILE_LOG if e[3]]
    return {"compiled": len(compiled), "loaded": len(COMPILE_LOG) - len(compiled),
            "seconds": sum(e[4] for e in COMPILE_LOG),
            "compile_seconds": sum(e[4] for e in compiled),
            "variants": [dict(kernel=e[0], dtype=e[1], parallel=e[2], compiled=e[3],
                              seconds=round(e[4], 4)) for e in COMPILE_LOG]}
