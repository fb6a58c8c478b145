"""Mixed-precision shims: ``gradflow.autocast`` / ``gradflow.amp.autocast`` and
``gradflow.amp.GradScaler`` (also as ``gradflow.cuda.amp.*`` and ``gradflow.cpu.amp.*``),
so PyTorch training loops written for AMP run unchanged.

* ``autocast`` is a **deliberate no-op**: gradflow never casts inside an op, so
  computation stays in the dtype of the tensors given (float32 stays float32). It
  validates its arguments as PyTorch does and works as a context manager and as a
  decorator.
* ``GradScaler`` follows ``torch.amp.GradScaler`` step for step: ``scale(loss)``
  multiplies by the scale, ``unscale_(opt)`` divides the gradients by it in place and
  records whether any is inf/NaN, ``step(opt)`` skips the update when one was,
  ``update()`` backs the scale off after an overflow and grows it every
  ``growth_interval`` clean steps. As in PyTorch, a scaler for ``device="cuda"``
  (the default, and ``gradflow.cuda.amp.GradScaler``) on a machine without CUDA warns
  and **disables itself**: then ``scale`` returns the loss unchanged, ``step`` just
  calls ``optimizer.step()``, ``unscale_``/``update`` do nothing, ``get_scale()`` is
  1.0 and ``state_dict()`` is ``{}``. A ``device="cpu"`` scaler is enabled (PyTorch
  >= 2.3 does the same); since gradflow's gradients are float32/float64, scaling by a
  power of two changes no value -- it only adds the overflow-skipping behaviour.
"""
from __future__ import annotations

import functools
import math
import warnings

import numpy

from .autograd import no_grad
from .device import _Cuda, device as _device
from .tensor import Tensor

_DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu", "hpu", "xla", "ipu", "mtia", "meta", "maia",
                 "privateuseone")


def is_autocast_enabled(device_type=None):
    """Always False: gradflow's autocast never changes a dtype (see :class:`autocast`)."""
    return False


class autocast:
    """``with gradflow.autocast("cuda", dtype=gradflow.float16):`` -- accepted and a
    **no-op** on gradflow: ops keep computing in their inputs' dtype (no float16 /
    bfloat16 casts are inserted), so results equal those outside the block. Usable as a
    context manager and as a decorator. Arguments are checked as PyTorch checks them:
    ``device_type`` must be a device-type string."""

    def __init__(self, device_type, dtype=None, enabled=True, cache_enabled=None):
        if not isinstance(device_type, str):
            raise ValueError(f"autocast: expected `device_type` of type `str` ('cpu', 'cuda', "
                             f"...), got: `{type(device_type).__name__}`")
        if device_type.split(":")[0] not in _DEVICE_TYPES:
            raise RuntimeError(f"autocast: unsupported device_type {device_type!r}; expected "
                               f"one of {', '.join(_DEVICE_TYPES)}")
        if not isinstance(enabled, bool):
            raise ValueError(f"autocast: expected `enabled` to be a bool, got "
                             f"{type(enabled).__name__}")
        self.device = device_type
        self.fast_dtype = dtype
        self._enabled = enabled
        self.cache_enabled = cache_enabled

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self:
                return func(*args, **kwargs)
        return wrapper


def custom_fwd(fwd=None, *, device_type="cuda", cast_inputs=None):
    """``torch.amp.custom_fwd`` for custom Functions: a no-op decorator (no autocast here)."""
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)
    return fwd


def custom_bwd(bwd=None, *, device_type="cuda"):
    """``torch.amp.custom_bwd``: a no-op decorator."""
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)
    return bwd


_READY, _UNSCALED, _STEPPED = 0, 1, 2


def _f32(v):
    return float(numpy.float32(v))


class GradScaler:
    """PyTorch's gradient scaler (``torch.amp.GradScaler``); see the module docstring for
    when it is enabled. The scale is kept as a float32 value, as PyTorch's."""

    def __init__(self, device="cuda", init_scale=2.0 ** 16, growth_factor=2.0,
                 backoff_factor=0.5, growth_interval=2000, enabled=True):
        dev = str(_device(device).type) if not isinstance(device, str) else device.split(":")[0]
        if dev not in ("cpu", "cuda"):
            raise ValueError(f"GradScaler: device must be 'cpu' or 'cuda', got {device!r}")
        self._device = dev
        self._enabled = bool(enabled)
        if self._enabled and dev == "cuda" and not _Cuda.is_available():
            warnings.warn("torch.cuda.amp.GradScaler is enabled, but CUDA is not available.  "
                          "Disabling.", UserWarning, stacklevel=2)
            self._enabled = False
        if self._enabled:
            if growth_factor <= 1.0:
                raise ValueError(f"GradScaler: growth_factor must be > 1.0, got {growth_factor}")
            if backoff_factor >= 1.0:
                raise ValueError(f"GradScaler: backoff_factor must be < 1.0, got {backoff_factor}")
        self._init_scale = init_scale
        self._scale = _f32(init_scale)
        self._growth_factor = growth_factor
        self._backoff_factor = backoff_factor
        self._growth_interval = growth_interval
        self._growth_tracker = 0
        self._per_optimizer = {}  # id(optimizer) -> {"stage": ..., "found_inf": bool}

    # -- scaling ----------------------------------------------------------------------------
    def is_enabled(self):
        return self._enabled

    def scale(self, outputs):
        """``outputs * scale`` (a Tensor, or a list/tuple/dict of them); unchanged when
        the scaler is disabled."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            if outputs.dtype == numpy.float16:  # as torch: fp16 * the float32 scale -> float32
                outputs = outputs.float()
            return outputs * outputs.dtype.type(self._scale) if outputs.dtype.kind == "f" \
                else outputs * self._scale
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        if isinstance(outputs, dict):
            return {k: self.scale(v) for k, v in outputs.items()}
        raise ValueError(f"GradScaler.scale: outputs must be a Tensor or an iterable of "
                         f"Tensors, got {type(outputs).__name__}")

    def _state(self, optimizer):
        return self._per_optimizer.setdefault(id(optimizer), {"stage": _READY, "found_inf": False})

    def unscale_(self, optimizer):
        """Divide the optimizer's gradients by the scale, in place, and record whether any
        is inf or NaN (then :meth:`step` skips the update). No-op when disabled."""
        if not self._enabled:
            return
        st = self._state(optimizer)
        if st["stage"] == _UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since "
                               "the last update().")
        if st["stage"] == _STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        inv = _f32(1.0 / self._scale)
        found = False
        with no_grad():
            for group in optimizer.param_groups:
                for p in group["params"]:
                    g = p.grad
                    if g is None:
                        continue
                    if g.dtype == numpy.float16:
                        raise ValueError("Attempting to unscale FP16 gradients.")
                    g.mul_(g.dtype.type(inv))
                    if not found and not bool(g.isfinite().all()):
                        found = True
        st["found_inf"], st["stage"] = found, _UNSCALED

    def step(self, optimizer, *args, **kwargs):
        """``optimizer.step()`` unless the (unscaled) gradients hold inf/NaN; calls
        :meth:`unscale_` first if it was not called. Returns what ``step`` returned (None
        when skipped). Disabled: plain ``optimizer.step(*args, **kwargs)``."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        st = self._state(optimizer)
        if st["stage"] == _STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if st["stage"] == _READY:
            self.unscale_(optimizer)
        ret = None if st["found_inf"] else optimizer.step(*args, **kwargs)
        st["stage"] = _STEPPED
        return ret

    def update(self, new_scale=None):
        """Adjust the scale for the next iteration: ``* backoff_factor`` after a step that
        found inf/NaN, ``* growth_factor`` after ``growth_interval`` clean ones (as
        PyTorch); or set it to ``new_scale``. No-op when disabled."""
        if not self._enabled:
            return
        if new_scale is not None:
            if isinstance(new_scale, Tensor):
                if new_scale.numel() != 1:
                    raise ValueError("GradScaler.update: new_scale should be a float or a "
                                     "1-element tensor")
                new_scale = new_scale.item()
            self._scale = _f32(new_scale)
        else:
            infs = [st["found_inf"] for st in self._per_optimizer.values()
                    if st["stage"] != _READY]
            if not infs:
                raise RuntimeError("GradScaler.update: no inf checks were recorded prior to "
                                   "update(); call step(optimizer) (or unscale_) first")
            if any(infs):
                self._scale = _f32(self._scale * self._backoff_factor)
                self._growth_tracker = 0
            else:
                tracker = self._growth_tracker + 1
                if tracker == self._growth_interval:
                    grown = numpy.float32(self._scale) * numpy.float32(self._growth_factor)
                    if math.isfinite(float(grown)):
                        self._scale = float(grown)
                    tracker = 0
                self._growth_tracker = tracker
        self._per_optimizer = {}

    # -- accessors and state --------------------------------------------------------------
    def get_scale(self):
        """The current scale (a Python float); 1.0 when disabled."""
        return self._scale if self._enabled else 1.0

    def get_growth_factor(self):
        return self._growth_factor

    def set_growth_factor(self, new_factor):
        self._growth_factor = new_factor

    def get_backoff_factor(self):
        return self._backoff_factor

    def set_backoff_factor(self, new_factor):
        self._backoff_factor = new_factor

    def get_growth_interval(self):
        return self._growth_interval

    def set_growth_interval(self, new_interval):
        self._growth_interval = new_interval

    def state_dict(self):
        """PyTorch's keys (``scale``, ``growth_factor``, ``backoff_factor``,
        ``growth_interval``, ``_growth_tracker``); ``{}`` when disabled."""
        if not self._enabled:
            return {}
        return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state_dict):
        """Restore :meth:`state_dict`'s output; ignored when disabled. An empty dict (saved
        from a disabled scaler) raises."""
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("The source state dict is empty, possibly because it was saved "
                               "from a disabled instance of GradScaler.")
        missing = {"scale", "growth_factor", "backoff_factor", "growth_interval",
                   "_growth_tracker"} - set(state_dict)
        if missing:
            raise KeyError(f"GradScaler.load_state_dict: missing keys {sorted(missing)}")
        self._init_scale = state_dict["scale"]
        self._scale = _f32(state_dict["scale"])
        self._growth_factor = state_dict["growth_factor"]
        self._backoff_factor = state_dict["backoff_factor"]
        self._growth_interval = state_dict["growth_interval"]
        self._growth_tracker = int(state_dict["_growth_tracker"])


def _device_amp(device_type, default_dtype):
    """``gradflow.cuda.amp`` / ``gradflow.cpu.amp``: PyTorch's older per-device spellings
    (``autocast(enabled=True, dtype=...)`` without a device_type, ``GradScaler(...)``
    without a device), as real modules so ``from gradflow.cuda.amp import GradScaler``
    works."""
    import sys
    import types

    dev = device_type

    class _autocast(autocast):
        __doc__ = autocast.__doc__

        def __init__(self, enabled=True, dtype=default_dtype, cache_enabled=True):
            super().__init__(dev, dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)

    class _GradScaler(GradScaler):
        __doc__ = GradScaler.__doc__

        def __init__(self, init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5,
                     growth_interval=2000, enabled=True):
            super().__init__(dev, init_scale, growth_factor, backoff_factor, growth_interval,
                             enabled)

    _autocast.__name__ = _autocast.__qualname__ = "autocast"
    _GradScaler.__name__ = _GradScaler.__qualname__ = "GradScaler"
    name = f"gradflow.{device_type}.amp"
    mod = types.ModuleType(name, _device_amp.__doc__)
    mod.autocast, mod.GradScaler = _autocast, _GradScaler
    mod.custom_fwd, mod.custom_bwd = custom_fwd, custom_bwd
    sys.modules[name] = mod
    return mod


cuda_amp = _device_amp("cuda", "float16")
cpu_amp = _device_amp("cpu", "bfloat16")
