"""Grad mode: whether ops record the graph (``no_grad``, ``enable_grad``, ...).

The flag is thread-local: a ``no_grad()`` block in one thread leaves the others
recording. ``_mode``'s flags are read on every op, so they are plain attributes
with class-level defaults (a new thread starts recording, quiet, without anomaly mode).
"""
from __future__ import annotations

import contextlib
import threading

class _Mode(threading.local):
    enabled = True       # ops record the graph
    quiet = False        # inside a backward walk: the backends' float errors already silenced
    anomaly = False      # detect_anomaly
    anomaly_nan = True
    anomaly_inf = False


_mode = _Mode()


def is_grad_enabled() -> bool:
    return _mode.enabled


def in_plain_backward() -> bool:
    """True inside a backward walk that records nothing (no ``create_graph``): nothing an
    op does can be recorded and the backends' float errors are already silenced, so an
    op may call its kernel directly instead of dispatching a Function (the first-order
    path stays as cheap as raw array code)."""
    return _mode.quiet and not _mode.enabled


class set_grad_enabled(contextlib.ContextDecorator):
    """Context manager / decorator that turns graph recording on or off."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self._prev = []

    def __enter__(self):
        self._prev.append(is_grad_enabled())
        _mode.enabled = self.mode

    def __exit__(self, *exc):
        _mode.enabled = self._prev.pop()
        return False


class _FixedMode(set_grad_enabled):
    """A grad mode usable as ``with m():``, ``@m()`` and, as in PyTorch, bare ``@m``."""
    _MODE = False

    def __new__(cls, orig_func=None):
        if orig_func is None:
            return super().__new__(cls)
        if not callable(orig_func):
            raise TypeError(f"{cls.__name__}() takes no arguments (or, as a bare decorator, "
                            f"a function); got {type(orig_func).__name__}")
        return cls()(orig_func)

    def __init__(self, orig_func=None):
        super().__init__(self._MODE)


class no_grad(_FixedMode):
    """``with gradflow.no_grad():`` (or ``@no_grad()`` / ``@no_grad``) -- ops record no
    graph (evaluation, updates)."""
    _MODE = False


class enable_grad(_FixedMode):
    _MODE = True


class inference_mode(set_grad_enabled):
    """PyTorch's ``inference_mode(mode=True)``: ``no_grad`` when ``mode``, else the
    grad mode is left as it is. Also a bare decorator."""

    def __new__(cls, mode=True):
        if callable(mode):
            return cls()(mode)
        return super().__new__(cls)

    def __init__(self, mode=True):
        super().__init__(False)
        self._keep = not bool(mode)

    def __enter__(self):
        self._prev.append(is_grad_enabled())
        if not self._keep:
            _mode.enabled = False


