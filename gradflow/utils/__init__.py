"""PyTorch-compatible aliases: ``gradflow.utils.data`` is ``gradflow.data``, so
``from gradflow.utils.data import DataLoader, TensorDataset`` works as in PyTorch."""
import sys as _sys

from .. import data  # noqa: F401

_sys.modules[__name__ + ".data"] = data
from . import checkpoint  # noqa: F401,E402 - gradflow.utils.checkpoint.checkpoint (a no-op)
