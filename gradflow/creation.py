"""Tensor creation functions (PyTorch names); new tensors go to the current backend
unless ``backend=``/``device=`` says otherwise."""
from __future__ import annotations

import numpy

from . import dtypes
from .backends import current_backend, get_backend
from .tensor import Tensor


def _be(backend=None, device=None):
    if device is not None:
        from .device import device as _device
        return _device.resolve_backend(device)
    return get_backend(backend) if backend is not None else current_backend()


def _shape(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for s in size:
        if not isinstance(s, (int, numpy.integer)) or s < 0:
            raise ValueError(f"shape must be non-negative ints, got {size}")
    return tuple(int(s) for s in size)


def _float_dtype(dtype):
    return dtypes.as_dtype(dtype) or dtypes.get_default_dtype()


def _make(array, be, requires_grad):
    t = Tensor._make(array, be)
    return t.requires_grad_(True) if requires_grad else t


def tensor(data, dtype=None, requires_grad=False, backend=None, device=None):
    """A new tensor from lists, numbers or arrays (copied). Python floats give
    float32, ints int64; NumPy arrays and NumPy scalars keep their dtype (as PyTorch)."""
    be = _be(backend, device)
    if isinstance(data, Tensor):
        data = data.numpy()
    keep = isinstance(data, numpy.generic) and data.dtype.kind in "biuf"
    dt = dtypes.as_dtype(dtype) or (None if keep else dtypes.infer_dtype(data))
    arr = be.asarray(numpy.array(data, dtype=dt) if not hasattr(data, "__cuda_array_interface__")
                     else data, dtype=dt)
    if arr is data:
        arr = be.copy(arr)
    return _make(arr, be, requires_grad)


def from_numpy(a, backend=None):
    """A tensor with ``a``'s dtype (shares memory on CPU backends)."""
    if not isinstance(a, numpy.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(a).__name__}")
    be = _be(backend)
    return Tensor._make(be.asarray(a), be)


def as_tensor(data, dtype=None, backend=None, device=None):
    if isinstance(data, Tensor) and dtype is None:
        return data
    return tensor(data, dtype=dtype, backend=backend, device=device)


def zeros(*size, dtype=None, requires_grad=False, backend=None, device=None):
    be = _be(backend, device)
    return _make(be.zeros(_shape(size), _float_dtype(dtype)), be, requires_grad)


def ones(*size, dtype=None, requires_grad=False, backend=None, device=None):
    be = _be(backend, device)
    return _make(be.full(_shape(size), 1, _float_dtype(dtype)), be, requires_grad)


def empty(*size, dtype=None, requires_grad=False, backend=None, device=None):
    return zeros(*size, dtype=dtype, requires_grad=requires_grad, backend=backend, device=device)


def full(size, fill_value, dtype=None, requires_grad=False, backend=None, device=None):
    be = _be(backend, device)
    if dtype is None:
        dtype = dtypes.infer_dtype(fill_value)
    return _make(be.full(_shape((size,)), fill_value, dtypes.as_dtype(dtype)), be, requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad=False, backend=None, device=None):
    if end is None:
        start, end = 0, start
    if dtype is None:
        dtype = dtypes.infer_dtype([start, end, step])
    be = _be(backend, device)
    return _make(be.arange(start, end, step, dtypes.as_dtype(dtype)), be, requires_grad)


def linspace(start, end, steps, dtype=None, backend=None, device=None):
    be = _be(backend, device)
    return Tensor._make(be.asarray(numpy.linspace(start, end, steps), _float_dtype(dtype)), be)


def eye(n, m=None, dtype=None, requires_grad=False, backend=None, device=None):
    be = _be(backend, device)
    return _make(be.eye(n, n if m is None else m, _float_dtype(dtype)), be, requires_grad)


def manual_seed(seed: int):
    """Seed every backend's generator (the ones already created and future ones)."""
    from . import backends as _b
    _b._seed = int(seed)
    for inst in list(_b._instances.values()):
        inst.seed(int(seed))
    current_backend().seed(int(seed))
    return seed


def rand(*size, dtype=None, requires_grad=False, backend=None, device=None):
    be = _be(backend, device)
    return _make(be.rand(_shape(size), _float_dtype(dtype)), be, requires_grad)


def randn(*size, dtype=None, requires_grad=False, backend=None, device=None):
    be = _be(backend, device)
    return _make(be.randn(_shape(size), _float_dtype(dtype)), be, requires_grad)


def randint(low, high=None, size=(), dtype=None, backend=None, device=None):
    """``randint(low, high, size)`` or torch's ``randint(high, size)``: ints in [low, high)."""
    if isinstance(high, (tuple, list)):
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    be = _be(backend, device)
    return Tensor._make(be.randint(low, high, _shape((size,)), dtypes.as_dtype(dtype) or dtypes.int64), be)


def randperm(n, backend=None, device=None):
    be = _be(backend, device)
    return Tensor._make(be.permutation(n), be)


def _like(fn, x, dtype, requires_grad, **kw):
    return fn(x.shape, dtype=dtype or x.dtype, requires_grad=requires_grad, backend=x.backend, **kw)


def zeros_like(x, dtype=None, requires_grad=False):
    return _like(zeros, x, dtype, requires_grad)


def ones_like(x, dtype=None, requires_grad=False):
    return _like(ones, x, dtype, requires_grad)


def empty_like(x, dtype=None, requires_grad=False):
    return _like(zeros, x, dtype, requires_grad)


def full_like(x, fill_value, dtype=None, requires_grad=False):
    return full(x.shape, fill_value, dtype=dtype or x.dtype, requires_grad=requires_grad, backend=x.backend)


def rand_like(x, dtype=None, requires_grad=False):
    return _like(rand, x, dtype, requires_grad)


def randn_like(x, dtype=None, requires_grad=False):
    return _like(randn, x, dtype, requires_grad)
