"""Backend registry and selection.

A backend is one module holding one :class:`Backend` subclass; registering a
fourth is one line in ``_REGISTRY``. Modules are imported on first use, so
``import gradflow`` never imports numba or cupy.

Selection order: ``set_backend``/``backend(...)`` in this process, else the
``GRADFLOW_BACKEND`` environment variable read at first use, else ``numpy``.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import threading

from .base import Backend, BackendUnavailable

# name -> (module, class, device type, preference among that device's backends)
_REGISTRY = {
    "numpy": ("gradflow.backends.numpy_backend", "NumpyBackend", "cpu", 0),
    "numba": ("gradflow.backends.numba_backend", "NumbaBackend", "cpu", 1),
    "cupy": ("gradflow.backends.cupy_backend", "CupyBackend", "cuda", 0),
}
_ALIASES = {"gpu": "cupy"}


def register_backend(name: str, module: str, cls: str, device_type: str = "cpu",
                     preference: int = -1) -> None:
    """Register a backend: ``module.cls`` (imported on first use) named ``name``, running
    on ``device_type`` (``"cpu"``, ``"cuda"`` or a new kind). ``preference`` orders the
    backends of one device type when ``gradflow.device(type)`` picks one (highest
    available wins); the default -1 never displaces a built-in."""
    if not isinstance(name, str) or not name.isidentifier() or name in _ALIASES or \
            name in device_types():
        raise ValueError(f"register_backend: {name!r} is not a valid new backend name (an "
                         f"identifier that is not a device type or alias)")
    _REGISTRY[name.lower()] = (module, cls, device_type, preference)


def device_types() -> list[str]:
    """The device types the registered backends run on (``["cpu", "cuda"]``)."""
    return list(dict.fromkeys(entry[2] for entry in _REGISTRY.values()))


def device_type_of(name: str) -> str:
    """The device type of the backend ``name`` (without importing it)."""
    return _REGISTRY[_canonical(name)][2]


def is_backend_name(name) -> bool:
    """True for a registered backend name or alias (``"numba"``, ``"gpu"``)."""
    return isinstance(name, str) and _ALIASES.get(name.lower(), name.lower()) in _REGISTRY


def default_backend_for(device_type: str) -> str:
    """The backend ``gradflow.device(device_type)`` means: among the available backends
    of that type, the preferred one (``"cpu"``: numba where it runs, else numpy)."""
    ranked = sorted((entry[3], -i, n) for i, (n, entry) in enumerate(_REGISTRY.items())
                    if entry[2] == device_type)
    for _, _, n in reversed(ranked):
        if unavailable_reason(n) is None:
            return n
    if not ranked:
        raise ValueError(f"device: unknown device type {device_type!r}; valid: "
                         f"{', '.join(device_types())}")
    return ranked[-1][2]  # none runs here: the preferred one, whose error says why

_instances: dict[str, Backend] = {}
_lock = threading.Lock()
_state = threading.local()
_default_name: str | None = None
_seed: int | None = None  # set by gradflow.manual_seed; applied to backends created later


def available_backends() -> list[str]:
    """Names of registered backends usable on this machine."""
    return [n for n in _REGISTRY if unavailable_reason(n) is None]


def registered_backends() -> list[str]:
    return list(_REGISTRY)


def _canonical(name: str) -> str:
    if isinstance(name, Backend):
        return name.name
    if not isinstance(name, str):
        raise TypeError(f"backend: expected a backend name (str), got {type(name).__name__}")
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in _REGISTRY:
        if key == "cuda":  # a device type names its preferred backend ("cuda" -> cupy)
            return default_backend_for(key)
        raise ValueError(f"backend: unknown backend {name!r}; valid names are "
                         f"{', '.join(sorted(_REGISTRY))}")
    return key


def _backend_class(name: str):
    mod, cls = _REGISTRY[name][:2]
    return getattr(importlib.import_module(mod), cls)


def unavailable_reason(name: str) -> str | None:
    """``None`` when ``name`` can run here, else the reason (import error, no GPU...)."""
    name = _canonical(name)
    try:
        cls = _backend_class(name)
    except ImportError as e:  # the backend's library is not installed
        return f"cannot import its library: {e}"
    return cls.unavailable_reason()


def get_backend(name: str | Backend | None = None) -> Backend:
    """The backend instance for ``name`` (the current default when ``None``)."""
    if isinstance(name, Backend):
        return name
    if name is None:
        return current_backend()
    name = _canonical(name)
    inst = _instances.get(name)
    if inst is not None:
        return inst
    with _lock:
        if name not in _instances:
            reason = unavailable_reason(name)
            if reason is not None:
                raise BackendUnavailable(
                    f"backend {name!r} is not available on this machine: {reason}. "
                    f"Available: {', '.join(available_backends())}")
            inst = _backend_class(name)()
            if _seed is not None:
                inst.seed(_seed)
            _instances[name] = inst
    return _instances[name]


def _env_default() -> str:
    global _default_name
    if _default_name is None:
        _default_name = _canonical(os.environ.get("GRADFLOW_BACKEND", "numpy") or "numpy")
    return _default_name


def current_backend() -> Backend:
    name = getattr(_state, "override", None) or _env_default()
    return get_backend(name)


def set_backend(name: str) -> Backend:
    """Make ``name`` the default backend for new tensors (process-wide)."""
    global _default_name
    be = get_backend(name)
    _default_name = be.name
    return be


@contextlib.contextmanager
def backend(name: str):
    """``with gradflow.backend("numba"):`` -- new tensors in the block use ``name``
    (thread-local; restored on exit)."""
    be = get_backend(name)
    prev = getattr(_state, "override", None)
    _state.override = be.name
    try:
        yield be
    finally:
        _state.override = prev


def empty_cache() -> None:
    """Release memory the backends keep cached for reuse (the numba backend's buffer
    pool; like ``torch.cuda.empty_cache()``): arrays in use are untouched, and only
    backends already created in this process are asked."""
    for inst in list(_instances.values()):
        inst.empty_cache()


def default_cpu_backend() -> str:
    """What ``device("cpu")`` means: numba where it runs, else numpy."""
    return default_backend_for("cpu")


__all__ = ["Backend", "BackendUnavailable", "available_backends", "registered_backends",
           "get_backend", "current_backend", "set_backend", "backend", "unavailable_reason",
           "default_cpu_backend", "default_backend_for", "register_backend", "device_types",
           "device_type_of", "is_backend_name", "empty_cache"]
