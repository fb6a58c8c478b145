"""PyTorch-style devices mapped onto backends: ``"cpu"`` is the default CPU
backend (numba where available, else numpy), ``"cuda"`` the cupy backend."""
from __future__ import annotations

from . import backends as _backends
from .backends import Backend, default_backend_for, get_backend, unavailable_reason


class device:
    """``gradflow.device("cpu" | "cuda" | "cuda:0" | <backend name>)``."""

    def __init__(self, spec="cpu", index=None):
        if isinstance(spec, device):
            spec, index = spec.type, spec.index
        spec = str(spec)
        if ":" in spec:
            spec, idx = spec.split(":", 1)
            index = int(idx)
        named = _backends.is_backend_name(spec)  # a backend name: that backend's device
        self.type = _backends.device_type_of(spec) if named else spec
        self.backend_name = _backends._canonical(spec) if named else None
        if self.type not in _backends.device_types():
            raise ValueError(f"device: unknown device {spec!r}; valid: "
                             f"{', '.join(repr(t) for t in _backends.device_types())}, or a "
                             f"backend name ({', '.join(_backends.registered_backends())})")
        if self.type == "cuda" and index not in (None, 0):
            raise ValueError(f"device: only cuda:0 is supported, got cuda:{index}")
        self.index = index

    def __repr__(self):
        return f"device(type='{self.type}'" + (f", index={self.index})" if self.index is not None else ")")

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other):
        try:
            return device(other).type == self.type
        except (ValueError, TypeError):
            return NotImplemented

    def __hash__(self):
        return hash(self.type)

    @staticmethod
    def resolve_backend(spec) -> Backend:
        """Backend for a backend name, a Backend, a device or a device string."""
        if isinstance(spec, Backend):
            return spec
        if isinstance(spec, str) and _backends.is_backend_name(spec.split(":")[0]):
            return get_backend(spec.split(":")[0])
        d = spec if isinstance(spec, device) else device(spec)
        if d.backend_name:
            return get_backend(d.backend_name)
        return get_backend(_default_name(d.type))


def _default_name(device_type):
    """The backend a device type means: the process default when it runs on that
    device (GRADFLOW_BACKEND=numpy keeps "cpu" on numpy), else the preferred one."""
    cur = _backends._env_default()
    return cur if _backends.device_type_of(cur) == device_type else default_backend_for(device_type)


def _cuda_name():
    return default_backend_for("cuda")


class _Cuda:
    """``gradflow.cuda.is_available()`` etc."""

    @staticmethod
    def is_available() -> bool:
        return unavailable_reason(_cuda_name()) is None

    @staticmethod
    def device_count() -> int:
        return 1 if _Cuda.is_available() else 0

    @staticmethod
    def synchronize():
        if _Cuda.is_available():
            get_backend(_cuda_name()).synchronize()

    @staticmethod
    def manual_seed(seed):
        if _Cuda.is_available():
            get_backend(_cuda_name()).seed(seed)

    manual_seed_all = manual_seed


class _Accelerator:
    @staticmethod
    def is_available() -> bool:
        return _Cuda.is_available()

    @staticmethod
    def current_accelerator():
        return device("cuda") if _Cuda.is_available() else None


class _Cpu:
    """``gradflow.cpu``: the CPU counterpart of ``gradflow.cuda`` (``cpu.amp`` is set by
    gradflow.amp)."""

    @staticmethod
    def is_available() -> bool:
        return True

    @staticmethod
    def device_count() -> int:
        return 1

    @staticmethod
    def synchronize():
        return None


cuda = _Cuda()
cpu = _Cpu()
accelerator = _Accelerator()
