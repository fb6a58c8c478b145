"""``Parameter``: a Tensor that a Module registers as learnable when assigned as an
attribute (PyTorch's ``nn.Parameter``)."""
from __future__ import annotations

from ..creation import empty
from ..tensor import Tensor


class Parameter(Tensor):
    """A leaf Tensor that requires grad by default and that ``Module.__setattr__``
    records in ``module._parameters``. ``Parameter(t)`` shares ``t``'s storage."""

    __slots__ = ()

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = empty(0)
        if not isinstance(data, Tensor):
            data = Tensor(data)
        self.array = data.array
        self.backend = data.backend
        self.grad = None
        self._node = None
        self._version = data._version
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, proto):  # pragma: no cover - pickling is not the save format
        raise TypeError("Parameter: use gradflow.save(module.state_dict(), path), not pickle")


class Buffer(Tensor):
    """Marker type: ``module.x = nn.Buffer(t)`` registers ``t`` as a buffer (as PyTorch 2.5+)."""

    __slots__ = ("persistent",)

    def __init__(self, data, persistent=True):
        t = data if isinstance(data, Tensor) else Tensor(data)
        self.array, self.backend, self.grad, self._node = t.array, t.backend, None, None
        self._version, self.requires_grad, self.persistent = t._version, False, persistent
