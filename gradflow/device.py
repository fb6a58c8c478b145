"""PyTorch-style devices mapped onto backends: ``"cpu"`` is the default CPU
backend (numba where available, else numpy), ``"cuda"`` the cupy backend."""
from __future__ import annotations

from .backends import Backend, default_cpu_backend, get_backend, unavailable_reason


class device:
    """``gradflow.device("cpu" | "cuda" | "cuda:0" | <backend name>)``."""

    def __init__(self, spec="cpu", index=None):
        if isinstance(spec, device):
            spec, index = spec.type, spec.index
        spec = str(spec)
        if ":" in spec:
            spec, idx = spec.split(":", 1)
            index = int(idx)
        self.type = {"numpy": "cpu", "numba": "cpu", "cupy": "cuda", "gpu": "cuda"}.get(spec, spec)
        self.backend_name = spec if spec in ("numpy", "numba", "cupy") else None
        if self.type not in ("cpu", "cuda"):
            raise ValueError(f"device: unknown device {spec!r}; valid: 'cpu', 'cuda', or a backend "
                             f"name (numpy, numba, cupy)")
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
        if isinstance(spec, str) and spec.split(":")[0] in ("numpy", "numba", "cupy"):
            return get_backend(spec.split(":")[0])
        d = spec if isinstance(spec, device) else device(spec)
        if d.backend_name:
            return get_backend(d.backend_name)
        return get_backend("cupy" if d.type == "cuda" else _cpu_name())


def _cpu_name():
    from . import backends
    cur = backends._env_default()
    return cur if cur in ("numpy", "numba") else default_cpu_backend()


class _Cuda:
    """``gradflow.cuda.is_available()`` etc."""

    @staticmethod
    def is_available() -> bool:
        return unavailable_reason("cupy") is None

    @staticmethod
    def device_count() -> int:
        return 1 if _Cuda.is_available() else 0

    @staticmethod
    def synchronize():
        if _Cuda.is_available():
            get_backend("cupy").synchronize()

    @staticmethod
    def manual_seed(seed):
        if _Cuda.is_available():
            get_backend("cupy").seed(seed)

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
