"""Tensor creation functions (PyTorch names); new tensors go to the current backend
unless ``backend=``/``device=`` says otherwise."""
from __future__ import annotations

import numpy

from . import backends as _b, dtypes
from .backends import current_backend, get_backend
from .device import device as _device
from .tensor import Tensor


def _be(backend=None, device=None):
    if device is not None:
        return _device.resolve_backend(device)
    return get_backend(backend) if backend is not None else current_backend()


def _shape(size, op="tensor factory"):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for s in size:
        if isinstance(s, bool) or not isinstance(s, (int, numpy.integer)):
            raise TypeError(f"{op}: size must be non-negative ints, got {size!r}")
        if s < 0:
            raise ValueError(f"{op}: size must be non-negative ints, got {size}")
    return tuple(int(s) for s in size)


def _float_dtype(dtype):
    return dtypes.as_dtype(dtype) or dtypes.get_default_dtype()


class Generator:
    """PyTorch's ``torch.Generator``: an independent, seedable random stream for
    ``randn/rand/randint/randperm(..., generator=g)``, ``nn.init.*_(..., generator=g)``,
    ``DataLoader(..., generator=g)`` and ``random_split(..., generator=g)``. Draws are
    made on the host and copied to the tensor's backend. ``Generator().manual_seed(0)``
    returns the generator, as PyTorch."""

    default_seed = 67280421310721  # PyTorch's default_generator seed

    def __init__(self, device="cpu"):
        self.device = device
        self.manual_seed(self.default_seed)

    def manual_seed(self, seed):
        seed = int(seed)
        if seed < 0:
            raise ValueError(f"Generator.manual_seed: seed must be non-negative, got {seed}")
        self._seed = seed
        self._rng = numpy.random.default_rng(seed)
        return self

    def seed(self):
        """Re-seed from fresh OS entropy; returns the new seed."""
        self.manual_seed(int(numpy.random.SeedSequence().entropy % (2 ** 63)))
        return self._seed

    def initial_seed(self):
        return self._seed

    def get_state(self):
        return dict(self._rng.bit_generator.state)

    def set_state(self, state):
        self._rng.bit_generator.state = state
        return self

    def __repr__(self):
        return f"<gradflow.Generator seed={self._seed}>"


def _check_generator(generator, op):
    if generator is not None and not isinstance(generator, Generator):
        raise TypeError(f"{op}: generator must be a gradflow.Generator, got "
                        f"{type(generator).__name__}")
    return generator


def _host_draw(generator, be, kind, shape, dtype):
    """An array of ``shape`` from ``generator``'s stream, on backend ``be``."""
    rng = generator._rng
    if kind == "randn":
        a = rng.standard_normal(shape)
    elif kind == "rand":
        a = rng.random(shape)
    else:
        raise ValueError(kind)
    return be.asarray(numpy.asarray(a).astype(dtype))


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
    arr = be.asarray(dtypes.host_array(data, dt) if not hasattr(data, "__cuda_array_interface__")
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
    """Like :func:`tensor`, but without a copy where possible (PyTorch): a Tensor of the
    right dtype/backend is returned as is, a NumPy array of the right dtype shares its
    memory on a CPU backend."""
    if isinstance(data, Tensor):
        out = data
        if backend is not None or device is not None:
            out = out.to(_be(backend, device))
        return out if dtype is None else out.to(dtype)
    if isinstance(data, numpy.ndarray) and data.dtype.kind in "biuf":
        be = _be(backend, device)
        dt = dtypes.as_dtype(dtype)
        if be.device_type == "cpu" and (dt is None or dt == data.dtype):
            return Tensor._make(be.asarray(data), be)
    return tensor(data, dtype=dtype, backend=backend, device=device)


def zeros(*size, dtype=None, requires_grad=False, backend=None, device=None):
    be = _be(backend, device)
    return _make(be.zeros(_shape(size, "zeros"), _float_dtype(dtype)), be, requires_grad)


def ones(*size, dtype=None, requires_grad=False, backend=None, device=None):
    be = _be(backend, device)
    return _make(be.full(_shape(size, "ones"), 1, _float_dtype(dtype)), be, requires_grad)


def empty(*size, dtype=None, requires_grad=False, backend=None, device=None):
    return zeros(*size, dtype=dtype, requires_grad=requires_grad, backend=backend, device=device)


def full(size, fill_value, dtype=None, requires_grad=False, backend=None, device=None):
    be = _be(backend, device)
    if dtype is None:
        dtype = dtypes.infer_dtype(fill_value)
    return _make(be.full(_shape((size,), "full"), fill_value, dtypes.as_dtype(dtype)), be, requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad=False, backend=None, device=None):
    if end is None:
        start, end = 0, start
    for name, v in (("start", start), ("end", end), ("step", step)):
        if isinstance(v, bool) or not isinstance(v, (int, float, numpy.number)):
            raise TypeError(f"arange: {name} must be a number, got {type(v).__name__} {v!r}")
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    if dtype is None:
        dtype = dtypes.infer_dtype([start, end, step])
    be = _be(backend, device)
    return _make(be.arange(start, end, step, dtypes.as_dtype(dtype)), be, requires_grad)


def linspace(start, end, steps, dtype=None, requires_grad=False, backend=None, device=None):
    be = _be(backend, device)
    return _make(be.asarray(numpy.linspace(start, end, steps), _float_dtype(dtype)), be,
                 requires_grad)


def logspace(start, end, steps, base=10.0, dtype=None, requires_grad=False, backend=None,
             device=None):
    be = _be(backend, device)
    return _make(be.asarray(numpy.logspace(start, end, steps, base=base), _float_dtype(dtype)), be,
                 requires_grad)


def eye(n, m=None, dtype=None, requires_grad=False, backend=None, device=None):
    be = _be(backend, device)
    return _make(be.eye(n, n if m is None else m, _float_dtype(dtype)), be, requires_grad)


def manual_seed(seed: int):
    """Seed every backend's generator (the ones already created and future ones)."""
    _b._seed = int(seed)
    for inst in list(_b._instances.values()):
        inst.seed(int(seed))
    current_backend().seed(int(seed))
    return seed


def rand(*size, generator=None, dtype=None, requires_grad=False, backend=None, device=None):
    be = _be(backend, device)
    shape, dt = _shape(size, "rand"), _float_dtype(dtype)
    if _check_generator(generator, "rand") is not None:
        return _make(_host_draw(generator, be, "rand", shape, dt), be, requires_grad)
    return _make(be.rand(shape, dt), be, requires_grad)


def randn(*size, generator=None, dtype=None, requires_grad=False, backend=None, device=None):
    be = _be(backend, device)
    shape, dt = _shape(size, "randn"), _float_dtype(dtype)
    if _check_generator(generator, "randn") is not None:
        return _make(_host_draw(generator, be, "randn", shape, dt), be, requires_grad)
    return _make(be.randn(shape, dt), be, requires_grad)


def randint(low, high=None, size=(), generator=None, dtype=None, backend=None, device=None):
    """``randint(low, high, size)`` or torch's ``randint(high, size)``: ints in [low, high)."""
    if isinstance(high, (tuple, list)):
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if high <= low:
        raise ValueError(f"randint: expected low < high, got low={low}, high={high}")
    be = _be(backend, device)
    shape, dt = _shape((size,), "randint"), dtypes.as_dtype(dtype) or dtypes.int64
    if _check_generator(generator, "randint") is not None:
        return Tensor._make(be.asarray(generator._rng.integers(low, high, size=shape).astype(dt)), be)
    return Tensor._make(be.randint(low, high, shape, dt), be)


def randperm(n, generator=None, dtype=None, backend=None, device=None):
    be = _be(backend, device)
    if _check_generator(generator, "randperm") is not None:
        t = Tensor._make(be.asarray(generator._rng.permutation(n).astype(numpy.int64)), be)
    else:
        t = Tensor._make(be.permutation(n), be)
    return t if dtype is None else t.to(dtype)


def normal(mean, std, size=None, generator=None, dtype=None, backend=None, device=None):
    """``normal(mean, std, size)`` (numbers) or ``normal(mean_tensor, std_tensor)``."""
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        ref = mean if isinstance(mean, Tensor) else std
        shape = numpy.broadcast_shapes(getattr(mean, "shape", ()), getattr(std, "shape", ()))
        z = randn(*shape, generator=generator, dtype=ref.dtype, backend=ref.backend)
        return z * std + mean
    if size is None:
        raise TypeError("normal: give size= when mean and std are numbers")
    return randn(*_shape((size,) if isinstance(size, int) else tuple(size), "normal"), generator=generator,
                 dtype=dtype, backend=backend, device=device) * std + mean


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


def rand_like(x, dtype=None, requires_grad=False, generator=None):
    return _like(rand, x, dtype, requires_grad, generator=generator)


def randn_like(x, dtype=None, requires_grad=False, generator=None):
    return _like(randn, x, dtype, requires_grad, generator=generator)


def randint_like(x, low, high=None, dtype=None, generator=None):
    return randint(low, high, x.shape, generator=generator, dtype=dtype or x.dtype,
                   backend=x.backend)
