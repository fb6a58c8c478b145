"""``torch.jit`` stand-ins: gradflow has no TorchScript compiler. ``script`` and
``trace`` return the module or function unchanged (it runs eagerly, as before),
so programs that script a model for speed keep working; saving a scripted model
(``torch.jit.save``) is refused with a pointer to ``gradflow.save``/``onnx.export``."""
from __future__ import annotations


def script(obj=None, *args, **kwargs):
    """Returns ``obj`` unchanged (also usable as a decorator)."""
    return obj


def trace(func, example_inputs=None, *args, **kwargs):
    """Returns ``func`` unchanged (no graph is recorded)."""
    return func


def ignore(fn=None, **kwargs):
    return fn if fn is not None else (lambda f: f)


unused = export = ignore


def is_scripting():
    return False


def is_tracing():
    return False


def save(*args, **kwargs):
    raise RuntimeError("jit.save: gradflow has no TorchScript; save the state_dict (or the whole "
                       "model) with gradflow.save, or export with gradflow.onnx.export")


def load(*args, **kwargs):
    raise RuntimeError("jit.load: gradflow has no TorchScript; load with gradflow.load")
