"""Clear errors for the PyTorch names gradflow deliberately lacks: a module-level
``__getattr__`` (PEP 562) that says why a name is missing and what to use instead,
and a plain AttributeError (so ``hasattr`` works) for everything else."""
from __future__ import annotations


def module_getattr(qualname, table):
    """A ``__getattr__`` for the module ``qualname`` backed by ``table`` (name -> why)."""
    def __getattr__(name):
        why = table.get(name)
        if why is not None:
            raise AttributeError(f"{qualname}.{name} is not supported: {why}")
        raise AttributeError(f"module {qualname!r} has no attribute {name!r}")
    return __getattr__
