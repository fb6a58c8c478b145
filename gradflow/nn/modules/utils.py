"""Helpers shared by the modules."""
from __future__ import annotations


def check_sizes(op, minimum=0, **sizes):
    """TypeError/ValueError naming ``op`` unless every size is an int >= ``minimum``."""
    for name, v in sizes.items():
        if isinstance(v, bool) or not hasattr(v, "__index__"):
            raise TypeError(f"{op}: {name} must be an int, got {type(v).__name__} {v!r}")
        if v < minimum:
            raise ValueError(f"{op}: {name} must be >= {minimum}, got {v}")


def factory_kwargs(device=None, dtype=None):
    """The ``device=`` / ``dtype=`` keywords a Module constructor passes on to the tensor
    factories (only those given, so the factories' defaults apply otherwise)."""
    return {k: v for k, v in (("device", device), ("dtype", dtype)) if v is not None}
