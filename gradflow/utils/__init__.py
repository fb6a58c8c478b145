"""PyTorch-compatible aliases: ``gradflow.utils.data`` is ``gradflow.data``, so
``from gradflow.utils.data import DataLoader, TensorDataset`` works as in PyTorch.
``gradflow.utils.threads`` is :mod:`gradflow.backends.threads` (BLAS thread control,
which the numba backend needs below this layer)."""
import sys as _sys

from .. import data
from ..backends import threads
from . import checkpoint  # noqa: F401 - gradflow.utils.checkpoint.checkpoint (a no-op)

_sys.modules[__name__ + ".data"] = data
_sys.modules[__name__ + ".threads"] = threads
