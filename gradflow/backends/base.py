"""The Backend interface: storage and kernels, nothing about graphs.

A backend owns arrays (``numpy.ndarray`` for the CPU backends, ``cupy.ndarray``
for CUDA) and the kernels that compute on them. The frontend (``Tensor``,
``Function``) keeps shapes and the graph and decides every output dtype; a
backend never promotes: ``mul(float32 array, python float)`` returns float32.

Conventions used by every method below:

* arrays are the backend's native arrays; ``dtype`` arguments are NumPy dtypes
  (``numpy.float32`` ...), which CuPy accepts too;
* images are NCHW, convolution weights ``(C_out, C_in/groups, kH, kW)``;
* ``stride``, ``padding``, ``dilation``, ``kernel`` are ``(h, w)`` int pairs
  (the frontend normalises ints to pairs before calling);
* methods ending in ``_`` update their first argument(s) in place.

Only the core methods are abstract. The fused neural-net kernels have
xp-generic defaults in :class:`gradflow.backends.numpy_backend.NumpyBackend`,
which the Numba and CuPy backends subclass and override where they are faster.
"""
from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod


class BackendUnavailable(RuntimeError):
    """Raised when a backend is selected on a machine that cannot run it."""


class Backend(ABC):
    #: registry name, e.g. ``"numpy"``
    name: str = "abstract"
    #: the array namespace (``numpy`` or ``cupy``) for xp-generic code
    xp = None
    #: "cpu" or "cuda": what ``gradflow.device`` calls it
    device_type: str = "cpu"

    # -- availability -----------------------------------------------------
    @classmethod
    def is_available(cls) -> bool:
        return cls.unavailable_reason() is None

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """``None`` when usable here, otherwise why not (shown to the user)."""
        return None

    def info(self) -> dict:
        """Facts for ``gradflow info`` / the bench machine line."""
        return {"name": self.name}

    # -- creation and transfer --------------------------------------------
    @abstractmethod
    def asarray(self, data, dtype=None):
        """Array from nested lists, scalars, NumPy arrays or this backend's arrays."""

    @abstractmethod
    def to_numpy(self, a):
        """A host ``numpy.ndarray`` (a copy for device backends)."""

    @abstractmethod
    def empty(self, shape, dtype): ...

    @abstractmethod
    def zeros(self, shape, dtype): ...

    @abstractmethod
    def full(self, shape, value, dtype): ...

    @abstractmethod
    def arange(self, start, stop, step, dtype): ...

    @abstractmethod
    def eye(self, n, m, dtype): ...

    # -- random (seeded by ``seed``) ----------------------------------------
    @abstractmethod
    def seed(self, seed: int) -> None: ...

    @abstractmethod
    def rand(self, shape, dtype):
        """Uniform [0, 1)."""

    @abstractmethod
    def randn(self, shape, dtype):
        """Standard normal."""

    @abstractmethod
    def randint(self, low, high, shape, dtype): ...

    @abstractmethod
    def permutation(self, n):
        """A random permutation of ``range(n)`` as an int64 array."""

    # -- elementwise (NumPy broadcasting, no promotion) ---------------------
    @abstractmethod
    def unary(self, op: str, a):
        """``op`` in: neg exp log sqrt abs tanh sigmoid relu sign sin cos log1p expm1
        reciprocal square."""

    @abstractmethod
    def binary(self, op: str, a, b):
        """``op`` in: add sub mul div pow maximum minimum; comparisons eq ne lt le gt ge
        (bool result)."""

    @abstractmethod
    def where(self, cond, a, b): ...

    @abstractmethod
    def clip(self, a, lo, hi): ...

    @abstractmethod
    def astype(self, a, dtype): ...

    # -- reductions -----------------------------------------------------------
    @abstractmethod
    def reduce(self, op: str, a, axis, keepdims: bool):
        """``op`` in: sum max min mean prod any all; ``axis`` None, int or tuple."""

    @abstractmethod
    def arg_reduce(self, op: str, a, axis, keepdims: bool):
        """``op`` in: argmax argmin; ``axis`` None (flattened) or int."""

    # -- views and data movement -------------------------------------------------
    @abstractmethod
    def reshape(self, a, shape): ...

    @abstractmethod
    def transpose(self, a, axes): ...

    @abstractmethod
    def broadcast_to(self, a, shape): ...

    @abstractmethod
    def getitem(self, a, index): ...

    @abstractmethod
    def index_add(self, shape, index, values, dtype):
        """Zeros of ``shape`` with ``values`` added at ``index``; repeated indices
        accumulate (the backward of ``getitem``)."""

    @abstractmethod
    def setitem_(self, a, index, values): ...

    @abstractmethod
    def pad(self, a, pad_width, value=0.0): ...

    @abstractmethod
    def concat(self, arrays, axis): ...

    @abstractmethod
    def stack(self, arrays, axis): ...

    @abstractmethod
    def copy(self, a): ...

    @abstractmethod
    def copyto_(self, dst, src):
        """``dst[...] = src`` (broadcasting ``src``)."""

    # -- linear algebra -------------------------------------------------------------
    @abstractmethod
    def matmul(self, a, b):
        """``a @ b``; 2-D or batched with broadcast batch dims."""

    # -- floating-point errors ---------------------------------------------------------
    def errstate(self):
        """A context manager under which kernels produce inf/NaN silently (as PyTorch);
        the engine enters it around each forward and once around a backward walk."""
        return contextlib.nullcontext()

    # -- device -------------------------------------------------------------------------
    def synchronize(self) -> None:
        """Block until queued work is done (a no-op on the CPU)."""

    def memory_info(self) -> dict:
        """Bytes in use / held by the allocator, where the backend knows."""
        return {}
