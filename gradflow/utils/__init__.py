"""PyTorch-compatible aliases: ``gradflow.utils.data`` is ``gradflow.data``."""
from .. import data  # noqa: F401
