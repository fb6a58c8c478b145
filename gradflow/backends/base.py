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

Every method that code above ``backends/`` calls is declared here: this class is
the whole contract. Abstract methods must be implemented (instantiating a
subclass that lacks one raises ``TypeError`` naming it); the few concrete ones
(``errstate``, ``synchronize``, ``memory_info``, ``info``) have documented
defaults. :class:`gradflow.backends.numpy_backend.NumpyBackend` implements all of
it against its array namespace ``xp``, so a new backend usually subclasses it and
overrides only what it makes faster (the Numba and CuPy backends do).
"""
from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod


#: For :meth:`Backend.unary_backward`: whether each differentiable unary op's derivative
#: is computed from its input ``"x"`` or its output ``"y"`` (whichever is cheaper).
UNARY_BACKWARD_FROM = {
    "exp": "y", "log": "x", "sqrt": "y", "abs": "x", "tanh": "y", "sigmoid": "y",
    "sin": "x", "cos": "x", "log1p": "x", "expm1": "y", "atan": "x",
}


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
        reciprocal square atan erf floor ceil trunc round invert (bitwise/logical not)."""

    @abstractmethod
    def binary(self, op: str, a, b, out=None):
        """``op`` in: add sub mul div pow maximum minimum floordiv mod atan2; comparisons
        eq ne lt le gt ge (bool result); and or xor (bitwise: logical on bool arrays).
        ``out``: None (a new array), or an array of the result's shape and dtype to
        write into (``a`` itself for an in-place update; no allocation)."""

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

    @abstractmethod
    def einsum(self, spec: str, *arrays):
        """NumPy's ``einsum`` with an explicit ``->`` output (no ellipsis, letters only)."""

    # -- sorting, scans, inspection -------------------------------------------------
    @abstractmethod
    def argsort(self, a, axis, descending=False):
        """Stable argsort along ``axis`` (int64); ties keep their order either way."""

    @abstractmethod
    def cumsum(self, a, axis): ...

    @abstractmethod
    def classify(self, op: str, a):
        """``op`` in isnan isinf isfinite: a bool array."""

    @abstractmethod
    def strides(self, a):
        """Strides in elements (not bytes), as PyTorch's ``stride()``."""

    @abstractmethod
    def is_contiguous(self, a) -> bool: ...

    @abstractmethod
    def data_ptr(self, a) -> int: ...

    @abstractmethod
    def storage_offset(self, a) -> int:
        """Elements between the start of ``a``'s base storage and its first element."""

    @abstractmethod
    def index_add_axis(self, g, index, axis, size):
        """Zeros with ``size`` along ``axis`` (else ``g``'s shape) where slice j of ``g``
        is added at ``index[j]``: the backward of taking a 1-D index along an axis."""

    # -- fused neural-net kernels (NCHW; pairs are (h, w)) -----------------------------
    @abstractmethod
    def im2col(self, x, kernel, stride, padding, dilation):
        """(N, C, kH, kW, OH, OW) patches of ``x`` (a view where the backend can)."""

    @abstractmethod
    def col2im(self, cols, x_shape, kernel, stride, padding, dilation):
        """The adjoint of :meth:`im2col`: patches summed back into ``x_shape``."""

    @abstractmethod
    def conv2d_forward(self, x, w, b, stride, padding, dilation, groups):
        """y (N, C_out, OH, OW) = x (N, C_in, H, W) * w (C_out, C_in/groups, kH, kW) + b."""

    @abstractmethod
    def conv2d_forward_saved(self, x, w, b, stride, padding, dilation, groups):
        """``(y, saved)``: :meth:`conv2d_forward` plus whatever the weight gradient can
        reuse (im2col columns, or None), passed back as ``conv2d_backward(saved=...)``."""

    @abstractmethod
    def conv2d_backward(self, x, w, gy, stride, padding, dilation, groups,
                        need_dx=True, need_dw=True, need_db=True, saved=None):
        """``(dx, dw, db)`` of :meth:`conv2d_forward` (None where not needed). For dx only
        ``x``'s shape is used, for dw only ``w``'s: callers may pass empty arrays."""

    @abstractmethod
    def max_pool2d_forward(self, x, kernel, stride, padding, dilation=(1, 1), ceil_mode=False):
        """``(y, argmax)``: window maxima (NaN wins) and each window's tap index
        ``i * kW + j`` (any integer dtype)."""

    @abstractmethod
    def max_pool2d_backward(self, gy, argmax, x_shape, kernel, stride, padding,
                            dilation=(1, 1), ceil_mode=False):
        """dx of ``x_shape``: each ``gy`` added at its window's argmax."""

    @abstractmethod
    def max_pool2d_gather(self, x, argmax, kernel, stride, padding, dilation=(1, 1),
                          ceil_mode=False):
        """(N, C, OH, OW): ``x`` at each window's argmax tap (the adjoint of
        :meth:`max_pool2d_backward`, for second-order gradients)."""

    @abstractmethod
    def avg_pool2d_forward(self, x, kernel, stride, padding, ceil_mode=False,
                           count_include_pad=True): ...

    @abstractmethod
    def avg_pool2d_backward(self, gy, x_shape, kernel, stride, padding, ceil_mode=False,
                            count_include_pad=True): ...

    @abstractmethod
    def log_softmax(self, x, axis): ...

    @abstractmethod
    def softmax(self, x, axis): ...

    @abstractmethod
    def softmax_cross_entropy_forward(self, logits, target):
        """``(loss (N,), log_probs (N, C))`` for logits (N, C) and int targets (N,)."""

    @abstractmethod
    def softmax_cross_entropy_backward(self, logp, target, gloss):
        """(softmax - onehot(target)) * gloss[:, None] from the saved log-probabilities
        (``gloss`` is contiguous and may be overwritten)."""

    @abstractmethod
    def relu_backward(self, gy, y):
        """``gy`` where ``y > 0``, else 0."""

    @abstractmethod
    def unary_backward(self, op, g, s):
        """``g * f'``: the gradient through the unary op ``f`` named ``op``, from ``g``
        (shaped like ``s``) and ``s``, which is the op's input ``x`` or its output ``y``
        as :data:`UNARY_BACKWARD_FROM` says (``tanh``: ``g * (1 - y*y)``; ``sin``:
        ``g * cos(x)``). Every op in that table is supported."""

    # -- in-place optimizer updates ---------------------------------------------------
    @abstractmethod
    def sgd_step_(self, p, g, buf, lr, momentum, dampening, weight_decay, nesterov, first):
        """One SGD step on ``p`` (and the momentum buffer ``buf``), in place."""

    @abstractmethod
    def adam_step_(self, p, g, m, v, lr, beta1, beta2, eps, weight_decay, step, decoupled):
        """One Adam (``decoupled``: AdamW) step on ``p``, ``m``, ``v``, in place."""

    # -- floating-point errors ---------------------------------------------------------
    def errstate(self):
        """A context manager under which kernels produce inf/NaN silently (as PyTorch);
        the engine enters it around each forward and once around a backward walk."""
        return contextlib.nullcontext()

    # -- device -------------------------------------------------------------------------
    def synchronize(self) -> None:
        """Block until queued work is done (a no-op on the CPU)."""

    def empty_cache(self) -> None:
        """Release memory kept for reuse (buffer pools, allocator caches); arrays in use
        are untouched. Default: nothing is cached."""

    def memory_info(self) -> dict:
        """Bytes in use / held by the allocator, where the backend knows."""
        return {}
