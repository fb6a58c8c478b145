"""Neural-network layers (placeholder until the training stack lands)."""
from . import functional  # noqa: F401
