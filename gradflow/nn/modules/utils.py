"""Helpers shared by the modules."""
from __future__ import annotations


def factory_kwargs(device=None, dtype=None):
    """The ``device=`` / ``dtype=`` keywords a Module constructor passes on to the tensor
    factories (only those given, so the factories' defaults apply otherwise)."""
    return {k: v for k, v in (("device", device), ("dtype", dtype)) if v is not None}
